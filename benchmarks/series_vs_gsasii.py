"""The sequential CuCr2O4 + CuO series against GSAS-II: CPU time of the whole command.

Runs ``scitie fit cucr2o4-seq --mode sequential`` (17 patterns of 11-BM, 7-289 K: the full
staged refinement of the first, then each pattern from the previous results, every pattern
refitted with the b = c tie switched for the F-test) as a fresh process ``--runs`` times and
prints each run's CPU time (user + system of the process, the operating system's own
accounting), wall time, peak memory and the load average, then the median CPU time against
GSAS-II's, and the refined series (wRp range, CuCr2O4 cells at three temperatures).

GSAS-II is not run here: it is not installable from the package index (it builds from its
repository with gfortran, meson and ninja). Its figure is quoted, measured on this machine
kind (2 shared cores) when issue 20 was filed, not in the same session as ours: GSAS-II
5.7.9, sequential refinement of the same 17 patterns with the tutorial's three stages,
121.7 s CPU, wRp 12.8-16.5 %.

On a shared machine, wall time depends on the other processes; CPU time much less (it still
grows somewhat with the load: caches and memory bandwidth are shared). Compare medians.

Usage: ``python benchmarks/series_vs_gsasii.py [--runs 3] [--command "python -m sciTie.cli"]``
with ``SCITIE_DATA_DIR`` naming the folder that holds ``cucr2o4_seq/`` (or the dataset in
the cache).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: GSAS-II 5.7.9 on the same 17 patterns (the tutorial's three stages), this machine kind,
#: measured when issue 20 was filed (not re-run here).
GSASII_CPU_S = 121.7
GSASII_WRP = (12.8, 16.5)
TARGET_RATIO = 5.0


def run_once(command: list[str], json_path: Path) -> dict:
    """One run of the command as a child process: its own CPU time, wall time, peak RSS."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(command + ["--json", str(json_path), "--overwrite"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed (status {status}):\n{err[-2000:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall,
            "peak_mib": usage.ru_maxrss / 1024, "load": load}


def series_summary(json_path: Path) -> list[str]:
    """wRp range and three CuCr2O4 cells of the run's JSON summary."""
    seq = json.loads(json_path.read_text())["sequence"]
    wrp = [e["rwp"] for e in seq]
    lines = [f"wRp {min(wrp):.2f}-{max(wrp):.2f} % over {len(seq)} patterns "
             f"(GSAS-II: {GSASII_WRP[0]}-{GSASII_WRP[1]} %)"]
    for e in (seq[0], seq[len(seq) // 2], seq[-1]):
        cells = []
        for n in ("a", "b", "c"):
            p = e["parameters"].get(f"CuCr2O4.{n}")
            if p is not None:
                err = p["stderr"] or 0.0
                cells.append(f"{n} {p['value']:.5f}({err * 1e5:.0f})")
        lines.append(f"  {e['label']} {e['temperature']:6.1f} K: " + ", ".join(cells))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--command", default=f"{shlex.quote(sys.executable)} -m sciTie.cli",
                    help="how to start scitie (default: this Python, -m sciTie.cli)")
    a = ap.parse_args()
    command = shlex.split(a.command) + ["fit", "cucr2o4-seq", "--mode", "sequential"]
    print(f"command: {' '.join(command)}  ({os.cpu_count()} cores)")
    print(f"{'run':>4} {'CPU s':>7} {'wall s':>7} {'peak MiB':>9} {'load':>5}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "series.json"
        for k in range(a.runs):
            r = run_once(command, out)
            runs.append(r)
            print(f"{k + 1:>4} {r['cpu']:>7.1f} {r['wall']:>7.1f} {r['peak_mib']:>9.0f} "
                  f"{r['load']:>5.1f}", flush=True)
        summary = series_summary(out)
    cpu = statistics.median(r["cpu"] for r in runs)
    print(f"\nsciTie median {cpu:.1f} s CPU (min {min(r['cpu'] for r in runs):.1f}, max "
          f"{max(r['cpu'] for r in runs):.1f}); GSAS-II 5.7.9 {GSASII_CPU_S} s CPU (quoted: "
          "measured when issue 20 was filed, not re-run here)")
    print(f"GSAS-II / sciTie = {GSASII_CPU_S / cpu:.2f} (target >= {TARGET_RATIO:g}: at most "
          f"{GSASII_CPU_S / TARGET_RATIO:.1f} s CPU)")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
