"""Series refinement: sequential and parametric timings and how they grow with N patterns.

Synthetic series (:func:`sciTie.diffraction.data.make_synthetic_series`, rutile-type TiO2,
Cu Kα, 2001 points per pattern, 5 parameters per pattern, 7 law coefficients) of growing
length N:

* sequential: N fits pattern by pattern (each from the previous result), and the same fits
  from one start in parallel processes (``n_jobs``);
* parametric, three ways to the same minimum (from the same start): the block-arrow
  Levenberg-Marquardt with the Schur complement on the shared block, the same iterations
  with the dense normal equations of size 7 + 5N, and scipy's least_squares on the core's
  dense Jacobian (``fit_least_squares``: (N·2001) x (7 + 5N) numbers), the last only while
  it fits in memory.

Peak memory is measured with tracemalloc (numpy reports its buffers to it). Every row prints
the ratios dense / Schur.

The fits spend their time evaluating the patterns, which costs the same for both solvers;
the last table times one damped step alone (Schur complement against the dense normal
equations) on the normal-equation blocks of N patterns with p_l local parameters each and
p_s shared ones (random, well conditioned), up to N = 3000, where the dense system of
p_s + N·p_l unknowns no longer fits comfortably in memory.

Usage: ``python benchmarks/rietveld_series.py [--sizes 5 10 20 40 80 160] [--solve-sizes
100 300 1000 3000]`` (``--quick``: sizes 5 10 20, solve sizes 100 300 1000). On a machine
whose cores are shared, set ``OPENBLAS_NUM_THREADS=1`` (see rietveld_pbso4.py).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np

from sciTie import fit_least_squares
from sciTie.diffraction import ParametricRefinement, SequentialRefinement, specs_from_dataset
from sciTie.diffraction._blockarrow import dense_step, pattern_blocks, schur_step
from sciTie.diffraction.data import make_synthetic_series, synthetic_series_recipe

LAWS = {"TiO2.a": "a0 + a1*T + a2*T**2", "TiO2.c": "c0 + c1*T + c2*T**2", "TiO2.O.x": "ox"}


def _measure(fn, memory: bool = True):
    """(result, seconds, peak MiB). With ``memory``, tracemalloc runs during ``fn``: it
    slows every allocation (several times for the pattern evaluations of a whole fit), so
    whole fits are timed without it and memory is measured on the linear algebra."""
    if memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20 if memory else float("nan")
    if memory:
        tracemalloc.stop()
    return out, seconds, peak


def _scipy_dense(par: ParametricRefinement):
    """The same problem through the core's dense least squares (scipy, full Jacobian), from
    the start the block solver had."""
    g = par.group_.copy()
    g.set_free(par.x0_)
    terms = par.dense_terms()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_least_squares(g, terms, method="trf", ftol=1e-9, xtol=1e-9, gtol=1e-9)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 20, 40, 80, 160])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--sequential-max", type=int, default=40,
                    help="largest N for the sequential timings")
    ap.add_argument("--scipy-max", type=int, default=40,
                    help="largest N for scipy on the dense Jacobian")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solve-sizes", type=int, nargs="+", default=[100, 300, 1000, 3000])
    ap.add_argument("--dense-max", type=int, default=3000,
                    help="largest N for the dense step in the linear-algebra table")
    a = ap.parse_args()
    sizes = [5, 10, 20] if a.quick else a.sizes
    solve_sizes = [100, 300, 1000] if a.quick else a.solve_sizes
    recipe = synthetic_series_recipe()
    print("sequential (per pattern from the previous result) and from one start in "
          f"{a.n_jobs} processes")
    print(f"{'N':>5} {'previous s':>11} {'s/pattern':>10} {'parallel s':>11} {'ratio':>6}")
    for n in [s for s in sizes if s <= a.sequential_max]:
        specs = specs_from_dataset(make_synthetic_series(n, seed=a.seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            seq = SequentialRefinement(specs, recipe).fit()
            t_prev = time.perf_counter() - t0
            t0 = time.perf_counter()
            SequentialRefinement(specs, recipe, mode="start", start=seq.fits_[0]["values"],
                                 n_jobs=a.n_jobs).fit()
            t_par = time.perf_counter() - t0
        print(f"{n:>5} {t_prev:>11.1f} {t_prev / n:>10.2f} {t_par:>11.1f} "
              f"{t_prev / t_par:>6.2f}", flush=True)

    print("\nparametric from the same start (templates, scale/background by linear least "
          "squares): one iteration = blocks of all patterns + one solve")
    print(f"{'N':>5} {'free':>6} {'schur s':>8} {'it':>3} {'dense s':>8} "
          f"{'dense/schur':>11} {'solve ms schur':>14} {'dense':>7} {'scipy s':>8} {'MiB':>7} "
          f"{'chi2 schur':>12} {'dense':>12} {'scipy':>12}")
    for n in sizes:
        specs = specs_from_dataset(make_synthetic_series(n, seed=a.seed))
        row = {}
        for solver in ("schur", "dense"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                par, sec, mib = _measure(lambda s=solver: ParametricRefinement(
                    specs, recipe, laws=LAWS, start="initialize", solver=s).fit(),
                    memory=False)
            # time of the linear algebra alone (blocks fixed), the part that scales
            blocks = par._final_blocks
            D_s = np.ones(len(par._shared))
            D_l = [np.ones(b.A_ll.shape[0]) for b in blocks]
            t0 = time.perf_counter()
            for _ in range(5):
                par._step(blocks, 1e-3, D_s, D_l)
            solve_ms = (time.perf_counter() - t0) / 5 * 1e3
            row[solver] = (par, sec, mib, solve_ms)
        ps, ts, ms, ss = row["schur"]
        pd, td, md, sd = row["dense"]
        scipy_txt, chi_sp = f"{'-':>8} {'-':>7}", f"{'-':>12}"
        if n <= a.scipy_max:
            res, tsp, msp = _measure(lambda: _scipy_dense(ps))
            scipy_txt, chi_sp = f"{tsp:>8.1f} {msp:>7.0f}", f"{res.chisqr:>12.2f}"
        print(f"{n:>5} {ps.result_.nvarys:>6} {ts:>8.1f} {len(ps.history_) - 1:>3} "
              f"{td:>8.1f} {td / ts:>11.2f} {ss:>14.2f} {sd:>7.2f} {scipy_txt} "
              f"{ps.result_.chisqr:>12.2f} {pd.result_.chisqr:>12.2f} {chi_sp}", flush=True)
    print("\n(scipy: the core's fit_least_squares (trf) on the dense Jacobian from the same "
          "start; '-': not run, the dense Jacobian grows as N² — 160 patterns would be "
          "320k x 807 numbers, 2 GB)")
    _solve_table(solve_sizes, a.dense_max)


def _random_blocks(n: int, p_s: int, p_l: int, rng) -> list:
    blocks = []
    for _ in range(n):
        J = rng.normal(size=(4 * (p_s + p_l), p_s + p_l))
        blocks.append(pattern_blocks(J[:, :p_s], J[:, p_s:], rng.normal(size=len(J))))
    return blocks


def _solve_table(sizes, dense_max: int) -> None:
    print("\none damped step alone on the blocks of N patterns (p_s shared, p_l per pattern): "
          "Schur complement vs dense normal equations")
    print(f"{'N':>5} {'p_s':>4} {'p_l':>4} {'unknowns':>9} {'schur ms':>9} {'MiB':>7} "
          f"{'dense ms':>9} {'MiB':>7} {'time dense/schur':>17} {'max |diff|':>11}")
    rng = np.random.default_rng(0)
    for p_s, p_l in ((7, 5), (60, 25)):        # the synthetic series; CuCr2O4-like
        for n in sizes:
            blocks = _random_blocks(n, p_s, p_l, rng)
            D_s, D_l = np.ones(p_s), [np.ones(p_l)] * n
            (ds, dl), ts, ms = _measure(lambda: schur_step(blocks, 1e-3, D_s, D_l))
            dense = "-"
            if n <= dense_max and (p_s + n * p_l) ** 2 * 8 < 2 ** 30:
                (dd, ddl), td, md = _measure(lambda: dense_step(blocks, 1e-3, D_s, D_l))
                diff = max(np.abs(ds - dd).max(), max(np.abs(x - y).max()
                                                      for x, y in zip(dl, ddl)))
                dense = (f"{td * 1e3:>9.1f} {md:>7.0f} {td / ts:>17.1f} {diff:>11.1e}")
            else:
                dense = f"{'-':>9} {'-':>7} {'-':>17} {'-':>11}"
            print(f"{n:>5} {p_s:>4} {p_l:>4} {p_s + n * p_l:>9} {ts * 1e3:>9.1f} {ms:>7.1f} "
                  f"{dense}", flush=True)


if __name__ == "__main__":
    main()
