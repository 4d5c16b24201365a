"""What missing observations cost: CPU time of Baum-Welch with a fraction of X missing.

Gaussian HMM, K=8 states, 3-D diagonal covariances (the data of ``hmm_vs_hmmlearn.py``),
fixed EM iterations from identical initial parameters: sciTie on complete X (the fused
compiled E-step), sciTie with a fraction of the entries missing at random (the emission table
and per-feature statistics in numpy), and hmmlearn's 'scaling' fit of the complete X (it
cannot take missing values). All run in this process, alternating; the best round is kept.

Usage: ``python benchmarks/hmm_missing.py [--total 200000] [--iters 10] [--missing 0.1]``
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from hmmlearn import hmm

from hmm_vs_hmmlearn import initial_params, make_data
from sciTie.hmm import TiedGaussianHMM


def cpu_seconds(cls, X, lengths, init, n_iter, **kwargs) -> float:
    model = cls(len(init["startprob_"]), covariance_type="diag", n_iter=n_iter, tol=-np.inf,
                init_params="", covars_prior=0, **kwargs)
    for key, value in init.items():
        setattr(model, key, np.array(value, copy=True))
    c0 = time.process_time()
    model.fit(X, lengths)
    return time.process_time() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--total", type=int, default=200_000)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--missing", type=float, default=0.1)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    X, lengths = make_data(args.total, 10, 8, 3)
    gaps = X.copy()
    gaps[np.random.default_rng(0).random(X.shape) < args.missing] = np.nan
    init = initial_params(X, 8)
    best = {"complete": np.inf, "missing": np.inf, "hmmlearn": np.inf}
    warnings.simplefilter("ignore")  # tol=-inf: every fit "does not converge"
    for _ in range(args.repeat):
        best["complete"] = min(best["complete"], cpu_seconds(TiedGaussianHMM, X, lengths, init,
                                                             args.iters))
        best["missing"] = min(best["missing"], cpu_seconds(TiedGaussianHMM, gaps, lengths, init,
                                                           args.iters))
        best["hmmlearn"] = min(best["hmmlearn"], cpu_seconds(hmm.GaussianHMM, X, lengths, init,
                                                             args.iters, implementation="scaling"))
    print(f"data: {args.total} obs, K=8, D=3, {args.iters} EM iterations, "
          f"{args.missing:.0%} missing, best of {args.repeat} CPU times")
    for name, value in best.items():
        print(f"{name:>10s}: {value:6.2f} s CPU")
    print(f"missing / complete = {best['missing'] / best['complete']:.2f}, "
          f"missing / hmmlearn (complete) = {best['missing'] / best['hmmlearn']:.2f}")


if __name__ == "__main__":
    main()
