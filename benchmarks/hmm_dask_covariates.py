"""Covariate-dependent transitions on Dask: the same EM in process and on a LocalCluster.

The peer is sciTie's own in-process fit (hmmlearn has no input-output HMM): both fit the same
``TiedGaussianHMM`` with covariates from the same start for a fixed number of iterations, in
this process's machine. Printed: seconds per EM iteration of each (median over iterations,
the first left out: it places the data), their ratio, the bytes of per-row statistics the
client receives each iteration (the expected departures, n_samples x n_states float64, which
the logit's M-step needs row by row) and the largest relative difference of the fitted
arrays (the cluster's fit must be the in-process one).

    PYTHONPATH=. python benchmarks/hmm_dask_covariates.py [--sequences 200] [--length 1000]
"""
from __future__ import annotations

import argparse

import numpy as np

from _dask_bench import TimingMonitor, local_client

from sciTie.hmm import TiedGaussianHMM


def make_data(n_seq: int, length: int, K: int, C: int, seed: int = 0):
    """Sequences whose state leaves with a logit of the covariates; Gaussian levels."""
    rng = np.random.default_rng(seed)
    beta = rng.normal(scale=1.0, size=(K, K, 1 + C))
    beta[..., 0] -= 3.0
    beta[np.arange(K), np.arange(K)] = 0.0
    cov = rng.normal(size=(n_seq * length, C))
    X = np.empty((n_seq * length, 1))
    for s in range(n_seq):
        rows = slice(s * length, (s + 1) * length)
        eta = np.einsum("ijp,tp->tij", beta, np.c_[np.ones(length), cov[rows]])
        A = np.exp(eta - eta.max(axis=2, keepdims=True))
        cdf = np.cumsum(A / A.sum(axis=2, keepdims=True), axis=2)
        u = rng.random(length)
        z = np.empty(length, dtype=int)
        z[0] = rng.integers(K)
        for t in range(1, length):
            z[t] = min(int(np.searchsorted(cdf[t, z[t - 1]], u[t])), K - 1)
        X[rows, 0] = 2.0 * z + rng.normal(size=length)
    return X, np.full(n_seq, length), cov


def fitted(K, iters, X, lengths, cov, client=None):
    model = TiedGaussianHMM(K, n_iter=iters, tol=-np.inf, random_state=0, n_init=1,
                            covars_prior=0.0)
    model.monitor_ = TimingMonitor(model.tol, model.n_iter, False)
    model.fit(X, lengths, covariates=cov, client=client)
    return model, float(np.median(np.diff(model.monitor_.stamps)[1:]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", type=int, default=200)
    p.add_argument("--length", type=int, default=1000)
    p.add_argument("--states", type=int, default=3)
    p.add_argument("--covariates", type=int, default=2)
    p.add_argument("--iters", type=int, default=6)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    K = a.states
    X, lengths, cov = make_data(a.sequences, a.length, K, a.covariates)
    fitted(K, 2, X[:2000], [2000], cov[:2000])  # compile outside the timing
    ref, t_in = fitted(K, a.iters, X, lengths, cov)
    with local_client(a.workers, profiler=False) as client:
        fitted(K, 2, X[:2000], [2000], cov[:2000], client)  # warm the workers
        ours, t_cl = fitted(K, a.iters, X, lengths, cov, client)
    diffs = {k: float(np.max(np.abs(getattr(ref, k) - getattr(ours, k)))
                      / max(np.max(np.abs(getattr(ref, k))), 1e-300))
             for k in ("startprob_", "beta_", "means_", "covars_")}
    print(f"{len(X)} rows ({a.sequences} x {a.length}), {K} states, {a.covariates} "
          f"covariates, {a.iters} EM iterations")
    print(f"in process:               {t_in:.3f} s per iteration")
    print(f"LocalCluster, {a.workers} workers:  {t_cl:.3f} s per iteration "
          f"(ratio cluster / in process {t_cl / t_in:.2f})")
    print(f"per-row statistics to the client: {len(X) * K * 8 / 2**20:.1f} MiB per iteration")
    print("relative difference of the fitted arrays (max |a - b| / max |a|): "
          + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    print(f"log-likelihood {ref.result_.log_likelihood:.6f} (in process) vs "
          f"{ours.result_.log_likelihood:.6f} (cluster)")


if __name__ == "__main__":
    main()
