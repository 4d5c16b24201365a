"""E-step of one block of sequences alone, one row at a time (no lanes).

A group of :mod:`sciTie.hmm._estep_lanes` whose blocks are all empty but one would run its
chunk passes (emissions, exponentials, predictions, statistics) on four lanes for one; a
lone long sequence then costs about twice this scalar pass. The drivers send such a group
here. The arithmetic is the lanes' up to rounding (sums may be reassociated): the same
shifted exponentials, forward guard and smoothing recursion on the filtered distributions,
with the same log-space steps.

Arrays inside a block of ``_ROWS`` rows are state-major, ``(n_states, _ROWS)``: every loop
that is not part of a recursion runs over the block's rows and vectorises.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._estep_blocks import (
    _FAST,
    _GUARD,
    _TINY,
    GAUSSIAN,
    _gaussian_block,
    _guarded_step,
    _log_space_smooth,
)
from ._vec4 import exp_nonpositive4, load4, store4

__all__ = ["single_block"]

#: Rows handled at a time (a few (K, rows) buffers stay in L1/L2).
_ROWS = 128


@njit(cache=True, nogil=True, error_model="numpy")
def _transpose_rows(src, r0, n, dst):
    """``dst[k, i] = src[r0 + i, k]`` for ``i < n``."""
    for i in range(n):
        for k in range(src.shape[1]):
            dst[k, i] = src[r0 + i, k]


@njit(cache=True, nogil=True, error_model="numpy")
def _shift_exp(lpT, n, BT, shift, check):
    """``shift[i] = max_k lpT[k, i]``, ``BT = exp(lpT - shift)``; the sum of the shifts.

    A row holding NaN gets a NaN shift and a row of ``-inf`` a ``-inf`` shift; the forward
    pass reports both. ``lpT`` is left shifted.
    """
    K = lpT.shape[0]
    for i in range(n):
        shift[i] = -np.inf
        check[i] = 0.0
    for k in range(K):
        for i in range(n):
            v = lpT[k, i]
            shift[i] = v if v > shift[i] else shift[i]
            check[i] += v  # NaN if any entry is NaN (entries are never +inf)
    total = 0.0
    for i in range(n):
        if np.isnan(check[i]):
            shift[i] = np.nan
        elif shift[i] > -np.inf:
            total += shift[i]
    for k in range(K):  # lpT is shifted in place (the guarded steps see it so)
        for i in range(n):
            lpT[k, i] -= shift[i]
        for i in range(0, n, 4):  # the lanes' vector exp, four rows at a time (past n: unused)
            store4(BT, k * _ROWS + i, exp_nonpositive4(load4(lpT, k * _ROWS + i)))
    return total


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _filter(startprob, AT, source, table, X, means, prec, const, start, stop, alpha, a0,
            XT, lpT, BT, shift, check, pred, prev):
    """Forward filter of the sequence ``[start, stop)``; returns ``(log p, failed row)``.

    The filtered distribution of row ``t`` goes to ``alpha[t - a0]`` when ``alpha`` has
    rows. The failed row is -1 unless some row has probability zero under every state (or
    NaN); the log-likelihood is then NaN.
    """
    K = startprob.shape[0]
    store = alpha.shape[0] > 0
    logsum = 0.0
    prod = 1.0
    shifts = 0.0
    for t0 in range(start, stop, _ROWS):
        n = min(_ROWS, stop - t0)
        if source == GAUSSIAN:
            _transpose_rows(X, t0, n, XT)
            _gaussian_block(XT, n, means, prec, const, lpT)
        else:
            _transpose_rows(table, t0, n, lpT)
        shifts += _shift_exp(lpT, n, BT, shift, check)
        for i in range(n):
            t = t0 + i
            if not shift[i] > -np.inf:
                return np.nan, t
            if t == start:
                for j in range(K):
                    pred[j] = startprob[j]
            else:  # pred = prev @ A, as dot products with the columns of A
                for j in range(K):
                    acc = 0.0
                    for k in range(K):
                        acc += prev[k] * AT[j, k]
                    pred[j] = acc
            c = 0.0
            for j in range(K):
                c += pred[j] * BT[j, i]
            if c > _GUARD:
                inv = 1.0 / c
                for j in range(K):
                    prev[j] = pred[j] * BT[j, i] * inv
                prod *= c
                if prod < 1e-50:
                    logsum += np.log(prod)
                    prod = 1.0
            else:  # (lpT holds the shifted log-densities: the shift is added back)
                logc = _guarded_step(lpT, i, pred, prev)
                if np.isnan(logc):
                    return np.nan, t
                logsum += logc
            if store:
                for j in range(K):
                    alpha[t - a0, j] = prev[j]
    return logsum + np.log(prod) + shifts, -1


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _statistics(n, aT, rT, gT, XT, n_moments, xi_acc, post_acc, obs_acc, obs2_acc):
    """Add a block's ``sum_i aT[:, i] rT[:, i]^T``, occupancies and X-moments."""
    K = aT.shape[0]
    for k in range(K):
        for j in range(K):
            acc = 0.0
            for i in range(n):
                acc += aT[k, i] * rT[j, i]
            xi_acc[k, j] += acc
    for k in range(K):
        acc = 0.0
        for i in range(n):
            acc += gT[k, i]
        post_acc[k] += acc
    if n_moments == 0:
        return
    for d in range(XT.shape[0]):
        for k in range(K):
            acc = 0.0
            acc2 = 0.0
            for i in range(n):
                w = gT[k, i] * XT[d, i]
                acc += w
                acc2 += w * XT[d, i]
            obs_acc[d, k] += acc
            if n_moments == 2:
                obs2_acc[d, k] += acc2


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _predictions(A, aT, n, predT, invT, small):
    """``predT[:, i] = aT[:, i] @ A`` (the prediction of the next row), its inverse where
    it is at least ``_TINY`` (else 0), and ``small[i] > 0`` where some entry is below."""
    K = A.shape[0]
    K4 = K - K % 4
    for i in range(n):
        small[i] = 0.0
    for j in range(K):
        for i in range(n):
            predT[j, i] = 0.0
        for k in range(0, K4, 4):  # four states per pass over the row: a quarter of the
            a0, a1, a2, a3 = A[k, j], A[k + 1, j], A[k + 2, j], A[k + 3, j]  # stores
            for i in range(n):
                predT[j, i] += ((a0 * aT[k, i] + a1 * aT[k + 1, i])
                                + (a2 * aT[k + 2, i] + a3 * aT[k + 3, i]))
        for k in range(K4, K):
            akj = A[k, j]
            for i in range(n):
                predT[j, i] += akj * aT[k, i]
        for i in range(n):
            q = predT[j, i]
            tiny = q < _TINY
            invT[j, i] = 0.0 if tiny else 1.0 / q
            small[i] += 1.0 if tiny else 0.0


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _smooth(A, alpha, a0, start, stop, X, n_moments, posteriors, xi_acc, xi_full, post_acc,
            start_acc, obs_acc, obs2_acc, XT, aT, predT, invT, rT, gT, small, a, p, g, gnew,
            r):
    """Backward smoothing of ``[start, stop)`` from the filtered ``alpha`` (row ``t`` at
    ``alpha[t - a0]``), ``_ROWS`` rows at a time.

    Adds ``sum_t alpha_t(i) gamma_{t+1}(j) / pred_{t+1}(j)`` to ``xi_acc`` (times ``A``
    it is the expected transition count), log-space steps' complete counts to
    ``xi_full``, the posteriors' sums to ``post_acc`` (the first one to ``start_acc``) and
    their ``X``-moments to ``obs_acc``/``obs2_acc``; the posteriors go to ``posteriors``
    when it has rows.
    """
    K = A.shape[0]
    write = posteriors.shape[0] > 0
    n_blocks = (stop - start + _ROWS - 1) // _ROWS
    for b in range(n_blocks - 1, -1, -1):
        t0 = start + b * _ROWS
        n = min(_ROWS, stop - t0)
        _transpose_rows(alpha, t0 - a0, n, aT)
        _predictions(A, aT, n, predT, invT, small)
        for i in range(n - 1, -1, -1):
            if t0 + i == stop - 1:  # the last posterior is the last filtered distribution
                for k in range(K):
                    g[k] = aT[k, i]
                    rT[k, i] = 0.0
                    gT[k, i] = g[k]
                continue
            slow = False
            if small[i] > 0.0:
                for j in range(K):
                    slow |= g[j] > 0.0 and invT[j, i] == 0.0
            if slow:
                for k in range(K):
                    a[k] = aT[k, i]
                    p[k] = predT[k, i]
                    r[k] = g[k] * invT[k, i]
                    rT[k, i] = 0.0
                _log_space_smooth(a, A, g, p, r, gnew, xi_full)
            else:
                for j in range(K):
                    r[j] = g[j] * invT[j, i]
                for k in range(K):
                    s = 0.0
                    for j in range(K):
                        s += A[k, j] * r[j]
                    gnew[k] = aT[k, i] * s
                    rT[k, i] = r[k]
            norm = 0.0  # renormalised at every step, as the lanes are
            for k in range(K):
                norm += gnew[k]
            inv = 1.0 / norm
            for k in range(K):
                g[k] = gnew[k] * inv
                gT[k, i] = g[k]
        if n_moments:
            _transpose_rows(X, t0, n, XT)
        _statistics(n, aT, rT, gT, XT, n_moments, xi_acc, post_acc, obs_acc, obs2_acc)
        if write:
            for i in range(n):
                for k in range(K):
                    posteriors[t0 + i, k] = gT[k, i]
    for k in range(K):
        start_acc[k] += gT[k, 0]


@njit(cache=True, nogil=True, error_model="numpy")
def single_block(seq_lo, seq_hi, offsets, startprob, A, source, table, X, means, prec, const,
                 alpha, backward, n_moments, posteriors, xi_acc, xi_full, post_acc,
                 start_acc, obs_acc, obs2_acc):
    """Filter (and smooth) sequences ``seq_lo .. seq_hi - 1`` (consecutive rows) alone.

    ``alpha`` (``(rows, K)``, C order) holds the block's filtered distributions; the
    accumulators are the block's own. Returns ``(log p, first impossible row or -1)``.
    """
    K = startprob.shape[0]
    AT = np.ascontiguousarray(A.T)
    XT = np.empty((X.shape[1], _ROWS))
    mats = np.zeros((6, K, _ROWS))
    shift, check = np.empty(_ROWS), np.empty(_ROWS)
    vecs = np.empty((5, K))
    a0 = offsets[seq_lo]
    store = alpha if backward else alpha[:0]
    total = 0.0
    for s in range(seq_lo, seq_hi):
        start, stop = offsets[s], offsets[s + 1]
        ll, bad = _filter(startprob, AT, source, table, X, means, prec, const, start, stop,
                          store, a0, XT, mats[0], mats[1], shift, check, vecs[0], vecs[1])
        if bad >= 0:
            return np.nan, bad
        total += ll
        if backward:
            _smooth(A, alpha, a0, start, stop, X, n_moments, posteriors, xi_acc, xi_full,
                    post_acc, start_acc, obs_acc, obs2_acc, XT, mats[0], mats[1], mats[2],
                    mats[3], mats[4], shift, vecs[0], vecs[1], vecs[2], vecs[3], vecs[4])
    return total, -1
