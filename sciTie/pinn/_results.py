"""The PINN's :class:`sciTie.FitResult`: PDE coefficients and periods as a ParameterGroup
(learnt ones free, with their Laplace uncertainty), figures of merit, the evaluation grid."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xarray as xr

from ..core import FitResult, Parameter, ParameterGroup

__all__ = ["physical_group", "build_result"]


def physical_group(problem: Any, periods: Mapping[str, float], learnt: Mapping[str, float],
                   trainable_periods: bool) -> ParameterGroup:
    """The model's physical parameters: every PDE coefficient and the period of every
    periodic coordinate; those learnt from data are free, the others fixed."""
    group = ParameterGroup("pinn", description=f"periodic PINN, problem {problem.name!r}")
    for name, value in problem.parameters.items():
        learn = name in learnt
        group.add(Parameter(name, float(learnt.get(name, value)), vary=learn,
                            unit=problem.units.get(name, ""),
                            description="PDE coefficient" + (" (learnt)" if learn else "")))
    for c in problem.periodic:
        group.add(Parameter(f"period_{c}", float(periods.get(c, problem.periods[c])),
                            vary=bool(trainable_periods), unit=problem.units.get(c, ""),
                            description=f"period of {c}"
                                        + (" (learnt)" if trainable_periods else "")))
    return group


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
        From :func:`physical_group`.
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
    # nothing free (a forward problem): an empty covariance, not a missing one
    covar = np.zeros((0, 0)) if not free else None
    if uncertainty is not None and free:
        order = [uncertainty.names.index(n) for n in free]
        covar = uncertainty.covariance[np.ix_(order, order)]
        x = np.asarray(uncertainty.values, dtype=float)[order]
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
        plotter=_plotter, warn_bounds=False)
