"""The Thompson-Cox-Hastings pseudo-Voigt, written once: widths, pointwise value and derivatives.

Every profile built on a pseudo-Voigt (constant wavelength, the pseudo-Voigt inside the
time-of-flight convolution, background peaks) takes its total FWHM and Lorentzian fraction
from :func:`tch` and its value from :func:`pv_point`; :data:`PV_SHAPE` is the same function
as a compiled shape for the rendering kernel (:mod:`._kernels`), and :func:`pseudo_voigt`
evaluates it on arrays.

Widths follow GSAS: a Gaussian variance ``sigma2`` and a Lorentzian FWHM ``gamma`` in *width
units*; ``unit`` is the size of one width unit on the pattern's axis (0.01 deg: centidegrees
for constant wavelength, so the coefficients of a GSAS ``.prm`` file map directly; 1 µs for
time of flight).
"""
from __future__ import annotations

import numpy as np
from numba import cfunc, njit, types

__all__ = ["tch", "pv_point", "pseudo_voigt", "PV_SHAPE", "pv_params", "LN2", "SHAPE_SIG"]

LN2 = np.log(2.0)
_TCH = np.array([1.0, 2.69269, 2.42843, 4.47163, 0.07842, 1.0])
_ETA = np.array([1.36603, -0.47719, 0.11116])
_AG = 2.0 * np.sqrt(LN2 / np.pi)
_BG = 4.0 * LN2
_TWO_PI = 2.0 / np.pi

#: C signature of a compiled peak shape: ``value = shape(dx, params, out, grad)``. ``dx`` is
#: ``x - centre``; ``params`` points to the item's row of precomputed shape parameters;
#: with ``grad != 0`` the shape writes ``d value / d centre`` to ``out[0]`` and
#: ``d value / d width_j`` to ``out[1 + j]`` for each of the profile's width slots.
SHAPE_SIG = types.float64(types.float64, types.CPointer(types.float64),
                          types.CPointer(types.float64), types.int64)


def tch(sigma2: np.ndarray, gamma: np.ndarray, *, unit: float = 0.01):
    """Total FWHM and mixing of the TCH pseudo-Voigt, with derivatives.

    Parameters
    ----------
    sigma2 : ndarray
        Gaussian variance (width units²); values below 1e-6 are clipped (zero derivative).
    gamma : ndarray
        Lorentzian FWHM (width units); negative values are clipped to 0 (zero derivative
        below 0; the one-sided derivative at exactly 0, so a Lorentzian term can start at 0).
    unit : float
        Axis units per width unit (0.01: centidegrees to degrees; 1: microseconds).

    Returns
    -------
    fwhm : ndarray
        Total FWHM in axis units.
    eta : ndarray
        Lorentzian fraction.
    dfwhm_ds2, dfwhm_dg, deta_ds2, deta_dg : ndarray
        Derivatives (fwhm in axis units per width unit² / width unit).
    """
    s2c = np.maximum(sigma2, 1e-6)
    gc = np.maximum(gamma, 0.0)
    gg = np.sqrt(8.0 * LN2 * s2c)                     # Gaussian FWHM, width units
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
    fwhm = G * unit
    return (fwhm, eta, dG_dgg * dgg_ds2 * unit, dG_dgl * dgc_dg * unit,
            deta_dr * dr_dgg * dgg_ds2, deta_dr * dr_dgl * dgc_dg)


@njit(cache=True, nogil=True, inline="always")
def pv_point(dx, inv, eta):
    """Unit-area pseudo-Voigt of FWHM ``1/inv`` and mixing ``eta`` at ``dx = x - centre``.

    Returns the value and its derivatives with respect to the centre, the FWHM and eta.
    """
    u = (dx * inv) * (dx * inv)
    den = 1.0 / (1.0 + 4.0 * u)
    lor = _TWO_PI * inv * den
    g = _AG * inv * np.exp(-_BG * u) if u < 60.0 else 0.0
    val = eta * lor + (1.0 - eta) * g
    dg_dx = g * (-2.0 * _BG * dx * inv * inv)
    dl_dx = lor * (-8.0 * dx * inv * inv) * den
    d_pos = -(eta * dl_dx + (1.0 - eta) * dg_dx)
    dg_df = g * (-inv + 2.0 * _BG * u * inv)
    dl_df = lor * (-inv + 8.0 * u * inv * den)
    d_f = eta * dl_df + (1.0 - eta) * dg_df
    return val, d_pos, d_f, lor - g


@cfunc(SHAPE_SIG, cache=True, nogil=True)
def _pv_shape(dx, prm, out, grad):
    """The pseudo-Voigt as a kernel shape; ``prm = (1/fwhm, eta, dfwhm/ds2, dfwhm/dg,
    deta/ds2, deta/dg)``, width slots ``(sigma2, gamma)``."""
    val, d_pos, d_f, d_e = pv_point(dx, prm[0], prm[1])
    if grad:
        out[0] = d_pos
        out[1] = d_f * prm[2] + d_e * prm[4]
        out[2] = d_f * prm[3] + d_e * prm[5]
    return val


#: The compiled pseudo-Voigt shape (width slots ``sigma2, gamma``; see :func:`pv_params`).
PV_SHAPE = _pv_shape


def pv_params(sigma2: np.ndarray, gamma: np.ndarray, unit: float):
    """Per-item parameters of :data:`PV_SHAPE`, and the FWHM and eta (for the windows)."""
    fwhm, eta, df_ds2, df_dg, de_ds2, de_dg = tch(sigma2, gamma, unit=unit)
    prm = np.ascontiguousarray(np.column_stack([1.0 / fwhm, eta, df_ds2, df_dg, de_ds2,
                                                de_dg]))
    return prm, fwhm, eta


@njit(cache=True, nogil=True)
def _pv_arrays(dx, fwhm, eta, val, dpos, dfw, deta):
    for i in range(dx.size):
        val[i], dpos[i], dfw[i], deta[i] = pv_point(dx[i], 1.0 / fwhm[i], eta[i])


def pseudo_voigt(dx: np.ndarray, fwhm: np.ndarray, eta: np.ndarray, *, grad: bool = True):
    """Unit-area pseudo-Voigt at offsets ``dx = x - position`` (axis units).

    Returns
    -------
    value, d_dpos, d_dfwhm, d_deta : ndarray
        Value and derivatives with respect to the position, the FWHM and eta (None without
        ``grad``).
    """
    dx, fwhm, eta = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (dx, fwhm, eta)))
    shape = dx.shape
    flat = [np.ascontiguousarray(a).ravel() for a in (dx, fwhm, eta)]
    out = [np.empty(flat[0].size) for _ in range(4)]
    _pv_arrays(*flat, *out)
    val, dpos, dfw, deta = (a.reshape(shape) for a in out)
    if not grad:
        return val, None, None, None
    return val, dpos, dfw, deta
