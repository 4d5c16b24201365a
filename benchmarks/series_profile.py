"""Where the CPU time of a ``scitie`` command goes: a profile summary by kind of work.

Runs the command line in this process under :mod:`cProfile` with a CPU-time clock
(:func:`time.process_time`, so other processes on a shared machine do not count) and prints
a table: start-up (imports), reading the data, setting up each fit (reflection lists,
windows), the pattern model (reflection physics with the structure factors, then drawing
the peaks and their Jacobian columns in the compiled kernel), the least-squares driver's
own work (Jacobian assembly through the tie matrix, the normal equations and the steps),
the covariance, the tie tests, and what follows the fits (tables, reports, output files).

Rows are nested (indented rows are part of the row above); the ``tie test`` row overlaps
the others (it is the refits of every pattern with the tie switched). cProfile itself slows
Python-level calls, so the total is larger than the command's own CPU time (compare
``benchmarks/series_vs_gsasii.py``); the shares are what matters.

Usage: ``python benchmarks/series_profile.py [--save FILE.prof] -- fit cucr2o4-seq --mode
sequential`` (default: that command); ``--load FILE.prof`` summarises a saved profile (of
another checkout: the "before" of a change). Needs ``SCITIE_DATA_DIR`` (the data folder holding
``cucr2o4_seq/``) or the dataset cache.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from contextlib import redirect_stdout

#: (label, depth, [(file suffix, function name)] whose cumulative CPU times the row sums[,
#: those it subtracts: the model's own calls inside a driver's row, optionally only the
#: calls made from a third item, the caller's file suffix])
ROWS = [
    ("whole command (from importing sciTie)", 0, [("series_profile.py", "_command")]),
    ("imports (start-up and lazy)", 1, [("<frozen importlib._bootstrap>", "_find_and_load")]),
    ("reading the data", 1, [("diffraction/data.py", "load_cucr2o4_seq")]),
    ("the sequential fits", 1, [("diffraction/_series.py", "fit")]),
    ("building each pattern's model (reflection lists)", 2,
     [("diffraction/_series.py", "build_refinement")]),
    ("freezing peak windows", 2, [("diffraction/_pattern.py", "refresh_windows")]),
    ("least squares (driver + model)", 2, [("core/leastsq.py", "fit_least_squares")]),
    ("pattern model: values and Jacobian", 3, [("diffraction/_pattern.py", "evaluate")]),
    ("reflection physics (q, F², strain, widths)", 4, [("diffraction/_rows.py", "rows")]),
    ("structure factors", 5, [("diffraction/_crystal.py", "structure_factor2"),
                              ("diffraction/_adp.py", "phase_structure_factors")]),
    ("peak drawing (items, kernel, far field)", 4,
     [("diffraction/_render.py", "render_pattern")]),
    ("compiled profile kernel", 5, [("diffraction/_kernels.py", "render_items"),
                                    ("diffraction/_kernels.py", "interpolate_add")]),
    ("Jacobian through the tie matrix (core)", 3, [("core/leastsq.py", "jacobian")],
     [("diffraction/_refine.py", "jacobian")]),
    ("normal equations and steps (LM loop)", 3,
     [("core/marquardt.py", "levenberg_marquardt")],
     [("core/leastsq.py", "jacobian", "core/marquardt.py"),
      ("core/leastsq.py", "residual", "core/marquardt.py")]),
    ("covariance (SVD of J)", 3, [("core/statistics.py", "covariance_from_jacobian")]),
    ("statistics and summary per pattern", 2, [("diffraction/_series.py", "_summary")]),
    ("tie tests (refits, overlaps the rows above)", 2,
     [("diffraction/_series.py", "_tie_test")]),
    ("series table (Dataset of all fits)", 2, [("diffraction/_series.py", "series_dataset")]),
    ("tie transition, report lines (after the fits)", 1,
     [("diffraction/_series.py", "tie_transition"), ("diffraction/_series.py",
                                                      "sequence_entries")]),
]


def _cumulative(stats: pstats.Stats, keys) -> float:
    """Cumulative CPU time of the functions ``keys`` ((file suffix, name[, caller's file
    suffix]): with a caller, only the time of the calls made from that file)."""
    total = 0.0
    for (file, _line, name), (_cc, _nc, _tt, ct, callers) in stats.stats.items():
        for suffix, fn, *caller in keys:
            if not (file.endswith(suffix) and name == fn):
                continue
            if not caller:
                total += ct
                continue
            total += sum(c[3] for (cfile, _l, _n), c in callers.items()
                         if cfile.endswith(caller[0]))
    return total


def _calls(stats: pstats.Stats, keys) -> int:
    return sum(nc for (file, _line, name), (_cc, nc, _tt, _ct, _c) in stats.stats.items()
               if any(file.endswith(suffix) and name == fn for suffix, fn in keys))


def summary(stats: pstats.Stats) -> str:
    """The table of :data:`ROWS` (seconds of CPU, share of the whole, calls)."""
    whole = _cumulative(stats, ROWS[0][2]) or 1.0
    lines = [f"{'where':<58} {'CPU s':>7} {'share':>6} {'calls':>7}"]
    for label, depth, keys, *minus in ROWS:
        sec = _cumulative(stats, keys) - sum(_cumulative(stats, m) for m in minus)
        lines.append(f"{'  ' * depth + label:<58} {sec:>7.2f} {100 * sec / whole:>5.1f}% "
                     f"{_calls(stats, keys):>7d}")
    return "\n".join(lines)


def _command(argv: list[str]) -> int:
    """Import the command line and run it (the import is part of the profile)."""
    from sciTie.cli import main as cli_main

    return cli_main(argv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--save", help="also write the raw profile (pstats) here")
    ap.add_argument("--load", help="summarise a profile written with --save instead of "
                    "running the command (a profile of another checkout, for before/after)")
    ap.add_argument("--top", type=int, default=0, help="also print the N functions with the "
                    "most own CPU time")
    ap.add_argument("command", nargs="*", default=["fit", "cucr2o4-seq", "--mode",
                                                   "sequential"])
    a = ap.parse_args()
    if a.load:
        stats = pstats.Stats(a.load)
        print(f"profile {a.load}")
    else:
        prof = cProfile.Profile(time.process_time)
        out = io.StringIO()
        t0 = time.process_time()
        with redirect_stdout(out):
            prof.runcall(_command, list(a.command))
        cpu = time.process_time() - t0
        if a.save:
            prof.dump_stats(a.save)
        stats = pstats.Stats(prof)
        print(f"scitie {' '.join(a.command)}: {cpu:.1f} s CPU under cProfile (this process, "
              "after the interpreter started)")
    print(summary(stats))
    if a.top:
        buf = io.StringIO()
        stats.stream = buf
        stats.sort_stats("tottime").print_stats(a.top)
        print(buf.getvalue())


if __name__ == "__main__":
    sys.exit(main())
