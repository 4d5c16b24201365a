"""Compiled E-step: emissions, filtering, smoothing and statistics in one pass per sequence.

One call runs the whole E-step of every sequence without Python per time step:

* **emissions** are evaluated block by block (``_BLOCK`` rows at a time, kept in cache)
  from a ``(n_samples, n_states)`` table of log-probabilities or, for diagonal Gaussians,
  straight from ``X``, so the E-step never writes an ``(n_samples, n_states)`` table;
* the **forward filter** shifts each emission row by its maximum before exponentiation
  (a vectorised ``exp``) and renormalises the filtered distribution; a step whose
  normaliser is too small to keep precision (the emitting state was almost unreachable)
  is redone in log space. The result equals a log-space computation to rounding;
* the **backward pass** is the smoothing recursion on the filtered distributions alone,
  ``gamma_t = alpha_t * (A @ (gamma_{t+1} / pred_{t+1}))`` with ``pred_{t+1} = alpha_t @ A``:
  it reads no emissions, so they are computed once per iteration. A predicted probability
  too small to divide by (below ``_TINY``) sends that step to log space;
* the **statistics** (expected transitions, occupancies, start posteriors and the
  posterior-weighted sums of ``X`` and ``X**2``) are accumulated in the same backward loop;
  the posteriors are written over the forward lattice only when asked for.

Sequences are grouped in blocks that depend only on the sequence lengths; each block
accumulates its own statistics, so the serial and the threaded drivers give bitwise equal
results whatever the number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

__all__ = ["TABLE", "GAUSSIAN", "estep", "block_bounds"]

#: Emission sources of the kernels.
TABLE = 0      # log-probabilities given as a table
GAUSSIAN = 1   # diagonal Gaussians evaluated from X

#: Rows of emissions evaluated at a time (two (rows, n_states) buffers stay in L1/L2).
_BLOCK = 128
#: Floating-point licences for the hot loops: reassociation (vectorised sums) and fused
#: multiply-add, but no assumptions about NaN or infinity (the guards rely on them).
_FAST = {"reassoc", "contract", "nsz"}
#: Below this normaliser a forward step is recomputed in log space.
_GUARD = 1e-250
#: Largest emission ratio kept after a guarded step.
_CLAMP = 1e300
#: Predicted probabilities below this are not divided by in the backward pass.
_TINY = 1e-280
#: Most blocks of sequences (their statistics are kept apart, then summed in order).
MAX_BLOCKS = 64


# ---------------------------------------------------------------------- exp
@intrinsic
def _float_bits(typingctx, x):
    """The IEEE-754 bits of a float64, as an int64 (no conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, n):
    """The float64 whose IEEE-754 bits are the int64 ``n``."""
    if n != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


_ROUND = 6755399441055744.0            # 1.5 * 2**52: adding it rounds to an integer
_ROUND_BITS = 0x4338000000000000       # its bits
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238           # ln 2 split so that k * _LN2_HI is exact
_LN2_LO = 1.9082149292705877e-10
_EXP_MIN = -708.0                      # below this, exp() is subnormal: flushed to zero


@njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
def _exp_nonpositive(v):
    """``exp(v)`` for ``v <= 0`` in a form the compiler vectorises (no libm call).

    Range reduction ``v = k ln2 + r`` with ``|r| <= ln2 / 2`` and a degree-13 Taylor
    polynomial: relative error below 3e-16. ``-inf`` and values below -708 give 0 (the
    forward pass redoes in log space any step where such a value could matter); NaN
    propagates. Only ``contract`` is licensed: reassociation would cancel the rounding
    constant.
    """
    w = _EXP_MIN if v < _EXP_MIN else v
    kd = w * _LOG2E + _ROUND
    k = kd - _ROUND
    r = w - k * _LN2_HI
    r = r - k * _LN2_LO
    p = 1.6059043836821613e-10
    p = p * r + 2.08767569878681e-09
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _bits_float((_float_bits(kd) - _ROUND_BITS + 1023) << 52)
    return 0.0 if v < _EXP_MIN else p * scale


# ---------------------------------------------------------------------- blocks of rows
# Inside a block the arrays are state-major, ``(n_states, _BLOCK)``: every loop that is not
# part of a recursion runs over the block's rows and vectorises.
@njit(cache=True, nogil=True, error_model="numpy")
def _transpose_rows(src, r0, n, dst):
    """``dst[k, i] = src[r0 + i, k]`` for ``i < n``."""
    for i in range(n):
        for k in range(src.shape[1]):
            dst[k, i] = src[r0 + i, k]


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _gaussian_block(XT, n, means, prec, const, lpT):
    """``lpT[k, i] = log N(x_i | means[k], diag(0.5 / prec[k]))`` from ``XT = X[block].T``.

    ``const[k]`` is the state's normalising constant, ``prec = 0.5 / var``.
    """
    K, D = means.shape
    for k in range(K):
        c = const[k]
        for i in range(n):
            lpT[k, i] = c
        for d in range(D):
            m = means[k, d]
            p = prec[k, d]
            for i in range(n):
                diff = XT[d, i] - m
                lpT[k, i] -= diff * diff * p


@njit(cache=True, nogil=True, error_model="numpy")
def _shift_exp_block(lpT, n, BT, shift, check):
    """``shift[i] = max_k lpT[k, i]``, ``BT = exp(lpT - shift)``; the sum of the shifts.

    A row holding NaN gets a NaN shift and a row of ``-inf`` a ``-inf`` shift; the forward
    pass reports both.
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
    for k in range(K):
        for i in range(n):
            BT[k, i] = _exp_nonpositive(lpT[k, i] - shift[i])
    return total


# ---------------------------------------------------------------------- forward
@njit(cache=True, nogil=True, error_model="numpy")
def _guarded_step(lpT, i, pred, out):
    """A forward step in log space from column ``i`` of ``lpT``; returns ``log c`` (NaN
    when nothing can emit)."""
    K = pred.shape[0]
    m = -np.inf
    for j in range(K):
        if pred[j] > 0.0:
            v = np.log(pred[j]) + lpT[j, i]
            if v > m:
                m = v
    if not m > -np.inf:
        return np.nan
    s = 0.0
    for j in range(K):
        if pred[j] > 0.0:
            s += np.exp(np.log(pred[j]) + lpT[j, i] - m)
    logc = m + np.log(s)
    for j in range(K):
        out[j] = np.exp(np.log(pred[j]) + lpT[j, i] - logc) if pred[j] > 0.0 else 0.0
    return logc


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _filter(startprob, AT, source, table, X, means, prec, const, start, stop, alpha, XT,
            lpT, BT, shift, check, pred, prev):
    """Forward filter of the sequence ``[start, stop)``; returns ``(log p, failed row)``.

    The filtered distributions are written to ``alpha[start:stop]`` when ``alpha`` has
    rows (otherwise only the log-likelihood is computed). The failed row is -1 unless some
    row has probability zero under every state (or NaN); the log-likelihood is then NaN.
    """
    K = startprob.shape[0]
    store = alpha.shape[0] > 0
    logsum = 0.0
    prod = 1.0
    shifts = 0.0
    for t0 in range(start, stop, _BLOCK):
        n = min(_BLOCK, stop - t0)
        if source == GAUSSIAN:
            _transpose_rows(X, t0, n, XT)
            _gaussian_block(XT, n, means, prec, const, lpT)
        else:
            _transpose_rows(table, t0, n, lpT)
        shifts += _shift_exp_block(lpT, n, BT, shift, check)
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
            else:
                logc = _guarded_step(lpT, i, pred, prev)
                if np.isnan(logc):
                    return np.nan, t
                logsum += logc - shift[i]
            if store:
                for j in range(K):
                    alpha[t, j] = prev[j]
    return logsum + np.log(prod) + shifts, -1


# ---------------------------------------------------------------------- backward
@njit(cache=True, nogil=True, error_model="numpy")
def _log_space_smooth(a, A, g, pred, r, gnew, xi_full):
    """One smoothing step where some predicted probability is too small to divide by.

    Column ``j``'s share ``alpha_t(i) A_ij / pred_j`` (the probability of coming from ``i``
    given the next state ``j``) is computed in log space for those columns. Contributions
    go to ``gnew`` and, complete (with ``A``), to ``xi_full``.
    """
    K = g.shape[0]
    for i in range(K):
        gnew[i] = 0.0
    for j in range(K):
        if not g[j] > 0.0:
            continue
        if pred[j] >= _TINY:
            for i in range(K):
                w = a[i] * A[i, j] * r[j]
                gnew[i] += w
                xi_full[i, j] += w
            continue
        m = -np.inf
        for i in range(K):
            if a[i] > 0.0 and A[i, j] > 0.0:
                v = np.log(a[i]) + np.log(A[i, j])
                if v > m:
                    m = v
        if not m > -np.inf:
            continue
        s = 0.0
        for i in range(K):
            if a[i] > 0.0 and A[i, j] > 0.0:
                s += np.exp(np.log(a[i]) + np.log(A[i, j]) - m)
        for i in range(K):
            if a[i] > 0.0 and A[i, j] > 0.0:
                w = np.exp(np.log(a[i]) + np.log(A[i, j]) - m) / s * g[j]
                gnew[i] += w
                xi_full[i, j] += w


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _block_statistics(n, aT, rT, gT, XT, n_moments, xi_acc, post_acc, obs_acc, obs2_acc):
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
def _smooth(A, alpha, start, stop, X, n_moments, write_post, xi_acc, xi_full, post_acc,
            start_acc, obs_acc, obs2_acc, XT, aT, predT, invT, rT, gT, small, a, p, g, gnew, r):
    """Backward smoothing of ``[start, stop)`` from the filtered ``alpha``, block by block.

    Adds ``sum_t alpha_t(i) gamma_{t+1}(j) / pred_{t+1}(j)`` to ``xi_acc`` (times ``A``
    it is the expected transition count), log-space steps' complete counts to
    ``xi_full``, the posteriors' sums to ``post_acc`` (the first one to ``start_acc``) and
    their ``X``-moments to ``obs_acc``/``obs2_acc``; the posteriors replace ``alpha`` when
    ``write_post``.
    """
    K = A.shape[0]
    n_blocks = (stop - start + _BLOCK - 1) // _BLOCK
    for b in range(n_blocks - 1, -1, -1):
        t0 = start + b * _BLOCK
        n = min(_BLOCK, stop - t0)
        _transpose_rows(alpha, t0, n, aT)
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
            # renormalised at every step (once per block was tried: see docs/hmm.rst)
            norm = 0.0
            for k in range(K):
                norm += gnew[k]
            inv = 1.0 / norm
            for k in range(K):
                g[k] = gnew[k] * inv
                gT[k, i] = g[k]
        if n_moments:
            _transpose_rows(X, t0, n, XT)
        _block_statistics(n, aT, rT, gT, XT, n_moments, xi_acc, post_acc, obs_acc, obs2_acc)
        if write_post:
            for i in range(n):
                for k in range(K):
                    alpha[t0 + i, k] = gT[k, i]
    for k in range(K):
        start_acc[k] += gT[k, 0]


# ---------------------------------------------------------------------- drivers
@njit(cache=True, nogil=True)
def _run_block(b, blocks, offsets, startprob, A, source, table, X, means, prec, const,
               alpha, backward, n_moments, write_post, ll_out, bad_out, xi_acc, xi_full,
               post_acc, start_acc, obs_acc, obs2_acc):
    """Filter (and smooth) the sequences of block ``b`` with its own accumulators."""
    K = startprob.shape[0]
    AT = np.ascontiguousarray(A.T)
    XT = np.empty((X.shape[1], _BLOCK))
    mats = np.empty((6, K, _BLOCK))
    shift, check = np.empty(_BLOCK), np.empty(_BLOCK)
    vecs = np.empty((5, K))
    total = 0.0
    for s in range(blocks[b], blocks[b + 1]):
        start, stop = offsets[s], offsets[s + 1]
        ll, bad = _filter(startprob, AT, source, table, X, means, prec, const, start, stop,
                          alpha, XT, mats[0], mats[1], shift, check, vecs[0], vecs[1])
        if bad >= 0:
            ll_out[b] = np.nan
            bad_out[b] = bad
            return
        total += ll
        if backward:
            _smooth(A, alpha, start, stop, X, n_moments, write_post, xi_acc[b], xi_full[b],
                    post_acc[b], start_acc[b], obs_acc[b], obs2_acc[b], XT, mats[0], mats[1],
                    mats[2], mats[3], mats[4], shift, vecs[0], vecs[1], vecs[2], vecs[3], vecs[4])
    ll_out[b] = total
    bad_out[b] = -1


@njit(cache=True, nogil=True)
def _serial(blocks, offsets, startprob, A, source, table, X, means, prec, const, alpha,
            backward, n_moments, write_post, ll_out, bad_out, xi_acc, xi_full, post_acc,
            start_acc, obs_acc, obs2_acc):
    for b in range(blocks.shape[0] - 1):
        _run_block(b, blocks, offsets, startprob, A, source, table, X, means, prec, const,
                   alpha, backward, n_moments, write_post, ll_out, bad_out, xi_acc, xi_full,
                   post_acc, start_acc, obs_acc, obs2_acc)


@njit(cache=True, nogil=True, parallel=True)
def _threaded(blocks, offsets, startprob, A, source, table, X, means, prec, const, alpha,
              backward, n_moments, write_post, ll_out, bad_out, xi_acc, xi_full, post_acc,
              start_acc, obs_acc, obs2_acc):
    for b in prange(blocks.shape[0] - 1):
        _run_block(b, blocks, offsets, startprob, A, source, table, X, means, prec, const,
                   alpha, backward, n_moments, write_post, ll_out, bad_out, xi_acc, xi_full,
                   post_acc, start_acc, obs_acc, obs2_acc)


def block_bounds(lengths: np.ndarray) -> np.ndarray:
    """Sequence index bounds of the blocks: one sequence each up to ``MAX_BLOCKS``
    sequences, otherwise ``MAX_BLOCKS`` consecutive runs of about equal numbers of rows.

    Depends on the lengths only, so results do not depend on the number of threads.
    """
    n_seq = lengths.size
    if n_seq <= MAX_BLOCKS:
        return np.arange(n_seq + 1, dtype=np.int64)
    cum = np.concatenate([[0], np.cumsum(lengths)])
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, MAX_BLOCKS) / MAX_BLOCKS)
    return np.unique(np.concatenate([[0], cuts, [n_seq]])).astype(np.int64)


def estep(startprob, A, lengths, *, table=None, X=None, gaussian=None, alpha=None,
          backward=True, n_moments=0, write_post=False, threads=1):
    """Run the compiled pass over all sequences (inputs already checked and contiguous).

    Parameters
    ----------
    startprob, A : ndarray
        Start distribution ``(K,)`` and transition matrix ``(K, K)``.
    lengths : ndarray of int64
        Sequence lengths.
    table : ndarray, shape (n_samples, K), optional
        Emission log-probabilities.
    X : ndarray, shape (n_samples, D), optional
        Observations: the Gaussian emissions' input and the moments' weights.
    gaussian : tuple of ndarray, optional
        ``(means, prec, const)`` of diagonal Gaussians: means ``(K, D)``, ``0.5 / var``
        ``(K, D)`` and the log normalising constants ``(K,)``; used instead of ``table``.
    alpha : ndarray, shape (n_samples, K), optional
        The forward lattice (posteriors on return when ``write_post``); needed by the
        backward pass.
    backward : bool
        Smooth and accumulate statistics (else the log-likelihood only).
    n_moments : {0, 1, 2}
        Posterior-weighted moments of ``X`` to accumulate.
    write_post : bool
        Write the posteriors over ``alpha``.
    threads : int
        More than one: blocks of sequences run in parallel (same results).

    Returns
    -------
    log_prob : float
        NaN when some row is impossible; ``bad_row`` then names the first one found.
    bad_row : int
    stats : tuple of ndarray or None
        ``(xi_acc, xi_full, post, start, obs, obs2)`` summed over blocks in order
        (``xi = xi_acc * A + xi_full``; ``obs``/``obs2`` are ``(D, K)``); None without
        ``backward``.
    """
    K = startprob.shape[0]
    source = GAUSSIAN if gaussian is not None else TABLE
    T = int(lengths.sum())
    if table is None:
        table = np.empty((0, K))
    if X is None:
        X = np.empty((T, 0))
    if gaussian is None:
        gaussian = (np.empty((K, 0)), np.empty((K, 0)), np.empty(K))
    if alpha is None:
        alpha = np.empty((0, K))
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blocks = block_bounds(lengths)
    nb = blocks.size - 1
    D = X.shape[1] if n_moments else 0
    nacc = nb if backward else 0
    ll_out, bad_out = np.zeros(nb), np.full(nb, -1, dtype=np.int64)
    acc = (np.zeros((nacc, K, K)), np.zeros((nacc, K, K)), np.zeros((nacc, K)),
           np.zeros((nacc, K)), np.zeros((nacc, D, K)), np.zeros((nacc, D, K)))
    run = _threaded if threads > 1 and nb > 1 else _serial
    run(blocks, offsets, startprob, A, source, table, X, *gaussian, alpha, backward,
        n_moments, write_post, ll_out, bad_out, *acc)
    failed = bad_out >= 0
    if failed.any():
        return np.nan, int(bad_out[failed].min()), None
    stats = tuple(a.sum(axis=0) for a in acc) if backward else None
    return float(ll_out.sum()), -1, stats
