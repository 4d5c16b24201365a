"""The all-states mixture log-likelihoods and statistics equal hmmlearn's own GMMHMM ones."""
import numpy as np
import pytest
from hmmlearn.hmm import GMMHMM

from sciTie.hmm import TiedGMMHMM
from sciTie.hmm._mixture import accumulate_mixture_statistics, mixture_log_likelihood


def _random_mixture(kind, rng, K=3, M=3, D=2):
    m = GMMHMM(K, n_mix=M, covariance_type=kind, params="wmc", init_params="")
    m.n_features = D
    m.startprob_ = np.full(K, 1 / K)
    m.transmat_ = np.full((K, K), 1 / K)
    w = rng.dirichlet(np.ones(M), size=K)
    w[0, 1] = 0.0                       # a component without weight
    m.weights_ = w / w.sum(axis=1, keepdims=True)
    m.means_ = rng.normal(scale=2.0, size=(K, M, D))
    A = rng.normal(size=(K, M, D, D))
    full = A @ np.swapaxes(A, -1, -2) + 0.5 * np.eye(D)
    m.covars_ = {"diag": rng.uniform(0.3, 2.0, (K, M, D)), "spherical": rng.uniform(0.3, 2.0, (K, M)),
                 "full": full, "tied": full[:, 0]}[kind]
    m.means_prior, m.means_weight = rng.normal(size=(K, M, D)), np.full((K, M), 0.5)
    return m


@pytest.mark.parametrize("kind", ["diag", "spherical", "full", "tied"])
def test_mixture_likelihood_and_statistics_match_hmmlearn(kind):
    rng = np.random.default_rng(4)
    peer = _random_mixture(kind, rng)
    X = rng.normal(scale=3.0, size=(400, 2))
    X[:3] += 40.0                        # far out: every density underflows to -700
    np.testing.assert_allclose(mixture_log_likelihood(peer, X), peer._compute_log_likelihood(X),
                               rtol=1e-13, atol=1e-11)
    post = rng.dirichlet(np.ones(3), size=len(X))
    ours, theirs = peer._initialize_sufficient_statistics(), peer._initialize_sufficient_statistics()
    accumulate_mixture_statistics(ours, X, post, peer)
    with np.errstate(under="ignore"):
        peer._accumulate_sufficient_statistics(theirs, X, None, post, None, None)
    for key in ("post_mix_sum", "post_sum", "m_n", "c_n"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_tied_gmm_fit_equals_hmmlearn_untied():
    """Untied, the model's EM is hmmlearn's: the same log-likelihood path."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 1, (300, 1)), rng.normal(3, 0.5, (300, 1))])
    kw = dict(n_components=2, n_mix=2, covariance_type="diag", n_iter=15, tol=-np.inf,
              init_params="", params="stmcw")
    init = _random_mixture("diag", np.random.default_rng(1), K=2, M=2, D=1)
    fits = []
    for cls in (TiedGMMHMM, GMMHMM):
        m = cls(**kw)
        for name in ("startprob_", "transmat_", "means_", "covars_"):
            setattr(m, name, np.array(getattr(init, name), copy=True))
        m.weights_ = np.full((2, 2), 0.5)
        fits.append(m.fit(X))
    np.testing.assert_allclose(fits[0].monitor_.history, fits[1].monitor_.history, rtol=1e-11)
    np.testing.assert_allclose(fits[0].means_, fits[1].means_, rtol=1e-9)
