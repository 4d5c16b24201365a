"""A starting peak profile measured on the data, for patterns without an instrument file.

The widths of the strongest isolated peaks are measured at half height above a local
background, and the Gaussian Caglioti law of the TCH profile,
``σ² = U tan²θ + V tanθ + W`` (centideg², GSAS units; FWHM² = 8 ln2 σ²), is fitted to them
(all three terms when five or more peaks give a law positive over the pattern, else U, W >= 0
with V = 0). It is a start for the staged refinement, which then refines U, V, W itself, not
a result.
"""
from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from ..errors import ValidationError
from ._pseudo_voigt import LN2

__all__ = ["estimate_profile"]


def _background(y: np.ndarray, window: int) -> np.ndarray:
    """A smooth lower envelope: running minimum, then running mean (a rolling-ball)."""
    low = minimum_filter1d(y, size=window, mode="nearest")
    return uniform_filter1d(low, size=window, mode="nearest")


def estimate_profile(data: xr.DataArray, *, fit_range=None, max_peaks: int = 20,
                     min_peaks: int = 3) -> dict:
    """Gaussian profile coefficients ``{"U", "V", "W"}`` (centideg²) measured on ``data``.

    Parameters
    ----------
    data : xarray.DataArray
        A pattern with a ``two_theta`` coordinate (degrees) and ``variance``.
    fit_range : (float, float), optional
        Only peaks inside this 2θ range are measured.
    max_peaks : int
        The strongest isolated peaks used.
    min_peaks : int
        Fewer peaks than this: only W is fitted (U = 0).

    Returns
    -------
    dict
        ``U``, ``V`` (always 0), ``W`` in centideg², plus ``n_peaks`` (peaks used) and
        ``fwhm`` (their median FWHM, degrees).

    Raises
    ------
    ValidationError
        When no peak stands out of the noise (the pattern has no Bragg peaks, or they are
        narrower than two points).
    """
    tth = np.asarray(data["two_theta"].values, dtype=float)
    y = np.asarray(data.values, dtype=float)
    sigma = np.sqrt(np.asarray(data["variance"].values, dtype=float))
    if fit_range is not None:
        keep = (tth >= fit_range[0]) & (tth <= fit_range[1])
        tth, y, sigma = tth[keep], y[keep], sigma[keep]
    if tth.size < 20:
        raise ValidationError(f"profile estimate: {tth.size} points are too few to measure peak "
                              "widths; give the profile (U, V, W) or an instrument file")
    step = float(np.median(np.diff(tth)))
    # a window of ~4 % of the pattern spans peaks but follows the background's slow changes
    window = max(15, int(0.04 * tth.size) | 1)
    net = y - _background(y, window)
    noise = float(np.median(sigma))
    from scipy.optimize import nnls
    from scipy.signal import find_peaks, peak_widths  # a second of start-up: here only

    peaks, props = find_peaks(net, prominence=8.0 * noise, distance=3)
    if peaks.size == 0:
        raise ValidationError("profile estimate: no peak stands above the noise (8 esd); give "
                              "the profile (U, V, W) or an instrument file")
    widths, _, left, right = peak_widths(net, peaks, rel_height=0.5)
    ok = widths >= 2.0
    # isolated: the half-height span does not reach the next peak
    if peaks.size > 1:
        gap = np.diff(peaks)
        room = np.minimum(np.r_[np.inf, gap], np.r_[gap, np.inf])
        ok &= widths < 0.5 * room
    order = np.argsort(-props["prominences"])
    chosen = [i for i in order if ok[i]][:max_peaks]
    if not chosen:
        raise ValidationError("profile estimate: no isolated peak wider than two points; give "
                              "the profile (U, V, W) or an instrument file")
    chosen = np.array(chosen)
    pos = np.interp(peaks[chosen], np.arange(tth.size), tth)
    fwhm = widths[chosen] * step                                   # degrees
    s2 = (fwhm * 100.0) ** 2 / (8.0 * LN2)                        # centideg²
    tan = np.tan(np.radians(pos / 2))
    U = V = 0.0
    W = float(np.median(s2))
    if chosen.size >= min_peaks:
        # the full Caglioti law when it stays positive over the pattern, else U, W >= 0
        # (relative weights: the widths are measured to a few percent each)
        w = 1.0 / s2
        grid = np.tan(np.radians(np.linspace(tth[0], tth[-1], 50) / 2))
        coef, *_ = np.linalg.lstsq(np.column_stack([tan ** 2, tan, np.ones_like(tan)]) * w[:, None],
                                   s2 * w, rcond=None)
        if chosen.size >= 5 and np.all(coef[0] * grid ** 2 + coef[1] * grid + coef[2] > 0):
            U, V, W = (float(c) for c in coef)
        else:
            (U, W), _ = nnls(np.column_stack([tan ** 2, np.ones_like(tan)]) * w[:, None], s2 * w)
    return {"U": float(U), "V": float(V), "W": float(W), "n_peaks": int(chosen.size),
            "fwhm": float(np.median(fwhm))}
