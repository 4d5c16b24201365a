"""The background of a powder pattern: a linear basis (Chebyshev series or points joined by
straight lines) plus optional pseudo-Voigt background peaks (an amorphous hump, a window).
"""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError, ValidationError

__all__ = ["BACKGROUND_PEAK_PARAMS", "chebyshev", "background_basis", "check_background_points",
           "check_background_peaks"]

#: Parameters of one background peak: position, area, Gaussian variance, Lorentzian FWHM
#: (axis units, counts·axis units, width units², width units; see the profile).
BACKGROUND_PEAK_PARAMS = ("pos", "area", "sigma2", "gamma")


def chebyshev(t: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` Chebyshev polynomials at ``t`` in [-1, 1], as columns."""
    T = np.empty((t.size, n))
    if n > 0:
        T[:, 0] = 1.0
    if n > 1:
        T[:, 1] = t
    for k in range(2, n):
        T[:, k] = 2 * t * T[:, k - 1] - T[:, k - 2]
    return T


def background_basis(x: np.ndarray, fit_range: tuple[float, float], n_background: int,
                     points: np.ndarray | None) -> np.ndarray:
    """Columns whose coefficients are the ``bkg`` parameters.

    Chebyshev polynomials over the fit range, or (with ``points``) the heights at those
    positions joined by straight lines, flat beyond the first and last point.
    """
    if points is None:
        lo, hi = fit_range
        return chebyshev(2 * (x - lo) / (hi - lo) - 1, n_background)
    return np.column_stack([np.interp(x, points, np.eye(points.size)[j])
                            for j in range(points.size)]).reshape(x.size, points.size)


def check_background_points(points, axis: str) -> np.ndarray | None:
    """``points`` as a strictly increasing array of at least two positions (or None)."""
    if points is None:
        return None
    if isinstance(points, (str, bytes, dict)):
        raise ArgumentTypeError(f"background_points must be a list of {axis} positions, got "
                                f"{points!r}")
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError):
        raise ValidationError(f"background_points must be numbers ({axis} positions), got "
                              f"{points!r}") from None
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)) \
            or np.any(np.diff(arr) <= 0):
        raise ValidationError(f"background_points must be at least two finite, strictly "
                              f"increasing {axis} positions, got {points!r}")
    return arr


def check_background_peaks(peaks) -> np.ndarray:
    """Background peaks as an ``(n, 4)`` array of ``(pos, area, sigma2 >= 0, gamma >= 0)``."""
    rows = []
    if peaks is None:
        peaks = ()
    if isinstance(peaks, (str, bytes, dict)) or not isinstance(peaks, (list, tuple,
                                                                      np.ndarray)):
        raise ArgumentTypeError(f"background_peaks must be a list of (pos, area, sigma2, "
                                f"gamma) or of dicts, got {peaks!r}")
    for i, pk in enumerate(peaks):
        if isinstance(pk, (str, bytes)):
            raise ValidationError(f"background_peaks[{i}]: expected numbers (pos, area, "
                                  f"sigma2, gamma), got {pk!r}")
        if isinstance(pk, dict):
            bad = [k for k in pk if k not in BACKGROUND_PEAK_PARAMS]
            if bad or "pos" not in pk:
                raise ValidationError(f"background_peaks[{i}]: keys must be from "
                                      f"{BACKGROUND_PEAK_PARAMS} with at least 'pos', got "
                                      f"{sorted(pk)}")
            row = [pk.get("pos"), pk.get("area", 0.0), pk.get("sigma2", 100.0),
                   pk.get("gamma", 0.0)]
        else:
            row = list(pk)
        try:
            row = [float(v) for v in row]
        except (TypeError, ValueError):
            raise ValidationError(f"background_peaks[{i}]: expected numbers (pos, area, "
                                  f"sigma2, gamma), got {pk!r}") from None
        if len(row) != 4 or not np.all(np.isfinite(row)) or row[2] < 0 or row[3] < 0:
            raise ValidationError(f"background_peaks[{i}]: expected (pos, area, sigma2 >= 0, "
                                  f"gamma >= 0), got {pk!r}")
        rows.append(row)
    return np.array(rows, dtype=float).reshape(-1, 4)
