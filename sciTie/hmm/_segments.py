"""Exact forward-backward and Viterbi over segments of a hidden semi-Markov model.

A state, once entered, stays for a duration ``d`` in ``1..D`` drawn from its dwell
distribution ``p_k(d)`` and then moves to a *different* state with ``transmat[k, j]``
(zero diagonal). The last segment of a sequence is right-censored: it has lasted at least
its observed length, with probability ``S_k(d) = sum_{u >= d} p_k(u)``; this is exactly the
ordinary HMM on the expanded state space in which state ``k`` is a countdown chain of ``D``
substates (checked in the tests).

The recursions run in log space over segment ends (forward) and segment starts (backward),
``O(T K D + T K^2)`` per sequence of length T; a segment's emission log-likelihood is a
running sum over its duration, so a row whose frame log-probability is ``-inf`` (a known
state elsewhere) stays ``-inf`` and never becomes NaN. The state posteriors are sums of
non-negative segment masses (no differences), so they carry no cancellation error.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..errors import ValidationError
from ._forward_backward import ImpossibleObservationError

__all__ = ["SegmentStatistics", "segment_loglik", "segment_statistics", "segment_viterbi",
           "spread_censored"]


class SegmentStatistics(NamedTuple):
    """What one E-step over segments returns (sums over the sequences)."""

    log_prob: float
    #: ``P(state_t = k | X)``, shape (n_samples, n_components)
    posteriors: np.ndarray
    #: expected number of sequences starting in each state, shape (n_components,)
    start: np.ndarray
    #: expected number of transitions k -> j between segments, shape (K, K)
    trans: np.ndarray
    #: expected number of complete segments of state k lasting d (column d - 1), (K, D)
    complete: np.ndarray
    #: expected number of last (censored) segments of state k observed for d steps, (K, D)
    censored: np.ndarray


@njit(cache=True, nogil=True)
def _lse(buf, n):
    m = -np.inf
    for i in range(n):
        if buf[i] > m:
            m = buf[i]
    if m == -np.inf:
        return -np.inf
    s = 0.0
    for i in range(n):
        s += np.exp(buf[i] - m)
    return m + np.log(s)


@njit(cache=True, nogil=True)
def _forward(lpi, lA, lp, lS, frames, E, F):
    """Fill E[s, j] (log P(x_<s, a segment of j starts at s)) and F[e, j] (log P(x_<e, a
    segment of j ends at e - 1)); return log P(x) with the last segment censored."""
    T, K = frames.shape
    D = lp.shape[1]
    buf = np.empty(D * K)
    for j in range(K):
        E[0, j] = lpi[j]
    for e in range(1, T + 1):
        for j in range(K):
            emis = 0.0
            n = min(D, e)
            for d in range(1, n + 1):
                emis += frames[e - d, j]
                buf[d - 1] = E[e - d, j] + (lp[j, d - 1] if e < T else lS[j, d - 1]) + emis
            F[e, j] = _lse(buf, n)
        if e < T:
            for j in range(K):
                for k in range(K):
                    buf[k] = F[e, k] + lA[k, j]
                E[e, j] = _lse(buf, K)
    for j in range(K):
        buf[j] = F[T, j]
    return _lse(buf, K)


@njit(cache=True, nogil=True)
def _backward(lpi, lA, lp, lS, frames, Bs, Be):
    """Fill Bs[s, j] (log P(x_>=s | a segment of j starts at s)) and Be[e, k] (log P(x_>=e |
    a segment of k ended at e - 1))."""
    T, K = frames.shape
    D = lp.shape[1]
    buf = np.empty(max(D, K))
    for s in range(T - 1, -1, -1):
        for j in range(K):
            emis = 0.0
            n = min(D, T - s)
            for d in range(1, n + 1):
                emis += frames[s + d - 1, j]
                tail = lp[j, d - 1] + Be[s + d, j] if s + d < T else lS[j, d - 1]
                buf[d - 1] = emis + tail
            Bs[s, j] = _lse(buf, n)
        if s >= 1:
            for k in range(K):
                for j in range(K):
                    buf[j] = lA[k, j] + Bs[s, j]
                Be[s, k] = _lse(buf, K)


@njit(cache=True, nogil=True)
def _statistics(lpi, lA, lp, lS, frames, E, F, Bs, Be, L, post, start, trans, complete,
                censored):
    T, K = frames.shape
    D = lp.shape[1]
    mass = np.empty(D)
    for j in range(K):
        start[j] += np.exp(lpi[j] + Bs[0, j] - L)
    for e in range(1, T):
        for k in range(K):
            for j in range(K):
                trans[k, j] += np.exp(F[e, k] + lA[k, j] + Bs[e, j] - L)
    for s in range(T):
        for j in range(K):
            if E[s, j] == -np.inf:
                continue
            emis = 0.0
            n = min(D, T - s)
            for d in range(1, n + 1):
                emis += frames[s + d - 1, j]
                if s + d < T:
                    m = np.exp(E[s, j] + emis + lp[j, d - 1] + Be[s + d, j] - L)
                    complete[j, d - 1] += m
                else:
                    m = np.exp(E[s, j] + emis + lS[j, d - 1] - L)
                    censored[j, d - 1] += m
                mass[d - 1] = m
            # a segment starting at s of duration >= r covers row s + r - 1
            tail = 0.0
            for r in range(n, 0, -1):
                tail += mass[r - 1]
                post[s + r - 1, j] += tail


@njit(cache=True, nogil=True)
def _all_statistics(lpi, lA, lp, lS, frames, offsets, post, start, trans, complete, censored,
                    logliks):
    K = frames.shape[1]
    for i in range(offsets.size - 1):
        a, b = offsets[i], offsets[i + 1]
        T = b - a
        fr = frames[a:b]
        E = np.empty((T, K))
        F = np.empty((T + 1, K))
        Bs = np.empty((T, K))
        Be = np.full((T + 1, K), -np.inf)
        L = _forward(lpi, lA, lp, lS, fr, E, F)
        logliks[i] = L
        if L == -np.inf:
            return i
        _backward(lpi, lA, lp, lS, fr, Bs, Be)
        _statistics(lpi, lA, lp, lS, fr, E, F, Bs, Be, L, post[a:b], start, trans, complete,
                    censored)
    return -1


@njit(cache=True, nogil=True)
def _all_logliks(lpi, lA, lp, lS, frames, offsets, logliks):
    K = frames.shape[1]
    for i in range(offsets.size - 1):
        a, b = offsets[i], offsets[i + 1]
        T = b - a
        E = np.empty((T, K))
        F = np.empty((T + 1, K))
        logliks[i] = _forward(lpi, lA, lp, lS, frames[a:b], E, F)


@njit(cache=True, nogil=True)
def _viterbi_one(lpi, lA, lp, lS, frames, path):
    T, K = frames.shape
    D = lp.shape[1]
    VE = np.empty((T, K))
    VF = np.empty((T + 1, K))
    arg_k = np.zeros((T, K), dtype=np.int64)
    arg_d = np.zeros((T + 1, K), dtype=np.int64)
    for j in range(K):
        VE[0, j] = lpi[j]
    for e in range(1, T + 1):
        for j in range(K):
            emis = 0.0
            best, best_d = -np.inf, 1
            for d in range(1, min(D, e) + 1):
                emis += frames[e - d, j]
                v = VE[e - d, j] + (lp[j, d - 1] if e < T else lS[j, d - 1]) + emis
                if v > best:
                    best, best_d = v, d
            VF[e, j], arg_d[e, j] = best, best_d
        if e < T:
            for j in range(K):
                best, best_k = -np.inf, 0
                for k in range(K):
                    v = VF[e, k] + lA[k, j]
                    if v > best:
                        best, best_k = v, k
                VE[e, j], arg_k[e, j] = best, best_k
    best, j = -np.inf, 0
    for k in range(K):
        if VF[T, k] > best:
            best, j = VF[T, k], k
    e = T
    while e > 0:
        d = arg_d[e, j]
        for t in range(e - d, e):
            path[t] = j
        e -= d
        if e > 0:
            j = arg_k[e, j]
    return best


@njit(cache=True, nogil=True)
def _all_viterbi(lpi, lA, lp, lS, frames, offsets, path):
    total = 0.0
    for i in range(offsets.size - 1):
        a, b = offsets[i], offsets[i + 1]
        total += _viterbi_one(lpi, lA, lp, lS, frames[a:b], path[a:b])
    return total


def _logs(startprob, transmat, dwell, log_frames, lengths):
    """Log-space inputs of the kernels, checked; ``dwell`` is ``p_k(d)``, shape (K, D)."""
    frames = np.ascontiguousarray(log_frames, dtype=np.float64)
    K = frames.shape[1]
    dwell = np.asarray(dwell, dtype=np.float64)
    if dwell.ndim != 2 or dwell.shape[0] != K:
        raise ValidationError(f"the dwell distributions must have shape (n_components={K}, "
                              f"max_duration), got {dwell.shape}")
    if np.any(np.isnan(frames)):
        raise ValidationError("the frame log-likelihoods contain NaN")
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] != frames.shape[0]:
        raise ValidationError(f"lengths sum to {offsets[-1]} but there are {frames.shape[0]} "
                              "rows")
    # a probability written as 1 - sum(others) can round to -2e-16: it is a zero
    dwell = np.maximum(dwell, 0.0)
    # survival S(d) = sum_{u >= d} p(u), summed from the tail so small values keep precision
    survival = np.cumsum(dwell[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore"):
        return (np.log(np.maximum(np.asarray(startprob, dtype=np.float64), 0.0)),
                np.log(np.maximum(np.asarray(transmat, dtype=np.float64), 0.0)),
                np.log(dwell), np.log(survival), frames, offsets)


def _impossible(i: int, offsets: np.ndarray) -> ImpossibleObservationError:
    return ImpossibleObservationError(
        f"sequence {i} (rows {offsets[i]}..{offsets[i + 1] - 1}) has probability zero under "
        "the model: no segmentation into dwell times of at most max_duration, between "
        "states the transitions allow, explains it")


def segment_loglik(startprob, transmat, dwell, log_frames, lengths) -> float:
    """``log p(X)`` of a hidden semi-Markov model (forward pass only).

    Parameters
    ----------
    startprob : ndarray, shape (n_components,)
    transmat : ndarray, shape (n_components, n_components)
        Transitions between segments (zero diagonal).
    dwell : ndarray, shape (n_components, max_duration)
        ``dwell[k, d - 1] = p_k(d)``, each row summing to one.
    log_frames : ndarray, shape (n_samples, n_components)
        ``log p(x_t | state k)``.
    lengths : ndarray of int
        Sequence lengths.

    Returns
    -------
    float
    """
    lpi, lA, lp, lS, frames, offsets = _logs(startprob, transmat, dwell, log_frames, lengths)
    out = np.empty(offsets.size - 1)
    _all_logliks(lpi, lA, lp, lS, frames, offsets, out)
    bad = np.flatnonzero(out == -np.inf)
    if bad.size:
        raise _impossible(int(bad[0]), offsets)
    return float(out.sum())


def segment_statistics(startprob, transmat, dwell, log_frames, lengths) -> SegmentStatistics:
    """The E-step of a hidden semi-Markov model (arguments as :func:`segment_loglik`)."""
    lpi, lA, lp, lS, frames, offsets = _logs(startprob, transmat, dwell, log_frames, lengths)
    N, K = frames.shape
    D = lp.shape[1]
    post = np.zeros((N, K))
    start, trans = np.zeros(K), np.zeros((K, K))
    complete, censored = np.zeros((K, D)), np.zeros((K, D))
    logliks = np.empty(offsets.size - 1)
    failed = _all_statistics(lpi, lA, lp, lS, frames, offsets, post, start, trans, complete,
                             censored, logliks)
    if failed >= 0:
        raise _impossible(int(failed), offsets)
    return SegmentStatistics(float(logliks.sum()), post, start, trans, complete, censored)


def segment_viterbi(startprob, transmat, dwell, log_frames, lengths) -> tuple[float, np.ndarray]:
    """Most likely state path (arguments as :func:`segment_loglik`).

    Returns
    -------
    log_prob : float
        ``log p(X, path)`` of the best path; a path of labels fixes the segmentation, since
        a state never follows itself.
    path : ndarray of int, shape (n_samples,)
    """
    lpi, lA, lp, lS, frames, offsets = _logs(startprob, transmat, dwell, log_frames, lengths)
    path = np.empty(frames.shape[0], dtype=np.int64)
    log_prob = _all_viterbi(lpi, lA, lp, lS, frames, offsets, path)
    if log_prob == -np.inf:
        raise ImpossibleObservationError("no state path has non-zero probability under the "
                                         "model (dwell times, transitions or known states)")
    return float(log_prob), path


def spread_censored(complete: np.ndarray, censored: np.ndarray, dwell: np.ndarray) -> np.ndarray:
    """Expected counts of full durations, ``(K, D)``: complete segments as they are, and each
    censored segment observed for d steps spread over the durations ``u >= d`` in proportion
    to ``p(u)`` (its full duration given that it lasted at least d), as EM's complete data
    requires."""
    dwell = np.maximum(np.asarray(dwell, dtype=float), 0.0)
    survival = np.cumsum(dwell[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(survival > 0, censored / survival, 0.0)
    # sum_{d <= u} censored[d] / S(d), times p(u)
    return complete + np.cumsum(rate, axis=1) * dwell
