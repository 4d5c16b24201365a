"""Tied HMMs on a Dask cluster: the same numbers as in process, lost workers, data on disk.

Every cluster is a LocalCluster started here (two workers, one thread each) and closed by
its fixture. The reference for every number is the in-process fit/score/decode of the same
model from the same start (itself tested against hmmlearn and brute force elsewhere).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import dask  # noqa: E402
from hmmlearn.base import ConvergenceMonitor  # noqa: E402

from sciTie.errors import DataFormatError, ValidationError  # noqa: E402
from sciTie.hmm import (TiedCategoricalHMM, TiedGaussianHMM, TiedGMMHMM,  # noqa: E402
                        TiedPoissonHMM)
from sciTie.hmm import _distributed as dist  # noqa: E402
from sciTie.hmm._forward_backward import ImpossibleObservationError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


def fitted_arrays(model):
    return {k: v for k, v in vars(model).items()
            if k.endswith("_") and isinstance(v, np.ndarray)}


def assert_same_fit(ref, ours, tol=1e-10):
    a, b = fitted_arrays(ref), fitted_arrays(ours)
    assert a.keys() == b.keys()
    for name in a:
        assert rel_err(a[name], b[name]) < tol, name
    assert ours.monitor_.iter == ref.monitor_.iter
    assert len(ours.monitor_.history) == len(ref.monitor_.history)
    assert rel_err(list(ref.monitor_.history), list(ours.monitor_.history)) < tol


@pytest.fixture
def client(dask_client):
    return dask_client


def sequences(n_seq=24, seed=0, D=2):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(40, 120, n_seq)
    X = np.concatenate([np.r_[rng.normal(0, 1, (n // 2, D)), rng.normal(3, 0.7, (n - n // 2, D))]
                        for n in lengths])
    return X, lengths


# ---------------------------------------------------------------- fit: same numbers
@pytest.mark.parametrize("cov, tol", [("diag", 1e-2), ("full", 0.2)])
def test_gaussian_fit_equals_in_process(client, cov, tol):
    X, lengths = sequences()
    # one start, so that the E-step tasks below are those of one EM run (restarts on the
    # cluster: test_restarts_on_the_cluster_equal_in_process)
    kw = dict(n_components=3, covariance_type=cov, tied_states=[[0, 1], [2]], random_state=0,
              n_iter=40, tol=tol, n_init=1)
    ref = TiedGaussianHMM(**kw).fit(X, lengths)
    with distributed.get_task_stream(client) as stream:
        ours = TiedGaussianHMM(**kw).fit(X, lengths, client=client)
    assert_same_fit(ref, ours)
    assert 2 < ours.monitor_.iter < 40  # stopped by tol, at the same iteration
    # the E-steps ran on both workers, one task per partition and iteration
    esteps = [t for t in stream.data if t["key"][0].startswith("hmm-estep-")]
    assert {t["worker"] for t in esteps} == set(client.scheduler_info()["workers"])
    n_parts = len(esteps) // ours.monitor_.iter
    assert n_parts >= 2 and len(esteps) == n_parts * ours.monitor_.iter


def test_restarts_on_the_cluster_equal_in_process(client):
    X, lengths = sequences(n_seq=6, seed=3)
    kw = dict(n_components=3, tied_states=[[0, 1], [2]], random_state=0, n_iter=5, tol=-np.inf,
              n_init=3)
    ref = TiedGaussianHMM(**kw).fit(X, lengths)
    ours = TiedGaussianHMM(**kw).fit(X, lengths, client=client)
    assert_same_fit(ref, ours)
    assert [r["log_likelihood"] for r in ours.starts_] == pytest.approx(
        [r["log_likelihood"] for r in ref.starts_], rel=1e-12)


@pytest.mark.slow
def test_poisson_categorical_gmm_fit_equal_in_process(client):
    rng = np.random.default_rng(4)
    lengths = rng.integers(30, 80, 16)
    rates = np.repeat([[2, 5], [9, 1]], [lengths.sum() // 2, lengths.sum() - lengths.sum() // 2],
                      axis=0)
    Xp = rng.poisson(rates)
    kw = dict(random_state=1, n_iter=8, tol=-np.inf, tied_states=[[0, 2], [1]])
    assert_same_fit(TiedPoissonHMM(3, **kw).fit(Xp, lengths),
                    TiedPoissonHMM(3, **kw).fit(Xp, lengths, client=client))

    Xc = np.r_[rng.choice(4, 800, p=[.7, .1, .1, .1]), rng.choice(4, 700, p=[.1, .1, .1, .7])]
    lc = [300, 500, 200, 500]
    assert_same_fit(TiedCategoricalHMM(3, **kw).fit(Xc[:, None], lc),
                    TiedCategoricalHMM(3, **kw).fit(Xc[:, None], lc, client=client))

    Xg, lg = sequences(n_seq=8, seed=5)
    kw_g = dict(n_mix=2, random_state=3, n_iter=5, tol=-np.inf, tied_states=[[0, 1], [2]],
                means_weight=0.5, means_prior=0.3)  # a prior in the starting statistics
    np.random.seed(0)  # hmmlearn's GMM initialisation may draw from the global generator
    ref = TiedGMMHMM(3, **kw_g).fit(Xg, lg)
    np.random.seed(0)
    assert_same_fit(ref, TiedGMMHMM(3, **kw_g).fit(Xg, lg, client=client))


def test_general_ties_fit_equal_in_process(client):
    """Ties the pooled M-step cannot do (Newton on Q through the tie map) on the cluster."""
    X, lengths = sequences(n_seq=12, seed=13, D=1)
    kw = dict(n_iter=6, tol=-np.inf, random_state=0, n_init=1,  # one EM run, compared
              ties=["means[2] = means[1] + delta", "covars[2] = phi * covars[0]",
                    "transmat[2,2] = transmat[0,0]"])
    ref = TiedGaussianHMM(3, **kw).fit(X, lengths)
    ours = TiedGaussianHMM(3, **kw).fit(X, lengths, client=client)
    assert ref._plan.emissions not in ("closed", "pooled")  # the general M-step ran
    # The cluster sums the statistics in another order, and this fit, six EM iterations from
    # its start, is not smooth in them at the last bit: in-process fits whose statistics were
    # multiplied by 1 +- 2.2e-16 (random signs; 8 draws, measured 2026-12-07 with the M-step
    # before and after its dependent-slot bounds) moved by up to 1.8e-8 (relative) after 6
    # iterations, most draws by 1e-14, and after 300 iterations all by 2e-8 at most. A
    # probability at 1 - the sum of the others, 1e-16 from 0, and the Newton M-step's stops
    # at the rounding of Q jump by a bit (one draw moved 4e-4 after 10 iterations and
    # came back). So equal means equal to that spread.
    spread = 1e-6
    assert_same_fit(ref, ours, tol=spread)
    np.testing.assert_allclose(ours.result_.x, ref.result_.x, rtol=spread, atol=1e-12)
    assert ours.result_.log_likelihood == pytest.approx(ref.result_.log_likelihood, rel=spread)
    assert ours.result_.ndata == ref.result_.ndata
    assert ours.result_.statistics == ref.result_.statistics
    assert ours.n_features_in_ == ref.n_features_in_


def test_score_predict_posteriors_equal_in_process(client):
    X, lengths = sequences(seed=2)
    model = TiedGaussianHMM(3, tied_states=[[0, 1], [2]], random_state=0, n_iter=5,
                            tol=-np.inf).fit(X, lengths)
    assert model.score(X, lengths, client=client) == pytest.approx(
        model.score(X, lengths), rel=1e-12)
    states = model.predict(X, lengths, client=client)
    assert isinstance(states, da.Array) and states.shape == (len(X),)
    np.testing.assert_array_equal(states.compute(), model.predict(X, lengths))
    post = model.predict_proba(X, lengths, client=client)
    np.testing.assert_allclose(post.compute(), model.predict_proba(X, lengths), atol=1e-12)

    ds = model.to_xarray(X, lengths, client=client)
    ref = model.to_xarray(X, lengths)
    for name in ("state_posterior", "group_posterior", "viterbi_state", "X", "sequence"):
        assert isinstance(ds[name].data, da.Array), name  # dask-backed, blocks on workers
    assert ds.state_posterior.data.numblocks[0] >= 2
    computed = ds.compute()
    assert set(computed.data_vars) == set(ref.data_vars)
    for name in ref.data_vars:
        if np.issubdtype(ref[name].dtype, np.number):
            np.testing.assert_allclose(computed[name].values, ref[name].values, atol=1e-12,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(computed[name].values, ref[name].values, name)
    assert set(ds.attrs) == set(ref.attrs)
    for key in ("decoded_log_likelihood", "viterbi_log_prob"):
        assert ds.attrs[key] == pytest.approx(ref.attrs[key], rel=1e-12), key
    for key in ("n_samples", "n_sequences", "n_free_parameters", "tied_states"):
        assert ds.attrs[key] == ref.attrs[key], key


def covariate_sequences(n_seq=10, seed=7):
    """Two-state sequences whose switching follows one covariate (a logit of [1, c_t])."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(40, 90, n_seq)
    c = rng.normal(size=(lengths.sum(), 1))
    z = np.zeros(lengths.sum(), dtype=int)
    starts = set(np.cumsum(lengths)[:-1].tolist())
    for t in range(1, z.size):
        if t in starts:
            continue
        p_leave = 1 / (1 + np.exp(2.0 - (1.5 if z[t - 1] == 0 else -1.5) * c[t, 0]))
        z[t] = 1 - z[t - 1] if rng.random() < p_leave else z[t - 1]
    X = (np.array([-1.0, 1.5])[z] + rng.normal(size=z.size))[:, None]
    return X, lengths, c


def test_covariate_transitions_on_the_cluster_equal_in_process(client, tmp_path):
    """The covariate E-step on the partitions (each with its rows of the covariates and
    known states), the logit's M-step on the client: the in-process fit to 1e-10."""
    X, lengths, c = covariate_sequences()
    known = np.full(len(X), -1)
    known[:5] = 0
    kw = dict(n_iter=6, tol=-np.inf, random_state=0, n_init=1,
              ties=["beta[1,0,1] = -beta[0,1,1]"])
    ref = TiedGaussianHMM(2, **kw).fit(X, lengths, covariates=c, known_states=known)
    with distributed.get_task_stream(client) as stream:
        ours = TiedGaussianHMM(2, **kw).fit(X, lengths, covariates=c, known_states=known,
                                            client=client)
    esteps = [t for t in stream.data if t["key"][0].startswith("hmm-estep-")]
    assert len(esteps) >= 2 * ours.monitor_.iter  # at least two partitions per iteration
    assert_same_fit(ref, ours)
    assert ours.beta_[1, 0, 1] == pytest.approx(-ours.beta_[0, 1, 1], rel=1e-12)
    assert ours.result_.log_likelihood == pytest.approx(ref.result_.log_likelihood, rel=1e-12)

    # scores and decodings on the cluster need (and use) the covariates of every row
    assert ref.score(X, lengths, covariates=c, client=client) == pytest.approx(
        ref.score(X, lengths, covariates=c), rel=1e-12)
    np.testing.assert_array_equal(ref.predict(X, lengths, covariates=c, client=client).compute(),
                                  ref.predict(X, lengths, covariates=c))
    np.testing.assert_allclose(
        ref.predict_proba(X, lengths, covariates=c, client=client).compute(),
        ref.predict_proba(X, lengths, covariates=c), atol=1e-12)
    with pytest.raises(ValidationError, match="pass covariates="):
        ref.score(X, lengths, client=client)

    # X in files read by the workers, the covariates in memory
    paths = write_files(tmp_path, X, lengths, ".npy")
    kw.pop("ties")
    ref = TiedGaussianHMM(2, **kw).fit(X, lengths, covariates=c)
    assert_same_fit(ref, TiedGaussianHMM(2, **kw).fit(paths, covariates=c, client=client))
    with pytest.raises(ValidationError, match="covariates has 9 rows"):
        TiedGaussianHMM(2, **kw).fit(paths, covariates=c[:9], client=client)


# ---------------------------------------------------------------- data that live elsewhere
def write_files(folder, X, lengths, suffix):
    paths, start = [], 0
    for i, n in enumerate(lengths):
        path = folder / f"seq{i:03d}{suffix}"
        block = X[start:start + n]
        if suffix == ".npy":
            np.save(path, block)
        elif suffix == ".nc":
            import xarray as xr

            xr.Dataset({"current": (("time", "feature"), block)}).to_netcdf(path)
        else:
            zarr = pytest.importorskip("zarr")
            arr = zarr.create_array(str(path), shape=block.shape, dtype=block.dtype,
                                    chunks=(50, block.shape[1]))
            arr[:] = block
        paths.append(path)
        start += n
    return paths


@pytest.mark.parametrize("suffix", [".npy", pytest.param(".nc", marks=pytest.mark.slow),
                                    pytest.param(".zarr", marks=pytest.mark.slow)])
def test_fit_from_files_read_on_workers(client, tmp_path, suffix):
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    X, lengths = sequences(n_seq=10, seed=6)
    paths = write_files(tmp_path, X, lengths, suffix)
    kw = dict(n_components=3, tied_states=[[0, 1], [2]], random_state=0, n_iter=6,
              tol=-np.inf)
    ref = TiedGaussianHMM(**kw).fit(X, lengths)
    ours = TiedGaussianHMM(**kw).fit(paths, client=client)  # one sequence per file
    assert_same_fit(ref, ours)
    assert ours.score([str(p) for p in paths], client=client) == pytest.approx(
        ref.score(X, lengths), rel=1e-12)


def test_files_with_several_sequences_each(client, tmp_path):
    X, lengths = sequences(n_seq=9, seed=7)
    cut = int(lengths[:4].sum())
    np.save(tmp_path / "a.npy", X[:cut])
    np.save(tmp_path / "b.npy", X[cut:])
    paths = [tmp_path / "a.npy", tmp_path / "b.npy"]
    kw = dict(n_components=2, random_state=0, n_iter=5, tol=-np.inf)
    assert_same_fit(TiedGaussianHMM(**kw).fit(X, lengths),
                    TiedGaussianHMM(**kw).fit(paths, lengths, client=client))
    bad = np.r_[lengths[:3], lengths[3] + 1, lengths[4] - 1, lengths[5:]]
    with pytest.raises(ValidationError, match=r"lengths: a sequence crosses the end of .*a\.npy"):
        TiedGaussianHMM(**kw).fit(paths, bad, client=client)


def test_fit_from_dask_array(client):
    X, lengths = sequences(n_seq=12, seed=8)
    Xd = da.from_array(X, chunks=(137, 2))  # chunks that cut through sequences
    kw = dict(n_components=3, tied_states=[[0], [1, 2]], random_state=2, n_iter=6,
              tol=-np.inf)
    assert_same_fit(TiedGaussianHMM(**kw).fit(X, lengths),
                    TiedGaussianHMM(**kw).fit(Xd, lengths, client=client))


# ---------------------------------------------------------------- a worker lost mid-iteration
class KillWhenArmed(distributed.WorkerPlugin):
    """Kill the worker process when it starts an E-step task of ``iteration``, once per arming.

    Arming is a file: the first worker to remove it dies (the nanny starts a fresh, empty one).
    """

    def __init__(self, armed: str, iteration: int):
        self.armed, self.tag = armed, f"-it{iteration}-"

    def transition(self, key, start, finish, **kwargs):
        if (finish == "executing" and isinstance(key, tuple)
                and str(key[0]).startswith("hmm-estep-") and self.tag in str(key[0])):
            try:
                os.remove(self.armed)
            except FileNotFoundError:
                return
            os._exit(1)


@pytest.fixture
def killer_client(tmp_path):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        c.register_plugin(KillWhenArmed(str(tmp_path / "armed"), iteration=2))
        yield c, tmp_path / "armed"


@pytest.mark.slow
def test_worker_lost_mid_iteration_gives_the_same_fit(killer_client, tmp_path, caplog):
    c, armed = killer_client
    X, lengths = sequences(n_seq=16, seed=9)
    kw = dict(n_components=3, tied_states=[[0, 1], [2]], random_state=0, n_iter=6,
              tol=-np.inf)
    ref = TiedGaussianHMM(**kw).fit(X, lengths)

    # in-memory data: the lost worker's scattered partitions come back from the client
    armed.touch()
    before = set(c.scheduler_info()["workers"])
    with caplog.at_level(logging.INFO, logger="sciTie.hmm._distributed"):
        ours = TiedGaussianHMM(**kw).fit(X, lengths, client=c)
    assert not armed.exists()  # a worker died while running an E-step of iteration 2
    assert set(c.scheduler_info()["workers"]) != before  # the nanny started a new one
    assert any("placed again" in r.getMessage() for r in caplog.records)
    assert_same_fit(ref, ours)

    # data read by the workers from files: the scheduler reloads them on another worker
    paths = write_files(tmp_path, X, lengths, ".npy")
    armed.touch()
    ours = TiedGaussianHMM(**kw).fit(paths, lengths, client=c)
    assert not armed.exists()
    assert_same_fit(ref, ours)


# ---------------------------------------------------------------- more data than memory
class RecordingMonitor(ConvergenceMonitor):
    """hmmlearn's monitor that also records the workers' memory at every iteration."""

    def __init__(self, tol, n_iter, verbose, client):
        super().__init__(tol, n_iter, verbose)
        self.client, self.memory = client, []

    def report(self, log_prob):
        super().report(log_prob)
        self.memory.append(self.client.run(
            lambda dask_worker: (dask_worker.data.fast.total_weight,
                                 dask_worker.data.spilled_total.memory)))


def test_data_larger_than_a_worker_memory_stay_on_disk(tmp_path):
    limit = 6 * 2**20
    rng = np.random.default_rng(10)
    lengths = np.full(16, 80_000)
    X = rng.normal(np.repeat([0.0, 2.5], lengths.sum() // 2)[:, None], 1.0, (lengths.sum(), 2))
    assert X.nbytes > 1.5 * limit * 2  # larger than the two workers' memory together
    paths = write_files(tmp_path, X, lengths, ".npy")
    start = dict(startprob_=np.array([0.5, 0.5]), transmat_=np.array([[0.9, 0.1], [0.2, 0.8]]),
                 means_=np.array([[-0.5, 0.0], [3.0, 2.0]]), covars_=np.ones((2, 2)))

    def model():
        m = TiedGaussianHMM(2, init_params="", n_iter=3, tol=-np.inf)
        for k, v in start.items():
            setattr(m, k, v.copy())
        return m

    ref = model().fit(X, lengths)
    # managed memory above 50% of the limit goes to disk; the in-process workers share this
    # process's memory, so the process-level pause/spill/terminate thresholds are off
    config = {"distributed.worker.memory.target": 0.5,
              "distributed.worker.memory.spill": False,
              "distributed.worker.memory.pause": False,
              "distributed.worker.memory.terminate": False}
    with dask.config.set(config), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                     memory_limit=limit, dashboard_address=":0",
                                     local_directory=str(tmp_path / "spill")) as cluster, \
            distributed.Client(cluster) as c:
        ours = model()
        ours.monitor_ = RecordingMonitor(ours.tol, ours.n_iter, False, c)
        ours.fit(paths, lengths, client=c)
        memory = ours.monitor_.memory
    assert_same_fit(ref, ours)
    for per_worker in memory:
        for fast, slow in per_worker.values():
            assert fast <= limit  # what a worker held in memory stayed under its limit
        assert sum(slow for _, slow in per_worker.values()) > 0.3 * X.nbytes  # rest on disk


# ---------------------------------------------------------------- input errors
def test_client_must_be_a_client():
    X, lengths = sequences(n_seq=2)
    with pytest.raises(ValidationError, match="client must be a dask.distributed.Client"):
        TiedGaussianHMM(2).fit(X, lengths, client="tcp://127.0.0.1:8786")


def test_missing_and_malformed_files_name_the_path(client, tmp_path):
    X, lengths = sequences(n_seq=2)
    np.save(tmp_path / "a.npy", X[:lengths[0]])
    missing = tmp_path / "nope.npy"
    with pytest.raises(DataFormatError, match="nope.npy") as info:
        TiedGaussianHMM(2).fit([tmp_path / "a.npy", missing], client=client)
    assert info.value.path == str(missing)

    bad = X[lengths[0]:].copy()
    bad[5, 1] = np.inf  # (NaN is a missing value)
    np.save(tmp_path / "b.npy", bad)
    with pytest.raises(DataFormatError, match=r"b\.npy.*inf in rows 5"):
        TiedGaussianHMM(2).fit([tmp_path / "a.npy", tmp_path / "b.npy"], client=client)

    np.save(tmp_path / "c.npy", X[:50, :1])
    with pytest.raises(DataFormatError, match=r"c\.npy.*same features"):
        TiedGaussianHMM(2).fit([tmp_path / "a.npy", tmp_path / "c.npy"], client=client)
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(DataFormatError, match=r"d\.csv.*\.npy"):
        TiedGaussianHMM(2).fit([tmp_path / "d.csv"], client=client)


def test_bad_arrays_and_impossible_observations(client):
    X, lengths = sequences(n_seq=4)
    with pytest.raises(ValidationError, match="2-D"):
        TiedGaussianHMM(2).fit(da.from_array(X[:, 0]), client=client)
    with pytest.raises(ValidationError, match="lengths sum to"):
        TiedGaussianHMM(2).fit(da.from_array(X), lengths[:-1], client=client)
    with pytest.raises(ValueError, match="contains inf"):  # in memory: the in-process checks
        TiedGaussianHMM(2).fit(np.r_[X, [[np.inf, 0]]], client=client)

    cat = TiedCategoricalHMM(2, n_features=3, init_params="", random_state=0)
    cat.startprob_ = np.array([1.0, 0.0])
    cat.transmat_ = np.array([[0.5, 0.5], [0.5, 0.5]])
    cat.emissionprob_ = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])  # symbol 2 impossible
    sym = np.zeros((400, 1), dtype=int)
    sym[333] = 2
    with pytest.raises(ImpossibleObservationError, match=r"X rows 200\.\.399.*row 133"):
        cat.score(sym, [100, 100, 100, 100], client=client)


@pytest.mark.slow
def test_import_and_in_process_fit_without_dask():
    code = ("import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
            "import numpy as np; from sciTie.hmm import TiedGaussianHMM\n"
            "X = np.r_[np.zeros(30), np.ones(30)][:, None] + np.linspace(0, .1, 60)[:, None]\n"
            "m = TiedGaussianHMM(2, random_state=0, n_iter=3).fit(X)\n"
            "try:\n    m.fit(X, client=object())\nexcept ImportError as e:\n"
            "    print('hint:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'scitie[dask]'" in out.stdout


def test_partitions_hold_whole_sequences_and_balance_rows():
    rng = np.random.default_rng(11)
    lengths = rng.integers(1, 500, 200)
    boundaries = [0]
    for n in lengths:  # row index where each sequence starts, and the end
        boundaries.append(boundaries[-1] + int(n))
    total = boundaries[-1]
    for n_parts in (1, 2, 7, 50, 200, 500):
        ranges = dist._split_sequences(lengths, n_parts)
        # brute force: the sequence boundary nearest to each equal share (lower on ties)
        cuts = set()
        for k in range(1, min(n_parts, lengths.size)):
            target = total * k / min(n_parts, lengths.size)
            cuts.add(min(range(lengths.size + 1),
                         key=lambda i: (abs(boundaries[i] - target), i)))
        expected = sorted(cuts | {0, lengths.size})
        assert [a for a, _ in ranges] + [ranges[-1][1]] == expected
        assert all(a < b for a, b in ranges)


def test_the_hmm_threads_setting_travels_to_the_workers(monkeypatch):
    """Settings are per process: the E-step task runs under the client's hmm_threads."""
    import sciTie
    from sciTie.hmm import _distributed

    X = np.random.default_rng(0).normal(size=(200, 1))
    model = TiedGaussianHMM(2, n_iter=1, random_state=0).fit(X)
    with sciTie.config_context(hmm_threads=3):
        skeleton = _distributed._shipped(model, with_params=False)
    seen = []
    monkeypatch.setattr(type(model), "_do_estep", lambda self, X, lengths: (
        seen.append(sciTie.get_config()["hmm_threads"]) or
        (self._initialize_sufficient_statistics(), 0.0)))
    part = _distributed.HMMPartition(X=X, lengths=np.array([200]), start=0, first_sequence=0,
                                     origin="rows 0-199")
    assert sciTie.get_config()["hmm_threads"] == 1  # this process: the default
    _distributed._estep(part, skeleton, _distributed._fitted_params(model))
    assert seen == [3]
