"""Time and memory of a sequential refinement against the length of the series.

Issue 20 asks that a sequential refinement stay linear in the number of patterns (up to
1000 and beyond): no cost per pattern that grows with the patterns before it. For each
length N a fresh process refines a synthetic series of N patterns
(:func:`sciTie.diffraction.data.make_synthetic_series`: rutile-type TiO2, Cu Kα, 2001 points,
the cell following laws in temperature) pattern by pattern, each from the previous results
(``SequentialRefinement``, ``mode="previous"``), and reports its CPU time and peak resident
memory (the operating system's accounting of the child), per pattern, and the peak memory
above that of a one-pattern run per pattern (what each pattern's result keeps).

Flat ``CPU s / pattern`` and ``MiB / pattern`` columns mean linear time and memory; a
quadratic part would show as a column that grows with N.

Usage: ``python benchmarks/series_length.py [--sizes 50 100 200]`` (several minutes of CPU
on two cores; ``--sizes 10 20 40`` for a quick look).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def child(n: int) -> None:
    """Refine a synthetic series of ``n`` patterns in this process (the measured run)."""
    import warnings

    from sciTie.diffraction import SequentialRefinement, specs_from_dataset
    from sciTie.diffraction.data import make_synthetic_series, synthetic_series_recipe

    specs = specs_from_dataset(make_synthetic_series(n, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seq = SequentialRefinement(specs, synthetic_series_recipe()).fit()
    wrp = seq.series_["wrp"].values
    print(f"{wrp.min():.2f} {wrp.max():.2f} {int(seq.series_['nfev'].values.sum())}")


def measure(n: int) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode().split() if proc.stdout else []
    if status != 0 or len(out) != 3:
        raise RuntimeError(f"the child run of {n} patterns failed (status {status})")
    return {"n": n, "cpu": usage.ru_utime + usage.ru_stime, "wall": time.perf_counter() - t0,
            "peak": usage.ru_maxrss / 1024, "wrp": (float(out[0]), float(out[1])),
            "nfev": int(out[2])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        child(a.child)
        return
    base = measure(1)
    print(f"one pattern: {base['cpu']:.1f} s CPU (start-up included), peak "
          f"{base['peak']:.0f} MiB, load {os.getloadavg()[0]:.1f}")
    print(f"{'N':>5} {'CPU s':>7} {'CPU s/pattern':>14} {'nfev/pattern':>13} "
          f"{'peak MiB':>9} {'MiB/pattern':>12} {'wRp %':>12} {'load':>5}")
    for n in a.sizes:
        r = measure(n)
        per = (r["cpu"] - base["cpu"]) / (n - 1)
        mem = (r["peak"] - base["peak"]) / (n - 1)
        print(f"{n:>5} {r['cpu']:>7.1f} {per:>14.3f} {r['nfev'] / n:>13.1f} "
              f"{r['peak']:>9.0f} {mem:>12.3f} {r['wrp'][0]:>5.2f}-{r['wrp'][1]:<6.2f} "
              f"{os.getloadavg()[0]:>5.1f}", flush=True)
    print("(per pattern: above the one-pattern run, so start-up and the first pattern's "
          "staged refinement are left out)")


if __name__ == "__main__":
    main()
