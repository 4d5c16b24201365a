"""Series refinements on a Dask cluster: the same numbers as in process, and a lost worker.

One LocalCluster of two worker processes (one thread each) is started by this module and
shared by its tests; a worker plugin kills a worker process when a file arms it. Every number
is checked against the same refinement run in this process (itself checked against dense
least squares and the generating laws in test_diffraction_series.py).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from sciTie.diffraction import (ParametricRefinement, SequentialRefinement,  # noqa: E402
                                specs_from_dataset)
from sciTie.diffraction._blockarrow import schur_step  # noqa: E402
from sciTie.diffraction._parametric import _LocalEngine  # noqa: E402
from sciTie.diffraction._series_dask import ClusterEngine, n_partitions  # noqa: E402
from sciTie.diffraction.data import make_synthetic_series, synthetic_series_recipe  # noqa: E402
from sciTie.errors import ValidationError  # noqa: E402

LAWS = {"TiO2.a": "a0 + a1*T + a2*T**2", "TiO2.c": "c0 + c1*T + c2*T**2", "TiO2.O.x": "ox"}


class KillOnTask(distributed.WorkerPlugin):
    """Kill this worker's process when it starts a task whose key begins with ``prefix``,
    once per arming: the first worker to remove the file ``armed`` dies (its nanny starts an
    empty one)."""

    def __init__(self, armed: str, prefix: str):
        self.armed, self.prefix = armed, prefix

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and isinstance(key, tuple) \
                and str(key[0]).startswith(self.prefix):
            try:
                os.remove(self.armed)
            except FileNotFoundError:
                return
            os._exit(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes of one thread; ``armed`` files for the kill plugins."""
    folder = tmp_path_factory.mktemp("kill")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cl, \
            distributed.Client(cl) as client:
        client.register_plugin(KillOnTask(str(folder / "schur"), "series-schur-"),
                               name="kill-schur")
        client.register_plugin(KillOnTask(str(folder / "fit"), "series-fit-"),
                               name="kill-fit")
        yield client, folder


@pytest.fixture
def cluster2(cluster):
    """The module's cluster once both workers are up (a killed one is restarted by its
    nanny)."""
    cluster[0].wait_for_workers(2, timeout=120)
    return cluster


@pytest.fixture(scope="module")
def series():
    ds = make_synthetic_series(3, seed=3)
    return specs_from_dataset(ds), synthetic_series_recipe()


@pytest.fixture(scope="module")
def reference(series):
    """The in-process parametric refinement from the templates."""
    specs, recipe = series
    return ParametricRefinement(specs, recipe, laws=LAWS, start="initialize").fit()


def rel_err(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))


def assert_same_parametric(ref, ours, tol=1e-8):
    assert ours.result_.nvarys == ref.result_.nvarys
    assert ours.result_.chisqr == pytest.approx(ref.result_.chisqr, rel=1e-10)
    assert len(ours.history_) == len(ref.history_)
    assert rel_err([h["chi2"] for h in ref.history_], [h["chi2"] for h in ours.history_]) < 1e-10
    assert (ours._nfev, ours._njev) == (ref._nfev, ref._njev)
    assert rel_err(ref.x0_, ours.x0_) == 0.0
    for k, v in ref.laws_.items():
        assert ours.laws_[k]["value"] == pytest.approx(v["value"], rel=tol), k
        assert ours.laws_[k]["stderr"] == pytest.approx(v["stderr"], rel=tol), k
    a, b = ref.to_xarray(), ours.to_xarray()
    assert list(a["param"].values) == list(b["param"].values)
    np.testing.assert_allclose(b["value"].values, a["value"].values, rtol=tol, atol=1e-12)
    np.testing.assert_allclose(b["stderr"].values, a["stderr"].values, rtol=tol, atol=1e-12)
    np.testing.assert_allclose(b["calc"].values, a["calc"].values, rtol=tol)
    np.testing.assert_allclose(b["wrp"].values, a["wrp"].values, rtol=tol)


def tasks_named(stream, prefix):
    return [t for t in stream.data if str(t["key"][0]).startswith(prefix)]


# ---------------------------------------------------------------- sequential refinements
def test_sequential_fits_as_tasks_equal_in_process(cluster2, series):
    client, _ = cluster2
    specs, recipe = series
    specs = specs[:3]
    # mode="start": the first pattern's full refinement, then the others at once
    ref = SequentialRefinement(specs, recipe, mode="start").fit()
    with distributed.get_task_stream(client) as stream:
        ours = SequentialRefinement(specs, recipe, mode="start").fit(client=client)
    assert len(tasks_named(stream, "series-first-")) == 1
    assert len(tasks_named(stream, "series-fit-")) == 2
    for name in ("value", "stderr", "chi2", "wrp", "nfev"):
        np.testing.assert_allclose(ours.to_xarray()[name].values, ref.to_xarray()[name].values,
                                   rtol=1e-10, equal_nan=True, err_msg=name)
    assert ours.to_xarray().attrs["dask_workers"] == 2 and "dask_workers" not in ref.to_xarray().attrs
    # mode="previous": a chain of tasks, each from the previous result
    start = ref.fits_[0]["values"]
    chain_ref = SequentialRefinement(specs[1:], recipe, start=start).fit()
    with distributed.get_task_stream(client) as stream:
        chain = SequentialRefinement(specs[1:], recipe, start=start).fit(client=client)
    links = sorted(tasks_named(stream, "series-chain-"), key=lambda t: t["key"][1])
    assert len(links) == 2
    computes = [[s for s in t["startstops"] if s["action"] == "compute"] for t in links]
    # the second link waits for the first (times from two processes: allow clock offsets)
    assert computes[1][0]["start"] > computes[0][-1]["stop"] - 0.05
    for name in ("value", "stderr", "chi2"):
        np.testing.assert_allclose(chain.to_xarray()[name].values, chain_ref.to_xarray()[name].values,
                                   rtol=1e-10, equal_nan=True, err_msg=name)


def test_sequential_fit_survives_a_lost_worker(cluster2, series):
    client, folder = cluster2
    specs, recipe = series
    start = SequentialRefinement(specs[:1], recipe).fit().fits_[0]["values"]
    ref = SequentialRefinement(specs[1:3], recipe, mode="start", start=start).fit()
    (folder / "fit").touch()
    ours = SequentialRefinement(specs[1:3], recipe, mode="start", start=start).fit(
        client=client)
    assert not (folder / "fit").exists()  # a worker died running a fit; it was re-run
    np.testing.assert_allclose(ours.to_xarray()["value"].values, ref.to_xarray()["value"].values,
                               rtol=1e-10, equal_nan=True)


# ---------------------------------------------------------------- parametric refinement
def test_cluster_engine_pieces_equal_in_process(cluster2, reference):
    """Blocks, damped Schur step, χ² and calculated patterns at one point, both ways."""
    client, _ = cluster2
    ref = reference
    x = ref._x.copy()
    x[ref._shared] *= 1 + 1e-4  # away from the minimum: a gradient worth solving for
    here, there = _LocalEngine(ref), ClusterEngine(ref, client)
    try:
        there.start()
        assert there.n_partitions == 2 and there.placed is not None
        a, b = here.linearize(x), there.linearize(x)
        np.testing.assert_allclose(b.A_ss, a.A_ss, rtol=1e-13)
        np.testing.assert_allclose(b.g_s, a.g_s, rtol=1e-12)
        assert b.chi2 == pytest.approx(a.chi2, rel=1e-13) and b.n == a.n
        for d1, d2 in zip(a.diag_ll, b.diag_ll):
            np.testing.assert_array_equal(d1, d2)
        D_s = np.diag(a.A_ss).copy()
        D_l = [d.copy() for d in a.diag_ll]
        for lam in (1e-3, 10.0):
            ds1, dl1 = schur_step(here.blocks, lam, D_s, D_l)
            ds2, dl2 = there.step(b, lam, D_s, D_l)
            np.testing.assert_allclose(ds2, ds1, rtol=1e-8)
            np.testing.assert_allclose(np.concatenate(dl2), np.concatenate(dl1), rtol=1e-8,
                                       atol=1e-14)
        assert there.chi2(x) == pytest.approx(here.chi2(x), rel=1e-13)
        for y1, y2 in zip(here.calc(x), there.calc(x)):
            np.testing.assert_array_equal(y1, y2)
        assert there.windows_ok(x) == here.windows_ok(x)
        final = there.final_blocks()
        assert len(final) == len(ref.patterns_)
        np.testing.assert_array_equal(final[2].A_ll, here.blocks[2].A_ll)
    finally:
        there.close()


def test_parametric_on_the_cluster_equals_in_process(cluster2, series, reference):
    client, _ = cluster2
    specs, recipe = series
    with distributed.get_task_stream(client) as stream:
        ours = ParametricRefinement(specs, recipe, laws=LAWS, start="initialize").fit(
            client=client)
    assert_same_parametric(reference, ours)
    assert ours.cluster_ == {"workers": 2, "partitions": 2, "recovered": 0}
    # the Jacobian blocks were computed on both workers, once per linearisation
    blocks = tasks_named(stream, "series-blocks-")
    assert {t["worker"] for t in blocks} == set(client.scheduler_info()["workers"])
    assert len(blocks) == 2 * ours._njev
    assert json.loads(ours.to_xarray().attrs["dask"]) == ours.cluster_
    assert "dask" not in reference.to_xarray().attrs and reference.cluster_ is None


def test_parametric_survives_a_lost_worker(cluster2, series, reference):
    """A worker process dies at the first Schur step: its partition is placed again from the
    client's copy, its blocks computed again, and the fit ends where the in-process one did."""
    client, folder = cluster2
    specs, recipe = series
    (folder / "schur").touch()
    before = set(client.scheduler_info()["workers"])
    ours = ParametricRefinement(specs, recipe, laws=LAWS, start="initialize").fit(
        client=client)
    assert not (folder / "schur").exists()
    assert ours.cluster_["recovered"] >= 1
    assert set(client.scheduler_info()["workers"]) != before
    assert_same_parametric(reference, ours)


# ---------------------------------------------------------------- bad input and layout
def test_client_must_be_a_dask_client(series):
    specs, recipe = series
    for make in (lambda: SequentialRefinement(specs, recipe),
                 lambda: ParametricRefinement(specs, recipe, laws=LAWS, start="initialize")):
        with pytest.raises(ValidationError, match="client must be a dask.distributed.Client"):
            make().fit(client="tcp://127.0.0.1:8786")


def test_settings_that_cannot_go_to_a_cluster(dask_client, series):
    specs, recipe = series
    with pytest.raises(ValidationError, match="client: .*n_jobs"):
        SequentialRefinement(specs, recipe, n_jobs=2).fit(client=dask_client)
    with pytest.raises(ValidationError, match="solver='dense'.*client"):
        ParametricRefinement(specs, recipe, laws=LAWS, start="initialize",
                             solver="dense").fit(client=dask_client)


def test_number_of_partitions():
    """One per worker thread, more when a partition would exceed 32 patterns."""
    assert n_partitions(4, 2) == 2
    assert n_partitions(3, 8) == 3
    assert n_partitions(1000, 2) == 32
    assert n_partitions(1000, 64) == 64
