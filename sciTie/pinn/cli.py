"""``scitie fit`` for the PINN problems: convection, allen-cahn, taylor-green, allen-cahn-2d.

Forward problems train on the PDE alone; ``--learn NAME`` turns a problem into an inverse
problem: synthetic observations of the reference solution (``--n-obs`` points, Gaussian noise
``--noise``) and the named coefficient (or ``period_x``) learnt with its uncertainty.
"""
from __future__ import annotations

import argparse
import math
from typing import Any, Callable, Sequence

from ..core import RunSummary
from ..errors import ValidationError
from ._model import PeriodicPINN
from ._plotting import plot_result
from ._problems import PDEProblem, allen_cahn, allen_cahn_2d, convection, taylor_green
from ._recipes import recommended_settings
from .data import synthetic_observations

__all__ = ["run", "build_parser", "PROBLEMS"]


def _convection(args: argparse.Namespace) -> PDEProblem:
    return convection(args.beta)


def _allen_cahn(args: argparse.Namespace) -> PDEProblem:
    return allen_cahn(args.eps, args.gamma)


def _taylor_green(args: argparse.Namespace) -> PDEProblem:
    return taylor_green(args.nu)


def _allen_cahn_2d(args: argparse.Namespace) -> PDEProblem:
    return allen_cahn_2d(args.eps, args.gamma)


# name -> (problem factory, its own options (flag, default, help), one-line description)
PROBLEMS: dict[str, tuple[Callable[[argparse.Namespace], PDEProblem],
                          tuple[tuple[str, float, str], ...], str]] = {
    "convection": (_convection, (("--beta", 30.0, "advection speed (default 30)"),),
                   "u_t + beta u_x = 0"),
    "allen-cahn": (_allen_cahn, (("--eps", 1e-4, "diffusion coefficient (default 1e-4)"),
                                 ("--gamma", 5.0, "reaction coefficient (default 5)")),
                   "u_t - eps u_xx + gamma (u^3 - u) = 0"),
    "taylor-green": (_taylor_green, (("--nu", 0.1, "kinematic viscosity (default 0.1)"),),
                     "Taylor-Green vortex, incompressible Navier-Stokes on [0, 2 pi]^2"),
    "allen-cahn-2d": (_allen_cahn_2d, (("--eps", 0.01, "diffusion coefficient (default 0.01)"),
                                       ("--gamma", 5.0, "reaction coefficient (default 5)")),
                      "2-D Allen-Cahn on [-1, 1]^2"),
}


def build_parser(name: str) -> argparse.ArgumentParser:
    """Model options of ``scitie fit NAME`` for the PINN problems.

    Parameters
    ----------
    name : str
        One of :data:`PROBLEMS`.

    Returns
    -------
    argparse.ArgumentParser
    """
    if name not in PROBLEMS:
        raise ValidationError(f"the periodic PINN fits {', '.join(PROBLEMS)}; got {name!r}")
    _, own, _ = PROBLEMS[name]
    p = argparse.ArgumentParser(prog=f"scitie fit {name}", add_help=False,
                                description="Periodic PINN options")
    p.add_argument("--help-model", action="help", help="show these options and exit")
    for flag, default, text in own:
        p.add_argument(flag, type=float, default=default, help=text)
    p.add_argument("--mode", choices=("hard", "soft", "shared"), default="hard",
                   help="how periodicity is imposed (default hard)")
    p.add_argument("--quick", action="store_true", help="small budget (a demo, seconds)")
    p.add_argument("--budget", type=float, default=None,
                   help="multiplier on training steps (default: the budget setting, 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for training")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (saved during training)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--overwrite-checkpoint", action="store_true",
                   help="allow --checkpoint to replace a file that is not a checkpoint of "
                        "this model")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    inv = p.add_argument_group("inverse problem (synthetic observations of the reference)")
    inv.add_argument("--learn", nargs="+", default=None, metavar="NAME",
                     help="coefficients to learn (e.g. beta, eps) or period_x")
    inv.add_argument("--start", nargs="+", type=float, default=None, metavar="VALUE",
                     help="starting values (default: 0.8 times the truth)")
    inv.add_argument("--noise", type=float, default=0.05,
                     help="observation noise standard deviation (default 0.05)")
    inv.add_argument("--n-obs", type=int, default=200, help="number of observations (200)")
    return p


def _inverse_problem(problem: PDEProblem, learn: list[str],
                     start: list[float] | None) -> tuple[PDEProblem, dict[str, float], bool]:
    """The problem seen by the learner (a guessed period), the coefficients to learn with
    their starting values, and whether the period is learnt."""
    if start is not None and len(start) != len(learn):
        raise ValidationError(f"--start needs one value per --learn name ({len(learn)}); got "
                              f"{len(start)}")
    starts: dict[str, float] = {}
    period = False
    guessed = dict(problem.periods)
    for i, name in enumerate(learn):
        truth = problem.parameters.get(name)
        if name.startswith("period_"):
            c = name[len("period_"):]
            if c not in problem.periods:
                raise ValidationError(f"--learn {name}: {c!r} is not a periodic coordinate of "
                                      f"{problem.name} ({', '.join(problem.periodic)})")
            period = True
            guessed[c] = start[i] if start else 0.8 * problem.periods[c]
            continue
        if truth is None:
            raise ValidationError(f"--learn {name}: not a coefficient of {problem.name} "
                                  f"({', '.join(problem.parameters)}) nor period_<coordinate>")
        starts[name] = start[i] if start else 0.8 * float(truth)
    learner = problem
    if period:  # the same physics, declared with the guessed period(s)
        from dataclasses import replace

        learner = replace(problem, periods=guessed, reference=problem.reference)
    return learner, starts, period


def run(name: str, argv: Sequence[str]) -> RunSummary:
    """Train the periodic PINN on a bundled problem (forward, or inverse with ``--learn``).

    Parameters
    ----------
    name : str
        One of :data:`PROBLEMS`.
    argv : list of str
        Model options (see :func:`build_parser`).

    Returns
    -------
    sciTie.core.RunSummary
        Metrics ``rel_l2``, ``periodicity_violation``, ``periodicity_violation_slope``,
        ``final_loss`` (and the learnt values with standard errors); the result Dataset (fields,
        parameters, provenance) and a figure.
    """
    parser = build_parser(name)
    args, unknown = parser.parse_known_args(list(argv))
    if unknown:
        raise ValidationError(f"unknown option(s) for {name}: {' '.join(unknown)} "
                              f"(see `scitie fit {name} --help-model`)")
    factory, own, _ = PROBLEMS[name]
    problem = factory(args)
    inverse = bool(args.learn)
    settings = recommended_settings(name, mode=args.mode, quick=args.quick, inverse=inverse)
    fit_args: dict[str, Any] = {}
    learner, starts, learn_period = problem, {}, False
    if inverse:
        if not (math.isfinite(args.noise) and args.noise >= 0):
            raise ValidationError(f"--noise must be a non-negative number; got {args.noise}")
        learner, starts, learn_period = _inverse_problem(problem, args.learn, args.start)
        X, y = synthetic_observations(problem, args.n_obs, args.noise, random_state=args.seed)
        fit_args = dict(X=X, y=y)
        if starts:
            settings["learn"] = starts
        if learn_period:
            settings["trainable_frequency"] = True
            if args.mode != "hard":
                raise ValidationError("--learn period_* needs --mode hard")
        if args.noise > 0:
            settings["noise_std"] = args.noise
    model = PeriodicPINN(learner, random_state=args.seed, budget=args.budget,
                         n_threads=args.threads, checkpoint=args.checkpoint,
                         progress=args.progress, **settings)
    model.fit(resume=args.resume, overwrite=args.overwrite_checkpoint, **fit_args)
    res = model.result_
    stats = res.statistics
    metrics: dict[str, Any] = {k: stats[k] for k in ("rel_l2", "periodicity_violation",
                                                      "periodicity_violation_slope",
                                                      "final_loss") if k in stats}
    metrics.update({k: v for k, v in stats.items() if k.startswith("rel_l2_")})
    metrics["fit_cpu_seconds"] = model.fit_cpu_seconds_
    metrics["adam_steps"] = model.n_adam_steps_ * model.n_windows
    metrics["lbfgs_steps"] = model.n_lbfgs_steps_ * model.n_windows
    metrics["lm_steps"] = model.n_lm_steps_ * model.n_windows
    truth = {**problem.parameters, **{f"period_{c}": v for c, v in problem.periods.items()}}
    if model.uncertainty_ is not None:
        for n, v, s in zip(model.uncertainty_.names, model.uncertainty_.values,
                           model.uncertainty_.stderr):
            metrics[f"learnt_{n}"] = float(v)
            metrics[f"learnt_{n}_stderr"] = float(s)
            metrics[f"true_{n}"] = float(truth[n])
    parameters = res.parameters()
    lines = [model.report()]
    if model.uncertainty_ is not None:
        for n, v, s in zip(model.uncertainty_.names, model.uncertainty_.values,
                           model.uncertainty_.stderr):
            lines.append(f"  learnt {n} = {v:.6g} +/- {s:.2g} (truth {truth[n]:.6g}, "
                         f"{(v - truth[n]) / s:+.2f} standard errors; {args.n_obs} "
                         f"observations, noise {args.noise:g})")
    lines.append(f"  relative L2 {metrics.get('rel_l2', float('nan')):.3e} against "
                 f"{problem.reference_source}; periodicity violation "
                 f"{metrics['periodicity_violation']:.1e}")
    key = f"pinn_{name.replace('-', '_')}"
    ds = model.to_xarray()
    data = res.data
    return RunSummary(dataset=name, model=f"PeriodicPINN({args.mode})",
                      seconds=model.fit_seconds_, metrics=metrics, parameters=parameters,
                      report="\n".join(lines), datasets={key: ds},
                      figures={key: lambda path, _ds=data: plot_result(_ds, path,
                                                                       overwrite=True)})
