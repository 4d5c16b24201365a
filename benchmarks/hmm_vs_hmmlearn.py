"""sciTie.hmm vs hmmlearn: Baum-Welch fit time at equal log-likelihood.

Gaussian HMM, K=8 states, 3-D diagonal covariances, 10 sequences totalling 10^6
observations, 20 EM iterations from identical initial parameters. Both run in this process;
the script prints each fit time, the final log-likelihoods and the ratios.

Usage: ``python benchmarks/hmm_vs_hmmlearn.py [--total 1000000] [--iters 20] [--threads 1]
[--sequences 10]``
(``--threads``: sciTie's ``hmm_threads`` setting, threads over groups of sequences in the
E-step; hmmlearn runs as it does by default).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from hmmlearn import hmm

from sciTie import config_context
from sciTie.hmm import TiedGaussianHMM
from sciTie.hmm._estep_kernels import UNROLL_MIN_ROWS


def make_data(total: int, n_seq: int, K: int, D: int, seed: int = 0):
    """Sample ``n_seq`` sequences from a random sticky Gaussian HMM."""
    rng = np.random.default_rng(seed)
    gen = hmm.GaussianHMM(K, covariance_type="diag", random_state=seed, init_params="")
    gen.startprob_ = np.full(K, 1.0 / K)
    T = np.full((K, K), 0.02 / (K - 1))
    np.fill_diagonal(T, 0.98)
    gen.transmat_ = T
    gen.means_ = rng.normal(scale=3.0, size=(K, D))
    gen.covars_ = rng.uniform(0.5, 1.5, size=(K, D))
    lengths = np.full(n_seq, total // n_seq)
    lengths[-1] += total - lengths.sum()
    X = np.concatenate([gen.sample(n, random_state=seed + i)[0] for i, n in enumerate(lengths)])
    return X, lengths


def initial_params(X, K, seed=1):
    """Shared starting point: perturbed uniform transitions, data-drawn means."""
    rng = np.random.default_rng(seed)
    D = X.shape[1]
    T = rng.dirichlet(np.full(K, 10.0), size=K) + np.eye(K) * 5
    T /= T.sum(axis=1, keepdims=True)
    return dict(startprob_=np.full(K, 1.0 / K), transmat_=T,
                means_=X[rng.choice(len(X), K, replace=False)],
                covars_=np.tile(X.var(axis=0), (K, 1)))


def fit(model, X, lengths, init):
    for k, v in init.items():
        setattr(model, k, np.array(v, copy=True))
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, lengths)
    fit.cpu = time.process_time() - c0  # CPU seconds of the last fit (all threads)
    return time.perf_counter() - t0, model.monitor_.history[-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--total", type=int, default=1_000_000)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--states", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3, help="alternating rounds (best is kept)")
    p.add_argument("--skip-log", action="store_true", help="skip hmmlearn's 'log' version")
    p.add_argument("--threads", type=int, default=1, help="sciTie's hmm_threads setting")
    p.add_argument("--sequences", type=int, default=10, help="sequences the rows are split in")
    a = p.parse_args(argv)
    with config_context(hmm_threads=a.threads):
        _run(a)


def _run(a):
    K, D = a.states, 3
    X, lengths = make_data(a.total, a.sequences, K, D)
    init = initial_params(X, K)
    kw = dict(n_components=K, covariance_type="diag", n_iter=a.iters, tol=-np.inf,
              init_params="", params="stmc")
    # warm-up: compile the numba kernels outside the timing (on enough rows for the
    # E-step's recursions written out for K states, in five sequences: two groups of lanes,
    # which the threaded pass needs)
    n = min(len(X), UNROLL_MIN_ROWS)
    fit(TiedGaussianHMM(**{**kw, "n_iter": 1}), X[:n], [n // 5] * 4 + [n - 4 * (n // 5)], init)
    # alternate the two fits and keep the fastest of each: the machine is shared, and
    # interleaving exposes both to the same background load
    t_sci, t_sc, c_sci, c_sc = [], [], [], []
    for _ in range(a.repeat):
        t, ll_sci = fit(TiedGaussianHMM(**kw), X, lengths, init)
        t_sci.append(t)
        c_sci.append(fit.cpu)
        t, ll_sc = fit(hmm.GaussianHMM(**kw, implementation="scaling"), X, lengths, init)
        t_sc.append(t)
        c_sc.append(fit.cpu)
    print(f"data: {len(X)} obs in {len(lengths)} sequences, K={K}, D={D}, "
          f"{a.iters} EM iterations, best of {a.repeat} alternating runs, sciTie with "
          f"hmm_threads={a.threads}")
    print(f"sciTie TiedGaussianHMM    {min(t_sci):8.2f} s   logL={ll_sci:.10f}")
    print(f"hmmlearn 'scaling'        {min(t_sc):8.2f} s   logL={ll_sc:.10f}")
    rel = abs(ll_sci - ll_sc) / abs(ll_sc)
    ratios = np.array(t_sci) / np.array(t_sc)
    print(f"wall ratio sciTie / hmmlearn-scaling = {min(t_sci) / min(t_sc):.3f} ("
          f"per-round ratios {np.round(ratios, 3).tolist()}); logL rel. difference "
          f"{rel:.2e} (goal <= 1e-10)")
    print(f"CPU seconds: sciTie {min(c_sci):.2f}, hmmlearn-scaling {min(c_sc):.2f}, ratio "
          f"{min(c_sci) / min(c_sc):.3f} (goal <= 0.10)")
    t_sci, t_sc = min(t_sci), min(t_sc)
    print(f"per T*K^2 per iteration: sciTie {t_sci / (len(X) * K * K * a.iters) * 1e9:.2f} "
          f"ns, hmmlearn-scaling {t_sc / (len(X) * K * K * a.iters) * 1e9:.2f} ns")
    if not a.skip_log:
        t_lg, ll_lg = fit(hmm.GaussianHMM(**kw, implementation="log"), X, lengths, init)
        print(f"hmmlearn 'log'            {t_lg:8.2f} s   logL={ll_lg:.10f}  "
              f"ratio sciTie/log = {t_sci / t_lg:.3f}")


if __name__ == "__main__":
    main()
