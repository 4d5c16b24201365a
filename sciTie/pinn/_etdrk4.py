"""ETDRK4 Fourier-spectral solver for semilinear PDEs on periodic intervals and tori.

Solves ``u_t = L u + N(u)`` on a periodic interval or torus, where ``L`` is a linear operator that is
diagonal in Fourier space (given by its symbol ``L(k)``) and ``N`` is any (nonlinear) function
of ``u`` evaluated in physical space. The time stepper is the fourth-order exponential time
differencing Runge-Kutta scheme of Cox & Matthews (2002) with the contour-integral evaluation
of its coefficient functions from Kassam & Trefethen (2005).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import ValidationError
from ._user import bind_parameters, call_user

__all__ = ["etdrk4_solve", "etdrk4_coefficients", "spectral_derivative", "fourier_interpolate",
           "wavenumbers"]


def wavenumbers(n: int, period: float) -> np.ndarray:
    """Angular wavenumbers of an ``n``-point grid on a period ``period`` (``rfft`` order).

    Parameters
    ----------
    n : int
        Number of grid points.
    period : float
        Length of the periodic interval.

    Returns
    -------
    numpy.ndarray
        ``2 pi / period * [0, 1, ..., n // 2]``.
    """
    return 2.0 * np.pi / period * np.fft.rfftfreq(n, d=1.0 / n)


def spectral_derivative(u: np.ndarray, period: float, order: int = 1, *,
                        axis: int = -1) -> np.ndarray:
    """Derivative of periodic samples ``u`` along one axis by Fourier differentiation.

    Parameters
    ----------
    u : numpy.ndarray
        Samples on the uniform grid ``a + period * j / n``, ``j = 0 .. n-1`` along ``axis``.
    period : float
        Length of the periodic interval.
    order : int, optional
        Derivative order (default 1).
    axis : int, optional
        The axis to differentiate along (default the last).

    Returns
    -------
    numpy.ndarray
        The ``order``-th derivative on the same grid. For odd orders the Nyquist mode is
        dropped, as usual for real-valued spectral derivatives.
    """
    u = np.moveaxis(np.asarray(u, dtype=float), axis, -1)
    n = u.shape[-1]
    k = wavenumbers(n, period)
    mult = (1j * k) ** order
    if order % 2 == 1 and n % 2 == 0:
        mult[-1] = 0.0
    return np.moveaxis(np.fft.irfft(mult * np.fft.rfft(u, axis=-1), n=n, axis=-1), -1, axis)


def fourier_interpolate(u: np.ndarray, x_grid_start: float, period: float,
                        x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Evaluate the trigonometric interpolant of periodic samples at arbitrary points.

    Parameters
    ----------
    u : numpy.ndarray
        Samples on the grid ``x_grid_start + period * j / n`` along ``axis``; the other axes
        (for example time, or a second space coordinate) are kept.
    x_grid_start : float
        Left end of the periodic interval.
    period : float
        Length of the periodic interval.
    x : numpy.ndarray
        1-D array of evaluation points (any real values; the interpolant is periodic).
    axis : int, optional
        The periodic axis (default the last). Apply once per axis for several dimensions.

    Returns
    -------
    numpy.ndarray
        ``u`` with ``axis`` replaced by ``len(x)`` values.
    """
    u = np.moveaxis(np.asarray(u, dtype=float), axis, -1)
    x = np.asarray(x, dtype=float).ravel()
    n = u.shape[-1]
    c = np.fft.rfft(u, axis=-1) / n
    m = np.arange(c.shape[-1])
    w = np.full(c.shape[-1], 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0  # Nyquist mode counted once (cosine part only)
    theta = 2.0 * np.pi / period * np.outer(m, x - x_grid_start)  # (modes, points)
    basis_c = np.cos(theta) * w[:, None]
    basis_s = np.sin(theta) * w[:, None]
    return np.moveaxis(c.real @ basis_c - c.imag @ basis_s, -1, axis)


def etdrk4_coefficients(lin: np.ndarray, h: float, n_contour: int = 64):
    """ETDRK4 coefficient arrays for a diagonal linear operator.

    The phi-functions are evaluated as means over a circle of radius 1 centred at each
    ``h * L`` value (Kassam & Trefethen 2005), which avoids the cancellation error of the
    explicit formulas for small ``|h L|``.

    Parameters
    ----------
    lin : numpy.ndarray
        Fourier symbol of the linear operator (real or complex).
    h : float
        Time step.
    n_contour : int, optional
        Number of points on the contour (default 64).

    Returns
    -------
    tuple of numpy.ndarray
        ``(E, E2, Q, f1, f2, f3)`` in the notation of Kassam & Trefethen.
    """
    lin = np.asarray(lin)
    real = np.isrealobj(lin)
    r = np.exp(2j * np.pi * (np.arange(n_contour) + 0.5) / n_contour)
    lr = h * lin[:, None] + r[None, :]
    el = np.exp(lr)
    q = h * np.mean((np.exp(lr / 2) - 1.0) / lr, axis=1)
    f1 = h * np.mean((-4.0 - lr + el * (4.0 - 3.0 * lr + lr ** 2)) / lr ** 3, axis=1)
    f2 = h * np.mean((2.0 + lr + el * (-2.0 + lr)) / lr ** 3, axis=1)
    f3 = h * np.mean((-4.0 - 3.0 * lr - lr ** 2 + el * (4.0 - lr)) / lr ** 3, axis=1)
    if real:
        q, f1, f2, f3 = q.real, f1.real, f2.real, f3.real
    e = np.exp(h * lin)
    e2 = np.exp(h * lin / 2)
    return e, e2, q, f1, f2, f3


def _domains(domain: Sequence[Any]) -> list[tuple[float, float]]:
    """``(a, b)`` or a sequence of such pairs, validated."""
    items = list(domain)
    if len(items) == 2 and all(np.ndim(v) == 0 for v in items):
        items = [tuple(items)]
    out = []
    for d in items:
        try:
            a, b = (float(v) for v in d)
        except (TypeError, ValueError):
            raise ValidationError(f"domain must be (a, b) or a sequence of such pairs; got "
                                  f"{domain!r}") from None
        if not (np.isfinite(a) and np.isfinite(b) and b > a):
            raise ValidationError(f"domain must satisfy b > a (finite); got {tuple(domain)!r}")
        out.append((a, b))
    if not 1 <= len(out) <= 3:
        raise ValidationError(f"domain must have 1 to 3 periodic intervals; got {len(out)}")
    return out


def _project(u0: Callable[..., np.ndarray], domains: list[tuple[float, float]],
             n: tuple[int, ...], oversample: int) -> np.ndarray:
    """Samples of the Fourier truncation of ``u0`` (sampled ``oversample`` times finer) on the
    ``n`` grid: the projection, free of the aliasing error of plain sampling."""
    d = len(n)
    m = tuple(k * oversample for k in n)
    axes = [a + (b - a) * np.arange(mk) / mk for (a, b), mk in zip(domains, m)]
    fine = np.asarray(u0(*np.meshgrid(*axes, indexing="ij")), dtype=float)
    if fine.shape != m:
        raise ValidationError(f"u0 must return one value per point; got shape {fine.shape} "
                              f"for a grid of {m}")
    spec = np.fft.rfftn(fine) / oversample ** d
    if d == 1:
        coef = spec[: n[0] // 2 + 1]
        if n[0] % 2 == 0:
            coef[-1] = coef[-1].real  # keep the Nyquist mode real (symmetric truncation)
        return np.fft.irfft(coef, n=n[0])
    # along each full-spectrum axis keep modes -k/2 .. k/2; an even grid's Nyquist mode gets the
    # mean of the +k/2 and -k/2 modes (the symmetric truncation the 1-D solver uses)
    spec = spec[..., : n[-1] // 2 + 1]
    for axis, (k, mk) in enumerate(zip(n[:-1], m[:-1])):
        low = np.take(spec, np.arange(0, (k + 1) // 2), axis=axis)
        high = np.take(spec, np.arange(mk - (k - 1) // 2, mk), axis=axis)
        parts = [low]
        if k % 2 == 0:
            nyq = 0.5 * (np.take(spec, [k // 2], axis=axis) + np.take(spec, [mk - k // 2],
                                                                      axis=axis))
            parts.append(nyq)
        parts.append(high)
        spec = np.concatenate(parts, axis=axis)
    out = spec
    return np.fft.irfftn(out, s=n, axes=tuple(range(d)))


def etdrk4_solve(
    linear: Callable[..., Any],
    nonlinear: Callable[..., Any],
    u0: Callable[..., Any] | np.ndarray,
    *,
    domain: Sequence[Any],
    t_final: float,
    n_points: int | Sequence[int] = 512,
    dt: float = 1e-4,
    n_snapshots: int = 101,
    n_contour: int = 64,
    oversample: int = 16,
    name: str = "u",
    fields: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Solve ``u_t = L u + N(u)`` with periodic boundary conditions by ETDRK4.

    One-dimensional on an interval ``(a, b)``, or on a torus (2-D, 3-D) when ``domain`` is a
    sequence of intervals: Fourier spectral in every coordinate (``numpy.fft.rfftn``). Several
    coupled fields (a reaction-diffusion system) are solved together when ``fields`` names
    them; ``L`` is then diagonal per field.

    Parameters
    ----------
    linear : callable
        ``linear(kx[, ky]) -> symbol``: the Fourier symbol of ``L`` at angular wavenumbers
        (broadcast arrays, one per coordinate), for example ``lambda k: -nu * k**2`` for
        ``nu u_xx`` or ``lambda kx, ky: -nu * (kx**2 + ky**2)`` for ``nu (u_xx + u_yy)``. With
        several fields, a tuple of symbols (one per field).
    nonlinear : callable
        ``nonlinear(u) -> N(u)`` on physical-space samples (shape ``n_points``); with several
        fields ``nonlinear(u, v, ...) -> (N_u, N_v, ...)``, one array per field.
    u0 : callable or numpy.ndarray
        Initial condition: a function of the coordinates or samples on the grid; with several
        fields a function returning ``{field: values}`` (or a tuple in field order), or an
        array with a leading field axis.
    domain : (float, float) or sequence of (float, float)
        The periodic interval(s) ``[a, b)``; ``b > a``.
    t_final : float
        Final time (> 0).
    n_points : int or sequence of int, optional
        Grid points per coordinate (default 512).
    dt : float, optional
        Largest time step; it is reduced so that the snapshots fall on steps.
    n_snapshots : int, optional
        Number of stored times, equally spaced on ``[0, t_final]`` (default 101, >= 2).
    n_contour : int, optional
        Contour points for the coefficient functions (default 64).
    oversample : int, optional
        When ``u0`` is callable it is sampled on a grid ``oversample`` times finer (per
        coordinate) and its Fourier series truncated to ``n_points`` modes (a projection). This
        avoids the aliasing error of plain sampling, which matters for initial data with a kink
        (default 16 in 1-D; use less in 2-D).
    name : str, optional
        Name of the data variable of a single field (default ``"u"``).
    fields : sequence of str, optional
        Names of several coupled fields (overrides ``name``).
    parameters : mapping, optional
        Coefficients handed to ``linear`` and ``nonlinear`` when they take them: a function
        with a parameter named ``parameters``, or one more positional parameter than the
        arrays it is given, receives them (``linear(k, parameters)``).

    Returns
    -------
    xarray.Dataset
        One variable per field on dims ``(t, x[, y[, z]])``; each coordinate holds the grid
        ``a + (b - a) j / n`` (right end excluded); attrs record the solver settings.

    Raises
    ------
    sciTie.errors.ValidationError
        For a non-positive period, time or step, too few points or snapshots, a function
        that raises or returns the wrong shape, or a non-finite solution (the step is too
        large).
    """
    domains = _domains(domain)
    d = len(domains)
    if not (np.isfinite(t_final) and t_final > 0):
        raise ValidationError(f"t_final must be a positive finite number; got {t_final!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValidationError(f"dt must be a positive finite number; got {dt!r}")
    sizes = list(n_points) if isinstance(n_points, (list, tuple)) else [n_points] * d
    if len(sizes) != d or any(isinstance(v, bool) or int(v) != v or v < 4 for v in sizes):
        raise ValidationError(f"n_points must be an integer >= 4 (one per coordinate); got "
                              f"{n_points!r}")
    n = tuple(int(v) for v in sizes)
    if int(n_snapshots) != n_snapshots or n_snapshots < 2:
        raise ValidationError(f"n_snapshots must be an integer >= 2; got {n_snapshots!r}")
    if int(oversample) != oversample or oversample < 1:
        raise ValidationError(f"oversample must be an integer >= 1; got {oversample!r}")
    names = _field_names(fields, name)
    n_f = len(names)
    params = dict(parameters or {})
    lin_fn = bind_parameters(linear, "linear", d, params)
    nl_fn = bind_parameters(nonlinear, "nonlinear", n_f, params)
    periods = [b - a for a, b in domains]
    grid = [a + (b - a) * np.arange(k) / k for (a, b), k in zip(domains, n)]
    u = _initial_state(u0, names, domains, n, int(oversample))
    ks = [2.0 * np.pi / p * np.fft.fftfreq(k, d=1.0 / k) for p, k in zip(periods[:-1], n[:-1])]
    ks.append(wavenumbers(n[-1], periods[-1]))
    kgrid = np.meshgrid(*ks, indexing="ij")
    spec_shape = kgrid[0].shape
    lin = _per_field(lin_fn(*kgrid), n_f, spec_shape, "linear(k)", complex_ok=True)
    interval = t_final / (n_snapshots - 1)
    steps_per = max(1, int(np.ceil(interval / dt - 1e-12)))
    h = interval / steps_per
    coeffs = etdrk4_coefficients(np.ravel(lin), h, n_contour)
    e, e2, q, f1, f2, f3 = (c.reshape(lin.shape) for c in coeffs)
    axes = tuple(range(1, d + 1))

    def nhat(v: np.ndarray) -> np.ndarray:
        phys = np.fft.irfftn(v, s=n, axes=axes)
        out = _per_field(nl_fn(*phys), n_f, n, "nonlinear(u)")
        return np.fft.rfftn(out, axes=axes)

    v = np.fft.rfftn(u, axes=axes)
    out = np.empty((n_snapshots, n_f, *n))
    # exact data at t = 0
    out[0] = _initial_state(u0, names, domains, n, None) if callable(u0) else u
    for s in range(1, n_snapshots):
        for _ in range(steps_per):
            nv = nhat(v)
            a_ = e2 * v + q * nv
            na = nhat(a_)
            b_ = e2 * v + q * na
            nb = nhat(b_)
            c_ = e2 * a_ + q * (2.0 * nb - nv)
            nc = nhat(c_)
            v = e * v + nv * f1 + 2.0 * (na + nb) * f2 + nc * f3
        out[s] = np.fft.irfftn(v, s=n, axes=axes)
        if not np.all(np.isfinite(out[s])):
            raise ValidationError(f"ETDRK4 solution became non-finite at "
                                  f"t={s * interval:.4g}; reduce dt (now {h:.3g}) or increase "
                                  "n_points")
    t = np.linspace(0.0, t_final, n_snapshots)
    coords = ["x", "y", "z"][:d]
    attrs = {"solver": "ETDRK4 Fourier spectral (Cox & Matthews 2002; Kassam & Trefethen 2005)",
             "n_points": n[0] if d == 1 else list(n), "dt": h, "n_contour": int(n_contour),
             "domain_start": domains[0][0] if d == 1 else [a for a, _ in domains],
             "period": periods[0] if d == 1 else periods}
    return xr.Dataset({f: (("t", *coords), out[:, i]) for i, f in enumerate(names)},
                      coords={"t": t, **{c: g for c, g in zip(coords, grid)}}, attrs=attrs)


def _field_names(fields: Sequence[str] | None, name: str) -> tuple[str, ...]:
    if fields is None:
        fields = (name,)
    elif isinstance(fields, str):
        fields = (fields,)
    names = tuple(fields)
    if not names or not all(isinstance(f, str) and f.isidentifier() for f in names) \
            or len(set(names)) != len(names):
        raise ValidationError(f"fields must be distinct identifiers; got {fields!r}")
    return names


def _per_field(value: Any, n_f: int, shape: tuple[int, ...], what: str, *,
               complex_ok: bool = False) -> np.ndarray:
    """A function's result as an array ``(n_fields, *shape)`` (broadcast per field)."""
    parts = list(value) if n_f > 1 and isinstance(value, (tuple, list)) else None
    if n_f > 1 and parts is None:
        arr = np.asarray(value)
        if arr.ndim == len(shape) + 1 and arr.shape[0] == n_f:
            parts = list(arr)
        else:
            raise ValidationError(f"{what} must return one array per field ({n_f}); got "
                                  f"{type(value).__name__} of shape {np.shape(value)}")
    if parts is None:
        parts = [value]
    if len(parts) != n_f:
        raise ValidationError(f"{what} must return one array per field ({n_f}); got "
                              f"{len(parts)}")
    out = []
    for p in parts:
        arr = np.asarray(p)
        if arr.dtype.kind not in ("fc" if complex_ok else "f") + "iu":
            raise ValidationError(f"{what} must return numbers; got dtype {arr.dtype}")
        try:
            out.append(np.broadcast_to(arr, shape))
        except ValueError:
            raise ValidationError(f"{what} must return shape {shape}; got "
                                  f"{arr.shape}") from None
    return np.stack(out)


def _initial_state(u0: Any, names: tuple[str, ...], domains: list[tuple[float, float]],
                   n: tuple[int, ...], oversample: int | None) -> np.ndarray:
    """The initial fields ``(n_fields, *n)``: projected (``oversample``) or sampled (None)."""
    n_f = len(names)
    if not callable(u0):
        u = np.asarray(u0, dtype=float)
        if u.shape == n and n_f == 1:
            u = u[None]
        if u.shape != (n_f, *n):
            raise ValidationError(f"u0 must have shape {n if n_f == 1 else (n_f, *n)} on the "
                                  f"grid; got {u.shape}")
        return u

    def component(i: int) -> Callable[..., np.ndarray]:
        def f(*coords: np.ndarray) -> np.ndarray:
            value = call_user(u0, "u0", *coords)
            if isinstance(value, dict):
                missing = [k for k in names if k not in value]
                if missing:
                    raise ValidationError(f"u0 must return a value for every field {names}; "
                                          f"missing {missing}")
                return np.asarray(value[names[i]], dtype=float)
            if n_f > 1:
                return np.asarray(value[i], dtype=float)
            return np.asarray(value, dtype=float)
        return f

    if oversample is None:
        mesh = np.meshgrid(*[a + (b - a) * np.arange(k) / k
                             for (a, b), k in zip(domains, n)], indexing="ij")
        return np.stack([component(i)(*mesh) for i in range(n_f)])
    return np.stack([_project(component(i), domains, n, oversample) for i in range(n_f)])
