"""The ``rietveld`` recipe kind (bundled datasets: ``pbso4``, ``diffraction-synthetic``)."""
from __future__ import annotations

from ..core.summary import RunSummary
from ..recipes import Field, Option, Recipe, RecipeKind, Table

__all__ = ["KIND"]

SCHEMA = Table({
    "data": Table({
        "dataset": Field("str", "bundled or external dataset", required=True,
                         choices=("pbso4", "diffraction-synthetic")),
        "path": Field("path", "folder holding the pbso4 files (default: the data_dir setting)"),
        "seed": Field("int", "noise seed of the synthetic patterns", default=0, minimum=0),
    }),
    "fit": Table({
        "quick": Field("bool", "small evaluation budget", default=False),
    }),
})

PATTERNS = ("xray", "neutron")


def outputs(recipe: Recipe) -> list[str]:
    return [f"{recipe.name}.nc"] + [f"{recipe.name}_{p}.png" for p in PATTERNS]


def run(recipe: Recipe) -> RunSummary:
    from .cli import run as run_dataset

    d = recipe.settings["data"]
    argv = ["--seed", str(d["seed"])]
    if d["path"]:
        argv += ["--data", str(recipe.resolve(d["path"], "data.path"))]
    if recipe.settings["fit"]["quick"]:
        argv.append("--quick")
    summary = run_dataset(d["dataset"], argv)
    summary.datasets = {recipe.name: ds for ds in summary.datasets.values()}
    summary.figures = {f"{recipe.name}_{key.rsplit('_', 1)[-1]}": draw
                       for key, draw in summary.figures.items()}
    return summary


KIND = RecipeKind(name="rietveld", schema=SCHEMA, run=run, outputs=outputs,
                  description="joint Rietveld refinement (sciTie.diffraction)",
                  options=(Option(("--dataset",), "data.dataset",
                                  help="pbso4 or diffraction-synthetic"),))
