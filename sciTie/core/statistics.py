"""Fit statistics shared by every model: information criteria, covariances, correlations."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..errors import IdentifiabilityWarning, ValidationError

__all__ = ["information_criteria", "covariance_from_jacobian", "covariance_from_information",
           "standard_errors"]


def information_criteria(n_free: int, n_data: int, *, log_likelihood: float | None = None,
                         chisqr: float | None = None) -> tuple[float, float]:
    """AIC and BIC, counted on the free parameters (the column count of G).

    With a log-likelihood: ``AIC = -2 log L + 2 k`` and ``BIC = -2 log L + k log n``. For a
    least-squares fit without one, ``-2 log L`` is replaced by ``n log(chi2 / n)`` (Gaussian
    errors of unknown common scale, the convention lmfit uses).

    Parameters
    ----------
    n_free : int
        Number of free parameters k.
    n_data : int
        Number of observations n.
    log_likelihood : float, optional
        Maximised log-likelihood.
    chisqr : float, optional
        Weighted residual sum of squares (used when ``log_likelihood`` is None).

    Returns
    -------
    (float, float)
        AIC and BIC (NaN when neither statistic is given or n < 1).
    """
    from .._validation import check_int

    n_free = check_int(n_free, "n_free", minimum=0)
    n_data = check_int(n_data, "n_data", minimum=0)
    if log_likelihood is not None:
        neg2 = -2.0 * float(log_likelihood)
    elif chisqr is not None and n_data > 0:
        neg2 = n_data * np.log(max(float(chisqr), np.finfo(float).tiny) / n_data)
    else:
        return float("nan"), float("nan")
    log_n = np.log(n_data) if n_data > 0 else np.nan
    return float(neg2 + 2 * n_free), float(neg2 + log_n * n_free)


def covariance_from_jacobian(J: np.ndarray, names: Sequence[str] | None = None
                             ) -> tuple[np.ndarray | None, int]:
    """``(JᵀJ)⁻¹`` through the SVD and the numerical rank; None when rank-deficient.

    A rank-deficient Jacobian warns (:class:`~sciTie.errors.IdentifiabilityWarning`), naming
    the parameters that the null space involves when ``names`` are given.
    """
    J = np.asarray(J, dtype=np.float64) if not hasattr(J, "toarray") else J.toarray()
    if J.ndim != 2:
        raise ValidationError(f"J must be a 2-D Jacobian (n_residuals, n_free), got shape "
                              f"{J.shape}")
    if J.shape[0] == 0 or J.shape[1] == 0:
        return None, 0
    if not np.all(np.isfinite(J)):
        cols = np.flatnonzero(~np.all(np.isfinite(J), axis=0))
        which = ", ".join(names[c] for c in cols) if names is not None else str(cols.tolist())
        warnings.warn(f"the Jacobian is not finite for {which}; no covariance or standard "
                      "errors", IdentifiabilityWarning, stacklevel=4)
        return None, 0
    _, s, vt = np.linalg.svd(J, full_matrices=False)
    tol = s[0] * max(J.shape) * np.finfo(float).eps
    rank = int(np.sum(s > tol))
    if rank < J.shape[1]:
        which = ""
        if names is not None:
            null = np.abs(vt[rank:]).max(axis=0) if vt.shape[0] > rank else np.ones(J.shape[1])
            involved = [n for n, w in zip(names, null) if w > 1e-6] or list(names)
            which = f" (undetermined combination of {', '.join(involved)})"
        warnings.warn(f"the Jacobian is rank-deficient (rank {rank} of {J.shape[1]} free "
                      f"parameters){which}; no covariance or standard errors",
                      IdentifiabilityWarning, stacklevel=4)
        return None, rank
    return (vt.T / s**2) @ vt, rank


def covariance_from_information(information: np.ndarray, names: Sequence[str]
                                ) -> np.ndarray | None:
    """Inverse of an observed information matrix (minus the Hessian of log L), checked.

    A matrix that is not positive definite (a collapsed state, a parameter the data do not
    determine, a saddle point) gives no covariance and an
    :class:`~sciTie.errors.IdentifiabilityWarning` naming the parameters along the
    offending directions, instead of standard errors with correlations beyond ±1.

    Parameters
    ----------
    information : ndarray, shape (k, k)
        Observed information (symmetrised here).
    names : sequence of str
        Names of the k free parameters.

    Returns
    -------
    ndarray or None
        The covariance, or None.
    """
    info = np.asarray(information, dtype=np.float64)
    if info.ndim != 2 or info.shape[0] != info.shape[1] or info.shape[0] != len(names):
        raise ValidationError(f"information must be a square matrix of size {len(names)}, got "
                              f"shape {info.shape}")
    if info.size == 0:
        return np.zeros((0, 0))
    if not np.all(np.isfinite(info)):
        bad = [n for n, row in zip(names, info) if not np.all(np.isfinite(row))]
        warnings.warn(f"the information matrix is not finite for {', '.join(bad)}; no "
                      "covariance or standard errors", IdentifiabilityWarning, stacklevel=3)
        return None
    info = 0.5 * (info + info.T)
    scale = np.sqrt(np.abs(np.diag(info)))
    scale = np.where(scale > 0, scale, 1.0)
    scaled = info / np.outer(scale, scale)  # unit diagonal: eigenvalues comparable
    evals, evecs = np.linalg.eigh(scaled)
    tol = max(info.shape) * np.finfo(float).eps * max(1.0, float(np.abs(evals).max()))
    bad_dirs = evals <= tol
    if np.any(bad_dirs):
        weight = np.abs(evecs[:, bad_dirs]).max(axis=1)
        involved = [n for n, w in zip(names, weight) if w > 0.1] or list(names)
        kind = "singular" if np.all(evals[bad_dirs] > -tol) else "not positive definite"
        warnings.warn(f"the observed information is {kind} (smallest scaled eigenvalue "
                      f"{evals.min():.3g}) along directions involving {', '.join(involved)}: "
                      "the data do not determine them at this point (a collapsed or empty "
                      "state, a parameter at a boundary, or not a maximum); no covariance or "
                      "standard errors", IdentifiabilityWarning, stacklevel=3)
        return None
    inv_scaled = (evecs / evals) @ evecs.T
    return inv_scaled / np.outer(scale, scale)


def standard_errors(cov: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Standard errors and the correlation matrix of a covariance (NaN / None without one)."""
    if cov is None:
        return np.full(n, np.nan), None
    var = np.diag(cov)
    stderr = np.sqrt(np.where(var >= 0, var, np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        correl = cov / np.outer(stderr, stderr)
    return stderr, correl
