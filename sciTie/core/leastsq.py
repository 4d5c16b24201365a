"""Least squares on the free vector of a ParameterGroup, for residuals written in slots.

The model computes residuals (and, when it can, their Jacobian) as functions of the slot
values; the driver maps between free and slot space with the tie matrix G, so a shared
parameter's Jacobian column is the sum of the columns of the slots that read it.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from .._validation import check_bool, check_choice, check_float, check_int
from ..errors import ArgumentTypeError, FitWarning, ValidationError
from .tiemap import SlotValues, TieMap
from .group import ParameterGroup
from .marquardt import DenseNormalEquations, levenberg_marquardt
from .result import FitResult
from .statistics import covariance_from_jacobian
from .threads import blas_threads_for

__all__ = ["ResidualTerm", "fit_least_squares"]

ResidualFn = Callable[[SlotValues], np.ndarray]
JacobianFn = Callable[[SlotValues], Any]


@dataclass
class ResidualTerm:
    """One dataset's contribution to a joint least-squares fit.

    Parameters
    ----------
    name : str
        Label used in the report and in ``FitResult.term_chisqr``.
    residual : callable
        ``residual(values) -> 1-D array``, already divided by the data's sigma.
    jacobian : callable, optional
        ``jacobian(values) -> (n_residuals, n_slots)`` array or sparse matrix: derivatives of
        the residual with respect to the slot vector. Omitted: central finite differences on
        the free vector.
    weight : float, default 1
        Multiplies the residual (and Jacobian), like lmfit's weights.
    slots : array_like of int, optional
        The slots the residual depends on (indices into the group's slot vector): the
        Jacobian then has one column per entry, ``(n_residuals, len(slots))``, instead of one
        per slot of the group (a dataset that reads a few slots of a large tree).

    Notes
    -----
    Where a fitter needs both at one point it asks for the Jacobian first, then the
    residual: a model that computes them in one pass may keep the residual for that call.
    """

    name: str
    residual: ResidualFn
    jacobian: JacobianFn | None = None
    weight: float = 1.0
    slots: Any = None


class _Problem:
    """Residual and Jacobian of all terms as functions of the free vector."""

    def __init__(self, group: ParameterGroup, terms: Sequence[ResidualTerm]) -> None:
        self.group = group
        self.c: TieMap = group.tie_map()
        self.terms = list(terms)
        self.sizes: list[int] = []
        r = self.c.restraints
        self.restraint_rows = np.array([i for i, *_ in r], dtype=np.intp)
        self.restraint_target = np.array([t for _, t, _, _ in r], dtype=float)
        self.restraint_sigma = np.array([s for _, _, s, _ in r], dtype=float)
        self.nfev = 0
        self.njev = 0
        self.x0 = self.c.pack()
        n_slots = len(self.c.names)
        self.term_slots = []
        for t in self.terms:
            if t.slots is None:
                self.term_slots.append(None)
                continue
            idx = np.asarray(t.slots)
            if idx.ndim != 1 or idx.dtype.kind not in "iu" or np.any(idx < 0) \
                    or np.any(idx >= n_slots):
                raise ValidationError(f"slots of term {t.name!r} must be slot indices (ints in "
                                      f"[0, {n_slots})), got {t.slots!r:.80}")
            self.term_slots.append(idx.astype(np.intp))

    def values(self, x: np.ndarray) -> SlotValues:
        return SlotValues(self.c.evaluate(x), self.c)

    def _term_residual(self, term: ResidualTerm, vals: SlotValues,
                       index: int | None = None) -> np.ndarray:
        """One term's weighted residual, checked: real numbers, 1-D, the same length always."""
        raw = term.residual(vals)
        try:
            if isinstance(raw, (str, bytes)) or np.asarray(raw).dtype.kind in "USVOc":
                raise TypeError
            r = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentTypeError(f"residual of term {term.name!r} must return a 1-D array of "
                                    f"real numbers, got {type(raw).__name__}"
                                    + (f" of dtype {np.asarray(raw).dtype}"
                                       if isinstance(raw, np.ndarray) else "")) from None
        if r.ndim != 1:
            raise ValidationError(f"residual of term {term.name!r} must be 1-D, got shape "
                                  f"{r.shape}")
        if index is not None and self.sizes and r.size != self.sizes[index]:
            raise ValidationError(f"residual of term {term.name!r} returned {r.size} values, but "
                                  f"{self.sizes[index]} at the starting point; a residual must "
                                  "have the same length at every call (mask points with zero "
                                  "weight instead of dropping them)")
        return term.weight * r

    def residual(self, x: np.ndarray, *, check: bool = False) -> np.ndarray:
        self.nfev += 1
        vals = self.values(x)
        if check:
            self.sizes = []
        parts = [self._term_residual(t, vals, i) for i, t in enumerate(self.terms)]
        if check:
            self.sizes = [p.size for p in parts]
            for t, p in zip(self.terms, parts):
                if not np.all(np.isfinite(p)):
                    raise ValidationError(
                        f"residual of term {t.name!r} is not finite at the starting values "
                        f"({np.count_nonzero(~np.isfinite(p))} of {p.size} entries); check the "
                        "data and initial parameters")
        if self.restraint_rows.size:
            parts.append((vals.array[self.restraint_rows] - self.restraint_target)
                         / self.restraint_sigma)
        return np.concatenate(parts) if parts else np.zeros(0)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        self.njev += 1
        vals = self.values(x)
        G = self.c.matrix(x)
        n_slots = len(self.c.names)
        blocks = []
        for k, (term, size) in enumerate(zip(self.terms, self.sizes)):
            if term.jacobian is None:
                blocks.append(self._finite_difference(term, x, size, k))
                continue
            cols = self.term_slots[k]
            J = term.jacobian(vals)
            if not sp.issparse(J):
                try:
                    if isinstance(J, (str, bytes)) or np.asarray(J).dtype.kind in "USVOc":
                        raise TypeError
                    J = np.asarray(J, dtype=np.float64)
                except (TypeError, ValueError):
                    raise ArgumentTypeError(f"jacobian of term {term.name!r} must return an array "
                                            f"of real numbers, got {type(J).__name__}") from None
            width = n_slots if cols is None else cols.size
            if J.shape != (size, width):
                raise ValidationError(f"jacobian of term {term.name!r} must have shape "
                                      f"({size}, {width}) (residuals x "
                                      f"{'slots' if cols is None else 'its slots'}), got "
                                      f"{J.shape}")
            if cols is not None:
                Gc = G[cols].toarray()
                Jf = np.asarray(J @ Gc)  # Gc is dense: the product is dense either way
            else:
                Jf = (J @ G).toarray() if sp.issparse(J) else np.asarray((G.T @ J.T).T)
            if not np.all(np.isfinite(Jf)):
                cols = np.flatnonzero(~np.all(np.isfinite(Jf), axis=0))
                raise ValidationError(f"jacobian of term {term.name!r} is not finite for "
                                 f"{', '.join(self.c.names[self.c.free_index[c]] for c in cols)}")
            blocks.append(term.weight * Jf)
        if self.restraint_rows.size:
            R = sp.csr_matrix((1.0 / self.restraint_sigma,
                               (np.arange(self.restraint_rows.size), self.restraint_rows)),
                              shape=(self.restraint_rows.size, n_slots))
            blocks.append((R @ G).toarray())
        return np.vstack(blocks)

    def _finite_difference(self, term: ResidualTerm, x: np.ndarray, size: int,
                           index: int) -> np.ndarray:
        """Central differences on the free vector (ties and constraints included).

        The step is relative to the larger of the parameter's current and starting magnitude
        (1 when both are zero): a parameter that starts small gets a small step, one that
        converges to nearly zero keeps the step of its start.
        """
        lo, hi = self.group.bounds()
        J = np.empty((size, x.size))
        for j in range(x.size):
            typical = max(abs(x[j]), abs(self.x0[j])) or 1.0
            h = np.cbrt(np.finfo(float).eps) * typical
            xp, xm = x.copy(), x.copy()
            xp[j] = min(x[j] + h, hi[j])
            xm[j] = max(x[j] - h, lo[j])
            rp = self._term_residual(term, self.values(xp), index)
            rm = self._term_residual(term, self.values(xm), index)
            J[:, j] = (rp - rm) / (xp[j] - xm[j])
            if not np.all(np.isfinite(J[:, j])):
                raise ValidationError(f"residual of term {term.name!r} is not finite near "
                                 f"{self.c.names[self.c.free_index[j]]} = {x[j]:g} (finite-"
                                 "difference step); check its bounds and the model's domain")
        self.nfev += 2 * x.size
        return J


def _normalise_terms(residual: Any, jacobian: Any) -> list[ResidualTerm]:
    if callable(residual):
        if jacobian is not None and not callable(jacobian):
            raise ArgumentTypeError(f"jacobian must be callable or None, got "
                                    f"{type(jacobian).__name__}")
        return [ResidualTerm("data", residual, jacobian)]
    terms = list(residual) if isinstance(residual, (list, tuple)) else None
    if not terms or not all(isinstance(t, ResidualTerm) for t in terms):
        raise ArgumentTypeError("residual must be a callable or a non-empty list of ResidualTerm")
    if jacobian is not None:
        raise ArgumentTypeError("with a list of ResidualTerm, give each term its own jacobian")
    for t in terms:
        if not isinstance(t.name, str) or not t.name:
            raise ArgumentTypeError(f"ResidualTerm name must be a non-empty str, got {t.name!r}")
        if not callable(t.residual):
            raise ArgumentTypeError(f"residual of term {t.name!r} must be callable, got "
                                    f"{type(t.residual).__name__}")
        if t.jacobian is not None and not callable(t.jacobian):
            raise ArgumentTypeError(f"jacobian of term {t.name!r} must be callable or None, got "
                                    f"{type(t.jacobian).__name__}")
    names = [t.name for t in terms]
    if "restraints" in names:
        raise ValidationError("the ResidualTerm name 'restraints' is reserved for restraint rows")
    if len(set(names)) != len(names):
        raise ValidationError(f"ResidualTerm names must be unique, got {names}")
    for t in terms:
        check_float(t.weight, f"weight of term {t.name!r}", minimum=0.0, low_open=True)
    return terms


def _check_options(method: Any, ftol: Any, xtol: Any, gtol: Any, max_nfev: Any,
                   tr_solver: Any, scale_covar: Any, verbose: Any) -> None:
    """Refuse bad optimiser settings before any work (scipy would hang on max_nfev=2.5)."""
    check_choice(method, "method", ("trf", "dogbox", "lm", "marquardt"))
    eps = float(np.finfo(float).eps)
    for name, tol in (("ftol", ftol), ("xtol", xtol), ("gtol", gtol)):
        if tol is None and method not in ("lm", "marquardt"):
            continue  # scipy: None switches this stopping rule off
        value = check_float(tol, name)
        if not eps <= value < 1.0:
            off = "" if method in ("lm", "marquardt") else " or be None to disable it"
            raise ValidationError(f"{name} must lie in [{eps:.3g}, 1) (machine epsilon to 1)"
                                  f"{off}, "
                                  f"got {tol!r}")
    check_int(max_nfev, "max_nfev", minimum=1, allow_none=True)
    check_choice(tr_solver, "tr_solver", (None, "exact", "lsmr"))
    check_bool(scale_covar, "scale_covar")
    check_int(int(verbose) if isinstance(verbose, (bool, np.bool_)) else verbose, "verbose",
              minimum=0, maximum=2)


def _check_x_scale(x_scale: Any, n_free: int) -> Any:
    if isinstance(x_scale, str):
        if x_scale != "jac":
            raise ValidationError(f"x_scale must be 'jac' or positive numbers, got {x_scale!r}")
        return x_scale
    arr = np.asarray(x_scale)
    if arr.dtype.kind not in "iuf" or (arr.ndim != 0 and arr.shape != (n_free,)) \
            or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValidationError(f"x_scale must be 'jac', one positive number or {n_free} positive "
                              f"numbers (one per free parameter), got {x_scale!r}")
    return x_scale


def fit_least_squares(group: ParameterGroup, residual: ResidualFn | Sequence[ResidualTerm],
                      jacobian: JacobianFn | None = None, *, method: str = "trf",
                      ftol: float = 1e-12, xtol: float = 1e-12, gtol: float = 1e-12,
                      max_nfev: int | None = None, x_scale: Any = "jac",
                      tr_solver: str | None = None, scale_covar: bool = True,
                      verbose: int = 0) -> FitResult:
    """Fit the free parameters of ``group`` by (weighted, bounded) least squares.

    Parameters
    ----------
    group : ParameterGroup
        Parameters, ties and bounds. It is not modified: the fitted values live in
        ``result.params``.
    residual : callable or list of ResidualTerm
        ``residual(values) -> 1-D array`` (``values`` is a :class:`SlotValues`), or one
        :class:`ResidualTerm` per dataset; their residuals are concatenated.
    jacobian : callable, optional
        With a single callable residual: ``jacobian(values) -> (n_res, n_slots)``.
    method : {'trf', 'dogbox', 'lm', 'marquardt'}
        'trf', 'dogbox', 'lm': :func:`scipy.optimize.least_squares` ('lm' ignores bounds, so it
        is refused when any are set). 'marquardt': sciTie's Levenberg-Marquardt on the normal
        equations (:func:`sciTie.core.marquardt.levenberg_marquardt`: bounds by projection,
        Jacobian and residual in one pass where a step is expected to succeed, no
        evaluation of a step predicted to change χ² by less than ``ftol·χ²``); cheap when
        the free parameters are few and each evaluation is costly (Rietveld).
    ftol, xtol, gtol, max_nfev, x_scale, verbose
        Passed to :func:`scipy.optimize.least_squares`; for 'marquardt' see
        :func:`~sciTie.core.marquardt.levenberg_marquardt` (``x_scale``, ``verbose`` and
        ``tr_solver`` do not apply).
    tr_solver : {None, 'exact', 'lsmr'}
        Trust-region subproblem solver for 'trf'/'dogbox'; 'lsmr' avoids a dense SVD per
        iteration on large problems (many residuals and free parameters) with bounds.
    scale_covar : bool, default True
        Scale the covariance by the reduced chi-square (lmfit's default; use False when the
        residuals are exact sigma-weighted and the model is trusted).

    Returns
    -------
    FitResult
    """
    if not isinstance(group, ParameterGroup):
        raise ArgumentTypeError(f"group must be a ParameterGroup, got {type(group).__name__}")
    terms = _normalise_terms(residual, jacobian)
    _check_options(method, ftol, xtol, gtol, max_nfev, tr_solver, scale_covar, verbose)
    work = group.copy()
    problem = _Problem(work, terms)
    if problem.c.n_free == 0:
        raise ValidationError(f"group {group.name!r} has no free parameters: every slot is fixed "
                              "or tied")
    x_scale = _check_x_scale(x_scale, problem.c.n_free)
    x0 = problem.c.pack()
    lo, hi = work.bounds()
    bounded = bool(np.any(np.isfinite(lo)) or np.any(np.isfinite(hi)))
    if method == "lm" and bounded:
        raise ValidationError("method='lm' cannot honour bounds; use 'trf' or 'dogbox'")
    too_tight = [n for n, a, b in zip(work.free_names, lo, hi) if not a < b]
    if too_tight:
        raise ValidationError(f"free parameters {', '.join(too_tight)} have min == max; fix them "
                              "instead (vary=False)")
    outside = [f"{n}={v:g} not in [{a:g}, {b:g}]" for n, v, a, b in zip(work.free_names, x0, lo, hi)
               if not a <= v <= b]
    if outside:
        raise ValidationError(f"starting values outside their bounds: {'; '.join(outside)}")
    r0 = problem.residual(x0, check=True)
    if r0.size == 0:
        raise ValidationError("the residual is empty: there are no data to fit")
    if r0.size < x0.size and method == "lm":
        raise ValidationError(f"method='lm' needs at least as many residuals ({r0.size}) as free "
                              f"parameters ({x0.size})")
    with blas_threads_for(x0.size):
        t0 = time.perf_counter()
        final = None
        if method == "marquardt":
            opt = levenberg_marquardt(DenseNormalEquations(problem.residual, problem.jacobian),
                                      x0, lower=lo, upper=hi, ftol=ftol, xtol=xtol, gtol=gtol,
                                      max_nfev=max_nfev)
            final = (opt.linearization.state["r"], opt.linearization.state["J"])
        else:
            from scipy.optimize import least_squares  # half a second of import: here only

            opt = least_squares(problem.residual, x0, jac=problem.jacobian,
                                bounds=(lo, hi) if bounded else (-np.inf, np.inf),
                                method=method, ftol=ftol, xtol=xtol, gtol=gtol,
                                max_nfev=max_nfev, x_scale=x_scale, verbose=verbose,
                                **({} if tr_solver is None or method == "lm"
                                   else {"tr_solver": tr_solver}))
        seconds = time.perf_counter() - t0
        _warn_at_bounds(problem, opt)
        return _result(problem, opt, x0, method=method, scale_covar=scale_covar,
                       seconds=seconds, final=final)


def _warn_at_bounds(problem: _Problem, opt: Any) -> None:
    """A free parameter held by an active bound: the fit's minimum may lie beyond it."""
    active = np.asarray(getattr(opt, "active_mask", np.zeros(0)))
    if not np.any(active):
        return
    names = [problem.c.names[i] for i in problem.c.free_index]
    held = [f"{names[j]} = {opt.x[j]:.6g} ({'min' if a < 0 else 'max'})"
            for j, a in enumerate(active) if a != 0]
    warnings.warn(f"free parameters ended at a bound: {', '.join(held)}; the best fit may lie "
                  "beyond it (check the bound and the starting values) and standard errors of a "
                  "parameter at a bound are not meaningful", FitWarning, stacklevel=3)


def _result(problem: _Problem, opt: Any, x0: np.ndarray, *, method: str, scale_covar: bool,
            seconds: float, final: tuple | None = None) -> FitResult:
    """The FitResult of a finished least-squares run: covariance ``(JᵀJ)⁻¹ χ²_ν``.

    ``final``: the residual and Jacobian at ``opt.x`` when the solver has them."""
    x = opt.x
    if final is None:
        r = problem.residual(x)
        J = problem.jacobian(x)
    else:
        r, J = final
    chisqr = float(r @ r)
    names = [problem.c.names[i] for i in problem.c.free_index]
    cov, _ = covariance_from_jacobian(J, names)
    nfree = r.size - x.size
    if cov is not None and scale_covar:
        cov = cov * (chisqr / nfree) if nfree > 0 else None
    term_chi, term_n, start = {}, {}, 0
    for t, n in zip(problem.terms, problem.sizes):
        seg = r[start:start + n]
        term_chi[t.name], term_n[t.name] = float(seg @ seg), int(n)
        start += n
    if start < r.size:
        seg = r[start:]
        term_chi["restraints"], term_n["restraints"] = float(seg @ seg), int(seg.size)
    return FitResult.from_covariance(
        problem.group, x, covar=cov, init_values=x0, ndata=r.size, copy=False,
        model="least squares", method=f"least_squares ({method})", success=bool(opt.status > 0),
        message=str(opt.message), nfev=problem.nfev, njev=problem.njev, seconds=seconds,
        chisqr=chisqr, residual=r, jac=J, term_chisqr=term_chi, term_ndata=term_n)
