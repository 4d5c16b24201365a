"""Peak shapes: Thompson-Cox-Hastings pseudo-Voigt and Finger-Cox-Jephcoat axial asymmetry.

Widths follow GSAS: the Gaussian variance ``sigma2`` is in centidegree² and the Lorentzian
FWHM ``gamma`` in centidegrees, so the coefficients of a GSAS ``.prm`` file map directly.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["tch", "pseudo_voigt", "fcj_nodes", "LN2"]

LN2 = np.log(2.0)
_TCH = np.array([1.0, 2.69269, 2.42843, 4.47163, 0.07842, 1.0])
_ETA = np.array([1.36603, -0.47719, 0.11116])
_AG = 2.0 * np.sqrt(LN2 / np.pi)
_BG = 4.0 * LN2


def tch(sigma2: np.ndarray, gamma: np.ndarray):
    """Total FWHM and mixing of the TCH pseudo-Voigt, with derivatives.

    Parameters
    ----------
    sigma2 : ndarray
        Gaussian variance (centideg²); values below 1e-6 are clipped (zero derivative).
    gamma : ndarray
        Lorentzian FWHM (centideg); negative values are clipped to 0 (zero derivative below
        0; the one-sided derivative at exactly 0, so a Lorentzian term can start at 0).

    Returns
    -------
    fwhm : ndarray
        Total FWHM in degrees.
    eta : ndarray
        Lorentzian fraction.
    dfwhm_ds2, dfwhm_dg, deta_ds2, deta_dg : ndarray
        Derivatives (fwhm in degrees per centideg² / centideg).
    """
    s2c = np.maximum(sigma2, 1e-6)
    gc = np.maximum(gamma, 0.0)
    gg = np.sqrt(8.0 * LN2 * s2c)                     # Gaussian FWHM, centideg
    dgg_ds2 = np.where(sigma2 > 1e-6, 4.0 * LN2 / gg, 0.0)
    dgc_dg = np.where(gamma >= 0.0, 1.0, 0.0)
    powg = [gg ** k for k in range(6)]
    powl = [gc ** k for k in range(6)]
    G5 = sum(_TCH[m] * powg[5 - m] * powl[m] for m in range(6))
    G = G5 ** 0.2
    dG5_dgg = sum(_TCH[m] * (5 - m) * powg[4 - m] * powl[m] for m in range(5))
    dG5_dgl = sum(_TCH[m] * m * powg[5 - m] * powl[m - 1] for m in range(1, 6))
    dG_dG5 = 0.2 * G / G5
    dG_dgg = dG_dG5 * dG5_dgg
    dG_dgl = dG_dG5 * dG5_dgl
    r = gc / G
    eta = _ETA[0] * r + _ETA[1] * r ** 2 + _ETA[2] * r ** 3
    deta_dr = _ETA[0] + 2 * _ETA[1] * r + 3 * _ETA[2] * r ** 2
    dr_dgg = -gc / G ** 2 * dG_dgg
    dr_dgl = 1.0 / G - gc / G ** 2 * dG_dgl
    fwhm = G / 100.0
    return (fwhm, eta, dG_dgg * dgg_ds2 / 100.0, dG_dgl * dgc_dg / 100.0,
            deta_dr * dr_dgg * dgg_ds2, deta_dr * dr_dgl * dgc_dg)


def pseudo_voigt(dx: np.ndarray, fwhm: np.ndarray, eta: np.ndarray, *, grad: bool = True):
    """Unit-area pseudo-Voigt at offsets ``dx = x - position`` (degrees).

    Returns
    -------
    value, d_dpos, d_dfwhm, d_deta : ndarray
        Value and derivatives with respect to the position, the FWHM and eta.
    """
    inv = 1.0 / fwhm
    u = (dx * inv) ** 2
    g = _AG * inv * np.exp(-_BG * u)
    den = 1.0 / (1.0 + 4.0 * u)
    lor = (2.0 / np.pi) * inv * den
    val = eta * lor + (1.0 - eta) * g
    if not grad:
        return val, None, None, None
    # d/dx
    dg_dx = g * (-2.0 * _BG * dx * inv * inv)
    dl_dx = lor * (-8.0 * dx * inv * inv) * den
    d_dpos = -(eta * dl_dx + (1.0 - eta) * dg_dx)
    dg_df = g * (-inv + 2.0 * _BG * u * inv)
    dl_df = lor * (-inv + 8.0 * u * inv * den)
    d_df = eta * dl_df + (1.0 - eta) * dg_df
    return val, d_dpos, d_df, lor - g


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
