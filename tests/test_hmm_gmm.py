"""TiedGMMHMM: untied == hmmlearn's GMMHMM, pooled M-step == brute-force maximisation."""
from __future__ import annotations

import numpy as np
import pytest
from hmmlearn import _hmmc, hmm
from scipy import optimize, special, stats

from sciTie.hmm import TiedGMMHMM


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (150, 2)), rng.normal(3, 1, (100, 2)),
              rng.normal(-2, 0.5, (150, 2))]
    return X, [250, 150]


@pytest.mark.parametrize("cov", ["diag", "full"])
def test_untied_gmm_equals_hmmlearn(data, cov):
    X, lengths = data
    kw = dict(n_mix=2, covariance_type=cov, random_state=3, n_iter=8, tol=-np.inf)
    np.random.seed(0)  # hmmlearn's GMM initialisation may draw from the global generator
    ref = hmm.GMMHMM(3, **kw).fit(X, lengths)
    np.random.seed(0)
    ours = TiedGMMHMM(3, **kw).fit(X, lengths)
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
        a, b = getattr(ref, name), getattr(ours, name)
        assert np.max(np.abs(a - b)) / np.max(np.abs(a)) < 1e-10, name
    assert ours.score(X, lengths) == pytest.approx(ref.score(X, lengths), rel=1e-10)


def test_pooled_gmm_mstep_is_argmax():
    rng = np.random.default_rng(9)
    x = np.r_[rng.normal(-1, 0.5, 60), rng.normal(1.5, 0.8, 60), rng.normal(5, 1, 60)]
    X = x[:, None]
    m = TiedGMMHMM(3, n_mix=2, n_iter=1, init_params="", tied_states=[[0, 1], [2]])
    m.startprob_ = np.array([0.4, 0.3, 0.3])
    m.transmat_ = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    w0 = np.array([[0.5, 0.5], [0.5, 0.5], [0.6, 0.4]])
    mu0 = np.array([[[-0.5], [1.0]], [[-0.5], [1.0]], [[4.0], [6.0]]])
    var0 = np.array([[[1.0], [1.0]], [[1.0], [1.0]], [[1.5], [1.5]]])
    m.weights_, m.means_, m.covars_ = w0.copy(), mu0.copy(), var0.copy()
    # independent E-step: hmmlearn's log-space kernels on the mixture log-density
    comp = stats.norm.logpdf(x[:, None, None], mu0[None, :, :, 0], np.sqrt(var0[None, :, :, 0]))
    comp = comp[..., 0] if comp.ndim == 4 else comp
    logB = special.logsumexp(comp + np.log(w0)[None], axis=2)
    _, fwd = _hmmc.forward_log(m.startprob_, m.transmat_, logB)
    bwd = _hmmc.backward_log(m.startprob_, m.transmat_, logB)
    g = fwd + bwd
    gamma = np.exp(g - special.logsumexp(g, axis=1, keepdims=True))
    resp = np.exp(comp[:, 0] + np.log(w0[0]) - logB[:, [0]])  # group A responsibilities
    wA = gamma[:, 0] + gamma[:, 1]
    m.fit(X)

    def negQ(th):  # weights and means: the joint argmax of Q
        w = special.softmax([0.0, th[0]])
        mu, sd = th[1:3], np.exp(th[3:5])
        return -np.sum(wA[:, None] * resp * (np.log(w) + stats.norm.logpdf(x[:, None], mu, sd)))

    res = optimize.minimize(negQ, np.array([0.0, -0.5, 1.0, 0.0, 0.0]), method="BFGS",
                            options={"gtol": 1e-10})
    np.testing.assert_allclose(m.weights_[0], special.softmax([0.0, res.x[0]]), atol=1e-6)
    np.testing.assert_allclose(m.means_[0, :, 0], res.x[1:3], atol=1e-6)
    # hmmlearn's GMM update centres the covariance statistics on the previous means (a
    # conditional-maximisation step); the pooled update must be the argmax of Q over the
    # standard deviations at those means
    mu_old = mu0[0, :, 0]

    def negQ_sd(log_sd):
        return -np.sum(wA[:, None] * resp * stats.norm.logpdf(x[:, None], mu_old,
                                                               np.exp(log_sd)))

    res_sd = optimize.minimize(negQ_sd, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(np.sqrt(m.covars_[0, :, 0]), np.exp(res_sd.x), rtol=1e-6)
    np.testing.assert_array_equal(m.means_[0], m.means_[1])


@pytest.mark.parametrize("cov", ["diag", "full", "spherical", "tied"])
def test_tied_gmm_counts_and_xarray(data, cov):
    X, lengths = data
    m = TiedGMMHMM(3, n_mix=2, covariance_type=cov, tied_states=[[0, 2], [1]],
                   random_state=0, n_iter=5).fit(X, lengths)
    np.testing.assert_array_equal(m.covars_[0], m.covars_[2])
    assert m.group_.n_free == m.n_free_parameters()
    M, D = 2, 2
    per_group = (M - 1) + M * D + {"diag": M * D, "full": M * 3, "spherical": M,
                                   "tied": 3}[cov]
    n_start = np.count_nonzero(m.startprob_) - 1
    n_trans = sum(np.count_nonzero(r) - 1 for r in m.transmat_)
    assert m.n_free_parameters() == n_start + n_trans + 2 * per_group
    ds = m.to_xarray(X, lengths)
    assert ds["means"].dims == ("state", "mix", "feature")
    assert ds.sizes["group"] == 2 and ds.sizes["state"] == 3
