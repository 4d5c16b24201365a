"""PDE problems: residual, domains, periodicity, initial condition and reference solution."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..errors import ValidationError
from ._etdrk4 import etdrk4_solve, fourier_interpolate
from ._fields import Fields, check_output_names
from ._recipes import settings_of
from ._settings import check_positive_float
from ._user import call_user, source_fingerprint, with_parameters

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
    positive : sequence of str, optional
        Coefficients that are positive by their physics (a diffusivity, a viscosity). Learnt
        from observations, they are trained through their logarithm (``log_<name>`` is the
        free parameter, ``<name> = exp(log_<name>)``), so they cannot change sign.
    settings : dict or callable, optional
        The :class:`PeriodicPINN` settings this problem recommends: a dict, or
        ``settings(mode=..., quick=..., inverse=...) -> dict``. A ``PeriodicPINN`` uses them
        for every setting it is not given, and the problem's recipe does the same, so a
        problem has one set of defaults (see :func:`recommended_settings`).

    Every function is called with the coordinates it needs; ``reference`` (and the ETDRK4
    terms of :func:`semilinear_reference`) also receive ``parameters`` when they take them (a
    parameter named ``parameters``, or one more positional parameter than the arrays), so a
    changed coefficient changes residual and reference together. An exception raised inside
    any of them is reported as a :class:`~sciTie.errors.ValidationError` naming the function
    and the line.
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
    positive: tuple[str, ...] = field(default=(), kw_only=True)
    settings: dict[str, Any] | Callable[..., dict[str, Any]] | None = field(default=None,
                                                                          kw_only=True)

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
        positive = (self.positive,) if isinstance(self.positive, str) else tuple(self.positive)
        bad = [c for c in positive if c not in self.parameters]
        if bad:
            raise ValidationError(f"positive names {bad}, which are not coefficients of the "
                                  f"problem ({sorted(self.parameters)})")
        for c in positive:
            value = self.parameters[c]
            if isinstance(value, (int, float)) and not value > 0:
                raise ValidationError(f"coefficient {c!r} is declared positive but is "
                                      f"{value!r}")
        self.positive = positive
        if self.settings is not None and not (isinstance(self.settings, dict)
                                              or callable(self.settings)):
            raise ValidationError(f"settings must be a dict or a callable; got "
                                  f"{type(self.settings).__name__}")

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
        out = call_user(self.initial, f"problem {self.name!r}: initial", *space)
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
        """The reference on a grid as ``{output: array (t, x[, y])}``, or None without one.

        The reference receives the problem's ``parameters`` when it takes them.
        """
        if self.reference is None:
            return None
        out = with_parameters(self.reference, f"problem {self.name!r}: reference", axes,
                              self.parameters)
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

    def fingerprint(self) -> dict[str, Any]:
        """Everything that defines the problem, as plain data (for checkpoints): name,
        coefficients, domains, periodicity, outputs, and the source of the residual, initial
        and boundary functions (hashed)."""
        import hashlib

        def digest(fn: Any) -> str:
            return hashlib.sha256(source_fingerprint(fn).encode()).hexdigest()

        return {"name": self.name,
                "parameters": {k: float(v) for k, v in sorted(self.parameters.items())},
                "domains": {c: list(self.domain(c)) for c in self.coordinates},
                "periodic": list(self.periodic),
                "periods": {k: float(v) for k, v in sorted(self.periods.items())},
                "outputs": list(self.outputs), "positive": list(self.positive),
                "residual": digest(self.residual), "initial": digest(self.initial),
                "boundary": digest(self.boundary)}


def _number(value, name: str) -> float:
    """A PDE coefficient as a float; text, None or booleans are refused, naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ValidationError(f"{name} must be a number; got {value!r}")
    return float(value)


def _nondimensional(problem: PDEProblem) -> PDEProblem:
    """A bundled problem is written in nondimensional variables: every coordinate and field
    without a stated unit is "1" (CF's dimensionless unit) in result files."""
    names = ["x", "t", *(["y"] if problem.domain_y is not None else []), *problem.outputs]
    problem.units = {**{n: "1" for n in names}, **problem.units}
    return problem


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
    beta = _number(beta, "beta")
    if not math.isfinite(beta):
        raise ValidationError(f"beta must be finite; got {beta!r}")

    def residual(f: Fields) -> torch.Tensor:
        return f.u_t + f.parameters["beta"] * f.u_x

    def reference(x: np.ndarray, t: np.ndarray,
                  parameters: dict[str, float] | None = None) -> np.ndarray:
        speed = beta if parameters is None else parameters["beta"]
        return np.sin(np.asarray(x)[None, :] - speed * np.asarray(t)[:, None])

    problem = PDEProblem(residual, np.sin, (0.0, 2.0 * math.pi), (0.0, 1.0), reference,
                         name="convection", parameters={"beta": beta},
                         reference_source="exact solution u = sin(x - beta t)",
                         settings=settings_of("convection"))
    return _nondimensional(problem)


def semilinear_reference(linear: Callable[..., Any], nonlinear: Callable[..., Any],
                         initial: Callable[..., Any], domain_x: Sequence[float],
                         domain_t: Sequence[float] = (0.0, 1.0), *,
                         domain_y: Sequence[float] | None = None,
                         n_points: int | Sequence[int] = 2048, dt: float = 1e-3,
                         oversample: int | None = None,
                         parameters: Mapping[str, Any] | None = None,
                         fields: Sequence[str] | None = None) -> Callable[..., Any]:
    """A ``reference(x[, y], t, parameters=None)`` function backed by the ETDRK4 solver.

    Solutions are computed on first use for each time grid and set of coefficients, and
    cached. Times must form an equally spaced grid from ``domain_t[0]`` (the snapshots then
    fall exactly on solver steps); values in space use the trigonometric interpolant, so any
    ``x`` (and ``y``) is allowed.

    A :class:`PDEProblem` calls its reference with its own ``parameters``: written as
    ``linear(k, parameters)`` and ``nonlinear(u, parameters)``, the solver's terms then follow
    every change of a coefficient (a recipe's ``--set problem.parameters.nu=0.1``) together
    with the residual. One-argument terms keep working; they see no coefficients.

    Parameters
    ----------
    linear, nonlinear : callable
        Fourier symbol ``L(kx[, ky][, parameters])`` and physical-space
        ``N(u[, parameters])`` (``N(u, v, ...)`` for several fields; see
        :func:`etdrk4_solve`).
    initial : callable
        ``u(x[, y], t0)`` (a dict ``{field: values}`` for several fields).
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
    parameters : mapping, optional
        Coefficients used when the reference is called without them.
    fields : sequence of str, optional
        Names of several coupled fields (the reference then returns ``{field: array}``).

    Returns
    -------
    callable
        ``reference(x[, y], t, parameters=None) -> array (len(t), len(x)[, len(y)])`` (a
        dict of them for several fields).
    """
    domains = [_interval(domain_x, "domain_x")]
    if domain_y is not None:
        domains.append(_interval(domain_y, "domain_y"))
    t0, _ = _interval(domain_t, "domain_t")
    over = oversample if oversample is not None else (16 if len(domains) == 1 else 4)
    solver_domain = domains[0] if len(domains) == 1 else domains
    default_parameters = dict(parameters or {})
    names = ("u",) if fields is None else tuple(fields)

    @lru_cache(maxsize=4)
    def solve(t_final: float, n_snap: int, params: tuple) -> dict[str, np.ndarray]:
        ds = etdrk4_solve(linear, nonlinear, initial, domain=solver_domain, t_final=t_final,
                          n_points=n_points, dt=dt, n_snapshots=n_snap, oversample=over,
                          fields=names, parameters=dict(params))
        return {f: ds[f].values for f in names}

    def reference(*axes: np.ndarray, parameters: Mapping[str, Any] | None = None) -> Any:
        if len(axes) != len(domains) + 1:
            raise ValidationError(f"reference takes {len(domains)} space grid(s) and the "
                                  f"times; got {len(axes)} arrays")
        space = [np.asarray(a, dtype=float).ravel() for a in axes[:-1]]
        t = np.asarray(axes[-1], dtype=float).ravel() - t0
        if t.size < 2 or abs(t[0]) > 1e-12 or not np.allclose(
                np.diff(t), t[-1] / (t.size - 1), rtol=1e-9, atol=1e-12):
            raise ValidationError("reference times must be an equally spaced grid starting at "
                                  f"t0={t0} with at least 2 points")
        params = default_parameters if parameters is None else dict(parameters)
        key = tuple(sorted((k, float(v)) for k, v in params.items()))
        solution = solve(round(float(t[-1]), 12), int(t.size), key)
        start = call_user(initial, "initial", *np.meshgrid(*space, indexing="ij"))
        out = {}
        for f in names:
            values = solution[f]
            for i, ((a, b), pts) in enumerate(zip(domains, space)):
                values = fourier_interpolate(values, a, b - a, pts, axis=i + 1)
            values[0] = start[f] if isinstance(start, dict) else start
            out[f] = values
        return out if fields is not None else out["u"]

    return reference


def _positive(parameters: dict[str, float]) -> tuple[str, ...]:
    """The coefficients of a bundled problem that are positive (learnt through their log)."""
    return tuple(k for k, v in parameters.items() if v > 0)


def _diffusion_symbol(*k: np.ndarray, parameters: dict[str, float]) -> np.ndarray:
    """``-eps |k|^2``: the Fourier symbol of ``eps`` times the Laplacian (1-D or 2-D)."""
    return -parameters["eps"] * sum(kc ** 2 for kc in k)


def _allen_cahn_reaction(u: np.ndarray, parameters: dict[str, float]) -> np.ndarray:
    return parameters["gamma"] * (u - u ** 3)


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
    eps, gamma = _number(eps, "eps"), _number(gamma, "gamma")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValidationError(f"eps must be a non-negative finite number; got {eps!r}")

    def residual(f: Fields) -> torch.Tensor:
        u, p = f.u, f.parameters
        return f.u_t - p["eps"] * f.u_xx + p["gamma"] * (u ** 3 - u)

    def initial(x: np.ndarray) -> np.ndarray:
        return x ** 2 * np.cos(np.pi * x)

    parameters = {"eps": eps, "gamma": gamma}
    ref = semilinear_reference(_diffusion_symbol, _allen_cahn_reaction, initial, (-1.0, 1.0),
                               (0.0, 1.0), n_points=n_points, dt=dt, parameters=parameters)
    problem = PDEProblem(residual, initial, (-1.0, 1.0), (0.0, 1.0), ref, name="allen-cahn",
                         parameters=parameters, positive=_positive(parameters),
                         reference_source=f"ETDRK4 Fourier spectral, {n_points} points, dt={dt}",
                         settings=settings_of("allen-cahn"))
    return _nondimensional(problem)


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
    nu = _number(nu, "nu")
    if not (math.isfinite(nu) and nu >= 0):
        raise ValidationError(f"nu must be a non-negative finite number; got {nu!r}")

    def residual(f: Fields) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u, v, visc = f.u, f.v, f.parameters["nu"]
        mx = f.u_t + u * f.u_x + v * f.u_y + f.p_x - visc * (f.u_xx + f.u_yy)
        my = f.v_t + u * f.v_x + v * f.v_y + f.p_y - visc * (f.v_xx + f.v_yy)
        return mx, my, f.u_x + f.v_y

    def initial(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"u": -np.cos(x) * np.sin(y), "v": np.sin(x) * np.cos(y)}

    def reference(x: np.ndarray, y: np.ndarray, t: np.ndarray,
                  parameters: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        X, Y = np.meshgrid(np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                           indexing="ij")
        visc = nu if parameters is None else parameters["nu"]
        F = np.exp(-2.0 * visc * np.asarray(t, dtype=float))[:, None, None]
        return {"u": -np.cos(X) * np.sin(Y) * F, "v": np.sin(X) * np.cos(Y) * F,
                "p": -0.25 * (np.cos(2 * X) + np.cos(2 * Y)) * F ** 2}

    two_pi = 2.0 * math.pi
    problem = PDEProblem(residual, initial, (0.0, two_pi), (0.0, float(t_final)), reference,
                         name="taylor-green", parameters={"nu": nu},
                         reference_source="exact solution (Taylor & Green 1937)",
                         domain_y=(0.0, two_pi), outputs=("u", "v", "p"), scored=("u", "v"),
                         gauge=("p",), positive=_positive({"nu": nu}),
                         settings=settings_of("taylor-green"))
    return _nondimensional(problem)


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
    eps, gamma = _number(eps, "eps"), _number(gamma, "gamma")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValidationError(f"eps must be a non-negative finite number; got {eps!r}")
    if not math.isfinite(gamma):
        raise ValidationError(f"gamma must be finite; got {gamma!r}")

    def residual(f: Fields) -> torch.Tensor:
        u, p = f.u, f.parameters
        return f.u_t - p["eps"] * (f.u_xx + f.u_yy) + p["gamma"] * (u ** 3 - u)

    def initial(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return x ** 2 * np.cos(np.pi * x) + y ** 2 * np.cos(np.pi * y)

    parameters = {"eps": eps, "gamma": gamma}
    ref = semilinear_reference(_diffusion_symbol, _allen_cahn_reaction, initial, (-1.0, 1.0),
                               (0.0, 1.0), domain_y=(-1.0, 1.0), n_points=n_points, dt=dt,
                               parameters=parameters)
    problem = PDEProblem(residual, initial, (-1.0, 1.0), (0.0, 1.0), ref, name="allen-cahn-2d",
                         parameters=parameters, positive=_positive(parameters),
                         reference_source=f"ETDRK4 Fourier spectral, {n_points}^2 points, dt={dt}",
                         domain_y=(-1.0, 1.0), settings=settings_of("allen-cahn-2d"))
    return _nondimensional(problem)


def _ks_symbol(k: np.ndarray, parameters: dict[str, float]) -> np.ndarray:
    """Fourier symbol of ``-beta u_xx - gamma u_xxxx``."""
    return parameters["beta"] * k ** 2 - parameters["gamma"] * k ** 4


def _ks_advection(u: np.ndarray, parameters: dict[str, float]) -> np.ndarray:
    """``-alpha u u_x`` on a ``2 pi`` period (spectral derivative)."""
    from ._etdrk4 import spectral_derivative

    return -parameters["alpha"] * u * spectral_derivative(u, 2.0 * math.pi)


def kuramoto_sivashinsky(alpha: float = 100.0 / 16.0, beta: float = 100.0 / 16.0 ** 2,
                         gamma: float = 100.0 / 16.0 ** 4, *, t_final: float = 0.1,
                         n_points: int = 256, dt: float = 2.5e-5) -> PDEProblem:
    """Kuramoto-Sivashinsky ``u_t + alpha u u_x + beta u_xx + gamma u_xxxx = 0``.

    JAXPI's chaotic case (``examples/ks_chaotic`` of PredictiveIntelligenceLab/jaxpi: its
    README and ``data/gen_ks_chaotic.m``): ``x`` in ``[0, 2 pi]`` (periodic),
    ``alpha = 100 / 16``, ``beta = 100 / 16^2``, ``gamma = 100 / 16^4``,
    ``u(x, 0) = cos(x) (1 + sin(x))``; JAXPI solves it on ``t`` in ``[0, 1]`` and trains its
    ablation study on the first tenth of that interval (``time_fraction = 0.1``), the default
    ``t_final`` here. The fourth-order term is linear, so the reference comes from the ETDRK4
    Fourier-spectral solver (:func:`etdrk4_solve`; 256 points and ``dt = 2.5e-5`` agree with
    1024 points to 1e-11 up to ``t = 1``, and with ``dt = 1e-4`` to 2e-10 at ``t = 0.1``; the
    flow is chaotic, so differences grow about tenfold per 0.1 of time after ``t = 0.4``).

    Parameters
    ----------
    alpha, beta, gamma : float, optional
        Coefficients of the advection, anti-diffusion and hyper-diffusion terms (JAXPI's
        values by default; ``beta`` and ``gamma`` are positive by their physics).
    t_final : float, optional
        End of the time interval (default 0.1, JAXPI's first time window; up to 1 is JAXPI's
        whole run).
    n_points : int, optional
        Spectral grid size of the reference (default 256).
    dt : float, optional
        Time step of the reference (default 2.5e-5).

    Returns
    -------
    PDEProblem
    """
    alpha, beta, gamma = (_number(alpha, "alpha"), _number(beta, "beta"),
                          _number(gamma, "gamma"))
    if not (math.isfinite(alpha) and math.isfinite(beta) and math.isfinite(gamma)):
        raise ValidationError(f"alpha, beta and gamma must be finite; got "
                              f"{(alpha, beta, gamma)!r}")
    if not gamma > 0:
        raise ValidationError(f"gamma must be positive (the hyper-diffusion that makes the "
                              f"problem well posed); got {gamma!r}")
    t_final = check_positive_float(t_final, "t_final")

    def residual(f: Fields) -> torch.Tensor:
        p = f.parameters
        return f.u_t + p["alpha"] * f.u * f.u_x + p["beta"] * f.u_xx + p["gamma"] * f.u_xxxx

    def initial(x: np.ndarray) -> np.ndarray:
        return np.cos(x) * (1.0 + np.sin(x))

    parameters = {"alpha": alpha, "beta": beta, "gamma": gamma}
    ref = semilinear_reference(_ks_symbol, _ks_advection, initial, (0.0, 2.0 * math.pi),
                               (0.0, t_final), n_points=n_points, dt=dt, parameters=parameters)
    problem = PDEProblem(residual, initial, (0.0, 2.0 * math.pi), (0.0, t_final), ref,
                         name="kuramoto-sivashinsky", parameters=parameters,
                         positive=tuple(k for k in ("beta", "gamma") if parameters[k] > 0),
                         reference_source=f"ETDRK4 Fourier spectral, {n_points} points, dt={dt}",
                         settings=settings_of("kuramoto-sivashinsky"))
    return _nondimensional(problem)


def _gray_scott_symbols(kx: np.ndarray, ky: np.ndarray,
                        parameters: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Fourier symbols of ``eps1 Laplacian`` (u) and ``eps2 Laplacian`` (v)."""
    k2 = kx ** 2 + ky ** 2
    return -parameters["eps1"] * k2, -parameters["eps2"] * k2


def _gray_scott_reaction(u: np.ndarray, v: np.ndarray,
                         parameters: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    p = parameters
    uv2 = u * v * v
    return p["b1"] * (1.0 - u) - p["c1"] * uv2, -p["b2"] * v + p["c2"] * uv2


def gray_scott(eps1: float = 0.2, eps2: float = 0.1, b1: float = 40.0, c1: float = 1000.0,
               b2: float = 100.0, c2: float = 1000.0, *, t_final: float = 2.0,
               n_points: int = 128, dt: float = 5e-4) -> PDEProblem:
    """The Gray-Scott reaction-diffusion system on the torus ``[-1, 1]^2``::

        u_t = eps1 (u_xx + u_yy) + b1 (1 - u) - c1 u v^2
        v_t = eps2 (v_xx + v_yy) - b2 v + c2 u v^2

    JAXPI's Gray-Scott case (PredictiveIntelligenceLab/jaxpi, ``examples/grey_scott``, the
    PirateNet paper's example: ``data/gen_grey_scott.m``): the coefficients above (the
    chebfun "rolls" example with its reaction rates and time scaled by 1000), ``t`` in
    ``[0, 2]``, ``u(x, y, 0) = 1 - exp(-10 ((x + 0.05)^2 + (y + 0.02)^2))`` and
    ``v(x, y, 0) = exp(-10 ((x - 0.05)^2 + (y - 0.02)^2))``. Periodic in ``x`` and ``y`` (the
    initial data are periodic to 1e-4 at the faces, as in JAXPI's spectral reference). The
    reference for both fields comes from the 2-D ETDRK4 solver (:func:`etdrk4_solve` with two
    fields).

    Parameters
    ----------
    eps1, eps2 : float, optional
        Diffusivities of ``u`` and ``v`` (positive).
    b1, c1, b2, c2 : float, optional
        Feed, reaction and decay rates.
    t_final : float, optional
        End of the time interval (default 2, JAXPI's).
    n_points : int, optional
        Spectral grid size per coordinate of the reference (default 128: within 3e-7 of a
        256^2 grid up to ``t = 2``).
    dt : float, optional
        Time step of the reference (default 5e-4; steps of 1e-3 differ by 2e-6, and the
        scheme is fourth order).

    Returns
    -------
    PDEProblem
    """
    names = ("eps1", "eps2", "b1", "c1", "b2", "c2")
    values = [_number(v, n) for v, n in zip((eps1, eps2, b1, c1, b2, c2), names)]
    if not all(math.isfinite(v) for v in values):
        raise ValidationError(f"the coefficients must be finite; got {dict(zip(names, values))}")
    parameters = dict(zip(names, values))
    if not (parameters["eps1"] > 0 and parameters["eps2"] > 0):
        raise ValidationError(f"eps1 and eps2 must be positive; got {parameters['eps1']!r}, "
                              f"{parameters['eps2']!r}")
    t_final = check_positive_float(t_final, "t_final")

    def residual(f: Fields) -> tuple[torch.Tensor, torch.Tensor]:
        p = f.parameters
        u, v = f.u, f.v
        uv2 = u * v * v
        ru = f.u_t - p["eps1"] * (f.u_xx + f.u_yy) - p["b1"] * (1.0 - u) + p["c1"] * uv2
        rv = f.v_t - p["eps2"] * (f.v_xx + f.v_yy) + p["b2"] * v - p["c2"] * uv2
        return ru, rv

    def initial(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"u": 1.0 - np.exp(-10.0 * ((x + 0.05) ** 2 + (y + 0.02) ** 2)),
                "v": np.exp(-10.0 * ((x - 0.05) ** 2 + (y - 0.02) ** 2))}

    ref = semilinear_reference(_gray_scott_symbols, _gray_scott_reaction, initial, (-1.0, 1.0),
                               (0.0, t_final), domain_y=(-1.0, 1.0), n_points=n_points, dt=dt,
                               parameters=parameters, fields=("u", "v"))
    problem = PDEProblem(residual, initial, (-1.0, 1.0), (0.0, t_final), ref, name="gray-scott",
                         parameters=parameters, positive=_positive(parameters),
                         reference_source=f"ETDRK4 Fourier spectral, {n_points}^2 points, dt={dt}",
                         domain_y=(-1.0, 1.0), outputs=("u", "v"),
                         settings=settings_of("gray-scott"))
    return _nondimensional(problem)
