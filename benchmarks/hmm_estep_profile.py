"""Where the time of one tied Gaussian HMM EM iteration goes (the profile in docs/hmm.rst).

Times the parts of the compiled E-step (:mod:`sciTie.hmm._estep_kernels` and the lanes of
:mod:`sciTie.hmm._estep_lanes`) on the data of ``benchmarks/hmm_vs_hmmlearn.py`` (K = 8,
D = 3, 10 sequences, 10^6 rows): each part is run alone over the whole data, group by group
and chunk by chunk as the E-step runs it, the rounds are interleaved and the fastest CPU time
of each part is kept (the machine is shared). Figures are ns per row and per T*K^2, per
iteration.

Usage: ``PYTHONPATH=. python benchmarks/hmm_estep_profile.py [--total 1000000] [--rounds 5]``
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from numba import njit

from hmm_vs_hmmlearn import initial_params, make_data
from sciTie.hmm import TiedGaussianHMM
from sciTie.hmm import _estep_blocks as eb
from sciTie.hmm import _estep_kernels as ek
from sciTie.hmm import _estep_lanes as el

_S, _L = el.STEPS, el.LANES


@njit(cache=True)
def _emission_pass(lo, n, xl, xbase, means, prec, const, stage):
    """The forward chunks' emissions alone: lane-major X read (stage 0), + log-densities
    (1), + shifted exponentials (2)."""
    K, D = means.shape
    lpT, BT = np.zeros((K, _S, _L)), np.zeros((K, _S, _L))
    size = D * _S * _L
    shift = np.zeros((_S, _L))
    total = 0.0
    for gi in range(lo.shape[0]):
        S = n[gi].max()
        for s0 in range(0, S, _S):
            m = min(_S, S - s0)
            at = xbase[gi] + (s0 // _S) * size
            XT = xl[at:at + size].reshape((D, _S, _L))
            if stage >= 1:
                eb._gaussian_block(XT.reshape(D, _S * _L), _S * _L, means, prec, const,
                                   lpT.reshape(K, _S * _L))
            if stage >= 2:
                el._shift_exp(lpT, m, BT, shift)
            total += BT[0, 0, 0] + lpT[0, 0, 0] + XT[0, 0, 0]
    return total


@njit(cache=True)
def _forward_recursion(kspec, lo, n, base, A, startprob, lattice, BT):
    """The forward steps alone, on fixed exponentials ``BT``, storing the lattice."""
    K = A.shape[0]
    evt, first = np.zeros(_S, np.int64), np.zeros((_S, _L), np.int64)
    prev, pred, pb = np.full((K, _L), 1.0 / K), np.zeros((K, _L)), np.zeros((K, _L))
    cs = np.zeros((_S, _L))
    for gi in range(lo.shape[0]):
        S = n[gi].max()
        for s0 in range(0, S, _S):
            m = min(_S, S - s0)
            i = 0
            while i < m:  # (no guard fires on these exponentials)
                i = el.forward_steps(kspec, i, m, s0, A, startprob, BT, evt, first,
                                     lattice, base[gi], True, prev, pred, pb, cs) + 1
    return prev[0, 0]


@njit(cache=True)
def _backward_parts(kspec, lo, n, base, A, lattice, xl, xbase, D, part):
    """The backward chunks' parts alone, from a filled lattice: inverse predictions (0),
    the smoothing steps (1), the statistics (2)."""
    K = A.shape[0]
    IP, R, G = np.zeros((_S, K, _L)), np.zeros((_S, K, _L)), np.zeros((_S, K, _L))
    small = np.zeros((_S, _L))
    size = D * _S * _L
    evt, last = np.zeros(_S, np.int64), np.zeros((_S, _L), np.int64)
    g, gnew, r = np.full((K, _L), 1.0 / K), np.zeros((K, _L)), np.zeros((K, _L))
    xi, post = np.zeros((K, K, _L)), np.zeros((K, _L))
    obs, obs2 = np.zeros((D, K, _L)), np.zeros((D, K, _L))
    for gi in range(lo.shape[0]):
        S = n[gi].max()
        el.inverse_predictions(kspec, A, lattice, base[gi], 0, min(_S, S), IP, small)
        for c in range((S + _S - 1) // _S - 1, -1, -1):
            s0 = c * _S
            m = min(_S, S - s0)
            if part == 0:
                el.inverse_predictions(kspec, A, lattice, base[gi], s0, m, IP, small)
            elif part == 1:
                el.backward_steps(kspec, m - 1, s0, A, lattice, base[gi], IP, evt, last, g,
                                  gnew, r, R, G)
            else:
                at = xbase[gi] + c * size
                XT = xl[at:at + size].reshape((D, _S, _L))
                el.chunk_statistics(kspec, m, s0, lattice, base[gi], IP, IP, XT, 2, xi, post,
                                    obs, obs2)
    return g[0, 0] + xi[0, 0, 0]


def _cpu(f):
    c = time.process_time()
    f()
    return time.process_time() - c


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--total", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    K, D, iters = 8, 3, 20
    X, lengths = make_data(a.total, 10, K, D)
    init = initial_params(X, K)
    lengths = lengths.astype(np.int64)
    sp, A, means, var = (np.ascontiguousarray(init[k])
                         for k in ("startprob_", "transmat_", "means_", "covars_"))
    const = -0.5 * (D * np.log(2 * np.pi) + np.log(var).sum(axis=1))
    prec = np.ascontiguousarray(0.5 / var)
    gauss = (means, prec, const)
    _, _, lo, n, _, base, size = ek.lane_layout(lengths, K)
    xl, xbase = ek.x_lanes(X, lengths)
    lattice, scratch = np.empty(size), np.empty(size)
    BT = np.random.default_rng(0).uniform(0.5, 1.0, (K, _S, _L))
    kw = dict(n_components=K, covariance_type="diag", n_iter=iters, tol=-np.inf,
              init_params="", params="stmc")

    def fit():
        model = TiedGaussianHMM(**kw)
        for k, v in init.items():
            setattr(model, k, np.array(v, copy=True))
        model.fit(X, lengths)

    ku = el.unrolled_for(K)
    parts = {
        "X, lane-major, once per fit": lambda: ek.x_lanes(X, lengths, xl),
        "read X (forward)": lambda: _emission_pass(lo, n, xl, xbase, means, prec, const, 0),
        "+ emission log-densities": lambda: _emission_pass(lo, n, xl, xbase, means, prec,
                                                           const, 1),
        "+ shifted exp": lambda: _emission_pass(lo, n, xl, xbase, means, prec, const, 2),
    }
    for tag, ks, unrolled in (("generic", (), False), ("unrolled", ku, True)):
        parts.update({
            f"forward steps, {tag}": lambda ks=ks: _forward_recursion(
                ks, lo, n, base, A, sp, scratch, BT),
            f"forward pass (log p only), {tag}": lambda u=unrolled: ek.estep(
                sp, A, lengths, X=X, gaussian=gauss, backward=False, unrolled=u,
                x_lanes_of=(xl, xbase)),
            f"whole E-step, {tag}": lambda u=unrolled: ek.estep(
                sp, A, lengths, X=X, gaussian=gauss, lattice=lattice, n_moments=2,
                unrolled=u, x_lanes_of=(xl, xbase)),
            f"backward: smoothing steps, {tag}": lambda ks=ks: _backward_parts(
                ks, lo, n, base, A, lattice, xl, xbase, D, 1),
            f"backward: statistics, {tag}": lambda ks=ks: _backward_parts(
                ks, lo, n, base, A, lattice, xl, xbase, D, 2),
            f"backward: inverse predictions, {tag}": lambda ks=ks: _backward_parts(
                ks, lo, n, base, A, lattice, xl, xbase, D, 0),
        })
    parts.update({
        f"fit ({iters} iterations)": fit,
    })
    for f in parts.values():  # compile, and fill the lattice
        f()
    best = dict.fromkeys(parts, np.inf)
    for _ in range(a.rounds):
        for name, f in parts.items():
            best[name] = min(best[name], _cpu(f))
    fit_t = best.pop(f"fit ({iters} iterations)") / iters
    print(f"{a.total} rows, K={K}, D={D}, {lengths.size} sequences in {lo.shape[0]} groups of "
          f"{_L} lanes; fastest CPU time of {a.rounds} interleaved rounds; load "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, t in {**best, "fit, per iteration": fit_t}.items():
        print(f"{name:40s} {t * 1e3:8.1f} ms {t * 1e9 / a.total:7.1f} ns/row "
              f"{t * 1e9 / (a.total * K * K):6.3f} ns per T*K^2")
    e = best["whole E-step, unrolled"]
    print(f"outside the E-step (M-step, Python, 1/{iters} of the final forward pass): "
          f"{(fit_t - e) * 1e3:.1f} ms per iteration")


if __name__ == "__main__":
    main()
