"""Segment E-step of a hidden semi-Markov model against hmmlearn on the expanded state space.

hmmlearn has no HSMM; the same model is its ordinary HMM with ``K * D`` states (each state a
countdown chain of D substates, ``tests/test_hmm_hsmm.py`` checks they agree), so the peer is
hmmlearn's log-space forward-backward there (``score_samples``: log-likelihood and
posteriors). sciTie's side is the compiled segment recursion (``sciTie.hmm._segments``) with
the same outputs plus EM's expected counts. Both get the same Gaussian frame
log-likelihoods' inputs; CPU seconds, best of ``--repeat``, in one process.

    PYTHONPATH=. python benchmarks/hmm_semi_markov.py [--samples 20000] [--states 3] \
        [--max-duration 30] [--side scitie|hmmlearn]

``--side`` runs one model's posteriors only, so that each can be timed as a whole process.
"""
from __future__ import annotations

import argparse

import numpy as np
from hmmlearn.hmm import GaussianHMM

from sciTie.hmm import TiedGaussianHSMM
from sciTie.hmm._segments import segment_statistics
from _timing import best_cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--states", type=int, default=3)
    parser.add_argument("--max-duration", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--side", choices=("both", "scitie", "hmmlearn"), default="both",
                        help="run one side only (to time each as a whole process)")
    args = parser.parse_args()
    K, D, T = args.states, args.max_duration, args.samples
    rng = np.random.default_rng(0)
    m = TiedGaussianHSMM(K, max_duration=D, init_params="", random_state=0)
    m.startprob_ = np.full(K, 1.0 / K)
    A = rng.random((K, K)) + 0.1
    np.fill_diagonal(A, 0.0)
    m.transmat_ = A / A.sum(axis=1, keepdims=True)
    m.means_ = np.arange(K, dtype=float)[:, None]
    m.covars_ = np.full((K, 1), 0.5)
    m.dwell_rate_ = rng.uniform(2.0, D / 2.0, K)
    X, _ = m.sample(T, random_state=1)

    p = m.dwell_distribution_
    h = GaussianHMM(K * D, init_params="", implementation="log")
    h.startprob_ = (m.startprob_[:, None] * p).ravel()
    big = np.zeros((K * D, K * D))
    for k in range(K):
        for r in range(2, D + 1):
            big[k * D + r - 1, k * D + r - 2] = 1.0
        big[k * D, :] = (m.transmat_[k][:, None] * p).ravel()
    h.transmat_ = big
    h.means_ = np.repeat(m.means_, D, axis=0)
    h.covars_ = np.full((K * D, 1), 0.5)

    lengths = np.array([T])
    if args.side == "scitie":
        print(m.predict_proba(X).sum())
        return
    if args.side == "hmmlearn":
        print(h.predict_proba(X).sum())
        return
    ours_ll = m.score(X)  # compiles the kernels
    peer_ll = h.score(X)

    def ours():
        frames = m._compute_log_likelihood(X)
        segment_statistics(m.startprob_, m.transmat_, p, frames, lengths)

    t_ours = best_cpu_seconds(ours, args.repeat)
    t_peer = best_cpu_seconds(lambda: h.score_samples(X), args.repeat)
    print(f"T={T} K={K} D={D}: log-likelihood sciTie {ours_ll:.10g}, hmmlearn (expanded) "
          f"{peer_ll:.10g}, difference {abs(ours_ll - peer_ll):.2e}")
    print(f"E-step CPU s: sciTie segments {t_ours:.4f}, hmmlearn expanded ({K * D} states) "
          f"{t_peer:.4f}; ratio hmmlearn / sciTie = {t_peer / t_ours:.2f}")


if __name__ == "__main__":
    main()
