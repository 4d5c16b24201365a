"""Tied HMMs: equality with hmmlearn when untied, pooled M-step vs brute force, counting."""
from __future__ import annotations

import numpy as np
import pytest
from hmmlearn import _hmmc, hmm
from scipy import optimize, special, stats

from sciTie.hmm import TiedCategoricalHMM, TiedGaussianHMM, TiedPoissonHMM, erlang_chains


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


@pytest.fixture(scope="module")
def gauss_data():
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (300, 2)), rng.normal(3, 1, (200, 2)),
              rng.normal(-2, 0.5, (300, 2))]
    return X, [500, 300]


# ---------------------------------------------------------------- untied == hmmlearn
@pytest.mark.parametrize("cov", ["diag", "spherical", "full", "tied"])
def test_untied_gaussian_equals_hmmlearn(gauss_data, cov):
    X, lengths = gauss_data
    kw = dict(covariance_type=cov, random_state=3, n_iter=12, tol=-np.inf)
    ref = hmm.GaussianHMM(3, **kw).fit(X, lengths)
    ours = TiedGaussianHMM(3, **kw).fit(X, lengths)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        assert rel_err(getattr(ref, name), getattr(ours, name)) < 1e-10, name
    assert abs(ref.score(X, lengths) / ours.score(X, lengths) - 1) < 1e-10
    assert abs(ref.monitor_.history[-1] / ours.monitor_.history[-1] - 1) < 1e-10
    np.testing.assert_allclose(ref.predict_proba(X, lengths), ours.predict_proba(X, lengths),
                               atol=1e-10)
    np.testing.assert_array_equal(ref.predict(X, lengths), ours.predict(X, lengths))
    assert ref.decode(X, lengths)[0] == pytest.approx(ours.decode(X, lengths)[0], rel=1e-12)


def test_untied_poisson_equals_hmmlearn():
    rng = np.random.default_rng(2)
    X = rng.poisson(np.r_[np.full(200, 3), np.full(200, 10), np.full(100, 20)])[:, None]
    X = np.hstack([X, rng.poisson(5, (500, 1))])
    ref = hmm.PoissonHMM(3, random_state=2, n_iter=15, tol=-np.inf).fit(X, [250, 250])
    ours = TiedPoissonHMM(3, random_state=2, n_iter=15, tol=-np.inf).fit(X, [250, 250])
    for name in ("startprob_", "transmat_", "lambdas_"):
        assert rel_err(getattr(ref, name), getattr(ours, name)) < 1e-10, name
    assert abs(ref.score(X) / ours.score(X) - 1) < 1e-10


def test_untied_categorical_equals_hmmlearn():
    rng = np.random.default_rng(3)
    X = np.r_[rng.choice(4, 300, p=[.7, .1, .1, .1]), rng.choice(4, 300, p=[.1, .1, .1, .7])]
    X = X[:, None]
    ref = hmm.CategoricalHMM(2, random_state=5, n_iter=15, tol=-np.inf).fit(X)
    ours = TiedCategoricalHMM(2, random_state=5, n_iter=15, tol=-np.inf).fit(X)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        assert rel_err(getattr(ref, name), getattr(ours, name)) < 1e-10, name
    assert abs(ref.score(X) / ours.score(X) - 1) < 1e-10


# ---------------------------------------------------------------- pooled M-step
def _posteriors_hmmlearn(startprob, transmat, log_frameprob):
    """Independent E-step with hmmlearn's log-space kernels."""
    _, fwd = _hmmc.forward_log(startprob, transmat, log_frameprob)
    bwd = _hmmc.backward_log(startprob, transmat, log_frameprob)
    g = fwd + bwd
    gamma = np.exp(g - special.logsumexp(g, axis=1, keepdims=True))
    xi = np.exp(_hmmc.compute_log_xi_sum(fwd, transmat, bwd, log_frameprob))
    return gamma, xi


def test_pooled_gaussian_mstep_is_argmax_of_expected_loglik():
    """One M-step with tied emissions and tied self-loops == scipy maximisation of Q."""
    rng = np.random.default_rng(7)
    spec = erlang_chains([2, 1], stay=0.8)  # states 0,1 share emissions and a self-loop
    x = np.r_[rng.normal(0.0, 1.0, 60), rng.normal(2.5, 0.7, 40), rng.normal(0.3, 1.1, 50)]
    X = x[:, None]
    model = TiedGaussianHMM(3, covars_prior=0.0, n_iter=1, init_params="", params="stmc",
                            tied_states=spec.tied_states,
                            tied_transitions=spec.tied_transitions)
    start0 = np.array([0.6, 0.0, 0.4])
    model.startprob_, model.transmat_ = start0, spec.transmat.copy()
    model.means_ = np.array([[0.2], [0.2], [2.0]])
    model.covars_ = np.array([[1.5], [1.5], [0.8]])
    mu0, var0 = np.array([0.2, 0.2, 2.0]), np.array([1.5, 1.5, 0.8])
    T0 = spec.transmat.copy()
    model.fit(X)

    logB = stats.norm.logpdf(x[:, None], mu0, np.sqrt(var0))
    gamma, xi = _posteriors_hmmlearn(start0, T0, logB)

    def unpack(th):
        muA, muB, lsA, lsB, u_p, u_q, u_s = th
        p, q, s = special.expit([u_p, u_q, u_s])
        mu = np.array([muA, muA, muB])
        sd = np.exp([lsA, lsA, lsB])
        A = np.array([[p, 1 - p, 0], [0, p, 1 - p], [1 - q, 0, q]])
        pi = np.array([s, 0, 1 - s])
        return mu, sd, A, pi

    def negQ(th):
        mu, sd, A, pi = unpack(th)
        q = np.sum(gamma * stats.norm.logpdf(x[:, None], mu, sd))
        with np.errstate(divide="ignore"):
            q += np.sum(np.where(xi > 0, xi * np.log(np.where(A > 0, A, 1)), 0))
            q += np.sum(np.where(gamma[0] > 0, gamma[0] * np.log(np.where(pi > 0, pi, 1)), 0))
        return -q

    res = optimize.minimize(negQ, np.zeros(7), method="BFGS", options={"gtol": 1e-10})
    mu, sd, A, pi = unpack(res.x)
    np.testing.assert_allclose(model.means_.ravel(), mu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.sqrt(model.covars_.ravel()), sd, rtol=1e-6)
    np.testing.assert_allclose(model.transmat_, A, atol=1e-6)
    np.testing.assert_allclose(model.startprob_, pi, atol=1e-6)


def test_pooled_poisson_mstep_is_argmax():
    rng = np.random.default_rng(4)
    X = np.r_[rng.poisson(2, 40), rng.poisson(9, 30), rng.poisson(4, 40)][:, None]
    model = TiedPoissonHMM(3, n_iter=1, init_params="", tied_states=[[0, 2], [1]])
    model.startprob_ = np.array([0.5, 0.3, 0.2])
    model.transmat_ = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    model.lambdas_ = np.array([[3.0], [8.0], [3.0]])
    logB = stats.poisson.logpmf(X, model.lambdas_.ravel())
    gamma, _ = _posteriors_hmmlearn(model.startprob_, model.transmat_, logB)
    model.fit(X)

    def negQ(loglam):
        lam = np.exp(np.array([loglam[0], loglam[1], loglam[0]]))
        return -np.sum(gamma * stats.poisson.logpmf(X, lam))

    res = optimize.minimize(negQ, np.log([3.0, 8.0]), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(model.lambdas_.ravel(), np.exp(res.x)[[0, 1, 0]], rtol=1e-6)


def test_pooled_categorical_mstep_is_argmax():
    rng = np.random.default_rng(5)
    X = rng.integers(0, 3, (80, 1))
    model = TiedCategoricalHMM(3, n_iter=1, init_params="", tied_states=[[0, 1], [2]])
    model.startprob_ = np.array([0.4, 0.4, 0.2])
    model.transmat_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4]])
    model.emissionprob_ = np.array([[.5, .3, .2], [.5, .3, .2], [.1, .2, .7]])
    logB = np.log(model.emissionprob_[:, X[:, 0]].T)
    gamma, _ = _posteriors_hmmlearn(model.startprob_, model.transmat_, logB)
    model.fit(X)
    # brute force: maximise sum_t (g0+g1) log b_A(x_t) over the simplex (softmax params)
    w = gamma[:, 0] + gamma[:, 1]

    def negQ(z):
        b = special.softmax(np.r_[0.0, z])
        return -np.sum(w * np.log(b[X[:, 0]]))

    res = optimize.minimize(negQ, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    b = special.softmax(np.r_[0.0, res.x])
    np.testing.assert_allclose(model.emissionprob_[0], b, atol=1e-6)
    np.testing.assert_array_equal(model.emissionprob_[0], model.emissionprob_[1])


# ---------------------------------------------------------------- tying structure
def test_tied_states_share_parameters_and_structural_zeros_stay(gauss_data):
    X, lengths = gauss_data
    spec = erlang_chains([2, 1], stay=0.9)
    m = TiedGaussianHMM(3, init_params="mc", n_iter=20, random_state=0,
                        tied_states=spec.tied_states, tied_transitions=spec.tied_transitions)
    m.startprob_, m.transmat_ = spec.startprob.copy(), spec.transmat.copy()
    m.fit(X, lengths)
    np.testing.assert_array_equal(m.means_[0], m.means_[1])
    np.testing.assert_array_equal(m.covars_[0], m.covars_[1])
    assert m.transmat_[0, 0] == pytest.approx(m.transmat_[1, 1], abs=1e-15)
    assert np.all(m.transmat_[spec.transmat == 0] == 0)
    assert np.all(m.startprob_[spec.startprob == 0] == 0)
    np.testing.assert_allclose(m.transmat_.sum(axis=1), 1.0)
    # EM never decreases the likelihood
    assert np.all(np.diff(np.asarray(m.monitor_.history)) > -1e-8)


def test_free_parameter_count():
    spec = erlang_chains([3, 2], stay=0.9)
    X = np.random.default_rng(0).normal(size=(50, 2))
    m = TiedGaussianHMM(5, init_params="", n_iter=1, tol=-np.inf, tied_states=spec.tied_states,
                        tied_transitions=spec.tied_transitions)
    m.startprob_, m.transmat_ = spec.startprob, spec.transmat
    m.means_ = np.array([[0.0, 1]] * 3 + [[2.0, 3]] * 2)
    m.covars_ = np.ones((5, 2))
    m.fit(X)
    # start: 2 nonzero -> 1; transitions: 2 tied self-loops, the last states have one exit
    # each -> 0 free exits; emissions: 2 groups x (2 means + 2 variances) = 8
    assert m.n_free_parameters() == m.group_.n_free == 1 + 2 + 8
    hmmlearn_count = sum(m._get_n_fit_scalars_per_param().values())
    assert hmmlearn_count == 4 + 20 + 10 + 10  # what hmmlearn would count
    ll = m.score(X)
    assert m.bic(X) == pytest.approx(-2 * ll + 11 * np.log(50))
    assert m.aic(X) == pytest.approx(-2 * ll + 22)
    assert m.result_.bic == pytest.approx(m.bic(X)) and m.result_.nvarys == 11
    # parameters outside params are fixed in the group
    m2 = TiedGaussianHMM(5, init_params="", params="mc", n_iter=1, tol=-np.inf,
                         tied_states=spec.tied_states)
    m2.startprob_, m2.transmat_ = spec.startprob, spec.transmat
    m2.means_, m2.covars_ = m.means_.copy(), np.ones((5, 2))
    assert m2.fit(X).n_free_parameters() == 8


def test_the_state_partition_is_read_from_the_group():
    X = np.random.default_rng(0).normal(size=(60, 2))
    m = TiedGaussianHMM(3, tied_states=[[2, 0], [1]], n_iter=2, random_state=0).fit(X)
    assert m.state_groups_ == [[0, 2], [1]]
    np.testing.assert_array_equal(m.state_to_group_, [0, 1, 0])
    G = m.group_.tie_matrix().toarray()
    rows = np.ravel(m.group_.slot_index("means[2]"))
    np.testing.assert_array_equal(G[rows], G[np.ravel(m.group_.slot_index("means[0]"))])
    assert m._plan.emissions == "pooled"


def test_erlang_chain_structure():
    spec = erlang_chains([3, 2], stay=[0.9, 0.8])
    np.testing.assert_allclose(spec.transmat.sum(axis=1), 1)
    assert spec.tied_states == [[0, 1, 2], [3, 4]]
    assert spec.transmat[0, 0] == 0.9 and spec.transmat[0, 1] == pytest.approx(0.1)
    assert spec.transmat[2, 3] == pytest.approx(0.1) and spec.transmat[4, 0] == pytest.approx(0.2)
    # dwell time in chain 0 is negative binomial: P(D = d) = C(d-1, 2) (1-p)^3 p^(d-3)
    A = spec.transmat
    sub = A[:3, :3]
    exit_ = 1 - sub.sum(axis=1)
    v = np.array([1.0, 0, 0])
    for d in range(1, 15):
        pd = v @ exit_
        expected = special.comb(d - 1, 2) * 0.1 ** 3 * 0.9 ** (d - 3) if d >= 3 else 0.0
        assert pd == pytest.approx(expected, abs=1e-15)
        v = v @ sub
    with pytest.raises(ValueError, match="stay"):
        erlang_chains([2], stay=1.0)


def test_tied_fit_other_families_share():
    rng = np.random.default_rng(0)
    Xp = rng.poisson(np.r_[np.full(100, 2), np.full(100, 12)])[:, None]
    m = TiedPoissonHMM(3, tied_states=[[0, 1], [2]], n_iter=30, random_state=1).fit(Xp)
    np.testing.assert_array_equal(m.lambdas_[0], m.lambdas_[1])
    Xc = rng.integers(0, 3, (200, 1))
    c = TiedCategoricalHMM(3, tied_states=[[0], [1, 2]], n_iter=10, random_state=1).fit(Xc)
    np.testing.assert_array_equal(c.emissionprob_[1], c.emissionprob_[2])
    assert c.n_free_parameters() == c.group_.n_free == 2 + 6 + 2 * 2


def test_sklearn_api_clone_and_sample(gauss_data):
    from sklearn.base import clone

    X, lengths = gauss_data
    m = TiedGaussianHMM(3, tied_states=[[0, 1], [2]], n_iter=5, random_state=0)
    params = m.get_params()
    assert params["tied_states"] == [[0, 1], [2]] and params["covariance_type"] == "diag"
    c = clone(m)
    assert c.get_params() == params and not hasattr(c, "means_")
    m.fit(X, lengths)
    Xs, Z = m.sample(200, random_state=1)
    assert Xs.shape == (200, 2) and Z.shape == (200,)
    # samples from tied states come from the same distribution: compare with the group mean
    g0 = np.isin(Z, [0, 1])
    assert np.allclose(Xs[g0].mean(axis=0), m.means_[0], atol=0.5)


@pytest.mark.parametrize("groups, match", [
    ([[0, 1], [1, 2]], r"disjoint: states \[1\]"),
    ([[0, 7]], r"out of range"),
])
def test_bad_tied_transitions(groups, match):
    with pytest.raises(ValueError, match=match):
        TiedGaussianHMM(3, tied_transitions=groups).fit(np.zeros((10, 1)) + np.arange(10)[:, None])


def test_covariance_only_update_uses_occupancies():
    """params='stc': one M-step gives sum_t g_tk (x_t - mu_k)^2 / sum_t g_tk (means fixed)."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, 200), rng.normal(4, 1.5, 200)]
    m = TiedGaussianHMM(2, params="stc", init_params="", n_iter=1, covars_prior=0.0)
    m.startprob_ = np.array([0.5, 0.5])
    m.transmat_ = np.array([[0.9, 0.1], [0.1, 0.9]])
    m.means_ = np.array([[0.0], [4.0]])
    m.covars_ = np.array([[1.0], [1.0]])
    gamma, _ = _posteriors_hmmlearn(m.startprob_, m.transmat_,
                                    stats.norm.logpdf(x[:, None], [0.0, 4.0], 1.0))
    m.fit(x[:, None])
    expected = (gamma * (x[:, None] - [0.0, 4.0]) ** 2).sum(0) / gamma.sum(0)
    np.testing.assert_allclose(m.covars_.ravel(), expected, rtol=1e-10)
    np.testing.assert_array_equal(m.means_.ravel(), [0.0, 4.0])


def test_priors_must_agree_within_tied_groups():
    X = np.random.default_rng(0).normal(size=(60, 1))
    m = TiedGaussianHMM(3, tied_states=[[0, 1], [2]], means_prior=np.array([[0.0], [1.0], [0.0]]),
                        means_weight=1.0, n_iter=2, random_state=0)
    with pytest.raises(ValueError, match=r"means_prior differs between the tied states \[0, 1\]"):
        m.fit(X)
    # equal priors within the group are accepted and act once per group
    m.set_params(means_prior=np.array([[0.5], [0.5], [0.0]]))
    m.fit(X)
    np.testing.assert_array_equal(m.means_[0], m.means_[1])


def test_means_prior_counts_once_per_group():
    """MAP mean of a tied group: (w mu0 + sum_g gamma x) / (w + sum_g gamma)."""
    rng = np.random.default_rng(12)
    x = np.r_[rng.normal(0, 1, 50), rng.normal(3, 1, 50)]
    m = TiedGaussianHMM(3, tied_states=[[0, 1], [2]], means_prior=0.7, means_weight=5.0,
                        init_params="", params="m", n_iter=1)
    m.startprob_ = np.array([0.4, 0.3, 0.3])
    m.transmat_ = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    m.means_, m.covars_ = np.array([[0.2], [0.2], [2.5]]), np.ones((3, 1))
    gamma, _ = _posteriors_hmmlearn(m.startprob_, m.transmat_,
                                    stats.norm.logpdf(x[:, None], [0.2, 0.2, 2.5], 1.0))
    m.fit(x[:, None])
    wA = gamma[:, 0] + gamma[:, 1]
    assert m.means_[0, 0] == pytest.approx((5.0 * 0.7 + wA @ x) / (5.0 + wA.sum()), rel=1e-12)
    assert m.means_[2, 0] == pytest.approx((5.0 * 0.7 + gamma[:, 2] @ x)
                                           / (5.0 + gamma[:, 2].sum()), rel=1e-12)
