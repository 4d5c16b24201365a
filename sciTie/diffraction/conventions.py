"""Constant-wavelength profile parameters in other programs' conventions, mapped onto sciTie's.

sciTie's peak profile is GSAS/GSAS-II's Thompson-Cox-Hastings pseudo-Voigt, with widths in
centidegrees of 2θ:

* Gaussian variance ``σ² = U tan²θ + V tanθ + W + P / cos²θ`` (centideg²), so the Gaussian
  FWHM is ``H_G = sqrt(8 ln2 σ²)``;
* Lorentzian FWHM ``γ = X / cosθ + Y tanθ`` (centideg);
* peak positions ``2θ = 2θ_Bragg + zero`` (zero in degrees).

FullProf (``Npr = 7``, the TCH pseudo-Voigt) and cryspy, the calculator of EasyDiffraction,
write the *squared* Gaussian FWHM and the Lorentzian FWHM in degrees, and give the Lorentzian
terms the other way round:

* ``H_G² = U tan²θ + V tanθ + W + IG / cos²θ`` (deg²);
* ``H_L = X tanθ + Y / cosθ`` (deg);
* FullProf's ``Zero`` and EasyDiffraction's ``_instr.2theta_offset`` shift peaks the same way
  as sciTie's ``zero`` (degrees, added to 2θ_Bragg).

Hence ``U_sciTie = U_FP · 10⁴ / (8 ln 2)`` (likewise V, W, and ``P = IG · 10⁴/(8 ln 2)``) and
``X_sciTie = 100 · Y_FP``, ``Y_sciTie = 100 · X_FP``. Both programs combine H_G and H_L with
the same TCH polynomial as sciTie, so converted parameters give the same FWHM and mixing at
every angle (``tests/test_diffraction_files.py`` checks it against the formulas written out
independently, at several angles). Asymmetry conventions differ in kind (FullProf's and
cryspy's empirical Bérar-Baldinozzi terms against sciTie's Finger-Cox-Jephcoat S/L, H/L) and
are not converted.

Examples
--------
>>> from sciTie.diffraction.conventions import profile_from_fullprof
>>> p = profile_from_fullprof(U=0.0859, V=-0.1206, W=0.1225, X=0.0, Y=0.083)
>>> round(p["W"], 2), round(p["X"], 2)
(220.91, 8.3)
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from .._validation import check_float
from ..errors import DataFormatError, ValidationError
from ._pseudo_voigt import LN2, tch

__all__ = ["profile_from_fullprof", "profile_to_fullprof", "profile_from_easydiffraction",
           "profile_to_easydiffraction", "fwhm", "read_easydiffraction_instrument",
           "GAUSS_DEG2_TO_CENTIDEG2"]

#: σ² (centideg²) per unit of H_G² (deg²): 10⁴ / (8 ln 2).
GAUSS_DEG2_TO_CENTIDEG2 = 1.0e4 / (8.0 * math.log(2.0))

_EASY = {"broad_gauss_u": "U", "broad_gauss_v": "V", "broad_gauss_w": "W",
         "broad_lorentz_x": "X", "broad_lorentz_y": "Y", "2theta_offset": "zero"}


def _num(value, what: str) -> float:
    return check_float(value, what)


def profile_from_fullprof(*, U: float = 0.0, V: float = 0.0, W: float = 0.0, X: float = 0.0,
                          Y: float = 0.0, IG: float = 0.0, zero: float = 0.0) -> dict:
    """sciTie profile values from FullProf's TCH pseudo-Voigt (``Npr = 7``) parameters.

    Parameters
    ----------
    U, V, W, IG : float
        FullProf's Gaussian terms, ``H_G² = U tan²θ + V tanθ + W + IG/cos²θ`` (deg²).
    X, Y : float
        FullProf's Lorentzian terms, ``H_L = X tanθ + Y/cosθ`` (deg).
    zero : float
        FullProf's ``Zero`` (deg).

    Returns
    -------
    dict
        ``U, V, W, P`` (centideg²), ``X, Y`` (centideg), ``zero`` (deg): the ``profile``
        argument of :class:`~sciTie.diffraction.PowderPattern`.
    """
    k = GAUSS_DEG2_TO_CENTIDEG2
    return {"U": _num(U, "U") * k, "V": _num(V, "V") * k, "W": _num(W, "W") * k,
            "P": _num(IG, "IG") * k, "X": 100.0 * _num(Y, "Y"), "Y": 100.0 * _num(X, "X"),
            "zero": _num(zero, "zero")}


def profile_to_fullprof(profile: dict) -> dict:
    """The inverse of :func:`profile_from_fullprof`: ``U, V, W, IG`` (deg²), ``X, Y`` (deg),
    ``zero`` (deg) from sciTie's profile values (missing ones are 0)."""
    if not isinstance(profile, dict):
        raise ValidationError(f"profile must be a dict of sciTie profile values (U, V, W, P, X, "
                              f"Y, zero), got {type(profile).__name__}")
    bad = sorted(set(profile) - {"U", "V", "W", "P", "X", "Y", "SL", "HL", "zero"})
    if bad:
        raise ValidationError(f"profile: unknown keys {bad}; expected U, V, W, P, X, Y, zero")
    g = {k: _num(profile.get(k, 0.0), k) for k in ("U", "V", "W", "P", "X", "Y", "zero")}
    k = GAUSS_DEG2_TO_CENTIDEG2
    return {"U": g["U"] / k, "V": g["V"] / k, "W": g["W"] / k, "IG": g["P"] / k,
            "X": g["Y"] / 100.0, "Y": g["X"] / 100.0, "zero": g["zero"]}


def profile_from_easydiffraction(params: dict) -> dict:
    """sciTie profile values from EasyDiffraction's (cryspy's) constant-wavelength names.

    Parameters
    ----------
    params : dict
        Any of ``broad_gauss_u``, ``broad_gauss_v``, ``broad_gauss_w`` (deg²),
        ``broad_lorentz_x``, ``broad_lorentz_y`` (deg) and ``2theta_offset`` (deg), with or
        without their CIF prefixes (``_peak.broad_gauss_u``, ``_instr.2theta_offset``).
        cryspy uses FullProf's formulas (see the module notes).

    Returns
    -------
    dict
        As :func:`profile_from_fullprof`.
    """
    if not isinstance(params, dict):
        raise ValidationError(f"params must be a dict of EasyDiffraction profile values, got "
                              f"{type(params).__name__}")
    fp = {}
    for key, value in params.items():
        short = str(key).rsplit(".", 1)[-1]
        if short not in _EASY:
            raise ValidationError(f"params: unknown EasyDiffraction profile key {key!r}; "
                                  f"expected {', '.join(_EASY)}")
        fp[_EASY[short]] = value
    return profile_from_fullprof(**fp)


def profile_to_easydiffraction(profile: dict) -> dict:
    """EasyDiffraction's CIF names (``_peak.broad_gauss_u`` ... ``_instr.2theta_offset``)
    for sciTie's profile values."""
    fp = profile_to_fullprof(profile)
    if fp["IG"]:
        raise ValidationError(f"profile['P'] = {profile['P']:g}: EasyDiffraction's profile has "
                              "no 1/cos²θ Gaussian term; set P to 0 first")
    prefix = {"zero": "_instr."}
    return {f"{prefix.get(v, '_peak.')}{k}": fp[v] for k, v in _EASY.items()}


def fwhm(profile: dict, two_theta) -> tuple[np.ndarray, np.ndarray]:
    """Total FWHM (degrees) and Lorentzian fraction η of sciTie's TCH pseudo-Voigt with the
    instrument ``profile`` (U, V, W, P, X, Y) at ``two_theta`` (degrees)."""
    tt = np.asarray(two_theta, dtype=float)
    th = np.radians(tt / 2.0)
    tn, sec = np.tan(th), 1.0 / np.cos(th)
    p = {k: _num(profile.get(k, 0.0), k) for k in ("U", "V", "W", "P", "X", "Y")}
    s2 = p["U"] * tn ** 2 + p["V"] * tn + p["W"] + p["P"] * sec ** 2
    gam = p["X"] * sec + p["Y"] * tn
    width, eta, *_ = tch(s2, gam)
    return width, eta


def read_easydiffraction_instrument(path: str | os.PathLike):
    """The instrument of an EasyDiffraction experiment CIF, as :func:`read_instrument` gives
    it for a GSAS file.

    Reads ``_expt_type.radiation_probe`` (neutron or X-ray), ``_instr.wavelength``,
    ``_instr.2theta_offset`` and the ``_peak.broad_*`` terms (converted by
    :func:`profile_from_easydiffraction`). Non-zero empirical asymmetry terms
    (``_peak.asym_empir_*``) have no sciTie equivalent and are reported with a warning.
    So ``--instrument experiment.cif`` (and :func:`~sciTie.diffraction.read_instrument`)
    works where a GSAS ``.prm`` file would.

    Returns
    -------
    ConstantWavelength
        One wavelength, unpolarised; its ``source_file`` attribute names the file.

    Raises
    ------
    DataFormatError
        A file without a wavelength or of another beam mode (time of flight).
    """
    import gemmi

    from ..io import as_path
    from .profiles import ConstantWavelength

    path = as_path(path, "path")
    try:
        blk = gemmi.cif.read_file(str(path)).sole_block()
    except (RuntimeError, ValueError) as exc:
        raise DataFormatError(f"not a readable single-block CIF: {exc}", path=path) from None

    def value(tag):
        v = blk.find_value(tag)
        return None if v is None or gemmi.cif.is_null(v) else v

    def number(tag, default=None):
        v = value(tag)
        if v is None:
            return default
        x = gemmi.cif.as_number(v)
        if not math.isfinite(x):
            raise DataFormatError(f"{tag} must be a number, got {v!r}", path=path)
        return float(x)

    mode = value("_expt_type.beam_mode")
    if mode is not None and "wavelength" not in gemmi.cif.as_string(mode).lower():
        raise DataFormatError(f"_expt_type.beam_mode is {gemmi.cif.as_string(mode)!r}: only "
                              "constant-wavelength experiments are read here", path=path)
    lam = number("_instr.wavelength")
    if lam is None or lam <= 0:
        raise DataFormatError("no positive _instr.wavelength: not an EasyDiffraction "
                              "constant-wavelength experiment", path=path)
    probe = value("_expt_type.radiation_probe")
    probe = gemmi.cif.as_string(probe).lower() if probe is not None else "neutron"
    radiation = "xray" if "ray" in probe else "neutron"
    params = {k: number(("_instr." if k == "2theta_offset" else "_peak.") + k, 0.0)
              for k in _EASY}
    asym = {k: number(f"_peak.asym_empir_{k}", 0.0) for k in range(1, 5)}
    if any(asym.values()):
        warnings.warn(f"{Path(path).name}: empirical asymmetry terms "
                      f"{[v for v in asym.values()]} have no equivalent in sciTie (which "
                      "models axial divergence by S/L, H/L): ignored", UserWarning,
                      stacklevel=2)
    prof = profile_from_easydiffraction(params)
    inst = ConstantWavelength(radiation=radiation, lam1=lam, lam2=0.0, ratio=0.0,
                              polarization=0.5, **prof)
    inst.source_file = str(path)
    return inst
