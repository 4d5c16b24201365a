"""PDE problems: residual, domains, periodicity, initial condition and reference solution."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import ValidationError
from ._etdrk4 import etdrk4_solve, fourier_interpolate
from ._fields import Fields, check_output_names

__all__ = ["PDEProblem", "convection", "allen_cahn", "semilinear_reference"]


def _interval(value: Any, what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a pair of numbers (start, end); got "
                              f"{value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValidationError(f"{what} must be finite with end > start (a positive length); "
                              f"got {(lo, hi)!r}")
    return lo, hi


@dataclass
class PDEProblem:
    """A time-dependent PDE in one or two space dimensions, periodic in some of them.

    Parameters
    ----------
    residual : callable
        ``residual(f) -> tensor`` of shape ``(n,)``, or a tuple/list of them (one per equation):
        the PDE residual from a :class:`Fields` object (``f.u``, ``f.u_t``, ``f.u_xx``, ...,
        ``f.x``, ``f.t``, and the coefficients ``f.parameters["beta"]``).
    initial : callable
        ``initial(x[, y]) -> u(x[, y], t0)`` on numpy arrays: an array (one output) or a dict
        ``{output: array}`` naming the outputs the initial condition prescribes.
    domain_x : (float, float)
        Interval of ``x``; for a periodic ``x`` one period ``[a, b]`` (period ``b - a``).
    domain_t : (float, float)
        Time interval ``[t0, T]``.
    reference : callable, optional
        ``reference(x[, y], t) -> array (len(t), len(x)[, len(y)])`` (or a dict per output): the
        true solution on a grid, used for error reporting and synthetic observations.
    name : str, optional
        Label used in results.
    parameters : dict, optional
        PDE coefficients, passed to the residual as ``f.parameters`` and recorded in results.
    reference_source : str, optional
        Provenance of the reference solution.
    domain_y : (float, float), optional
        Interval of a second spatial coordinate ``y``.
    periodic : sequence of str, optional
        The periodic coordinates (default: all spatial coordinates).
    periods : mapping of str to float, optional
        Period of a periodic coordinate when it differs from its interval's length (the
        interval is then the window where the equation is imposed; only the hard mode can
        represent such a period).
    outputs : sequence of str, optional
        Names of the unknown fields (default ``("u",)``; ``("u", "v", "p")`` for Navier-Stokes).
    boundary : callable, optional
        ``boundary(f) -> tensor`` (or a tuple of them): the boundary conditions on the faces
        of the non-periodic coordinates, evaluated at points on those faces (``f.y`` tells which
        face). Required when some spatial coordinate is not periodic.
    units : mapping of str to str, optional
        Units of coordinates and outputs (``{"x": "m", "u": "m/s"}``) for result files.
    scored : sequence of str, optional
        Outputs that enter the reported relative L2 error (default: all). Every output gets
        its own ``rel_l2_<name>`` as well.
    gauge : sequence of str, optional
        Outputs defined only up to a constant (pressure in incompressible flow): their errors
        are measured after removing the spatial mean at each time.
    """

    residual: Callable[[Fields], Any]
    initial: Callable[..., Any]
    domain_x: tuple[float, float]
    domain_t: tuple[float, float] = (0.0, 1.0)
    reference: Callable[..., Any] | None = None
    name: str = "pde"
    parameters: dict[str, float] = field(default_factory=dict)
    reference_source: str = ""
    domain_y: tuple[float, float] | None = field(default=None, kw_only=True)
    periodic: tuple[str, ...] | None = field(default=None, kw_only=True)
    periods: dict[str, float] | None = field(default=None, kw_only=True)
    outputs: tuple[str, ...] = field(default=("u",), kw_only=True)
    boundary: Callable[[Fields], Any] | None = field(default=None, kw_only=True)
    units: dict[str, str] = field(default_factory=dict, kw_only=True)
    scored: tuple[str, ...] | None = field(default=None, kw_only=True)
    gauge: tuple[str, ...] = field(default=(), kw_only=True)

    def __post_init__(self) -> None:
        for what in ("residual", "initial"):
            if not callable(getattr(self, what)):
                raise ValidationError(f"{what} must be callable; got "
                                      f"{type(getattr(self, what)).__name__}")
        for what in ("reference", "boundary"):
            value = getattr(self, what)
            if value is not None and not callable(value):
                raise ValidationError(f"{what} must be callable or None; got "
                                      f"{type(value).__name__}")
        self.domain_x = _interval(self.domain_x, "domain_x (the period interval)")
        self.domain_t = _interval(self.domain_t, "domain_t")
        if self.domain_y is not None:
            self.domain_y = _interval(self.domain_y, "domain_y")
        space = self.space
        periodic = space if self.periodic is None else self.periodic
        if isinstance(periodic, str):
            periodic = (periodic,)
        periodic = tuple(periodic)
        unknown = [c for c in periodic if c not in space]
        if unknown:
            raise ValidationError(f"periodic names unknown coordinate(s) {unknown}; the spatial "
                                  f"coordinates are {space}")
        self.periodic = periodic
        periods = dict(self.periods or {})
        for c, value in periods.items():
            if c not in periodic:
                raise ValidationError(f"periods gives a period for {c!r}, which is not a "
                                      f"periodic coordinate ({periodic})")
            try:
                value = float(value)
            except (TypeError, ValueError):
                value = float("nan")
            if not (math.isfinite(value) and value > 0):
                raise ValidationError(f"periods[{c!r}] must be a positive finite number; got "
                                      f"{periods[c]!r}")
            periods[c] = value
        self.periods = {c: periods.get(c, self.domain(c)[1] - self.domain(c)[0])
                        for c in periodic}
        self.outputs = check_output_names(self.outputs, self.coordinates)
        if self.boundary is None and len(periodic) < len(space):
            bounded = [c for c in space if c not in periodic]
            raise ValidationError(f"coordinate(s) {bounded} are not periodic: give boundary= "
                                  "(the boundary conditions on their faces)")
        if not isinstance(self.parameters, dict):
            raise ValidationError(f"parameters must be a dict; got "
                                  f"{type(self.parameters).__name__}")
        self.units = dict(self.units or {})
        for what in ("scored", "gauge"):
            value = getattr(self, what)
            if value is None:
                continue
            value = (value,) if isinstance(value, str) else tuple(value)
            bad = [o for o in value if o not in self.outputs]
            if bad or (what == "scored" and not value):
                raise ValidationError(f"{what} must name outputs of the problem "
                                      f"{self.outputs}; got {value!r}")
            setattr(self, what, value)
        if self.scored is None:
            self.scored = self.outputs

    @property
    def space(self) -> tuple[str, ...]:
        """The spatial coordinate names: ``("x",)`` or ``("x", "y")``."""
        return ("x",) if self.domain_y is None else ("x", "y")

    @property
    def coordinates(self) -> tuple[str, ...]:
        """All coordinate names, space first, then ``"t"``."""
        return (*self.space, "t")

    def domain(self, name: str) -> tuple[float, float]:
        """The interval of coordinate ``name``."""
        table = {"x": self.domain_x, "y": self.domain_y, "t": self.domain_t}
        if table.get(name) is None:
            raise ValidationError(f"unknown coordinate {name!r}; have {self.coordinates}")
        return table[name]

    @property
    def period(self) -> float:
        """The period of ``x`` (1-D problems)."""
        if "x" not in self.periods:
            raise ValidationError("x is not periodic in this problem")
        return self.periods["x"]

    def faces_match_period(self, name: str) -> bool:
        """Whether the period of ``name`` equals its interval (the faces are one period apart)."""
        lo, hi = self.domain(name)
        return math.isclose(self.periods[name], hi - lo, rel_tol=1e-12, abs_tol=0.0)

    def initial_values(self, *space: np.ndarray) -> dict[str, np.ndarray]:
        """The initial condition as ``{output: values}`` (validated: one finite value per point)."""
        n = np.asarray(space[0]).shape[0]
        out = self.initial(*space)
        if not isinstance(out, dict):
            if len(self.outputs) != 1:
                raise ValidationError(f"problem {self.name!r}: initial must return a dict "
                                      f"{{output: values}} for outputs {self.outputs}")
            out = {self.outputs[0]: out}
        values = {}
        for key, val in out.items():
            if key not in self.outputs:
                raise ValidationError(f"problem {self.name!r}: initial returned {key!r}, not one "
                                      f"of the outputs {self.outputs}")
            arr = np.asarray(val, dtype=float)
            if arr.shape != (n,):
                raise ValidationError(f"problem.initial must return one value per point; got "
                                      f"shape {arr.shape} for {n} points")
            if not np.all(np.isfinite(arr)):
                raise ValidationError(f"problem {self.name!r}: initial returned non-finite "
                                      "values")
            values[key] = arr
        if not values:
            raise ValidationError(f"problem {self.name!r}: initial prescribes no output")
        return values

    def reference_values(self, *axes: np.ndarray) -> dict[str, np.ndarray] | None:
        """The reference on a grid as ``{output: array (t, x[, y])}``, or None without one."""
        if self.reference is None:
            return None
        out = self.reference(*axes)
        if not isinstance(out, dict):
            out = {self.outputs[0]: out}
        shape = (len(axes[-1]), *(len(a) for a in axes[:-1]))
        values = {}
        for key, val in out.items():
            arr = np.asarray(val, dtype=float)
            if arr.shape != shape:
                raise ValidationError(f"problem {self.name!r}: reference returned shape "
                                      f"{arr.shape} for {key!r}; expected {shape} (t, space)")
            values[key] = arr
        return values


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
        raise ValidationError(f"beta must be finite; got {beta!r}")

    def residual(f: Fields) -> torch.Tensor:
        return f.u_t + f.parameters["beta"] * f.u_x

    def reference(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.sin(np.asarray(x)[None, :] - beta * np.asarray(t)[:, None])

    return PDEProblem(residual, np.sin, (0.0, 2.0 * math.pi), (0.0, 1.0), reference,
                      name="convection", parameters={"beta": beta},
                      reference_source="exact solution u = sin(x - beta t)")


def semilinear_reference(linear: Callable[..., np.ndarray],
                         nonlinear: Callable[[np.ndarray], np.ndarray],
                         initial: Callable[..., np.ndarray], domain_x: Sequence[float],
                         domain_t: Sequence[float] = (0.0, 1.0), *,
                         domain_y: Sequence[float] | None = None,
                         n_points: int | Sequence[int] = 2048, dt: float = 1e-3,
                         oversample: int | None = None) -> Callable[..., np.ndarray]:
    """A ``reference(x[, y], t)`` function backed by the ETDRK4 spectral solver.

    Solutions are computed on first use for each time grid and cached. Times must form an
    equally spaced grid from ``domain_t[0]`` (the snapshots then fall exactly on solver steps);
    values in space use the trigonometric interpolant, so any ``x`` (and ``y``) is allowed.

    Parameters
    ----------
    linear, nonlinear : callable
        Fourier symbol ``L(kx[, ky])`` and physical-space ``N(u)`` (see :func:`etdrk4_solve`).
    initial : callable
        ``u(x[, y], t0)``.
    domain_x, domain_t : (float, float)
        Period interval of ``x`` and time interval.
    domain_y : (float, float), optional
        Period interval of ``y`` (a 2-D torus).
    n_points : int or sequence of int, optional
        Spectral grid size per coordinate (default 2048).
    dt : float, optional
        Largest time step (default 1e-3).
    oversample : int, optional
        Oversampling of the initial condition's projection (default 16 in 1-D, 4 in 2-D).

    Returns
    -------
    callable
        ``reference(x[, y], t) -> array (len(t), len(x)[, len(y)])``.
    """
    domains = [_interval(domain_x, "domain_x")]
    if domain_y is not None:
        domains.append(_interval(domain_y, "domain_y"))
    t0, _ = _interval(domain_t, "domain_t")
    over = oversample if oversample is not None else (16 if len(domains) == 1 else 4)
    solver_domain = domains[0] if len(domains) == 1 else domains

    @lru_cache(maxsize=4)
    def solve(t_final: float, n_snap: int) -> np.ndarray:
        return etdrk4_solve(linear, nonlinear, initial, domain=solver_domain, t_final=t_final,
                            n_points=n_points, dt=dt, n_snapshots=n_snap,
                            oversample=over)["u"].values

    def reference(*axes: np.ndarray) -> np.ndarray:
        if len(axes) != len(domains) + 1:
            raise ValidationError(f"reference takes {len(domains)} space grid(s) and the "
                                  f"times; got {len(axes)} arrays")
        space = [np.asarray(a, dtype=float).ravel() for a in axes[:-1]]
        t = np.asarray(axes[-1], dtype=float).ravel() - t0
        if t.size < 2 or abs(t[0]) > 1e-12 or not np.allclose(
                np.diff(t), t[-1] / (t.size - 1), rtol=1e-9, atol=1e-12):
            raise ValidationError("reference times must be an equally spaced grid starting at "
                                  f"t0={t0} with at least 2 points")
        out = solve(round(float(t[-1]), 12), int(t.size))
        for i, ((a, b), pts) in enumerate(zip(domains, space)):
            out = fourier_interpolate(out, a, b - a, pts, axis=i + 1)
        out[0] = initial(*np.meshgrid(*space, indexing="ij"))
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
        raise ValidationError(f"eps must be a non-negative finite number; got {eps!r}")

    def residual(f: Fields) -> torch.Tensor:
        u, p = f.u, f.parameters
        return f.u_t - p["eps"] * f.u_xx + p["gamma"] * (u ** 3 - u)

    def initial(x: np.ndarray) -> np.ndarray:
        return x ** 2 * np.cos(np.pi * x)

    ref = semilinear_reference(lambda k: -eps * k ** 2, lambda u: gamma * (u - u ** 3), initial,
                               (-1.0, 1.0), (0.0, 1.0), n_points=n_points, dt=dt)
    return PDEProblem(residual, initial, (-1.0, 1.0), (0.0, 1.0), ref, name="allen-cahn",
                      parameters={"eps": eps, "gamma": gamma},
                      reference_source=f"ETDRK4 Fourier spectral, {n_points} points, dt={dt}")


def taylor_green(nu: float = 0.1, *, t_final: float = 1.0) -> PDEProblem:
    """The decaying Taylor-Green vortex of the incompressible Navier-Stokes equations.

    Velocity-pressure form on the torus ``[0, 2 pi]^2`` (periodic in ``x`` and ``y``) with
    density 1::

        u_t + u u_x + v u_y + p_x - nu (u_xx + u_yy) = 0
        v_t + u v_x + v v_y + p_y - nu (v_xx + v_yy) = 0
        u_x + v_y = 0

    and the exact solution ``u = -cos x sin y F``, ``v = sin x cos y F``,
    ``p = -(cos 2x + cos 2y) F^2 / 4``, ``F = exp(-2 nu t)``. The initial condition prescribes
    the velocity; the pressure is defined up to a constant, so its error is measured with the
    spatial mean removed, and the reported ``rel_l2`` is that of the velocity ``(u, v)``.

    Parameters
    ----------
    nu : float, optional
        Kinematic viscosity (default 0.1: the vortex decays to ``exp(-0.2)`` by ``t = 1``).
    t_final : float, optional
        End of the time interval (default 1).

    Returns
    -------
    PDEProblem
    """
    nu = float(nu)
    if not (math.isfinite(nu) and nu >= 0):
        raise ValidationError(f"nu must be a non-negative finite number; got {nu!r}")

    def residual(f: Fields) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u, v, visc = f.u, f.v, f.parameters["nu"]
        mx = f.u_t + u * f.u_x + v * f.u_y + f.p_x - visc * (f.u_xx + f.u_yy)
        my = f.v_t + u * f.v_x + v * f.v_y + f.p_y - visc * (f.v_xx + f.v_yy)
        return mx, my, f.u_x + f.v_y

    def initial(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"u": -np.cos(x) * np.sin(y), "v": np.sin(x) * np.cos(y)}

    def reference(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        X, Y = np.meshgrid(np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                           indexing="ij")
        F = np.exp(-2.0 * nu * np.asarray(t, dtype=float))[:, None, None]
        return {"u": -np.cos(X) * np.sin(Y) * F, "v": np.sin(X) * np.cos(Y) * F,
                "p": -0.25 * (np.cos(2 * X) + np.cos(2 * Y)) * F ** 2}

    two_pi = 2.0 * math.pi
    return PDEProblem(residual, initial, (0.0, two_pi), (0.0, float(t_final)), reference,
                      name="taylor-green", parameters={"nu": nu},
                      reference_source="exact solution (Taylor & Green 1937)",
                      domain_y=(0.0, two_pi), outputs=("u", "v", "p"), scored=("u", "v"),
                      gauge=("p",))


def allen_cahn_2d(eps: float = 0.01, gamma: float = 5.0, *, n_points: int = 128,
                  dt: float = 2e-3) -> PDEProblem:
    """2-D Allen-Cahn ``u_t - eps (u_xx + u_yy) + gamma (u^3 - u) = 0`` on ``[-1, 1]^2 x [0, 1]``.

    Periodic in ``x`` and ``y``; initial condition ``x^2 cos(pi x) + y^2 cos(pi y)``; the
    reference comes from the 2-D ETDRK4 Fourier-spectral solver (:func:`etdrk4_solve`). The
    default ``eps = 0.01`` gives interfaces about ``sqrt(eps / gamma) = 0.045`` wide (the 1-D
    problem's ``1e-4`` would need a far finer reference grid and network in 2-D).

    Parameters
    ----------
    eps : float, optional
        Diffusion coefficient (default 0.01).
    gamma : float, optional
        Reaction coefficient (default 5).
    n_points : int, optional
        Spectral grid size per coordinate of the reference (default 128: within 2e-5 of a
        256^2 grid with half the step).
    dt : float, optional
        Time step of the reference (default 2e-3).

    Returns
    -------
    PDEProblem
    """
    eps, gamma = float(eps), float(gamma)
    if not (math.isfinite(eps) and eps >= 0):
        raise ValidationError(f"eps must be a non-negative finite number; got {eps!r}")
    if not math.isfinite(gamma):
        raise ValidationError(f"gamma must be finite; got {gamma!r}")

    def residual(f: Fields) -> torch.Tensor:
        u, p = f.u, f.parameters
        return f.u_t - p["eps"] * (f.u_xx + f.u_yy) + p["gamma"] * (u ** 3 - u)

    def initial(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x ** 2 * np.cos(np.pi * x) + y ** 2 * np.cos(np.pi * y)

    ref = semilinear_reference(lambda kx, ky: -eps * (kx ** 2 + ky ** 2),
                               lambda u: gamma * (u - u ** 3), initial, (-1.0, 1.0), (0.0, 1.0),
                               domain_y=(-1.0, 1.0), n_points=n_points, dt=dt)
    return PDEProblem(residual, initial, (-1.0, 1.0), (0.0, 1.0), ref, name="allen-cahn-2d",
                      parameters={"eps": eps, "gamma": gamma},
                      reference_source=f"ETDRK4 Fourier spectral, {n_points}^2 points, dt={dt}",
                      domain_y=(-1.0, 1.0))
