"""Calibration of the PINN's learnt coefficients: is the truth inside the stated uncertainty as
often as it should be?

For each inverse problem, noise level and seed: synthetic observations of the reference
solution (exact for convection and the travelling wave, ETDRK4 for Allen-Cahn), a PINN that
learns the coefficient (or the period) with its Laplace standard error and the profile check
(``uncertainty_check="profile"``: the profile standard error and the warnings it raises),
and the exact standard error from the true solution's sensitivity (analytic, or central
differences of the reference solver). Printed per problem and noise level: the mean estimate,
the mean stated, profile and exact standard errors, the share of runs with
``|estimate - truth| < 1`` and ``< 2`` stated standard errors (about 68 % and 95 % for a
calibrated uncertainty), and how many runs warned.

Examples
--------
    python benchmarks/pinn_inverse.py --seeds 8
    python benchmarks/pinn_inverse.py --problems convection --noise 0.02 0.1 --seeds 4
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

from sciTie.pinn import PDEProblem, PeriodicPINN, allen_cahn, convection
from sciTie.pinn.data import synthetic_observations


def convection_case(noise: float, seed: int) -> dict:
    beta = 5.0
    p = convection(beta)
    X, y = synthetic_observations(p, 200, noise, random_state=seed, n_times=21)
    m = PeriodicPINN(p, hidden=(16, 16), n_collocation=512, n_initial=128, adam_steps=300,
                     learning_rate=5e-3, lm_steps=30, ic_weight=10.0, learn={"beta": 4.0},
                     random_state=seed, eval_grid=(32, 11), n_threads=1, noise_std=noise,
                     n_windows=1).fit(X, y)
    exact = noise / np.sqrt(np.sum(X[:, 1] ** 2 * np.cos(X[:, 0] - beta * X[:, 1]) ** 2))
    return dict(truth=beta, model=m, exact_se=exact)


def period_case(noise: float, seed: int) -> dict:
    P, c = 1.3, 0.5
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(0, 4, 200), rng.uniform(0, 1, 200)])
    s = X[:, 0] - c * X[:, 1]
    y = np.sin(2 * np.pi * s / P) + noise * rng.standard_normal(200)
    prob = PDEProblem(lambda f: f.u_t + f.parameters["c"] * f.u_x, lambda x: 0 * x,
                      (0.0, 4.0), (0.0, 1.0), name="wave", parameters={"c": c},
                      periods={"x": 1.2})
    m = PeriodicPINN(prob, hidden=(16, 16), trainable_frequency=True, ic_weight=0.0,
                     n_collocation=512, n_initial=16, adam_steps=400, learning_rate=5e-3,
                     lm_steps=30, random_state=seed, eval_grid=(32, 11), n_threads=1,
                     n_modes=1, noise_std=noise).fit(X, y)
    k = 2 * np.pi / P
    J = np.column_stack([np.sin(k * s), np.cos(k * s), -2 * np.pi / P ** 2 * s * np.cos(k * s)])
    exact = noise * np.sqrt(np.linalg.inv(J.T @ J)[2, 2])
    return dict(truth=P, model=m, exact_se=exact)


def allen_cahn_case(noise: float, seed: int) -> dict:
    eps, gamma = 0.01, 2.0
    p = allen_cahn(eps=eps, gamma=gamma, n_points=256)
    X, y = synthetic_observations(p, 300, noise, random_state=seed)
    h = 1e-5
    ys = [synthetic_observations(allen_cahn(eps=e, gamma=gamma, n_points=256), 300, 0.0,
                                 random_state=seed)[1] for e in (eps + h, eps - h)]
    exact = noise / np.linalg.norm((ys[0] - ys[1]) / (2 * h))
    m = PeriodicPINN(p, hidden=(32, 32), n_modes=6, n_collocation=1536, n_initial=256,
                     adam_steps=500, learning_rate=3e-3, lm_steps=80, ic_weight=10.0,
                     learn={"eps": 1.5 * eps}, random_state=seed, eval_grid=(64, 11),
                     n_threads=1, noise_std=noise).fit(X, y)
    return dict(truth=eps, model=m, exact_se=exact)


CASES = {"convection": convection_case, "period": period_case, "allen-cahn": allen_cahn_case}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--noise", nargs="+", type=float, default=[0.01, 0.05, 0.1])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json", default=None, help="append one JSON line per run")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.problems:
        for noise in args.noise:
            for seed in range(args.seeds):
                t0 = time.process_time()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    case = CASES[name](noise, seed)
                m = case["model"]
                u = m.uncertainty_
                check = next(iter(m.uncertainty_check_["quantities"].values()))
                warned = [str(w.message) for w in caught
                          if w.category.__name__ == "IdentifiabilityWarning"]
                row = {"problem": name, "noise": noise, "seed": seed, "truth": case["truth"],
                       "estimate": float(u.values[0]), "stderr": float(u.stderr[0]),
                       "exact_stderr": float(case["exact_se"]),
                       "z": float((u.values[0] - case["truth"]) / u.stderr[0]),
                       # the profile standard error of the quantity itself (the check works on
                       # its free parameter: for a logarithm, the ratio carries over)
                       "profile_stderr": float(u.stderr[0] * check["ratio"]),
                       "profile_ratio": float(check["ratio"]),
                       "misfit_ratio": float(m.uncertainty_check_.get("misfit_ratio",
                                                                      float("nan"))),
                       "warned": len(warned) > 0, "warnings": warned,
                       "cpu_seconds": time.process_time() - t0}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    with open(args.json, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
    print()
    print(f"{'problem':<12} {'noise':>6} {'runs':>5} {'mean est.':>11} {'stated se':>10} "
          f"{'profile se':>10} {'exact se':>10} {'|z|<1':>6} {'|z|<2':>6} {'warned':>6} "
          f"{'CPU s':>6}")
    for name in args.problems:
        for noise in args.noise:
            sel = [r for r in rows if r["problem"] == name and r["noise"] == noise]
            z = np.abs([r["z"] for r in sel])
            print(f"{name:<12} {noise:6.3f} {len(sel):5d} "
                  f"{np.mean([r['estimate'] for r in sel]):11.5g} "
                  f"{np.mean([r['stderr'] for r in sel]):10.2e} "
                  f"{np.median([r['profile_stderr'] for r in sel]):10.2e} "
                  f"{np.mean([r['exact_stderr'] for r in sel]):10.2e} "
                  f"{int(np.sum(z < 1)):>4d}/{len(sel)} {int(np.sum(z < 2)):>4d}/{len(sel)} "
                  f"{sum(r['warned'] for r in sel):>4d}/{len(sel)} "
                  f"{np.mean([r['cpu_seconds'] for r in sel]):6.0f}")
    z = np.abs([r["z"] for r in rows])
    print(f"all runs: |z| < 1 in {np.mean(z < 1):.0%} (68 % expected), |z| < 2 in "
          f"{np.mean(z < 2):.0%} (95 % expected)")


if __name__ == "__main__":
    main()
