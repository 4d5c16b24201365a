"""Finger-Cox-Jephcoat axial-divergence asymmetry of constant-wavelength peaks.

The FCJ convolution integral over the axial angle, evaluated by Gauss-Legendre quadrature:
each asymmetric peak becomes a weighted set of shifted copies (see :func:`fcj_nodes`).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["fcj_nodes"]


def _fcj_core(psi, S, H, t, gw):
    """FCJ quadrature for peaks at 2θ = psi (radians, < pi/2): shifts (rad) and weights."""
    c = np.cos(psi)
    arg_min = c * np.sqrt(1.0 + (H + S) ** 2)
    arg_inf = c * np.sqrt(1.0 + (H - S) ** 2)
    pmin = np.arccos(np.where(np.real(arg_min) < 1.0, arg_min, 1.0 - 1e-15 + 0 * arg_min))
    pinf = np.arccos(np.where(np.real(arg_inf) < 1.0, arg_inf, 1.0 - 1e-15 + 0 * arg_inf))
    span = (psi - pmin)[:, None]                               # (n, 1)
    phi = psi[:, None] - span * t[None, :] ** 2                 # (n, nq)
    cp = np.cos(phi)
    h = np.sqrt(cp ** 2 / (c[:, None] ** 2) - 1.0)
    mn = np.where(np.real(H) < np.real(S), H, S)
    W = np.where(np.real(phi) < np.real(pinf)[:, None], (H + S) - h, 2.0 * mn + 0 * h)
    wt = gw[None, :] * W / (h * cp) * 2.0 * span * t[None, :]
    wt = wt / wt.sum(axis=1, keepdims=True)
    return span * t[None, :] ** 2, wt


@lru_cache(maxsize=16)
def _nodes(nq: int):
    """Gauss-Legendre nodes and weights mapped to [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(nq)
    return 0.5 * (x + 1.0), 0.5 * w


def fcj_nodes(pos: np.ndarray, SL: float, HL: float, nq: int = 8):
    """Finger-Cox-Jephcoat axial-divergence asymmetry as a weighted set of shifted peaks.

    The FCJ convolution integral over the axial angle is evaluated by Gauss-Legendre
    quadrature after the substitution 2φ' = 2θ - (2θ - 2φ_min) t², which removes the
    inverse-square-root singularity at the peak. Derivatives with respect to the peak
    position and S/L, H/L use the complex-step method, which is exact to rounding (a
    forward-mode derivative, not a finite difference).

    Parameters
    ----------
    pos : ndarray
        Peak positions 2θ (degrees, 0 < pos < 180, pos != 90).
    SL, HL : float
        Sample and detector half-heights over the diffractometer radius.
    nq : int
        Quadrature nodes per peak.

    Returns
    -------
    shift : (n, nq) ndarray
        Signed shift of each node from the peak position (degrees; negative below 90°).
    weight : (n, nq) ndarray
        Normalised node weights.
    dshift, dweight : tuple of three (n, nq) ndarrays
        Derivatives with respect to pos (per degree), SL and HL.
    """
    t, gw = _nodes(int(nq))
    pos = np.asarray(pos, dtype=float)
    back = pos > 90.0
    psi = np.radians(np.where(back, 180.0 - pos, pos))
    sign = np.where(back, 1.0, -1.0)[:, None]
    h = 1e-30
    sh0, w0 = _fcj_core(psi, SL, HL, t, gw)
    shift = sign * np.degrees(sh0)
    dshift, dweight = [], []
    dpsi = np.where(back, -1.0, 1.0) * np.pi / 180.0
    for k in range(3):
        args = [psi.astype(complex), complex(SL), complex(HL)]
        args[k] = args[k] + 1j * h
        s, ww = _fcj_core(args[0], args[1], args[2], t, gw)
        ds = sign * np.degrees(s.imag / h)
        dw = ww.imag / h
        if k == 0:
            ds = ds * dpsi[:, None]
            dw = dw * dpsi[:, None]
        dshift.append(ds)
        dweight.append(dw)
    return shift, w0, tuple(dshift), tuple(dweight)
