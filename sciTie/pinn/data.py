"""Reference solutions of the bundled PINN problems as xarray Datasets (registry loaders)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ValidationError
from ._etdrk4 import etdrk4_solve, fourier_interpolate

__all__ = ["load_convection", "load_allen_cahn", "load_taylor_green", "load_allen_cahn_2d",
           "synthetic_observations"]


def _grid_size(value: int, what: str, minimum: int = 2) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValidationError(f"{what} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def load_convection(beta: float = 30.0, *, n_x: int = 256, n_t: int = 101) -> xr.Dataset:
    """Exact solution of ``u_t + beta u_x = 0``, ``u(x, 0) = sin x`` on ``[0, 2 pi] x [0, 1]``.

    Parameters
    ----------
    beta : float, optional
        Advection speed (default 30).
    n_x, n_t : int, optional
        Grid sizes; both ends of both intervals are included (defaults 256, 101).

    Returns
    -------
    xarray.Dataset
        ``u`` on dims ``(t, x)``; provenance in attrs.
    """
    beta = float(beta)
    if not math.isfinite(beta):
        raise ValidationError(f"beta must be finite; got {beta!r}")
    x = np.linspace(0.0, 2.0 * math.pi, _grid_size(n_x, "n_x"))
    t = np.linspace(0.0, 1.0, _grid_size(n_t, "n_t"))
    u = np.sin(x[None, :] - beta * t[:, None])
    return xr.Dataset(
        {"u": (("t", "x"), u, {"long_name": "u(x, t)"})}, coords={"t": t, "x": x},
        attrs={"title": "1-D periodic convection u_t + beta u_x = 0", "beta": beta,
               "initial_condition": "sin(x)", "source": "exact solution sin(x - beta t)",
               "generated_by": "sciTie.pinn.data.load_convection"})


def load_allen_cahn(*, eps: float = 1e-4, gamma: float = 5.0, n_x: int = 512, n_t: int = 201,
                    n_points: int = 2048, dt: float = 1e-3) -> xr.Dataset:
    """ETDRK4 reference for ``u_t - eps u_xx + gamma u^3 - gamma u = 0`` on ``[-1, 1] x [0, 1]``.

    Initial condition ``x^2 cos(pi x)``, periodic in ``x``. Computed on the fly (about a second)
    by :func:`sciTie.pinn.etdrk4_solve` with ``n_points`` Fourier modes and step ``dt`` and
    evaluated on the output grid through the trigonometric interpolant. Self-consistency
    under refinement: better than 1e-10 in time; in space 3e-8 at t = 0.1,
    3e-10 at t = 0.5 and 1e-11 at t = 1 (the initial condition has a kink at x = +-1, so the
    first instants are the hardest to resolve).

    Parameters
    ----------
    eps, gamma : float, optional
        Coefficients (defaults 1e-4 and 5).
    n_x, n_t : int, optional
        Output grid sizes (defaults 512, 201); both ends included.
    n_points : int, optional
        Solver grid (default 2048).
    dt : float, optional
        Solver time step (default 1e-3).

    Returns
    -------
    xarray.Dataset
        ``u`` on dims ``(t, x)``; solver settings and provenance in attrs.
    """
    n_x, n_t = _grid_size(n_x, "n_x"), _grid_size(n_t, "n_t")
    x = np.linspace(-1.0, 1.0, n_x)

    def initial(z: np.ndarray) -> np.ndarray:
        return z ** 2 * np.cos(np.pi * z)

    sol = etdrk4_solve(lambda k: -eps * k ** 2, lambda u: gamma * (u - u ** 3), initial,
                       domain=(-1.0, 1.0), t_final=1.0, n_points=n_points, dt=dt,
                       n_snapshots=n_t)
    u = fourier_interpolate(sol["u"].values, -1.0, 2.0, x)
    u[0] = initial(x)
    return xr.Dataset(
        {"u": (("t", "x"), u, {"long_name": "u(x, t)"})}, coords={"t": sol.t.values, "x": x},
        attrs={"title": "1-D periodic Allen-Cahn u_t - eps u_xx + gamma u^3 - gamma u = 0",
               "eps": float(eps), "gamma": float(gamma),
               "initial_condition": "x^2 cos(pi x)",
               "source": sol.attrs["solver"], "n_points": int(n_points),
               "dt": float(sol.attrs["dt"]), "generated_by": "sciTie.pinn.data.load_allen_cahn"})


def synthetic_observations(problem: Any, n_points: int, noise_std: float, *,
                           random_state: int = 0, n_times: int = 11,
                           output: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sparse noisy observations of a problem's reference solution (for inverse problems).

    Points are uniform in space; times are drawn from ``n_times`` equally spaced snapshots
    (reference solvers such as ETDRK4 produce snapshots). Gaussian noise of standard deviation
    ``noise_std`` is added.

    Parameters
    ----------
    problem : PDEProblem
        A problem with a reference solution (its coefficients are the truth).
    n_points : int
        Number of observations.
    noise_std : float
        Noise standard deviation (0 for exact values).
    random_state : int, optional
        Seed (default 0).
    n_times : int, optional
        Number of snapshot times (default 11), both ends included.
    output : str, optional
        The observed output (default: the first).

    Returns
    -------
    X : numpy.ndarray
        ``(n_points, n_coords)``: space coordinates, then time.
    y : numpy.ndarray
        ``(n_points,)``.
    """
    from ..errors import ValidationError

    if getattr(problem, "reference", None) is None:
        raise ValidationError("problem has no reference solution to observe")
    n = _grid_size(n_points, "n_points", 1)
    n_t = _grid_size(n_times, "n_times", 2)
    noise = float(noise_std)
    if not (math.isfinite(noise) and noise >= 0):
        raise ValidationError(f"noise_std must be a non-negative finite number; got {noise_std!r}")
    name = problem.outputs[0] if output is None else output
    if name not in problem.outputs:
        raise ValidationError(f"output must be one of {problem.outputs}; got {output!r}")
    rng = np.random.default_rng(random_state)
    space = [rng.uniform(*problem.domain(c), n) for c in problem.space]
    times = np.linspace(*problem.domain_t, n_t)
    which = rng.integers(0, n_t, n)
    y = np.empty(n)
    if len(space) == 1:
        y[:] = problem.reference_values(space[0], times)[name][which, np.arange(n)]
    else:  # one time at a time: the grid of the points' coordinates, then its diagonal
        for j in range(n_t):
            sel = np.flatnonzero(which == j)
            if sel.size:
                field = problem.reference_values(*[s[sel] for s in space], times)[name][j]
                y[sel] = np.diagonal(field)
    X = np.column_stack(space + [times[which]])
    return X, y + noise * rng.standard_normal(n)


def load_taylor_green(*, nu: float = 0.1, n_x: int = 64, n_y: int = 64,
                      n_t: int = 11) -> xr.Dataset:
    """Exact Taylor-Green vortex on ``[0, 2 pi]^2 x [0, 1]`` (see :func:`taylor_green`).

    Parameters
    ----------
    nu : float, optional
        Kinematic viscosity (default 0.1).
    n_x, n_y, n_t : int, optional
        Grid sizes (both ends included).

    Returns
    -------
    xarray.Dataset
        ``u``, ``v``, ``p`` on dims ``(t, x, y)``.
    """
    from ._problems import taylor_green

    p = taylor_green(nu)
    x = np.linspace(0, 2 * math.pi, _grid_size(n_x, "n_x"))
    y = np.linspace(0, 2 * math.pi, _grid_size(n_y, "n_y"))
    t = np.linspace(0, 1, _grid_size(n_t, "n_t"))
    ref = p.reference(x, y, t)
    names = {"u": "x velocity", "v": "y velocity", "p": "pressure (density 1)"}
    return xr.Dataset(
        {k: (("t", "x", "y"), ref[k], {"long_name": names[k]}) for k in ("u", "v", "p")},
        coords={"t": t, "x": x, "y": y},
        attrs={"title": "Taylor-Green vortex (incompressible Navier-Stokes)", "nu": float(nu),
               "source": "exact solution u = -cos x sin y F, v = sin x cos y F, "
                         "p = -(cos 2x + cos 2y) F^2 / 4, F = exp(-2 nu t)",
               "generated_by": "sciTie.pinn.data.load_taylor_green"})


def load_allen_cahn_2d(*, eps: float = 0.01, gamma: float = 5.0, n_x: int = 64, n_y: int = 64,
                       n_t: int = 11, n_points: int = 128, dt: float = 2e-3) -> xr.Dataset:
    """ETDRK4 reference of the 2-D Allen-Cahn problem (see :func:`allen_cahn_2d`).

    Parameters
    ----------
    eps, gamma : float, optional
        Coefficients (defaults 0.01 and 5).
    n_x, n_y, n_t : int, optional
        Output grid sizes (both ends included).
    n_points : int, optional
        Solver grid per coordinate (default 128).
    dt : float, optional
        Solver time step (default 2e-3).

    Returns
    -------
    xarray.Dataset
        ``u`` on dims ``(t, x, y)``.
    """
    from ._problems import allen_cahn_2d

    p = allen_cahn_2d(eps, gamma, n_points=n_points, dt=dt)
    x = np.linspace(-1, 1, _grid_size(n_x, "n_x"))
    y = np.linspace(-1, 1, _grid_size(n_y, "n_y"))
    t = np.linspace(0, 1, _grid_size(n_t, "n_t"))
    return xr.Dataset(
        {"u": (("t", "x", "y"), p.reference(x, y, t), {"long_name": "u(x, y, t)"})},
        coords={"t": t, "x": x, "y": y},
        attrs={"title": "2-D periodic Allen-Cahn u_t - eps (u_xx + u_yy) + gamma (u^3 - u) = 0",
               "eps": float(eps), "gamma": float(gamma),
               "initial_condition": "x^2 cos(pi x) + y^2 cos(pi y)",
               "source": p.reference_source,
               "generated_by": "sciTie.pinn.data.load_allen_cahn_2d"})
