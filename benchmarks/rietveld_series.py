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

Usage: ``python benchmarks/rietveld_series.py [--sizes 5 10 20 40 80 160] [--repeat 1]``
(``--quick``: sizes 5 10 20).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np

from sciTie import ResidualTerm, fit_least_squares
from sciTie.diffraction import ParametricRefinement, SequentialRefinement, specs_from_dataset
from sciTie.diffraction.data import make_synthetic_series, synthetic_series_recipe

LAWS = {"TiO2.a": "a0 + a1*T + a2*T**2", "TiO2.c": "c0 + c1*T + c2*T**2", "TiO2.O.x": "ox"}


def _measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak / 2 ** 20


def _scipy_dense(par: ParametricRefinement):
    """The same problem through the core's dense least squares (scipy, full Jacobian), from
    the start the block solver had."""
    g = par.group_.copy()
    g.set_free(par.x0_)
    terms = []
    for k, (pat, ii) in enumerate(zip(par.patterns, par._idx)):
        def residual(vals, pat=pat, ii=ii):
            y, _ = pat.evaluate(vals.array[ii], grad=False)
            return (pat.obs - y) / pat.sigma

        def jacobian(vals, pat=pat, ii=ii):
            _, J = pat.evaluate(vals.array[ii], grad=True)
            out = np.zeros((pat.x.size, g.n_slots))
            out[:, ii] = -J / pat.sigma[:, None]
            return out
        terms.append(ResidualTerm(f"t{k}", residual, jacobian))
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
    a = ap.parse_args()
    sizes = [5, 10, 20] if a.quick else a.sizes
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
    print(f"{'N':>5} {'free':>6} {'schur s':>8} {'it':>3} {'MiB':>7} {'dense s':>8} {'MiB':>7} "
          f"{'dense/schur':>11} {'solve ms schur':>14} {'dense':>7} {'scipy s':>8} {'MiB':>7} "
          f"{'chi2 schur':>12} {'dense':>12} {'scipy':>12}")
    for n in sizes:
        specs = specs_from_dataset(make_synthetic_series(n, seed=a.seed))
        row = {}
        for solver in ("schur", "dense"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                par, sec, mib = _measure(lambda s=solver: ParametricRefinement(
                    specs, recipe, laws=LAWS, start="initialize", solver=s).fit())
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
        scipy_txt = f"{'-':>8} {'-':>7} {'-':>12}"
        if n <= a.scipy_max:
            res, tsp, msp = _measure(lambda: _scipy_dense(ps))
            scipy_txt = f"{tsp:>8.1f} {msp:>7.0f} {res.chisqr:>12.2f}"
        print(f"{n:>5} {ps.result_.nvarys:>6} {ts:>8.1f} {len(ps.history_) - 1:>3} {ms:>7.0f} "
              f"{td:>8.1f} {md:>7.0f} {td / ts:>11.2f} {ss:>14.2f} {sd:>7.1f} {scipy_txt} "
              f"{ps.result_.chisqr:>12.2f} {pd.result_.chisqr:>12.2f}", flush=True)
    print("\n(scipy: the core's fit_least_squares (trf) on the dense Jacobian from the same "
          "start; '-': not run, the dense Jacobian grows as N² — 160 patterns would be "
          "320k x 807 numbers, 2 GB)")


if __name__ == "__main__":
    main()
