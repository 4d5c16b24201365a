"""Parametric refinement of a diffraction series: in process vs a Dask LocalCluster, and a
scaling model.

Refines the same synthetic series (``make_synthetic_series``: rutile TiO2 whose cell follows
quadratic laws in T, each pattern with its own scale, background and displacement) from the
same start three ways on this machine: in process, and on a ``LocalCluster`` of 1 and of 2
worker processes (one thread each), for a fixed number of Levenberg-Marquardt iterations.
For each it prints the median wall time per iteration and the CPU time; for the clusters the
bytes sent per iteration (each partition's entries of the free vector and damping diagonals
out; normal-equation sums, Schur pieces and local steps back), the bytes placed once, and the
measured costs the scaling model needs: per-pattern block cost on a worker, reduction-task
cost, client and scheduler time per task, the client's per-pattern bookkeeping and the shared
solve. From those it prints the scaling model for 10^3 and 10^4 patterns on 10 to 100
machines:

    time per iteration = client bookkeeping (free vector split, damping; serial, O(N))
                         + 4 round trips (blocks, Schur, back-substitution, chi2)
                         + scheduling of the iteration's tasks
                         + max partition block cost + tree reductions + shared solve

Network latency and bandwidth of the model machines are assumptions (options), printed with
the table; everything else is measured here. The cluster results are checked against the
in-process fit (largest relative difference of the law coefficients and free parameters).

Usage: ``python benchmarks/rietveld_series_dask.py [--patterns 200] [--iters 4]``
"""
from __future__ import annotations

import argparse
import pickle
import time
import warnings

import numpy as np

from _dask_bench import (bytes_sent, compute_seconds, local_client, process_cpu, task_overhead,
                         tree_shape, workers_cpu)

from sciTie.diffraction import ParametricRefinement, specs_from_dataset
from sciTie.diffraction import _series_dask as sd
from sciTie.diffraction.data import make_synthetic_series, synthetic_series_recipe

LAWS = {"TiO2.a": "a0 + a1*T + a2*T**2", "TiO2.c": "c0 + c1*T + c2*T**2", "TiO2.O.x": "ox"}


class TimedRefinement(ParametricRefinement):
    """Records the CPU seconds of the solver after the patterns are placed (this process,
    and the workers' processes on a cluster): the iterations without the set-up."""

    def fit(self, *, client=None):
        self._t_fit = time.perf_counter()
        return super().fit(client=client)

    def _solve(self, engine):
        if not hasattr(self, "setup_wall_"):   # building the series on the client
            self.setup_wall_ = time.perf_counter() - self._t_fit
        client = getattr(engine, "client", None)
        start = engine.start
        marks = {}

        def timed_start():
            start()
            marks["here"] = time.process_time()
            marks["workers"] = workers_cpu(client)

        engine.start = timed_start
        super()._solve(engine)
        self.solve_cpu_ = time.process_time() - marks["here"]
        self.solve_workers_cpu_ = workers_cpu(client) - marks["workers"]


def refinement(specs, iters):
    # ftol = xtol = gtol = 0: `iters` evaluations of the series (one per accepted step
    # while steps succeed), unless no step lowers chi2
    return TimedRefinement(specs, synthetic_series_recipe(), laws=LAWS, start="initialize",
                           max_nfev=iters + 1, ftol=0.0, xtol=0.0, gtol=0.0)


def fit(specs, iters, client=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return refinement(specs, iters).fit(client=client)


def per_iteration(par) -> float:
    stamps = [h["seconds"] for h in par.history_]
    return float(np.median(np.diff(stamps)))


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))


def nbytes(obj) -> int:
    return len(pickle.dumps(obj, protocol=5))


def _engine(par, n_parts: int):
    """A ClusterEngine's partitions and arguments without a cluster (sizes and costs)."""
    N = len(par.patterns_)
    bounds = np.linspace(0, N, n_parts + 1).round().astype(int)
    parts = [sd.make_partition(par, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    eng = sd.ClusterEngine.__new__(sd.ClusterEngine)
    eng.ref, eng._free_index = par, [p.free_index for p in parts]
    eng.ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    return eng, parts


def wire_sizes(par, n_parts: int) -> dict:
    """Pickled sizes of what one iteration sends and receives (the arguments ClusterEngine
    builds, for ``n_parts`` partitions, at the end of ``par``'s fit)."""
    N = len(par.patterns_)
    eng, parts = _engine(par, n_parts)
    x = par._x
    x_args = eng._x_args(x)
    D_l = [np.ones(len(loc)) for loc in par._local]
    d_args = eng._split(D_l)
    pb = sd._linearize(parts[0], x_args[0][0])
    schur = sd._schur_part(pb, d_args[0][0], 1e-3)
    back = sd._back_part(pb, d_args[0][0], 1e-3, np.zeros(len(par._shared)))
    n0 = len(pb.blocks)
    return {"x": sum(nbytes(a) for a in x_args),   # one operation, all partitions
            "d": sum(nbytes(a) for a in d_args),
            "summary_fixed": nbytes({k: v for k, v in pb.summary.items() if k != "diag_ll"}),
            "diag_pattern": nbytes(pb.summary["diag_ll"]) / n0,
            "back_pattern": nbytes(back) / n0, "schur": nbytes(schur),
            "placed": sum(nbytes(p) for p in parts) / N,
            "blocks_pattern": nbytes(pb.blocks) / n0}


def pattern_costs(par, reps: int = 3) -> dict:
    """CPU seconds in this process: per pattern, the blocks (tie map, Jacobian, normal
    equations) and chi2 as a worker computes them; per pattern, the client's bookkeeping of
    one iteration (free vector split, damping diagonals, step assembly); the shared solve."""
    N = len(par.patterns_)
    eng, parts = _engine(par, 1)
    part = parts[0]
    k = min(4, N)
    sub = sd.make_partition(par, 0, k)
    xs = par._x[sub.free_index]
    sd._linearize(sub, xs)   # windows' grids built outside the timing
    t0 = time.process_time()
    for _ in range(reps):
        sd._linearize(sub, xs)
    t_lin = (time.process_time() - t0) / (reps * k)
    t0 = time.process_time()
    for _ in range(reps):
        sd._chi2_part(sub, xs)
    t_chi2 = (time.process_time() - t0) / (reps * k)
    x = par._x
    D_l = [np.ones(len(loc)) for loc in par._local]
    t0 = time.process_time()
    for _ in range(reps):
        eng._x_args(x)
        eng._split(D_l)
        dx = np.zeros_like(x)
        for cols, d in zip(par._local, D_l):
            dx[cols] = d
            np.maximum(d, d, out=d)
    t_client = (time.process_time() - t0) / (reps * N)
    from scipy.linalg import cho_factor, cho_solve
    A = par._final_blocks[0].A_ss + np.eye(len(par._shared))
    t0 = time.process_time()
    for _ in range(200):
        cho_solve(cho_factor(A), np.ones(len(A)))
    t_solve = (time.process_time() - t0) / 200
    del part
    return {"lin": t_lin, "chi2": t_chi2, "client": t_client, "solve": t_solve}


def cluster_run(n_workers, specs, iters, profiler=True):
    import distributed

    with local_client(n_workers, profiler) as client:
        fit(specs[:3], 1, client)  # warm-up: imports and compiled kernels on the workers
        t_task, t_task_cpu = task_overhead(client)
        sent0, w0, c0 = bytes_sent(client), workers_cpu(client), process_cpu()
        t0 = time.perf_counter()
        with distributed.get_task_stream(client) as stream:
            par = fit(specs, iters, client)
        wall = time.perf_counter() - t0
        client_cpu = process_cpu() - c0
        worker_cpu = workers_cpu(client) - w0
        sent = bytes_sent(client) - sent0

    def tasks(prefix, part=""):
        return [t for t in stream.data if str(t["key"][0]).startswith(prefix)
                and part in str(t["key"][0])]

    n_it = par._njev  # linearisations; one per accepted iteration plus the first
    blocks = tasks("series-blocks-")
    sums = tasks("series-", "-sum")
    solve = [t for t in stream.data if not str(t["key"][0]).startswith(
        ("series-data-", "series-calc-", "series-final-", "series-windows-"))]
    return par, {"wall": wall, "n_parts": par.cluster_["partitions"], "t_task": t_task,
                 "t_task_cpu": t_task_cpu, "worker_cpu": par.solve_workers_cpu_ / n_it,
                 "client_cpu": par.solve_cpu_ / n_it, "fit_cpu": client_cpu + worker_cpu,
                 "tasks_per_iter": len(solve) / n_it,
                 "block_task": float(np.max([compute_seconds(t) for t in blocks])),
                 "combine": float(np.mean([compute_seconds(t) for t in sums])) if sums else 0,
                 "worker_bytes_per_iter": sent / n_it}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patterns", type=int, default=200)
    p.add_argument("--iters", type=int, default=4, help="Levenberg-Marquardt iterations")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--no-profiler", action="store_true",
                   help="switch off the workers' statistical profiler (on in Dask's defaults)")
    p.add_argument("--cores", type=int, default=16, help="cores per model machine")
    p.add_argument("--latency", type=float, default=5e-4, help="assumed network latency [s]")
    p.add_argument("--bandwidth", type=float, default=1e9, help="assumed bandwidth [B/s]")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    ds = make_synthetic_series(a.patterns, seed=a.seed)
    specs = specs_from_dataset(ds)
    t_gen = time.perf_counter() - t0
    fit(specs[:3], 1)  # compiled kernels loaded outside the timing

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    ref = fit(specs, a.iters)
    wall_in = time.perf_counter() - t0
    n_it = ref._njev
    fit_cpu_in = time.process_time() - cpu0
    cpu_in = ref.solve_cpu_ / n_it
    t_in = per_iteration(ref)
    npts = int(np.mean([pat.x.size for pat in ref.patterns]))
    print(f"series: {a.patterns} synthetic patterns of {npts} points (generated in "
          f"{t_gen:.0f} s), {len(ref._shared)} law coefficients shared, "
          f"{int(np.mean([len(x) for x in ref._local]))} parameters per pattern, "
          f"{a.iters} LM iterations from the same start; workers' profiler "
          f"{'off' if a.no_profiler else 'on (Dask default)'}")
    print("wall/iteration: median over iterations; CPU/iteration: the solver's CPU after "
          "the patterns are placed, per linearisation; whole fit: with the set-up (patterns "
          "and joint group built on the client, placement, results)")
    print(f"{'':24s} {'wall/iteration':>15s} {'in-process/this':>16s} {'whole fit':>10s}  "
          "CPU per iteration")
    print(f"{'in process':24s} {t_in:12.2f} s  {1.0:16.2f} {wall_in:8.1f} s  "
          f"{cpu_in:.2f} s (whole fit {fit_cpu_in:.0f} s CPU; building the series "
          f"{ref.setup_wall_:.0f} s, {ref.setup_wall_ / a.patterns * 1e3:.0f} ms per pattern)")
    runs = {}
    for n_workers in (1, 2):
        par, meas = cluster_run(n_workers, specs, a.iters, profiler=not a.no_profiler)
        runs[n_workers] = meas
        t_it = per_iteration(par)
        err = max(rel([v["value"] for v in ref.laws_.values()],
                      [v["value"] for v in par.laws_.values()]), rel(ref._x, par._x))
        label = f"LocalCluster, {n_workers} worker{'s' if n_workers > 1 else ''}"
        print(f"{label:24s} {t_it:12.2f} s  {t_in / t_it:16.2f} {meas['wall']:8.1f} s  "
              f"{meas['worker_cpu']:.2f} s workers + {meas['client_cpu']:.2f} s client/"
              f"scheduler (whole fit {meas['fit_cpu']:.0f} s CPU; {meas['n_parts']} "
              f"partitions, {meas['tasks_per_iter']:.0f} tasks per iteration; max rel. "
              f"difference to in process {err:.1e})")

    meas = runs[2]
    w = wire_sizes(ref, meas["n_parts"])
    N = a.patterns
    P = meas["n_parts"]
    out = 4 * w["x"] + 2 * w["d"] + 8 * P   # x: blocks, chi2 (+ windows, calc at the end)
    back = P * (w["summary_fixed"] + w["schur"] + 16) + N * (w["diag_pattern"]
                                                            + w["back_pattern"])
    print(f"\nper iteration on the wire ({N} patterns in {P} partitions, pickled sizes; one "
          "damping tried):")
    print(f"  out: the partitions' entries of the free vector {w['x'] / 1e3:.1f} kB per "
          f"operation (blocks, chi2), damping diagonals {w['d'] / 1e3:.1f} kB (Schur, "
          f"back-substitution): {out / 1e3:.1f} kB in all")
    print(f"  back: sums {w['summary_fixed']} B + Schur pieces {w['schur']} B per partition, "
          f"diagonals and local steps {w['diag_pattern'] + w['back_pattern']:.0f} B per "
          f"pattern: {back / 1e3:.1f} kB in all")
    print(f"  worker-to-worker, measured {meas['worker_bytes_per_iter'] / 1e3:.1f} kB "
          f"(2 workers); placed once: {w['placed'] / 1e3:.0f} kB per pattern "
          f"({N * w['placed'] / 2**20:.0f} MiB); kept blocks {w['blocks_pattern']:.0f} B "
          "per pattern")

    c = pattern_costs(ref)
    one = runs[1]
    t_pp = one["worker_cpu"] / N
    print("\nmeasured for the model (CPU seconds; this machine is shared):")
    print(f"  per pattern and iteration on a worker {t_pp * 1e3:7.1f} ms (1 worker; 2 workers "
          f"{meas['worker_cpu'] / N * 1e3:.1f} ms; in this process: blocks with the tie map "
          f"{c['lin'] * 1e3:.1f} ms, chi2 {c['chi2'] * 1e3:.1f} ms)")
    print(f"  client per pattern and iteration      {c['client'] * 1e6:7.1f} us (free vector "
          "split, damping diagonals, step assembly)")
    print(f"  client + scheduler per task           {meas['t_task_cpu'] * 1e3:7.2f} ms CPU "
          f"({meas['t_task'] * 1e3:.2f} ms wall per task in a batch of 400)")
    print(f"  reduction task                        {meas['combine'] * 1e3:7.2f} ms")
    print(f"  shared solve ({len(ref._shared)} x {len(ref._shared)})                 "
          f"{c['solve'] * 1e3:7.3f} ms")

    C, fan = a.cores, sd._dask.FAN_IN
    print(f"\nscaling model: machines of {C} cores, one partition per core (at most "
          f"{sd.MAX_PATTERNS_PER_PARTITION} patterns), fan-in {fan}, 4 round trips per "
          f"iteration; assumed latency {a.latency * 1e3:.1f} ms, bandwidth "
          f"{a.bandwidth / 1e9:.1f} GB/s")
    print(f"{'patterns':>8} {'machines':>8} {'parts':>6} {'client':>8} {'network':>8} "
          f"{'schedule':>9} {'blocks':>8} {'reduce':>8} {'solve':>7} {'total':>8} "
          f"{'speed-up':>9}")
    per_out = out / N
    for n_pat in (1000, 10000):
        t_single = n_pat * cpu_in / N   # one core, in process
        for M in (1, 10, 20, 50, 100):
            P = sd.n_partitions(n_pat, M * C)
            t_client = n_pat * c["client"]
            t_net = 4 * a.latency + n_pat * per_out / a.bandwidth
            n_sums, depth = tree_shape(P, fan)
            n_tasks = 6 * P + 3 * n_sums
            t_sched = n_tasks * meas["t_task_cpu"]
            waves = -(-P // (M * C))   # partitions per core
            t_blocks = waves * -(-n_pat // P) * t_pp
            t_red = 3 * depth * (a.latency + fan * w["schur"] / a.bandwidth + meas["combine"])
            total = t_client + t_net + t_sched + t_blocks + t_red + c["solve"]
            print(f"{n_pat:8d} {M:8d} {P:6d} {t_client:7.2f}s {t_net:7.3f}s {t_sched:8.2f}s "
                  f"{t_blocks:7.2f}s {t_red:7.3f}s {c['solve'] * 1e3:5.2f}ms {total:7.2f}s "
                  f"{t_single / total:8.1f}x")
    print(f"(speed-up against one core in process, {cpu_in / N * 1e3:.1f} ms per pattern and "
          "iteration; scheduled tasks = 6 per partition + 3 "
          "trees; blocks = partitions per core x patterns per partition x per-pattern cost)")


if __name__ == "__main__":
    main()
