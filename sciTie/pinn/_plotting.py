"""Plots of a PINN result Dataset: fields, errors and the loss against optimiser iterations."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import io
from ..errors import ValidationError

__all__ = ["plot_result", "plot_loss"]


def _new_figure(n_panels: int, width: float, height: float, use_pyplot: bool) -> Any:
    if use_pyplot:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(width * n_panels, height))
    else:  # no pyplot: no GUI backend is touched when the figure only goes to a file
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width * n_panels, height))
    return fig


def plot_loss(ds: xr.Dataset, ax: Any) -> Any:
    """The total loss (and its terms) against cumulative optimiser iterations, window
    boundaries marked.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :meth:`PeriodicPINN.evaluate` with a loss history.
    ax : matplotlib.axes.Axes
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if "loss_total" not in ds:
        raise ValidationError("ds has no loss history (loss_total)")
    it = ds["iteration"].values if "iteration" in ds.coords else np.arange(ds.sizes["record"])
    for name, style in (("loss_total", dict(color="k", lw=1.2, label="total")),
                        ("loss_residual", dict(lw=0.8, alpha=0.8, label="PDE residual")),
                        ("loss_ic", dict(lw=0.8, alpha=0.8, label="initial condition")),
                        ("loss_bc", dict(lw=0.8, alpha=0.8, label="periodicity")),
                        ("loss_boundary", dict(lw=0.8, alpha=0.8, label="boundary")),
                        ("loss_data", dict(lw=0.8, alpha=0.8, label="data"))):
        if name in ds:
            ax.semilogy(it, ds[name].values, **style)
    if "history_window" in ds:
        win = ds["history_window"].values
        for i in np.flatnonzero(np.diff(win) != 0):
            ax.axvline(it[i], color="0.8", lw=0.6, zorder=0)
    ax.set_xlabel("optimiser iteration")
    ax.set_ylabel("loss")
    ax.set_title("training loss" + (" (grey: time windows)" if "history_window" in ds else ""))
    ax.legend(fontsize="small", frameon=False)
    return ax


def _with_units(text: str, attrs) -> str:
    """``text [units]``; a dimensionless quantity ("1") is shown without brackets."""
    units = attrs.get("units")
    return f"{text} [{units}]" if units and units != "1" else text


def _label(ds: xr.Dataset, key: str) -> str:
    return _with_units(ds[key].attrs.get("long_name", key), ds[key].attrs)


def _coord_label(ds: xr.Dataset, c: str) -> str:
    return _with_units(c, ds[c].attrs)


def _field_panel(fig: Any, ax: Any, ds: xr.Dataset, key: str, title: str) -> None:
    da = ds[key]
    two_d = "y" in da.dims
    if two_d:
        data = da.isel(t=-1).transpose("y", "x").values
        xs, ys = ds["x"].values, ds["y"].values
        title += f", t = {float(ds['t'][-1]):.3g}"
    else:
        data = da.transpose("x", "t").values
        xs, ys = ds["t"].values, ds["x"].values
    is_err = key.endswith("_error")
    lim = float(np.max(np.abs(data))) if is_err else None
    mesh = ax.pcolormesh(xs, ys, data, shading="auto", cmap="RdBu_r" if is_err else "viridis",
                         vmin=-lim if lim else None, vmax=lim if lim else None)
    if two_d:
        ax.set_xlabel(_coord_label(ds, "x"))
        ax.set_ylabel(_coord_label(ds, "y"))
        ax.set_aspect("equal")
    else:
        ax.set_xlabel(_coord_label(ds, "t"))
        ax.set_ylabel(_coord_label(ds, "x"))
    ax.set_title(title)
    cbar = fig.colorbar(mesh, ax=ax, shrink=0.9)
    cbar.set_label(_label(ds, key))


def plot_result(ds: xr.Dataset, path: str | Path | None = None, *, overwrite: bool = False,
                output: str | None = None, ax: Any = None, panel: str = "pred") -> Any:
    """Prediction, reference, pointwise error and loss history in one figure.

    1-D problems are drawn in the ``(t, x)`` plane; 2-D problems as ``(x, y)`` snapshots at the
    last time, with equal axes (both are lengths).

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :meth:`PeriodicPINN.evaluate` (``model.result_.data``).
    path : str or Path, optional
        Save the figure there (format from the suffix, PNG by default), atomically.
    overwrite : bool, optional
        Replace an existing file at ``path`` (default False: refuse).
    output : str, optional
        Which output to draw (default: the first).
    ax : matplotlib Axes, optional
        Draw only one panel into this axes (see ``panel``) and return the axes.
    panel : {"pred", "ref", "error", "loss"}, optional
        The panel drawn into ``ax`` (default ``"pred"``).

    Returns
    -------
    matplotlib.figure.Figure, or the axes when ``ax`` is given

    Raises
    ------
    sciTie.errors.OutputExistsError
        ``path`` exists and ``overwrite`` is False (checked before drawing).
    """
    if not isinstance(ds, xr.Dataset):
        raise ValidationError(f"ds must be an xarray.Dataset; got {type(ds).__name__}")
    preds = [k[:-5] for k in ds.data_vars if k.endswith("_pred")]
    if not preds:
        raise ValidationError("ds must contain '<output>_pred' (a result of "
                              "PeriodicPINN.evaluate)")
    name = preds[0] if output is None else output
    if name not in preds:
        raise ValidationError(f"output must be one of {preds}; got {output!r}")
    if path is not None:
        io.check_targets([path], overwrite=overwrite, what="plot path")
    if ax is not None:
        titles = {"pred": "PINN prediction", "ref": "reference", "error": "error (pred - ref)"}
        if panel == "loss":
            plot_loss(ds, ax)
        elif panel in titles:
            key = f"{name}_{panel}"
            if key not in ds:
                raise ValidationError(f"ds has no {key!r} (no reference?)")
            _field_panel(ax.figure, ax, ds, key, titles[panel])
        else:
            raise ValidationError(f"panel must be 'pred', 'ref', 'error' or 'loss'; got "
                                  f"{panel!r}")
        if path is not None:
            io.save_figure(ax.figure, path, overwrite=overwrite, dpi=110)
        return ax
    panels = [(f"{name}_pred", "PINN prediction")]
    if f"{name}_ref" in ds:
        panels += [(f"{name}_ref", "reference"), (f"{name}_error", "error (pred - ref)")]
    has_loss = "loss_total" in ds
    n = len(panels) + int(has_loss)
    fig = _new_figure(n, 4.4, 3.6, use_pyplot=path is None)
    axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
    for a, (key, title) in zip(axes, panels):
        _field_panel(fig, a, ds, key, title)
    if has_loss:
        plot_loss(ds, axes[-1])
    if "rel_l2" in ds.attrs:
        fig.suptitle(f"{ds.attrs.get('problem', '')} ({ds.attrs.get('mode', '')}): "
                     f"relative L2 = {ds.attrs['rel_l2']:.3g}, periodicity violation "
                     f"{ds.attrs.get('periodicity_violation', float('nan')):.1e}")
    fig.tight_layout()
    if path is not None:
        io.save_figure(fig, path, overwrite=overwrite, dpi=110)
    return fig
