"""Forward and backward passes of four blocks of sequences at once, one per vector lane.

Each step of the forward filter or of the smoothing recursion depends on the step before (a
K x K matrix-vector product, a sum, a division), so a lone sequence runs at the latency of
that chain. Here ``LANES`` blocks of sequences advance in lockstep, one per lane of an AVX2
register (:mod:`sciTie.hmm._vec4`): lane ``l`` walks the rows of its block one *step* at a
time, sequence after sequence, and one chain carries four blocks.

Layout. Every array of a pass is lane-major, ``(..., LANES)``: the forward variables of a
group are stored in its part of the *lattice*, ``(steps, K, LANES)``, so that a step reads and
writes ``K`` whole vectors and the backward pass needs no gathers. Steps are taken ``_STEPS``
at a time (a *chunk*); around the recursions, the chunk passes (emissions and their
exponentials, predictions and their inverses, statistics) run over the chunk's
``(step, lane)`` pairs and vectorise.

Events. The common step has no per-lane branch. A step where some lane starts a sequence
(forward), ends one or meets a prediction too small to divide by (backward) is flagged
before the recursion and fixed up lane by lane; a forward normaliser too small to keep
precision is caught by one comparison of the four lanes. A lane past the end of its block
keeps running on zero observations (finite, never used): its rows are left out of the
log-likelihood and the statistics.

Each lane's arithmetic depends on its own rows only, so the results do not depend on which
blocks share a group or on the number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._estep_blocks import (
    _FAST,
    _GUARD,
    _TINY,
    GAUSSIAN,
    _gaussian_block,
    _guarded_step,
    _log_space_smooth,
)
from ._estep_unrolled import step_functions
from ._vec4 import (
    add4,
    count_below4,
    div4,
    exp_nonpositive4,
    fma4,
    load4,
    mul4,
    prefetch,
    recip_above4,
    select_ge4,
    splat4,
    store4,
    sub4,
)

__all__ = ["LANES", "STEPS", "forward_group", "backward_group", "unrolled_for", "lane_major_x",
           "x_chunk_size", "lone_group"]

#: Blocks of sequences advanced together: four float64 fill an AVX2 register.
LANES = 4
#: Steps per chunk: the chunk arrays ((K, STEPS, LANES) float64) stay in L1/L2.
STEPS = 32
#: The recursions allow fused multiply-adds only (their sums are written out in the order
#: wanted: two partial sums halve a chain).
_EXACT = {"contract"}


# ---------------------------------------------------------------------- chunk set-up
@njit(cache=True, nogil=True, error_model="numpy")
def _gather(src, lo, nrow, s0, n, dst):
    """``dst[c, i, l] = src[lo[l] + s0 + i, c]`` for the lane's rows, 0 past its end."""
    C = src.shape[1]
    for l in range(LANES):
        m = min(n, max(nrow[l] - s0, 0))
        r0 = lo[l] + s0
        for i in range(m):
            for c in range(C):
                dst[c, i, l] = src[r0 + i, c]
        for i in range(m, n):
            for c in range(C):
                dst[c, i, l] = 0.0


@njit(cache=True, nogil=True)
def lone_group(nrow) -> bool:
    """Whether a group has one block with rows (its lane 0: blocks fill the lanes in
    order); such a group runs the scalar one-block pass, not four lanes for one."""
    live = 0
    for l in range(LANES):
        if nrow[l] > 0:
            live += 1
    return live <= 1


def x_chunk_size(n_features: int) -> int:
    """Values of one chunk of lane-major ``X`` (:func:`lane_major_x`)."""
    return n_features * STEPS * LANES


@njit(cache=True, nogil=True, error_model="numpy")
def lane_major_x(X, lanes_lo, lanes_n, xbase, out):
    """``X`` laid out chunk by chunk as the group passes read it: the chunk starting at step
    ``s0`` of group ``g`` is ``out[xbase[g] + (s0 // STEPS) * D * STEPS * LANES:]`` viewed as
    ``(D, STEPS, LANES)``, zero past each lane's rows.

    ``X`` does not change during a fit, so this gather is done once per fit instead of twice
    per chunk and E-step (the backward pass reads the chunks in reverse, where the gather
    from ``X``'s rows cost four times the forward one). A group with a lone block runs the
    scalar pass on ``X`` itself and is skipped.
    """
    D = X.shape[1]
    size = D * STEPS * LANES
    for g in range(lanes_lo.shape[0]):
        if lone_group(lanes_n[g]):
            continue
        S = lanes_n[g].max()
        for c in range((S + STEPS - 1) // STEPS):
            at = xbase[g] + c * size
            _gather(X, lanes_lo[g], lanes_n[g], c * STEPS, STEPS,
                    out[at:at + size].reshape((D, STEPS, LANES)))


@njit(cache=True, nogil=True, error_model="numpy")
def _mark_starts(offsets, lo, seq_hi, cursor, s0, n, first, evt):
    """``first[i, l] = 1`` where lane ``l``'s step ``s0 + i`` starts a sequence (``cursor``:
    each lane's next sequence); ``evt[i] = 1`` on those steps, 0 elsewhere."""
    for i in range(n):
        evt[i] = 0
        for l in range(LANES):
            first[i, l] = 0
    for l in range(LANES):
        while cursor[l] < seq_hi[l]:
            i = offsets[cursor[l]] - lo[l] - s0
            if i >= n:
                break
            first[i, l] = 1
            evt[i] = 1
            cursor[l] += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _mark_ends(offsets, lo, seq_lo, cursor, s0, n, last, evt):
    """``last[i, l] = 1`` where lane ``l``'s step ``s0 + i`` ends a sequence (``cursor``:
    each lane's sequence still to end, counting down); ``evt[i] |= 1`` on those steps."""
    for l in range(LANES):
        while cursor[l] >= seq_lo[l]:
            i = offsets[cursor[l] + 1] - 1 - lo[l] - s0
            if i < 0:
                break
            last[i, l] = 1
            evt[i] |= 1
            cursor[l] -= 1


# ---------------------------------------------------------------------- steps per K
def unrolled_for(n_states: int) -> tuple:
    """The ``kspec`` argument of the group passes that selects the steps written out for
    ``n_states`` states (:mod:`sciTie.hmm._estep_unrolled`); ``()`` selects the generic ones.

    Its numba type (a tuple of ``n_states`` floats) carries the number of states, so each
    caller is compiled (and cached) once per number of states.
    """
    return (0.0,) * n_states


def _steps_for(kspec):
    """The unrolled forward and smoothing steps for ``kspec``'s type (None: generic)."""
    if isinstance(kspec, types.UniTuple) and kspec.count > 0:
        return step_functions(kspec.count, STEPS, _GUARD, _TINY, _end_lanes)
    return None


def forward_steps(kspec, i0, n, s0, A, startprob, BT, evt, first, lat, lbase, store, prev,
                  pred, pb, cs):
    """:func:`_forward_steps`, unrolled when ``kspec`` names the number of states."""
    raise NotImplementedError("compiled use only")


def backward_steps(kspec, i0, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R, G):
    """:func:`_backward_steps`, unrolled when ``kspec`` names the number of states."""
    raise NotImplementedError("compiled use only")


@overload(forward_steps, jit_options={"error_model": "numpy"})
def _forward_steps_impl(kspec, i0, n, s0, A, startprob, BT, evt, first, lat, lbase, store,
                        prev, pred, pb, cs):
    steps = _steps_for(kspec)
    if steps is not None:
        return steps[0]

    def generic(kspec, i0, n, s0, A, startprob, BT, evt, first, lat, lbase, store, prev,
                pred, pb, cs):
        return _forward_steps(i0, n, s0, A, startprob, BT, evt, first, lat, lbase, store,
                              prev, pred, pb, cs)
    return generic


@overload(backward_steps, jit_options={"error_model": "numpy"})
def _backward_steps_impl(kspec, i0, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R, G):
    steps = _steps_for(kspec)
    if steps is not None:
        return steps[1]

    def generic(kspec, i0, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R, G):
        return _backward_steps(i0, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R, G)
    return generic


def chunk_statistics(kspec, n, s0, lat, lbase, R, G, XT, n_moments, xi, post, obs, obs2):
    """:func:`_chunk_statistics`, unrolled when ``kspec`` names the number of states."""
    raise NotImplementedError("compiled use only")


@overload(chunk_statistics, jit_options={"error_model": "numpy"})
def _chunk_statistics_impl(kspec, n, s0, lat, lbase, R, G, XT, n_moments, xi, post, obs,
                           obs2):
    steps = _steps_for(kspec)
    if steps is not None:
        return steps[2]

    def generic(kspec, n, s0, lat, lbase, R, G, XT, n_moments, xi, post, obs, obs2):
        _chunk_statistics(n, s0, lat, lbase, R, G, XT, n_moments, xi, post, obs, obs2)
    return generic


def inverse_predictions(kspec, A, lat, lbase, s0, n, IP, small):
    """:func:`_inverse_predictions`, unrolled when ``kspec`` names the number of states."""
    raise NotImplementedError("compiled use only")


@overload(inverse_predictions, jit_options={"error_model": "numpy"})
def _inverse_predictions_impl(kspec, A, lat, lbase, s0, n, IP, small):
    steps = _steps_for(kspec)
    if steps is not None:
        return steps[3]

    def generic(kspec, A, lat, lbase, s0, n, IP, small):
        _inverse_predictions(A, lat, lbase, s0, n, IP, small)
    return generic


# ---------------------------------------------------------------------- forward
@njit(cache=True, nogil=True, error_model="numpy")
def _shift_exp(lpT, n, BT, shift):
    """``shift[i] = max_k lpT[k, i]`` and ``BT = exp(lpT - shift)`` for the chunk's steps.

    A (step, lane) holding NaN gets a NaN shift and one of ``-inf`` a ``-inf`` shift (its
    exponentials are NaN): the forward guard reports both.
    """
    K = lpT.shape[0]
    L = LANES
    ninf = splat4(-np.inf)
    for i in range(n):
        m = ninf
        check = splat4(0.0)  # NaN if any entry is NaN (entries are never +inf)
        for k in range(K):
            v = load4(lpT, L * (k * STEPS + i))
            m = select_ge4(v, m, v, m)
            check = add4(check, v)
        store4(shift, L * i, select_ge4(check, ninf, m, splat4(np.nan)))
    for k in range(K):  # independent exponentials, after all the maxima
        for i in range(n):
            at = L * (k * STEPS + i)
            store4(BT, at, exp_nonpositive4(sub4(load4(lpT, at), load4(shift, L * i))))


@njit(cache=True, nogil=True, fastmath=_EXACT, error_model="numpy")
def _forward_steps(i0, n, s0, A, startprob, BT, evt, first, lat, lbase, store, prev, pred,
                   pb, cs):
    """Steps ``s0 + i0 .. s0 + n - 1``: ``prev`` (``(K, LANES)``) goes from one filtered
    distribution to the next; the normalisers go to ``cs`` and, when ``store``, the
    distributions to ``lat[lbase + (s * K + j) * LANES + l]``.

    Returns the first chunk index whose normaliser failed the guard in some lane (``n``
    when none did): the caller fixes that step up and goes on from the next one.
    """
    K = A.shape[0]
    L = LANES
    K2 = K - K % 2
    for i in range(i0, n):
        for j in range(K):  # pred = prev @ A, two interleaved partial sums per lane
            acc0 = splat4(0.0)
            acc1 = splat4(0.0)
            for k in range(0, K2, 2):
                acc0 = fma4(load4(prev, L * k), splat4(A[k, j]), acc0)
                acc1 = fma4(load4(prev, L * (k + 1)), splat4(A[k + 1, j]), acc1)
            if K2 < K:
                acc0 = fma4(load4(prev, L * K2), splat4(A[K2, j]), acc0)
            store4(pred, L * j, add4(acc0, acc1))
        if evt[i] != 0:  # some lane starts a sequence here
            for l in range(L):
                if first[i, l] != 0:
                    for j in range(K):
                        pred[j, l] = startprob[j]
        c0 = splat4(0.0)
        c1 = splat4(0.0)
        for j in range(K):
            v = mul4(load4(pred, L * j), load4(BT, L * (j * STEPS + i)))
            store4(pb, L * j, v)
            if j % 2 == 0:
                c0 = add4(c0, v)
            else:
                c1 = add4(c1, v)
        c = add4(c0, c1)
        store4(cs, L * i, c)
        inv = div4(splat4(1.0), c)
        at = lbase + (s0 + i) * K * L
        for j in range(K):
            v = mul4(load4(pb, L * j), inv)
            store4(prev, L * j, v)
            if store:
                store4(lat, at + L * j, v)
        if not (cs[i, 0] > _GUARD and cs[i, 1] > _GUARD and cs[i, 2] > _GUARD
                and cs[i, 3] > _GUARD):
            return i
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def _guard_fix(i, s0, nrow, lo, startprob, lpT, shift, pred, prev, cs, lat, lbase, store,
               logsum, bad, col, tmp):
    """The lanes of chunk row ``i`` whose normaliser failed the guard: the step is redone
    in log space (its log-normaliser to ``logsum``, its ``cs`` set to 1), an impossible row
    is recorded in ``bad``; a lane past its end restarts from ``startprob``."""
    K = pred.shape[0]
    s = s0 + i
    for l in range(LANES):
        if cs[i, l] > _GUARD:
            continue
        cs[i, l] = 1.0
        if s >= nrow[l] or bad[l] >= 0 or not shift[i, l] > -np.inf:
            if s < nrow[l] and bad[l] < 0:
                bad[l] = lo[l] + s
            for j in range(K):
                prev[j, l] = startprob[j]
        else:
            for j in range(K):
                col[j, 0] = lpT[j, i, l]
                tmp[0, j] = pred[j, l]
            logc = _guarded_step(col, 0, tmp[0], tmp[1])
            if np.isnan(logc):
                bad[l] = lo[l] + s
                for j in range(K):
                    prev[j, l] = startprob[j]
            else:
                logsum[l] += logc - shift[i, l]
                for j in range(K):
                    prev[j, l] = tmp[1, j]
        if store:
            for j in range(K):
                lat[lbase + (s * K + j) * LANES + l] = prev[j, l]


@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _chunk_log_prob(s0, n, nrow, shift, cs, prod, logsum, shifts):
    """Each lane's normalisers (a running product, logged before it underflows) and
    emission shifts over its rows of the chunk."""
    for l in range(LANES):
        m = min(n, max(nrow[l] - s0, 0))
        p, total = prod[l], 0.0
        for i in range(m):
            p *= cs[i, l]
            if p < 1e-50:
                logsum[l] += np.log(p)
                p = 1.0
            v = shift[i, l]
            if v > -np.inf:  # impossible rows are reported by the guard
                total += v
        prod[l] = p
        shifts[l] += total


@njit(cache=True, nogil=True, error_model="numpy")
def forward_group(kspec, lo, nrow, seq_lo, seq_hi, offsets, startprob, A, source, table, X,
                  xl, xbase, means, prec, const, lat, lbase, store, log_prob, bad):
    """Filter the lanes' blocks (rows ``lo[l] .. lo[l] + nrow[l] - 1``, sequences
    ``seq_lo[l] .. seq_hi[l] - 1``) in lockstep; Gaussian emissions read ``X`` lane-major
    from ``xl`` at ``xbase`` (:func:`lane_major_x`), or gather it chunk by chunk when ``xl``
    is empty (a forward pass alone, in O(K) memory).

    Each lane's log-likelihood goes to ``log_prob`` and its first impossible row, if any, to
    ``bad`` (else -1); the filtered distributions to the lattice when ``store``.
    """
    L = LANES
    K = startprob.shape[0]
    D = means.shape[1]
    # chunk arrays, zeroed: the steps past the last chunk's end are computed, never used
    lpT, BT, XT = np.zeros((K, STEPS, L)), np.zeros((K, STEPS, L)), np.zeros((D, STEPS, L))
    flat = STEPS * L  # the emission passes see (step, lane) pairs as rows
    lp2, xt2 = lpT.reshape(K, flat), XT.reshape(D, flat)
    shift, cs = np.zeros((STEPS, L)), np.zeros((STEPS, L))
    first, evt = np.zeros((STEPS, L), np.int64), np.zeros(STEPS, np.int64)
    prev, pred, pb = np.zeros((K, L)), np.zeros((K, L)), np.zeros((K, L))
    col, tmp = np.empty((K, 1)), np.empty((2, K))
    cursor = seq_lo.copy()
    prod, logsum, shifts = np.ones(L), np.zeros(L), np.zeros(L)
    for l in range(L):
        bad[l] = -1
    S = nrow.max()
    for s0 in range(0, S, STEPS):
        n = min(STEPS, S - s0)
        if source == GAUSSIAN and xl.size:
            at = xbase + (s0 // STEPS) * D * flat
            _gaussian_block(xl[at:at + D * flat].reshape((D, flat)), flat, means, prec, const,
                            lp2)
        elif source == GAUSSIAN:
            _gather(X, lo, nrow, s0, n, XT)
            _gaussian_block(xt2, flat, means, prec, const, lp2)
        else:
            _gather(table, lo, nrow, s0, n, lpT)
        _shift_exp(lpT, n, BT, shift)
        _mark_starts(offsets, lo, seq_hi, cursor, s0, n, first, evt)
        i = 0
        while i < n:
            i = forward_steps(kspec, i, n, s0, A, startprob, BT, evt, first, lat, lbase,
                              store, prev, pred, pb, cs)
            if i < n:
                _guard_fix(i, s0, nrow, lo, startprob, lpT, shift, pred, prev, cs, lat,
                           lbase, store, logsum, bad, col, tmp)
                i += 1
        _chunk_log_prob(s0, n, nrow, shift, cs, prod, logsum, shifts)
    for l in range(L):
        log_prob[l] = logsum[l] + np.log(prod[l]) + shifts[l] if bad[l] < 0 else np.nan


# ---------------------------------------------------------------------- backward
@njit(cache=True, nogil=True, fastmath=_EXACT, error_model="numpy")
def _inverse_predictions(A, lat, lbase, s0, n, IP, small):
    """``IP[i, j] = 1 / (alpha_s @ A)_j`` for the chunk's steps ``s = s0 + i`` (0 where
    the prediction is below ``_TINY``) and ``small[i, l]``: how many are below."""
    K = A.shape[0]
    L = LANES
    for i in range(n):
        at = lbase + (s0 + i) * K * L
        cnt = splat4(0.0)
        for j in range(K):
            acc = splat4(0.0)
            for k in range(K):
                acc = fma4(load4(lat, at + L * k), splat4(A[k, j]), acc)
            store4(IP, L * (i * K + j), recip_above4(acc, _TINY))
            cnt = count_below4(acc, _TINY, cnt)
        store4(small, L * i, cnt)


@njit(cache=True, nogil=True, error_model="numpy")
def _mark_small(s0, n, nrow, small, last, evt):
    """``evt[i] |= 2`` where some lane with a row there (not a sequence's last, whose
    prediction is unused) has a prediction too small to divide by; clears the others."""
    for i in range(n):
        e = 0
        for l in range(LANES):
            if small[i, l] > 0.0 and s0 + i < nrow[l] and last[i, l] == 0:
                e = 2
        evt[i] |= e


@njit(cache=True, nogil=True, fastmath=_EXACT, error_model="numpy")
def _backward_steps(i0, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R, G):
    """Steps ``s0 + i0`` down to ``s0``: ``g`` (``(K, LANES)``) goes from one posterior
    to the one before; ``R``/``G`` get each step's ratios ``gamma_{s+1} / pred_{s+1}`` and
    posteriors.

    Returns the chunk index of a step where some lane's prediction is too small to divide
    by, ``gnew`` and ``R`` computed but not yet fixed up (-1 when none): the caller fixes it
    (:func:`_small_fix`), finishes it (:func:`_finish_step`) and goes on from the one before.
    """
    K = A.shape[0]
    L = LANES
    K2 = K - K % 2
    for i in range(i0, -1, -1):
        at = lbase + (s0 + i) * K * L
        for j in range(K):  # r = gamma_{s+1} / pred_{s+1}
            v = mul4(load4(g, L * j), load4(IP, L * (i * K + j)))
            store4(r, L * j, v)
            store4(R, L * (i * K + j), v)
        for k in range(K):  # gnew = alpha_s * (A @ r), two partial sums per lane
            acc0 = splat4(0.0)
            acc1 = splat4(0.0)
            for j in range(0, K2, 2):
                acc0 = fma4(splat4(A[k, j]), load4(r, L * j), acc0)
                acc1 = fma4(splat4(A[k, j + 1]), load4(r, L * (j + 1)), acc1)
            if K2 < K:
                acc0 = fma4(splat4(A[k, K2]), load4(r, L * K2), acc0)
            store4(gnew, L * k, mul4(load4(lat, at + L * k), add4(acc0, acc1)))
        if evt[i] & 2:
            return i
        _finish_step(i, at, lat, evt, last, g, gnew, G, R)
    return -1


@njit(cache=True, nogil=True, fastmath=_EXACT, error_model="numpy")
def _finish_step(i, at, lat, evt, last, g, gnew, G, R):
    """``g = gnew / sum(gnew)`` (renormalised at every step) to ``G[i]``; a lane whose
    sequence ends here takes its last filtered distribution instead."""
    K = g.shape[0]
    L = LANES
    K2 = K - K % 2
    n0 = splat4(0.0)
    n1 = splat4(0.0)
    for k in range(0, K2, 2):
        n0 = add4(n0, load4(gnew, L * k))
        n1 = add4(n1, load4(gnew, L * (k + 1)))
    if K2 < K:
        n0 = add4(n0, load4(gnew, L * K2))
    inv = div4(splat4(1.0), add4(n0, n1))
    for k in range(K):
        v = mul4(load4(gnew, L * k), inv)
        store4(g, L * k, v)
        store4(G, L * (i * K + k), v)
    if evt[i] & 1:
        _end_lanes(i, at, lat, last, g, G, R)


@njit(cache=True, nogil=True, error_model="numpy")
def _end_lanes(i, at, lat, last, g, G, R):
    """The lanes whose sequence ends at chunk step ``i`` take their last filtered
    distribution as posterior (no ratio)."""
    K = g.shape[0]
    for l in range(LANES):
        if last[i, l] != 0:
            for k in range(K):
                v = lat[at + LANES * k + l]
                g[k, l] = v
                G[i, k, l] = v
                R[i, k, l] = 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _small_fix(i, s, at, A, lat, IP, last, nrow, xi_full, block, g, gnew, r, R):
    """Step ``s`` (chunk index ``i``) of the lanes with a prediction too small to divide
    by, in log space: their ``gnew`` is replaced, their ratios ``R`` zeroed (the step's
    complete expected transitions go to their block's ``xi_full``)."""
    K = A.shape[0]
    L = LANES
    a, p, gl, gn, rl = np.empty(K), np.empty(K), np.empty(K), np.empty(K), np.empty(K)
    for l in range(L):
        if s >= nrow[l] or last[i, l] != 0:
            continue
        slow = False
        for j in range(K):
            slow |= g[j, l] > 0.0 and IP[i, j, l] == 0.0
        if not slow:
            continue
        for k in range(K):
            a[k] = lat[at + L * k + l]
        for j in range(K):
            q = 0.0
            for k in range(K):
                q += a[k] * A[k, j]
            p[j] = q
            gl[j] = g[j, l]
            rl[j] = r[j, l]
            R[i, j, l] = 0.0
        _log_space_smooth(a, A, gl, p, rl, gn, xi_full[block[l]])
        for k in range(K):
            gnew[k, l] = gn[k]


@njit(cache=True, nogil=True, error_model="numpy")
def _clear_padding(s0, n, nrow, R, G):
    """Zero the ratios and posteriors of the steps a lane does not have."""
    K = R.shape[1]
    for l in range(LANES):
        for i in range(max(nrow[l] - s0, 0), n):
            for k in range(K):
                R[i, k, l] = 0.0
                G[i, k, l] = 0.0


@njit(cache=True, nogil=True, fastmath=_EXACT, error_model="numpy")
def _chunk_statistics(n, s0, lat, lbase, R, G, XT, n_moments, xi, post, obs, obs2):
    """Add each lane's ``sum_s alpha_s R_s^T``, occupancies and X-moments over the chunk
    (padding holds zeros) to ``xi`` ``(K, K, LANES)``, ``post``, ``obs``, ``obs2``."""
    K = R.shape[1]
    L = LANES
    K4 = K - K % 4
    base = lbase + s0 * K * L
    for k in range(K):
        for j in range(0, K4, 4):  # four accumulators held over the chunk's steps
            x0 = load4(xi, L * (k * K + j))
            x1 = load4(xi, L * (k * K + j + 1))
            x2 = load4(xi, L * (k * K + j + 2))
            x3 = load4(xi, L * (k * K + j + 3))
            for i in range(n):
                a = load4(lat, base + L * (i * K + k))
                x0 = fma4(a, load4(R, L * (i * K + j)), x0)
                x1 = fma4(a, load4(R, L * (i * K + j + 1)), x1)
                x2 = fma4(a, load4(R, L * (i * K + j + 2)), x2)
                x3 = fma4(a, load4(R, L * (i * K + j + 3)), x3)
            store4(xi, L * (k * K + j), x0)
            store4(xi, L * (k * K + j + 1), x1)
            store4(xi, L * (k * K + j + 2), x2)
            store4(xi, L * (k * K + j + 3), x3)
        for j in range(K4, K):
            x0 = load4(xi, L * (k * K + j))
            for i in range(n):
                x0 = fma4(load4(lat, base + L * (i * K + k)), load4(R, L * (i * K + j)), x0)
            store4(xi, L * (k * K + j), x0)
        acc = load4(post, L * k)
        for i in range(n):
            acc = add4(acc, load4(G, L * (i * K + k)))
        store4(post, L * k, acc)
    if n_moments == 0:
        return
    for d in range(XT.shape[0]):
        for k in range(K):
            m1 = load4(obs, L * (d * K + k))
            m2 = load4(obs2, L * (d * K + k))
            for i in range(n):
                x = load4(XT, L * (d * STEPS + i))
                w = mul4(load4(G, L * (i * K + k)), x)
                m1 = add4(m1, w)
                m2 = fma4(w, x, m2)
            store4(obs, L * (d * K + k), m1)
            store4(obs2, L * (d * K + k), m2)


@njit(cache=True, nogil=True, error_model="numpy")
def backward_group(kspec, lo, nrow, seq_lo, seq_hi, offsets, block, A, lat, lbase, xl, xbase,
                   D, n_moments, posteriors, xi_acc, xi_full, post_acc, start_acc, obs_acc,
                   obs2_acc):
    """Smooth the lanes' filtered blocks in lockstep (lanes as in :func:`forward_group`;
    ``block[l]``: the accumulators' index of lane ``l``, -1 for an empty lane).

    Each block adds to its own accumulators what a lone pass over its sequences would;
    the posteriors are written to ``posteriors`` when it has rows; the moments read ``X``
    (``D`` features) lane-major from ``xl`` at ``xbase`` (:func:`lane_major_x`).
    """
    L = LANES
    K = A.shape[0]
    XT = np.zeros((D, STEPS, L))
    IP, R, G = np.zeros((STEPS, K, L)), np.zeros((STEPS, K, L)), np.zeros((STEPS, K, L))
    small, last, evt = np.zeros((STEPS, L)), np.zeros((STEPS, L), np.int64), np.zeros(
        STEPS, np.int64)
    g, gnew, r = np.zeros((K, L)), np.zeros((K, L)), np.zeros((K, L))
    xi, post = np.zeros((K, K, L)), np.zeros((K, L))
    obs, obs2 = np.zeros((D, K, L)), np.zeros((D, K, L))
    write = posteriors.shape[0] > 0
    cursor = seq_hi - 1
    start_cur = seq_hi - 1
    S = nrow.max()
    for c in range((S + STEPS - 1) // STEPS - 1, -1, -1):
        s0 = c * STEPS
        n = min(STEPS, S - s0)
        for i in range(n):
            evt[i] = 0
            for l in range(L):
                last[i, l] = 0
        _mark_ends(offsets, lo, seq_lo, cursor, s0, n, last, evt)
        if c > 0:  # the chunk before, read next: fetched from memory meanwhile (the
            # chunks are walked backwards, which the hardware prefetchers follow poorly)
            for at in range(lbase + (s0 - STEPS) * K * L, lbase + s0 * K * L, 8):
                prefetch(lat, at)
            if n_moments:
                xc = xbase + (c - 1) * D * STEPS * L
                for at in range(xc, xc + D * STEPS * L, 8):
                    prefetch(xl, at)
        inverse_predictions(kspec, A, lat, lbase, s0, n, IP, small)
        _mark_small(s0, n, nrow, small, last, evt)
        i = backward_steps(kspec, n - 1, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R, G)
        while i >= 0:  # a step with a prediction too small to divide by
            at = lbase + (s0 + i) * K * L
            _small_fix(i, s0 + i, at, A, lat, IP, last, nrow, xi_full, block, g, gnew, r, R)
            _finish_step(i, at, lat, evt, last, g, gnew, G, R)
            i = backward_steps(kspec, i - 1, s0, A, lat, lbase, IP, evt, last, g, gnew, r, R,
                               G)
        _clear_padding(s0, n, nrow, R, G)
        if n_moments:
            at = xbase + c * D * STEPS * L
            XT = xl[at:at + D * STEPS * L].reshape((D, STEPS, L))
        chunk_statistics(kspec, n, s0, lat, lbase, R, G, XT, n_moments, xi, post, obs, obs2)
        for l in range(L):  # the first posterior of each sequence starting in the chunk
            if block[l] < 0:
                continue
            while start_cur[l] >= seq_lo[l]:
                i = offsets[start_cur[l]] - lo[l] - s0
                if i < 0:
                    break
                for k in range(K):
                    start_acc[block[l], k] += G[i, k, l]
                start_cur[l] -= 1
            if write:
                for i in range(min(n, max(nrow[l] - s0, 0))):
                    for k in range(K):
                        posteriors[lo[l] + s0 + i, k] = G[i, k, l]
    for l in range(L):
        b = block[l]
        if b < 0:
            continue
        for k in range(K):
            for j in range(K):
                xi_acc[b, k, j] += xi[k, j, l]
            post_acc[b, k] += post[k, l]
        for d in range(D if n_moments else 0):
            for k in range(K):
                obs_acc[b, d, k] += obs[d, k, l]
                if n_moments == 2:
                    obs2_acc[b, d, k] += obs2[d, k, l]
