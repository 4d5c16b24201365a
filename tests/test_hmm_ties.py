"""Any tie on any HMM parameter (``ties=``): the M-step is the exact argmax of Q under the ties.

Independent checks: scipy's maximisation of the expected complete-data log-likelihood Q written
out by hand from hmmlearn's own log-space posteriors; scipy's maximisation of the observed
log-likelihood (hmmlearn's scorer) from several starts; hmmlearn's ``covariance_type='tied'``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hmmlearn import _hmmc, hmm
from scipy import optimize, special, stats

from sciTie import ParameterGroup
from sciTie.errors import IdentifiabilityWarning, ValidationError
from sciTie.hmm import TiedCategoricalHMM, TiedGaussianHMM, TiedGMMHMM, TiedPoissonHMM

START = np.array([0.5, 0.3, 0.2])
TRANS = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        yield


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(3)
    return np.r_[rng.normal(1.0, 0.4, 80), rng.normal(2.1, 0.6, 60), rng.normal(2.9, 0.9, 70),
                 rng.normal(1.1, 0.5, 50)]


def _gamma(logB, start=START, trans=TRANS):
    """Posteriors from hmmlearn's log-space kernels (an E-step independent of ours)."""
    _, fwd = _hmmc.forward_log(start, trans, logB)
    bwd = _hmmc.backward_log(start, trans, logB)
    g = fwd + bwd
    return np.exp(g - special.logsumexp(g, axis=1, keepdims=True))


# Each case: ties, a hand-written parametrisation theta -> (means, variances) and a start.
GAUSS_CASES = {
    "means shared, variances free": (
        ["means[2] = means[1]"],
        lambda th: (np.array([th[0], th[1], th[1]]), np.exp(th[2:5])),
        [0.9, 2.0, np.log(0.3), np.log(0.5), np.log(0.7)]),
    "one variance": (
        ["covars[1] = covars[0]", "covars[2] = covars[0]"],
        lambda th: (np.array(th[:3]), np.full(3, np.exp(th[3]))),
        [0.9, 2.0, 3.1, np.log(0.5)]),
    "copy-number ladder": (
        ["means[0] = 0.5 * means[1]", "means[2] = 1.5 * means[1]"],
        lambda th: (np.array([0.5 * th[0], th[0], 1.5 * th[0]]), np.exp(th[1:4])),
        [2.0, np.log(0.3), np.log(0.5), np.log(0.7)]),
    "offset by a new parameter": (
        ["means[2] = means[1] + delta"],
        lambda th: (np.array([th[0], th[1], th[1] + th[2]]), np.exp(th[3:6])),
        [0.9, 2.0, 1.1, np.log(0.3), np.log(0.5), np.log(0.7)]),
    "variance proportional to the level": (
        ["covars[2] = phi * means[2]"],
        lambda th: (np.array(th[:3]), np.array([np.exp(th[3]), np.exp(th[4]),
                                                np.exp(th[5]) * th[2]])),
        [0.9, 2.0, 3.1, np.log(0.3), np.log(0.5), np.log(0.7 / 3.1)]),
}


@pytest.mark.parametrize("case", list(GAUSS_CASES))
def test_gaussian_mstep_is_the_argmax_of_q(x, case):
    ties, unpack, th0 = GAUSS_CASES[case]
    mu0, var0 = unpack(th0)
    m = TiedGaussianHMM(3, init_params="", params="mc", n_iter=1, covars_prior=0.0, ties=ties)
    m.startprob_, m.transmat_ = START, TRANS
    m.means_, m.covars_ = mu0[:, None].copy(), var0[:, None].copy()
    gamma = _gamma(stats.norm.logpdf(x[:, None], mu0, np.sqrt(var0)))
    m.fit(x[:, None])
    assert m._plan.emissions == "general"

    def q(mu, var):
        return float(np.sum(gamma * stats.norm.logpdf(x[:, None], mu, np.sqrt(var))))

    def neg_q(th):
        mu, var = unpack(th)
        return 1e300 if np.any(var <= 0) else -q(mu, var)

    ref = optimize.minimize(neg_q, np.full(len(th0), 0.5), method="BFGS",
                            options={"gtol": 1e-12, "maxiter": 10_000})
    mu_ref, var_ref = unpack(ref.x)
    q_ours = q(m.means_.ravel(), m.covars_.ravel())
    # our maximum is at least as high as scipy's (to 1e-12 relative) ...
    assert q_ours >= -ref.fun - 1e-12 * abs(ref.fun)
    assert q_ours == pytest.approx(-ref.fun, rel=1e-12)
    # ... and the parameters agree to the precision scipy locates a flat maximum with
    np.testing.assert_allclose(m.means_.ravel(), mu_ref, rtol=1e-6)
    np.testing.assert_allclose(m.covars_.ravel(), var_ref, rtol=1e-6)


def test_shared_mean_is_precision_weighted_not_pooled(x):
    """The issue's point: pooling Gᵀs is not the maximum-likelihood step for partial ties."""
    ties, unpack, th0 = GAUSS_CASES["means shared, variances free"]
    mu0, var0 = unpack(th0)
    m = TiedGaussianHMM(3, init_params="", params="m", n_iter=1, covars_prior=0.0, ties=ties)
    m.startprob_, m.transmat_ = START, TRANS
    m.means_, m.covars_ = mu0[:, None].copy(), var0[:, None].copy()
    gamma = _gamma(stats.norm.logpdf(x[:, None], mu0, np.sqrt(var0)))
    m.fit(x[:, None])
    n1, n2 = gamma[:, 1].sum(), gamma[:, 2].sum()
    s1, s2 = gamma[:, 1] @ x, gamma[:, 2] @ x
    weighted = (s1 / var0[1] + s2 / var0[2]) / (n1 / var0[1] + n2 / var0[2])
    pooled = (s1 + s2) / (n1 + n2)
    assert m.means_[1, 0] == pytest.approx(weighted, rel=1e-12)
    assert abs(weighted - pooled) > 1e-3


def test_poisson_scaled_rate_is_the_argmax_of_q():
    rng = np.random.default_rng(4)
    X = np.r_[rng.poisson(2, 60), rng.poisson(5, 50), rng.poisson(12, 40)][:, None]
    m = TiedPoissonHMM(3, init_params="", params="l", n_iter=1,
                       ties=["lambdas[1] = 2.5 * lambdas[0]"])
    lam0 = np.array([2.2, 5.5, 11.0])
    m.startprob_, m.transmat_, m.lambdas_ = START, TRANS, lam0[:, None].copy()
    gamma = _gamma(stats.poisson.logpmf(X, lam0))
    m.fit(X)
    # closed form by hand: d/dl [ (S0 + S1) log l - (N0 + 2.5 N1) l ] = 0
    S = gamma.T @ X[:, 0]
    N = gamma.sum(axis=0)
    assert m.lambdas_[0, 0] == pytest.approx((S[0] + S[1]) / (N[0] + 2.5 * N[1]), rel=1e-12)
    assert m.lambdas_[1, 0] == pytest.approx(2.5 * m.lambdas_[0, 0], rel=1e-15)
    assert m.lambdas_[2, 0] == pytest.approx(S[2] / N[2], rel=1e-12)


def test_tied_transition_entries_are_the_argmax_of_q():
    """A tie across rows of the transition matrix: maximise Σ n_ij log a_ij directly."""
    rng = np.random.default_rng(8)
    X = np.r_[rng.normal(0, 1, 70), rng.normal(3, 1, 50), rng.normal(0, 1, 60)][:, None]
    m = TiedGaussianHMM(2, init_params="", params="t", n_iter=1,
                        ties=["transmat[1,0] = 2 * transmat[0,1]"])
    A0 = np.array([[0.9, 0.1], [0.2, 0.8]])
    m.startprob_, m.transmat_ = np.array([0.5, 0.5]), A0
    m.means_, m.covars_ = np.array([[0.0], [3.0]]), np.ones((2, 1))
    logB = stats.norm.logpdf(X, [0.0, 3.0], 1.0)
    _, fwd = _hmmc.forward_log(np.array([0.5, 0.5]), A0, logB)
    bwd = _hmmc.backward_log(np.array([0.5, 0.5]), A0, logB)
    xi = np.exp(_hmmc.compute_log_xi_sum(fwd, A0, bwd, logB))
    m.fit(X)

    def neg_q(u):
        p = special.expit(u[0]) / 2  # a_01 in (0, 1/2) so that a_10 = 2 a_01 < 1
        A = np.array([[1 - p, p], [2 * p, 1 - 2 * p]])
        return -np.sum(xi * np.log(A))

    ref = optimize.minimize_scalar(lambda u: neg_q([u]), bounds=(-20, 20), method="bounded",
                                   options={"xatol": 1e-12})
    p = special.expit(ref.x) / 2
    assert m.transmat_[0, 1] == pytest.approx(p, rel=1e-7)
    assert m.transmat_[1, 0] == pytest.approx(2 * m.transmat_[0, 1], rel=1e-15)
    np.testing.assert_allclose(m.transmat_.sum(axis=1), 1.0, rtol=1e-15)


def test_whole_row_tie_is_the_pooled_closed_form_from_a_far_start():
    """``transmat[1] = transmat[0]``: Q's argmax is the pooled counts (xi[0] + xi[1]) row
    normalised, and the free start distribution its posterior at t = 0 (hmmlearn's log-space
    kernels give both), from a start that puts 1e-14 on the state the first observation
    belongs to (its maximiser is near 1)."""
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(6, 0.5, 40), rng.normal(0, 0.5, 60), rng.normal(3, 0.5, 50),
              rng.normal(0, 0.5, 40)][:, None]
    start = np.array([1 - 2e-14, 1e-14, 1e-14])
    A0 = np.array([[0.8, 0.15, 0.05], [0.8, 0.15, 0.05], [0.1, 0.1, 0.8]])
    mu, var = np.array([0.0, 3.0, 6.0]), np.full(3, 0.25)
    m = TiedGaussianHMM(3, init_params="", params="st", n_iter=1,
                        ties=["transmat[1] = transmat[0]"])
    m.startprob_, m.transmat_ = start, A0
    m.means_, m.covars_ = mu[:, None], var[:, None]
    m.fit(X)
    logB = stats.norm.logpdf(X, mu, np.sqrt(var))
    _, fwd = _hmmc.forward_log(start, A0, logB)
    bwd = _hmmc.backward_log(start, A0, logB)
    xi = np.exp(_hmmc.compute_log_xi_sum(fwd, A0, bwd, logB))
    pooled = (xi[0] + xi[1]) / (xi[0] + xi[1]).sum()
    np.testing.assert_allclose(m.transmat_[0], pooled, rtol=1e-9)
    np.testing.assert_allclose(m.transmat_[1], m.transmat_[0], rtol=1e-15)
    np.testing.assert_allclose(m.transmat_[2], xi[2] / xi[2].sum(), rtol=1e-9)
    np.testing.assert_allclose(m.startprob_, _gamma(logB, start, A0)[0], rtol=1e-9, atol=1e-15)


def test_all_covariances_tied_equals_hmmlearn_tied_covariance():
    rng = np.random.default_rng(11)
    X = np.r_[rng.multivariate_normal([0, 0], [[1, .3], [.3, .5]], 120),
              rng.multivariate_normal([3, 1], [[1, .3], [.3, .5]], 100)]
    kw = dict(init_params="", n_iter=15, tol=-np.inf, covars_prior=0.0)
    ref = hmm.GaussianHMM(3, covariance_type="tied", **kw)
    ours = TiedGaussianHMM(3, covariance_type="full",
                           ties=["covars[1] = covars[0]", "covars[2] = covars[0]"], **kw)
    means = np.array([[0.2, 0.1], [2.5, 1.2], [1.0, 0.5]])
    cov = np.array([[1.2, 0.2], [0.2, 0.8]])
    for mdl in (ref, ours):
        mdl.startprob_, mdl.transmat_ = START, TRANS
        mdl.means_ = means.copy()
    ref.covars_ = cov.copy()
    ours.covars_ = np.stack([cov] * 3)
    ref.fit(X)
    ours.fit(X)
    assert ours._plan.emissions == "general"
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-8)
    np.testing.assert_allclose(ours.covars_[0], ref.covars_[0], rtol=1e-8)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, rtol=1e-8, atol=1e-14)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-10)
    assert ours.n_free_parameters() == 2 + 6 + 6 + 3


PACK = {  # fitted model -> the case's theta (to start scipy at EM's answer as well)
    "means shared, variances free": lambda m: [m.means_[0, 0], m.means_[1, 0],
                                               *np.log(m.covars_.ravel())],
    "copy-number ladder": lambda m: [m.means_[1, 0], *np.log(m.covars_.ravel())],
    "variance proportional to the level": lambda m: [
        *m.means_.ravel(), np.log(m._covars_[0, 0]), np.log(m._covars_[1, 0]),
        np.log(m._covars_[2, 0] / m.means_[2, 0])],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(PACK))
def test_em_is_monotone_and_reaches_the_observed_likelihood_maximum(x, case):
    """EM from several starts vs scipy on the observed log-likelihood of the tied model."""
    ties, unpack, th0 = GAUSS_CASES[case]
    X = x[:, None]
    best = None
    for seed in range(3):
        jitter = np.random.default_rng(seed).normal(0, 0.1, len(th0))
        mu0, var0 = unpack(np.asarray(th0) + jitter)
        m = TiedGaussianHMM(3, init_params="", n_iter=2000, tol=1e-11, covars_prior=0.0,
                            ties=ties)
        m.startprob_, m.transmat_ = START, TRANS
        m.means_, m.covars_ = mu0[:, None].copy(), var0[:, None].copy()
        m.fit(X)
        h = np.asarray(m.monitor_.history)
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), "EM decreased the likelihood"
        if best is None or m.score(X) > best.score(X):
            best = m
    n_mean = len(th0)
    peer = hmm.GaussianHMM(3, init_params="", covars_prior=0.0)

    def neg_loglik(th):  # emissions by the case's map, start/transitions by softmax
        mu, var = unpack(th[:n_mean])
        if np.any(var <= 0) or not np.all(np.isfinite(var)):
            return 1e300
        peer.startprob_ = special.softmax(np.r_[0.0, th[n_mean:n_mean + 2]])
        peer.transmat_ = special.softmax(np.c_[np.zeros(3), th[n_mean + 2:].reshape(3, 2)],
                                         axis=1)
        peer.means_, peer.covars_ = mu[:, None], var[:, None]
        return -peer.score(X)

    def transitions(start, trans):
        return [*np.log(start[1:] / start[0]), *np.log(trans[:, 1:] / trans[:, :1]).ravel()]

    starts = [np.r_[th0, transitions(START, TRANS)],
              np.r_[PACK[case](best), transitions(best.startprob_, best.transmat_)]]
    found = []
    for th_start in starts:
        ref = optimize.minimize(neg_loglik, th_start, method="BFGS",
                                options={"gtol": 1e-9, "maxiter": 20_000})
        ref = optimize.minimize(neg_loglik, ref.x, method="Nelder-Mead",
                                options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40_000})
        found.append(-ref.fun)
    # scipy finds nothing higher than EM's optimum, from its own start or from EM's answer
    assert best.score(X) >= max(found) - 1e-6
    assert best.score(X) == pytest.approx(max(found), abs=1e-6)


def test_user_group_and_shorthands_build_the_same_tie_matrix():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(3, 1, (60, 2))]
    kw = dict(n_iter=3, random_state=0)
    a = TiedGaussianHMM(3, tied_states=[[0, 2], [1]], tied_transitions=[[0, 2]], **kw).fit(X)
    b = TiedGaussianHMM(3, ties=["means[2] = means[0]", "covars[2] = covars[0]",
                                 "transmat[2,2] = transmat[0,0]"], **kw).fit(X)
    g = ParameterGroup("mine")
    g.add("means", np.zeros((3, 2)))
    g.add("covars", np.ones((3, 2)), min=0)
    g.apply_ties(["means[2] = means[0]", "covars[2] = covars[0]"])
    c = TiedGaussianHMM(3, ties=g, tied_transitions=[[0, 2]], **kw).fit(X)
    def affine_space(model):
        """The set {G x + offset}, whatever free parameters span it: the projector onto
        G's columns and the offset (which row entry is the dependent one of a probability
        row follows the start, so G itself may differ)."""
        tm = model.group_.tie_map()
        order = np.argsort(tm.names)  # slots by name: a user's group may list them otherwise
        G = tm.matrix().toarray()[order]
        return G @ np.linalg.pinv(G), tm.evaluate(np.zeros(tm.n_free))[order]

    Pa, oa = affine_space(a)
    for other in (b, c):
        assert other.group_.n_free == a.group_.n_free
        assert sorted(other.group_.slot_names) == sorted(a.group_.slot_names)
        P, o = affine_space(other)
        np.testing.assert_allclose(P, Pa, atol=1e-12)
        np.testing.assert_allclose(Pa @ (o - oa), o - oa, atol=1e-12)
        assert other._plan.emissions == a._plan.emissions == "pooled"
    # statements and shorthands start alike; the group's own values (zeros) start c
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-10)
    assert a.n_free_parameters() == a.result_.nvarys == a.group_.n_free


def test_structural_zeros_stay_zero_under_general_transition_ties():
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(0, 1, 100), rng.normal(2, 1, 100), rng.normal(4, 1, 100)][:, None]
    A0 = np.array([[0.9, 0.1, 0.0], [0.05, 0.9, 0.05], [0.0, 0.1, 0.9]])
    m = TiedGaussianHMM(3, init_params="mc", n_iter=20, random_state=0,
                        ties=["transmat[2,2] = transmat[0,0]"])
    m.startprob_, m.transmat_ = np.array([1.0, 0.0, 0.0]), A0
    m.fit(X)
    assert m._plan.transitions == "general"
    assert m.transmat_[0, 2] == 0 and m.transmat_[2, 0] == 0 and m.startprob_[1] == 0
    assert m.transmat_[2, 2] == pytest.approx(m.transmat_[0, 0], rel=1e-15)
    assert np.all(np.diff(m.monitor_.history) > -1e-8)


def test_uncertainties_of_a_general_tie_propagate_through_g(x):
    ties, unpack, th0 = GAUSS_CASES["offset by a new parameter"]
    mu0, var0 = unpack(th0)
    m = TiedGaussianHMM(3, init_params="", n_iter=500, tol=1e-8, covars_prior=0.0, ties=ties)
    m.startprob_, m.transmat_ = START, TRANS
    m.means_, m.covars_ = mu0[:, None].copy(), var0[:, None].copy()
    m.fit(x[:, None])
    u = m.uncertainties(x[:, None])
    cov = u.covar
    names = u.free_names
    i, j = names.index("means[1,0]"), names.index("delta")
    # means[2] = means[1] + delta: var = var(m1) + var(delta) + 2 cov
    expected = cov[i, i] + cov[j, j] + 2 * cov[i, j]
    assert u.error("means[2,0]") == pytest.approx(np.sqrt(expected), rel=1e-12)
    assert "delta" in m.report()


def test_collapsed_state_warns_and_names_the_parameters():
    rng = np.random.default_rng(2)
    X = rng.normal(0, 1, (200, 1))
    m = TiedGaussianHMM(2, init_params="", n_iter=5, params="stmc")
    m.startprob_ = np.array([1.0, 0.0])
    m.transmat_ = np.array([[1.0, 0.0], [0.5, 0.5]])  # state 1 is never reached
    m.means_, m.covars_ = np.array([[0.0], [5.0]]), np.ones((2, 1))
    m.fit(X)
    with pytest.warns(IdentifiabilityWarning, match=r"means\[1,0\]"):
        u = m.uncertainties(X)
    assert u.covar is None and np.all(np.isnan(u.stderr))


@pytest.mark.parametrize("ties, match", [
    (["mean[1] = means[0]"], "mean"),
    (["means[1] = means[0] + 'a'"], "not allowed"),
    (3, "ties must be"),
    ([3], "statements"),
    (["means[1] = transmat[0,0]"], "both transition and emission"),
    (["transmat[0,0] = transmat[0,1]", "transmat[0,1] = transmat[0,0]"], "cycle|already"),
])
def test_bad_ties_name_the_problem(ties, match):
    X = np.random.default_rng(0).normal(size=(40, 1))
    with pytest.raises((ValidationError, ValueError), match=match):
        TiedGaussianHMM(2, ties=ties, n_iter=2, random_state=0).fit(X)


def test_gmm_partial_tie_is_the_argmax_of_q():
    """Component means shared between two states, weights and variances free: one M-step
    against scipy's maximisation of Q written out from hmmlearn's posteriors."""
    rng = np.random.default_rng(9)
    x = np.r_[rng.normal(-1, 0.5, 60), rng.normal(1.5, 0.8, 60), rng.normal(5, 1, 60),
              rng.normal(-0.8, 0.9, 40)]
    w0 = np.array([[0.5, 0.5], [0.3, 0.7], [0.6, 0.4]])
    mu0 = np.array([[-0.5, 1.0], [-0.5, 1.0], [4.0, 6.0]])
    var0 = np.array([[1.0, 1.0], [0.6, 1.4], [1.5, 1.5]])
    m = TiedGMMHMM(3, n_mix=2, n_iter=1, init_params="", params="wmc",
                   ties=["means[1] = means[0]"])
    m.startprob_, m.transmat_ = START, TRANS
    m.weights_, m.means_, m.covars_ = w0.copy(), mu0[..., None].copy(), var0[..., None].copy()
    comp = stats.norm.logpdf(x[:, None, None], mu0[None], np.sqrt(var0)[None]) + np.log(w0)[None]
    logB = special.logsumexp(comp, axis=2)
    gamma = _gamma(logB)
    resp = np.exp(comp - logB[:, :, None])  # component responsibilities at the old parameters
    weight = gamma[:, :, None] * resp
    m.fit(x[:, None])
    assert m._plan.emissions == "general"

    def unpack(th):
        w = special.softmax(np.c_[np.zeros(3), th[:3]], axis=1)
        mu = np.array([th[3:5], th[3:5], th[5:7]])
        return w, mu, np.exp(th[7:13]).reshape(3, 2)

    def neg_q(th):
        w, mu, var = unpack(th)
        return -np.sum(weight * (np.log(w)[None] + stats.norm.logpdf(x[:, None, None], mu[None],
                                                                       np.sqrt(var)[None])))

    th0 = np.r_[0.0, 0.0, 0.0, -0.5, 1.0, 4.0, 6.0, np.zeros(6)]
    ref = optimize.minimize(neg_q, th0, method="BFGS", options={"gtol": 1e-11, "maxiter": 20_000})
    w, mu, var = unpack(ref.x)
    q_ours = -neg_q(np.r_[np.log(m.weights_[:, 1] / m.weights_[:, 0]), m.means_[0, :, 0],
                          m.means_[2, :, 0], np.log(m.covars_[..., 0]).ravel()])
    assert q_ours >= -ref.fun - 1e-12 * abs(ref.fun)
    np.testing.assert_allclose(m.weights_, w, rtol=1e-6)
    np.testing.assert_allclose(m.means_[..., 0], mu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m.covars_[..., 0], var, rtol=1e-6)
    np.testing.assert_array_equal(m.means_[0], m.means_[1])


@pytest.mark.parametrize("cov", ["diag", "spherical", "full", "tied"])
def test_gmm_general_ties_keep_em_monotone(cov):
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (80, 2)), rng.normal(3, 1, (80, 2))]
    m = TiedGMMHMM(3, n_mix=2, covariance_type=cov, n_iter=8, random_state=0,
                   ties=["means[1] = means[0]"]).fit(X)
    assert m._plan.emissions == "general"
    np.testing.assert_array_equal(m.means_[0], m.means_[1])
    h = np.asarray(m.monitor_.history)
    assert np.all(np.diff(h) > -1e-8 * np.abs(h[1:]))
    ok = TiedGMMHMM(3, n_mix=2, n_iter=2, random_state=0,
                    ties=["weights[1] = weights[0]", "means[1] = means[0]",
                          "covars[1] = covars[0]"]).fit(X)
    assert ok._plan.emissions == "pooled"
    with pytest.raises(ValidationError, match="covars_prior"):
        TiedGMMHMM(3, n_mix=2, n_iter=2, random_state=0, covars_prior=0.5, covars_weight=2.0,
                   ties=["means[1] = means[0]"]).fit(X)


def test_categorical_partial_tie_keeps_rows_normalised():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, (150, 1))
    m = TiedCategoricalHMM(2, n_iter=10, random_state=0,
                           ties=["emissionprob[1,0] = emissionprob[0,0]"]).fit(X)
    assert m.emissionprob_[1, 0] == pytest.approx(m.emissionprob_[0, 0], rel=1e-14)
    np.testing.assert_allclose(m.emissionprob_.sum(axis=1), 1.0, rtol=1e-14)
    assert m.n_free_parameters() == 1 + 2 + (2 + 2 - 1)
