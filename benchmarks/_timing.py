"""Timing helper shared by the in-process benchmarks."""
from __future__ import annotations

import time
from typing import Callable


def best_cpu_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The least CPU time (this process) of ``repeat`` calls of ``fn``: the run least
    disturbed by other work on a shared machine."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)
