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

from ..errors import ValidationError
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
    c = group._compiled()
    x = c.pack() if free is None else np.array(free, dtype=np.float64)
    cols = np.arange(c.n_free) if columns is None else np.asarray(columns, dtype=np.intp)
    lo, hi = c.slot_lower[c.free_idx][cols], c.slot_upper[c.free_idx][cols]

    def evaluate(xx: np.ndarray):
        try:
            slots = c.evaluate(xx)
        except ValueError:  # an expression left its domain
            return -np.inf, None, None
        return objective(slots)

    f, g, H = evaluate(x)
    if not np.isfinite(f):
        raise ValidationError(f"the starting point is outside the objective's domain "
                              f"(value {f}); start from valid parameters")
    if cols.size == 0:
        return x, MaximizeInfo(float(f), 0, True, 0.0)
    converged, it, gnorm = False, 0, np.inf
    for it in range(1, max_iter + 1):
        G = c.tie_matrix(x)[:, cols]
        g_free = np.asarray(G.T @ g).ravel()
        Hs = sp.csr_matrix(H) if not sp.issparse(H) else H.tocsr()
        H_free = np.asarray((G.T @ (Hs @ G)).todense()) if sp.issparse(G) else G.T @ Hs @ G
        H_free = 0.5 * (H_free + H_free.T)
        gnorm = float(np.max(np.abs(g_free)))
        step = _newton_step(H_free, g_free)
        decrement = float(g_free @ step)
        tiny_step = np.max(np.abs(step) / np.maximum(np.abs(x[cols]), 1.0)) <= 4 * np.finfo(float).eps
        if not np.isfinite(decrement) or decrement <= 0.0 or tiny_step:
            converged = True  # at machine precision: Newton's next step would change nothing
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
