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
import scipy.linalg
import scipy.sparse as sp

from .._validation import check_int
from ..errors import ArgumentTypeError, ValidationError
from .group import ParameterGroup

__all__ = ["SlotObjective", "maximize_through_ties", "MaximizeInfo"]

#: Consecutive shortened steps towards the same bound, each covering at least 1/CREEP_REACH
#: of the way left to it, after which that parameter is held where it is (the objective rises
#: without a maximum towards a bound where it is not defined).
CREEP_LIMIT = 10
CREEP_REACH = 20.0
#: A predicted gain below this fraction of the objective that stops shrinking (at least by
#: half per step) for STALL_LIMIT steps ends the iteration (see the loop).
STALL_GAIN = 1e-8
STALL_LIMIT = 5
#: Consecutive steps accepted only because their gain is below the rounding of the objective
#: after which the maximum is taken as reached (see the loop).
BLIND_LIMIT = 3

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
        evaluate.slots = slots  # of the last point with a value (its dependent slots)
        return _checked_objective(objective(slots), n_slots)

    f, g, H = evaluate(x)
    if not np.isfinite(f):
        raise ValidationError(f"the starting point is outside the objective's domain "
                              f"(value {f}); start from valid parameters")
    if cols.size == 0:
        return x, MaximizeInfo(float(f), 0, True, 0.0)
    converged, it, gnorm = False, 0, np.inf
    fixed_G = c.matrix()[:, cols] if c.is_linear else None  # linear ties: G never changes
    fixed_GT = fixed_G.T.tocsr() if fixed_G is not None else None
    dense_G = None
    creeping, last_limit = 0, -1
    held = np.zeros(cols.size, dtype=bool)  # parameters found creeping towards a bound
    # Dependent slots with bounds (a probability that is 1 - the sum of the others): their
    # bounds are constraints on the free vector, held like the free parameters' own (an
    # active set) through the rows of G that compute them (linearised for nonlinear ties).
    dep = _dependent_bounded_slots(c, fixed_G if fixed_G is not None else c.matrix(x)[:, cols])
    dep_lo, dep_hi = c.lower[dep], c.upper[dep]
    slots_now = evaluate.slots
    held_dep = np.zeros(dep.size, dtype=bool)
    fixed_dep_G = None  # their rows of G, formed once for linear ties
    n_cols = cols.size
    stalled, last_decrement, blind = 0, np.inf, 0
    for it in range(1, max_iter + 1):
        if fixed_G is not None:
            G = fixed_G
        elif sp.issparse(H):
            G = c.matrix(x)[:, cols]
        else:  # a dense Hessian: G linearised at x straight into a dense array
            G = c.dense_matrix(x)[:, cols]
        GT = fixed_GT if fixed_GT is not None else G.T
        g_free = np.asarray(GT @ g).ravel()
        if sp.issparse(H):
            H_free = np.asarray((GT @ (H.tocsr() @ G)).todense())
        else:  # a dense Hessian (small models): dense algebra throughout
            Gd = dense_G if dense_G is not None else _dense(G)
            if fixed_G is not None:
                dense_G = Gd
            H_free = Gd.T @ np.asarray(H) @ Gd
        H_free = 0.5 * (H_free + H_free.T)
        # a parameter on its bound whose gradient points outwards stays there (its maximum
        # under the bound): the Newton step moves the others only. Without this a step
        # that leaves the box is cut to nothing and the iteration stalls on the bound.
        xc = x[cols]
        moving = ~(((xc <= lo) & (g_free < 0)) | ((xc >= hi) & (g_free > 0)) | held)
        if not np.any(moving):  # every parameter on its bound's maximum, or held
            converged, gnorm = not (np.any(held) or np.any(held_dep)), 0.0
            break
        if fixed_dep_G is None or fixed_G is None:  # the rows move with nonlinear ties
            fixed_dep_G = _dense(G[dep]) if dep.size else np.zeros((0, n_cols))
        dep_G = fixed_dep_G
        dep_now = slots_now[dep]
        edge = 8 * np.finfo(float).eps * (np.abs(dep_G) @ np.abs(xc) + 1.0)
        # the same for dependent slots: one on its bound that the step would push out of the
        # box is held there (the step keeps it constant), found by stepping once without it
        active = held_dep.copy()
        for _ in range(2):
            step, damped = _constrained_newton_step(H_free, g_free, moving, dep_G[active])
            if step is None:
                break
            dep_step = dep_G @ step
            outward = ~active & (((dep_now <= dep_lo + edge) & (dep_step < 0))
                                 | ((dep_now >= dep_hi - edge) & (dep_step > 0)))
            if not np.any(outward):
                break
            active |= outward
        if step is None:  # the held constraints leave nothing to move
            converged, gnorm = False, 0.0
            break
        dep_step[active] = 0.0  # zero up to rounding: those slots do not limit the step
        gnorm = float(np.max(np.abs(g_free[moving])))
        decrement = float(g_free @ step)
        tiny_step = np.max(np.abs(step) / np.maximum(np.abs(xc), 1.0)) <= 4 * np.finfo(float).eps
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
        with np.errstate(divide="ignore", invalid="ignore"):
            to_bound = np.where(step > 0, (hi - xc) / step,
                                np.where(step < 0, (lo - xc) / step, np.inf))
            to_dep_bound = np.where(dep_step > 0, (dep_hi - dep_now) / dep_step,
                                    np.where(dep_step < 0, (dep_lo - dep_now) / dep_step,
                                             np.inf))
        to_bound = np.maximum(np.concatenate([to_bound, to_dep_bound]), 0.0)
        limit = int(np.argmin(to_bound))  # >= n_cols: a dependent slot
        t_max = float(to_bound[limit])
        # the steps to try: the full step; where it leaves the box, first the step onto the
        # bound (the maximum may lie there: a probability with no counts), then 0.99 of it
        # (an objective that is -inf on the bound), then halvings
        if t_max < 1.0:
            trials = [t_max] + [0.99 * t_max * 0.5 ** i for i in range(60)]
        else:
            trials = [0.5 ** i for i in range(60)]
        accepted = False
        for t in trials:
            xt = x.copy()
            xt[cols] += t * step
            if t == t_max and limit < n_cols:  # land exactly on the bound, not inside it
                xt[cols[limit]] = hi[limit] if step[limit] > 0 else lo[limit]
            xt[cols] = np.clip(xt[cols], lo, hi)
            ft, gt, Ht = evaluate(xt)
            if not np.isfinite(ft):
                continue
            required = 1e-4 * t * decrement
            if ft > f and ft >= f + required:
                accepted, blind = True, 0
                break
            if ft >= f - rounding and (decrement < 1e3 * rounding or f + required == f):
                accepted, blind = True, blind + 1  # a gain below what Q can show
                break
        if not accepted:  # no increase representable at this precision: we are there
            converged = decrement <= 1e-8 * max(1.0, abs(f))
            break
        if np.array_equal(xt, x) or blind >= BLIND_LIMIT:
            # steps accepted at the rounding of Q that change nothing, or keep changing the
            # last digits (a probability held at 1 - sum of the others, whose maximum lies
            # below the spacing of floats near 1): Q is at its maximum to its precision.
            # A regular maximum needs at most two such steps before the decrement falls
            # below the rounding and the loop ends above.
            if not np.array_equal(xt, x):
                x, f = xt, ft
            converged = decrement < 1e3 * rounding
            break
        # an objective that grows without bound towards a bound it cannot reach (a variance
        # collapsing onto one point), or whose curvature is floored there (a probability of
        # 1e-157), is followed by shortened steps (cut at the bound, or damped) that each
        # cover a fixed share of the remaining way. After CREEP_LIMIT of them that parameter
        # is held where it is and the others go on: Q still rises at every step.
        approaching = (t < 1.0 or damped) and t < t_max <= CREEP_REACH * t
        creeping = creeping + 1 if (approaching and limit == last_limit) else 0
        last_limit = limit if approaching else -1
        x, f, g, H, slots_now = xt, ft, gt, Ht, evaluate.slots
        if creeping >= CREEP_LIMIT:
            if limit < n_cols:
                held[limit] = True
            else:
                held_dep[limit - n_cols] = True
            creeping, last_limit = 0, -1
        # Newton near a regular maximum at least halves the predicted gain at each step; a
        # gain already below 1e-8 of the objective that shrinks slower than that is a
        # direction the objective rises along without a maximum (the variance of a mixture
        # component that lost all its weight): following it changes nothing that matters
        stalled = stalled + 1 if (decrement < STALL_GAIN * max(1.0, abs(f))
                                  and decrement > 0.5 * last_decrement) else 0
        last_decrement = decrement
        if stalled >= STALL_LIMIT:
            break
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


def _dense(M) -> np.ndarray:
    """``M`` as an ndarray (G is dense already where the Hessian is, sparse elsewhere)."""
    return M if isinstance(M, np.ndarray) else M.toarray()


def _dependent_bounded_slots(c, G) -> np.ndarray:
    """Dependent slots that the moved columns (of ``G``) reach and that have a finite bound."""
    G = sp.csr_matrix(G)
    is_free = np.zeros(G.shape[0], dtype=bool)
    is_free[c.free_index] = True
    bounded = np.isfinite(c.lower) | np.isfinite(c.upper)
    return np.flatnonzero((np.diff(G.indptr) > 0) & ~is_free & bounded)


def _constrained_newton_step(H: np.ndarray, g: np.ndarray, moving: np.ndarray,
                             constraints: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """Newton's ascent step over the ``moving`` parameters (the others stay), keeping
    ``constraints @ step = 0`` (held dependent slots): the step is taken in the constraints'
    null space. None where that leaves no direction."""
    step = np.zeros_like(g)
    Hm, gm = H[np.ix_(moving, moving)], g[moving]
    C = constraints[:, moving]
    if C.shape[0] == 0 or not np.any(C):
        step[moving], damped = _newton_step(Hm, gm)
        return step, damped
    Z = scipy.linalg.null_space(C)
    if Z.shape[1] == 0:
        return None, False
    sz, damped = _newton_step(Z.T @ Hm @ Z, Z.T @ gm)
    step[moving] = Z @ sz
    return step, damped


def _newton_step(H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, bool]:
    """Ascent step solving ``(-H + λ D) s = g`` with the least damping that is positive,
    and whether it is damped (``λ > 0``).

    ``D`` is the diagonal of ``|H|``; ``λ`` is 0 where ``-H`` is positive definite, else the
    first of 1e-10, 1e-9, ... that makes it so (read from the smallest eigenvalue of the
    scaled matrix rather than found by one Cholesky attempt per candidate).
    """
    A = -H
    diag = np.abs(np.diag(A)).copy()
    diag[diag == 0] = 1.0
    scale = 1.0 / np.sqrt(diag)
    try:
        smallest = float(np.linalg.eigvalsh(A * np.outer(scale, scale))[0])
    except np.linalg.LinAlgError:  # not finite: the ladder below decides
        smallest = 0.0
    lam = 0.0
    if not smallest > 1e-12:
        lam = 1e-10
        while lam <= -smallest * (1.0 + 1e-6) + 1e-12 and lam < 1e30:
            lam *= 10.0
    for _ in range(40):
        try:
            L = np.linalg.cholesky(A + lam * np.diag(diag))
            return np.linalg.solve(L.T, np.linalg.solve(L, g)), lam > 0
        except np.linalg.LinAlgError:
            lam = 1e-10 if lam == 0.0 else lam * 10.0
    return g / diag, True  # pragma: no cover - gradient ascent as the last resort
