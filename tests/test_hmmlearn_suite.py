"""hmmlearn's own test suite, run on sciTie's subclasses: drop-in compatibility (issue 19).

Nothing is copied: the test modules shipped in the installed hmmlearn wheel
(``hmmlearn/tests``) are imported, their test classes and functions are collected from this
module, and while each test runs the names those modules use for the estimators
(``hmm.GaussianHMM``, ``GMMHMM`` ...) point at sciTie's subclasses. A validation stricter than
hmmlearn's, a changed attribute or a changed result then fails here, in the fast tier.

hmmlearn's conftest draws a new global seed per run (``HMMLEARN_SEED``); here every test
starts from the same seed instead, so the run is reproducible.
"""
from __future__ import annotations

import importlib
import types

import numpy as np
import pytest

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")
_errors = np.geterr()
pytest.importorskip("hmmlearn.tests")
# hmmlearn.tests calls np.seterr(all="warn") on import, for the whole process: keep numpy's
# defaults for the rest of sciTie's suite (the only difference is that underflow, harmless in
# log-space code, does not warn)
np.seterr(**_errors)

from sciTie.hmm import (TiedCategoricalHMM, TiedGaussianHMM, TiedGMMHMM,  # noqa: E402
                        TiedPoissonHMM)

#: hmmlearn's estimator -> the sciTie subclass that claims to be a drop-in for it
SUBSTITUTES = {"GaussianHMM": TiedGaussianHMM, "PoissonHMM": TiedPoissonHMM,
               "CategoricalHMM": TiedCategoricalHMM, "GMMHMM": TiedGMMHMM}

#: hmmlearn's test modules that exercise those estimators (the others test hmmlearn's
#: variational models, MultinomialHMM, its utilities and its base class, none of which
#: sciTie replaces)
MODULES = ("test_gaussian_hmm", "test_poisson_hmm", "test_categorical_hmm", "test_gmm_hmm",
           "test_gmm_hmm_new", "test_gmm_hmm_multisequence")

#: hmmlearn's tests that take seconds each on sciTie's classes (EM on thousands of samples,
#: or one fit per candidate number of states): the slow tier runs them. The names are
#: ``Class::test`` as collected here (every parameter of a parametrised test).
SLOW = {
    "test_gmmhmm_multi_sequence_fit_invariant_to_sequence_ordering",
    "TestGMMHMMWithSphericalCovars::test_criterion",
    "TestGMMHMMWithDiagCovars_new::test_criterion",
    "TestGMMHMMWithTiedCovars_new::test_criterion",
    "TestGMMHMMWithFullCovars_new::test_criterion",
    "TestGMMHMMWithTiedCovars_new::test_fit",
    "TestGMMHMMWithFullCovars_new::test_fit",
    "TestGaussianHMMWithSphericalCovars::test_fit_with_priors",
    "TestGaussianHMMWithDiagonalCovars::test_fit_with_priors",
    "TestGaussianHMMWithTiedCovars::test_fit_with_priors",
    "TestGaussianHMMWithFullCovars::test_fit_with_priors",
    "TestGaussianHMMWithSphericalCovars::test_criterion",
    "TestGaussianHMMWithTiedCovars::test_criterion",
    "TestGaussianHMMWithFullCovars::test_criterion",
    "TestPoissonHMM::test_criterion",
    "TestGMMHMMWithSphericalCovars::test_fit",
    "TestGMMHMMWithSphericalCovars::test_fit_sparse_data",
    "TestGMMHMMWithDiagCovars_new::test_fit_sparse_data",
    "TestGMMHMMWithTiedCovars_new::test_fit_sparse_data",
    "TestGMMHMMWithFullCovars_new::test_fit_sparse_data",
    "TestGMMHMM_MultiSequence::test_chunked",
}

#: where sciTie differs from hmmlearn on purpose (never by refusing what hmmlearn accepts);
#: strict, so that a change of behaviour shows
KNOWN_DIFFERENCES = {
    "TestGaussianHMMWithSphericalCovars::test_underflow_from_scaling[scaling]":
        "hmmlearn's 'scaling' forward pass underflows on an outlier and raises ValueError; "
        "sciTie's guarded forward-backward (used for both implementations) fits the data",
}

_modules = {name: importlib.import_module(f"hmmlearn.tests.{name}") for name in MODULES}
np.seterr(**_errors)
_patched_hmm = types.ModuleType("hmmlearn.hmm", "hmmlearn.hmm with sciTie's subclasses")
_patched_hmm.__dict__.update({k: v for k, v in vars(hmmlearn_hmm).items()
                              if not k.startswith("__")})
_patched_hmm.__dict__.update(SUBSTITUTES)


def _collect() -> dict[str, tuple[object, object]]:
    """hmmlearn's test classes and functions (with their module) under the names this module
    exposes them by (a name two modules share gets the later module's suffix: ``..._new``)."""
    out: dict[str, tuple[object, object]] = {}
    for module_name, module in _modules.items():
        for name, obj in vars(module).items():
            if not name.startswith(("Test", "test_")) or getattr(obj, "__module__", None) \
                    != module.__name__:
                continue
            key = name if name not in out else f"{name}_{module_name.rsplit('_', 1)[-1]}"
            out[key] = (obj, module)
    return out


_COLLECTED = _collect()
globals().update({key: obj for key, (obj, _) in _COLLECTED.items()})


def item_marks(item) -> list:
    """Marks of one collected test (called by conftest's collection hook): the marks hmmlearn
    sets on a whole module (test_gmm_hmm.py: xfail), slow, and the known differences."""
    path = item.nodeid.split("::", 1)[-1]
    entry = _COLLECTED.get(path.split("::", 1)[0].split("[", 1)[0])
    if entry is None:
        return []
    marks = getattr(entry[1], "pytestmark", [])
    marks = list(marks) if isinstance(marks, (list, tuple)) else [marks]
    if path.split("[", 1)[0] in SLOW:
        marks.append(pytest.mark.slow)
    if path in KNOWN_DIFFERENCES:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[path]))
    return marks


@pytest.fixture(autouse=True)
def _sciTie_classes(monkeypatch):
    """Point hmmlearn's test modules at sciTie's subclasses; seed the global generator; one
    OpenMP thread (hundreds of tiny k-means starts: on a shared machine, threads spinning
    for work cost several times the CPU they save)."""
    from threadpoolctl import threadpool_limits

    for module in _modules.values():
        if hasattr(module, "hmm"):
            monkeypatch.setattr(module, "hmm", _patched_hmm)
        for name, cls in SUBSTITUTES.items():
            if hasattr(module, name):
                monkeypatch.setattr(module, name, cls)
    np.random.seed(385)  # hmmlearn's conftest seeds once per run, with a random seed
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def test_the_suite_runs_on_sciTie_classes():
    """The substitution reaches every name hmmlearn's tests build estimators from."""
    for module in _modules.values():
        ns = getattr(module, "hmm", None)
        if ns is not None:
            for name, cls in SUBSTITUTES.items():
                assert getattr(ns, name) is cls, (module.__name__, name)
        for name, cls in SUBSTITUTES.items():
            if name in vars(module):
                assert vars(module)[name] is cls, (module.__name__, name)
    assert len(_COLLECTED) >= 15, sorted(_COLLECTED)
    for name in list(SLOW) + list(KNOWN_DIFFERENCES):  # no entry outlives a renamed test
        assert name.split("::", 1)[0].split("[", 1)[0] in _COLLECTED, name
