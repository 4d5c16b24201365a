"""Where the Allen-Cahn recipe's error comes from: window by window, the reference, capacity.

Four measurements (issue 24; figures in docs/pinn.rst), each one training at a time on one
torch thread, CPU seconds of this process:

``windows``
    The recipe (with ``--set key=value`` overrides) on ``[T0, T1]`` (default the whole
    interval; a later ``T0`` starts from the reference at ``T0``), then for every window the
    relative L2 error of its own network at its first and last time and over the window,
    against the ETDRK4 reference, and its last Levenberg-Marquardt loss.
``reference``
    The ETDRK4 reference against finer grids and steps.
``capacity``
    The recipe's network fitted by Levenberg-Marquardt to the reference itself on one window:
    the floor that no physics training can go below.

Examples
--------
    PYTHONPATH=$PWD python benchmarks/pinn_allen_cahn_windows.py windows
    PYTHONPATH=$PWD python benchmarks/pinn_allen_cahn_windows.py windows --t0 0.75 \\
        --set n_initial=2048
    PYTHONPATH=$PWD python benchmarks/pinn_allen_cahn_windows.py windows \\
        --set "window_budget=(4.0, 2.0)" --set n_initial=2048 --set lm_resample_every=5
    PYTHONPATH=$PWD python benchmarks/pinn_allen_cahn_windows.py reference
    PYTHONPATH=$PWD python benchmarks/pinn_allen_cahn_windows.py capacity --t0 0.95 \\
        --hidden 32 32 --iterations 60
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import time

import numpy as np
import torch
from torch.func import functional_call, jacrev

from sciTie.pinn import PeriodicPINN, PINNNetwork, allen_cahn, recommended_settings

N_X = 512        # evaluation points in x
DT_EVAL = 0.0025  # evaluation time step (window edges of the recipe fall on it)


def _relative(p: np.ndarray, r: np.ndarray) -> float:
    return float(np.linalg.norm(p - r) / np.linalg.norm(r))


def _reference_from_zero(problem, x: np.ndarray, t_end: float) -> np.ndarray:
    """The reference at ``0, DT_EVAL, ..., t_end`` (its times must start at 0)."""
    n = int(round(t_end / DT_EVAL))
    return problem.reference(x, np.linspace(0.0, n * DT_EVAL, n + 1))


def sub_problem(t0: float, t1: float):
    """Allen-Cahn on ``[t0, t1]``, started from the reference at ``t0``."""
    base = allen_cahn()
    if t0 == 0.0 and t1 == 1.0:
        return base

    def initial(x):
        return base.initial(x) if t0 == 0.0 else _reference_from_zero(base, x, t0)[-1]

    def reference(x, t, parameters=None):
        return _reference_from_zero(base, np.asarray(x, float), t[-1])[-len(t):]

    return dataclasses.replace(base, domain_t=(t0, t1), initial=initial, reference=reference)


def run_windows(args: argparse.Namespace) -> None:
    problem = sub_problem(args.t0, args.t1)
    settings = dict(args.set)
    settings.setdefault("n_windows", max(1, int(round(
        (args.t1 - args.t0) * recommended_settings("allen-cahn")["n_windows"]))))
    n_t = int(round((args.t1 - args.t0) / DT_EVAL)) + 1
    model = PeriodicPINN(problem, n_threads=1, progress=False, eval_grid=(N_X, n_t),
                         **settings).fit()
    x = np.linspace(-1.0, 1.0, N_X, endpoint=False)
    t = np.linspace(args.t0, args.t1, n_t)
    ref = problem.reference_values(x, t)["u"]
    edges = np.linspace(args.t0, args.t1, len(model.networks_) + 1)
    print(f"settings {settings}")
    print(" w   t_start  err start  err end    err window  LM loss")
    for w, net in enumerate(model.networks_):
        i0, i1 = (int(round((e - args.t0) / DT_EVAL)) for e in edges[w:w + 2])
        xx, tt = np.meshgrid(x, t[i0:i1 + 1])
        z = torch.as_tensor(np.stack([xx.ravel(), tt.ravel()], 1), dtype=torch.float64)
        with torch.no_grad():
            p = net.forward_points(z)[:, 0].numpy().reshape(xx.shape)
        r = ref[i0:i1 + 1]
        lm = [h["loss_total"] for h in model.history_ if h["window"] == w and h["stage"] == 2]
        print(f"{w:2d}  {edges[w]:7.3f}  {_relative(p[0], r[0]):9.2e}  "
              f"{_relative(p[-1], r[-1]):9.2e}  {_relative(p, r):10.2e}  "
              f"{lm[-1] if lm else float('nan'):8.2e}")
    print(f"relative L2 {model.result_.statistics['rel_l2']:.3e}, "
          f"fit CPU {model.fit_cpu_seconds_:.0f} s, wall {model.fit_seconds_:.0f} s")


def run_reference(args: argparse.Namespace) -> None:
    x = np.linspace(-1.0, 1.0, N_X, endpoint=False)
    t = np.linspace(0.0, 1.0, 201)
    base = allen_cahn().reference_values(x, t)["u"]
    for n_points, dt in ((2048, 5e-4), (4096, 1e-3), (4096, 2.5e-4), (1024, 1e-3)):
        other = allen_cahn(n_points=n_points, dt=dt).reference_values(x, t)["u"]
        print(f"{n_points} points, dt {dt:g}: relative L2 {_relative(other, base):.2e}, "
              f"max {np.abs(other - base).max():.2e} (against 2048 points, dt 1e-3)")


class _Points(torch.nn.Module):
    """``forward_points`` as ``forward``, for :func:`torch.func.functional_call`."""

    def __init__(self, net: PINNNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.forward_points(z)[:, 0]


def run_capacity(args: argparse.Namespace) -> None:
    rec = recommended_settings("allen-cahn")
    net = PINNNetwork((-1.0, 1.0), (args.t0, args.t1), mode="hard", n_modes=rec["n_modes"],
                      hidden=tuple(args.hidden), activation="tanh", architecture="mlp",
                      trainable_frequency=False,
                      generator=torch.Generator().manual_seed(0)).double()
    module = _Points(net)
    names, shapes = zip(*[(f"net.{n}", p.shape) for n, p in net.named_parameters()])
    theta = torch.cat([p.detach().ravel() for p in net.parameters()])
    sizes = [int(np.prod(s)) for s in shapes]
    x = np.linspace(-1.0, 1.0, N_X, endpoint=False)
    t = np.linspace(args.t0, args.t1, int(round((args.t1 - args.t0) / DT_EVAL)) + 1)
    ref = sub_problem(0.0, args.t1).reference_values(x, np.linspace(0.0, args.t1, int(round(
        args.t1 / DT_EVAL)) + 1))["u"][-len(t):]
    xx, tt = np.meshgrid(x, t)
    z_all = torch.as_tensor(np.stack([xx.ravel(), tt.ravel()], 1))
    pick = torch.as_tensor(np.random.default_rng(0).choice(xx.size, args.points, replace=False))
    z, target = z_all[pick], torch.as_tensor(ref.ravel())[pick]

    def predict(th: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
        weights = {n: c.reshape(s) for n, c, s in zip(names, th.split(sizes), shapes)}
        return functional_call(module, weights, (pts,))

    def one(th: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
        return predict(th, point[None])[0]

    damping, cpu = 1e-3, time.process_time()
    print(f"{theta.numel()} weights, {args.points} points of the window [{args.t0}, {args.t1}]")
    for it in range(1, args.iterations + 1):
        rows = predict(theta, z) - target
        jac = torch.vmap(jacrev(one), in_dims=(None, 0))(theta, z)
        gram, rhs, loss = jac.T @ jac, jac.T @ rows, float(rows @ rows)
        while damping < 1e10:  # Levenberg-Marquardt: shrink the step until the loss falls
            step = -torch.linalg.solve(gram + damping * torch.eye(len(theta),
                                                                   dtype=gram.dtype), rhs)
            if float(((predict(theta + step, z) - target) ** 2).sum()) < loss:
                theta, damping = theta + step, max(damping / 3, 1e-15)
                break
            damping *= 4
        if it % 10 == 0 or it == args.iterations:
            with torch.no_grad():
                p = predict(theta, z_all).numpy().reshape(ref.shape)
            print(f"iteration {it}: relative L2 over the window {_relative(p, ref):.2e}, at "
                  f"its end {_relative(p[-1], ref[-1]):.2e}, CPU {time.process_time() - cpu:.0f} s")


def _setting(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"--set wants key=python_literal; got {text!r}")
    return key, tuple(parsed) if isinstance(parsed, list) else parsed


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("windows", "reference", "capacity"))
    p.add_argument("--t0", type=float, default=0.0, help="start time (windows, capacity)")
    p.add_argument("--t1", type=float, default=1.0, help="end time (windows, capacity)")
    p.add_argument("--set", type=_setting, action="append", default=[],
                   help="a PeriodicPINN setting, e.g. n_initial=2048 (windows)")
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 32], help="(capacity)")
    p.add_argument("--points", type=int, default=2500, help="fitted points (capacity)")
    p.add_argument("--iterations", type=int, default=60, help="(capacity)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    {"windows": run_windows, "reference": run_reference, "capacity": run_capacity}[
        args.what](args)


if __name__ == "__main__":
    main()
