"""Covariate-dependent transitions (input-output HMM): E-step, M-step, API, recipes."""
from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import norm

from sciTie.errors import ValidationError
from sciTie.hmm import TiedGaussianHMM, TiedPoissonHMM
from sciTie.hmm._covariates import forward_backward_tv


def _softmax_rows(beta, u):
    """A (K, K) from beta (K, K, P) and one design row u (P,), written directly."""
    eta = beta @ u
    e = np.exp(eta - eta.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _simulate(T=800, seed=0, beta=None):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(T, 1))
    if beta is None:
        beta = np.zeros((2, 2, 2))
        beta[0, 1] = [-2.0, 1.5]
        beta[1, 0] = [-1.5, -1.0]
    z = np.zeros(T, dtype=int)
    for t in range(1, T):
        z[t] = rng.choice(2, p=_softmax_rows(beta, np.r_[1.0, c[t]])[z[t - 1]])
    X = (np.array([-1.0, 1.5])[z] + rng.normal(size=T))[:, None]
    return X, c, z


def _numpy_loglik(startprob, beta, c, frames, lengths):
    """Scaled forward pass, plain numpy, one time step at a time."""
    total, s = 0.0, 0
    for n in lengths:
        alpha = startprob * np.exp(frames[s])
        scale = alpha.sum()
        total += np.log(scale)
        alpha /= scale
        for t in range(s + 1, s + n):
            A = _softmax_rows(beta, np.r_[1.0, c[t]])
            alpha = (alpha @ A) * np.exp(frames[t])
            scale = alpha.sum()
            total += np.log(scale)
            alpha /= scale
        s += n
    return total


def _fit(X, c, **kw):
    settings = dict(n_iter=1000, tol=1e-7, covars_prior=0, random_state=0)
    settings.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TiedGaussianHMM(2, **settings).fit(X, covariates=c)


@pytest.fixture(scope="module")
def data():
    return _simulate()


@pytest.fixture(scope="module")
def fitted(data):
    X, c, _ = data
    return _fit(X, c)


def test_time_varying_forward_matches_plain_numpy():
    rng = np.random.default_rng(3)
    T, K, P = 60, 3, 3
    beta = rng.normal(size=(K, K, P))
    beta[np.arange(K), np.arange(K)] = 0.0
    c = rng.normal(size=(T, P - 1)) * 2
    frames = rng.normal(size=(T, K)) * 3
    startprob = np.array([0.2, 0.5, 0.3])
    lengths = np.array([25, 1, 34])
    ll, post, xi, start = forward_backward_tv(startprob, beta, c, frames, lengths)
    assert ll == pytest.approx(_numpy_loglik(startprob, beta, c, frames, lengths), rel=1e-12)
    # posteriors and expected transitions are consistent: rows sum to 1, ξ marginalises to γ
    assert np.allclose(post.sum(axis=1), 1.0)
    assert np.allclose(xi[1:25].sum(axis=2), post[:24])
    assert np.allclose(xi[1:25].sum(axis=1), post[1:25])
    assert np.all(xi[[0, 25, 26]] == 0)
    assert np.allclose(start, post[[0, 25, 26]].sum(axis=0))


def test_posteriors_and_viterbi_match_brute_force(fitted, data):
    X, c, _ = data
    Xs, cs = X[:7], c[:7]
    frames = norm.logpdf(Xs, fitted.means_[:, 0], np.sqrt(fitted.covars_[:, 0, 0]))
    paths = list(itertools.product(range(2), repeat=7))
    logp = []
    for z in paths:
        lp = np.log(fitted.startprob_[z[0]] + 1e-300) + frames[0, z[0]]
        for t in range(1, 7):
            lp += np.log(_softmax_rows(fitted.beta_, np.r_[1.0, cs[t]])[z[t - 1], z[t]])
            lp += frames[t, z[t]]
        logp.append(lp)
    logp = np.array(logp)
    assert fitted.score(Xs, covariates=cs) == pytest.approx(logsumexp(logp), rel=1e-10)
    assert fitted.predict(Xs, covariates=cs).tolist() == list(paths[int(np.argmax(logp))])
    w = np.exp(logp - logsumexp(logp))
    brute = np.array([[w[[z[t] == k for z in paths]].sum() for k in range(2)]
                      for t in range(7)])
    assert np.allclose(fitted.predict_proba(Xs, covariates=cs), brute, atol=1e-10)


def test_em_is_monotone_and_reaches_direct_maximisation(fitted, data):
    X, c, _ = data
    history = np.array(fitted.monitor_.history)
    assert np.all(np.diff(history) >= -1e-8 * abs(history[-1]))
    assert fitted.n_free_parameters() == 1 + 2 + 2 + 4

    def unpack(theta):
        sp = np.array([1.0, np.exp(theta[0])])
        sp /= sp.sum()
        beta = np.zeros((2, 2, 2))
        beta[0, 1], beta[1, 0] = theta[1:3], theta[3:5]
        return sp, beta, theta[5:7], np.exp(theta[7:9])

    def negll(theta):
        sp, beta, mu, var = unpack(theta)
        frames = norm.logpdf(X, mu, np.sqrt(var))
        try:
            return -forward_backward_tv(sp, beta, c, frames, [len(X)], posteriors=False)[0]
        except ValidationError:
            return np.inf

    rng = np.random.default_rng(1)
    best = np.inf
    for k in range(3):  # several starts: data-driven means, random coefficients
        theta0 = np.r_[0.0, rng.normal(size=4) - [1, 0, 1, 0],
                       np.quantile(X, [0.25, 0.75])[::(1 if k % 2 else -1)], 0.0, 0.0]
        res = minimize(negll, theta0, method="L-BFGS-B", options={"maxiter": 2000,
                                                                  "ftol": 1e-14, "gtol": 1e-8})
        best = min(best, res.fun)
    assert fitted.result_.log_likelihood == pytest.approx(-best, abs=1e-3)
    assert fitted.result_.log_likelihood >= -best - 1e-3


def test_slopes_fixed_at_zero_equal_the_ordinary_fit(data):
    X, c, _ = data
    tied = _fit(X, c, n_init=1, ties=["beta[0,1,1] = 0", "beta[1,0,1] = 0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = TiedGaussianHMM(2, n_iter=1000, tol=1e-7, covars_prior=0, random_state=0,
                                n_init=1).fit(X)
    assert tied.result_.log_likelihood == pytest.approx(plain.result_.log_likelihood, abs=1e-6)
    assert np.allclose(tied.transmat_, plain.transmat_, atol=1e-5)
    assert np.allclose(tied.means_, plain.means_, atol=1e-5)
    assert np.all(tied.beta_[:, :, 1] == 0)
    assert tied.n_free_parameters() == plain.n_free_parameters()


def test_a_tie_between_coefficients_holds_exactly(data):
    X, c, _ = data
    m = _fit(X, c, n_init=1, ties=["beta[0,1,1] = -beta[1,0,1]"])
    assert m.beta_[0, 1, 1] == -m.beta_[1, 0, 1]
    assert m.n_free_parameters() == 8
    assert np.all(np.diff(m.monitor_.history) >= -1e-8 * abs(m.monitor_.history[-1]))
    assert m.beta_[np.arange(2), np.arange(2)].tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_standard_errors_and_report_cover_beta(fitted, data):
    X, c, _ = data
    import copy

    m = copy.deepcopy(fitted)
    result = m.uncertainties(X, covariates=c)
    params = result.parameters()
    assert params["beta[0,1,1]"]["stderr"] > 0
    assert "beta[1,0,1]" in m.report() and "+/-" in m.report()


def test_sample_uses_the_covariates(fitted):
    T = 2000
    big = np.zeros((T, 1))
    big[: T // 2] = 8.0   # strong covariate: one transition direction dominates
    big[T // 2:] = -8.0
    _, z = fitted.sample(T, covariates=big, random_state=0)
    assert z.shape == (T,)
    A_hi = _softmax_rows(fitted.beta_, np.r_[1.0, 8.0])
    A_lo = _softmax_rows(fitted.beta_, np.r_[1.0, -8.0])
    prev, nxt, into = z[:-1], z[1:], big[1:, 0]
    for A, value in ((A_hi, 8.0), (A_lo, -8.0)):
        for i in range(2):
            rows = (prev == i) & (into == value)
            if rows.sum() > 50:
                freq = np.mean(nxt[rows] == i)
                se = np.sqrt(A[i, i] * (1 - A[i, i]) / rows.sum()) + 1e-3
                assert abs(freq - A[i, i]) < 5 * se


def test_poisson_family_fits_with_covariates():
    rng = np.random.default_rng(5)
    _, c, z = _simulate(T=400, seed=5)
    X = rng.poisson(np.array([2.0, 9.0])[z])[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = TiedPoissonHMM(2, n_iter=200, tol=1e-6, random_state=0).fit(X, covariates=c)
    h = np.array(m.monitor_.history)
    assert np.all(np.diff(h) >= -1e-8 * abs(h[-1]))
    assert m.score(X, covariates=c) == pytest.approx(m.result_.log_likelihood, rel=1e-12)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10, 1)), "covariates has 10 rows but X has 800"),
    (np.zeros(800), "covariates must be 2-D"),
    (np.full((800, 1), np.nan), "covariates contains NaN or inf"),
    (np.r_[np.zeros((799, 1)), [[np.inf]]], "covariates contains NaN or inf in rows 799"),
    (np.zeros((800, 2)), "covariates has 2 columns but this model was fitted with 1"),
])
def test_bad_covariates_are_clear_errors(fitted, data, bad, match):
    X, _, _ = data
    with pytest.raises(ValidationError, match=match):
        fitted.score(X, covariates=bad)


def test_covariates_required_or_refused(fitted, data):
    X, c, _ = data
    with pytest.raises(ValidationError, match="pass covariates="):
        fitted.predict(X)
    with pytest.raises(ValidationError, match="pass covariates="):
        fitted.sample(5)
    plain = TiedGaussianHMM(2, n_iter=5, random_state=0).fit(X)
    with pytest.raises(ValidationError, match="fitted without covariates"):
        plain.score(X, covariates=c)
    with pytest.raises(ValidationError, match="covariates has 3 rows"):
        TiedGaussianHMM(2, n_iter=5).fit(X, covariates=c[:3])
    with pytest.raises(ValidationError, match="covariates: the transitions are a function"):
        TiedGaussianHMM(2, tied_transitions=[[0, 1]]).fit(X, covariates=c)


def test_recipe_and_cli_read_covariate_columns(tmp_path, monkeypatch):
    from sciTie.cli import main

    X, c, _ = _simulate(T=300, seed=2)
    np.savetxt(tmp_path / "d.csv", np.c_[X[:, 0], c[:, 0]], header="y,x", comments="",
               delimiter=",", fmt="%.17g")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", "hmm", "--data", "d.csv", "--column", "y", "--family", "gaussian",
                     "--states", "2", "--covariate-column", "x", "--json", "out.json"]) == 0
        api = TiedGaussianHMM(2, n_iter=100, tol=1e-4, random_state=0).fit(X, covariates=c)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["metrics"]["log_likelihood"] == pytest.approx(api.result_.log_likelihood,
                                                             abs=1e-6)
    # (a fit without the covariate would not reach the API's covariate fit's likelihood)


def test_to_xarray_decodes_with_covariates(fitted, data):
    X, c, _ = data
    ds = fitted.to_xarray(X[:50], covariates=c[:50])
    assert ds["viterbi_state"].values.tolist() == fitted.predict(X[:50],
                                                                 covariates=c[:50]).tolist()
    with pytest.raises(ValidationError, match="pass covariates="):
        fitted.to_xarray(X[:50])


def test_logit_objective_value_gradient_hessian():
    """The M-step's objective from the E-step's sums (xi_u, departures) against the direct
    sum of ξ log A, and its gradient and Hessian against central differences."""
    from sciTie.hmm._covariates import design, logit_objective, logit_statistics

    rng = np.random.default_rng(5)
    T, K, C = 60, 3, 2
    P = 1 + C
    c = rng.normal(size=(T, C))
    xi = rng.random((T, K, K))
    xi[[0, 31]] = 0.0  # rows that start a sequence
    idx = np.arange(K * K * P).reshape(K, K, P)
    objective = logit_objective(idx, *logit_statistics(xi, c), c, idx.size)

    def direct(x):
        eta = np.einsum("ijp,tp->tij", x.reshape(K, K, P), design(c))
        return float(np.sum(xi * (eta - logsumexp(eta, axis=2, keepdims=True))))

    x = rng.normal(size=idx.size)
    value, grad, hess = objective(x)
    assert value == pytest.approx(direct(x), rel=1e-13)
    h, eye = 1e-5, np.eye(idx.size)
    fd_grad = [(direct(x + h * e) - direct(x - h * e)) / (2 * h) for e in eye]
    np.testing.assert_allclose(grad, fd_grad, atol=1e-7)
    fd_hess = np.array([(objective(x + h * e)[1] - objective(x - h * e)[1]) / (2 * h)
                        for e in eye])
    np.testing.assert_allclose(np.asarray(hess), fd_hess, atol=1e-7)
