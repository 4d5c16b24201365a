"""Plots of a PINN result Dataset."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot_result"]


def plot_result(ds: xr.Dataset, path: str | Path | None = None) -> Any:
    """Prediction, reference, pointwise error and loss history in one figure.

    Parameters
    ----------
    ds : xarray.Dataset
        A result from :meth:`PeriodicPINN.evaluate` (``u_pred``; ``u_ref``, ``error`` and
        ``loss_total`` are drawn when present).
    path : str or Path, optional
        Save the figure as PNG there (an existing file is replaced only by the caller's
        choice: the CLI checks before writing).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if "u_pred" not in ds:
        raise ValueError("ds must contain 'u_pred' (a result of PeriodicPINN.evaluate)")
    panels = [("u_pred", "PINN prediction")]
    if "u_ref" in ds:
        panels += [("u_ref", "reference"), ("error", "error (pred - ref)")]
    has_loss = "loss_total" in ds
    fig, axes = plt.subplots(1, len(panels) + int(has_loss),
                             figsize=(4.2 * (len(panels) + int(has_loss)), 3.4))
    axes = np.atleast_1d(axes)
    extent = [float(ds.t[0]), float(ds.t[-1]), float(ds.x[0]), float(ds.x[-1])]
    for ax, (key, title) in zip(axes, panels):
        data = ds[key].values.T
        cmap = "RdBu_r" if key == "error" else "viridis"
        lim = np.max(np.abs(data)) if key == "error" else None
        im = ax.imshow(data, origin="lower", aspect="auto", extent=extent, cmap=cmap,
                       vmin=-lim if lim else None, vmax=lim)
        ax.set_xlabel("t")
        ax.set_ylabel("x")
        ax.set_title(title)
        fig.colorbar(im, ax=ax)
    if has_loss:
        ax = axes[-1]
        ax.semilogy(ds["loss_total"].values)
        ax.set_xlabel("step")
        ax.set_title("training loss")
    if "rel_l2" in ds.attrs:
        fig.suptitle(f"{ds.attrs.get('problem', '')} ({ds.attrs.get('mode', '')}): "
                     f"relative L2 = {ds.attrs['rel_l2']:.3g}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
