"""Where the time of one tied Gaussian HMM EM iteration goes (the profile in docs/hmm.rst).

Times the parts of the compiled E-step of :mod:`sciTie.hmm._estep_kernels` on the data of
``benchmarks/hmm_vs_hmmlearn.py`` (K = 8, D = 3, 10 sequences, 10^6 rows): each part is run
alone over the whole data, the rounds are interleaved and the fastest CPU time of each part
is kept (the machine is shared). Figures are per T*K^2 per iteration, as in the issue.

Usage: ``python benchmarks/hmm_estep_profile.py [--total 1000000] [--rounds 5]``
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit

from hmm_vs_hmmlearn import initial_params, make_data
from sciTie.hmm import TiedGaussianHMM
from sciTie.hmm import _estep_kernels as ek

_B = ek._BLOCK


@njit(cache=True)
def _emission_pass(X, means, prec, const, with_exp):
    """The forward pass's emission blocks alone (with the shifted exponentials or not)."""
    K, D = means.shape
    XT, lpT, BT = np.empty((D, _B)), np.empty((K, _B)), np.empty((K, _B))
    shift, check = np.empty(_B), np.empty(_B)
    total = 0.0
    for t0 in range(0, X.shape[0], _B):
        n = min(_B, X.shape[0] - t0)
        ek._transpose_rows(X, t0, n, XT)
        ek._gaussian_block(XT, n, means, prec, const, lpT)
        total += ek._shift_exp_block(lpT, n, BT, shift, check) if with_exp else lpT[0, 0]
    return total


@njit(cache=True)
def _prediction_pass(A, alpha):
    """The backward pass's block set-up alone: transposed lattice, predictions, inverses."""
    K = A.shape[0]
    aT, predT, invT, small = (np.empty((K, _B)), np.empty((K, _B)), np.empty((K, _B)),
                              np.empty(_B))
    total = 0.0
    for t0 in range(0, alpha.shape[0], _B):
        n = min(_B, alpha.shape[0] - t0)
        ek._transpose_rows(alpha, t0, n, aT)
        ek._predictions(A, aT, n, predT, invT, small)
        total += invT[0, 0]
    return total


@njit(cache=True)
def _statistics_pass(alpha, X):
    """The backward pass's block statistics alone (expected transitions, occupancies,
    moments of X), from the lattice standing in for every (K, block) array."""
    K, D = alpha.shape[1], X.shape[1]
    aT, XT = np.empty((K, _B)), np.empty((D, _B))
    xi, post, obs, obs2 = np.zeros((K, K)), np.zeros(K), np.zeros((D, K)), np.zeros((D, K))
    for t0 in range(0, alpha.shape[0], _B):
        n = min(_B, alpha.shape[0] - t0)
        ek._transpose_rows(alpha, t0, n, aT)
        ek._transpose_rows(X, t0, n, XT)
        ek._block_statistics(n, aT, aT, aT, XT, 2, xi, post, obs, obs2)
    return xi[0, 0]


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
    sp, A, means, var = (init[k] for k in ("startprob_", "transmat_", "means_", "covars_"))
    const = -0.5 * (D * np.log(2 * np.pi) + np.log(var).sum(axis=1))
    prec = np.ascontiguousarray(0.5 / var)
    gauss = (np.ascontiguousarray(means), prec, const)
    alpha = np.empty((a.total, K))
    kw = dict(n_components=K, covariance_type="diag", n_iter=iters, tol=-np.inf,
              init_params="", params="stmc")

    def fit():
        model = TiedGaussianHMM(**kw)
        for k, v in init.items():
            setattr(model, k, np.array(v, copy=True))
        model.fit(X, lengths)

    parts = {
        "emission log-densities": lambda: _emission_pass(X, gauss[0], prec, const, False),
        "+ shifted exp": lambda: _emission_pass(X, gauss[0], prec, const, True),
        "forward pass (log p only)": lambda: ek.estep(sp, A, lengths, X=X, gaussian=gauss,
                                                      backward=False),
        "forward pass storing alpha": lambda: ek.estep(sp, A, lengths, X=X, gaussian=gauss,
                                                       alpha=alpha, backward=False),
        "whole E-step": lambda: ek.estep(sp, A, lengths, X=X, gaussian=gauss, alpha=alpha,
                                         n_moments=2),
        "backward: predictions and inverses": lambda: _prediction_pass(A, alpha),
        "backward: block statistics": lambda: _statistics_pass(alpha, X),
        f"fit ({iters} iterations)": fit,
    }
    for f in parts.values():  # compile, and fill the lattice
        f()
    best = dict.fromkeys(parts, np.inf)
    for _ in range(a.rounds):
        for name, f in parts.items():
            best[name] = min(best[name], _cpu(f))
    unit = 1e9 / (a.total * K * K)
    fit_t = best.pop(f"fit ({iters} iterations)")
    per_iter = fit_t / iters
    print(f"{a.total} rows, K={K}, D={D}; fastest CPU time of {a.rounds} interleaved rounds")
    for name, t in best.items():
        print(f"{name:38s} {t * 1e3:8.1f} ms  {t * unit:6.3f} ns per T*K^2")
    e, f1 = best["whole E-step"], best["forward pass storing alpha"]
    print(f"{'fit, per iteration':38s} {per_iter * 1e3:8.1f} ms  {per_iter * unit:6.3f} ns "
          f"per T*K^2 (E-step, M-step, Python, and 1/{iters} of the final forward pass)")
    print("derived: exp {:.1f} ms, forward recursion {:.1f} ms, backward {:.1f} ms, "
          "outside the E-step {:.1f} ms per iteration".format(
              (best["+ shifted exp"] - best["emission log-densities"]) * 1e3,
              (best["forward pass (log p only)"] - best["+ shifted exp"]) * 1e3,
              (e - f1) * 1e3, (per_iter - e) * 1e3))


if __name__ == "__main__":
    main()
