"""sciTie's periodic PINN and DeepXDE side by side, at equal CPU time, on the same problems.

For each problem (convection, Allen-Cahn, Taylor-Green, and JAXPI's Kuramoto-Sivashinsky and
Gray-Scott cases) sciTie trains with its recipe (:func:`sciTie.pinn.recommended_settings`);
DeepXDE then gets the same CPU time (``time.process_time`` of this process, one torch thread
for both), set up as its documentation and examples show: a fully connected tanh network
(4 x 64, Glorot normal), ``TimePDE`` with the initial condition and ``PeriodicBC`` on the value
and first derivative of every output along every periodic coordinate (``--deepxde-periodic
bc``) or a ``cos``/``sin`` feature transform of the periodic coordinates (``features``), Adam
(rate 1e-3) for half the budget, then L-BFGS. Printed for each: relative L2 against the same
reference on the same grid, periodicity violation max |u(a) - u(a + L)| and the CPU and wall
seconds.

``--speed`` adds training steps per second of both libraries on the same network (4 x 64) and
the same number of collocation points, plain Adam steps on convection, and sciTie's
Gauss-Newton iteration cost, with a profile of what one sciTie step spends its time on.

Needs ``pip install -e ".[bench]"`` (DeepXDE) and ``DDE_BACKEND=pytorch``.

Examples
--------
    DDE_BACKEND=pytorch python benchmarks/pinn_vs_deepxde.py --problems convection
    DDE_BACKEND=pytorch python benchmarks/pinn_vs_deepxde.py --problems kuramoto-sivashinsky
    DDE_BACKEND=pytorch python benchmarks/pinn_vs_deepxde.py --speed --problems
    # the two sides of a long run as parallel processes, DeepXDE at a fixed CPU budget
    python benchmarks/pinn_vs_deepxde.py --problems allen-cahn --libraries scitie
    python benchmarks/pinn_vs_deepxde.py --problems allen-cahn --libraries deepxde \
        --deepxde-periodic bc --cpu-seconds 957
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

from sciTie.pinn import (PeriodicPINN, allen_cahn, convection, gray_scott,
                         kuramoto_sivashinsky, recommended_settings, taylor_green)

os.environ.setdefault("DDE_BACKEND", "pytorch")


PROBLEMS = ("convection", "allen-cahn", "taylor-green", "kuramoto-sivashinsky", "gray-scott")
#: evaluation grid of each problem (space, then time), sciTie and DeepXDE alike
SIZES = {"convection": (256, 101), "allen-cahn": (512, 201), "taylor-green": (64, 64, 11),
         "kuramoto-sivashinsky": (256, 101), "gray-scott": (64, 64, 21)}


def _problem(name: str, beta: float):
    return {"convection": lambda: convection(beta), "allen-cahn": allen_cahn,
            "taylor-green": taylor_green, "kuramoto-sivashinsky": kuramoto_sivashinsky,
            "gray-scott": gray_scott}[name]()


def _grid(problem, sizes):
    axes = [np.linspace(*problem.domain(c), n) for c, n in zip(problem.coordinates, sizes)]
    ref = problem.reference_values(*axes)
    grids = np.meshgrid(*axes, indexing="ij")  # (space..., t)
    pts = np.stack([g.ravel() for g in grids], axis=1)
    return axes, ref, pts


def _rel_l2(problem, pred: dict, ref: dict, axes) -> float:
    """Relative L2 of the scored outputs (mean removed for gauge outputs), as sciTie does."""
    err = den = 0.0
    for o in problem.scored:
        p, r = pred[o], ref[o]
        e = p - r
        if o in problem.gauge:
            e = e - e.mean(axis=tuple(range(1, e.ndim)), keepdims=True)
            r = r - r.mean(axis=tuple(range(1, r.ndim)), keepdims=True)
        err += float(np.sum(e ** 2))
        den += float(np.sum(r ** 2))
    return math.sqrt(err / den)


def run_scitie(problem, name: str, sizes, budget: float) -> dict:
    kw = recommended_settings(name)
    kw["eval_grid"] = tuple(sizes)
    m = PeriodicPINN(problem, n_threads=1, budget=budget, **kw).fit()
    ds = m.result_.data
    return {"library": "sciTie", "setup": "recipe (hard periodic embedding, time marching, "
            "Adam + Levenberg-Marquardt)", "rel_l2": ds.attrs["rel_l2"],
            "periodicity_violation": ds.attrs["periodicity_violation"],
            "cpu_seconds": m.fit_cpu_seconds_, "wall_seconds": m.fit_seconds_}


def run_deepxde(problem, name: str, sizes, cpu_budget: float, periodic: str,
                seed: int) -> dict:
    import deepxde as dde

    dde.config.set_random_seed(seed)
    dde.config.set_default_float("float64")
    space = problem.space
    k = len(problem.outputs)
    lo = [problem.domain(c)[0] for c in space]
    hi = [problem.domain(c)[1] for c in space]
    geom = dde.geometry.Interval(lo[0], hi[0]) if len(space) == 1 else \
        dde.geometry.Rectangle(lo, hi)
    geomtime = dde.geometry.GeometryXTime(geom, dde.geometry.TimeDomain(*problem.domain_t))
    coords = problem.coordinates

    class _F:  # minimal Fields for the problem's own residual
        def __init__(self, x, y):
            self.x_in, self.y = x, y
            self.parameters = problem.parameters

        def __getattr__(self, name):
            if name in coords:
                return self.x_in[:, coords.index(name)]
            base, _, letters = name.partition("_")
            i = problem.outputs.index(base)
            if not letters:
                return self.y[:, i]
            if len(letters) == 1:
                return dde.grad.jacobian(self.y, self.x_in, i=i,
                                         j=coords.index(letters))[:, 0]
            d = dde.grad.hessian(self.y, self.x_in, component=i, i=coords.index(letters[0]),
                                 j=coords.index(letters[1]))
            for c in letters[2:]:  # higher orders (u_xxxx): derivatives of the derivative
                d = dde.grad.jacobian(d, self.x_in, i=0, j=coords.index(c))
            return d[:, 0]

    def pde(x, y):
        r = problem.residual(_F(x, y))
        r = r if isinstance(r, (tuple, list)) else [r]
        return [ri[:, None] for ri in r]

    ic_names = list(problem.initial_values(*[np.array([v]) for v in lo]))
    bcs = []
    def initial_of(o):  # one argument only: DeepXDE counts them
        def func(X):
            return problem.initial_values(*[X[:, j] for j in range(len(space))])[o][:, None]
        return func

    for o in ic_names:
        bcs.append(dde.icbc.IC(geomtime, initial_of(o), lambda _, on_initial: on_initial,
                               component=problem.outputs.index(o)))
    def on_faces(ci):
        def where(X, on_boundary):
            return on_boundary and (np.isclose(X[ci], lo[ci]) or np.isclose(X[ci], hi[ci]))
        return where

    if periodic == "bc":
        for ci, c in enumerate(space):
            for i in range(k):
                for order in (0, 1):
                    bcs.append(dde.icbc.PeriodicBC(geomtime, ci, on_faces(ci),
                                                   derivative_order=order, component=i))
    n_dom = recommended_settings(name)["n_collocation"]
    data = dde.data.TimePDE(geomtime, pde, bcs, num_domain=n_dom, num_boundary=400,
                            num_initial=400)
    net = dde.nn.FNN([len(coords)] + [64] * 4 + [k], "tanh", "Glorot normal")
    if periodic == "features":
        periods = [hi[j] - lo[j] for j in range(len(space))]

        def transform(X):
            cols = []
            for j in range(len(space)):
                a = 2 * math.pi * (X[:, j:j + 1] - lo[j]) / periods[j]
                cols += [torch.cos(a), torch.sin(a)]
            return torch.cat(cols + [X[:, -1:]], dim=1)

        net = dde.nn.FNN([2 * len(space) + 1] + [64] * 4 + [k], "tanh", "Glorot normal")
        net.apply_feature_transform(transform)
    model = dde.Model(data, net)

    class Budget(dde.callbacks.Callback):
        def __init__(self, until: float) -> None:
            super().__init__()
            self.until = until

        def on_epoch_end(self) -> None:
            if time.process_time() >= self.until:
                self.model.stop_training = True

    start, wall = time.process_time(), time.perf_counter()
    model.compile("adam", lr=1e-3)
    model.train(iterations=10 ** 7, display_every=10 ** 6, verbose=0,
                callbacks=[Budget(start + 0.5 * cpu_budget)])
    adam_iters = model.train_state.step
    dde.optimizers.LBFGS_options["iter_per_step"] = 20  # check the CPU budget often
    dde.optimizers.LBFGS_options["fun_per_step"] = 25
    model.compile("L-BFGS")
    model.train(display_every=10 ** 6, verbose=0, callbacks=[Budget(start + cpu_budget)])
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    axes, ref, pts = _grid(problem, sizes)
    out = model.predict(pts)
    shape = tuple(len(a) for a in axes)
    order = (len(shape) - 1, *range(len(shape) - 1))  # (space..., t) -> (t, space...)
    pred = {o: np.transpose(out[:, i].reshape(shape), order)
            for i, o in enumerate(problem.outputs)}
    # periodicity violation: values across one period of each periodic coordinate
    t = np.linspace(*problem.domain_t, 51)
    viol = 0.0
    for ci, c in enumerate(space):
        others = [np.linspace(*problem.domain(o), 33) if o != c else np.array([lo[ci]])
                  for o in space]
        g = np.meshgrid(*others, t, indexing="ij")
        p0 = np.stack([x.ravel() for x in g], axis=1)
        p1 = p0.copy()
        p1[:, ci] = hi[ci]
        viol = max(viol, float(np.max(np.abs(model.predict(p1) - model.predict(p0)))))
    return {"library": "DeepXDE", "setup": f"4x64 tanh, {periodic}, Adam ({adam_iters} steps) "
            "then L-BFGS", "rel_l2": _rel_l2(problem, pred, ref, axes),
            "periodicity_violation": viol, "cpu_seconds": cpu, "wall_seconds": wall}


def speed(n_points: int = 2048, steps: int = 200) -> list[dict]:
    """Adam steps per second, same network (4 x 64 tanh) and points, convection."""
    import deepxde as dde

    torch.manual_seed(0)
    dde.config.set_default_float("float64")  # as sciTie: float64 on both sides
    beta = 50.0
    p = convection(beta)
    rows = []
    m = PeriodicPINN(p, hidden=(64, 64, 64, 64), n_collocation=n_points, n_initial=256,
                     adam_steps=steps, resample_every=10 ** 6, eval_grid=(8, 4), n_threads=1,
                     n_windows=1, n_modes=1, lm_steps=0, learning_rate=1e-3)
    m.fit()
    rows.append({"library": "sciTie", "what": "Adam step (hard embedding, 4x64)",
                 "steps_per_second": steps / m.fit_cpu_seconds_})
    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(0, 2 * math.pi),
                                      dde.geometry.TimeDomain(0, 1))

    def pde(x, y):
        return dde.grad.jacobian(y, x, i=0, j=1) + beta * dde.grad.jacobian(y, x, i=0, j=0)

    ic = dde.icbc.IC(geom, lambda X: np.sin(X[:, :1]), lambda _, on_i: on_i)
    data = dde.data.TimePDE(geom, pde, [ic], num_domain=n_points, num_initial=256)
    net = dde.nn.FNN([3] + [64] * 4 + [1], "tanh", "Glorot normal")  # (cos x, sin x, t)
    net.apply_feature_transform(lambda X: torch.cat([torch.cos(X[:, :1]),
                                                     torch.sin(X[:, :1]), X[:, 1:]], 1))
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    start = time.process_time()
    model.train(iterations=steps, display_every=10 ** 6, verbose=0)
    rows.append({"library": "DeepXDE", "what": "Adam step (feature transform, 4x64)",
                 "steps_per_second": steps / (time.process_time() - start)})
    lm = PeriodicPINN(p, hidden=(32, 32), n_collocation=2000, n_initial=256, adam_steps=0,
                      lm_steps=10, eval_grid=(8, 4), n_threads=1, n_windows=1,
                      n_modes=1).fit()
    rows.append({"library": "sciTie", "what": "Levenberg-Marquardt iteration (2x32, 2256 rows)",
                 "steps_per_second": len(lm.history_) / lm.fit_cpu_seconds_})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="*", default=list(PROBLEMS), choices=PROBLEMS)
    ap.add_argument("--beta", type=float, default=50.0)
    ap.add_argument("--deepxde-periodic", nargs="+", default=["bc", "features"],
                    choices=["bc", "features"])
    ap.add_argument("--cpu-seconds", type=float, default=None,
                    help="DeepXDE's CPU budget (default: what sciTie used)")
    ap.add_argument("--libraries", nargs="+", default=["scitie", "deepxde"],
                    choices=["scitie", "deepxde"],
                    help="run only these (DeepXDE alone needs --cpu-seconds); lets the "
                    "sides of a long comparison run as parallel processes")
    ap.add_argument("--speed", action="store_true", help="also measure steps per second")
    ap.add_argument("--budget", type=float, default=1.0,
                    help="multiplier on sciTie's recipe steps (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="append one JSON line per row")
    args = ap.parse_args(argv)
    if "scitie" not in args.libraries and args.cpu_seconds is None:
        ap.error("--libraries deepxde needs --cpu-seconds (no sciTie run to take it from)")
    torch.set_num_threads(1)
    rows = []

    def emit(row):
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(row) + "\n")

    for name in args.problems:
        problem = _problem(name, args.beta)
        sizes = SIZES[name]
        if "scitie" in args.libraries:
            ours = run_scitie(problem, name, sizes, args.budget)
            emit({"problem": name, **ours})
        budget = args.cpu_seconds or ours["cpu_seconds"]
        for variant in args.deepxde_periodic if "deepxde" in args.libraries else ():
            emit({"problem": name, **run_deepxde(problem, name, sizes, budget, variant,
                                                 args.seed)})
    if args.speed:
        for r in speed():
            emit(r)
    print()
    print(f"{'problem':<14} {'library':<8} {'rel L2':>10} {'periodicity':>12} {'CPU s':>8} "
          f"{'wall s':>8}  set-up")
    for r in rows:
        if "problem" in r:
            print(f"{r['problem']:<14} {r['library']:<8} {r['rel_l2']:10.3e} "
                  f"{r['periodicity_violation']:12.1e} {r['cpu_seconds']:8.1f} "
                  f"{r['wall_seconds']:8.1f}  {r['setup']}")
    sp = {r["library"] + ":" + r["what"]: r["steps_per_second"] for r in rows
          if "steps_per_second" in r}
    for k, v in sp.items():
        print(f"{k:<60} {v:8.1f} steps/s")
    a = [v for k, v in sp.items() if k.startswith("sciTie:Adam")]
    b = [v for k, v in sp.items() if k.startswith("DeepXDE:Adam")]
    if a and b:
        print(f"Adam steps per second, sciTie / DeepXDE: {a[0] / b[0]:.2f}")


if __name__ == "__main__":
    main()
