"""Missing observations (NaN in X, issue 23): every number checked against something
written here independently (a log-space forward pass in plain numpy with scipy.stats
marginal densities, finite differences of the observed log-likelihood, the complete-data
fit and its standard errors), plus the Dask path, ties, recipes and the errors."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from sciTie.errors import ValidationError
from sciTie.hmm import (TiedARHMM, TiedCategoricalHMM, TiedGaussianHMM, TiedGMMHMM,
                        TiedPoissonHMM)


# ---------------------------------------------------------------- an independent reference
def forward_loglik(startprob, transmat, log_e, lengths):
    """log p(X): the forward recursion in log space, one sequence at a time."""
    total, start = 0.0, 0
    for n in lengths:
        la = np.log(startprob) + log_e[start]
        for t in range(start + 1, start + n):
            la = logsumexp(la[:, None] + np.log(transmat), axis=0) + log_e[t]
        total += logsumexp(la)
        start += n
    return total


def gaussian_marginals(X, means, covs):
    """log N(x_o | mu_o, Sigma_oo) row by row with scipy (0 where nothing is observed)."""
    out = np.zeros((len(X), len(means)))
    for t, x in enumerate(X):
        o = ~np.isnan(x)
        if o.any():
            for k in range(len(means)):
                out[t, k] = stats.multivariate_normal(means[k][o],
                                                      covs[k][np.ix_(o, o)]).logpdf(x[o])
    return out


def poisson_marginals(X, lambdas):
    out = np.zeros((len(X), len(lambdas)))
    for t, x in enumerate(X):
        o = ~np.isnan(x)
        for k in range(len(lambdas)):
            out[t, k] = stats.poisson(lambdas[k][o]).logpmf(x[o]).sum()
    return out


def categorical_marginals(X, emissionprob):
    out = np.zeros((len(X), len(emissionprob)))
    for t, x in enumerate(X[:, 0]):
        if not np.isnan(x):
            out[t] = np.log(emissionprob[:, int(x)])
    return out


def knock_out(X, fraction, seed):
    """X as float with ``fraction`` of its entries missing at random."""
    X = np.array(X, dtype=float)
    X[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    return X


def _gaussian_model(cov, K=2, D=3):
    m = TiedGaussianHMM(K, covariance_type=cov, init_params="", covars_prior=0)
    m.startprob_ = np.array([0.6, 0.4])
    m.transmat_ = np.array([[0.9, 0.1], [0.25, 0.75]])
    m.means_ = np.array([[0.0, 1.0, -1.0], [2.5, 0.0, 1.5]])
    A = np.array([[1.0, 0.4, 0.1], [0.4, 0.8, -0.2], [0.1, -0.2, 0.6]])
    m.covars_ = {"diag": np.array([[1.0, 0.5, 2.0], [0.7, 1.2, 0.4]]),
                 "spherical": np.array([0.8, 1.4]),
                 "full": np.stack([A, A * 1.5 + 0.2 * np.eye(3)]),
                 "tied": A}[cov]
    return m


SEQUENCES = [120, 1, 60, 40]  # a one-row sequence, and (below) a wholly missing one


def _with_gaps(X):
    X = knock_out(X, 0.25, seed=3)
    X[10] = np.nan          # a row with nothing observed
    X[121] = np.nan         # the one-row sequence: nothing observed at all
    X[181:221] = np.nan     # the last sequence: wholly missing
    return X


# ---------------------------------------------------------------- score = forward in numpy
@pytest.mark.parametrize("cov", ["diag", "spherical", "full", "tied"])
def test_gaussian_score_equals_a_numpy_forward_pass(cov):
    m = _gaussian_model(cov)
    X = _with_gaps(m.sample(sum(SEQUENCES), random_state=0)[0])
    log_e = gaussian_marginals(X, m.means_, m.covars_)
    ref = forward_loglik(m.startprob_, m.transmat_, log_e, SEQUENCES)
    assert m.score(X, SEQUENCES) == pytest.approx(ref, abs=1e-9)
    assert np.allclose(m.score_samples(X, SEQUENCES)[1].sum(axis=1), 1.0)
    # a wholly missing sequence contributes nothing: log p = 0, the chain's own marginals
    parts = [m.score(X[:181], SEQUENCES[:3]), m.score(X[181:], [40])]
    assert parts[1] == pytest.approx(0.0, abs=1e-12)
    assert sum(parts) == pytest.approx(ref, abs=1e-9)
    post = m.predict_proba(X[181:], [40])
    chain = m.startprob_ @ np.linalg.matrix_power(m.transmat_, 39)
    assert post[-1] == pytest.approx(chain, abs=1e-12)


def test_poisson_and_categorical_score_equal_a_numpy_forward_pass():
    p = TiedPoissonHMM(2, init_params="")
    p.startprob_, p.transmat_ = np.array([0.3, 0.7]), np.array([[0.8, 0.2], [0.3, 0.7]])
    p.lambdas_ = np.array([[1.0, 6.0], [5.0, 0.5]])
    X = _with_gaps(p.sample(sum(SEQUENCES), random_state=1)[0])
    ref = forward_loglik(p.startprob_, p.transmat_, poisson_marginals(X, p.lambdas_),
                         SEQUENCES)
    assert p.score(X, SEQUENCES) == pytest.approx(ref, abs=1e-9)

    c = TiedCategoricalHMM(2, init_params="")
    c.startprob_, c.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]])
    c.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    X = _with_gaps(c.sample(sum(SEQUENCES), random_state=2)[0])
    ref = forward_loglik(c.startprob_, c.transmat_, categorical_marginals(X, c.emissionprob_),
                         SEQUENCES)
    assert c.score(X, SEQUENCES) == pytest.approx(ref, abs=1e-9)
    # decoding: a path of the right length; the known rows constrain it as without gaps
    path = c.predict(X, SEQUENCES)
    assert path.shape == (len(X),)


@pytest.mark.parametrize("cov", ["diag", "spherical", "full", "tied"])
def test_gmm_score_and_em_with_gaps(cov):
    from sciTie.hmm._missing import mixture_covariances

    rng = np.random.default_rng(23)
    X = np.r_[rng.normal(0, 1, (150, 2)), rng.normal(4, 0.5, (150, 2)),
              rng.normal([0, 5], 0.7, (150, 2))]
    X = knock_out(X, 0.2, seed=24)
    X[40] = np.nan
    m = TiedGMMHMM(2, n_mix=2, covariance_type=cov, n_iter=60, tol=1e-9, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X)
    _monotone(m)
    covs = mixture_covariances(m)
    log_e = np.zeros((len(X), 2))
    for t, x in enumerate(X):
        o = ~np.isnan(x)
        if o.any():
            for k in range(2):
                log_e[t, k] = logsumexp([np.log(m.weights_[k, j]) + stats.multivariate_normal(
                    m.means_[k, j][o], covs[k, j][np.ix_(o, o)]).logpdf(x[o]) for j in range(2)])
    assert m.score(X) == pytest.approx(forward_loglik(m.startprob_, m.transmat_, log_e,
                                                      [len(X)]), abs=1e-8)
    assert not np.isnan(m.sample(20, random_state=0)[0]).any()


# ---------------------------------------------------------------- EM
def _monotone(model):
    h = np.asarray(model.monitor_.history)
    assert np.all(np.diff(h) >= -1e-8 * np.abs(h[1:])), np.diff(h)


def _gradient_fd(model, X, lengths, attr, step=1e-6):
    """Finite differences of the observed log-likelihood in one array of the model."""
    base = np.array(getattr(model, attr), dtype=float)
    grad = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        vals = []
        for sign in (1, -1):
            arr = base.copy()
            arr[idx] += sign * step
            setattr(model, attr, arr)
            vals.append(model.score(X, lengths))
        grad[idx] = (vals[0] - vals[1]) / (2 * step)
    setattr(model, attr, base)
    return grad


@pytest.mark.parametrize("cov", ["diag", "spherical", "full", "tied"])
def test_em_with_gaps_is_monotone_and_stops_at_a_stationary_point(cov):
    truth = _gaussian_model(cov)
    X = knock_out(truth.sample(800, random_state=4)[0], 0.2, seed=5)
    m = TiedGaussianHMM(2, covariance_type=cov, covars_prior=0, n_iter=500, tol=1e-10,
                        random_state=0).fit(X)
    _monotone(m)
    assert m.result_.log_likelihood == pytest.approx(m.score(X), abs=1e-9)
    # at EM's fixed point the observed log-likelihood is stationary in the means
    # (per-feature occupancies, conditional expectations for full/tied covariances)
    grad = _gradient_fd(m, X, None, "means_")
    assert np.max(np.abs(grad)) < 1e-3, grad
    assert not np.isnan(m.sample(50, random_state=0)[0]).any()


def test_poisson_and_categorical_em_with_gaps_reach_stationary_points():
    p0 = TiedPoissonHMM(2, init_params="")
    p0.startprob_, p0.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]])
    p0.lambdas_ = np.array([[1.0, 6.0], [5.0, 0.5]])
    X = knock_out(p0.sample(600, random_state=6)[0], 0.2, seed=7)
    p = TiedPoissonHMM(2, n_iter=500, tol=1e-10, random_state=0).fit(X)
    _monotone(p)
    assert np.max(np.abs(_gradient_fd(p, X, None, "lambdas_"))) < 1e-3
    # the analytic score with per-feature occupancies equals the finite differences
    tm = p.group_.tie_map()
    g = p.loglik_gradient(X)[np.asarray(tm.select("lambdas"))]
    p.lambdas_ = p.lambdas_ * 1.1
    g = p.loglik_gradient(X)[np.asarray(tm.select("lambdas"))]
    assert g == pytest.approx(_gradient_fd(p, X, None, "lambdas_"), rel=1e-5, abs=1e-5)

    c0 = TiedCategoricalHMM(2, init_params="")
    c0.startprob_, c0.transmat_ = np.array([0.5, 0.5]), np.array([[0.95, 0.05], [0.05, 0.95]])
    c0.emissionprob_ = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    X = knock_out(c0.sample(600, random_state=8)[0], 0.2, seed=9)
    # (hmmlearn's random start with seed 0 or 2 stops in a symmetric saddle, with or
    # without gaps; seed 1 finds the states)
    c = TiedCategoricalHMM(2, n_iter=500, tol=1e-10, random_state=1).fit(X)
    _monotone(c)
    assert c.score(X) >= c0.score(X)
    assert sorted(np.round(c.emissionprob_[:, 0], 1)) == pytest.approx([0.1, 0.8], abs=0.11)
    # the maximum of the observed likelihood: stationary along any direction that keeps the
    # rows summing to one
    base = c.emissionprob_.copy()
    for k in range(2):
        vals = []
        for sign in (1, -1):
            e = base.copy()
            e[k, 0] += sign * 1e-6
            e[k, 2] -= sign * 1e-6
            c.emissionprob_ = e
            vals.append(c.score(X))
        assert abs(vals[0] - vals[1]) / 2e-6 < 1e-2


def test_diagonal_gradient_with_gaps_equals_finite_differences():
    m = _gaussian_model("diag")
    X = knock_out(m.sample(300, random_state=10)[0], 0.3, seed=11)
    m.fit(np.nan_to_num(X))  # any fitted model (group_), then parameters off the optimum
    m.means_ = m.means_ + 0.3
    tm = m.group_.tie_map()
    g = m.loglik_gradient(X)[np.asarray(tm.select("means"))].reshape(m.means_.shape)
    assert g == pytest.approx(_gradient_fd(m, X, None, "means_"), rel=1e-5, abs=1e-5)


@pytest.mark.filterwarnings("ignore::sciTie.errors.ConvergenceWarning")
def test_twenty_percent_missing_agrees_with_the_complete_fit_within_standard_errors():
    truth = TiedGaussianHMM(2, init_params="")
    truth.startprob_ = np.array([0.5, 0.5])
    truth.transmat_ = np.array([[0.95, 0.05], [0.05, 0.95]])
    truth.means_ = np.array([[0.0, 2.0], [3.0, -1.0]])
    truth.covars_ = np.array([[1.0, 0.5], [0.8, 1.5]])
    X = truth.sample(1500, random_state=12)[0]
    Xm = knock_out(X, 0.2, seed=13)
    kw = dict(covars_prior=0, n_iter=300, tol=1e-8, random_state=0)
    full = TiedGaussianHMM(2, **kw).fit(X)
    gap = TiedGaussianHMM(2, **kw).fit(Xm)
    order_f, order_g = np.argsort(full.means_[:, 0]), np.argsort(gap.means_[:, 0])
    u = gap.uncertainties(Xm)
    se = {n: v for n, v in zip(gap.group_.free_names, u.stderr) if n[:5] in ("means", "covar")}
    assert all(np.isfinite(v) and v > 0 for v in se.values())
    for kf, kg in zip(order_f, order_g):
        for d in range(2):
            for name, a, b in (("means", full.means_, gap.means_),
                               ("covars", full._covars_, gap._covars_)):
                s = se[f"{name}[{kg},{d}]"]
                assert abs(a[kf, d] - b[kg, d]) < 2.5 * s, (name, kg, d, a[kf, d], b[kg, d], s)


def test_ties_hold_exactly_with_gaps():
    truth = TiedGaussianHMM(3, init_params="")
    truth.startprob_ = np.full(3, 1 / 3)
    truth.transmat_ = np.full((3, 3), 0.05) + np.eye(3) * 0.85
    truth.means_ = np.array([[0.0, 1.0], [2.0, 2.0], [4.0, 3.0]])
    truth.covars_ = np.array([[0.5, 0.8], [0.5, 0.8], [0.9, 0.3]])
    X = knock_out(truth.sample(900, random_state=14)[0], 0.2, seed=15)
    ties = ["covars[1] = covars[0]", "means[2] = 2 * means[1] - means[0]"]
    m = TiedGaussianHMM(3, ties=ties, covars_prior=0, n_iter=200, tol=1e-9, n_init=3,
                        random_state=0).fit(X)
    _monotone(m)
    assert np.array_equal(m.covars_[1], m.covars_[0])
    assert m.means_[2] == pytest.approx(2 * m.means_[1] - m.means_[0], abs=1e-12)
    # the tied M-step reached the maximum under the ties: stationary in the free means
    # (the mean ladder moves means[0] and means[1], and means[2] with them)
    base = m.means_.copy()
    for k, d in [(0, 0), (1, 1)]:
        vals = []
        for sign in (1, -1):
            mu = base.copy()
            mu[k, d] += sign * 1e-6
            mu[2] = 2 * mu[1] - mu[0]
            m.means_ = mu
            vals.append(m.score(X))
        assert abs(vals[0] - vals[1]) / 2e-6 < 1e-3
    m.means_ = base
    # whole states tied (pooled statistics) keep their equality too
    p = TiedGaussianHMM(3, tied_states=[[0, 1], [2]], n_iter=50, random_state=0).fit(X)
    assert np.array_equal(p.means_[0], p.means_[1])
    assert np.array_equal(p.covars_[0], p.covars_[1])
    _monotone(p)


def test_complete_data_take_the_fused_path():
    from sciTie.hmm._forward_backward import DiagonalGaussian

    # no NaN: the fused compiled E-step (emissions evaluated inside the pass); a NaN: the
    # table of the observed entries' densities
    m = _gaussian_model("diag")
    X = m.sample(400, random_state=16)[0]
    lengths = np.array([400])
    assert isinstance(m._emissions(X, lengths), DiagonalGaussian)
    Xn = X.copy()
    Xn[5, 1] = np.nan
    table = m._emissions(Xn, lengths)
    assert isinstance(table, np.ndarray) and table.shape == (400, 2)
    assert m.score(Xn) == pytest.approx(forward_loglik(
        m.startprob_, m.transmat_, gaussian_marginals(Xn, m.means_, m.covars_), [400]),
        abs=1e-9)


# ---------------------------------------------------------------- errors
def test_what_cannot_be_missing_is_named():
    X = np.random.default_rng(0).normal(size=(60, 2))
    X[3, 0] = np.nan
    with pytest.raises(ValidationError, match=r"X contains NaN .* rows 3.*TiedARHMM does not "
                                              r"support missing.*lag"):
        TiedARHMM(2, order=1).fit(X)
    X[:, 1] = np.nan
    with pytest.raises(ValidationError, match="feature 1 is missing .* in every row"):
        TiedGaussianHMM(2).fit(X)
    X[:, 1] = 0.0
    X[7, 1] = np.inf
    with pytest.raises(ValidationError, match="X contains inf in rows 7"):
        TiedGaussianHMM(2).fit(X)
    with pytest.raises(ValidationError, match="non-integer"):
        TiedPoissonHMM(2).fit(np.array([[1.0], [np.nan], [2.5]]))


# ---------------------------------------------------------------- recipes and the CLI
def test_a_csv_with_empty_cells_fits_as_missing(tmp_path, monkeypatch, capsys):
    from sciTie.cli import main

    m = _gaussian_model("diag")
    X = knock_out(m.sample(300, random_state=17)[0][:, :2], 0.15, seed=18)
    lines = ["a,b"] + [",".join("" if np.isnan(v) else repr(float(v)) for v in row)
                       for row in X]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", "hmm", "--data", "d.csv", "--column", "a", "--column", "b",
                     "--family", "gaussian", "--states", "2", "--json", "out.json"]) == 0
        api = TiedGaussianHMM(2, n_iter=100, tol=1e-4, random_state=0).fit(X)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["metrics"]["log_likelihood"] == pytest.approx(api.result_.log_likelihood,
                                                             abs=1e-6)
    # an infinity is still refused, with its file and line
    (tmp_path / "e.csv").write_text("a,b\n1,2\ninf,3\n")
    capsys.readouterr()
    assert main(["fit", "hmm", "--data", "e.csv", "--column", "a", "--column", "b",
                 "--family", "gaussian", "--states", "2"]) != 0
    assert "e.csv:3 [a]: 'inf' is not finite" in capsys.readouterr().err


# ---------------------------------------------------------------- the Dask path
@pytest.mark.parametrize("cov", ["diag", "full"])
def test_dask_fit_with_gaps_equals_in_process(dask_client, cov):
    rng = np.random.default_rng(19)
    lengths = rng.integers(40, 90, 12)
    X = np.concatenate([np.r_[rng.normal(0, 1, (n // 2, 2)), rng.normal(3, 0.7, (n - n // 2, 2))]
                        for n in lengths])
    X = knock_out(X, 0.2, seed=20)
    X[:lengths[0]] = np.nan  # a wholly missing sequence in the first partition
    kw = dict(n_components=2, covariance_type=cov, random_state=0, n_iter=30, tol=1e-6,
              n_init=1)
    ref = TiedGaussianHMM(**kw).fit(X, lengths)
    ours = TiedGaussianHMM(**kw).fit(X, lengths, client=dask_client)
    assert ours.monitor_.iter == ref.monitor_.iter
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.covars_, ref.covars_, rtol=1e-9, atol=1e-12)
    assert ours.score(X, lengths, client=dask_client) == pytest.approx(ref.score(X, lengths),
                                                                       rel=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X, lengths, client=dask_client).compute(),
                               ref.predict_proba(X, lengths), atol=1e-10)


def test_known_states_on_dask_equal_in_process(dask_client):
    rng = np.random.default_rng(21)
    lengths = rng.integers(50, 100, 10)
    z = np.concatenate([np.repeat([0, 1], [n // 2, n - n // 2]) for n in lengths])
    X = np.where(z == 0, rng.normal(0, 1, z.size), rng.normal(1.2, 0.8, z.size))[:, None]
    X = knock_out(X, 0.1, seed=22)
    known = np.where(rng.random(z.size) < 0.2, z, -1)
    kw = dict(n_components=2, random_state=0, n_iter=40, tol=1e-8, n_init=1, covars_prior=0)
    ref = TiedGaussianHMM(**kw).fit(X, lengths, known_states=known)
    ours = TiedGaussianHMM(**kw).fit(X, lengths, known_states=known, client=dask_client)
    assert ours.monitor_.iter == ref.monitor_.iter
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-9)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, rtol=1e-9)
    assert ours.score(X, lengths, known_states=known, client=dask_client) == pytest.approx(
        ref.score(X, lengths, known_states=known), rel=1e-12)
    path = ours.predict(X, lengths, known_states=known, client=dask_client).compute()
    assert np.array_equal(path, ref.predict(X, lengths, known_states=known))
    assert np.array_equal(path[known >= 0], known[known >= 0])
    with pytest.raises(ValidationError, match="known_states has 5 entries"):
        ours.score(X, lengths, known_states=known[:5], client=dask_client)


def test_a_state_that_never_sees_a_feature_is_defined_or_named():
    # feature 1 is missing whenever the chain is in its first state: that state's feature-1
    # parameters rest on (almost) no data
    rng = np.random.default_rng(25)
    z = np.repeat([0, 1, 0, 1], 100)
    X = np.c_[np.where(z == 0, rng.normal(0, 1, 400), rng.normal(5, 1, 400)),
              rng.normal(2, 1, 400)]
    X[z == 0, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = TiedGaussianHMM(2, n_iter=50, random_state=0).fit(X)  # covars_prior=1e-2
    assert np.all(np.isfinite(m.means_)) and np.all(np.isfinite(m.covars_))
    assert np.isfinite(m.score(X))
    # without a prior its variance collapses (the likelihood is unbounded there): named
    with pytest.raises(ValidationError, match="variance of state"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TiedGaussianHMM(2, n_iter=200, tol=1e-10, covars_prior=0, random_state=0).fit(X)
