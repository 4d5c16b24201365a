"""FitResult: what every sciTie fit hands back (least squares, EM, autograd).

One class for every model: the fitted parameters under their full dotted names with values,
standard errors, covariance and correlations, every slot's value and propagated uncertainty
(``G Σ Gᵀ``), fit statistics (χ², log-likelihood, AIC/BIC on the free-parameter count, and
any model figures such as wRp or relative L2), one report formatter, one xarray layout, and a
``plot`` that delegates to the model's own figure.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .._validation import check_int
from ..errors import FitWarning, IdentifiabilityWarning, ValidationError
from .tiemap import SlotKind
from .group import ParameterGroup
from .statistics import information_criteria, standard_errors

__all__ = ["FitResult"]

Plotter = Callable[..., Any]


@dataclass(eq=False)
class FitResult:
    """Outcome of a fit: parameters, uncertainties, statistics, report, xarray, plot.

    Build one with :meth:`from_covariance`; models attach their own figures of merit
    (``statistics``), arrays (``data``) and plot function (``plotter``).

    Attributes
    ----------
    params : ParameterGroup
        A copy of the fitted group with values, ``stderr`` and ``correl`` set on every
        parameter (tied and constrained ones get propagated uncertainties).
    x, init_values, stderr : ndarray
        Free-parameter values, starting values and standard errors (NaN without covariance).
    free_names, slot_names : list of str
        Full dotted names (``xray.scale``, ``emissions.means[1,0]``).
    covar, correl : ndarray or None
        Covariance and correlation of the free parameters.
    slot_values, slot_stderr : ndarray
        Every slot's value and propagated standard error (``G Σ Gᵀ``; 0 for fixed slots).
    slot_covar : ndarray or None
    slot_status : list of str
        ``"free"``, ``"fixed"`` or how the slot is tied (``"== 'a'"``).
    slot_units : list of str
        Unit of each slot (from :attr:`Parameter.unit`).
    ndata : int
        Number of observations (residuals, samples, collocation points...).
    model, method : str
        What was fitted and how.
    success : bool
    message : str
    nfev, njev : int
        Objective and Jacobian evaluations (or EM iterations / optimiser steps).
    seconds : float
        Wall time of the fit.
    chisqr : float or None
        Weighted residual sum of squares (least squares).
    log_likelihood : float or None
        Maximised log-likelihood (likelihood models).
    statistics : dict
        More named figures of merit shown in the report and stored in ``to_xarray`` attrs.
    residual, jac : ndarray or None
        Residual vector and Jacobian with respect to the free vector (least squares).
    term_chisqr, term_ndata : dict
        χ² and point count per residual term (and ``"restraints"``).
    data : xarray.Dataset or None
        Model arrays merged into :meth:`to_xarray` (patterns, posteriors, fields).
    attrs : dict
        Provenance and settings, stored as Dataset attributes.
    plotter : callable or None
        ``plotter(result, ax=None, **kwargs) -> Axes`` behind :meth:`plot`.
    """

    params: ParameterGroup
    x: np.ndarray
    init_values: np.ndarray
    free_names: list[str]
    slot_names: list[str]
    stderr: np.ndarray
    covar: np.ndarray | None
    correl: np.ndarray | None
    slot_values: np.ndarray
    slot_stderr: np.ndarray
    slot_covar: np.ndarray | None
    slot_status: list[str]
    slot_units: list[str]
    ndata: int
    model: str = ""
    method: str = ""
    success: bool = True
    message: str = ""
    nfev: int = 0
    njev: int = 0
    seconds: float = 0.0
    chisqr: float | None = None
    log_likelihood: float | None = None
    statistics: dict[str, Any] = field(default_factory=dict)
    residual: np.ndarray | None = None
    jac: np.ndarray | None = None
    term_chisqr: dict[str, float] = field(default_factory=dict)
    term_ndata: dict[str, int] = field(default_factory=dict)
    data: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)
    plotter: Plotter | None = None
    covar_note: str = "uncertainties could not be estimated"

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_covariance(cls, group: ParameterGroup, x: Any, *, covar: Any = None,
                        init_values: Any = None, ndata: int, copy: bool = True,
                        warn_bounds: bool = True, **fields: Any) -> "FitResult":
        """A result for free vector ``x`` of ``group`` and its covariance (or None).

        Writes ``x`` (and the tied slots it implies) into a copy of ``group`` (or into
        ``group`` itself with ``copy=False``), propagates the covariance to every slot as
        ``G Σ Gᵀ`` and sets ``stderr``/``correl`` on the parameters.

        Parameters
        ----------
        group : ParameterGroup
            The fitted group.
        x : array_like
            Free vector at the solution.
        covar : array_like, optional
            Covariance of the free vector; None: no uncertainties.
        init_values : array_like, optional
            Starting free vector (default: ``x``).
        ndata : int
            Number of observations.
        copy : bool, optional
            Work on a copy of ``group`` (default True).
        warn_bounds : bool, optional
            Warn when tied/constrained slots end outside their own bounds.
        **fields
            Any other attribute (``model``, ``method``, ``chisqr``, ``log_likelihood``,
            ``statistics``, ``data``, ``plotter``, ...).
        """
        if not isinstance(group, ParameterGroup):
            raise ValidationError(f"group must be a ParameterGroup, got {type(group).__name__}")
        work = group.copy() if copy else group
        c = work.tie_map()
        x = np.array(x, dtype=np.float64, copy=True)
        if x.shape != (c.n_free,):
            raise ValidationError(f"x must have shape ({c.n_free},) (the free parameters of "
                                  f"group {group.name!r}), got {x.shape}")
        slots = c.evaluate(x)
        work.set_slots(slots)
        n = x.size
        ndata = check_int(ndata, "ndata", minimum=0)
        free_names = c.free_names
        cov = None if covar is None else np.array(covar, dtype=np.float64)
        if cov is not None and cov.shape != (n, n):
            raise ValidationError(f"covar must have shape ({n}, {n}), got {cov.shape}")
        if cov is not None:
            cov, note = _checked_covariance(cov, free_names)
            if cov is None:
                fields["covar_note"] = note
        stderr, correl = standard_errors(cov, n)
        if cov is not None:
            G = c.matrix(x)
            slot_cov = np.asarray(G @ (G @ cov).T)
            slot_std = np.sqrt(np.clip(np.diag(slot_cov), 0.0, None))
        else:
            slot_cov = None
            slot_std = np.full(len(c.names), np.nan)
        slot_std = np.where(c.kind == SlotKind.FIXED, 0.0, slot_std)
        for name, par in work.items():  # uncertainties onto the fitted copy
            idx = c.parameters[name]
            s = slot_std[idx]
            par.stderr = float(s) if np.ndim(idx) == 0 else s.copy()
            if np.ndim(idx) == 0 and correl is not None and c.kind[int(idx)] == SlotKind.FREE:
                j = int(c.free_column[int(idx)])
                par.correl = {free_names[k]: float(correl[j, k]) for k in range(n) if k != j}
        outside = [c.names[i] for i in range(len(c.names))
                   if c.kind[i] != SlotKind.FIXED
                   and not c.lower[i] <= slots[i] <= c.upper[i]]
        if outside and warn_bounds:
            free_out = [n for n in outside if c.kind[c.select(n)] == SlotKind.FREE]
            tied_out = [n for n in outside if n not in free_out]
            if tied_out:
                warnings.warn(f"tied or constrained slots end outside their own bounds: "
                              f"{', '.join(tied_out)} (bounds act on free parameters only)",
                              FitWarning, stacklevel=3)
            if free_out:
                warnings.warn(f"free parameters are outside their bounds: {', '.join(free_out)} "
                              "(the values given as x ignore min/max)", FitWarning, stacklevel=3)
        status = [c.describe(i) + (" (outside its bounds)" if c.names[i] in outside else "")
                  for i in range(len(c.names))]
        units = [""] * len(c.names)
        for name, idx in c.parameters.items():
            for i in np.ravel(idx):
                units[int(i)] = c.units[name]
        x0 = x.copy() if init_values is None else np.array(init_values, dtype=np.float64)
        if x0.shape != x.shape:
            raise ValidationError(f"init_values must have shape {x.shape} (one per free "
                                  f"parameter), got {x0.shape}")
        return cls(params=work, x=x, init_values=x0, free_names=free_names,
                   slot_names=list(c.names), stderr=stderr, covar=cov, correl=correl,
                   slot_values=slots, slot_stderr=slot_std, slot_covar=slot_cov,
                   slot_status=status, slot_units=units, ndata=int(ndata), **fields)

    def with_covariance(self, covar: Any, **fields: Any) -> "FitResult":
        """A copy of this result with a new covariance (e.g. computed after the fit)."""
        keep = {k: getattr(self, k) for k in (
            "model", "method", "success", "message", "nfev", "njev", "seconds", "chisqr",
            "log_likelihood", "residual", "jac", "term_chisqr", "term_ndata", "data",
            "plotter", "covar_note")}
        keep["statistics"] = dict(self.statistics)
        keep["attrs"] = dict(self.attrs)
        keep.update(fields)
        return FitResult.from_covariance(self.params, self.x, covar=covar,
                                         init_values=self.init_values, ndata=self.ndata,
                                         warn_bounds=False, **keep)

    # -- derived statistics --------------------------------------------------------------------
    @property
    def nvarys(self) -> int:
        """Number of free parameters (the column count of G)."""
        return int(self.x.size)

    @property
    def nfree(self) -> int:
        """Degrees of freedom: observations minus free parameters."""
        return self.ndata - self.nvarys

    @property
    def redchi(self) -> float:
        """Reduced χ² (NaN without χ² or degrees of freedom)."""
        if self.chisqr is None or self.nfree <= 0:
            return float("nan")
        return float(self.chisqr / self.nfree)

    @property
    def aic(self) -> float:
        """Akaike information criterion on the free-parameter count."""
        return information_criteria(self.nvarys, self.ndata, log_likelihood=self.log_likelihood,
                                    chisqr=self.chisqr)[0]

    @property
    def bic(self) -> float:
        """Bayesian information criterion on the free-parameter count."""
        return information_criteria(self.nvarys, self.ndata, log_likelihood=self.log_likelihood,
                                    chisqr=self.chisqr)[1]

    @property
    def errorbars(self) -> bool:
        """Whether standard errors could be estimated."""
        return self.covar is not None

    # -- access --------------------------------------------------------------------------------
    def value(self, name: str) -> float | np.ndarray:
        """Fitted value of a parameter or slot by name."""
        return self.params.valuesdict()[name]

    def error(self, name: str) -> float | np.ndarray:
        """Standard error of a parameter or slot by name (propagated for tied slots)."""
        idx = self.params.slot_index(name)
        out = self.slot_stderr[idx]
        return float(out) if np.ndim(idx) == 0 else out

    def parameters(self, *, include_fixed: bool = True) -> dict[str, dict[str, Any]]:
        """Every slot as ``{name: {"value", "stderr", "unit", "status"}}`` (JSON-ready).

        ``status`` is ``"free"``, ``"fixed"`` or the tie; the number of ``"free"`` entries
        equals :attr:`nvarys`.
        """
        out = {}
        for name, v, s, st, u in zip(self.slot_names, self.slot_values, self.slot_stderr,
                                     self.slot_status, self.slot_units):
            if st == "fixed" and not include_fixed:
                continue
            out[name] = {"value": float(v), "stderr": float(s) if np.isfinite(s) else None,
                         "unit": u, "status": st}
        return out

    def summary_statistics(self) -> dict[str, Any]:
        """The fit statistics as a flat dict (report lines, JSON metrics, xarray attrs)."""
        out: dict[str, Any] = {"ndata": self.ndata, "nvarys": self.nvarys}
        if self.chisqr is not None:
            out.update(chisqr=float(self.chisqr), redchi=self.redchi)
        if self.log_likelihood is not None:
            out["log_likelihood"] = float(self.log_likelihood)
        out.update(aic=self.aic, bic=self.bic)
        out.update(self.statistics)
        return out

    # -- presentation --------------------------------------------------------------------------
    def report(self, *, min_correl: float = 0.1, show_correl: bool = True,
               show_fixed: bool = True) -> str:
        """A readable report in lmfit's style (statistics, variables with units, correlations)."""
        from .report import format_report

        return format_report(self, min_correl=min_correl, show_correl=show_correl,
                             show_fixed=show_fixed)

    def __str__(self) -> str:
        return self.report()

    def to_xarray(self) -> Any:
        """Parameters, covariance and statistics as an :class:`xarray.Dataset`.

        Free parameters on ``param`` (``value``, ``stderr``, ``init_value``, ``unit``),
        covariance and correlation on ``cov_i``/``cov_j``, every slot on ``slot``
        (``slot_value``, ``slot_stderr``, ``slot_status``, ``slot_unit``), per-term χ² on
        ``term``; statistics and provenance in ``attrs``; the model's ``data`` merged in.
        """
        from .report import result_dataset

        return result_dataset(self)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The model's figure of this result (Rietveld plot, field, emissions ...).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw (a new figure when None; some models draw several panels and then
            take the figure of ``ax``).
        **kwargs
            Passed to the model's plotter.

        Returns
        -------
        matplotlib Axes (or array of Axes)
        """
        from .report import plot_parameters

        if self.plotter is None:
            return plot_parameters(self, ax=ax, **kwargs)
        return self.plotter(self, ax=ax, **kwargs)

    def with_statistics(self, **stats: Any) -> "FitResult":
        """Add figures of merit to :attr:`statistics` (returns self)."""
        self.statistics.update(stats)
        return self

    def update_attrs(self, attrs: Mapping[str, Any]) -> "FitResult":
        """Add provenance/settings attributes (returns self)."""
        self.attrs.update(attrs)
        return self


def _checked_covariance(cov: np.ndarray, names: list[str]) -> tuple[np.ndarray | None, str]:
    """The covariance if it is one (finite, symmetric, positive semi-definite), else None.

    A covariance with NaN, a negative variance or a negative eigenvalue gives no standard
    errors and an :class:`~sciTie.errors.IdentifiabilityWarning` naming the parameters,
    instead of NaN standard errors and correlations beyond ±1.
    """
    if cov.size == 0:
        return cov, ""
    if not np.all(np.isfinite(cov)):
        bad = [n for n, row in zip(names, cov) if not np.all(np.isfinite(row))]
        note = f"the covariance is not finite for {', '.join(bad)}"
        warnings.warn(f"{note}; no standard errors", IdentifiabilityWarning, stacklevel=4)
        return None, note
    scale = float(np.max(np.abs(cov))) or 1.0
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * scale):
        raise ValidationError("covar must be a symmetric matrix (a covariance); got one whose "
                              f"largest asymmetry is {float(np.max(np.abs(cov - cov.T))):.3g}")
    cov = 0.5 * (cov + cov.T)
    evals, evecs = np.linalg.eigh(cov)
    tol = cov.shape[0] * 100 * np.finfo(float).eps * max(float(np.abs(evals).max()), 1e-300)
    negative = evals < -tol
    if np.any(np.diag(cov) < 0) or np.any(negative):
        weight = np.abs(evecs[:, negative]).max(axis=1) if np.any(negative) else np.zeros(len(names))
        involved = [n for n, w, d in zip(names, weight, np.diag(cov)) if w > 0.1 or d < 0]
        note = ("the covariance is not positive semi-definite (smallest eigenvalue "
                f"{evals.min():.3g}) along {', '.join(involved) or ', '.join(names)}")
        warnings.warn(f"{note}: not a minimum of the objective, or a numerical failure; no "
                      "standard errors", IdentifiabilityWarning, stacklevel=4)
        return None, note
    return cov, ""
