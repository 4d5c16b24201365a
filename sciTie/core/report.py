"""The one report formatter, xarray layout and default figure of a :class:`FitResult`."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["format_report", "result_dataset", "plot_parameters", "cf_units", "shared_units",
           "label_parameter_units", "MIXED_UNITS", "UNSTATED_UNITS"]

#: The ``units`` of a variable whose elements carry different units (parameters of several
#: kinds side by side); each element's unit is then in a companion variable.
MIXED_UNITS = "mixed"
#: The ``units`` of parameters whose model states no unit (an empty ``Parameter.unit``): not
#: claimed dimensionless, since an unstated unit may be a dimensional one.
UNSTATED_UNITS = "unstated"

_LABELS = {"ndata": "# data points", "nvarys": "# variables", "chisqr": "chi-square",
           "redchi": "reduced chi-square", "log_likelihood": "log-likelihood",
           "aic": "Akaike info crit", "bic": "Bayesian info crit"}


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.8g}"
    return str(value)


def format_report(result: Any, *, min_correl: float = 0.1, show_correl: bool = True,
                  show_fixed: bool = True) -> str:
    """lmfit-style text: statistics, variables (value ± stderr, unit, tie), correlations."""
    from .._validation import check_bool, check_float

    check_float(min_correl, "min_correl", minimum=0.0, maximum=1.0)
    check_bool(show_correl, "show_correl")
    check_bool(show_fixed, "show_fixed")
    r = result
    lines = ["[[Fit Statistics]]"]
    if r.model:
        lines.append(f"    # model            = {r.model}")
    lines += [f"    # fitting method   = {r.method}",
              f"    # function evals   = {r.nfev}"]
    if r.seconds:
        lines.append(f"    # seconds          = {r.seconds:.3g}")
    for key, value in r.summary_statistics().items():
        label = _LABELS.get(key, key)
        lines.append(f"    {label:<18} = {_fmt(value)}")
    if len(r.term_chisqr) > 1:
        for name, chi in r.term_chisqr.items():
            lines.append(f"    chi-square[{name}] = {chi:.8g} ({r.term_ndata[name]} points)")
    if not r.success:
        lines.append(f"##  Warning: fit did not converge: {r.message}")
    if not r.errorbars:
        lines.append(f"##  Warning: {r.covar_note}")
    lines.append("[[Variables]]")
    width = max((len(n) for n in r.slot_names), default=4) + 1
    free_col = {n: j for j, n in enumerate(r.free_names)}
    tm = r.params.tie_map()
    for i, name in enumerate(r.slot_names):
        v, s, status, unit = r.slot_values[i], r.slot_stderr[i], r.slot_status[i], r.slot_units[i]
        if status == "fixed" and not show_fixed:
            continue
        text = f"    {name + ':':<{width}} {v: .8g}"
        if status != "fixed" and np.isfinite(s):
            rel = f" ({abs(s / v):.2%})" if v != 0 else ""
            text += f" +/- {s:.8g}{rel}"
        if unit:
            text += f" {unit}"
        if status == "free":
            text += f" (init = {r.init_values[free_col[name]]:.8g})"
            lo, hi = tm.lower[i], tm.upper[i]
            near = 1e-10 * max(1.0, abs(lo) if np.isfinite(lo) else 0.0,
                               abs(hi) if np.isfinite(hi) else 0.0)
            if v - lo <= near or hi - v <= near:  # where the information matrix ends
                text += f" (on its {'lower' if v - lo <= near else 'upper'} bound)"
        elif status == "fixed":
            text += " (fixed)"
        else:
            text += f" {status}"
        lines.append(text)
    if show_correl and r.correl is not None and r.nvarys > 1:
        iu, ju = np.triu_indices(r.nvarys, 1)
        vals = r.correl[iu, ju]
        keep = np.flatnonzero(np.abs(vals) >= min_correl)
        if keep.size:
            lines.append(f"[[Correlations]] (unreported correlations are < {min_correl:.3f})")
            for k in keep[np.argsort(-np.abs(vals[keep]), kind="stable")]:
                lines.append(f"    C({r.free_names[iu[k]]}, {r.free_names[ju[k]]}) = "
                             f"{vals[k]:+.4f}")
    return "\n".join(lines)


def _attr_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    return str(value)


def cf_units(unit: str) -> str:
    """A unit as the CF conventions write it: ``"1"`` for a dimensionless (empty) unit."""
    return str(unit).strip() or "1"


def shared_units(units: Any, power: int = 1) -> str:
    """The CF ``units`` of a variable holding parameters of the given (``Parameter.unit``)
    ``units``, raised to ``power`` (2 for a covariance): their one unit; :data:`MIXED_UNITS`
    when they differ; :data:`UNSTATED_UNITS` when none is stated (an empty unit is unstated,
    not dimensionless: dimensionless parameters say ``"1"``)."""
    distinct = {str(u).strip() for u in units}
    if not distinct:
        return "1"
    if len(distinct) > 1:
        return MIXED_UNITS
    unit = distinct.pop()
    if not unit:
        return UNSTATED_UNITS
    return unit if unit == "1" or power == 1 else f"({unit})^{power}"


def _attrs(long_name: str, units: str, companion: str | None = None) -> dict[str, str]:
    """CF attributes; a mixed-unit variable names the variable holding its per-element units."""
    attrs = {"long_name": long_name, "units": units}
    if units in (MIXED_UNITS, UNSTATED_UNITS) and companion:
        attrs["comment"] = f"the unit of each element is in {companion!r} (empty: not stated)"
    return attrs


_PARAM_VARIABLES = {"value": ("unit", 1), "stderr": ("unit", 1), "init_value": ("unit", 1),
                    "covariance": ("unit", 2), "slot_value": ("slot_unit", 1),
                    "slot_stderr": ("slot_unit", 1)}


def label_parameter_units(ds: Any, units: Any) -> Any:
    """State the unit of parameters in a :func:`result_dataset` layout after the fit (a model
    that knows its slots' units only then, e.g. from the data): ``units`` maps a slot name or a
    callable ``name -> unit or None`` to units; ``unit``/``slot_unit`` and the ``units`` of the
    value, error and covariance variables follow. Returns ``ds`` (changed in place)."""
    unit_of = units if callable(units) else units.get
    for var, dim in (("unit", "param"), ("slot_unit", "slot")):
        if var not in ds:
            continue
        new = [unit_of(str(name)) for name in ds[dim].values]
        old = ds[var].values
        ds[var].values = np.array([o if n is None else n for o, n in zip(old, new)], dtype=str)
    for var, (companion, power) in _PARAM_VARIABLES.items():
        if var in ds and companion in ds:
            keep = ds[var].attrs.get("long_name", var)
            ds[var].attrs.pop("comment", None)
            ds[var].attrs.update(_attrs(keep, shared_units(ds[companion].values, power),
                                        companion))
    return ds


def result_dataset(result: Any) -> Any:
    """The xarray layout of a result (see :meth:`FitResult.to_xarray`).

    Every variable and coordinate carries CF ``long_name`` and ``units`` (``"1"`` for
    dimensionless ones; :data:`MIXED_UNITS` where parameters of different units share a
    variable, each one's unit then in ``unit``/``slot_unit``); text variables (names, units,
    status) carry a ``long_name`` only, since a unit describes a quantity.
    """
    import xarray as xr

    r = result
    n = r.nvarys
    cov = r.covar if r.covar is not None else np.full((n, n), np.nan)
    cor = r.correl if r.correl is not None else np.full((n, n), np.nan)
    unit_of = dict(zip(r.slot_names, r.slot_units))
    free_units = [unit_of[p] for p in r.free_names]
    free = shared_units(free_units)
    slots = shared_units(r.slot_units)
    ds = xr.Dataset(
        {
            "value": ("param", r.x, _attrs("fitted value of each free parameter", free,
                                           "unit")),
            "stderr": ("param", r.stderr, _attrs("standard error", free, "unit")),
            "init_value": ("param", r.init_values, _attrs("starting value", free, "unit")),
            "unit": ("param", np.array(free_units, dtype=str),
                     {"long_name": "unit of each free parameter (empty: dimensionless)"}),
            "covariance": (("cov_i", "cov_j"), cov,
                           _attrs("covariance of the free parameters",
                                  shared_units(free_units, 2), "unit")),
            "correlation": (("cov_i", "cov_j"), cor,
                            _attrs("correlation of the free parameters", "1")),
            "slot_value": ("slot", r.slot_values,
                           _attrs("value of every model slot", slots, "slot_unit")),
            "slot_stderr": ("slot", r.slot_stderr,
                            _attrs("standard error propagated through the ties (G Σ Gᵀ)",
                                   slots, "slot_unit")),
            "slot_status": ("slot", np.array(r.slot_status, dtype=str),
                            {"long_name": "status of each slot: free, fixed, or the tie that sets it"}),
            "slot_unit": ("slot", np.array(r.slot_units, dtype=str),
                          {"long_name": "unit of each slot (empty: dimensionless)"}),
        },
        # names as a str array even when empty (a float coordinate would need units)
        coords={"param": ("param", np.array(r.free_names, dtype=str),
                          {"long_name": "free parameter"}),
                "cov_i": ("cov_i", np.array(r.free_names, dtype=str),
                          {"long_name": "free parameter (row)"}),
                "cov_j": ("cov_j", np.array(r.free_names, dtype=str),
                          {"long_name": "free parameter (column)"}),
                "slot": ("slot", list(r.slot_names), {"long_name": "model slot"})},
    )
    if r.term_chisqr:  # per dataset, on a 'term' dimension (names need not be identifiers)
        ds["term_chisqr"] = ("term", np.array(list(r.term_chisqr.values())),
                             _attrs("chi-square of each term of the objective", "1"))
        ds["term_ndata"] = ("term", np.array(list(r.term_ndata.values())),
                            _attrs("number of data points of each term", "1"))
        ds = ds.assign_coords(term=("term", list(r.term_chisqr),
                                    {"long_name": "term of the objective (data set)"}))
    attrs = {"model": r.model, "method": r.method, "success": int(r.success),
             "message": r.message, "nfev": int(r.nfev), "fit_seconds": float(r.seconds)}
    attrs.update({k: _attr_value(v) for k, v in r.summary_statistics().items()
                  if v is not None})
    if r.data is not None:
        ds = xr.merge([r.data, ds], combine_attrs="override", compat="override")
        attrs = {**{k: _attr_value(v) for k, v in r.data.attrs.items()}, **attrs}
    attrs.update({k: _attr_value(v) for k, v in r.attrs.items()})
    ds.attrs = attrs
    return ds


def plot_parameters(result: Any, ax: Any = None, **kwargs: Any) -> Any:
    """Default figure: the correlation matrix of the free parameters, labelled."""
    import matplotlib.pyplot as plt

    r = result
    if ax is not None and not callable(getattr(ax, "imshow", None)):
        from ..errors import ArgumentTypeError

        raise ArgumentTypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    if ax is None:
        size = min(2 + 0.35 * r.nvarys, 12)
        _, ax = plt.subplots(figsize=(size + 1.5, size))
    cor = r.correl if r.correl is not None else np.full((r.nvarys, r.nvarys), np.nan)
    im = ax.imshow(cor, vmin=-1, vmax=1, cmap=kwargs.pop("cmap", "RdBu_r"))
    ax.figure.colorbar(im, ax=ax, label="correlation")
    ax.set_xticks(range(r.nvarys), r.free_names, rotation=90, fontsize=7)
    ax.set_yticks(range(r.nvarys), r.free_names, fontsize=7)
    ax.set_title(f"{r.model or 'fit'}: correlations of the free parameters")
    return ax
