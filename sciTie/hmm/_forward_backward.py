"""Forward-backward, log-likelihood and Viterbi of HMMs, compiled and free of underflow.

The E-step itself (emissions, forward filter, backward smoothing and every sufficient
statistic in one pass per sequence, without Python per time step) lives in
:mod:`sciTie.hmm._estep_kernels`; this module checks the inputs (the compiled loops do no
bounds checks), chooses serial or threaded execution and shapes the results.

Every forward step shifts the emission log-probabilities by their maximum before
exponentiation (a 50-sigma outlier, whose log-probabilities are all around -1250, still
gives a row with a 1 in it) and renormalises the filtered distribution; a step whose
normaliser is so small that precision would be lost (the most likely emitting state was
almost unreachable) is redone in log space, and so is a backward step that would divide by
such a small predicted probability. The results equal a pure log-space computation to
rounding, at the speed of the scaled algorithm.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..errors import ArgumentTypeError, ValidationError
from . import _estep_kernels as kernels

__all__ = ["forward_backward", "forward_backward_stats", "forward_loglik", "viterbi",
           "ImpossibleObservationError", "gaussian_diag_loglik", "DiagonalGaussian", "EStep"]

#: Floating-point licences of the log-density kernel: reassociation and fused multiply-add.
_FAST = {"reassoc", "contract", "nsz"}


class DiagonalGaussian(NamedTuple):
    """Diagonal Gaussian emissions, evaluated inside the compiled pass from ``X``.

    Passed instead of a ``(n_samples, n_states)`` table of log-probabilities, so that the
    E-step never writes one.
    """

    means: np.ndarray       # (n_states, n_features)
    variances: np.ndarray   # (n_states, n_features)


class EStep(NamedTuple):
    """What :func:`forward_backward_stats` returns."""

    log_prob: float
    #: State posteriors ``(n_samples, n_states)``, or None when not asked for.
    posteriors: np.ndarray | None
    #: Expected transition counts summed over time and sequences.
    xi_sum: np.ndarray
    #: Posteriors of the first state of each sequence, summed.
    start_sum: np.ndarray
    #: ``(sum_t gamma_tk, sum_t gamma_tk x_t, sum_t gamma_tk x_t**2)`` (the last two
    #: ``(n_states, n_features)``; ``x**2`` only with ``n_moments=2``), or None.
    sums: tuple | None


class ImpossibleObservationError(ValidationError):
    """An observation has probability zero under every state."""


class DegenerateStateError(ValidationError):
    """A state's variance is zero (EM collapsed it onto a single value: the likelihood is
    unbounded there)."""


def _check_variances(var: np.ndarray) -> None:
    if not np.all(np.isfinite(var)) or np.any(var <= 0):
        k = int(np.argwhere(~(np.isfinite(var) & (var > 0)))[0][0])
        raise DegenerateStateError(
            f"the variance of state {k} is {np.ravel(var[k]).tolist()}: a variance must be "
            "positive and finite. EM collapses a state onto a single value when the variance "
            "prior is zero (the likelihood is unbounded there); give covars_prior > 0 "
            "(hmmlearn's default is 0.01), fewer states, or ties that keep the state spread")


def _float_array(value, name):
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError
        return arr.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be an array of real numbers, got "
                                f"{type(value).__name__}") from None


def _contiguous(value, name):
    return np.ascontiguousarray(_float_array(value, name))


def _checked_emissions(emissions, X):
    """``(table, gaussian, X)`` for the kernels: exactly one of table/gaussian is set."""
    if isinstance(emissions, DiagonalGaussian):
        means = _contiguous(emissions.means, "means")
        var = _contiguous(emissions.variances, "variances")
        if means.ndim != 2 or means.shape[0] == 0:
            raise ValidationError(f"means must be 2-D with shape (n_states, n_features), got "
                                  f"shape {means.shape}")
        if var.shape != means.shape:
            raise ValidationError(f"variances must have the shape of means {means.shape}, got "
                                  f"{var.shape}")
        if not np.all(np.isfinite(means)):
            raise ValidationError("means must be finite")
        _check_variances(var)
        if X is None:
            raise ValidationError("X is needed to evaluate Gaussian emissions")
        X = _contiguous(X, "X")
        if X.ndim != 2 or X.shape[1] != means.shape[1]:
            raise ValidationError(f"X must have shape (n_samples, {means.shape[1]}) for means "
                                  f"of shape {means.shape}, got {X.shape}")
        D = means.shape[1]
        const = -0.5 * (D * np.log(2 * np.pi) + np.log(var).sum(axis=1))
        return None, (means, np.ascontiguousarray(0.5 / var), const), X
    lp = _contiguous(emissions, "log_frameprob")
    if lp.ndim != 2 or lp.shape[1] == 0:
        raise ValidationError(f"log_frameprob must be 2-D with shape (n_samples, n_states), "
                              f"got shape {lp.shape}")
    if X is not None:
        X = _contiguous(X, "X")
        if X.ndim != 2 or X.shape[0] != lp.shape[0]:
            raise ValidationError(f"X must have shape ({lp.shape[0]}, n_features), got "
                                  f"{X.shape}")
    return lp, None, X


def _checked_inputs(startprob, transmat, emissions, lengths, X=None):
    """Contiguous float64 copies of the kernels' inputs, with every shape checked.

    The compiled loops do no bounds checks: a ``startprob`` shorter than the number of
    states, or ``lengths`` that sum past the end of the data, would read (and the Viterbi
    pass write) outside the arrays. Everything is checked here, in O(n + K²).

    Returns ``(startprob, transmat, table, gaussian, X, lengths)``.
    """
    table, gaussian, X = _checked_emissions(emissions, X)
    K = table.shape[1] if table is not None else gaussian[0].shape[0]
    T = table.shape[0] if table is not None else X.shape[0]
    sp_ = _contiguous(startprob, "startprob")
    tm = _contiguous(transmat, "transmat")
    what = "log_frameprob" if table is not None else "means"
    if sp_.shape != (K,):
        raise ValidationError(f"startprob must have shape ({K},) (one entry per state of "
                              f"{what}), got {sp_.shape}")
    if tm.shape != (K, K):
        raise ValidationError(f"transmat must have shape ({K}, {K}), got {tm.shape}")
    for name, arr in (("startprob", sp_), ("transmat", tm)):
        if not np.all(np.isfinite(arr)) or np.any(arr < -1e-9):  # rounding of 1 - sum
            raise ValidationError(f"{name} must hold finite, non-negative probabilities")
    raw = np.asarray(lengths)
    if raw.ndim != 1 or raw.size == 0 or not (np.issubdtype(raw.dtype, np.integer)):
        raise ValidationError(f"lengths must be a non-empty 1-D sequence of integers, got "
                              f"{raw.dtype} array of shape {raw.shape}")
    lens = raw.astype(np.int64)
    rows = "log_frameprob" if table is not None else "X"
    if np.any(lens <= 0) or int(lens.sum()) != T:
        raise ValidationError(f"lengths must be positive and sum to the {T} rows of {rows}, "
                              f"got {lens.tolist()[:10]} (sum {int(lens.sum())})")
    # rounding may leave -1e-17: the kernels need probabilities >= 0
    return np.maximum(sp_, 0.0), np.maximum(tm, 0.0), table, gaussian, X, lens


def _raise_impossible(t):
    raise ImpossibleObservationError(
        f"X row {int(t)} has probability zero under every state of the model (or the "
        "parameters hold NaN); check X against the emission parameters")


def _threads() -> int:
    """Threads over blocks of sequences: the ``hmm_threads`` setting (the results do not
    depend on it)."""
    from .._config import get_setting

    return int(get_setting("hmm_threads"))


def _buffer(workspace, name, shape):
    """A scratch array, reused across EM iterations when ``workspace`` is a dict (saves
    page faults)."""
    if workspace is None:
        return np.empty(shape)
    buf = workspace.get(name)
    if buf is None or buf.shape != shape:
        buf = workspace[name] = np.empty(shape)
    return buf


def _x_lanes(workspace, X, lengths):
    """:func:`~._estep_kernels.x_lanes` of ``X``, kept in ``workspace`` for the next E-step
    on the same array (the workspace holds ``X`` itself, so identity cannot be a reused
    address; X does not change during a fit)."""
    if X is None or workspace is None:
        return None
    held = workspace.get("x_lanes")
    if held is not None and held[0] is X and np.array_equal(held[1], lengths):
        return held[2]
    out = kernels.x_lanes(X, lengths, None if held is None else held[2][0])
    workspace["x_lanes"] = (X, lengths.copy(), out)
    return out


def forward_backward_stats(startprob, transmat, emissions, lengths, X=None, *,
                           n_moments=None, posteriors=True, workspace=None) -> EStep:
    """The whole E-step: log-likelihood, posteriors and sufficient statistics in one pass.

    Parameters
    ----------
    startprob : ndarray, shape (n_states,)
        Initial state distribution.
    transmat : ndarray, shape (n_states, n_states)
        Transition matrix.
    emissions : ndarray of shape (n_samples, n_states), or DiagonalGaussian
        Log emission probabilities ``log p(x_t | state)``, or diagonal Gaussian emissions
        evaluated from ``X`` inside the compiled pass.
    lengths : array_like of int
        Lengths of the sequences, stacked in order.
    X : ndarray, shape (n_samples, n_features), optional
        Observations: the input of Gaussian emissions, and the weights of the moments.
    n_moments : {0, 1, 2}, optional
        Posterior-weighted moments of ``X`` to accumulate (``x``; ``x`` and ``x**2``).
        Default: 2 when ``X`` is given, else 0.
    posteriors : bool
        Return the state posteriors (else only their sums are formed).
    workspace : dict, optional
        Scratch arrays kept between calls (EM); the returned posteriors then live in it and
        are overwritten by the next call.

    Returns
    -------
    EStep
        ``log_prob``, ``posteriors``, ``xi_sum``, ``start_sum`` and ``sums``.

    Raises
    ------
    ImpossibleObservationError
        If some observation has probability zero under every state.
    """
    startprob, transmat, table, gaussian, X, lengths = _checked_inputs(
        startprob, transmat, emissions, lengths, X)
    if n_moments is None:
        n_moments = 2 if X is not None else 0
    if n_moments and X is None:
        raise ValidationError("X is needed for the moments of X (n_moments > 0)")
    K = startprob.shape[0]
    post = _buffer(workspace, "posteriors", (int(lengths.sum()), K)) if posteriors else None
    lattice = _buffer(workspace, "lattice", (kernels.lane_layout(lengths, K)[-1],))
    log_prob, bad, stats = kernels.estep(startprob, transmat, lengths, table=table, X=X,
                                         gaussian=gaussian, n_moments=n_moments,
                                         posteriors=post, lattice=lattice,
                                         threads=_threads(),
                                         x_lanes_of=_x_lanes(workspace, X, lengths))
    if bad >= 0:
        _raise_impossible(bad)
    xi_acc, xi_full, post_sum, start_sum, obs, obs2 = stats
    sums = None
    if n_moments:
        sums = (post_sum, obs.T.copy(), obs2.T.copy() if n_moments == 2 else None)
    return EStep(log_prob, post, xi_acc * transmat + xi_full,
                 start_sum, sums)


def forward_backward(startprob, transmat, log_frameprob, lengths, X=None):
    """Posteriors, expected transition counts and log-likelihood of several sequences.

    Parameters
    ----------
    startprob : ndarray, shape (n_states,)
        Initial state distribution.
    transmat : ndarray, shape (n_states, n_states)
        Transition matrix.
    log_frameprob : ndarray of shape (n_samples, n_states), or DiagonalGaussian
        Log emission probabilities ``log p(x_t | state)`` (or Gaussian emissions of ``X``).
    lengths : array_like of int
        Lengths of the sequences stacked in ``log_frameprob``.
    X : ndarray, optional
        Observations (needed with DiagonalGaussian emissions only).

    Returns
    -------
    log_prob : float
        Log-likelihood of all sequences.
    posteriors : ndarray, shape (n_samples, n_states)
        State posteriors.
    xi_sum : ndarray, shape (n_states, n_states)
        Expected number of transitions ``i -> j`` summed over time and sequences.

    Raises
    ------
    ValueError
        If some observation has probability zero under every state.
    """
    est = forward_backward_stats(startprob, transmat, log_frameprob, lengths, X, n_moments=0)
    return est.log_prob, est.posteriors, est.xi_sum


def forward_loglik(startprob, transmat, log_frameprob, lengths, X=None):
    """Log-likelihood only (forward pass, O(n_states) working memory per thread).

    Parameters
    ----------
    startprob, transmat, log_frameprob, lengths, X
        As in :func:`forward_backward`.

    Returns
    -------
    float
        The log-likelihood.
    """
    startprob, transmat, table, gaussian, X, lengths = _checked_inputs(
        startprob, transmat, log_frameprob, lengths, X)
    log_prob, bad, _ = kernels.estep(startprob, transmat, lengths, table=table, X=X,
                                     gaussian=gaussian, backward=False, threads=_threads())
    if bad >= 0:
        _raise_impossible(bad)
    return log_prob


@njit(cache=True, nogil=True)
def _viterbi(log_start, log_trans, lp, offsets, K, path):
    delta = np.empty(K)
    new = np.empty(K)
    T = lp.shape[0]
    back = np.empty((T, K), dtype=np.int32)
    total = 0.0
    n_seq = offsets.shape[0] - 1
    for s in range(n_seq):
        start, stop = offsets[s], offsets[s + 1]
        for j in range(K):
            delta[j] = log_start[j] + lp[start, j]
        for t in range(start + 1, stop):
            for j in range(K):
                best = -np.inf
                arg = 0
                for i in range(K):
                    v = delta[i] + log_trans[i, j]
                    if v > best:
                        best = v
                        arg = i
                new[j] = best + lp[t, j]
                back[t, j] = arg
            for j in range(K):
                delta[j] = new[j]
        best = -np.inf
        arg = 0
        for j in range(K):
            if delta[j] > best:
                best = delta[j]
                arg = j
        total += best
        path[stop - 1] = arg
        for t in range(stop - 1, start, -1):
            arg = back[t, arg]
            path[t - 1] = arg
    return total


def viterbi(startprob, transmat, log_frameprob, lengths):
    """Most likely state path (log space throughout).

    Parameters
    ----------
    startprob, transmat, log_frameprob, lengths
        As in :func:`forward_backward`.

    Returns
    -------
    log_prob : float
        Log-probability of the best path (jointly with the observations).
    path : ndarray of int, shape (n_samples,)
        The best path, sequence by sequence.
    """
    startprob, transmat, lp, _, _, lengths = _checked_inputs(startprob, transmat,
                                                             np.asarray(log_frameprob), lengths)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    with np.errstate(divide="ignore"):
        ls = np.log(startprob)
        lt = np.log(transmat)
    path = np.empty(lp.shape[0], dtype=np.int64)
    logp = _viterbi(ls, lt, lp, offsets, lp.shape[1], path)
    return logp, path


@njit(cache=True, nogil=True, fastmath=_FAST)
def _gaussian_diag_loglik(X, means, variances, out):
    T, D = X.shape
    K = means.shape[0]
    mean_T = np.empty((D, K))  # feature-major, so the inner loop runs over states
    prec_T = np.empty((D, K))
    const = np.empty(K)
    for k in range(K):
        c = -0.5 * D * np.log(2 * np.pi)
        for d in range(D):
            c -= 0.5 * np.log(variances[k, d])
            prec_T[d, k] = 0.5 / variances[k, d]
            mean_T[d, k] = means[k, d]
        const[k] = c
    for t in range(T):
        for k in range(K):
            out[t, k] = const[k]
        for d in range(D):
            x = X[t, d]
            for k in range(K):
                diff = x - mean_T[d, k]
                out[t, k] -= diff * diff * prec_T[d, k]


def gaussian_diag_loglik(X, means, variances, out=None):
    """Log-density of each row of ``X`` under diagonal Gaussians (compiled).

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
        Observations.
    means : ndarray, shape (n_states, n_features)
        Means.
    variances : ndarray, shape (n_states, n_features)
        Diagonal variances.
    out : ndarray, shape (n_samples, n_states), optional
        Where to write the result.

    Returns
    -------
    ndarray, shape (n_samples, n_states)
        ``log N(x_t | means[k], diag(variances[k]))``.
    """
    X = np.ascontiguousarray(_float_array(X, "X"))
    means = np.ascontiguousarray(_float_array(means, "means"))
    variances = np.ascontiguousarray(_float_array(variances, "variances"))
    _check_variances(variances)
    if X.ndim != 2 or means.ndim != 2 or means.shape[1] != X.shape[1]:
        raise ValidationError(f"X has shape {X.shape} but means has shape {means.shape}; both "
                              "must be 2-D with the same number of features")
    if variances.shape != means.shape:
        raise ValidationError(f"variances must have the shape of means {means.shape}, got "
                              f"{variances.shape}")
    if out is None or out.shape != (X.shape[0], means.shape[0]) or out.dtype != np.float64 \
            or not out.flags.c_contiguous:
        out = np.empty((X.shape[0], means.shape[0]))
    _gaussian_diag_loglik(X, means, variances, out)
    return out
