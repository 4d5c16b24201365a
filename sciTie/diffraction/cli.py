"""``scitie fit pbso4``, ``scitie fit diffraction-synthetic`` and ``scitie fit cucr2o4-seq``."""
from __future__ import annotations

import argparse
import time
import warnings
from typing import Sequence

import numpy as np

from sciTie.core import RunSummary
from sciTie.errors import ValidationError

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
    """Fit dataset ``name`` ('pbso4', 'diffraction-synthetic' or 'cucr2o4-seq').

    ``seconds`` is the time of the refinement itself (all stages), not of loading.
    """
    if name == "cucr2o4-seq":
        return run_series(name, argv)
    p = _parser(name)
    a = p.parse_args(list(argv))
    if name == "pbso4":
        ref = pbso4_refinement(a.data)
    elif name == "diffraction-synthetic":
        ref = synthetic_refinement(load_synthetic(a.seed))
    else:
        raise ValidationError(f"name must be 'pbso4', 'diffraction-synthetic' or 'cucr2o4-seq', got {name!r}")
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


def _series_parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"scitie fit {name}", add_help=False,
                                description="Sequential or parametric refinement of the "
                                            "CuCr2O4 + CuO temperature series.")
    p.add_argument("--help-model", action="help", help="show the model options")
    p.add_argument("--mode", choices=("sequential", "parametric"), default="sequential",
                   help="pattern by pattern, or one fit with laws in temperature")
    p.add_argument("--data", default=None, help="folder of the cucr2o4_seq files")
    p.add_argument("--patterns", type=int, default=None,
                   help="use only the first N patterns (in file order)")
    p.add_argument("--range", type=float, nargs=2, default=(4.5, 26.1), metavar=("LO", "HI"),
                   help="2theta fit range in degrees (default 4.5 26.1)")
    p.add_argument("--tie-above", type=float, default=135.0,
                   help="tie CuCr2O4 c = b above this temperature (K); negative: never")
    p.add_argument("--no-tie-test", action="store_true",
                   help="skip the F-test of the b = c tie on every pattern")
    p.add_argument("--n-jobs", type=int, default=1, help="processes for independent fits")
    p.add_argument("--no-uiso", action="store_true",
                   help="do not refine the CuCr2O4 Uiso (needed below about 12 degrees)")
    p.add_argument("--quick", action="store_true",
                   help="3 patterns and 2theta up to 12 degrees (demo)")
    return p


def run_series(name: str, argv: Sequence[str]) -> RunSummary:
    """``scitie fit cucr2o4-seq [--mode sequential|parametric]``: the temperature series.

    The JSON (``--json``) holds ``sequence``: per pattern ``file``, ``temperature`` (K),
    ``rwp`` (%), ``gof`` and ``parameters`` (``CuCr2O4.a``, ``CuO.beta``,
    ``pattern.scale`` ... with value and esd); parametric runs add ``laws``.
    """
    from ._parametric import ParametricRefinement
    from ._series import SequentialRefinement, sequence_entries, specs_from_dataset, \
        tie_transition
    from ._series_plot import plot_series_image, plot_series_parameters, plot_tie_test
    from .data import CUCR2O4_LAWS, cucr2o4_recipe, load_cucr2o4_seq

    a = _series_parser(name).parse_args(list(argv))
    ds = load_cucr2o4_seq(a.data)
    lo, hi = a.range
    npat = a.patterns
    uiso = not a.no_uiso
    if a.quick:
        hi, npat, uiso = min(hi, 12.0), npat or 3, False
    if npat is not None:
        if npat < 1:
            raise ValidationError(f"--patterns must be >= 1, got {npat}")
        ds = ds.isel(pattern=slice(0, npat))
    tie = a.tie_above if a.tie_above >= 0 else None
    recipe = cucr2o4_recipe(ds, fit_range=(lo, hi), tie_above=tie, uiso=uiso)
    specs = specs_from_dataset(ds)
    t0 = time.perf_counter()
    seq = SequentialRefinement(specs, recipe, tie_test=bool(recipe.ties) and not a.no_tie_test,
                               n_jobs=a.n_jobs).fit()
    result, model = seq, "sciTie.diffraction.SequentialRefinement"
    laws_out, law_curves = {}, {}
    if a.mode == "parametric":
        laws = dict(CUCR2O4_LAWS)
        par = ParametricRefinement(specs, recipe, laws=laws, start=seq).fit()
        result, model = par, "sciTie.diffraction.ParametricRefinement"
        laws_out = par.laws_
        law_curves = {k: (lambda T, k=k: par.law_curve(k, T)) for k in laws}
    seconds = time.perf_counter() - t0
    S = result.series_
    seq_entries = sequence_entries(S)
    metrics = {"rwp": {e["label"]: e["rwp"] for e in seq_entries},
               "rwp_mean": float(np.mean(S["wrp"].values)),
               "rwp_max": float(np.max(S["wrp"].values)),
               "gof_mean": float(np.mean(S["gof"].values)),
               "chi2": float(np.sum(S["chi2"].values)),
               "n_points": int(np.sum(S["npoints"].values)), "n_patterns": len(specs)}
    if a.mode == "parametric":
        metrics["n_free"] = int(result.result_.nvarys)
        metrics["n_free_sequential"] = int(np.sum(seq.series_["nvarys"].values))
        metrics["chi2_sequential"] = float(np.sum(seq.series_["chi2"].values))
    else:
        metrics["n_free"] = int(np.sum(S["nvarys"].values))
    if "tie" in seq.series_.dims:
        for t in seq.series_["tie"].values:
            metrics[f"tie[{t}]"] = tie_transition(seq.series_, str(t))
    lines = [f"[[{name}: {a.mode} refinement of {len(specs)} patterns, 2theta {lo}-{hi} deg]]",
             f"    {'pattern':<8} {'T (K)':>7} {'wRp %':>7} {'GOF':>6} {'CuCr2O4 a':>14} "
             f"{'b':>14} {'c':>14} {'w(CuO) %':>9}"]
    for e in seq_entries:
        P = e["parameters"]

        def fmt(k):
            if k not in P:
                return "-"
            s = P[k]["stderr"]
            return f"{P[k]['value']:.5f}({s * 1e5:.0f})" if s else f"{P[k]['value']:.5f}"
        wf = e.get("weight_fractions", {}).get("CuO", {}).get("value", float("nan"))
        lines.append(f"    {e['label']:<8} {e['temperature']:>7.1f} {e['rwp']:>7.2f} "
                     f"{e['gof']:>6.3f} {fmt('CuCr2O4.a'):>14} {fmt('CuCr2O4.b'):>14} "
                     f"{fmt('CuCr2O4.c'):>14} {100 * wf:>9.2f}")
    if laws_out:
        lines.append("    laws: " + ", ".join(f"{k} = {v['value']:.6g}({v['stderr']:.2g})"
                                                for k, v in laws_out.items()))
        lines.append(f"    free parameters: parametric {metrics['n_free']}, sequential "
                     f"{metrics['n_free_sequential']}; chi2 {metrics['chi2']:.1f} vs "
                     f"{metrics['chi2_sequential']:.1f}")
    for k, v in metrics.items():
        if k.startswith("tie["):
            lines.append(f"    {k}: F-test rejects the tie up to {v['f_test']['last_significant']} K; "
                         f"|difference| > 3 esd up to {v['difference']['last_significant']} K")
    figures = {
        "series_parameters": lambda path: _save(plot_series_parameters(
            S, ["CuCr2O4.a", "CuCr2O4.b", "CuCr2O4.c", "CuO.a", "CuO.beta"],
            laws=law_curves)[0], path),
        "series_image": lambda path: _save(plot_series_image(S, two_theta=(lo, min(hi, 14.0))),
                                           path),
        "series_difference": lambda path: _save(plot_series_image(
            S, what="difference", two_theta=(lo, min(hi, 14.0))), path),
    }
    if "tie" in seq.series_.dims:
        tname = str(seq.series_["tie"].values[0])
        figures["tie_test"] = lambda path: _save(plot_tie_test(seq.series_, tname)[0], path)
    datasets = {"series": _netcdf_safe(S)}
    if a.mode == "parametric":
        datasets["sequential"] = _netcdf_safe(seq.series_)
    return RunSummary(dataset=name, model=model, seconds=seconds, metrics=metrics,
                      parameters={k: dict(v) for k, v in laws_out.items()},
                      report="\n".join(lines), datasets=datasets, figures=figures,
                      extra={"mode": a.mode, "sequence": seq_entries,
                             **({"laws": laws_out} if laws_out else {})})


def _netcdf_safe(ds):
    """Attributes netCDF can store (numbers and strings)."""
    import json

    out = ds.copy()
    out.attrs = {k: (v if isinstance(v, (int, float, str)) else json.dumps(v, default=str))
                 for k, v in ds.attrs.items()}
    return out
