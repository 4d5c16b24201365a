"""Compiled forward-backward that does not underflow.

Every time step is scaled twice: the emission row is shifted by its maximum before
exponentiation (so a 50-sigma outlier, whose log-probabilities are all around -1250, still
gives a row with a 1 in it), and the forward vector is renormalised to sum to one. The
log-likelihood is the sum of the log normalisers plus the row shifts. When the normaliser of
a step is so small that precision would be lost (the most likely emitting state was almost
unreachable), that step is redone in log space. The result equals a pure log-space
computation to rounding, at the speed of the scaled algorithm.

The kernels work on all sequences in one call (``offsets`` delimit them) and accumulate the
transition statistics inside the compiled loop; the posteriors overwrite the forward lattice
so that memory stays at two ``(n_samples, n_states)`` arrays.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import ArgumentTypeError, ValidationError

__all__ = ["forward_backward", "forward_backward_stats", "forward_loglik", "viterbi",
           "ImpossibleObservationError", "gaussian_diag_loglik"]

#: Floating-point licences for the hot loops: reassociation (vectorised sums) and fused
#: multiply-add, but no assumptions about NaN or infinity (the guard relies on them).
_FAST = {"reassoc", "contract", "nsz"}
#: Below this normaliser a forward step is recomputed in log space.
_GUARD = 1e-250
#: Largest emission ratio kept after a guarded step (avoids inf * 0 in the backward pass).
_CLAMP = 1e300


@njit(cache=True, nogil=True)
def _predict(first, prev, startprob, transmat, pred, K):
    """One-step prediction ``pred = prev @ transmat`` (or ``startprob`` at a start)."""
    if first:
        for j in range(K):
            pred[j] = startprob[j]
        return
    for j in range(K):
        pred[j] = 0.0
    for i in range(K):
        a = prev[i]
        if a != 0.0:
            for j in range(K):
                pred[j] += a * transmat[i, j]


@njit(cache=True, nogil=True)
def _step(lp_row, pred, B_row, alpha_row, K):
    """Filter one step: write ``alpha_row`` and ``B_row``; return (log c_t, c_rel).

    ``alpha_row = pred * B_row / c_rel`` and ``log c_t = log p(x_t | past)``. The backward
    pass uses ``B_row / c_rel``. NaN when no state can emit the observation.
    """
    shift = -np.inf
    for j in range(K):
        if lp_row[j] > shift:
            shift = lp_row[j]
    if not shift > -np.inf:  # every state gives probability zero (or NaN)
        return np.nan, 0.0
    c = 0.0
    for j in range(K):
        b = np.exp(lp_row[j] - shift)
        B_row[j] = b
        c += pred[j] * b
    if c > _GUARD:
        inv = 1.0 / c
        for j in range(K):
            alpha_row[j] = pred[j] * B_row[j] * inv
        return np.log(c) + shift, c
    # guarded step: the normaliser in log space; emissions rescaled so that c_rel == 1
    m = -np.inf
    for j in range(K):
        if pred[j] > 0.0:
            v = np.log(pred[j]) + lp_row[j]
            if v > m:
                m = v
    if not m > -np.inf:
        return np.nan, 0.0
    s = 0.0
    for j in range(K):
        if pred[j] > 0.0:
            s += np.exp(np.log(pred[j]) + lp_row[j] - m)
    logc = m + np.log(s)
    for j in range(K):
        b = np.exp(lp_row[j] - logc)
        B_row[j] = b if b < _CLAMP else _CLAMP
        if pred[j] > 0.0:
            alpha_row[j] = np.exp(np.log(pred[j]) + lp_row[j] - logc)
        else:
            alpha_row[j] = 0.0
    return logc, 1.0


@njit(cache=True, nogil=True, fastmath=_FAST)
def _forward(startprob, transmat_T, lp, B, shift, offsets, alpha, scale, K):
    """Scaled forward pass over all sequences (``transmat_T`` is the transposed matrix).

    ``B[t] = exp(lp[t] - shift[t])`` with ``shift[t] = max(lp[t])`` on entry. Writes the
    normalised ``alpha`` and the normalisers ``scale`` (the backward pass divides ``B[t]``
    by ``scale[t]``); a guarded step rewrites ``B[t]`` in place. Returns the log-likelihood
    minus ``sum(shift)``, or NaN with the failing row index in ``scale[0]``.
    """
    pred = np.empty(K)
    logsum = 0.0
    prod = 1.0
    n_seq = offsets.shape[0] - 1
    for s in range(n_seq):
        start, stop = offsets[s], offsets[s + 1]
        for t in range(start, stop):
            if not shift[t] > -np.inf:  # no state can emit x_t (or NaN parameters)
                scale[0] = t
                return np.nan
            if t == start:
                for j in range(K):
                    pred[j] = startprob[j]
            else:  # pred = alpha[t-1] @ transmat, as dot products with transmat's columns
                for j in range(K):
                    acc = 0.0
                    for i in range(K):
                        acc += alpha[t - 1, i] * transmat_T[j, i]
                    pred[j] = acc
            c = 0.0
            for j in range(K):
                c += pred[j] * B[t, j]
            if c > _GUARD:
                inv = 1.0 / c
                for j in range(K):
                    alpha[t, j] = pred[j] * B[t, j] * inv
                scale[t] = c
                prod *= c
                if prod < 1e-50:
                    logsum += np.log(prod)
                    prod = 1.0
                continue
            # guarded step: the normaliser in log space, B[t] rescaled so that scale == 1
            m = -np.inf
            for j in range(K):
                if pred[j] > 0.0:
                    v = np.log(pred[j]) + lp[t, j]
                    if v > m:
                        m = v
            if not m > -np.inf:
                scale[0] = t
                return np.nan
            acc = 0.0
            for j in range(K):
                if pred[j] > 0.0:
                    acc += np.exp(np.log(pred[j]) + lp[t, j] - m)
            logc = m + np.log(acc)
            for j in range(K):
                b = np.exp(lp[t, j] - logc)
                B[t, j] = b if b < _CLAMP else _CLAMP
                if pred[j] > 0.0:
                    alpha[t, j] = np.exp(np.log(pred[j]) + lp[t, j] - logc)
                else:
                    alpha[t, j] = 0.0
            scale[t] = 1.0
            logsum += logc - shift[t]
    return logsum + np.log(prod)


@njit(cache=True, nogil=True, fastmath=_FAST)
def _backward_stats(transmat, offsets, alpha, B, scale, xi_acc, K, X, post_acc, obs_acc,
                    obs2_acc):
    """Backward pass: posteriors overwrite ``alpha``; xi sums and, when ``X`` has columns,
    the posterior-weighted sums of ``X`` and ``X**2`` are accumulated."""
    beta = np.empty(K)
    tmp = np.empty(K)
    D = X.shape[1]
    n_seq = offsets.shape[0] - 1
    for s in range(n_seq):
        start, stop = offsets[s], offsets[s + 1]
        for j in range(K):
            beta[j] = 1.0
        for t in range(stop - 1, start - 1, -1):
            if t < stop - 1:
                inv = 1.0 / scale[t + 1]
                for j in range(K):
                    tmp[j] = B[t + 1, j] * beta[j] * inv
                for i in range(K):
                    a = alpha[t, i]
                    acc = 0.0
                    for j in range(K):
                        xi_acc[i, j] += a * tmp[j]
                        acc += transmat[i, j] * tmp[j]
                    beta[i] = acc
            norm = 0.0
            for i in range(K):
                g = alpha[t, i] * beta[i]
                alpha[t, i] = g
                norm += g
            inv = 1.0 / norm
            for i in range(K):
                alpha[t, i] *= inv
            if D > 0:
                for i in range(K):
                    post_acc[i] += alpha[t, i]
                for d in range(D):
                    x = X[t, d]
                    x2 = x * x
                    for i in range(K):
                        g = alpha[t, i]
                        obs_acc[d, i] += g * x
                        obs2_acc[d, i] += g * x2


@njit(cache=True, nogil=True, parallel=True)
def _fb_parallel(startprob, transmat, transmat_T, lp, B, shift, offsets, alpha, scale, K, X,
                 xi_out, post_out, obs_out, obs2_out, ll_out):
    """Forward and backward passes of independent sequences on several threads."""
    n_seq = offsets.shape[0] - 1
    for s in prange(n_seq):
        off = offsets[s:s + 2]
        ll = _forward(startprob, transmat_T, lp, B, shift, off, alpha, scale, K)
        ll_out[s] = ll
        if not np.isnan(ll):
            _backward_stats(transmat, off, alpha, B, scale, xi_out[s], K, X, post_out[s],
                            obs_out[s], obs2_out[s])


@njit(cache=True, nogil=True)
def _shift_exp(lp, B, shift):
    T, K = lp.shape
    for t in range(T):
        m = -np.inf
        for j in range(K):
            if lp[t, j] > m:
                m = lp[t, j]
        shift[t] = m
        if m > -np.inf:
            for j in range(K):
                B[t, j] = lp[t, j] - m
        else:
            for j in range(K):
                B[t, j] = 0.0


def _offsets(lengths: np.ndarray) -> np.ndarray:
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    return off


class ImpossibleObservationError(ValidationError):
    """An observation has probability zero under every state."""


def _checked_inputs(startprob, transmat, log_frameprob, lengths, X=None):
    """Contiguous float64 copies of the kernels' inputs, with every shape checked.

    The compiled loops do no bounds checks: a ``startprob`` shorter than the number of
    states, or ``lengths`` that sum past the end of ``log_frameprob``, would read (and the
    Viterbi pass write) outside the arrays. Everything is checked here, in O(n + K²).
    """
    lp = _float_array(log_frameprob, "log_frameprob")
    if lp.ndim != 2 or lp.shape[1] == 0:
        raise ValidationError(f"log_frameprob must be 2-D with shape (n_samples, n_states), "
                              f"got shape {lp.shape}")
    T, K = lp.shape
    sp_ = _float_array(startprob, "startprob")
    tm = _float_array(transmat, "transmat")
    if sp_.shape != (K,):
        raise ValidationError(f"startprob must have shape ({K},) (one entry per state of "
                              f"log_frameprob), got {sp_.shape}")
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
    if np.any(lens <= 0) or int(lens.sum()) != T:
        raise ValidationError(f"lengths must be positive and sum to the {T} rows of "
                              f"log_frameprob, got {lens.tolist()[:10]} (sum {int(lens.sum())})")
    Xc = None
    if X is not None:
        Xc = _float_array(X, "X")
        if Xc.ndim != 2 or Xc.shape[0] != T:
            raise ValidationError(f"X must have shape ({T}, n_features), got {Xc.shape}")
    return (np.ascontiguousarray(sp_), np.ascontiguousarray(tm), np.ascontiguousarray(lp),
            lens, None if Xc is None else np.ascontiguousarray(Xc))


def _float_array(value, name):
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError
        return arr.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{name} must be an array of real numbers, got "
                                f"{type(value).__name__}") from None


def _raise_impossible(t):
    raise ImpossibleObservationError(
        f"X row {int(t)} has probability zero under every state of the model (or the "
        "parameters hold NaN); check X against the emission parameters")


def forward_backward(startprob, transmat, log_frameprob, lengths):
    """Posteriors, expected transition counts and log-likelihood of several sequences.

    Parameters
    ----------
    startprob : ndarray, shape (n_states,)
        Initial state distribution.
    transmat : ndarray, shape (n_states, n_states)
        Transition matrix.
    log_frameprob : ndarray, shape (n_samples, n_states)
        Log emission probabilities ``log p(x_t | state)``.
    lengths : array_like of int
        Lengths of the sequences stacked in ``log_frameprob``.

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
    log_prob, post, xi, _ = forward_backward_stats(startprob, transmat, log_frameprob,
                                                   lengths)
    return log_prob, post, xi


def _parallel_enabled() -> bool:
    """Sequences run on several threads only when the ``hmm_threads`` setting is > 1.

    Off by default: on the two shared cores of the CI machine the threaded version was
    slower (2.4 s serial vs 3.9 s threaded for the benchmark's 20 iterations).
    """
    from .._config import get_config

    return get_config()["hmm_threads"] > 1


def _buffer(workspace, name, shape):
    """A scratch array, reused across EM iterations when ``workspace`` is a dict."""
    if workspace is None:
        return np.empty(shape)
    buf = workspace.get(name)
    if buf is None or buf.shape != shape:
        buf = workspace[name] = np.empty(shape)
    return buf


def forward_backward_stats(startprob, transmat, log_frameprob, lengths, X=None, *,
                           workspace=None):
    """:func:`forward_backward` plus posterior-weighted sums of ``X`` and ``X**2``.

    Parameters
    ----------
    startprob, transmat, log_frameprob, lengths
        As in :func:`forward_backward`.
    X : ndarray, shape (n_samples, n_features), optional
        Observations whose weighted sums are accumulated in the backward pass.
    workspace : dict, optional
        Scratch arrays kept between calls (saves page faults during EM); the returned
        posteriors then live in it and are overwritten by the next call.

    Returns
    -------
    log_prob, posteriors, xi_sum
        As in :func:`forward_backward`.
    sums : tuple of ndarray or None
        ``(sum_t gamma_tk, sum_t gamma_tk x_t, sum_t gamma_tk x_t**2)`` when ``X`` is
        given.
    """
    startprob, transmat, lp, lengths, X = _checked_inputs(startprob, transmat, log_frameprob,
                                                          lengths, X)
    transmat_T = np.ascontiguousarray(transmat.T)
    T, K = lp.shape
    offsets = _offsets(lengths)
    B = _buffer(workspace, "B", (T, K))
    shift = _buffer(workspace, "shift", (T,))
    _shift_exp(lp, B, shift)
    np.exp(B, out=B)
    alpha = _buffer(workspace, "alpha", (T, K))
    scale = _buffer(workspace, "scale", (T,))
    Xc = np.empty((T, 0)) if X is None else X
    D = Xc.shape[1]
    n_seq = offsets.size - 1
    if n_seq > 1 and _parallel_enabled():
        xi_s, post_s = np.zeros((n_seq, K, K)), np.zeros((n_seq, K))
        obs_s, obs2_s = np.zeros((n_seq, D, K)), np.zeros((n_seq, D, K))
        ll_s = np.empty(n_seq)
        _fb_parallel(startprob, transmat, transmat_T, lp, B, shift, offsets, alpha, scale, K,
                     Xc, xi_s, post_s, obs_s, obs2_s, ll_s)
        if np.isnan(ll_s).any():  # find the offending row with the serial pass
            _shift_exp(lp, B, shift)
            np.exp(B, out=B)
            _forward(startprob, transmat_T, lp, B, shift, offsets, alpha, scale, K)
            _raise_impossible(scale[0])
        log_prob = ll_s.sum() + shift.sum()
        xi_acc, post_acc = xi_s.sum(axis=0), post_s.sum(axis=0)
        obs_acc, obs2_acc = obs_s.sum(axis=0), obs2_s.sum(axis=0)
    else:
        log_prob = _forward(startprob, transmat_T, lp, B, shift, offsets, alpha, scale, K)
        if np.isnan(log_prob):
            _raise_impossible(scale[0])
        log_prob += shift.sum()
        xi_acc = np.zeros((K, K))
        post_acc, obs_acc, obs2_acc = np.zeros(K), np.zeros((D, K)), np.zeros((D, K))
        _backward_stats(transmat, offsets, alpha, B, scale, xi_acc, K, Xc, post_acc,
                        obs_acc, obs2_acc)
    sums = (post_acc, obs_acc.T.copy(), obs2_acc.T.copy()) if X is not None else None
    return log_prob, alpha, xi_acc * transmat, sums


@njit(cache=True, nogil=True)
def _forward_loglik(startprob, transmat, lp, offsets, K, where):
    pred = np.empty(K)
    a = np.empty(K)
    Brow = np.empty(K)
    total = 0.0
    n_seq = offsets.shape[0] - 1
    for s in range(n_seq):
        start, stop = offsets[s], offsets[s + 1]
        for t in range(start, stop):
            _predict(t == start, a, startprob, transmat, pred, K)
            logc, c_rel = _step(lp[t], pred, Brow, a, K)
            if np.isnan(logc):
                where[0] = t
                return np.nan
            total += logc
    return total


def forward_loglik(startprob, transmat, log_frameprob, lengths):
    """Log-likelihood only (forward pass with O(n_states) working memory).

    Parameters
    ----------
    startprob, transmat, log_frameprob, lengths
        As in :func:`forward_backward`.

    Returns
    -------
    float
        The log-likelihood.
    """
    startprob, transmat, lp, lengths, _ = _checked_inputs(startprob, transmat, log_frameprob,
                                                          lengths)
    offsets = _offsets(lengths)
    where = np.zeros(1, dtype=np.int64)
    log_prob = _forward_loglik(startprob, transmat, lp, offsets, lp.shape[1], where)
    if np.isnan(log_prob):
        _raise_impossible(where[0])
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
    startprob, transmat, lp, lengths, _ = _checked_inputs(startprob, transmat, log_frameprob,
                                                          lengths)
    offsets = _offsets(lengths)
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
