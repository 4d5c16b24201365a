"""Levenberg-Marquardt on the normal equations, whatever their structure.

Linearised at a free vector ``x``, a least-squares problem is its normal equations: with the
weighted residuals ``r`` and their Jacobian ``J`` over the free vector, ``χ² = rᵀr``, the
gradient ``g = Jᵀr`` and the Gauss-Newton matrix ``A = JᵀJ``. A damped step solves
``(A + λ diag(D)) δ = -g``, with ``D`` the largest diagonal of ``A`` seen so far
(Marquardt's scaling, as in MINPACK).

How the normal equations are formed and solved depends on the problem. A model hands
:func:`levenberg_marquardt` a *system* (:class:`NormalEquations`):

* ``linearize(x)``: residuals and Jacobian at ``x`` in one pass, reduced to a
  :class:`Linearization` (χ², ``g``, the diagonal of ``A`` and whatever the system keeps
  for its steps);
* ``step(lin, lam, D)``: the damped step;
* ``chi2(x)``: χ² alone (``inf`` where the model cannot be evaluated);
* optionally ``curvature_secant(old, new)`` and a ``curvature`` argument of ``step`` (below).

:class:`DenseNormalEquations` is the system of a dense Jacobian (what
:func:`~sciTie.fit_least_squares` uses with ``method="marquardt"``). The parametric series
refinement hands this loop its block-arrow system (Schur complement on the shared block,
the blocks computed in this process or on a Dask cluster), so joint, sequential and
parametric refinement run one Levenberg-Marquardt.

The loop updates λ from the ratio of actual to predicted χ² decrease (Nielsen's rule), keeps
the free parameters inside their bounds by projection, evaluates the Jacobian together with
the residuals where a step is expected to succeed (one pass instead of two), and stops when
the next step is predicted to lower χ² by less than ``ftol·χ²`` (that step is not
evaluated), when an accepted step did, when the scaled step falls below ``xtol``, when the
scaled gradient falls below ``gtol``, or when no damping lowers χ² any more.

Gauss-Newton's ``A`` leaves out the second-order part of the Hessian of χ²/2,
``S = Σ rᵢ ∇²rᵢ``. Where the residuals stay of the order of the noise, as in every fit to
counting data, ``S`` matters along poorly determined directions (a minor phase's cell): there
Gauss-Newton steps overshoot, alternate in sign and converge only linearly. A system that
offers ``curvature_secant`` lets the loop build ``S`` from the steps it takes (the
structured secant update of Dennis, Gay and Welsch's NL2SOL: ``S s = (J₊ - J)ᵀ r₊`` along
each accepted step ``s``, sized down where it overestimates) and solve
``(A + S + λD) δ = -g`` whenever the augmented model predicted the last step better than
Gauss-Newton did. The covariance is still computed from ``A`` at the end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

__all__ = ["Linearization", "NormalEquations", "DenseNormalEquations", "MarquardtResult",
           "levenberg_marquardt", "damped", "cholesky"]


@dataclass
class Linearization:
    """A least-squares problem linearised at one point.

    Attributes
    ----------
    chi2 : float
        ``rᵀr`` at the point.
    gradient : ndarray
        ``Jᵀr`` over the free vector.
    diagonal : ndarray
        The diagonal of ``JᵀJ``.
    n : int
        Number of residuals.
    state : Any
        What the system keeps to solve steps at this point (the normal matrix, blocks ...).
    """

    chi2: float
    gradient: np.ndarray
    diagonal: np.ndarray
    n: int
    state: Any = None


class NormalEquations(Protocol):
    """What :func:`levenberg_marquardt` asks of a problem (see the module docstring)."""

    def linearize(self, x: np.ndarray) -> Linearization: ...

    def step(self, lin: Linearization, lam: float, D: np.ndarray) -> np.ndarray: ...

    def chi2(self, x: np.ndarray) -> float: ...


def damped(A: np.ndarray, D: np.ndarray, lam: float) -> np.ndarray:
    """``A + λ diag(D)`` (a copy)."""
    out = np.array(A, dtype=np.float64, copy=True)
    out[np.diag_indices_from(out)] += lam * D
    return out


def cholesky(A: np.ndarray):
    """Cholesky factor of a symmetric matrix for :func:`scipy.linalg.cho_solve`; a matrix
    that is not positive definite (a parameter without information) gets a ridge of 1e-12
    of its largest diagonal."""
    try:
        return cho_factor(A, lower=True, check_finite=False)
    except LinAlgError:
        ridge = 1e-12 * max(float(np.max(np.abs(np.diag(A)))), 1e-300)
        return cho_factor(A + ridge * np.eye(len(A)), lower=True, check_finite=False)


class DenseNormalEquations:
    """The normal equations of a dense Jacobian.

    Parameters
    ----------
    residual : callable
        ``residual(x) -> r`` (1-D) over the free vector.
    jacobian : callable
        ``jacobian(x) -> J`` (dense, residuals x free parameters). :meth:`linearize` asks for
        it before the residual at the same point, so a model that computes both in one pass
        can keep the residual for the call that follows.
    """

    def __init__(self, residual: Callable[[np.ndarray], np.ndarray],
                 jacobian: Callable[[np.ndarray], np.ndarray]) -> None:
        self.residual = residual
        self.jacobian = jacobian

    def linearize(self, x: np.ndarray) -> Linearization:
        J = np.asarray(self.jacobian(x), dtype=np.float64)
        r = np.asarray(self.residual(x), dtype=np.float64)
        A = J.T @ J
        return Linearization(float(r @ r), J.T @ r, np.diag(A).copy(), int(r.size),
                             state={"A": A, "J": J, "r": r})

    def step(self, lin: Linearization, lam: float, D: np.ndarray,
             curvature: np.ndarray | None = None) -> np.ndarray:
        """``-(A + curvature + λD)⁻¹ g``; Gauss-Newton's ``A`` alone where the augmented
        matrix is not positive definite."""
        A = lin.state["A"]
        if curvature is not None:
            try:
                f = cho_factor(damped(A + curvature, D, lam), lower=True, check_finite=False)
                return cho_solve(f, -lin.gradient, check_finite=False)
            except LinAlgError:
                pass
        return cho_solve(cholesky(damped(A, D, lam)), -lin.gradient, check_finite=False)

    def chi2(self, x: np.ndarray) -> float:
        r = np.asarray(self.residual(x), dtype=np.float64)
        value = float(r @ r)
        return value if np.isfinite(value) else float("inf")

    def curvature_secant(self, old: Linearization, new: Linearization) -> np.ndarray:
        """``(J₊ - J)ᵀ r₊``: the second-order part of the Hessian applied to the step from
        ``old`` to ``new`` (to first order)."""
        return (new.state["J"] - old.state["J"]).T @ new.state["r"]


@dataclass
class MarquardtResult:
    """Outcome of :func:`levenberg_marquardt`.

    Attributes
    ----------
    x : ndarray
        The free vector reached.
    chi2 : float
    linearization : Linearization
        The system linearised at ``x`` (for the covariance).
    nfev, njev : int
        Evaluations of the model, and how many of them included the Jacobian.
    success : bool
        False when the evaluation budget ran out first.
    status : int
        1 converged (ftol), 2 (xtol), 3 (gtol), 4 no damping lowers χ², 0 budget.
    message : str
    active_mask : ndarray of int
        -1 / +1 where a free parameter ends at its lower / upper bound, else 0.
    history : list of dict
        χ², λ and elapsed seconds at the start and after every accepted step.
    """

    x: np.ndarray
    chi2: float
    linearization: Linearization
    nfev: int
    njev: int
    success: bool
    status: int
    message: str
    active_mask: np.ndarray
    history: list = field(default_factory=list)


#: Damping beyond which no step is tried any more (relative to Marquardt's scaling).
_LAMBDA_MAX = 1e16


class _Curvature:
    """The secant estimate of ``S`` (see the module docstring) and which model to use."""

    def __init__(self, n: int) -> None:
        self.S = np.zeros((n, n))
        self.use = False

    def update(self, old: Linearization, new: Linearization, step: np.ndarray,
               S_step: np.ndarray, actual: float, predicted: float | None) -> None:
        """Dennis-Gay-Welsch update along ``step`` with ``S_step = (J₊ - J)ᵀ r₊``; then
        choose the model (with or without ``S``) that predicted the ``actual`` decrease
        better (``predicted``: what the model used predicted; None for a projected step)."""
        S = self.S
        sSs = float(step @ S @ step)
        if predicted is not None:
            gauss, augmented = ((predicted + sSs, predicted) if self.use
                                else (predicted, predicted - sSs))
            self.use = abs(actual - augmented) < abs(actual - gauss)
        if sSs > 0:                      # sizing: never more curvature than observed
            S *= min(1.0, abs(float(step @ S_step)) / sSs)
        y = new.gradient - old.gradient
        ys = float(y @ step)
        if ys > 0:
            w = S_step - S @ step
            S += ((np.outer(w, y) + np.outer(y, w)) / ys
                  - float(w @ step) * np.outer(y, y) / ys ** 2)


def levenberg_marquardt(system: NormalEquations, x0: Any, *, lower: Any = None,
                        upper: Any = None, ftol: float = 1e-8, xtol: float = 1e-8,
                        gtol: float = 1e-8, max_nfev: int | None = None,
                        lambda0: float = 1e-2,
                        callback: Callable[[dict], None] | None = None) -> MarquardtResult:
    """Minimise χ² of ``system`` from ``x0`` by Levenberg-Marquardt (see the module docstring).

    Parameters
    ----------
    system : NormalEquations
    x0 : array_like
        Starting free vector (inside the bounds).
    lower, upper : array_like, optional
        Bounds of the free parameters (steps are projected onto them).
    ftol : float
        Stop when the next step is predicted to lower χ² by at most ``ftol·χ²``, or when an
        accepted step lowered it (actually and as predicted) by at most that.
    xtol : float
        Stop when ``‖√D·δ‖ <= xtol (xtol + ‖√D·x‖)`` for an accepted step.
    gtol : float
        Stop when every scaled gradient entry ``|g_i| / √(A_ii χ²)`` is at most ``gtol``.
    max_nfev : int, optional
        Most model evaluations (default ``100 · (n_free + 1)``).
    lambda0 : float
        Starting damping, relative to the diagonal of ``A``. The default damps the first
        steps enough that a start whose peaks sit off by about their width is not carried
        over a neighbouring minimum: with 1e-3 the 7 K CuCr2O4 refinement's
        displacement/broadening stage jumps to the minimum with b and c swapped
        (χ² 2766 instead of 2558, where 'trf' and 'lm' end).
    callback : callable, optional
        Called with the history entry after every accepted step.

    Returns
    -------
    MarquardtResult
    """
    x = np.array(x0, dtype=np.float64, copy=True)
    n_free = x.size
    lo = np.full(n_free, -np.inf) if lower is None else np.asarray(lower, dtype=np.float64)
    hi = np.full(n_free, np.inf) if upper is None else np.asarray(upper, dtype=np.float64)
    budget = 100 * (n_free + 1) if max_nfev is None else int(max_nfev)
    secant = getattr(system, "curvature_secant", None)
    curvature = _Curvature(n_free) if secant is not None else None
    t0 = time.perf_counter()
    lin = system.linearize(x)
    nfev = njev = 1
    chi2 = float(lin.chi2)
    D = np.where(lin.diagonal > 0, lin.diagonal, 1.0)
    lam, nu = float(lambda0), 2.0
    eager = True            # evaluate the next trial with its Jacobian (one pass)
    history = [{"chi2": chi2, "lambda": lam, "seconds": 0.0}]
    status, message = 0, "the evaluation budget (max_nfev) ran out"
    while nfev < budget:
        scale = np.sqrt(np.maximum(lin.diagonal, 0.0) * max(chi2, 1e-300))
        with np.errstate(divide="ignore", invalid="ignore"):
            gnorm = np.where(scale > 0, np.abs(lin.gradient) / scale, 0.0)
        if not gnorm.size or float(gnorm.max()) <= gtol:
            status, message = 3, "the scaled gradient is below gtol"
            break
        if curvature is not None and curvature.use:
            dx = system.step(lin, lam, D, curvature=curvature.S)
        else:
            dx = system.step(lin, lam, D)
        dx = np.asarray(dx, dtype=np.float64)
        # predicted decrease: (M + λD)δ = -g gives δᵀMδ = -gᵀδ - λδᵀDδ for the model matrix M
        predicted = float(-lin.gradient @ dx + lam * (dx * D) @ dx)
        xn = np.clip(x + dx, lo, hi)
        projected = not np.array_equal(xn, x + dx)
        if not projected and predicted <= ftol * chi2:
            status, message = 1, "the predicted chi-square decrease is below ftol"
            break
        new = None
        if eager:
            try:
                new = system.linearize(xn)
                chi2n = float(new.chi2) if np.isfinite(new.chi2) else np.inf
            except (FloatingPointError, ValueError, ArithmeticError):
                chi2n = np.inf
            njev += 1
        else:
            chi2n = float(system.chi2(xn))
        nfev += 1
        if not chi2n < chi2:
            lam *= nu
            nu *= 2.0
            eager = False
            if lam > _LAMBDA_MAX:
                status, message = 4, "no step lowers chi-square (converged)"
                break
            continue
        actual = chi2 - chi2n
        model = None if projected else predicted
        if projected:
            predicted = max(predicted, actual)
        rho = actual / predicted if predicted > 0 else 1.0
        step = xn - x
        step_norm = float(np.linalg.norm(np.sqrt(D) * step))
        x_norm = float(np.linalg.norm(np.sqrt(D) * xn))
        if new is None:
            new = system.linearize(xn)
            nfev += 1
            njev += 1
        if curvature is not None:
            curvature.update(lin, new, step, secant(lin, new), actual, model)
        x, lin, chi2 = xn, new, float(new.chi2)
        np.maximum(D, lin.diagonal, out=D)
        lam = max(lam * max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), 1e-15)
        nu = 2.0
        eager = rho > 0.25
        entry = {"chi2": chi2, "lambda": lam, "seconds": time.perf_counter() - t0}
        history.append(entry)
        if callback is not None:
            callback(entry)
        if actual <= ftol * (chi2 + actual) and predicted <= ftol * (chi2 + actual):
            status, message = 1, "the relative chi-square decrease is below ftol"
            break
        if step_norm <= xtol * (xtol + x_norm):
            status, message = 2, "the scaled step is below xtol"
            break
    active = np.where(x <= lo, -1, np.where(x >= hi, 1, 0)).astype(int)
    return MarquardtResult(x=x, chi2=chi2, linearization=lin, nfev=nfev, njev=njev,
                           success=status > 0, status=status, message=message,
                           active_mask=active, history=history)
