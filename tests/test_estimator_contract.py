"""One estimator contract (docs/concepts.rst, "The estimator contract"), checked on every
estimator the same way: hyperparameters in ``__init__`` (stored as given, so scikit-learn's
``clone`` and ``get_params``/``set_params`` work), data to ``fit``, ``fit`` returns ``self``,
``result_`` a :class:`sciTie.FitResult`, ``report(min_correl=0.1)``, ``to_xarray()``,
``plot(ax=None)``, ``fit_seconds_`` and ``fit_cpu_seconds_``, a ``random_state`` where
randomness enters (the refinements have none: two fits of clones give the same numbers), and
sciTie's error types for a bad hyperparameter.

The refinements keep their patterns on the object (the docs say why), as the PINN keeps its
problem: their ``fit`` takes no data.
"""
import warnings
from dataclasses import replace

import matplotlib
import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone

from sciTie import FitResult
from sciTie.errors import SciTieError

matplotlib.use("Agg")


def _hmm(cls, **kw):
    def make():
        return cls(2, n_iter=5, random_state=0, **kw)

    def data(family):
        rng = np.random.default_rng(0)
        if family == "poisson":
            return (np.r_[rng.poisson(2, (80, 1)), rng.poisson(9, (80, 1))],), {}
        if family == "categorical":
            return (np.r_[rng.choice(3, 80, p=[.8, .1, .1]),
                          rng.choice(3, 80, p=[.1, .1, .8])][:, None],), {}
        return (np.r_[rng.normal(0, 1, (80, 1)), rng.normal(4, 1, (80, 1))],), {}

    return make, lambda: data(cls.family), {"n_components": 0}


def _pinn():
    from sciTie.pinn import PeriodicPINN, convection

    def make():
        return PeriodicPINN(convection(1.0), hidden=(8,), adam_steps=5, lbfgs_steps=0,
                            lm_steps=0, n_collocation=32, n_initial=16, eval_grid=(8, 4),
                            random_state=0, budget=1.0)

    return make, lambda: ((), {}), {"adam_steps": -1}


def _joint():
    from sciTie.diffraction.data import make_synthetic, synthetic_refinement

    data = make_synthetic(0)

    def make():
        # the scale and background of one small pattern: a fit of a few evaluations
        ref = synthetic_refinement(data, patterns=("xray",)).set_params(max_nfev=6)
        ref.initialize()
        ref.set_refined(patterns={"*": ["scale", "bkg"]})
        return ref

    return make, lambda: ((), {}), {"ftol": -1.0}


def _series(kind):
    from sciTie.diffraction import ParametricRefinement, SequentialRefinement, specs_from_dataset
    from sciTie.diffraction.data import make_synthetic_series, synthetic_series_recipe

    specs = specs_from_dataset(make_synthetic_series(2, seed=3))
    full = synthetic_series_recipe()        # its first stage alone: scale and background
    recipe = replace(full, stages=full.stages[:1], continue_stages=1, max_nfev=6)

    def make():
        if kind == "sequential":
            return SequentialRefinement(specs, recipe)
        return ParametricRefinement(specs, recipe, laws={"TiO2.a": "a0"}, start="initialize",
                                    max_nfev=4)

    return make, lambda: ((), {}), {"mode": "sideways"} if kind == "sequential" \
        else {"solver": "qr"}


def _estimators():
    from sciTie.hmm import (TiedARHMM, TiedCategoricalHMM, TiedGaussianHMM, TiedGaussianHSMM,
                            TiedGMMHMM, TiedPoissonHMM, TiedPoissonHSMM)

    out = {cls.__name__: _hmm(cls) for cls in (TiedGaussianHMM, TiedPoissonHMM,
                                               TiedCategoricalHMM, TiedARHMM,
                                               TiedGaussianHSMM, TiedPoissonHSMM)}
    out["TiedGMMHMM"] = _hmm(TiedGMMHMM, n_mix=1)
    out["PeriodicPINN"] = _pinn()
    out["JointRefinement"] = _joint()
    out["SequentialRefinement"] = _series("sequential")
    out["ParametricRefinement"] = _series("parametric")
    return out


#: Estimators in which no randomness enters (no ``random_state``): fits are repeatable.
DETERMINISTIC = {"JointRefinement", "SequentialRefinement", "ParametricRefinement"}


ESTIMATORS = _estimators()


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_the_estimator_contract(name):
    make, data, bad = ESTIMATORS[name]
    est = make()
    params = est.get_params()
    assert ("random_state" in params) != (name in DETERMINISTIC)
    # __init__ stores its arguments as given: a clone has the same parameters, unfitted
    twin = clone(est)
    assert twin.get_params().keys() == params.keys()
    # (hmmlearn's own __init__ makes monitor_; the HMMs keep it for drop-in compatibility)
    assert not any(k.endswith("_") and not k.endswith("__") and k != "monitor_"
                   for k in vars(twin))
    args, kwargs = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a five-step fit does not converge
        assert est.fit(*args, **kwargs) is est
    assert isinstance(est.result_, FitResult)
    assert isinstance(est.report(min_correl=0.1), str)
    assert isinstance(est.to_xarray(), xr.Dataset)
    assert est.plot(ax=None) is not None
    assert est.fit_seconds_ >= 0 and est.fit_cpu_seconds_ >= 0
    # get_params/set_params round trip: the same objects back, the estimator returned
    assert est.set_params(**params) is est
    assert all(est.get_params()[k] is v for k, v in params.items())
    if name in DETERMINISTIC:  # no random_state: a clone fitted again gives the same numbers
        again = clone(twin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again.fit(*args, **kwargs)
        np.testing.assert_array_equal(again.result_.x, est.result_.x)
    # set_params returns the estimator; a bad value is a sciTie error when fit checks it
    (key, value), = bad.items()
    assert twin.set_params(**{key: value}) is twin
    with pytest.raises(SciTieError):
        twin.fit(*args, **kwargs)
