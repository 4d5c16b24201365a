"""The PINN's :class:`sciTie.FitResult`: the trained parameter group (learnt coefficients and
periods with their Laplace uncertainty), figures of merit, the evaluation grid."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xarray as xr

from ..core import FitResult, ParameterGroup

__all__ = ["build_result"]


def _plotter(result: FitResult, ax: Any = None, **kwargs: Any) -> Any:
    from ._plotting import plot_result

    return plot_result(result.data, ax=ax, **kwargs)


def build_result(*, group: ParameterGroup, uncertainty: Any, data: xr.Dataset, ndata: int,
                 method: str, seconds: float, n_steps: int, final_loss: float,
                 attrs: Mapping[str, Any]) -> FitResult:
    """The :class:`FitResult` of a trained PINN.

    Parameters
    ----------
    group : ParameterGroup
        The trained group (:func:`window_group`).
    uncertainty : LaplaceResult or None
        Covariance of the learnt quantities (names as in ``group``).
    data : xarray.Dataset
        The evaluation grid (:func:`evaluation_dataset`).
    ndata : int
        Observations (inverse problems) or training points.
    method : str
        The optimisers used.
    seconds : float
        Training wall time.
    n_steps : int
        Optimiser iterations.
    final_loss : float
        Last recorded total loss.
    attrs : mapping
        Provenance.
    """
    free = group.free_names
    x = group.pack()
    # nothing free: an empty covariance, not a missing one
    covar = np.zeros((0, 0)) if not free else None
    note = {}
    if uncertainty is not None and free:
        order = [uncertainty.free_names.index(n) for n in free]
        covar = uncertainty.free_covariance[np.ix_(order, order)]
    elif free:
        note["covar_note"] = ("no observations: the free parameters (shared boundary "
                              "networks) carry no statistical uncertainty")
    stats: dict[str, Any] = {k: data.attrs[k] for k in data.attrs
                             if k.startswith("rel_l2") or k.startswith("periodicity_violation")}
    stats["final_loss"] = float(final_loss)
    for k in ("fit_cpu_seconds",):
        if k in data.attrs:
            stats[k] = data.attrs[k]
    if uncertainty is not None:
        stats["noise_std"] = float(uncertainty.noise_std)
    return FitResult.from_covariance(
        group, x, covar=covar, ndata=ndata, model="PeriodicPINN", method=method,
        success=bool(np.isfinite(final_loss)), message="trained", nfev=int(n_steps),
        seconds=float(seconds), statistics=stats, data=data, attrs=dict(attrs),
        plotter=_plotter, warn_bounds=False, **note)
