"""Figures of a refined series: parameters against temperature, the series as an image."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import xarray as xr

from ..errors import ValidationError

__all__ = ["plot_series_parameters", "plot_series_image", "plot_tie_test"]


def _axes(ax, n: int, *, width: float = 5.5, height: float = 2.6):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(n, 1, figsize=(width, height * n), sharex=True, squeeze=False)
        return fig, list(axes[:, 0])
    axes = list(np.atleast_1d(ax).ravel())
    if len(axes) != n:
        raise ValidationError(f"ax: give {n} Axes (one per parameter), got {len(axes)}")
    return axes[0].figure, axes


def plot_series_parameters(ds: xr.Dataset, names: Sequence[str], ax: Any = None, *,
                           laws: dict[str, Callable] | None = None, label: str = "sequential",
                           others: dict[str, xr.Dataset] | None = None):
    """Refined parameters against temperature with esd bars (one panel per parameter).

    Parameters
    ----------
    ds : xarray.Dataset
        A series result (``value``/``stderr`` on ``(temperature, param)``).
    names : list of str
        Parameters (``"CuCr2O4.a"``), or ``"a-b"`` for the difference of two with its esd
        (ignoring their correlation, an upper bound for independent fits).
    laws : dict, optional
        Parameter -> ``f(T) -> (value, esd)`` drawn as a curve with a ±1 esd band (e.g.
        :meth:`ParametricRefinement.law_curve`).
    others : dict, optional
        More series results to overlay, by label.

    Returns
    -------
    list of matplotlib Axes
    """
    fig, axes = _axes(ax, len(names))
    T = ds["temperature"].values
    sets = {label: ds, **(others or {})}
    for a, name in zip(axes, names):
        for k, (lab, d) in enumerate(sets.items()):
            v, e = _values(d, name)
            a.errorbar(d["temperature"].values, v, yerr=e, fmt="o", ms=3, capsize=2,
                       label=lab, color=f"C{k}")
        if laws and name in laws:
            Tf = np.linspace(T.min(), T.max(), 300)
            v, e = laws[name](Tf)
            a.plot(Tf, v, "-", color="k", lw=1, label="law")
            a.fill_between(Tf, v - e, v + e, color="k", alpha=0.2, lw=0)
        unit = ""
        if "-" not in name and name in ds["param"].values and "unit" in ds.coords:
            unit = str(ds["unit"].sel(param=name).values)
        a.set_ylabel(f"{name}" + (f" ({unit})" if unit else ""))
        a.grid(alpha=0.3)
    axes[-1].set_xlabel("temperature (K)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return axes


def _values(ds: xr.Dataset, name: str):
    params = list(ds["param"].values)
    if name in params:
        return ds["value"].sel(param=name).values, ds["stderr"].sel(param=name).values
    if "-" in name:
        a, b = name.split("-", 1)
        if a in params and b in params:
            va, ea = _values(ds, a)
            vb, eb = _values(ds, b)
            return va - vb, np.hypot(ea, eb)
    raise ValidationError(f"{name!r} is not a refined parameter of this series (have "
                          f"{params[:8]} ...)")


def plot_series_image(ds: xr.Dataset, ax: Any = None, *, what: str = "obs",
                      two_theta: tuple[float, float] | None = None, log: bool = True):
    """The series as an image: 2θ across, temperature up, colour the intensity.

    Parameters
    ----------
    ds : xarray.Dataset
        A series result (``to_xarray()`` of a sequential or parametric refinement, with ``obs``
        and ``calc``) or the loaded series itself (``intensity`` against ``two_theta``, as
        :func:`~sciTie.diffraction.data.load_cucr2o4_seq` returns it: ``what='obs'`` only).
    what : {'obs', 'calc', 'difference'}
        Observed counts, calculated, or (obs - calc)/σ.
    two_theta : (lo, hi), optional
        Range shown.
    log : bool
        Logarithmic colour scale for counts.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    if what not in ("obs", "calc", "difference"):
        raise ValidationError(f"what must be 'obs', 'calc' or 'difference', got {what!r}")
    if "obs" not in ds and "intensity" in ds:
        ds = ds.rename({"intensity": "obs"})  # the loaded series, before any fit
    missing = [v for v in (("obs",) if what == "obs" else ("obs", "calc")) if v not in ds]
    if missing:
        raise ValidationError(f"cannot draw {what!r}: the dataset has no {' or '.join(missing)} "
                              "on a shared 2θ grid (a series result whose patterns share one "
                              "grid, or a loaded series with 'intensity', is expected)")
    sub = ds.sortby("temperature")
    if two_theta is not None:
        sub = sub.sel(two_theta=slice(*two_theta))
    x = sub["two_theta"].values
    T = sub["temperature"].values
    if what == "difference":
        sig = np.sqrt(np.maximum(sub["obs"].values, 1.0))
        z = (sub["obs"].values - sub["calc"].values) / sig
        norm = TwoSlopeNorm(0.0, vmin=-10, vmax=10)
        cmap = "RdBu_r"
    else:
        z = sub[what].values
        norm = LogNorm(vmin=max(np.nanmin(z[z > 0]), 1.0), vmax=np.nanmax(z)) if log else None
        cmap = "viridis"
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5))
    # cell edges halfway between points: temperature rows keep their true spacing
    mesh = ax.pcolormesh(_edges(x, 0.001), _edges(T, 1.0), z, shading="flat", norm=norm,
                         cmap=cmap)
    ax.figure.colorbar(mesh, ax=ax, label={"obs": "observed counts", "calc": "calculated counts",
                                           "difference": "(obs - calc) / σ"}[what])
    ax.set_xlabel("2θ (degrees)")
    ax.set_ylabel("temperature (K)")
    return ax


def _edges(c: np.ndarray, half: float) -> np.ndarray:
    """Cell edges around sorted centres ``c`` (``half`` on each side of a single centre)."""
    if c.size == 1:
        return np.array([c[0] - half, c[0] + half])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def plot_tie_test(ds: xr.Dataset, tie: str, ax: Any = None, *, alpha: float = 0.01,
                  p_floor: float = 1e-20):
    """A tested tie along the series: the untied difference with esd bars (top) and the
    F-test p-value (bottom, log scale, with the significance level ``alpha``; p-values
    below ``p_floor`` are drawn at it as downward triangles)."""
    if "tie" not in ds.dims or tie not in ds["tie"].values:
        raise ValidationError(f"tie {tie!r} was not tested in this result")
    fig, (a1, a2) = _axes(ax, 2)
    sub = ds.sel(tie=tie)
    T = sub["temperature"].values
    applied = sub["tie_applied"].values > 0.5
    for mask, lab, c in ((applied, "tie applied in the fit", "C1"),
                         (~applied, "free in the fit", "C0")):
        a1.errorbar(T[mask], sub["tie_difference"].values[mask],
                    yerr=sub["tie_difference_stderr"].values[mask], fmt="o", ms=3, capsize=2,
                    color=c, label=lab)
        p = sub["tie_p"].values[mask]
        low = p < p_floor
        a2.semilogy(T[mask][~low], p[~low], "o", ms=4, color=c)
        a2.semilogy(T[mask][low], np.full(int(low.sum()), p_floor), "v", ms=5, color=c)
    a1.axhline(0, color="k", lw=0.8)
    a1.set_ylabel(f"{tie.split('=')[0]} - {tie.split('=')[1]}")
    a1.legend(fontsize=8)
    a2.axhline(alpha, color="k", ls="--", lw=0.8, label=f"α = {alpha}")
    a2.set_ylim(p_floor / 10, 2.0)
    a2.set_ylabel("p-value of the tie (F-test)")
    a2.set_xlabel("temperature (K)")
    a2.legend(fontsize=8)
    for a in (a1, a2):
        a.grid(alpha=0.3)
    fig.tight_layout()
    return [a1, a2]
