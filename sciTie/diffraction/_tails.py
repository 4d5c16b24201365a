"""Peak windows that keep the tails: the lost-intensity criterion and far-field evaluation.

A pseudo-Voigt of FWHM Γ and Lorentzian fraction η cut at ±kΓ loses the fraction

    lost(k, η) = η (1 - (2/π) atan(2k)) + (1 - η) erfc(2 √ln2 k)

of its integrated intensity. :func:`window_fwhm` returns the smallest k (at least 3) with
``lost <= tolerance``; for a Lorentzian-rich peak that is hundreds of FWHM (η = 0.5,
tolerance 1e-3: k = 159). Evaluating every point of such windows is wasteful, because far
from the centre the profile is a smooth Lorentzian tail. So each peak is split by a smooth
partition of unity at ``C`` (6 FWHM plus four times its asymmetry span):

* the *core*, weight ``1 - s(|x - p|/C)``, on the data points within ``2C``;
* the *far field*, weight ``s(|x - p|/C)``, split into octave bands: band j has weight
  ``s(u/2^j) - s(u/2^(j+1))`` (u = |x - p|/C; the last band keeps ``s(u/2^j)``), lives at
  distances ``2^j C`` to ``2^(j+2) C`` and is evaluated on a uniform grid of spacing between
  1/16 and 1/8 of ``2^j C``, then linearly interpolated onto the data points.

``s`` rises smoothly (quintic) from 0 at ``u = 1`` to 1 at ``u = 2``, so every band is smooth
on the scale of its distance and linear interpolation is accurate to about 1 % of the
(already small) tail value there, well below counting noise; the cost per peak grows with
the logarithm of the window, not with its width.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erfc

__all__ = ["lost_fraction", "window_fwhm", "switch", "CORE_FWHM", "MIN_WINDOW_FWHM",
           "WINDOW_MARGIN", "interpolation_weights", "TailGrids"]

#: Half-width (in FWHM) where the far-field evaluation starts (the Gaussian part is below
#: 1e-43 of its peak there, the Lorentzian tail 0.7 % of its peak).
CORE_FWHM = 6.0
#: Frozen windows are this much wider than the criterion asks at the start of a fit (so the
#: widths may grow by 25 % during it), and taper smoothly over their outer half.
WINDOW_MARGIN = 1.25
#: Smallest window half-width (FWHM): a Gaussian loses erfc(2 √ln2 · 3) = 1.5e-12 there.
MIN_WINDOW_FWHM = 3.0
_C_G = 2.0 * np.sqrt(np.log(2.0))


def lost_fraction(k, eta):
    """Fraction of a unit-area pseudo-Voigt outside ±k FWHM (exact for the pV)."""
    k = np.asarray(k, dtype=float)
    eta = np.asarray(eta, dtype=float)
    return eta * (1.0 - (2.0 / np.pi) * np.arctan(2.0 * k)) + (1.0 - eta) * erfc(_C_G * k)


def window_fwhm(eta, tolerance: float) -> np.ndarray:
    """Window half-width in FWHM so that at most ``tolerance`` of the intensity is lost.

    For ``k >= 3`` the Gaussian part loses at most 1.5e-12, so the Lorentzian part sets k:
    ``η (1 - (2/π) atan(2k)) = tolerance``, i.e. ``k = tan(π/2 (1 - tolerance/η)) / 2``.
    ``tolerance = 0`` gives infinite windows (every peak over the whole pattern).
    """
    eta = np.clip(np.asarray(eta, dtype=float), 0.0, 1.0)
    if tolerance <= 0:
        return np.full(eta.shape, np.inf)
    tol = tolerance - 2e-12                      # leave room for the Gaussian part
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(eta > tol, 1.0 - tol / np.maximum(eta, tol), 0.0)
        k = 0.5 * np.tan(0.5 * np.pi * frac)
    return np.maximum(k, MIN_WINDOW_FWHM)


def switch(u: np.ndarray):
    """Smooth step ``s(u)``: 0 for u <= 1, 1 for u >= 2 (quintic, C²), and ``ds/du``."""
    t = np.clip(u - 1.0, 0.0, 1.0)
    s = t ** 3 * (10.0 - 15.0 * t + 6.0 * t * t)
    ds = 30.0 * t * t * (1.0 - t) ** 2
    return s, ds


def interpolation_weights(x: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation from ``grid`` to ``x``: each point's left grid index ``j`` and its
    weight ``t`` on ``grid[j + 1]`` (``1 - t`` on ``grid[j]``)."""
    j = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    t = (x - grid[j]) / (grid[j + 1] - grid[j])
    return j.astype(np.int64), t


@dataclass
class TailGrids:
    """Frozen far-field set-up of one pattern: switch radius per peak and the coarse grids.

    Band ``j`` of a peak (distances ``2^j C`` to ``2^(j+2) C`` from its centre) is evaluated
    on the uniform grid of level ``base + j`` (spacing ``step · 2^level``, between 1/16 and
    1/8 of ``2^j C``), or on the data points themselves when that level is negative (data
    coarser than the band needs). Frozen between refreshes so that the model is a smooth
    function of the parameters during one least-squares run; grids are made when first
    needed, and the grids of several levels are stacked end to end (:meth:`stack`) so that
    one compiled call renders every band.
    """

    x: np.ndarray
    step: float
    radius: np.ndarray
    base: np.ndarray
    grids: dict
    interp: dict

    @classmethod
    def build(cls, x: np.ndarray, radius: np.ndarray) -> "TailGrids":
        radius = np.asarray(radius, dtype=float)
        step = float(np.median(np.diff(x))) if x.size > 1 else 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            base = np.floor(np.log2(radius / (8.0 * step)))
        base = np.where(np.isfinite(base), base, -1).astype(int)
        return cls(x=x, step=step, radius=radius, base=base, grids={}, interp={})

    def levels(self, index: np.ndarray, band: np.ndarray) -> np.ndarray:
        """Grid level of band ``band`` of the peaks ``index`` (-1: the data points)."""
        lev = self.base[index] + band
        return np.where(lev < 0, -1, lev)

    def grid(self, level: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """The uniform grid of ``level`` over the data range and the interpolation from it
        to the data points (:func:`interpolation_weights`)."""
        if level not in self.grids:
            h = self.step * 2.0 ** level
            grid = np.arange(self.x[0] - h, self.x[-1] + 2.0 * h, h)
            self.grids[level] = grid
            self.interp[level] = interpolation_weights(self.x, grid)
        return self.grids[level], self.interp[level]

    def stack(self, levels) -> tuple[np.ndarray, np.ndarray]:
        """The grids of ``levels`` end to end, and where each starts in the stack."""
        key = ("stack",) + tuple(int(v) for v in levels)
        if key not in self.grids:
            parts = [self.grid(int(v))[0] for v in levels]
            starts = np.cumsum([0] + [g.size for g in parts[:-1]]).astype(np.int64)
            self.grids[key] = (np.concatenate(parts) if parts else np.zeros(0), starts)
        return self.grids[key]
