"""The ``pinn`` recipe kind (bundled problems: ``convection``, ``allen-cahn``)."""
from __future__ import annotations

from ..core.summary import RunSummary
from ..recipes import Field, Option, Recipe, RecipeKind, Table

__all__ = ["KIND"]

SCHEMA = Table({
    "problem": Table({
        "name": Field("str", "the periodic PDE", required=True,
                      choices=("convection", "allen-cahn")),
        "beta": Field("float", "advection speed (convection)", default=30.0),
    }),
    "model": Table({
        "mode": Field("str", "how periodicity is imposed", default="hard",
                      choices=("hard", "soft", "shared")),
    }),
    "fit": Table({
        "quick": Field("bool", "small budget", default=False),
        "budget": Field("float", "multiplier on training steps", minimum=0.0),
        "random_state": Field("int", "seed", default=0, minimum=0),
        "n_threads": Field("int", "CPU threads for training", minimum=1),
        "checkpoint": Field("str", "checkpoint file (saved during training)"),
        "resume": Field("bool", "continue from the checkpoint", default=False),
        "progress": Field("bool", "progress bar", default=False),
    }),
})


def outputs(recipe: Recipe) -> list[str]:
    return [f"{recipe.name}.nc", f"{recipe.name}.png"]


def run(recipe: Recipe) -> RunSummary:
    from .cli import run as run_problem

    p, m, f = (recipe.settings[k] for k in ("problem", "model", "fit"))
    argv = ["--mode", m["mode"], "--seed", str(f["random_state"])]
    if p["name"] == "convection":
        argv += ["--beta", repr(p["beta"])]
    for flag, key in (("--budget", "budget"), ("--threads", "n_threads"),
                      ("--checkpoint", "checkpoint")):
        if f[key] is not None:
            value = f[key] if key != "checkpoint" else recipe.resolve(f[key], "fit.checkpoint",
                                                                      must_exist=False)
            argv += [flag, str(value)]
    argv += [flag for flag, key in (("--quick", "quick"), ("--resume", "resume"),
                                    ("--progress", "progress")) if f[key]]
    summary = run_problem(p["name"], argv)
    summary.datasets = {recipe.name: ds for ds in summary.datasets.values()}
    summary.figures = {recipe.name: draw for draw in summary.figures.values()}
    return summary


KIND = RecipeKind(
    name="pinn", schema=SCHEMA, run=run, outputs=outputs,
    description="periodic physics-informed networks (sciTie.pinn)",
    options=(Option(("--beta",), "problem.beta", type=float, help="advection speed"),
             Option(("--mode",), "model.mode", help="hard, soft or shared"),
             Option(("--budget",), "fit.budget", type=float, help="multiplier on steps"),
             Option(("--threads",), "fit.n_threads", type=int, help="CPU threads"),
             Option(("--checkpoint",), "fit.checkpoint", help="checkpoint file"),
             Option(("--resume",), "fit.resume", action="store_true",
                    help="continue from --checkpoint"),
             Option(("--progress",), "fit.progress", action="store_true",
                    help="show a progress bar")))
