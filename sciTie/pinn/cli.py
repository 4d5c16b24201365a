"""``scitie fit convection`` and ``scitie fit allen-cahn``."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..core import RunSummary
from ._plotting import plot_result
from ._problems import allen_cahn, convection
from ._recipes import recommended_settings
from ._model import PeriodicPINN

__all__ = ["run", "build_parser"]


def build_parser(name: str) -> argparse.ArgumentParser:
    """Model options of ``scitie fit NAME`` for the PINN problems.

    Parameters
    ----------
    name : str
        ``"convection"`` or ``"allen-cahn"``.

    Returns
    -------
    argparse.ArgumentParser
    """
    p = argparse.ArgumentParser(prog=f"scitie fit {name}", add_help=False,
                                description="Periodic PINN options")
    p.add_argument("--help-model", action="help", help="show these options and exit")
    if name == "convection":
        p.add_argument("--beta", type=float, default=30.0, help="advection speed (default 30)")
    p.add_argument("--mode", choices=("hard", "soft", "shared"), default="hard",
                   help="how periodicity is imposed (default hard)")
    p.add_argument("--quick", action="store_true", help="small budget (about 20 s)")
    p.add_argument("--budget", type=float, default=None,
                   help="multiplier on training steps (default $SCITIE_PINN_BUDGET or 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for training")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (saved during training)")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    return p


def run(name: str, argv: Sequence[str]) -> RunSummary:
    """Train the periodic PINN on a bundled problem.

    Parameters
    ----------
    name : str
        ``"convection"`` or ``"allen-cahn"``.
    argv : list of str
        Model options (see :func:`build_parser`).

    Returns
    -------
    sciTie.core.RunSummary
        Metrics ``rel_l2``, ``periodicity_violation``, ``periodicity_violation_slope``,
        ``final_loss``; the result Dataset and a figure.
    """
    if name not in ("convection", "allen-cahn"):
        raise ValueError(f"the periodic PINN fits 'convection' or 'allen-cahn'; got {name!r}")
    args, unknown = build_parser(name).parse_known_args(list(argv))
    if unknown:
        raise ValueError(f"unknown option(s) for {name}: {' '.join(unknown)} "
                         f"(see `scitie fit {name} --help-model`)")
    problem = convection(args.beta) if name == "convection" else allen_cahn()
    settings = recommended_settings(name, mode=args.mode, quick=args.quick)
    model = PeriodicPINN(problem, random_state=args.seed, budget=args.budget,
                         n_threads=args.threads, checkpoint=args.checkpoint,
                         progress=args.progress, **settings)
    model.fit(resume=args.resume)
    ds = model.result_.data
    metrics = {
        "rel_l2": ds.attrs["rel_l2"],
        "periodicity_violation": ds.attrs["periodicity_violation"],
        "periodicity_violation_slope": ds.attrs["periodicity_violation_slope"],
        "final_loss": model.history_[-1]["loss_total"] if model.history_ else float("nan"),
        "adam_steps": model.n_adam_steps_ * model.n_windows,
        "lbfgs_steps": model.n_lbfgs_steps_ * model.n_windows,
    }
    parameters = {k: {"value": v, "stderr": None} for k, v in problem.parameters.items()}
    lines = [
        f"Periodic PINN, {name} ({args.mode} periodicity"
        + (f", beta = {args.beta:g}" if name == "convection" else "") + ")",
        f"  networks      : {model.n_windows} time window(s), hidden {tuple(settings['hidden'])}, "
        f"{settings['n_modes'] if 'n_modes' in settings else 1} Fourier mode(s) in x",
        f"  training      : {metrics['adam_steps']} Adam + {metrics['lbfgs_steps']} L-BFGS steps"
        + (" (quick)" if args.quick else ""),
        f"  relative L2   : {metrics['rel_l2']:.3e}   (reference: {problem.reference_source})",
        f"  periodicity   : max|u(a,t)-u(b,t)| = {metrics['periodicity_violation']:.2e}, "
        f"max|u_x(a,t)-u_x(b,t)| = {metrics['periodicity_violation_slope']:.2e}",
        f"  final loss    : {metrics['final_loss']:.3e}",
    ]
    key = f"pinn_{name.replace('-', '_')}"
    return RunSummary(dataset=name, model=f"PeriodicPINN({args.mode})",
                      seconds=model.fit_seconds_, metrics=metrics, parameters=parameters,
                      report="\n".join(lines), datasets={key: ds},
                      figures={key: lambda path, _ds=ds: plot_result(_ds, path, overwrite=True)})
