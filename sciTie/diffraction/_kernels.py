"""Compiled loops of the pattern model: profile sums and their Jacobian, peak by peak.

A peak ("item") has a profile centre ``c``, a window/switch centre ``p``, an intensity, a
row of precomputed shape parameters and a window of grid indices ``[lo, hi)``. Its
contribution at a grid point is ``I · shape(x - c) · m(|x - p| / radius)``, where ``shape``
is the profile's compiled peak shape (signature :data:`~._pseudo_voigt.SHAPE_SIG`, passed as
a first-class C function so that this kernel serves every profile and stays cached) and
``m`` is ``1 - s`` (core) or ``s`` (far-field band) of the smooth switch of
:func:`sciTie.diffraction._tails.switch` (``m = 1`` for a radius <= 0: no switch). The
Jacobian rows of an item (``dI, dc``, one per width slot, and ``dp`` when the switch centre
differs from the profile centre) are stacked in ``DD[row, term, entry]``, each term holding
only the columns where it is not zero (a phase's cell reaches neither the other phase's
peaks nor the background), and combined per point, so no pair arrays are ever stored.
Far-field bands are drawn on coarse grids and added to the data points by
:func:`interpolate_add`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["render_items", "interpolate_add", "item_sums"]


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


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc", "arcp", "nsz"})
def render_items(shape, n_width, xs, lo, hi, lo2, hi2, c, p, inten, prm, radius, far, scale,
                 last, taper, drow, DD, cols, ncols, has_p, grad, y, J):
    """Add every item's profile to ``y`` (and its Jacobian to ``J``).

    Item ``i`` covers the grid indices ``[lo[i], hi[i])`` and ``[lo2[i], hi2[i])``; its shape
    parameters are ``prm[i]`` and its derivative rows ``DD[drow[i]]``: the terms ``dI, dc``,
    the ``n_width`` width slots and, when ``has_p``, ``dp``. Term ``t`` is not zero in the
    columns ``cols[t, :ncols[t]]`` of ``J`` only, and ``DD[:, t, q]`` holds its entry in
    column ``cols[t, q]``.

    Each item's terms are first spread over the columns of ``J`` (``B``, terms x columns),
    so that every point adds whole rows of ``J``: contiguous and vectorised, where
    scattering single entries took half as long again for the whole kernel.
    """
    nterm = DD.shape[1]
    out = np.empty(n_width + 1)
    optr = out.ctypes
    e = np.empty(nterm)
    B = np.zeros((nterm, J.shape[1]))
    flag = 1 if grad else 0
    for i in range(c.size):
        Ii = inten[i]
        ci = c[i]
        pi = p[i]
        ri = radius[i]
        si = scale[i]
        li = last[i]
        ti = taper[i]
        rptr = prm[i].ctypes
        if grad:
            d = drow[i]
            B[:, :] = 0.0
            for t in range(nterm):
                for q in range(ncols[t]):
                    B[t, cols[t, q]] = DD[d, t, q]
        for side in range(2):
            a = lo[i] if side == 0 else lo2[i]
            b = hi[i] if side == 0 else hi2[i]
            for k in range(a, b):
                val = shape(xs[k] - ci, rptr, optr, flag)
                m, dmdp = _weight(xs[k], pi, ri, far, si, li, ti)
                y[k] += Ii * val * m
                if not grad:
                    continue
                Im = Ii * m
                e[0] = val * m
                e[1] = Im * out[0]
                for j in range(n_width):
                    e[2 + j] = Im * out[1 + j]
                ep = Ii * val * dmdp
                if has_p:
                    e[2 + n_width] = ep
                else:
                    e[1] += ep
                row = J[k]
                for t in range(nterm):
                    et = e[t]
                    Bt = B[t]
                    for q in range(row.size):
                        row[q] += et * Bt[q]


@njit(cache=True, nogil=True)
def interpolate_add(index, weight, start, stop, offset, src, dst):
    """``dst[k] += (1 - w) src[offset + j] + w src[offset + j + 1]`` (rows, every column) for
    the points ``start <= k < stop``, with ``j = index[k]``, ``w = weight[k]``."""
    ncol = dst.shape[1]
    for k in range(start, stop):
        j = offset + index[k]
        w = weight[k]
        for q in range(ncol):
            dst[k, q] += (1.0 - w) * src[j, q] + w * src[j + 1, q]


@njit(cache=True, nogil=True)
def item_sums(shape, xs, lo, hi, lo2, hi2, c, p, inten, prm, radius, far, scale, last, taper,
              weights):
    """Σ over each item's points of ``contribution · weights[point]`` (Bragg R)."""
    out = np.zeros(c.size)
    buf = np.empty(1)
    for i in range(c.size):
        acc = 0.0
        rptr = prm[i].ctypes
        for side in range(2):
            a = lo[i] if side == 0 else lo2[i]
            b = hi[i] if side == 0 else hi2[i]
            for k in range(a, b):
                val = shape(xs[k] - c[i], rptr, buf.ctypes, 0)
                m, _ = _weight(xs[k], p[i], radius[i], far, scale[i], last[i], taper[i])
                acc += inten[i] * val * m * weights[k]
        out[i] = acc
    return out


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc", "arcp", "nsz"})
def phase_sums(hkl, rot, tran, xyz, images, grad):
    """Sums over the symmetry images of every atom of every reflection.

    With ``φ = 2π (h·R_g·x_a + h·t_g)``: ``Gr = Σ_g m cos φ``, ``Gi = Σ_g m sin φ`` (n, na),
    ``m = images[n, g, a]`` (1 where ``images`` is empty), and with ``grad`` their
    derivatives over the coordinates ``dGr = -2π Σ_g m (h·R_g) sin φ``, ``dGi`` (n, na, 3),
    and the image terms ``cs = m cos φ``, ``sn = m sin φ`` (n, g, na; only where ``images``
    is given). One pass with no (n, g, na) temporaries: numpy's einsum chain cost four
    times as long.
    """
    n = hkl.shape[0]
    ng = rot.shape[0]
    na = xyz.shape[0]
    has_images = images.shape[0] > 0
    Gr = np.zeros((n, na))
    Gi = np.zeros((n, na))
    dGr = np.zeros((n if grad else 0, na, 3))
    dGi = np.zeros((n if grad else 0, na, 3))
    cs = np.empty((n if has_images else 0, ng, na))
    sn = np.empty((n if has_images else 0, ng, na))
    hR = np.empty(3)
    two_pi = 2.0 * np.pi
    for i in range(n):
        h0, h1, h2 = hkl[i, 0], hkl[i, 1], hkl[i, 2]
        for g in range(ng):
            for j in range(3):
                hR[j] = h0 * rot[g, 0, j] + h1 * rot[g, 1, j] + h2 * rot[g, 2, j]
            ht = h0 * tran[g, 0] + h1 * tran[g, 1] + h2 * tran[g, 2]
            for a in range(na):
                phi = two_pi * (hR[0] * xyz[a, 0] + hR[1] * xyz[a, 1] + hR[2] * xyz[a, 2]
                                + ht)
                c = np.cos(phi)
                s = np.sin(phi)
                if has_images:
                    c *= images[i, g, a]
                    s *= images[i, g, a]
                    cs[i, g, a] = c
                    sn[i, g, a] = s
                Gr[i, a] += c
                Gi[i, a] += s
                if grad:
                    for j in range(3):
                        dGr[i, a, j] -= two_pi * hR[j] * s
                        dGi[i, a, j] += two_pi * hR[j] * c
    return Gr, Gi, dGr, dGi, cs, sn
