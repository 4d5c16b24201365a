"""Tied HMM EM over many sequences: in process vs a Dask LocalCluster, and a scaling model.

Fits the same TiedGaussianHMM from the same start three ways in this process's machine: in
process, on a ``LocalCluster`` with 1 worker and with 2 workers (worker processes, one
thread each). For each it prints the median time per EM iteration and, for the clusters, the
bytes that travel per iteration (parameters out, statistics between workers and back) and
the measured per-partition E-step cost, reduction-task cost, scheduler overhead per task and
M-step time. From those measurements it prints the scaling model for 10 to 100 machines:

    time per iteration = parameter broadcast + max partition E-step + scheduling of the
                         iteration's tasks + tree reduction + M-step on the client

Network latency and bandwidth of the model machines are assumptions (options), printed with
the table; everything else is measured here. Results are checked equal to the in-process fit
(relative difference of the final log-likelihood and parameters is printed).

Usage: ``python benchmarks/hmm_dask.py [--sequences 400] [--length 2500] [--iters 8]``
"""
from __future__ import annotations

import argparse
import copy
import pickle
import statistics
import time

import numpy as np

from _dask_bench import (TimingMonitor, bytes_sent, compute_seconds, local_client, process_cpu,
                         task_overhead, tree_shape, workers_cpu)

from sciTie.hmm import TiedGaussianHMM
from sciTie.hmm import _distributed as dist


def make_data(n_seq: int, length: int, K: int, D: int, seed: int = 0):
    """Sequences from a sticky Gaussian HMM whose states come in tied pairs."""
    rng = np.random.default_rng(seed)
    levels = rng.normal(scale=3.0, size=(K // 2, D))
    T = np.full((K, K), 0.05 / (K - 1))
    np.fill_diagonal(T, 0.95)
    X = np.empty((n_seq * length, D))
    for s in range(n_seq):
        state = rng.integers(K)
        u = rng.random(length)
        cum = np.cumsum(T, axis=1)
        path = np.empty(length, dtype=int)
        for t in range(length):
            path[t] = state
            state = min(int(np.searchsorted(cum[state], u[t])), K - 1)
        X[s * length:(s + 1) * length] = levels[path // 2] + rng.normal(size=(length, D))
    return X, np.full(n_seq, length)


def new_model(K, D, iters, start):
    model = TiedGaussianHMM(K, tied_states=[[2 * g, 2 * g + 1] for g in range(K // 2)],
                            init_params="", n_iter=iters, tol=-np.inf)
    for k, v in start.items():
        setattr(model, k, np.array(v, copy=True))
    model.monitor_ = TimingMonitor(model.tol, model.n_iter, False)
    return model


def per_iteration(model) -> float:
    steps = np.diff(model.monitor_.stamps)[1:]  # the first includes placing the data
    return float(np.median(steps))


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


def cluster_run(n_workers, X, lengths, K, D, iters, start, profiler=True):
    """Fit on a fresh LocalCluster; return the model and the measured quantities."""
    import distributed

    with local_client(n_workers, profiler) as client:
        # warm-up: imports and compiled kernels loaded on every worker, outside the timing
        new_model(K, D, 1, start).fit(X[:2000], [2000], client=client)
        t_task, t_task_cpu = task_overhead(client)
        sent0, w0, c0 = bytes_sent(client), workers_cpu(client), process_cpu()
        model = new_model(K, D, iters, start)
        with distributed.get_task_stream(client) as stream:
            model.fit(X, lengths, client=client)
        client_cpu = (process_cpu() - c0) / iters
        worker_cpu = (workers_cpu(client) - w0) / iters
        sent = bytes_sent(client) - sent0

    esteps = [t for t in stream.data if str(t["key"][0]).startswith("hmm-estep-")
              and "-map-" in str(t["key"][0])]
    sums = [t for t in stream.data if str(t["key"][0]).startswith("hmm-estep-")
            and "-sum-" in str(t["key"][0])]
    n_parts = len(esteps) // iters
    e_times = np.array([compute_seconds(t) for t in esteps])
    return model, {"n_parts": n_parts, "t_task": t_task, "t_task_cpu": t_task_cpu,
                   "worker_cpu": worker_cpu, "client_cpu": client_cpu,
                   "estep_mean": float(e_times.mean()), "estep_max": float(e_times.max()),
                   "combine": float(np.mean([compute_seconds(t) for t in sums])) if sums
                   else 0.0,
                   "worker_bytes_per_iter": sent / iters,
                   "sum_tasks_per_iter": len(sums) / iters}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequences", type=int, default=400)
    p.add_argument("--length", type=int, default=2500)
    p.add_argument("--states", type=int, default=4)
    p.add_argument("--features", type=int, default=2)
    p.add_argument("--iters", type=int, default=8)
    p.add_argument("--no-profiler", action="store_true",
                   help="switch off the workers' statistical profiler (on in Dask's defaults)")
    p.add_argument("--model-sequences", type=int, default=100_000,
                   help="sequences of the data set in the scaling model")
    p.add_argument("--cores", type=int, default=16, help="cores per model machine")
    p.add_argument("--latency", type=float, default=5e-4, help="assumed network latency [s]")
    p.add_argument("--bandwidth", type=float, default=1e9, help="assumed bandwidth [B/s]")
    a = p.parse_args(argv)
    K, D = a.states, a.features
    X, lengths = make_data(a.sequences, a.length, K, D)
    rng = np.random.default_rng(1)
    start = dict(startprob_=np.full(K, 1.0 / K),
                 transmat_=(np.eye(K) * 5 + rng.dirichlet(np.ones(K), K)) / 6,
                 means_=np.repeat(X[rng.choice(len(X), K // 2, replace=False)], 2, axis=0),
                 covars_=np.tile(X.var(axis=0), (K, 1)))
    new_model(K, D, 1, start).fit(X[:2000], [2000])  # compile outside the timing

    cpu0 = time.process_time()
    ref = new_model(K, D, a.iters, start).fit(X, lengths)
    cpu_in = (time.process_time() - cpu0) / a.iters
    t_in = per_iteration(ref)
    # M-step alone, and the sizes of what travels
    stats, _ = ref._do_estep(X, lengths)
    t_m = []
    for _ in range(20):
        m = copy.deepcopy(ref)
        t0 = time.process_time()
        m._do_mstep(stats)
        t_m.append(time.process_time() - t0)
    t_mstep = statistics.median(t_m)
    params_bytes = len(pickle.dumps(dist._fitted_params(ref), protocol=5))
    part = dist.HMMPartition(X[:a.length], lengths[:1], 0, 0, "bench")
    leaf = dist._estep(part, dist._shipped(ref, with_params=False), dist._fitted_params(ref))
    stats_bytes = len(pickle.dumps(leaf, protocol=5))

    print(f"data: {len(X)} observations in {len(lengths)} sequences of {a.length} "
          f"({X.nbytes / 2**20:.1f} MiB), K={K} states tied in pairs, D={D}, "
          f"{a.iters} EM iterations from one start; workers' profiler "
          f"{'off' if a.no_profiler else 'on (Dask default)'}")
    print(f"{'':24s} {'wall/iteration':>15s} {'in-process/this':>16s} {'CPU/iteration':>14s}")
    print(f"{'in process':24s} {t_in * 1e3:12.1f} ms {1.0:16.2f} {cpu_in * 1e3:11.1f} ms")
    runs = {}
    for n_workers in (1, 2):
        model, meas = cluster_run(n_workers, X, lengths, K, D, a.iters, start,
                                  profiler=not a.no_profiler)
        runs[n_workers] = meas
        t_it = per_iteration(model)
        err = max(rel(ref.monitor_.history[-1], model.monitor_.history[-1]),
                  *(rel(getattr(ref, k), getattr(model, k))
                    for k in ("startprob_", "transmat_", "means_", "_covars_")))
        label = f"LocalCluster, {n_workers} worker{'s' if n_workers > 1 else ''}"
        print(f"{label:24s} {t_it * 1e3:12.1f} ms {t_in / t_it:16.2f} "
              f"{meas['worker_cpu'] * 1e3:11.1f} ms on workers + "
              f"{meas['client_cpu'] * 1e3:.1f} ms client/scheduler   "
              f"({meas['n_parts']} partitions; max rel. difference to in process {err:.1e})")
    meas = runs[2]
    print("\nper iteration on the wire (2 workers):")
    print(f"  parameters out            {params_bytes:8d} B pickled (one task; each worker "
          "fetches it once)")
    print(f"  statistics per partition  {stats_bytes:8d} B pickled; "
          f"{meas['sum_tasks_per_iter']:.0f} reduction task(s), one sum back to the client")
    print(f"  worker-to-worker, measured {meas['worker_bytes_per_iter']:7.0f} B "
          f"(the {X.nbytes} B of data never move)")
    # CPU seconds, so that other load on this machine drops out; the one-worker run, where
    # no second worker competes for the two cores, gives the cost per core
    t_row = runs[1]["worker_cpu"] / len(X)
    print("\nmeasured for the model (CPU seconds: this machine is shared):")
    print(f"  E-step per observation and core   {t_row * 1e9:8.1f} ns   (1 worker; 2 workers "
          f"{meas['worker_cpu'] / len(X) * 1e9:.1f} ns, in process "
          f"{(cpu_in - t_mstep) / len(X) * 1e9:.1f} ns, task wall time "
          f"{meas['estep_mean'] / (len(X) / meas['n_parts']) * 1e9:.1f} ns)")
    print(f"  reduction task                    {meas['combine'] * 1e3:8.3f} ms")
    print(f"  client + scheduler per task       {meas['t_task_cpu'] * 1e3:8.3f} ms CPU "
          f"({meas['t_task'] * 1e3:.3f} ms wall per task in a batch of 400)")
    print(f"  M-step on the client              {t_mstep * 1e3:8.3f} ms")

    n_seq, L, C = a.model_sequences, a.length, a.cores
    N = n_seq * L
    fan = 8
    print(f"\nscaling model: {n_seq} sequences x {L} = {N:.2e} observations "
          f"({N * D * 8 / 2**30:.1f} GiB), machines of {C} cores, one partition per core, "
          f"fan-in {fan}; assumed latency {a.latency * 1e3:.1f} ms, bandwidth "
          f"{a.bandwidth / 1e9:.1f} GB/s")
    print(f"{'machines':>8} {'partitions':>10} {'broadcast':>10} {'E-step':>9} "
          f"{'schedule':>9} {'reduce':>9} {'M-step':>8} {'total':>9} {'speed-up':>9}")
    t_single = t_row * N + t_mstep
    for M in (1, 10, 20, 50, 100):
        P = min(M * C, n_seq)
        t_b = a.latency + M * params_bytes / a.bandwidth
        t_e = int(np.ceil(n_seq / P)) * L * t_row
        n_sums, depth = tree_shape(P, fan)
        t_s = (P + n_sums) * meas["t_task_cpu"]
        t_r = depth * (a.latency + fan * stats_bytes / a.bandwidth + meas["combine"]) \
            + a.latency + stats_bytes / a.bandwidth
        total = t_b + t_e + t_s + t_r + t_mstep
        print(f"{M:8d} {P:10d} {t_b:9.4f}s {t_e:8.3f}s {t_s:8.3f}s {t_r:8.4f}s "
              f"{t_mstep:7.4f}s {total:8.3f}s {t_single / total:8.1f}x")
    print(f"(speed-up against one core in process: {t_single:.1f} s per iteration)")


if __name__ == "__main__":
    main()
