"""Compiled E-step: emissions, filtering, smoothing and statistics without Python per row.

One call runs the whole E-step of every sequence:

* **emissions** are evaluated chunk by chunk (kept in cache)
  from a ``(n_samples, n_states)`` table of log-probabilities or, for diagonal Gaussians,
  straight from ``X``, so the E-step never writes an ``(n_samples, n_states)`` table;
* the **forward filter** shifts each emission row by its maximum before exponentiation
  (a vectorised ``exp``, no libm call) and renormalises the filtered distribution; a step whose
  normaliser is too small to keep precision (the emitting state was almost unreachable)
  is redone in log space. The result equals a log-space computation to rounding;
* the **backward pass** is the smoothing recursion on the filtered distributions alone,
  ``gamma_t = alpha_t * (A @ (gamma_{t+1} / pred_{t+1}))`` with ``pred_{t+1} = alpha_t @ A``:
  it reads no emissions, so they are computed once per iteration. A predicted probability
  too small to divide by (below ``_TINY``) sends that step to log space;
* the **statistics** (expected transitions, occupancies, start posteriors and the
  posterior-weighted sums of ``X`` and ``X**2``) are accumulated chunk by chunk behind the
  backward recursion; the posteriors are written out only when asked for.

Sequences are grouped in blocks that depend only on the sequence lengths; each block
accumulates its own statistics. Groups of ``LANES`` consecutive blocks run in lockstep, one
per vector lane (:mod:`sciTie.hmm._estep_lanes`), each lane with the arithmetic of a lone
block, so the serial and the threaded drivers give bitwise equal results whatever the
number of threads. The forward variables are kept in a lane-major *lattice* (one region
per group), not in the ``(n_samples, n_states)`` layout of the posteriors.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._estep_blocks import GAUSSIAN, MAX_BLOCKS, TABLE
from ._estep_lanes import (
    LANES,
    STEPS,
    backward_group,
    forward_group,
    lane_major_x,
    lone_group,
    unrolled_for,
    x_chunk_size,
)
from ._estep_single import single_block

__all__ = ["TABLE", "GAUSSIAN", "estep", "block_bounds", "lane_layout", "x_lanes"]


# ---------------------------------------------------------------------- drivers
@njit(cache=True, nogil=True)
def _run_group(kspec, gi, lanes_lo, lanes_n, lanes_seq, lanes_base, offsets, startprob, A,
               source, table, X, xl, xbase, means, prec, const, lattice, backward, n_moments,
               posteriors, ll_out, bad_out, xi_acc, xi_full, post_acc, start_acc, obs_acc,
               obs2_acc):
    """Filter (and smooth) the blocks of group ``gi``, each with its own accumulators."""
    L = LANES
    K = startprob.shape[0]
    nb = ll_out.shape[0]
    lo, nrow = lanes_lo[gi], lanes_n[gi]
    seq_lo, seq_hi = lanes_seq[gi, 0], lanes_seq[gi, 1]
    block = np.full(L, -1, np.int64)
    for l in range(L):
        if gi * L + l < nb:
            block[l] = gi * L + l
    if lone_group(nrow):  # the scalar pass, not four lanes for one
        b = block[0]
        m = nrow[0] * K if backward else 0
        alpha = lattice[lanes_base[gi]:lanes_base[gi] + m].reshape((m // K, K))
        ll_out[b], bad_out[b] = single_block(
            seq_lo[0], seq_hi[0], offsets, startprob, A, source, table, X, means, prec, const,
            alpha, backward, n_moments, posteriors, xi_acc[b], xi_full[b], post_acc[b],
            start_acc[b], obs_acc[b], obs2_acc[b])
        return
    log_prob, bad = np.empty(L), np.empty(L, np.int64)
    forward_group(kspec, lo, nrow, seq_lo, seq_hi, offsets, startprob, A, source, table, X,
                  xl, xbase[gi], means, prec, const, lattice, lanes_base[gi], backward, log_prob,
                  bad)
    failed = False
    for l in range(L):
        b = block[l]
        if b >= 0:
            ll_out[b] = log_prob[l]
            bad_out[b] = bad[l]
            failed |= bad[l] >= 0
    if backward and not failed:  # a failed E-step returns no statistics
        backward_group(kspec, lo, nrow, seq_lo, seq_hi, offsets, block, A, lattice, lanes_base[gi],
                       xl, xbase[gi], X.shape[1], n_moments, posteriors, xi_acc, xi_full,
                       post_acc, start_acc, obs_acc, obs2_acc)


@njit(cache=True, nogil=True)
def _serial(kspec, lanes_lo, lanes_n, lanes_seq, lanes_base, offsets, startprob, A, source,
            table, X, xl, xbase, means, prec, const, lattice, backward, n_moments, posteriors,
            ll_out, bad_out, xi_acc, xi_full, post_acc, start_acc, obs_acc, obs2_acc):
    for gi in range(lanes_lo.shape[0]):
        _run_group(kspec, gi, lanes_lo, lanes_n, lanes_seq, lanes_base, offsets, startprob, A,
                   source, table, X, xl, xbase, means, prec, const, lattice, backward,
                   n_moments, posteriors, ll_out, bad_out, xi_acc, xi_full, post_acc,
                   start_acc, obs_acc, obs2_acc)


@njit(cache=True, nogil=True, parallel=True)
def _threaded(kspec, lanes_lo, lanes_n, lanes_seq, lanes_base, offsets, startprob, A, source,
              table, X, xl, xbase, means, prec, const, lattice, backward, n_moments, posteriors,
              ll_out, bad_out, xi_acc, xi_full, post_acc, start_acc, obs_acc, obs2_acc):
    for gi in prange(lanes_lo.shape[0]):
        _run_group(kspec, gi, lanes_lo, lanes_n, lanes_seq, lanes_base, offsets, startprob, A,
                   source, table, X, xl, xbase, means, prec, const, lattice, backward,
                   n_moments, posteriors, ll_out, bad_out, xi_acc, xi_full, post_acc,
                   start_acc, obs_acc, obs2_acc)


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


def lane_layout(lengths: np.ndarray, n_states: int):
    """Blocks in groups of ``LANES``: each lane's first row, rows and sequence range, each
    group's offset in the lattice, and the lattice's size (float64 values)."""
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blocks = block_bounds(lengths)
    nb = blocks.size - 1
    ng = -(-nb // LANES)
    g, l = np.divmod(np.arange(nb), LANES)
    lo, n = np.zeros((ng, LANES), np.int64), np.zeros((ng, LANES), np.int64)
    seq = np.zeros((ng, 2, LANES), np.int64)
    lo[g, l] = offsets[blocks[:-1]]
    n[g, l] = offsets[blocks[1:]] - offsets[blocks[:-1]]
    seq[g, 0, l], seq[g, 1, l] = blocks[:-1], blocks[1:]
    sizes = n.max(axis=1, initial=0) * n_states * LANES
    base = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return offsets, nb, lo, n, seq, base[:-1], int(base[-1])


def x_lanes(X: np.ndarray, lengths: np.ndarray, out: np.ndarray | None = None):
    """``X`` laid out lane-major for the group passes (:func:`~._estep_lanes.lane_major_x`):
    ``(values, base)``, ``base[g]`` the offset of group ``g``; ``out`` is reused when it is
    large enough.

    The layout depends on the lengths only, so one copy serves every E-step of a fit.
    """
    _, _, lo, n, _, _, _ = lane_layout(lengths, 1)
    chunks = -(-n.max(axis=1, initial=0) // STEPS)
    base = np.concatenate([[0], np.cumsum(chunks * x_chunk_size(X.shape[1]))]).astype(np.int64)
    if out is None or out.size < base[-1]:
        out = np.empty(base[-1])
    lane_major_x(X, lo, n, base[:-1], out)
    return out, base[:-1]


#: The steps written out for the number of states are used up to this many states ...
UNROLL_MAX_STATES = 12
#: ... and from this many rows: each number of states costs one compile of the group passes
#: (20 s for K = 2, 30 s for K = 8, 48 s for K = 12, cached on disk), and saves about 30 ns
#: per row and EM iteration at K = 8, so it pays only on large or repeated fits.
UNROLL_MIN_ROWS = 200_000


def estep(startprob, A, lengths, *, table=None, X=None, gaussian=None, backward=True,
          n_moments=0, posteriors=None, lattice=None, threads=1, unrolled=None,
          x_lanes_of=None):
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
    backward : bool
        Smooth and accumulate statistics (else the log-likelihood only).
    n_moments : {0, 1, 2}
        Posterior-weighted moments of ``X`` to accumulate.
    posteriors : ndarray, shape (n_samples, K), optional
        Filled with the state posteriors (with ``backward``).
    lattice : ndarray of float64, optional
        Scratch for the forward variables, at least :func:`lane_layout`'s size (reused
        between calls; allocated when missing or too small).
    threads : int
        More than one: groups of blocks run in parallel (same results).
    unrolled : bool, optional
        Use the recursions written out for ``K`` states (bitwise equal results); by default
        where it pays (``K <= UNROLL_MAX_STATES`` and ``UNROLL_MIN_ROWS`` rows or more).
    x_lanes_of : tuple, optional
        :func:`x_lanes` of ``X`` and ``lengths``, made once per fit; made here when missing
        and needed (a backward pass with Gaussian emissions or moments; a forward pass alone
        gathers ``X`` chunk by chunk instead).

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
    if posteriors is None or not backward:
        posteriors = np.empty((0, K))
    offsets, nb, lo, n, seq, base, size = lane_layout(lengths, K)
    if not backward:
        size = 0
    if lattice is None or lattice.size < size:
        lattice = np.empty(size)
    D = X.shape[1] if n_moments else 0
    nacc = nb if backward else 0
    ll_out, bad_out = np.zeros(nb), np.full(nb, -1, dtype=np.int64)
    acc = (np.zeros((nacc, K, K)), np.zeros((nacc, K, K)), np.zeros((nacc, K)),
           np.zeros((nacc, K)), np.zeros((nacc, D, K)), np.zeros((nacc, D, K)))
    if unrolled is None:
        unrolled = K <= UNROLL_MAX_STATES and T >= UNROLL_MIN_ROWS
    kspec = unrolled_for(K) if unrolled else ()
    if x_lanes_of is None:
        if backward and (source == GAUSSIAN or n_moments):
            x_lanes_of = x_lanes(X, lengths)
        else:
            x_lanes_of = (np.empty(0), np.zeros(lo.shape[0], np.int64))
    run = _threaded if threads > 1 and lo.shape[0] > 1 else _serial
    run(kspec, lo, n, seq, base, offsets, startprob, A, source, table, X, *x_lanes_of,
        *gaussian, lattice, backward, n_moments, posteriors, ll_out, bad_out, *acc)
    failed = bad_out >= 0
    if failed.any():
        return np.nan, int(bad_out[failed].min()), None
    stats = tuple(a.sum(axis=0) for a in acc) if backward else None
    return float(ll_out.sum()), -1, stats
