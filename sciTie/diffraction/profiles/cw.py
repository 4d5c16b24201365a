"""Constant-wavelength profile: TCH pseudo-Voigt peaks with FCJ axial-divergence asymmetry.

A reflection of spacing d appears at ``2θ = 2 asin(λ/2d) + zero`` (plus the sample
displacement: ``Δ2θ = -2 shift cos θ / R`` Bragg-Brentano, ``-(disp_x cos 2θ + disp_y
sin 2θ) / R`` Debye-Scherrer), once per wavelength of a Kα doublet (the second with the
intensity ratio ``ratio``). Its intensity carries the Lorentz factor ``1/(sin²θ cos θ)`` and,
for X-rays, the polarisation ``pol + (1 - pol) cos² 2θ``. The shape is the TCH pseudo-Voigt
of :mod:`.._pseudo_voigt` with GSAS's widths (centidegrees)

    σ² = U tan²θ + V tan θ + W + P / cos²θ
    γ  = (X + 0.9 λ/size) / cos θ + (Y + 2·10⁻⁶ μ) tan θ      (size in Å, in centideg)

and the Finger-Cox-Jephcoat asymmetry of :mod:`._fcj` (S/L, H/L). GSAS ``.prm`` files and
GSAS-II ``.instprm`` files map onto these parameters directly (see :meth:`from_gsas`,
:meth:`from_instprm`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..._validation import check_choice, check_float, check_int
from ...errors import DataFormatError, ValidationError
from .._pseudo_voigt import PV_SHAPE, pv_params, tch
from .._tails import CORE_FWHM, window_fwhm
from ._base import Asymmetry, Component, PeakProfile, ReflectionContext
from ._fcj import fcj_nodes

__all__ = ["ConstantWavelength"]

_DEG = 180.0 / np.pi
_PARAMS = ("zero", "shift", "disp_x", "disp_y", "U", "V", "W", "P", "X", "Y", "SL", "HL",
           "lam1", "lam2", "ratio", "polarization")


@dataclass
class ConstantWavelength(PeakProfile):
    """A constant-wavelength diffractometer (X-ray or neutron): settings and starting values.

    Parameters
    ----------
    radiation : {'xray', 'neutron'}
    lam1 : float
        Wavelength (Å).
    lam2 : float
        Second wavelength (Å; 0: one wavelength).
    ratio : float
        Intensity ratio λ2/λ1 (Kα2/Kα1); 0 with one wavelength.
    polarization : float
        X-ray polarisation term ``pol + (1 - pol) cos² 2θ`` (0.5: unpolarised; GSAS-II's
        convention for a monochromator). Ignored for neutrons.
    geometry : {'bragg-brentano', 'debye-scherrer'}
        Chooses the sample-displacement terms: ``shift`` (µm) or ``disp_x``, ``disp_y`` (µm).
    radius : float
        Goniometer radius (mm).
    fcj_points : int
        Most quadrature nodes per peak of the axial-divergence asymmetry. The node count of
        each reflection (0, 3, 5 or ``fcj_points``) is fixed when the pattern is built from
        the asymmetry span relative to the peak width; when ``SL`` or ``HL`` is to be
        refined it is sized for at least S/L = H/L = 0.01.
    zero : float
        Zero shift (deg).
    shift, disp_x, disp_y : float
        Sample displacement (µm).
    U, V, W, P : float
        Gaussian variance coefficients (centideg²).
    X, Y : float
        Lorentzian width coefficients (centideg).
    SL, HL : float
        Sample and detector half-heights over the radius (FCJ asymmetry; >= 0).
    """

    radiation: str
    lam1: float
    lam2: float = 0.0
    ratio: float = 0.5
    polarization: float = 0.5
    geometry: str = "bragg-brentano"
    radius: float = 250.0
    fcj_points: int = 8
    zero: float = 0.0
    shift: float = 0.0
    disp_x: float = 0.0
    disp_y: float = 0.0
    U: float = 2.0
    V: float = -2.0
    W: float = 5.0
    P: float = 0.0
    X: float = 0.0
    Y: float = 0.0
    SL: float = 0.0
    HL: float = 0.0

    kind: ClassVar[str] = "cw"
    description: ClassVar[str] = "constant wavelength: TCH pseudo-Voigt with FCJ asymmetry"
    axis: ClassVar[str] = "two_theta"
    axis_units: ClassVar[str] = "degree"
    axis_label: ClassVar[str] = "2θ (degrees)"
    params: ClassVar[tuple[str, ...]] = _PARAMS
    units: ClassVar[dict] = {"zero": "deg", "shift": "µm", "disp_x": "µm", "disp_y": "µm",
                             "U": "centideg²", "V": "centideg²", "W": "centideg²",
                             "P": "centideg²", "X": "centideg", "Y": "centideg", "SL": "",
                             "HL": "", "lam1": "Å", "lam2": "Å", "ratio": "",
                             "polarization": ""}
    minimum: ClassVar[dict] = {}
    width_slots: ClassVar[tuple[str, ...]] = ("sigma2", "gamma")
    width_unit: ClassVar[float] = 0.01
    background_peak_units: ClassVar[tuple[str, ...]] = ("deg", "counts·deg", "centideg²",
                                                        "centideg")
    default_refine: ClassVar[tuple[str, ...]] = ("U", "V", "W")
    shape: ClassVar = PV_SHAPE
    settings: ClassVar[tuple[str, ...]] = ("radiation", "geometry", "radius", "lam1", "lam2",
                                           "ratio", "polarization")

    def __post_init__(self) -> None:
        self.radiation = check_choice(self.radiation, "radiation", ("xray", "neutron"))
        self.geometry = check_choice(self.geometry, "geometry",
                                     ("bragg-brentano", "debye-scherrer"))
        self.lam1 = check_float(self.lam1, "lam1 (wavelength, Å)", minimum=0.0, low_open=True)
        self.lam2 = check_float(self.lam2, "lam2 (Å; 0: one wavelength)", minimum=0.0)
        self.ratio = check_float(self.ratio, "ratio (λ2/λ1 intensity)", minimum=0.0)
        if self.lam2 == 0:
            self.ratio = 0.0
        self.polarization = check_float(self.polarization, "polarization", minimum=0.0,
                                        maximum=1.0)
        self.radius = check_float(self.radius, "radius (mm)", minimum=0.0, low_open=True)
        self.fcj_points = check_int(self.fcj_points, "fcj_points", minimum=3, maximum=64)
        self._check_values()
        if self.SL < 0 or self.HL < 0:
            raise ValidationError(f"SL and HL must be >= 0, got {self.SL:g}, {self.HL:g}")

    # -- vocabulary ----------------------------------------------------------------------------
    def displacement_names(self) -> list[str]:
        return ["shift"] if self.geometry == "bragg-brentano" else ["disp_x", "disp_y"]

    def check_range(self, lo: float, hi: float, name: str) -> None:
        if not (0 < lo < hi < 180):
            raise ValidationError(f"{name} must be (lo, hi) with 0 < lo < hi < 180, got "
                                  f"({lo:g}, {hi:g})")

    def check_widths(self, x: np.ndarray) -> None:
        # the Gaussian FWHM² must not be negative where the pattern is fitted: its square
        # root is the peak width
        tn = np.tan(np.radians(np.asarray(x, dtype=float) / 2))
        s2 = self.U * tn ** 2 + self.V * tn + self.W + self.P * (1 + tn ** 2)
        if s2.size and s2.min() < 0:
            at = int(np.argmin(s2))
            raise ValidationError(
                f"profile: the Gaussian FWHM² U tan²θ + V tanθ + W + P sec²θ is negative in "
                f"fit_range ({s2[at]:.4g} centideg² at 2theta = {x[at]:.4g}; U={self.U:g}, "
                f"V={self.V:g}, W={self.W:g}, P={self.P:g}); a peak width is its square root: "
                "give U, V, W, P (the instrument's values or its .prm) that keep it >= 0")

    def metadata(self, values: dict) -> dict:
        return {"profile": self.kind, "radiation": self.radiation,
                "wavelength": values["lam1"], "wavelength2": values["lam2"],
                "wavelength_units": "angstrom", "ratio": values["ratio"],
                "polarization": values["polarization"], "geometry": self.geometry,
                "radius_mm": self.radius}

    # -- physics ---------------------------------------------------------------------------------
    def _wavelengths(self, P: dict):
        comps = [("lam1", 1.0, None)]
        if P["lam2"] > 0:
            comps.append(("lam2", P["ratio"], "ratio"))
        return comps

    def components(self, ctx: ReflectionContext) -> list[Component]:
        P, col, grad = ctx.values, ctx.col, ctx.grad
        sq = np.sqrt(ctx.q)
        nr = sq.size
        kR = _DEG * 1e-3 / self.radius
        out = []
        for lam_name, cw, ratio_name in self._wavelengths(P):
            lam = P[lam_name]
            if lam <= 0:
                raise ValidationError(f"{lam_name} (wavelength) must be > 0, got {lam:g}")
            st = lam * sq / 2
            ok = st < 0.9999
            st = np.minimum(st, 0.9999)
            th = np.arcsin(st)
            ct = np.cos(th)
            sn = st
            tn = sn / ct
            sec = 1 / ct
            pos = 2 * th * _DEG + P["zero"]
            dpos_dth = np.full(nr, 2 * _DEG)
            if self.geometry == "bragg-brentano":
                pos = pos - 2 * kR * P["shift"] * ct
                dpos_dth = dpos_dth + 2 * kR * P["shift"] * sn
                dpos_direct = {"zero": 1.0, "shift": -2 * kR * ct}
            else:
                c2, s2t = np.cos(2 * th), np.sin(2 * th)
                pos = pos - kR * (P["disp_x"] * c2 + P["disp_y"] * s2t)
                dpos_dth = dpos_dth - kR * (-2 * P["disp_x"] * s2t + 2 * P["disp_y"] * c2)
                dpos_direct = {"zero": 1.0, "disp_x": -kR * c2, "disp_y": -kR * s2t}
            # Lorentz-polarisation
            L = 1.0 / (sn * sn * ct)
            dL = L * (-2 * ct / sn + sn / ct)
            pol = P["polarization"]
            if self.radiation == "xray":
                c22 = np.cos(2 * th) ** 2
                Pz = pol + (1 - pol) * c22
                dPz = -2 * (1 - pol) * np.sin(4 * th)
                dPz_dpol = 1 - c22
            else:
                Pz, dPz, dPz_dpol = 1.0, 0.0, 0.0
            LP = L * Pz
            dLP = dL * Pz + L * dPz
            # widths
            U, V, W, Pp, X, Y = (P[n] for n in ("U", "V", "W", "P", "X", "Y"))
            s2 = U * tn ** 2 + V * tn + W + Pp * sec ** 2
            ds2_dth = (2 * U * tn + V) * sec ** 2 + 2 * Pp * sec ** 2 * tn
            ks = 100 * _DEG * 0.9 * lam / (ctx.size * 1e4)
            kmu = 100 * _DEG * 2e-6 * tn
            km = kmu * ctx.mu
            g = X * sec + Y * tn + ks * sec + km
            dg_dth = (X + ks) * sec * tn + (Y + 100 * _DEG * 2e-6 * ctx.mu) * sec ** 2
            comp = Component(pos=pos, corr=cw * LP, widths=[s2, g], ok=ok)
            out.append(comp)
            if not grad:
                continue
            dth = (lam / (4 * sq * ct))[:, None] * ctx.dq
            dth[:, col[lam_name]] += sq / (2 * ct)
            dP = dpos_dth[:, None] * dth
            for n, val in dpos_direct.items():
                dP[:, col[n]] += val
            dC = (cw * dLP)[:, None] * dth
            if ratio_name is not None:
                dC[:, col[ratio_name]] += LP
            if self.radiation == "xray":
                dC[:, col["polarization"]] += cw * L * dPz_dpol
            dS = ds2_dth[:, None] * dth
            dS[:, col["U"]] += tn ** 2
            dS[:, col["V"]] += tn
            dS[:, col["W"]] += 1.0
            dS[:, col["P"]] += sec ** 2
            dG = dg_dth[:, None] * dth
            dG[:, col["X"]] += sec
            dG[:, col["Y"]] += tn
            dG[:, ctx.size_col] += -ks / ctx.size * sec
            dG += kmu[:, None] * ctx.dmu
            dG[:, col[lam_name]] += ks / lam * sec
            comp.dpos, comp.dcorr, comp.dwidths = dP, dC, [dS, dG]
        return out

    def positions(self, q: np.ndarray, values: dict) -> np.ndarray:
        return 2 * np.arcsin(np.clip(values["lam1"] * np.sqrt(q) / 2, 0, 1)) * _DEG

    def describe_position(self, d: float, values: dict) -> str:
        lam = values["lam1"]
        tth = float(2 * np.degrees(np.arcsin(lam / (2 * d)))) if d and lam < 2 * d \
            else float("nan")
        return f"2theta = {tth:.4g} at lam1 = {lam:g} Å"

    def width_at(self, x: np.ndarray, values: dict, size: float, mu: float):
        th = np.radians(np.minimum(x, 179.0) / 2)
        tn, sec = np.tan(th), 1 / np.cos(th)
        P = values
        s2 = P["U"] * tn ** 2 + P["V"] * tn + P["W"] + P["P"] * sec ** 2
        ks = 100 * _DEG * 0.9 * P["lam1"] / (size * 1e4)
        km = 100 * _DEG * 2e-6 * mu
        g = (P["X"] + ks) * sec + (P["Y"] + km) * tn
        fwhm, eta, *_ = tch(s2, g)
        return fwhm, eta

    def d_min(self, fit_range, values: dict, size: float, mu: float,
              tolerance: float) -> float:
        # how far the tails of reflections above the range reach down into it
        hi = fit_range[1]
        reach = 0.5
        if tolerance > 0:
            fw, eta = self.width_at(np.array([hi]), values, size, mu)
            reach += 1.5 * float(fw[0] * window_fwhm(eta, tolerance)[0])
        else:
            reach = 180.0
        top = min(hi + reach, 179.5)
        lam = [values["lam1"]] + ([values["lam2"]] if values["lam2"] > 0 else [])
        return min(lam) / (2 * np.sin(np.radians(top / 2)))

    def shape_params(self, widths: list):
        return pv_params(widths[0], widths[1], self.width_unit)

    def tails(self, prm, fwhm, eta, span, tolerance):
        return fwhm * window_fwhm(eta, tolerance) + span, CORE_FWHM * fwhm + 4.0 * span

    # -- FCJ asymmetry -------------------------------------------------------------------------
    def node_counts(self, q, values, size, mu, refining):
        sl, hl = values["SL"], values["HL"]
        if {"SL", "HL"} & set(refining):
            # asymmetry to be refined: size the quadrature for at least S/L = H/L = 0.01
            sl, hl = max(sl, 0.01), max(hl, 0.01)
        nq = np.zeros(len(q), dtype=int)
        if not (sl + hl > 0 and len(q)):
            return nq
        # nodes per peak from the asymmetry span relative to the width (fixed here)
        th = np.arcsin(np.clip(values["lam1"] * np.sqrt(q) / 2, 0, 0.9999))
        pos = 2 * th * _DEG
        ok = np.abs(pos - 90.0) > 0.5
        sh, _, _, _ = fcj_nodes(np.where(ok, pos, 45.0), sl, hl, 4)
        span = np.abs(sh).max(axis=1)
        fwhm, _ = self.width_at(pos, values, size, mu)
        r = span / fwhm
        nq = np.where(r < 0.02, 0, np.where(r < 0.15, 3, np.where(r < 0.5, 5,
                                                                  self.fcj_points)))
        return np.where(ok, nq, 0)

    def asymmetry(self, pos, nq, values, col, grad) -> Asymmetry:
        n = len(pos)
        span, mean, nodes = np.zeros(n), np.zeros(n), []
        SL, HL = values["SL"], values["HL"]
        if not (np.any(nq > 0) and SL + HL > 0):
            return Asymmetry(span, mean, nodes, None)
        dmean = np.zeros((n, 3)) if grad else None
        for k in np.unique(nq[nq > 0]):
            idx = np.flatnonzero(nq == k)
            sh, wt, dsh, dwt = fcj_nodes(pos[idx], SL, HL, int(k))
            span[idx] = np.abs(sh).max(axis=1)
            mean[idx] = (sh * wt).sum(axis=1)
            if grad:
                for j in range(3):
                    dmean[idx, j] = (dsh[j] * wt + sh * dwt[j]).sum(axis=1)
            nodes.append((idx, sh, wt, dsh, dwt))
        return Asymmetry(span, mean, nodes, dmean, (col["SL"], col["HL"]))

    # -- instrument files --------------------------------------------------------------------------
    @classmethod
    def from_gsas(cls, records: dict, htype: str | None, path) -> "ConstantWavelength":
        """The instrument of one bank of a GSAS ``.prm`` file (see :func:`.._io.read_instrument`).

        ``INS n ICONS`` holds λ1, λ2, zero (centidegrees), an unused field and the
        polarisation in fixed 10-character fields, then IPOLA and the Kα2/Kα1 ratio;
        ``INS n PRCF1`` the profile type and ``PRCF11``-``PRCF13`` its coefficients
        (types 2-4: U, V, W, P, X, Y, S/L, H/L; type 1: U, V, W). ``HTYPE`` ``PN..`` is a
        neutron instrument (Debye-Scherrer, unpolarised), otherwise X-rays (Bragg-Brentano).
        """
        if "ICONS" not in records:
            raise DataFormatError("no 'INS  n ICONS' line (wavelengths) for this bank",
                                  path=path)
        lineno, text = records["ICONS"]
        # fixed-width fields of 10 characters: lambda1, lambda2, zero, (unused), polarisation;
        # then IPOLA and the Kalpha2/Kalpha1 ratio. A field may be blank (11-BM files leave the
        # fourth one empty), so splitting on blanks would shift the polarisation.
        fields = [text[i * 10:(i + 1) * 10].strip() for i in range(5)] + text[50:].split()
        try:
            vals = [float(v) if v else None for v in fields]
        except ValueError:
            raise DataFormatError(f"non-numeric value in ICONS line {text.strip()!r}",
                                  path=path, line=lineno) from None
        if len(vals) < 3 or any(v is None for v in vals[:3]):
            raise DataFormatError("ICONS needs at least lambda1 lambda2 zero", path=path,
                                  line=lineno)
        if any(v is not None and not math.isfinite(v) for v in vals):
            raise DataFormatError(f"ICONS values must be finite numbers, got {text.strip()!r}",
                                  path=path, line=lineno)
        lam1, lam2, zero = vals[0], vals[1], vals[2]
        if lam1 <= 0:
            raise DataFormatError(f"wavelength lambda1 must be > 0, got {lam1:g}", path=path,
                                  line=lineno)
        if lam2 < 0:
            raise DataFormatError(f"wavelength lambda2 must be >= 0, got {lam2:g}", path=path,
                                  line=lineno)
        pol = vals[4] if len(vals) > 4 and vals[4] is not None else 0.5
        ratio = vals[6] if len(vals) > 6 and vals[6] is not None else 0.5
        if not 0 <= pol <= 1:
            raise DataFormatError(f"polarisation (5th ICONS field) must be in [0, 1], got "
                                  f"{pol:g}", path=path, line=lineno)
        if ratio < 0:
            raise DataFormatError(f"Kalpha2/Kalpha1 ratio must be >= 0, got {ratio:g}",
                                  path=path, line=lineno)
        neutron = bool(htype and htype.upper().startswith("PN"))
        out = {"radiation": "neutron" if neutron else "xray", "lam1": lam1, "lam2": lam2,
               "zero": zero / 100.0, "polarization": 0.5 if neutron else pol,
               "ratio": ratio if lam2 > 0 else 0.0,
               "geometry": "debye-scherrer" if neutron else "bragg-brentano"}
        if "PRCF1" in records:
            ln, t = records["PRCF1"]
            try:
                ptype = int(t.split()[0])
            except (ValueError, IndexError):
                raise DataFormatError(f"bad profile type in {t.strip()!r}", path=path,
                                      line=ln) from None
            coefs: list[float] = []
            for sub in ("PRCF11", "PRCF12", "PRCF13"):
                if sub in records:
                    ln2, t2 = records[sub]
                    try:
                        coefs += [float(v) for v in t2.split()]
                    except ValueError:
                        raise DataFormatError(f"non-numeric profile coefficient in "
                                              f"{t2.strip()!r}", path=path, line=ln2) from None
                    if not all(math.isfinite(c) for c in coefs):
                        raise DataFormatError(f"profile coefficients must be finite, got "
                                              f"{t2.strip()!r}", path=path, line=ln2)
            coefs += [0.0] * (8 - len(coefs))
            if ptype in (2, 3, 4):
                out.update(zip(("U", "V", "W", "P", "X", "Y", "SL", "HL"), coefs[:8]))
            elif ptype == 1:
                out.update(U=coefs[0], V=coefs[1], W=coefs[2], P=0.0, X=0.0, Y=0.0, SL=0.0,
                           HL=0.0)
            else:
                raise DataFormatError(f"profile type {ptype} is not supported (use 1, 2, 3 "
                                      "or 4)", path=path, line=ln)
        try:
            return cls(**out)
        except ValidationError as exc:
            raise DataFormatError(str(exc), path=path) from None

    @classmethod
    def from_instprm(cls, values: dict, path) -> "ConstantWavelength":
        """The instrument of a GSAS-II ``.instprm`` file (``Type`` ``PXC`` or ``PNC``).

        ``Lam`` (or ``Lam1``, ``Lam2``, ``I(L2)/I(L1)``), ``Zero`` (deg), ``Polariz.``,
        ``U, V, W`` (centideg²), ``X, Y`` (centideg) map directly; GSAS-II's single
        ``SH/L`` is split evenly into ``SL`` and ``HL``. A non-zero ``Z`` (a constant
        Lorentzian width this profile does not have) is refused.
        """
        def get(key, default=None):
            v = values.get(key, (None, default))[1]
            return default if v is None else v

        kind = str(get("Type", "")).upper()
        neutron = kind.startswith("PN")
        lam1 = get("Lam1", get("Lam"))
        if lam1 is None:
            raise DataFormatError("no 'Lam' (or 'Lam1') wavelength", path=path)
        lam2 = get("Lam2", 0.0)
        if abs(float(get("Z", 0.0))) > 0:
            raise DataFormatError(f"Z = {get('Z')} (a constant Lorentzian width) has no "
                                  "counterpart in the constant-wavelength profile; set it to 0",
                                  path=path, line=values["Z"][0])
        shl = float(get("SH/L", 0.0))
        out = {"radiation": "neutron" if neutron else "xray", "lam1": float(lam1),
               "lam2": float(lam2), "ratio": float(get("I(L2)/I(L1)", 0.5)),
               "polarization": 0.5 if neutron else float(get("Polariz.", 0.5)),
               "zero": float(get("Zero", 0.0)),
               "geometry": "bragg-brentano" if float(lam2) > 0 else "debye-scherrer",
               "SL": shl / 2, "HL": shl / 2}
        out.update({k: float(get(k, getattr(cls, k))) for k in ("U", "V", "W", "X", "Y")})
        try:
            return cls(**out)
        except (ValidationError, TypeError) as exc:
            raise DataFormatError(str(exc), path=path) from None
