"""Measurements shared by the Dask benchmarks (hmm_dask.py, hmm_dask_covariates.py,
rietveld_series_dask.py).

Imported by those scripts when they run as ``python benchmarks/<script>.py`` (the script's
folder is then first on ``sys.path``).
"""
from __future__ import annotations

import contextlib
import time

import psutil
from hmmlearn.base import ConvergenceMonitor


class TimingMonitor(ConvergenceMonitor):
    """hmmlearn's monitor that also records when each iteration ended."""

    def __init__(self, tol, n_iter, verbose):
        super().__init__(tol, n_iter, verbose)
        self.stamps = [time.perf_counter()]

    def report(self, log_prob):
        super().report(log_prob)
        self.stamps.append(time.perf_counter())


def tree_shape(n: int, fan: int) -> tuple[int, int]:
    """Number of reduction tasks and depth of the tree that sums ``n`` parts."""
    tasks = depth = 0
    while n > 1:
        n = -(-n // fan)
        tasks += n
        depth += 1
    return tasks, depth


def process_cpu() -> float:
    """User + system CPU seconds of this process (run on each worker by ``client.run``)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system


def workers_cpu(client) -> float:
    """CPU seconds of all worker processes so far (0 without a client)."""
    return 0.0 if client is None else float(sum(client.run(process_cpu).values()))


def bytes_sent(client) -> int:
    """Bytes the workers have sent to each other so far."""
    return int(sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total
                              ).values()))


def _noop(x):
    return x


def task_overhead(client, n: int = 400) -> tuple[float, float]:
    """Wall seconds per no-op task, and CPU seconds of this process (client + scheduler)
    per task: the serial cost of scheduling, measured after 100 warm-up tasks."""
    import distributed

    distributed.wait(client.map(_noop, range(100), pure=False))
    c0, t0 = process_cpu(), time.perf_counter()
    distributed.wait(client.map(_noop, range(100, 100 + n), pure=False))
    return (time.perf_counter() - t0) / n, (process_cpu() - c0) / n


@contextlib.contextmanager
def local_client(n_workers: int, profiler: bool = True):
    """A client of a fresh LocalCluster of ``n_workers`` one-thread worker processes."""
    import dask
    import distributed

    with dask.config.set({"distributed.worker.profile.enabled": profiler}), \
            distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def compute_seconds(record: dict) -> float:
    """Seconds a task of ``distributed.get_task_stream`` spent computing."""
    return sum(s["stop"] - s["start"] for s in record["startstops"] if s["action"] == "compute")
