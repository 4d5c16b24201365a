"""What a series refinement hands back.

* :func:`series_dataset`: one Dataset of the per-pattern results, the patterns along
  ``temperature`` (K, the dimension coordinate) with their labels and files beside it;
* :func:`series_result`: one :class:`~sciTie.FitResult` over the whole series, the tree of
  every pattern's group (``p000``, ``p001`` ... in series order, as the parametric
  refinement's), its ``data`` the per-pattern arrays on ``temperature`` (so
  ``result_.to_xarray()`` carries the pattern dimension);
* :func:`set_block_uncertainties`: standard errors of a series result computed block by
  block (a dense slot covariance of a long series would not fit in memory).
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.linalg import block_diag

from ..core import FitResult, ParameterGroup
from ..core.report import MIXED_UNITS, UNSTATED_UNITS, shared_units
from ..core.tiemap import SlotKind

__all__ = ["DIM", "series_dataset", "series_result", "set_block_uncertainties",
           "sequence_entries", "pattern_arrays"]

#: The dimension along which the patterns of a series lie (its coordinate is in kelvin).
DIM = "temperature"

#: Variables of :func:`series_dataset` that :meth:`FitResult.to_xarray` holds in its own
#: layout (values and esds on ``param``/``slot``): left out of the result's ``data``.
_PARAMETER_VARIABLES = ("value", "stderr", "unit", "param")


def _attrs(long_name: str, units: str, companion: str) -> dict:
    out = {"long_name": long_name, "units": units}
    if units in (MIXED_UNITS, UNSTATED_UNITS):
        out["comment"] = f"the unit of each element is in {companion!r} (empty: not stated)"
    return out


def unit_of(result: dict, name: str) -> str:
    """The unit of slot ``name`` in one pattern's result ('' when not stated)."""
    return result.get("units", {}).get(name, "")


def series_dataset(results: list[dict], specs: list, *, attrs: dict | None = None,
                   params: list[str] | None = None) -> xr.Dataset:
    """One Dataset for a series of per-pattern results (from :func:`refine_one`).

    The patterns lie along ``temperature`` (K), the physical dimension coordinate (CF), with
    each pattern's ``pattern`` label and ``file`` beside it; more dims ``param`` (every
    refined slot, union over patterns; its unit in ``unit``), ``phase`` and ``two_theta``
    (when all patterns share one grid). Variables: ``value``/``stderr`` (temperature,
    param), ``wrp``/``rp`` (%), ``gof``, ``chi2``, ``npoints``, ``nvarys``, ``nfev``,
    ``success``, volume and weight fractions with esds (temperature, phase),
    ``obs``/``calc`` (temperature, two_theta), and the tie tests (temperature, tie) when
    present. Every variable and coordinate carries ``long_name`` and ``units``.
    """
    if params is None:
        params = []
        for r in results:
            params += [n for n in r["refined"] if n not in params]
    labels = [r["label"] for r in results]
    P = len(params)
    val = np.full((len(results), P), np.nan)
    err = np.full((len(results), P), np.nan)
    units = [""] * P
    for k, r in enumerate(results):
        for j, n in enumerate(params):
            if n in r["values"] and (n in r["refined"] or r["stderr"].get(n, 0) == 0):
                val[k, j] = r["values"][n]
                err[k, j] = r["stderr"][n] if n in r["refined"] else 0.0
            units[j] = units[j] or r.get("units", {}).get(n, "")
    coords = {"temperature": (DIM, [r["temperature"] for r in results],
                              {"units": "K", "long_name": "temperature"}),
              "pattern": (DIM, np.array(labels, dtype=str), {"long_name": "pattern label"}),
              "file": (DIM, np.array([r.get("file", "") for r in results], dtype=str),
                       {"long_name": "file the pattern was read from"}),
              "param": ("param", np.array(params, dtype=str), {"long_name": "refined slot"}),
              "unit": ("param", np.array(units, dtype=str),
                       {"long_name": "unit of each refined slot (empty: not stated)"})}
    unit = shared_units(units)
    data = {"value": ((DIM, "param"), val, _attrs("refined value", unit, "unit")),
            "stderr": ((DIM, "param"), err, _attrs("standard uncertainty (esd)", unit, "unit"))}
    for key, ln, unit in (("wrp", "weighted profile R", "%"), ("rp", "profile R", "%"),
                          ("gof", "goodness of fit", "1"), ("chi2", "chi-square", "1"),
                          ("npoints", "points in the fit", "1"),
                          ("nvarys", "refined parameters", "1"), ("nfev", "evaluations", "1"),
                          ("success", "converged", "1"), ("bragg_r", "Bragg R", "%")):
        if all(key in r for r in results):
            data[key] = (DIM, np.array([r[key] for r in results]),
                         {"long_name": ln, "units": unit})
    phases = []
    for r in results:
        phases += [p for p in r.get("fractions", {}) if p not in phases]
    if phases:
        coords["phase"] = ("phase", np.array(phases, dtype=str), {"long_name": "phase"})
        for key in ("volume", "weight"):
            for suffix in ("", "_stderr"):
                arr = np.array([[r.get("fractions", {}).get(ph, {}).get(key + suffix, np.nan)
                                 for ph in phases] for r in results])
                data[f"{key}_fraction{suffix}"] = ((DIM, "phase"), arr, {
                    "long_name": f"{key} fraction" + (" esd" if suffix else ""), "units": "1"})
    tth = specs[0].two_theta
    if all(s.two_theta.shape == tth.shape and np.array_equal(s.two_theta, tth) for s in specs):
        coords["two_theta"] = ("two_theta", tth, {"units": "degree", "long_name": "2θ"})
        data["obs"] = ((DIM, "two_theta"), np.array([s.intensity for s in specs]),
                       {"units": "counts", "long_name": "observed"})
        data["calc"] = ((DIM, "two_theta"),
                        np.array([r.get("calc", np.full(tth.shape, np.nan)) for r in results]),
                        {"units": "counts", "long_name": "calculated (NaN outside the fit)"})
    ties = []
    for r in results:
        ties += [t for t in r.get("ties", {}) if t not in ties]
    if ties:
        coords["tie"] = ("tie", np.array(ties, dtype=str), {"long_name": "tested tie"})
        for key, ln in (("applied", "tie applied in the main fit"),
                        ("delta_chi2", "chi2(tied) - chi2(free)"), ("f", "F statistic"),
                        ("p", "p-value of the F-test"),
                        ("difference", "tied quantity measured without the tie"),
                        ("difference_stderr", "its esd")):
            arr = np.array([[r.get("ties", {}).get(t, {}).get(key, np.nan) for t in ties]
                            for r in results], dtype=float)
            # the difference is in the unit of the tied slot
            units_t = "1" if not key.startswith("difference") else (shared_units(
                [unit_of(r, t.split("=")[0]) for r in results for t in ties]))
            data[f"tie_{key}"] = ((DIM, "tie"), arr, {"long_name": ln, "units": units_t})
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))
    return ds


def sequence_entries(ds: xr.Dataset) -> list[dict]:
    """The ``sequence`` of the command line's JSON: per pattern file, temperature, rwp (%),
    gof and every refined parameter as ``{name: {"value", "stderr"}}``."""
    out = []
    for k in range(ds.sizes[DIM]):
        params = {}
        for j, n in enumerate(ds["param"].values):
            v = float(ds["value"].values[k, j])
            if np.isfinite(v):
                s = float(ds["stderr"].values[k, j])
                params[str(n)] = {"value": v, "stderr": s if np.isfinite(s) else None}
        entry = {"label": str(ds["pattern"].values[k]), "file": str(ds["file"].values[k]),
                 "temperature": float(ds["temperature"].values[k]),
                 "rwp": float(ds["wrp"].values[k]), "gof": float(ds["gof"].values[k]),
                 "parameters": params}
        if "weight_fraction" in ds:
            entry["weight_fractions"] = {
                str(ph): {"value": float(ds["weight_fraction"].values[k, i]),
                          "stderr": float(ds["weight_fraction_stderr"].values[k, i])}
                for i, ph in enumerate(ds["phase"].values)}
        out.append(entry)
    return out




def series_result(fits: list[dict], specs: list, *, data: xr.Dataset, model: str,
                  seconds: float, max_dense_covariance: int = 4000, **fields) -> FitResult:
    """One :class:`~sciTie.FitResult` for a series of independent per-pattern fits.

    Each pattern's fitted group (``fit["group"]``) becomes the child ``p000``, ``p001`` ...
    of one ``series`` group; the free vector is theirs end to end, χ², points and
    evaluations add up, and the covariance is block-diagonal (the fits are independent),
    assembled when there are at most ``max_dense_covariance`` free parameters; standard
    errors come from each pattern's own fit in any case. ``data`` (the per-pattern arrays
    on ``temperature``) is merged into :meth:`FitResult.to_xarray`.
    """
    root = ParameterGroup("series", description=f"{len(fits)} patterns")
    x, covs, stderr, slot_err = [], [], [], []
    for k, fit in enumerate(fits):
        g = fit["group"].copy()
        g.name = f"p{k:03d}"
        root.add_group(g)
        x += [fit["values"][n] for n in fit["free"]]
        covs.append(fit.get("covar"))
        stderr += [fit["stderr"].get(n, np.nan) for n in fit["free"]]
        slot_err += [fit["stderr"].get(n, np.nan) for n in g.slot_names]
    x = np.array(x, dtype=float)
    covar = (block_diag(*covs) if covs and all(c is not None for c in covs)
             and x.size <= max_dense_covariance else None)
    res = FitResult.from_covariance(
        root, x, covar=None, ndata=int(sum(f["npoints"] for f in fits)), model=model,
        success=all(f["success"] for f in fits), nfev=int(sum(f.get("nfev", 0) for f in fits)),
        seconds=seconds, chisqr=float(sum(f["chi2"] for f in fits)), data=data,
        message="; ".join(sorted({f"{f['label']}: {f['message']}" for f in fits
                                  if not f["success"]})) or "every pattern converged",
        **fields)
    return set_block_uncertainties(res, np.array(stderr), np.array(slot_err), covar)


def set_block_uncertainties(res: FitResult, stderr: np.ndarray, slot_err: np.ndarray,
                            covar: np.ndarray | None) -> FitResult:
    """Write standard errors computed block by block into ``res`` (made without a
    covariance): free ``stderr``, every slot's ``slot_stderr`` (0 for fixed slots), the
    parameters' ``stderr``, and the covariance and correlations when given."""
    tm = res.params.tie_map()
    res.stderr = np.asarray(stderr, dtype=float)
    res.slot_stderr = np.where(tm.kind == SlotKind.FIXED, 0.0, slot_err)
    if covar is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            res.covar = covar
            res.correl = covar / np.outer(res.stderr, res.stderr)
    for name, par in res.params.items():
        idx = tm.parameters[name]
        s = res.slot_stderr[idx]
        par.stderr = float(s) if np.ndim(idx) == 0 else s.copy()
    return res


def pattern_arrays(ds: xr.Dataset) -> xr.Dataset:
    """The per-pattern part of a series Dataset (figures of merit, fractions, tie tests,
    observed and calculated patterns): what :func:`series_result` takes as ``data``."""
    return ds.drop_vars([v for v in _PARAMETER_VARIABLES if v in ds.variables])


def series_report(refinement, title: str, *, min_correl: float = 0.1) -> str:
    """The report of a series refinement: one line per pattern (temperature, wRp, GOF,
    refined parameters), then its :class:`~sciTie.FitResult` report (free parameters with
    esds, correlations above ``min_correl``; fixed slots left out)."""
    if not hasattr(refinement, "result_"):
        from ..errors import not_fitted
        raise not_fitted(refinement, "report")
    ds = refinement.to_xarray()
    lines = [f"[[{title}]]", f"    patterns: {ds.sizes[DIM]}",
             f"    {'pattern':<12} {'T (K)':>8} {'wRp %':>7} {'GOF':>7} {'refined':>8}"]
    for k in range(ds.sizes[DIM]):
        lines.append(f"    {str(ds['pattern'].values[k]):<12} {float(ds[DIM].values[k]):>8.2f} "
                     f"{float(ds['wrp'].values[k]):>7.3f} {float(ds['gof'].values[k]):>7.3f} "
                     f"{int(np.sum(np.isfinite(ds['value'].values[k]))):>8d}")
    lines.append(refinement.result_.report(min_correl=min_correl, show_fixed=False))
    return "\n".join(lines)


def plot_series(refinement, ax=None, *, names=None, **kwargs):
    """The refined structure parameters of a series refinement against temperature
    (:func:`~sciTie.diffraction.plot_series_parameters`); ``names`` default: the refined
    slots of the recipe's phases (any refined slots when none is), at most four."""
    from ._series_plot import plot_series_parameters

    if not hasattr(refinement, "result_"):
        from ..errors import not_fitted
        raise not_fitted(refinement, "plot")
    ds = refinement.to_xarray()
    if names is None:
        phases = tuple(f"{ph.name}." for ph in refinement.recipe.phases)
        refined = [str(n) for n in ds["param"].values]
        names = ([n for n in refined if n.startswith(phases)] or refined)[:4]
    return plot_series_parameters(ds, list(names), ax, **kwargs)
