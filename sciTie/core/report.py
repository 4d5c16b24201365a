"""The one report formatter, xarray layout and default figure of a :class:`FitResult`."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["format_report", "result_dataset", "plot_parameters"]

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


def result_dataset(result: Any) -> Any:
    """The xarray layout of a result (see :meth:`FitResult.to_xarray`)."""
    import xarray as xr

    r = result
    n = r.nvarys
    cov = r.covar if r.covar is not None else np.full((n, n), np.nan)
    cor = r.correl if r.correl is not None else np.full((n, n), np.nan)
    unit_of = dict(zip(r.slot_names, r.slot_units))
    ds = xr.Dataset(
        {
            "value": ("param", r.x, {"long_name": "fitted value of each free parameter"}),
            "stderr": ("param", r.stderr, {"long_name": "standard error"}),
            "init_value": ("param", r.init_values, {"long_name": "starting value"}),
            "unit": ("param", np.array([unit_of[p] for p in r.free_names], dtype=str)),
            "covariance": (("cov_i", "cov_j"), cov,
                           {"long_name": "covariance of the free parameters"}),
            "correlation": (("cov_i", "cov_j"), cor,
                            {"long_name": "correlation of the free parameters"}),
            "slot_value": ("slot", r.slot_values, {"long_name": "value of every model slot"}),
            "slot_stderr": ("slot", r.slot_stderr,
                            {"long_name": "standard error propagated through the ties "
                                          "(G Σ Gᵀ)"}),
            "slot_status": ("slot", np.array(r.slot_status, dtype=str)),
            "slot_unit": ("slot", np.array(r.slot_units, dtype=str)),
        },
        coords={"param": list(r.free_names), "cov_i": list(r.free_names),
                "cov_j": list(r.free_names), "slot": list(r.slot_names)},
    )
    if r.term_chisqr:  # per dataset, on a 'term' dimension (names need not be identifiers)
        ds["term_chisqr"] = ("term", np.array(list(r.term_chisqr.values())))
        ds["term_ndata"] = ("term", np.array(list(r.term_ndata.values())))
        ds = ds.assign_coords(term=list(r.term_chisqr))
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
