"""Gaussian-mixture emissions of every state at once: log-likelihoods and EM statistics.

hmmlearn's ``GMMHMM`` loops over states and calls ``scipy.special.logsumexp`` per state,
twice per E-step (once for the likelihood, once to split each state's posterior over its
components). On short sequences that call's fixed cost dominates: about 0.8 ms for a
(1500, 2) array, four fifths of a three-state mixture's E-step. Here the weighted component
densities of all states are one ``(n_samples, n_components, n_mix)`` array and the log-sum
is one vectorised pass. The statistics are the same quantities as hmmlearn's (its M-step
reads them unchanged), summed in another order: they agree to rounding
(``tests/test_hmm_mixture.py`` checks them against hmmlearn's own for every covariance
type).
"""
from __future__ import annotations

import numpy as np
from hmmlearn.stats import log_multivariate_normal_density

from ._logsum import log_sum_exp

__all__ = ["weighted_component_log_densities", "mixture_log_likelihood",
           "accumulate_mixture_statistics"]


def weighted_component_log_densities(model, X: np.ndarray) -> np.ndarray:
    """``log w_km + log N(x_t | mu_km, Sigma_km)``, shape (n_samples, n_components, n_mix)."""
    K, M = model.n_components, model.n_mix
    out = np.empty((len(X), K, M))
    with np.errstate(divide="ignore"):  # a weight of 0: that component contributes nothing
        log_w = np.log(np.asarray(model.weights_, dtype=float))
    covars = np.asarray(model.covars_, dtype=float)
    for k in range(K):
        cov = covars[k][:, None] if model.covariance_type == "spherical" else covars[k]
        out[:, k, :] = log_multivariate_normal_density(
            X, model.means_[k], cov, model.covariance_type) + log_w[k]
    return out


def mixture_log_likelihood(model, X: np.ndarray) -> np.ndarray:
    """``log p(x_t | state k)``, shape (n_samples, n_components)."""
    return log_sum_exp(weighted_component_log_densities(model, X))


def accumulate_mixture_statistics(stats: dict, X: np.ndarray, post: np.ndarray, model) -> None:
    """Add the mixture statistics of one block of rows with state posteriors ``post``.

    The keys are hmmlearn's (``post_mix_sum``, ``post_sum``, and ``m_n``, ``c_n`` where
    means and covariances are fitted); the covariance sums are centred on the current
    means, as hmmlearn's M-step expects.
    """
    dens = weighted_component_log_densities(model, X)
    with np.errstate(under="ignore"):
        # each state's posterior split over its components: p(m | x_t, state k)
        within = np.exp(dens - log_sum_exp(dens)[..., None])
        joint = post[:, :, None] * within                  # (T, K, M)
    stats["post_mix_sum"] += joint.sum(axis=0)
    stats["post_sum"] += post.sum(axis=0)
    T, K, M = joint.shape
    if "m" in model.params:
        stats["m_n"] += (joint.reshape(T, K * M).T @ X).reshape(K, M, -1)
    if "c" in model.params:
        centred = X[:, None, None, :] - np.asarray(model.means_)   # (T, K, M, D)
        kind = model.covariance_type
        if kind == "diag":
            c_n = np.einsum("tkm,tkmd->kmd", joint, centred ** 2)
        elif kind == "spherical":
            c_n = np.einsum("tkm,tkmd->km", joint, centred ** 2)
        elif kind == "full":
            c_n = np.einsum("tkm,tkmd,tkme->kmde", joint, centred, centred)
        else:  # tied: one matrix per state, summed over its components
            c_n = np.einsum("tkm,tkmd,tkme->kde", joint, centred, centred)
        stats["c_n"] += c_n
