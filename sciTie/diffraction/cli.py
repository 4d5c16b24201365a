"""``scitie fit pbso4`` and ``scitie fit diffraction-synthetic``."""
from __future__ import annotations

import argparse
import time
import warnings
from typing import Sequence

from sciTie.core import RunSummary

from ._refine import STAGES, JointRefinement
from .data import load_synthetic, pbso4_refinement, synthetic_refinement

__all__ = ["run", "summarize"]


def _parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"scitie fit {name}", add_help=False)
    p.add_argument("--help-model", action="help", help="show the model options")
    p.add_argument("--quick", action="store_true", help="small budget (demo)")
    p.add_argument("--seed", type=int, default=0, help="noise seed of the synthetic set")
    p.add_argument("--data", default=None, help="folder of the pbso4 files")
    return p


def _save(ax, path) -> None:
    """Write the figure of ``ax`` to ``path`` (RunSummary hands a temporary file name)."""
    import matplotlib.pyplot as plt

    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(ref: JointRefinement, dataset: str, seconds: float) -> RunSummary:
    """A :class:`RunSummary` of a finished refinement (metrics in percent)."""
    st = ref.statistics_
    metrics = {"rwp": {k: v["wrp"] for k, v in st.items() if k != "total"},
               "rp": {k: v["rp"] for k, v in st.items() if k != "total"},
               "bragg_r": {k: v["bragg_r"] for k, v in st.items() if k != "total"},
               "rwp_total": st["total"]["wrp"], "gof": st["total"]["gof"],
               "chi2": st["total"]["chi2"], "n_free": ref.result_.nvarys,
               "n_points": st["total"]["npoints"]}
    figures = {f"rietveld_{p.name}": (lambda path, n=p.name: _save(ref.plot(n), path))
               for p in ref.patterns}
    return RunSummary(dataset=dataset, model="sciTie.diffraction.JointRefinement",
                      seconds=seconds, metrics=metrics, parameters=ref.parameters(),
                      report=ref.report() + "\n\n" + ref.to_cif(),
                      datasets={"rietveld": ref.to_xarray()}, figures=figures)


def run(name: str, argv: Sequence[str]) -> RunSummary:
    """Fit dataset ``name`` ('pbso4' or 'diffraction-synthetic') with staged refinement.

    ``seconds`` is the time of the refinement itself (all stages), not of loading.
    """
    p = _parser(name)
    a = p.parse_args(list(argv))
    if name == "pbso4":
        ref = pbso4_refinement(a.data)
    elif name == "diffraction-synthetic":
        ref = synthetic_refinement(load_synthetic(a.seed))
    else:
        raise ValueError(f"name must be 'pbso4' or 'diffraction-synthetic', got {name!r}")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # intermediate stages may have singular covariances (e.g. a width term at 0)
        warnings.simplefilter("ignore", RuntimeWarning)
        ref.refine_stages(STAGES[:-1], max_nfev=20 if a.quick else None)
    ref.set_refined(structure=["cell", "xyz", "uiso"],
                    patterns={"*": ["scale", "bkg", "zero", "cell_correction", "profile",
                                      "late_profile"]})
    ref.fit(max_nfev=30 if a.quick else None)
    seconds = time.perf_counter() - t0
    return summarize(ref, name, seconds)
