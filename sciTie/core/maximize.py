"""Maximise an objective written in slots over the free parameters, through the tie map.

This is the EM row of the tying design: an M-step maximises
``Q(free) = Σ_k Q_k(slots_k)`` with ``slots = G·free + offset``. Its gradient is ``Gᵀ ∇Q`` and
its Hessian ``Gᵀ H G`` (exact for linear ties; for expression constraints ``G`` is the local
linearisation and the step is a Gauss-Newton / ECM step). A damped Newton iteration with a
backtracking line search only ever accepts steps that increase ``Q``, so EM built on it stays
monotone even when the iteration is stopped early, and at convergence ``Gᵀ ∇Q = 0``: the exact
maximiser under the ties.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from .._validation import check_int
from ..errors import ArgumentTypeError, ValidationError
from .group import ParameterGroup

__all__ = ["SlotObjective", "maximize_through_ties", "MaximizeInfo"]

#: ``objective(slots) -> (value, gradient, hessian)``; value -inf (or NaN) outside the domain.
SlotObjective = Callable[[np.ndarray], tuple[float, np.ndarray, "sp.spmatrix | np.ndarray"]]


@dataclass
class MaximizeInfo:
    """How :func:`maximize_through_ties` ended."""

    value: float
    n_iter: int
    converged: bool
    gradient_norm: float


def maximize_through_ties(group: ParameterGroup, objective: SlotObjective, *,
                          columns: Sequence[int] | None = None, free: np.ndarray | None = None,
                          max_iter: int = 100) -> tuple[np.ndarray, MaximizeInfo]:
    """Maximise ``objective(slots)`` over the free parameters ``columns`` of ``group``.

    Parameters
    ----------
    group : ParameterGroup
        Defines ``slots = G·free + offset`` (and constraints).
    objective : callable
        ``objective(slots) -> (value, grad, hess)`` with ``grad`` of shape ``(n_slots,)``
        and ``hess`` ``(n_slots, n_slots)`` (sparse or dense), both with respect to slots.
        Return ``-inf`` for slots outside the objective's domain (a negative variance...).
    columns : sequence of int, optional
        Which free parameters move (default: all); the others stay at ``free``.
    free : ndarray, optional
        Starting free vector (default: the group's current values). Must be in the domain.
    max_iter : int, optional
        Newton iterations at most (it stops earlier when a step no longer changes the
        parameters at machine precision).

    Returns
    -------
    free : ndarray
        The maximiser (the full free vector).
    info : MaximizeInfo
    """
    if not isinstance(group, ParameterGroup):
        raise ArgumentTypeError(f"group must be a ParameterGroup, got {type(group).__name__}")
    if not callable(objective):
        raise ArgumentTypeError(f"objective must be callable (slots -> (value, gradient, "
                                f"hessian)), got {type(objective).__name__}")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    c = group.tie_map()
    n_slots = len(c.names)
    x = c.pack() if free is None else _free_vector(free, c.n_free)
    cols = np.arange(c.n_free) if columns is None else _columns(columns, c.n_free)
    lo, hi = c.lower[c.free_index][cols], c.upper[c.free_index][cols]

    def evaluate(xx: np.ndarray):
        try:
            slots = c.evaluate(xx)
        except ValueError:  # an expression left its domain
            return -np.inf, None, None
        return _checked_objective(objective(slots), n_slots)

    f, g, H = evaluate(x)
    if not np.isfinite(f):
        raise ValidationError(f"the starting point is outside the objective's domain "
                              f"(value {f}); start from valid parameters")
    if cols.size == 0:
        return x, MaximizeInfo(float(f), 0, True, 0.0)
    converged, it, gnorm = False, 0, np.inf
    fixed_G = c.matrix()[:, cols] if c.is_linear else None  # linear ties: G never changes
    dense_G = None
    for it in range(1, max_iter + 1):
        G = fixed_G if fixed_G is not None else c.matrix(x)[:, cols]
        g_free = np.asarray(G.T @ g).ravel()
        if sp.issparse(H):
            H_free = np.asarray((G.T @ (H.tocsr() @ G)).todense())
        else:  # a dense Hessian (small models): dense algebra throughout
            Gd = dense_G if dense_G is not None else G.toarray()
            if fixed_G is not None:
                dense_G = Gd
            H_free = Gd.T @ np.asarray(H) @ Gd
        H_free = 0.5 * (H_free + H_free.T)
        gnorm = float(np.max(np.abs(g_free)))
        step = _newton_step(H_free, g_free)
        decrement = float(g_free @ step)
        tiny_step = np.max(np.abs(step) / np.maximum(np.abs(x[cols]), 1.0)) <= 4 * np.finfo(float).eps
        if not np.isfinite(decrement) or decrement <= 0.0 or tiny_step:
            converged = True  # at machine precision: Newton's next step would change nothing
            break
        rounding = 8 * np.finfo(float).eps * max(1.0, abs(f))
        if decrement <= rounding:
            # the gain is below the rounding of Q, so no line search can see it: this last
            # Newton step is taken as it is (it still halves the digits that are wrong)
            xt = x.copy()
            xt[cols] = np.clip(xt[cols] + step, lo, hi)
            ft, gt, Ht = evaluate(xt)
            if np.isfinite(ft) and ft >= f - rounding:
                x, f = xt, ft
            converged = True
            break
        # stay strictly inside the bounds of the free parameters
        t = 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            to_hi = np.where(step > 0, (hi - x[cols]) / step, np.inf)
            to_lo = np.where(step < 0, (lo - x[cols]) / step, np.inf)
        t_max = float(np.min(np.concatenate([to_hi, to_lo, [np.inf]])))
        if t_max < 1.0:
            t = 0.99 * t_max
        accepted = False
        # below this predicted gain the change of Q is lost in its rounding: accept a step
        # that does not measurably decrease Q (the gradient still says where the top is)
        rounding = 8 * np.finfo(float).eps * max(1.0, abs(f))
        for _ in range(60):
            xt = x.copy()
            xt[cols] += t * step
            ft, gt, Ht = evaluate(xt)
            if np.isfinite(ft) and (ft >= f + 1e-4 * t * decrement
                                    or (decrement < 1e3 * rounding and ft >= f - rounding)):
                accepted = True
                break
            t *= 0.5
        if not accepted:  # no increase representable at this precision: we are there
            converged = decrement <= 1e-8 * max(1.0, abs(f))
            break
        x, f, g, H = xt, ft, gt, Ht
    return x, MaximizeInfo(float(f), it, converged, gnorm)


def _free_vector(free, n_free: int) -> np.ndarray:
    try:
        x = np.array(free, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"free must be {n_free} numbers, got {free!r}") from None
    if x.shape != (n_free,) or not np.all(np.isfinite(x)):
        raise ValidationError(f"free must be {n_free} finite numbers (the group's free vector), "
                              f"got shape {x.shape}")
    return x


def _columns(columns, n_free: int) -> np.ndarray:
    cols = np.asarray(columns)
    if cols.ndim != 1 or (cols.size and not np.issubdtype(cols.dtype, np.integer)):
        raise ValidationError(f"columns must be a 1-D list of integer column indices of the "
                              f"free vector, got {np.asarray(columns).tolist()}")
    cols = cols.astype(np.intp)
    if np.any(cols < 0) or np.any(cols >= n_free) or len(set(cols.tolist())) != cols.size:
        raise ValidationError(f"columns must be distinct indices in 0..{n_free - 1}, got "
                              f"{cols.tolist()}")
    return cols


def _checked_objective(out, n_slots: int):
    """``(value, gradient, hessian)`` with the shapes the iteration relies on."""
    if not isinstance(out, tuple) or len(out) != 3:
        raise ValidationError(f"objective must return (value, gradient, hessian), got "
                              f"{type(out).__name__}")
    f, g, H = out
    f = float(f)
    if not np.isfinite(f):  # outside the domain: the line search steps back
        return -np.inf, None, None
    g = np.asarray(g, dtype=np.float64)
    if g.shape != (n_slots,):
        raise ValidationError(f"objective's gradient must have shape ({n_slots},) (one entry "
                              f"per slot), got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValidationError(f"objective's gradient is not finite where its value is {f:g}; "
                              "return -inf for points outside the domain")
    if getattr(H, "shape", None) != (n_slots, n_slots):
        raise ValidationError(f"objective's hessian must have shape ({n_slots}, {n_slots}), got "
                              f"{getattr(H, 'shape', type(H).__name__)}")
    return f, g, H


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Ascent step solving ``(-H + λ D) s = g`` with the least damping that is positive."""
    A = -H
    diag = np.abs(np.diag(A)).copy()
    diag[diag == 0] = 1.0
    lam = 0.0
    for _ in range(40):
        try:
            L = np.linalg.cholesky(A + lam * np.diag(diag))
            return np.linalg.solve(L.T, np.linalg.solve(L, g))
        except np.linalg.LinAlgError:
            lam = 1e-10 if lam == 0.0 else lam * 10.0
    return g / diag  # pragma: no cover - gradient ascent as the last resort
