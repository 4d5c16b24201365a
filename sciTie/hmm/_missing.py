"""Missing observations (NaN in ``X``): emission densities of the observed entries and the
E-step statistics that go with them.

A missing entry carries no emission term: a row with every feature missing contributes
log-density 0 under every state (the chain still moves), a row with some features missing
the density of its observed features under each state.

* Diagonal and spherical Gaussians, Poisson counts: the features are independent given the
  state, so the observed features' density is the product of their own terms, and the EM
  that treats only the states as latent stays in closed form with **per-feature
  occupancies**: a missing feature adds nothing to that feature's statistics, and its mean,
  variance or rate divides by the posterior mass of the rows where it was observed.
* Full and tied covariances, and Gaussian mixtures (any covariance): the observed block is
  Gaussian with the observed rows and columns of the covariance (a mixture of such blocks);
  the exact EM also treats the missing entries as latent, so the statistics hold their
  conditional expectations ``E[x_m | x_o, state (, component)]`` and the conditional
  covariance ``Σ_mm - Σ_mo Σ_oo⁻¹ Σ_om``, and the complete-data M-step applies unchanged.

Everything here runs on the rows' missingness patterns; data without NaN never come here.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, solve_triangular
from scipy.special import gammaln, logsumexp, xlogy

from ..errors import ValidationError
from ._forward_backward import DegenerateStateError
from ._forward_backward import _check_variances as check_variances

__all__ = ["missing_mask", "start_data", "diagonal_gaussian_loglik", "diagonal_moments",
           "gaussian_marginal_loglik", "gaussian_conditional_moments", "poisson_loglik", "symbol_counts",
           "mixture_covariances", "mixture_loglik", "mixture_statistics"]

_LOG_2PI = np.log(2 * np.pi)


def missing_mask(X: np.ndarray) -> np.ndarray | None:
    """Where ``X`` is NaN (bool, X's shape), or None when nothing is missing."""
    if X.dtype.kind != "f":
        return None
    mask = np.isnan(X)
    return mask if mask.any() else None


def start_data(X: np.ndarray, mask: np.ndarray, *, fill: str = "mean") -> np.ndarray:
    """``X`` with each missing entry replaced by its feature's mean (or most frequent value,
    ``fill="mode"``) over the observed rows: the data a fit's start is computed from."""
    empty = np.flatnonzero(mask.all(axis=0))
    if empty.size:
        raise ValidationError(f"X feature {int(empty[0])} is missing (NaN) in every row; a "
                              "feature that is never observed cannot be fitted: drop it")
    out = np.array(X, dtype=float, copy=True)
    for d in np.flatnonzero(mask.any(axis=0)):
        seen = X[~mask[:, d], d]
        if fill == "mode":
            values, counts = np.unique(seen, return_counts=True)
            out[mask[:, d], d] = values[np.argmax(counts)]
        else:
            out[mask[:, d], d] = seen.mean()
    return out


def diagonal_gaussian_loglik(X: np.ndarray, mask: np.ndarray, means: np.ndarray,
                             variances: np.ndarray) -> np.ndarray:
    """``log N(x_o | means[k]_o, diag(variances[k])_o)`` of each row's observed features."""
    check_variances(variances)  # a collapsed state is named, as on the complete-data path
    observed = (~mask).astype(float)
    Xz = np.where(mask, 0.0, X)
    out = np.empty((X.shape[0], means.shape[0]))
    for k in range(means.shape[0]):
        sq = (Xz - means[k]) ** 2 * observed
        out[:, k] = -0.5 * (observed @ (_LOG_2PI + np.log(variances[k])) + sq @ (1.0 / variances[k]))
    return out


def diagonal_moments(X: np.ndarray, mask: np.ndarray, post: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature occupancies ``Σ_t γ_tk [x_td observed]`` and the posterior-weighted sums
    of ``x`` and ``x²`` over the observed entries, each (n_states, n_features)."""
    observed = (~mask).astype(float)
    Xz = np.where(mask, 0.0, X)
    return post.T @ observed, post.T @ Xz, post.T @ (Xz * Xz)


def poisson_loglik(X: np.ndarray, mask: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Poisson log-probability of each row's observed counts under every state."""
    observed = ~mask
    Xz = np.where(mask, 0.0, X)
    const = gammaln(Xz + 1.0)
    out = np.empty((X.shape[0], lambdas.shape[0]))
    with np.errstate(divide="ignore"):
        for k in range(lambdas.shape[0]):
            terms = xlogy(Xz, lambdas[k]) - lambdas[k] - const
            out[:, k] = np.where(observed, terms, 0.0).sum(axis=1)
    return out


def _patterns(mask: np.ndarray):
    """``(observed feature indices, missing feature indices, rows)`` of each missingness
    pattern of the rows."""
    keys, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = np.ravel(inverse)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(keys.shape[0] + 1))
    for p, key in enumerate(keys):
        yield np.flatnonzero(~key), np.flatnonzero(key), order[bounds[p]:bounds[p + 1]]


def _cholesky(S: np.ndarray, u: int):
    try:
        return cho_factor(S, lower=True)
    except (LinAlgError, ValueError):  # not positive definite, or not finite
        raise DegenerateStateError(f"the covariance of Gaussian unit {u} (a state, or a state's "
                              "mixture component in state-major order) is not positive definite "
                              "on the observed features of some rows; check covars_") from None


def gaussian_marginal_loglik(X: np.ndarray, mask: np.ndarray, means: np.ndarray,
                             covs: np.ndarray) -> np.ndarray:
    """Log-density of each row's observed block under full-covariance Gaussians
    ``covs`` (n_states, D, D)."""
    out = np.zeros((X.shape[0], means.shape[0]))
    for o, _, rows in _patterns(mask):
        if o.size == 0:
            continue  # nothing observed: no emission term
        xo = X[np.ix_(rows, o)]
        for k in range(means.shape[0]):
            L, _ = _cholesky(covs[k][np.ix_(o, o)], k)
            z = solve_triangular(np.tril(L), (xo - means[k, o]).T, lower=True)
            logdet = 2.0 * np.log(np.diag(L)).sum()
            out[rows, k] = -0.5 * (o.size * _LOG_2PI + logdet + (z * z).sum(axis=0))
    return out


def _conditional_fills(X: np.ndarray, mask: np.ndarray, means: np.ndarray, covs: np.ndarray):
    """For every missingness pattern and Gaussian unit ``u`` (a state, or a mixture
    component): ``(u, rows, x̂, missing indices, C)`` with ``x̂`` the rows with their missing
    entries replaced by ``E[x_m | x_o]`` under the unit, and ``C`` the conditional covariance
    ``Σ_mm - Σ_mo Σ_oo⁻¹ Σ_om`` of the missing block (None when nothing is missing)."""
    for o, m, rows in _patterns(mask):
        xo = X[np.ix_(rows, o)]
        for u in range(means.shape[0]):
            xh = np.empty((rows.size, means.shape[1]))
            xh[:, o] = xo
            C = None
            if m.size:
                S = covs[u]
                if o.size:
                    factor = _cholesky(S[np.ix_(o, o)], u)
                    B = cho_solve(factor, S[np.ix_(o, m)]).T        # Σ_mo Σ_oo⁻¹
                    xh[:, m] = means[u, m] + (xo - means[u, o]) @ B.T
                    C = S[np.ix_(m, m)] - B @ S[np.ix_(o, m)]
                else:
                    xh[:, m] = means[u, m]
                    C = S[np.ix_(m, m)]
            yield u, rows, xh, m, C


def gaussian_conditional_moments(X: np.ndarray, mask: np.ndarray, post: np.ndarray,
                                 means: np.ndarray, covs: np.ndarray):
    """Expected complete-data statistics of full-covariance Gaussian emissions.

    Returns ``(occupancy (K,), Σ γ E[x] (K, D), Σ γ E[x²] (K, D), Σ γ E[x xᵀ] (K, D, D))``,
    the expectations given the observed features and the state, at ``means``/``covs``.
    """
    K, D = means.shape
    occ, s1, s2 = np.zeros(K), np.zeros((K, D)), np.zeros((K, D))
    outer = np.zeros((K, D, D))
    for k, rows, xh, m, C in _conditional_fills(X, mask, means, covs):
        g = post[rows, k]
        weight = g.sum()
        occ[k] += weight
        s1[k] += g @ xh
        s2[k] += g @ (xh * xh)
        outer[k] += (xh * g[:, None]).T @ xh
        if C is not None:
            outer[k][np.ix_(m, m)] += weight * C
            s2[k, m] += weight * np.diag(C)
    return occ, s1, s2, outer


def mixture_covariances(model) -> np.ndarray:
    """Every component's full covariance matrix, (n_states, n_mix, D, D), of a GMM HMM."""
    K, M, D = np.shape(model.means_)
    cov = np.asarray(model.covars_, dtype=float)
    kind = model.covariance_type
    if kind == "full":
        return cov
    if kind == "tied":
        return np.broadcast_to(cov[:, None], (K, M, D, D))
    var = cov[..., None] * np.ones(D) if kind == "spherical" else cov
    return var[..., :, None] * np.eye(D)


def mixture_loglik(X, mask, weights, means, covs):
    """``log p(x_o | state)`` of a Gaussian mixture per state, and the log of each weighted
    component's density ``(n, K, M)``."""
    K, M, D = means.shape
    dens = gaussian_marginal_loglik(X, mask, means.reshape(K * M, D),
                                    covs.reshape(K * M, D, D)).reshape(-1, K, M)
    with np.errstate(divide="ignore"):
        dens = dens + np.log(weights)
    return logsumexp(dens, axis=2), dens


def mixture_statistics(stats: dict, X, mask, post, model) -> None:
    """hmmlearn's GMM statistics (``post_mix_sum``, ``post_sum``, ``m_n``, ``c_n``) with the
    missing entries' conditional expectations under each component (exact EM)."""
    weights = np.asarray(model.weights_, dtype=float)
    means = np.asarray(model.means_, dtype=float)
    covs = mixture_covariances(model)
    K, M, D = means.shape
    total, dens = mixture_loglik(X, mask, weights, means, covs)
    with np.errstate(under="ignore", invalid="ignore"):
        resp = np.exp(dens - total[:, :, None])
    post_mix = post[:, :, None] * np.nan_to_num(resp)
    stats["post_mix_sum"] += post_mix.sum(axis=0)
    stats["post_sum"] += post.sum(axis=0)
    kind = model.covariance_type
    for u, rows, xh, m, C in _conditional_fills(X, mask, means.reshape(K * M, D),
                                                covs.reshape(K * M, D, D)):
        k, j = divmod(u, M)
        g = post_mix[rows, k, j]
        weight = g.sum()
        if "m" in model.params:
            stats["m_n"][k, j] += g @ xh
        if "c" not in model.params:
            continue
        centered = xh - means[k, j]  # about the current means, as hmmlearn's c_n
        extra = np.zeros((D, D))
        if C is not None:
            extra[np.ix_(m, m)] = weight * C
        if kind in ("full", "tied"):
            scatter = (centered * g[:, None]).T @ centered + extra
            stats["c_n"][k if kind == "tied" else (k, j)] += scatter
        elif kind == "diag":
            stats["c_n"][k, j] += g @ (centered * centered) + np.diag(extra)
        else:
            stats["c_n"][k, j] += g @ (centered * centered).sum(axis=1) + np.trace(extra)


def symbol_counts(X: np.ndarray, post: np.ndarray, n_symbols: int) -> np.ndarray:
    """Posterior-weighted counts of each symbol per state, (n_states, n_symbols), over the
    rows whose symbol is observed."""
    sym = X[:, 0]
    if sym.dtype.kind == "f":  # missing symbols (NaN) count nowhere
        seen = ~np.isnan(sym)
        sym, post = sym[seen].astype(np.int64), post[seen]
    return np.stack([np.bincount(sym, weights=post[:, k], minlength=n_symbols)
                     for k in range(post.shape[1])])
