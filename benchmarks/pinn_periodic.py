"""Periodic PINN benchmark: the recipes on convection, Allen-Cahn, Taylor-Green, 2-D Allen-Cahn.

Prints one row per (problem, mode): relative L2 error against the reference, periodicity
violation max|u(a) - u(a + L)|, training CPU seconds (this process, one thread: the honest
measure on a shared machine) and wall seconds; plus the time the reference solver needs
(analytic for convection and Taylor-Green, ETDRK4 for Allen-Cahn) for scale. ``--baseline``
adds the plain set-up the issue started from (one 4x64 tanh network over the whole interval,
hard periodic x features, Adam only) with the same number of optimiser steps.

Goals (issue 15, one run each on 2 CPU cores): convection beta = 50 <= 1e-3 within 10 minutes,
Allen-Cahn <= 1e-3 within 20 minutes, Taylor-Green <= 1e-2 within 20 minutes.

Examples
--------
    python benchmarks/pinn_periodic.py --budget 0.1            # a short smoke run
    python benchmarks/pinn_periodic.py --problems convection --modes hard --beta 50
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from sciTie.pinn import (PeriodicPINN, allen_cahn, allen_cahn_2d, convection,
                         recommended_settings, taylor_green)
from sciTie.pinn.data import load_allen_cahn

PROBLEMS = ["convection", "allen-cahn", "taylor-green", "allen-cahn-2d"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=1.0, help="multiplier on training steps")
    p.add_argument("--problems", nargs="+", default=PROBLEMS[:3], choices=PROBLEMS)
    p.add_argument("--modes", nargs="+", default=["hard", "soft", "shared"],
                   choices=["hard", "soft", "shared"])
    p.add_argument("--beta", type=float, default=50.0, help="convection speed (default 50)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--baseline", action="store_true", help="also run the plain baseline")
    p.add_argument("--bc-weight", type=float, default=None,
                   help="override the periodicity penalty weight of soft/shared modes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="append one JSON line per row to this file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = []
    for name in args.problems:
        t0 = time.perf_counter()
        if name == "convection":
            problem = convection(args.beta)
            problem.reference(np.linspace(0, 6.3, 256), np.linspace(0, 1, 101))
        elif name == "allen-cahn":
            load_allen_cahn()
            problem = allen_cahn()
        elif name == "taylor-green":
            problem = taylor_green()
            x = np.linspace(0, 6.3, 64)
            problem.reference(x, x, np.linspace(0, 1, 11))
        else:
            problem = allen_cahn_2d()
            x = np.linspace(-1, 1, 64)
            problem.reference(x, x, np.linspace(0, 1, 11))
        ref_seconds = time.perf_counter() - t0
        configs = [(m, recommended_settings(name, mode=m)) for m in args.modes]
        if args.bc_weight is not None:
            for label, kw in configs:
                kw["bc_weight"] = args.bc_weight
        if args.baseline:
            s = recommended_settings(name)
            steps = s["n_windows"] * (s["adam_steps"] + s.get("lbfgs_steps", 0)
                                      + s.get("lm_steps", 0))
            configs.append(("hard-baseline", dict(mode="hard", hidden=(64, 64, 64, 64),
                                                  n_modes=s.get("n_modes", 1),
                                                  adam_steps=steps, lbfgs_steps=0,
                                                  lm_steps=0)))
        for label, kw in configs:
            model = PeriodicPINN(problem, random_state=args.seed, budget=args.budget,
                                 n_threads=args.threads, **kw)
            model.fit()
            ds = model.result_.data
            row = {"problem": name + (f" beta={args.beta:g}" if name == "convection" else ""),
                   "mode": label, "rel_l2": ds.attrs["rel_l2"],
                   "periodicity": ds.attrs["periodicity_violation"],
                   "seconds": model.fit_seconds_, "cpu_seconds": model.fit_cpu_seconds_,
                   "reference_seconds": ref_seconds, "budget": args.budget,
                   "threads": args.threads, "bc_weight": model.settings_["bc_weight"],
                   "steps": model.n_adam_steps_ + model.n_lbfgs_steps_ + model.n_lm_steps_}
            rows.append(row)
            print(f"{row['problem']:<22} {label:<14} rel L2 {row['rel_l2']:.3e}  "
                  f"periodicity {row['periodicity']:.1e}  {row['cpu_seconds']:7.1f} CPU s  "
                  f"{row['seconds']:7.1f} wall s", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print()
    print(f"{'problem':<22} {'mode':<14} {'rel L2':>10} {'periodicity':>12} {'CPU s':>8} "
          f"{'wall s':>8} {'ref s':>7} {'ratio':>8}")
    for r in rows:
        print(f"{r['problem']:<22} {r['mode']:<14} {r['rel_l2']:10.3e} {r['periodicity']:12.1e} "
              f"{r['cpu_seconds']:8.1f} {r['seconds']:8.1f} {r['reference_seconds']:7.2f} "
              f"{r['cpu_seconds'] / max(r['reference_seconds'], 1e-9):8.0f}x")
    print(f"(budget x{args.budget:g}, {args.threads} thread(s); ratio = PINN training CPU time / "
          "reference solver time)")


if __name__ == "__main__":
    main()
