"""Cost of covariate-dependent transitions: one E-step of an IOHMM against the ordinary one.

hmmlearn has no input-output HMM, so the peer here is sciTie's own fixed-transition E-step
(the compiled scaled pass) on the same data: the ratio is what the per-time transition
matrices (log space, ``sciTie.hmm._covariates``) cost. CPU seconds, best of ``--repeat``.

    PYTHONPATH=. python benchmarks/hmm_covariates.py [--samples 100000] [--states 4]
"""
from __future__ import annotations

import argparse

import numpy as np

from sciTie.hmm import _forward_backward as fb
from sciTie.hmm._covariates import forward_backward_tv, initial_beta
from _timing import best_cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--states", type=int, default=4)
    parser.add_argument("--covariates", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    K, T = args.states, args.samples
    transmat = rng.dirichlet(np.ones(K) * 5, size=K) + np.eye(K) * 3
    transmat /= transmat.sum(axis=1, keepdims=True)
    startprob = np.full(K, 1.0 / K)
    frames = rng.normal(size=(T, K)) * 2
    cov = rng.normal(size=(T, args.covariates))
    beta = initial_beta(transmat, args.covariates)
    beta[..., 1:] = rng.normal(size=beta[..., 1:].shape) * 0.3
    beta[np.arange(K), np.arange(K)] = 0.0
    lengths = np.array([T])
    forward_backward_tv(startprob, beta, cov[:10], frames[:10], [10])  # compile
    fb.forward_backward_stats(startprob, transmat, frames[:10], np.array([10]))
    iohmm = best_cpu_seconds(lambda: forward_backward_tv(startprob, beta, cov, frames, lengths), args.repeat)
    plain = best_cpu_seconds(lambda: fb.forward_backward_stats(startprob, transmat, frames, lengths),
                  args.repeat)
    print(f"E-step, {T} samples, {K} states, {args.covariates} covariates "
          f"(CPU s, best of {args.repeat})")
    print(f"  fixed transitions (sciTie scaled pass): {plain:.4f}")
    print(f"  covariate transitions (log space):      {iohmm:.4f}")
    print(f"  ratio: {iohmm / plain:.1f}x")


if __name__ == "__main__":
    main()
