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
* Full and tied covariances: the observed block is Gaussian with the observed rows and
  columns of the covariance; the exact EM also treats the missing entries as latent, so the
  statistics hold their conditional expectations ``E[x_m | x_o, state]`` and the conditional
  covariance ``Σ_mm - Σ_mo Σ_oo⁻¹ Σ_om``, and the complete-data M-step applies unchanged.

Everything here runs on the rows' missingness patterns; data without NaN never come here.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, solve_triangular
from scipy.special import gammaln, xlogy

from ..errors import ValidationError

__all__ = ["missing_mask", "start_data", "diagonal_gaussian_loglik", "diagonal_moments",
           "gaussian_marginal_loglik", "gaussian_conditional_moments", "poisson_loglik", "symbol_counts"]

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


def _cholesky(S: np.ndarray, k: int):
    try:
        return cho_factor(S, lower=True)
    except LinAlgError:
        raise ValidationError(f"the covariance of state {k} is not positive definite on the "
                              "observed features of some rows; check covars_") from None


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


def gaussian_conditional_moments(X: np.ndarray, mask: np.ndarray, post: np.ndarray,
                                 means: np.ndarray, covs: np.ndarray):
    """Expected complete-data statistics of full-covariance Gaussian emissions.

    Returns ``(occupancy (K,), Σ γ E[x] (K, D), Σ γ E[x²] (K, D), Σ γ E[x xᵀ] (K, D, D))``,
    the expectations given the observed features and the state, at ``means``/``covs``.
    """
    K, D = means.shape
    occ, s1, s2 = np.zeros(K), np.zeros((K, D)), np.zeros((K, D))
    outer = np.zeros((K, D, D))
    for o, m, rows in _patterns(mask):
        xo = X[np.ix_(rows, o)]
        for k in range(K):
            g = post[rows, k]
            weight = g.sum()
            xh = np.empty((rows.size, D))
            xh[:, o] = xo
            C = None
            if m.size:
                S = covs[k]
                if o.size:
                    factor = _cholesky(S[np.ix_(o, o)], k)
                    B = cho_solve(factor, S[np.ix_(o, m)]).T        # Σ_mo Σ_oo⁻¹
                    xh[:, m] = means[k, m] + (xo - means[k, o]) @ B.T
                    C = S[np.ix_(m, m)] - B @ S[np.ix_(o, m)]
                else:
                    xh[:, m] = means[k, m]
                    C = S[np.ix_(m, m)]
            occ[k] += weight
            s1[k] += g @ xh
            s2[k] += g @ (xh * xh)
            outer[k] += (xh * g[:, None]).T @ xh
            if C is not None:
                outer[k][np.ix_(m, m)] += weight * C
                s2[k, m] += weight * np.diag(C)
    return occ, s1, s2, outer


def symbol_counts(X: np.ndarray, post: np.ndarray, n_symbols: int) -> np.ndarray:
    """Posterior-weighted counts of each symbol per state, (n_states, n_symbols), over the
    rows whose symbol is observed."""
    sym = X[:, 0]
    if sym.dtype.kind == "f":  # missing symbols (NaN) count nowhere
        seen = ~np.isnan(sym)
        sym, post = sym[seen].astype(np.int64), post[seen]
    return np.stack([np.bincount(sym, weights=post[:, k], minlength=n_symbols)
                     for k in range(post.shape[1])])
