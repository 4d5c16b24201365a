"""FitResult: values, uncertainties and statistics of a fit, as a report and as xarray."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .group import FIXED, FREE, ParameterGroup, _Compiled

__all__ = ["FitResult", "covariance_from_jacobian", "information_criteria"]


def covariance_from_jacobian(J: np.ndarray) -> tuple[np.ndarray | None, int]:
    """``(JᵀJ)⁻¹`` through the SVD and the numerical rank; None when rank-deficient."""
    if J.shape[0] == 0 or J.shape[1] == 0:
        return None, 0
    _, s, vt = np.linalg.svd(J, full_matrices=False)
    tol = s[0] * max(J.shape) * np.finfo(float).eps
    rank = int(np.sum(s > tol))
    if rank < J.shape[1]:
        warnings.warn(f"the Jacobian is rank-deficient (rank {rank} of {J.shape[1]} free "
                      "parameters); no covariance or standard errors", RuntimeWarning,
                      stacklevel=4)
        return None, rank
    return (vt.T / s**2) @ vt, rank


def information_criteria(chisqr: float, ndata: int, nvarys: int) -> tuple[float, float]:
    """AIC and BIC for a least-squares fit, counted on free parameters (as lmfit does)."""
    neg2loglik = ndata * np.log(max(chisqr, np.finfo(float).tiny) / ndata)
    return float(neg2loglik + 2 * nvarys), float(neg2loglik + np.log(ndata) * nvarys)


@dataclass
class FitResult:
    """Outcome of :func:`fit_least_squares`.

    Attributes
    ----------
    params : ParameterGroup
        A copy of the fitted group with values, ``stderr`` and ``correl`` set on every
        parameter (tied and constrained ones get propagated uncertainties).
    x, init_values, stderr : ndarray
        Free-parameter values, starting values and standard errors (NaN without covariance).
    free_names, slot_names : list of str
    covar, correl : ndarray or None
        Covariance and correlation of the free parameters.
    slot_values, slot_stderr : ndarray
        Every slot's value and propagated standard error (``G Σ Gᵀ``).
    slot_covar : ndarray or None
    chisqr, redchi, aic, bic : float
    ndata, nvarys, nfree : int
        Residual count, free-parameter count, degrees of freedom.
    success : bool
    message : str
    nfev, njev : int
    residual, jac : ndarray
        Residual vector and Jacobian with respect to the free vector at the solution.
    term_chisqr, term_ndata : dict
        Chi-square and point count per :class:`ResidualTerm` (and ``"restraints"``).
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
    chisqr: float
    redchi: float
    aic: float
    bic: float
    ndata: int
    nvarys: int
    nfree: int
    success: bool
    message: str
    nfev: int
    njev: int
    residual: np.ndarray
    jac: np.ndarray
    method: str = "least_squares"
    seconds: float = 0.0
    term_chisqr: dict[str, float] = field(default_factory=dict)
    term_ndata: dict[str, int] = field(default_factory=dict)
    slot_status: list[str] = field(default_factory=list)

    @classmethod
    def from_solution(cls, *, group: ParameterGroup, compiled: _Compiled, x: np.ndarray,
                      x0: np.ndarray, residual: np.ndarray, jac: np.ndarray,
                      terms: Sequence[Any], term_sizes: Sequence[int], scale_covar: bool,
                      success: bool, message: str, nfev: int, njev: int, method: str,
                      seconds: float) -> "FitResult":
        c = compiled
        slots = c.evaluate(x)
        c.write_back(slots)
        ndata, nvarys = residual.size, x.size
        nfree = ndata - nvarys
        chisqr = float(residual @ residual)
        redchi = chisqr / nfree if nfree > 0 else np.nan
        aic, bic = information_criteria(chisqr, ndata, nvarys)
        cov, _ = covariance_from_jacobian(jac)
        if cov is not None and scale_covar:
            if nfree > 0:
                cov = cov * redchi
            else:
                cov = None
        if cov is not None:
            stderr = np.sqrt(np.clip(np.diag(cov), 0.0, None))
            with np.errstate(invalid="ignore", divide="ignore"):
                correl = cov / np.outer(stderr, stderr)
            G = c.tie_matrix(x)
            slot_cov = np.asarray(G @ (G @ cov).T)
            slot_std = np.sqrt(np.clip(np.diag(slot_cov), 0.0, None))
        else:
            stderr = np.full(nvarys, np.nan)
            correl = None
            slot_cov = None
            slot_std = np.where(c.kind == FIXED, 0.0, np.nan)
        slot_std = np.where(c.kind == FIXED, 0.0, slot_std)
        free_names = [c.names[i] for i in c.free_idx]
        for par, idx in c.params:  # uncertainties onto the fitted copy
            s = slot_std[idx]
            par.stderr = float(s) if np.ndim(idx) == 0 else s.copy()
            if np.ndim(idx) == 0 and correl is not None and c.kind[int(idx)] == FREE:
                j = int(c.free_column[int(idx)])
                par.correl = {free_names[k]: float(correl[j, k])
                              for k in range(nvarys) if k != j}
        term_chi, term_n, start = {}, {}, 0
        for t, n in zip(terms, term_sizes):
            seg = residual[start:start + n]
            term_chi[t.name], term_n[t.name] = float(seg @ seg), int(n)
            start += n
        if start < residual.size:
            seg = residual[start:]
            term_chi["restraints"], term_n["restraints"] = float(seg @ seg), int(seg.size)
        outside = [c.names[i] for i in range(len(c.names))
                   if c.kind[i] not in (FREE, FIXED)
                   and not c.slot_lower[i] <= slots[i] <= c.slot_upper[i]]
        if outside:
            warnings.warn(f"tied or constrained slots end outside their own bounds: "
                          f"{', '.join(outside)} (bounds act on free parameters only)",
                          RuntimeWarning, stacklevel=3)
        status = [c.describe_slot(i) + (" (outside its bounds)" if c.names[i] in outside else "")
                  for i in range(len(c.names))]
        return cls(params=group, x=np.array(x), init_values=np.array(x0), free_names=free_names,
                   slot_names=list(c.names), stderr=stderr, covar=cov, correl=correl,
                   slot_values=slots, slot_stderr=slot_std, slot_covar=slot_cov, chisqr=chisqr,
                   redchi=float(redchi), aic=aic, bic=bic, ndata=ndata, nvarys=nvarys,
                   nfree=nfree, success=success, message=message, nfev=nfev, njev=njev,
                   residual=residual, jac=jac, method=method, seconds=seconds,
                   term_chisqr=term_chi, term_ndata=term_n,
                   slot_status=status)

    # -- access --------------------------------------------------------------------------------
    def value(self, name: str) -> float | np.ndarray:
        """Fitted value of a parameter or slot by name."""
        return self.params.values()[name]

    def error(self, name: str) -> float | np.ndarray:
        """Standard error of a parameter or slot by name (propagated for tied slots)."""
        idx = self.params.slot_index(name)
        out = self.slot_stderr[idx]
        return float(out) if np.ndim(idx) == 0 else out

    @property
    def errorbars(self) -> bool:
        """Whether standard errors could be estimated."""
        return self.covar is not None

    # -- presentation --------------------------------------------------------------------------
    def report(self, *, min_correl: float = 0.1, show_correl: bool = True) -> str:
        """A readable report in lmfit's style."""
        lines = ["[[Fit Statistics]]",
                 f"    # fitting method   = {self.method}",
                 f"    # function evals   = {self.nfev}",
                 f"    # data points      = {self.ndata}",
                 f"    # variables        = {self.nvarys}",
                 f"    chi-square         = {self.chisqr:.8g}",
                 f"    reduced chi-square = {self.redchi:.8g}",
                 f"    Akaike info crit   = {self.aic:.8g}",
                 f"    Bayesian info crit = {self.bic:.8g}"]
        if len(self.term_chisqr) > 1:
            for name, chi in self.term_chisqr.items():
                lines.append(f"    chi-square[{name}] = {chi:.8g} ({self.term_ndata[name]} points)")
        if not self.success:
            lines.append(f"##  Warning: fit did not converge: {self.message}")
        if not self.errorbars:
            lines.append("##  Warning: uncertainties could not be estimated")
        lines.append("[[Variables]]")
        width = max((len(n) for n in self.slot_names), default=4) + 1
        free_col = {n: j for j, n in enumerate(self.free_names)}
        for i, name in enumerate(self.slot_names):
            v, s, status = self.slot_values[i], self.slot_stderr[i], self.slot_status[i]
            text = f"    {name + ':':<{width}} {v: .8g}"
            if status != "fixed" and np.isfinite(s):
                rel = f" ({abs(s / v):.2%})" if v != 0 else ""
                text += f" +/- {s:.8g}{rel}"
            if status == "free":
                text += f" (init = {self.init_values[free_col[name]]:.8g})"
            elif status == "fixed":
                text += " (fixed)"
            else:
                text += f" {status}"
            lines.append(text)
        if show_correl and self.correl is not None and self.nvarys > 1:
            pairs = [(abs(self.correl[i, j]), self.free_names[i], self.free_names[j], self.correl[i, j])
                     for i in range(self.nvarys) for j in range(i + 1, self.nvarys)
                     if abs(self.correl[i, j]) >= min_correl]
            if pairs:
                lines.append(f"[[Correlations]] (unreported correlations are < {min_correl:.3f})")
                for _, a, b, r in sorted(pairs, reverse=True):
                    lines.append(f"    C({a}, {b}) = {r:+.4f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()

    def to_xarray(self) -> "Any":
        """Results as an :class:`xarray.Dataset` (coords ``param``, ``cov_i``/``cov_j``, ``slot``)."""
        import xarray as xr

        n = self.nvarys
        cov = self.covar if self.covar is not None else np.full((n, n), np.nan)
        cor = self.correl if self.correl is not None else np.full((n, n), np.nan)
        ds = xr.Dataset(
            {
                "value": ("param", self.x),
                "stderr": ("param", self.stderr),
                "init_value": ("param", self.init_values),
                "covariance": (("cov_i", "cov_j"), cov),
                "correlation": (("cov_i", "cov_j"), cor),
                "slot_value": ("slot", self.slot_values),
                "slot_stderr": ("slot", self.slot_stderr),
                "slot_status": ("slot", np.array(self.slot_status, dtype=str)),
            },
            coords={"param": self.free_names, "cov_i": self.free_names,
                    "cov_j": self.free_names, "slot": self.slot_names},
            attrs={"method": self.method, "chisqr": self.chisqr, "redchi": self.redchi,
                   "aic": self.aic, "bic": self.bic, "ndata": self.ndata,
                   "nvarys": self.nvarys, "nfree": self.nfree, "success": int(self.success),
                   "message": self.message, "nfev": self.nfev},
        )
        if self.term_chisqr:  # per dataset, on a 'term' dimension (names need not be identifiers)
            ds["term_chisqr"] = ("term", np.array(list(self.term_chisqr.values())))
            ds["term_ndata"] = ("term", np.array(list(self.term_ndata.values())))
            ds = ds.assign_coords(term=list(self.term_chisqr))
        return ds
