"""Compiled loops of the pattern model: profile sums and their Jacobian, peak by peak.

A peak ("item") has a profile centre ``c``, a window/switch centre ``p``, an intensity, the
TCH width and mixing (with their derivatives with respect to the Gaussian variance and the
Lorentzian width) and a window of grid indices ``[lo, hi)``. Its contribution at a grid
point is ``I · pV(x - c) · m(|x - p| / radius)`` where ``m`` is ``1 - s`` (core) or ``s``
(far-field band) of the smooth switch of :func:`sciTie.diffraction._tails.switch` (``m = 1``
for a radius <= 0: no switch). The Jacobian rows of the item (``dI, dc, ds2, dg`` and, when the switch
centre differs from the profile centre, ``dp``) are combined per point, so no pair arrays
are ever stored.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["render_items", "item_sums"]

_AG = 2.0 * np.sqrt(np.log(2.0) / np.pi)
_BG = 4.0 * np.log(2.0)
_TWO_PI = 2.0 / np.pi


@njit(cache=True, nogil=True)
def _step(u):
    """Quintic smooth step: 0 for u <= 1, 1 for u >= 2, and its derivative."""
    t = min(max(u - 1.0, 0.0), 1.0)
    return t * t * t * (10.0 - 15.0 * t + 6.0 * t * t), 30.0 * t * t * (1.0 - t) * (1.0 - t)


@njit(cache=True, nogil=True)
def _weight(xk, pi, radius, far, scale, last, taper):
    """:func:`_mask` times the outer taper ``1 - s(2|x - p|/W)`` (1 inside W/2, 0 at W)."""
    m, dm = _mask(xk, pi, radius, far, scale, last)
    if taper <= 0.0:
        return m, dm
    off = xk - pi
    sign = 1.0 if off > 0 else (-1.0 if off < 0 else 0.0)
    s, ds = _step(2.0 * abs(off) / taper)
    t = 1.0 - s
    dt = ds * 2.0 * sign / taper             # d(1 - s)/d pi
    return m * t, dm * t + m * dt


@njit(cache=True, nogil=True)
def _mask(xk, pi, radius, far, scale, last):
    """Weight of a peak part at x and its derivative with respect to the centre ``pi``.

    Core: ``1 - s(u)``; far-field band ``j`` (``scale = 2**j``): ``s(u/2^j) - s(u/2^(j+1))``
    (the last band keeps ``s(u/2^j)``), with ``u = |x - pi| / radius``. The bands and the core
    add up to 1 at every x.
    """
    if radius <= 0.0:                    # no switch: the whole profile
        return 1.0, 0.0
    off = xk - pi
    u = abs(off) / radius
    sign = 1.0 if off > 0 else (-1.0 if off < 0 else 0.0)
    if not far:
        s, ds = _step(u)
        return 1.0 - s, ds * sign / radius
    s1, d1 = _step(u / scale)
    m, dm = s1, d1 / scale
    if not last:
        s2, d2 = _step(u / (2.0 * scale))
        m -= s2
        dm -= d2 / (2.0 * scale)
    return m, -dm * sign / radius


@njit(cache=True, nogil=True)
def _indices(lo, hi, lo2, hi2):
    """The grid indices of an item's one or two windows."""
    n1 = max(hi - lo, 0)
    n2 = max(hi2 - lo2, 0)
    out = np.empty(n1 + n2, dtype=np.int64)
    for j in range(n1):
        out[j] = lo + j
    for j in range(n2):
        out[n1 + j] = lo2 + j
    return out


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc", "arcp", "nsz"})
def render_items(xs, lo, hi, lo2, hi2, c, p, inten, fwhm, eta, df_ds2, df_dg, de_ds2, de_dg,
                 radius, far, scale, last, taper, drow, DI, DC, DS, DG, DP, has_p, grad, y, J):
    """Add every item's profile to ``y`` (and its Jacobian over the columns of D to ``J``).

    Item ``i`` covers the grid indices ``[lo[i], hi[i])`` and ``[lo2[i], hi2[i])``; its
    derivative rows are row ``drow[i]`` of DI, DC, DS, DG (and DP when ``has_p``).
    """
    ncol = DI.shape[1]
    for i in range(c.size):
        inv = 1.0 / fwhm[i]
        e = eta[i]
        Ii = inten[i]
        ci = c[i]
        d = drow[i]
        for k in _indices(lo[i], hi[i], lo2[i], hi2[i]):
            dx = xs[k] - ci
            u = (dx * inv) * (dx * inv)
            den = 1.0 / (1.0 + 4.0 * u)
            lor = _TWO_PI * inv * den
            g = _AG * inv * np.exp(-_BG * u) if u < 60.0 else 0.0
            val = e * lor + (1.0 - e) * g
            m, dmdp = _weight(xs[k], p[i], radius[i], far, scale[i], last[i], taper[i])
            y[k] += Ii * val * m
            if not grad:
                continue
            dg_dx = g * (-2.0 * _BG * dx * inv * inv)
            dl_dx = lor * (-8.0 * dx * inv * inv) * den
            d_pos = -(e * dl_dx + (1.0 - e) * dg_dx)
            dg_df = g * (-inv + 2.0 * _BG * u * inv)
            dl_df = lor * (-inv + 8.0 * u * inv * den)
            d_f = e * dl_df + (1.0 - e) * dg_df
            d_e = lor - g
            eI = val * m
            ec = Ii * d_pos * m
            es2 = Ii * m * (d_f * df_ds2[i] + d_e * de_ds2[i])
            eg = Ii * m * (d_f * df_dg[i] + d_e * de_dg[i])
            ep = Ii * val * dmdp
            if has_p:
                for q in range(ncol):
                    J[k, q] += (eI * DI[d, q] + ec * DC[d, q] + es2 * DS[d, q] + eg * DG[d, q]
                                + ep * DP[d, q])
            else:
                ec += ep
                for q in range(ncol):
                    J[k, q] += eI * DI[d, q] + ec * DC[d, q] + es2 * DS[d, q] + eg * DG[d, q]


@njit(cache=True, nogil=True)
def item_sums(xs, lo, hi, lo2, hi2, c, p, inten, fwhm, eta, radius, far, scale, last, taper,
              weights):
    """Σ over each item's points of ``contribution · weights[point]`` (Bragg R)."""
    out = np.zeros(c.size)
    for i in range(c.size):
        inv = 1.0 / fwhm[i]
        e = eta[i]
        acc = 0.0
        for k in _indices(lo[i], hi[i], lo2[i], hi2[i]):
            dx = xs[k] - c[i]
            u = (dx * inv) * (dx * inv)
            lor = _TWO_PI * inv / (1.0 + 4.0 * u)
            g = _AG * inv * np.exp(-_BG * u) if u < 60.0 else 0.0
            m, _ = _weight(xs[k], p[i], radius[i], far, scale[i], last[i], taper[i])
            acc += inten[i] * (e * lor + (1.0 - e) * g) * m * weights[k]
        out[i] = acc
    return out
