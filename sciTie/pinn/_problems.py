"""PDE problems: residual, domain, initial condition and (optional) reference solution."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ._etdrk4 import etdrk4_solve, fourier_interpolate
from ._fields import Fields

__all__ = ["PDEProblem", "convection", "allen_cahn", "semilinear_reference"]


def _interval(value: Any, what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a pair of numbers (start, end); got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValueError(f"{what} must be finite with end > start (a positive length); "
                         f"got {(lo, hi)!r}")
    return lo, hi


@dataclass
class PDEProblem:
    """A 1-D time-dependent PDE with periodic boundary conditions in ``x``.

    Parameters
    ----------
    residual : callable
        ``residual(f) -> tensor`` of shape ``(n,)``: the PDE residual from a :class:`Fields`
        object (``f.u``, ``f.u_t``, ``f.u_x``, ``f.u_xx``, ..., ``f.x``, ``f.t``).
    initial : callable
        ``initial(x) -> u(x, t0)`` on a numpy array.
    domain_x : (float, float)
        One period ``[a, b]``; the period is ``b - a`` (> 0).
    domain_t : (float, float)
        Time interval ``[t0, T]``.
    reference : callable, optional
        ``reference(x, t) -> array (len(t), len(x))``: the true solution on a grid, used for
        error reporting only.
    name : str, optional
        Label used in results.
    parameters : dict, optional
        PDE coefficients, recorded in the result attributes.
    reference_source : str, optional
        Provenance of the reference solution.
    """

    residual: Callable[[Fields], torch.Tensor]
    initial: Callable[[np.ndarray], np.ndarray]
    domain_x: tuple[float, float]
    domain_t: tuple[float, float] = (0.0, 1.0)
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    name: str = "pde"
    parameters: dict[str, float] = field(default_factory=dict)
    reference_source: str = ""

    def __post_init__(self) -> None:
        if not callable(self.residual):
            raise TypeError(f"residual must be callable; got {type(self.residual).__name__}")
        if not callable(self.initial):
            raise TypeError(f"initial must be callable; got {type(self.initial).__name__}")
        if self.reference is not None and not callable(self.reference):
            raise TypeError(f"reference must be callable or None; got "
                            f"{type(self.reference).__name__}")
        self.domain_x = _interval(self.domain_x, "domain_x (the period interval)")
        self.domain_t = _interval(self.domain_t, "domain_t")

    @property
    def period(self) -> float:
        """The spatial period ``b - a``."""
        return self.domain_x[1] - self.domain_x[0]


def convection(beta: float = 30.0) -> PDEProblem:
    """``u_t + beta u_x = 0`` on ``[0, 2 pi] x [0, 1]``, ``u(x, 0) = sin x``.

    The reference is the exact solution ``sin(x - beta t)``.

    Parameters
    ----------
    beta : float, optional
        Advection speed (default 30).

    Returns
    -------
    PDEProblem
    """
    beta = float(beta)
    if not math.isfinite(beta):
        raise ValueError(f"beta must be finite; got {beta!r}")

    def residual(f: Fields) -> torch.Tensor:
        return f.u_t + beta * f.u_x

    def reference(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.sin(np.asarray(x)[None, :] - beta * np.asarray(t)[:, None])

    return PDEProblem(residual, np.sin, (0.0, 2.0 * math.pi), (0.0, 1.0), reference,
                      name="convection", parameters={"beta": beta},
                      reference_source="exact solution u = sin(x - beta t)")


def semilinear_reference(linear: Callable[[np.ndarray], np.ndarray],
                         nonlinear: Callable[[np.ndarray], np.ndarray],
                         initial: Callable[[np.ndarray], np.ndarray], domain_x: Sequence[float],
                         domain_t: Sequence[float] = (0.0, 1.0), *, n_points: int = 2048,
                         dt: float = 1e-3) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A ``reference(x, t)`` function backed by the ETDRK4 spectral solver.

    Solutions are computed on first use for each time grid and cached. Times must form an
    equally spaced grid from ``domain_t[0]`` (the snapshots then fall exactly on solver steps);
    values in ``x`` use the trigonometric interpolant, so any ``x`` is allowed.

    Parameters
    ----------
    linear, nonlinear : callable
        Fourier symbol ``L(k)`` and physical-space ``N(u)`` (see :func:`etdrk4_solve`).
    initial : callable
        ``u(x, t0)``.
    domain_x, domain_t : (float, float)
        Period interval and time interval.
    n_points : int, optional
        Spectral grid size (default 2048).
    dt : float, optional
        Largest time step (default 1e-3).

    Returns
    -------
    callable
        ``reference(x, t) -> array (len(t), len(x))``.
    """
    a, b = _interval(domain_x, "domain_x")
    t0, _ = _interval(domain_t, "domain_t")

    @lru_cache(maxsize=4)
    def solve(t_final: float, n_snap: int) -> np.ndarray:
        return etdrk4_solve(linear, nonlinear, initial, domain=(a, b), t_final=t_final,
                            n_points=n_points, dt=dt, n_snapshots=n_snap)["u"].values

    def reference(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float).ravel() - t0
        if t.size < 2 or abs(t[0]) > 1e-12 or not np.allclose(
                np.diff(t), t[-1] / (t.size - 1), rtol=1e-9, atol=1e-12):
            raise ValueError("reference times must be an equally spaced grid starting at "
                             f"t0={t0} with at least 2 points")
        snaps = solve(round(float(t[-1]), 12), int(t.size))
        out = fourier_interpolate(snaps, a, b - a, np.asarray(x, dtype=float))
        out[0] = initial(np.asarray(x, dtype=float))
        return out

    return reference


def allen_cahn(eps: float = 1e-4, gamma: float = 5.0, *, n_points: int = 2048,
               dt: float = 1e-3) -> PDEProblem:
    """Allen-Cahn ``u_t - eps u_xx + gamma u^3 - gamma u = 0`` on ``[-1, 1] x [0, 1]``.

    Initial condition ``u(x, 0) = x^2 cos(pi x)``; the reference comes from the ETDRK4
    Fourier-spectral solver (:func:`etdrk4_solve`).

    Parameters
    ----------
    eps : float, optional
        Diffusion coefficient (default 1e-4).
    gamma : float, optional
        Reaction coefficient (default 5).
    n_points : int, optional
        Spectral grid size of the reference (default 2048).
    dt : float, optional
        Time step of the reference (default 1e-3).

    Returns
    -------
    PDEProblem
    """
    eps, gamma = float(eps), float(gamma)
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a non-negative finite number; got {eps!r}")

    def residual(f: Fields) -> torch.Tensor:
        u = f.u
        return f.u_t - eps * f.u_xx + gamma * u ** 3 - gamma * u

    def initial(x: np.ndarray) -> np.ndarray:
        return x ** 2 * np.cos(np.pi * x)

    ref = semilinear_reference(lambda k: -eps * k ** 2, lambda u: gamma * (u - u ** 3), initial,
                               (-1.0, 1.0), (0.0, 1.0), n_points=n_points, dt=dt)
    return PDEProblem(residual, initial, (-1.0, 1.0), (0.0, 1.0), ref, name="allen-cahn",
                      parameters={"eps": eps, "gamma": gamma},
                      reference_source=f"ETDRK4 Fourier spectral, {n_points} points, dt={dt}")
