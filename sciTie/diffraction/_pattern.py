"""Constant-wavelength powder pattern of one phase, with exact derivatives.

The calculated pattern is ``y(2θ) = background + Σ_peaks I · pV(2θ - pos; FWHM, η)``. Every
peak quantity (intensity, position, Gaussian variance, Lorentzian width) is computed per
reflection and wavelength together with its derivatives with respect to the local
parameters (cell, atoms, instrument, background); the pattern's Jacobian is then one sparse
product ``[∂y/∂I | ∂y/∂pos | ∂y/∂σ² | ∂y/∂γ] @ [dI; dpos; dσ²; dγ]``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import xarray as xr

from ..core import ParameterGroup
from ._crystal import ATOM_PARAMS, CELL_NAMES, Phase, metric_derivatives, metric_tensor
from ._io import read_gsas_prm, read_gsas_std, read_xye
from ._profile import fcj_nodes, pseudo_voigt, tch

__all__ = ["PowderPattern", "PATTERN_PARAMS"]

PATTERN_PARAMS = ("scale", "zero", "shift", "disp_x", "disp_y", "U", "V", "W", "P", "X", "Y",
                  "SL", "HL", "size", "mustrain", "D11", "D22", "D33", "D12", "D13", "D23",
                  "lam1", "lam2", "ratio", "polarization")
_IDX = {n: i for i, n in enumerate(PATTERN_PARAMS)}
_DEG = 180.0 / np.pi


def _chebyshev(t: np.ndarray, n: int) -> np.ndarray:
    T = np.empty((t.size, n))
    if n > 0:
        T[:, 0] = 1.0
    if n > 1:
        T[:, 1] = t
    for k in range(2, n):
        T[:, k] = 2 * t * T[:, k - 1] - T[:, k - 2]
    return T


class PowderPattern:
    """One constant-wavelength powder pattern of a :class:`Phase`, with its own parameters.

    Parameters
    ----------
    data : xarray.DataArray
        Observed pattern with a ``two_theta`` coordinate (degrees) and ``variance``.
    phase : Phase
        The crystal structure (its group is shared when several patterns use it).
    name : str
        Name of the pattern's :attr:`group` (``"xray"``, ``"neutron"``).
    radiation : {'xray', 'neutron'}
    lam1, lam2 : float
        Wavelengths (Å); ``lam2 = 0`` for a single wavelength.
    ratio : float
        Intensity ratio λ2/λ1 (Kα2/Kα1).
    polarization : float
        X-ray polarisation term ``pol + (1 - pol) cos² 2θ`` (0.5: unpolarised; GSAS-II's
        convention for a monochromator). Ignored for neutrons.
    geometry : {'bragg-brentano', 'debye-scherrer'}
        Chooses the sample-displacement terms: ``shift`` (µm, Δ2θ = -2 shift cos θ / R) or
        ``disp_x``, ``disp_y`` (µm, Δ2θ = -(disp_x cos 2θ + disp_y sin 2θ) / R).
    radius : float
        Goniometer radius (mm).
    fit_range : (float, float), optional
        2θ limits of the refinement (default: the whole pattern).
    exclude : list of (float, float)
        Excluded 2θ regions.
    n_background : int
        Number of Chebyshev background terms.
    profile : dict
        Initial ``U, V, W, P`` (centideg²), ``X, Y`` (centideg), ``SL, HL``, ``zero`` (deg).
    peak_cutoff : float
        Peaks are evaluated within ± ``(3 + sqrt(eta) (peak_cutoff - 3))`` FWHM: three
        FWHM for a Gaussian, ``peak_cutoff`` FWHM for a Lorentzian.
    fcj_points : int
        Most quadrature nodes per peak of the axial-divergence asymmetry. The node count of
        each reflection (0, 3, 5 or ``fcj_points``) is fixed here from the asymmetry span
        relative to the peak width; when ``refine_profile`` includes ``SL`` or ``HL`` it is
        sized for at least S/L = H/L = 0.01. The asymmetry is applied while SL + HL > 0.
    cell_correction : bool
        Whether staged refinement frees this pattern's cell-correction terms (``D..``), e.g.
        for data taken at another temperature.
    refine_zero : bool
        Whether staged refinement frees ``zero``.
    refine_displacement : bool
        Whether staged refinement frees the sample displacement with ``zero`` (``shift``
        for Bragg-Brentano, ``disp_x`` and ``disp_y`` for Debye-Scherrer).
    refine_profile : tuple of str
        Profile parameters freed by the "profile" stage.
    refine_profile_late : tuple of str
        Profile parameters freed only with the atoms (``"late_profile"`` in
        :meth:`JointRefinement.set_refined`), e.g. the Gaussian ``U, V, W`` once the
        Lorentzian widths and the structure are close: refined from the start they can
        drive the Gaussian variance below zero, where it is clipped and its derivative
        vanishes.

    Attributes
    ----------
    group : ParameterGroup
        ``scale, zero, shift, disp_x, disp_y, U, V, W, P, X, Y, SL, HL, size, mustrain,
        D11..D23, lam1, lam2, ratio, polarization, bkg``. ``D..`` are additive corrections
        to the reciprocal metric (1/d² = hᵀG*h + D11 h² + D22 k² + D33 l² + D12 hk + D13 hl
        + D23 kl) tied by crystal system; all start fixed except ``scale`` and ``bkg``.
    """

    def __init__(self, data: xr.DataArray, phase: Phase, *, name: str = "pattern",
                 radiation: str = "xray", lam1: float = 1.5405, lam2: float = 0.0,
                 ratio: float = 0.5, polarization: float = 0.5,
                 geometry: str = "bragg-brentano", radius: float = 250.0,
                 fit_range: tuple[float, float] | None = None, exclude=(),
                 n_background: int = 6, profile: dict | None = None,
                 peak_cutoff: float = 12.0, fcj_points: int = 8,
                 cell_correction: bool = False, refine_zero: bool = True,
                 refine_displacement: bool = False,
                 refine_profile=("U", "V", "W"), refine_profile_late=()) -> None:
        if not isinstance(data, xr.DataArray) or "two_theta" not in data.coords \
                or "variance" not in data.coords:
            raise TypeError("data must be an xarray.DataArray with 'two_theta' and 'variance' "
                            "coordinates (see read_gsas_std / make_pattern)")
        if radiation not in ("xray", "neutron"):
            raise ValueError(f"radiation must be 'xray' or 'neutron', got {radiation!r}")
        if geometry not in ("bragg-brentano", "debye-scherrer"):
            raise ValueError(f"geometry must be 'bragg-brentano' or 'debye-scherrer', got "
                             f"{geometry!r}")
        if not (lam1 > 0):
            raise ValueError(f"lam1 (wavelength) must be > 0, got {lam1}")
        if lam2 < 0:
            raise ValueError(f"lam2 must be >= 0 (0: one wavelength), got {lam2}")
        if radius <= 0:
            raise ValueError(f"radius must be > 0 mm, got {radius}")
        if n_background < 0:
            raise ValueError(f"n_background must be >= 0, got {n_background}")
        self.data = data
        self.phase = phase
        self.cell_correction = bool(cell_correction)
        self.refine_zero = bool(refine_zero)
        self.refine_displacement = bool(refine_displacement)
        for arg, names in (("refine_profile", refine_profile),
                           ("refine_profile_late", refine_profile_late)):
            bad = [n for n in names if n not in PATTERN_PARAMS]
            if bad:
                raise ValueError(f"{arg}: unknown parameters {bad}; expected names from "
                                 f"PATTERN_PARAMS")
        self.refine_profile = tuple(refine_profile)
        self.refine_profile_late = tuple(refine_profile_late)
        self.name = name
        self.radiation = radiation
        self.geometry = geometry
        self.radius = float(radius)
        self.peak_cutoff = float(peak_cutoff)
        self.fcj_points = int(fcj_points)
        tth = data["two_theta"].values
        if fit_range is None:
            fit_range = (float(tth[0]), float(tth[-1]))
        lo, hi = map(float, fit_range)
        if not (lo < hi) or hi >= 180 or lo <= 0:
            raise ValueError(f"fit_range must be (lo, hi) with 0 < lo < hi < 180, got {fit_range}")
        mask = (tth >= lo) & (tth <= hi)
        for reg in exclude:
            a, b = reg
            mask &= ~((tth >= a) & (tth <= b))
        if mask.sum() < 10:
            raise ValueError(f"fit_range/exclude leave {int(mask.sum())} points; need at least 10")
        self.fit_range = (lo, hi)
        self.exclude = [tuple(r) for r in exclude]
        self.mask = mask
        self.x = tth[mask]
        self.obs = data.values[mask].astype(float)
        self.sigma = np.sqrt(data["variance"].values[mask])
        self.n_background = int(n_background)
        self.cheb = _chebyshev(2 * (self.x - lo) / (hi - lo) - 1, self.n_background)
        prof = {"U": 2.0, "V": -2.0, "W": 5.0, "P": 0.0, "X": 0.0, "Y": 0.0, "SL": 0.0,
                "HL": 0.0, "zero": 0.0}
        prof.update(profile or {})
        init = {"scale": 1.0, "shift": 0.0, "disp_x": 0.0, "disp_y": 0.0, "size": 1.0e3,
                "mustrain": 0.0, "D11": 0.0, "D22": 0.0, "D33": 0.0, "D12": 0.0, "D13": 0.0,
                "D23": 0.0, "lam1": float(lam1), "lam2": float(lam2),
                "ratio": float(ratio) if lam2 > 0 else 0.0,
                "polarization": float(polarization)}
        init.update({k: float(prof[k]) for k in ("U", "V", "W", "P", "X", "Y", "SL", "HL",
                                                  "zero")})
        self.group = self._make_group(init)
        self.scattering = phase.scattering(radiation, lam1)
        self._setup_reflections()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_files(cls, data_path: str | os.PathLike, prm_path: str | os.PathLike | None,
                   phase: Phase, **kwargs) -> "PowderPattern":
        """Read data (GSAS STD or xye) and a GSAS ``.prm`` file and build the pattern.

        Keyword arguments override the instrument values from the ``.prm`` file.
        """
        data_path = Path(data_path)
        if data_path.suffix.lower() in (".xye", ".xy", ".dat", ".txt"):
            data = read_xye(data_path)
        else:
            data = read_gsas_std(data_path)
        opts: dict = {}
        if prm_path is not None:
            prm = read_gsas_prm(prm_path)
            opts = {"radiation": prm["radiation"], "lam1": prm["lam1"], "lam2": prm["lam2"],
                    "ratio": prm["ratio"],
                    "polarization": prm["polarization"] if prm["radiation"] == "xray" else 0.5,
                    "profile": {k: prm[k] for k in ("U", "V", "W", "P", "X", "Y", "SL", "HL")
                                if k in prm}}
            opts["profile"]["zero"] = prm["zero"]
            if prm["radiation"] == "neutron":
                opts["geometry"] = "debye-scherrer"
        prof = dict(opts.get("profile", {}))
        prof.update(kwargs.pop("profile", {}) or {})
        opts.update(kwargs)
        opts["profile"] = prof
        return cls(data, phase, **opts)

    def _make_group(self, init: dict) -> ParameterGroup:
        g = ParameterGroup(self.name, description=f"{self.radiation} pattern")
        units = {"scale": "", "zero": "deg", "shift": "µm", "disp_x": "µm", "disp_y": "µm",
                 "U": "centideg²", "V": "centideg²", "W": "centideg²", "P": "centideg²",
                 "X": "centideg", "Y": "centideg", "SL": "", "HL": "", "size": "µm",
                 "mustrain": "1e-6", "lam1": "Å", "lam2": "Å", "ratio": "", "polarization": ""}
        for n in PATTERN_PARAMS:
            kw = {}
            g.add(n, init[n], vary=(n == "scale"), unit=units.get(n, "Å⁻²"), **kw)
        g.add("bkg", np.zeros(self.n_background), unit="counts",
              description="Chebyshev background coefficients")
        system = self.phase.crystal_system
        if system in ("cubic", "tetragonal", "hexagonal", "trigonal"):
            g.tie("D22", to="D11")
        if system == "cubic":
            g.tie("D33", to="D11")
        if system in ("hexagonal", "trigonal"):
            g.tie("D12", to="D11")
        self._allowed_D = {"cubic": ["D11"], "tetragonal": ["D11", "D33"],
                           "orthorhombic": ["D11", "D22", "D33"],
                           "hexagonal": ["D11", "D33"], "trigonal": ["D11", "D33"],
                           "monoclinic": ["D11", "D22", "D33", "D13"]}.get(
            system, ["D11", "D22", "D33", "D12", "D13", "D23"])
        return g

    @property
    def cell_correction_names(self) -> list[str]:
        """The ``D`` terms allowed (and independent) in this crystal system."""
        return list(self._allowed_D)

    def _setup_reflections(self) -> None:
        v = self.group.values()
        lam = [v["lam1"]] + ([v["lam2"]] if v["lam2"] > 0 else [])
        hi = min(self.fit_range[1] + 2.0, 179.0)
        dmin = min(lam) / (2 * np.sin(np.radians(hi / 2)))
        self.hkl, self.mult = self.phase.reflections(dmin)
        h, k, l = self.hkl.T
        self.hh = np.column_stack([h * h, k * k, l * l, h * k, h * l, k * l]).astype(float)
        self.fcj_mask = None
        sv = self._struct_arrays(self.phase.group.values())
        pv, _ = self._pattern_arrays(v)
        self.fcj_mask = np.zeros(len(self.hkl), dtype=int)
        sl, hl = pv[_IDX["SL"]], pv[_IDX["HL"]]
        if {"SL", "HL"} & set(self.refine_profile + self.refine_profile_late):
            # asymmetry to be refined: size the quadrature for at least S/L = H/L = 0.01
            sl, hl = max(sl, 0.01), max(hl, 0.01)
        if sl + hl > 0:
            # nodes per peak from the asymmetry span relative to the width (fixed at setup)
            q, _, _ = self._q(sv[0], pv)
            th = np.arcsin(np.clip(pv[_IDX["lam1"]] * np.sqrt(q) / 2, 0, 0.9999))
            pos = 2 * th * _DEG
            ok = np.abs(pos - 90.0) > 0.5
            sh, _, _, _ = fcj_nodes(np.where(ok, pos, 45.0), sl, hl, 4)
            span = np.abs(sh).max(axis=1)
            tn = np.tan(th)
            s2 = (pv[_IDX["U"]] * tn ** 2 + pv[_IDX["V"]] * tn + pv[_IDX["W"]]
                  + pv[_IDX["P"]] / np.cos(th) ** 2)
            fwhm, _, _, _, _, _ = tch(s2, pv[_IDX["X"]] / np.cos(th) + pv[_IDX["Y"]] * tn)
            r = span / fwhm
            nq = np.where(r < 0.02, 0, np.where(r < 0.15, 3, np.where(r < 0.5, 5,
                                                                      self.fcj_points)))
            self.fcj_mask = np.where(ok, nq, 0)

    # -- parameter plumbing ---------------------------------------------------------------------
    def _struct_arrays(self, vals) -> tuple[np.ndarray, np.ndarray]:
        cell = np.array([vals[n] for n in CELL_NAMES])
        atoms = np.array([[vals[f"{a.name}.{p}"] for p in ATOM_PARAMS] for a in self.phase.atoms])
        return cell, atoms

    def _pattern_arrays(self, vals) -> tuple[np.ndarray, np.ndarray]:
        p = np.array([vals[n] for n in PATTERN_PARAMS])
        b = np.asarray(vals["bkg"], dtype=float).reshape(-1)
        return p, b

    def local_names(self, prefix_structure: str = "structure", prefix: str | None = None):
        """Names of the local derivative columns as slot names of a joint group."""
        prefix = self.name if prefix is None else prefix
        s = f"{prefix_structure}." if prefix_structure else ""
        names = [s + n for n in CELL_NAMES]
        names += [f"{s}{a.name}.{p}" for a in self.phase.atoms for p in ATOM_PARAMS]
        names += [f"{prefix}.{n}" for n in PATTERN_PARAMS]
        names += [f"{prefix}.bkg[{i}]" for i in range(self.n_background)]
        return names

    @property
    def n_local(self) -> int:
        """Number of local derivative columns."""
        return 6 + 5 * len(self.phase.atoms) + len(PATTERN_PARAMS) + self.n_background

    # -- model --------------------------------------------------------------------------------------
    def _q(self, cell, p):
        G = metric_tensor(cell)
        Gs = np.linalg.inv(G)
        q = np.einsum("ni,ij,nj->n", self.hkl, Gs, self.hkl)
        D = p[_IDX["D11"]:_IDX["D23"] + 1]
        q = q + self.hh @ D
        dG = metric_derivatives(cell)
        dGs = -np.einsum("ij,cjk,kl->cil", Gs, dG, Gs)
        dq_dcell = np.einsum("ni,cij,nj->nc", self.hkl, dGs, self.hkl)
        return q, dq_dcell, self.hh

    def evaluate(self, cell: np.ndarray, atoms: np.ndarray, p: np.ndarray, bkg: np.ndarray,
                 *, grad: bool = True, peaks: bool = False, cols: np.ndarray | None = None):
        """Calculated pattern at the fit points and its Jacobian over the local columns.

        Parameters
        ----------
        cell : (6,) ndarray
        atoms : (n_atoms, 5) ndarray
            x, y, z, uiso, occ per atom.
        p : ndarray
            Pattern parameters in :data:`PATTERN_PARAMS` order.
        bkg : ndarray
            Background coefficients.
        grad : bool
            Also return the Jacobian ``(n_points, n_local)``.
        peaks : bool
            Also return per-reflection information (for Bragg R and tick marks).
        cols : ndarray of int, optional
            Compute only these local Jacobian columns (the others are returned as zero).

        Returns
        -------
        ycalc : ndarray
        jac : ndarray or None
        info : dict (only with ``peaks=True``)
        """
        na = len(self.phase.atoms)
        nL = self.n_local
        o_at, o_p, o_b = 6, 6 + 5 * na, 6 + 5 * na + len(PATTERN_PARAMS)
        q, dq_dcell, dq_dD = self._q(cell, p)
        if np.any(q <= 0):
            raise ValueError("cell: non-positive 1/d² (degenerate cell)")
        F2, dF2_dq, dF2_dat = self.phase.structure_factor2(self.hkl, q, atoms, self.scattering,
                                                           grad=grad)
        comps = [(_IDX["lam1"], 1.0, None)]
        if p[_IDX["lam2"]] > 0:
            comps.append((_IDX["lam2"], p[_IDX["ratio"]], _IDX["ratio"]))
        nr = len(q)
        sq = np.sqrt(q)
        R = self.radius
        scale = p[_IDX["scale"]]
        pol = p[_IDX["polarization"]]
        out = {k: [] for k in ("I", "pos", "s2", "g", "dI", "dpos", "ds2", "dg", "fwhm_ok",
                               "tth", "comp", "ref")}
        for ci, (il, cw, iratio) in enumerate(comps):
            lam = p[il]
            if lam <= 0:
                raise ValueError(f"{PATTERN_PARAMS[il]} (wavelength) must be > 0, got {lam:g}")
            st = lam * sq / 2
            ok = st < 0.9999
            st = np.minimum(st, 0.9999)
            th = np.arcsin(st)
            ct = np.cos(th)
            sn = st
            tn = sn / ct
            sec = 1 / ct
            dth_dq = lam / (4 * sq * ct)
            dth_dl = sq / (2 * ct)
            # position
            pos = 2 * th * _DEG + p[_IDX["zero"]]
            dpos_dth = np.full(nr, 2 * _DEG)
            kR = _DEG * 1e-3 / R
            if self.geometry == "bragg-brentano":
                pos = pos - 2 * kR * p[_IDX["shift"]] * ct
                dpos_dth = dpos_dth + 2 * kR * p[_IDX["shift"]] * sn
                dpos_direct = {"zero": 1.0, "shift": -2 * kR * ct}
            else:
                c2, s2t = np.cos(2 * th), np.sin(2 * th)
                pos = pos - kR * (p[_IDX["disp_x"]] * c2 + p[_IDX["disp_y"]] * s2t)
                dpos_dth = dpos_dth - kR * (-2 * p[_IDX["disp_x"]] * s2t
                                            + 2 * p[_IDX["disp_y"]] * c2)
                dpos_direct = {"zero": 1.0, "disp_x": -kR * c2, "disp_y": -kR * s2t}
            # Lorentz-polarisation
            L = 1.0 / (sn * sn * ct)
            dL = L * (-2 * ct / sn + sn / ct)
            if self.radiation == "xray":
                c22 = np.cos(2 * th) ** 2
                Pz = pol + (1 - pol) * c22
                dPz = -2 * (1 - pol) * np.sin(4 * th)
                dPz_dpol = 1 - c22
            else:
                Pz, dPz, dPz_dpol = 1.0, 0.0, 0.0
            LP = L * Pz
            dLP = dL * Pz + L * dPz
            base = cw * self.mult * F2               # without scale, LP
            I = scale * base * LP
            dI_dth = scale * base * dLP
            dI_dq_direct = scale * cw * self.mult * LP * (dF2_dq if grad else 0)
            # widths
            U, V, W, Pp = (p[_IDX[n]] for n in ("U", "V", "W", "P"))
            X, Y = p[_IDX["X"]], p[_IDX["Y"]]
            size, mus = p[_IDX["size"]], p[_IDX["mustrain"]]
            s2 = U * tn ** 2 + V * tn + W + Pp * sec ** 2
            ds2_dth = (2 * U * tn + V) * sec ** 2 + 2 * Pp * sec ** 2 * tn
            ks = 100 * _DEG * 0.9 * lam / (size * 1e4)
            km = 100 * _DEG * 2e-6 * mus
            g = X * sec + Y * tn + ks * sec + km * tn
            dg_dth = (X + ks) * sec * tn + (Y + km) * sec ** 2
            out["I"].append(I)
            out["pos"].append(pos)
            out["s2"].append(s2)
            out["g"].append(g)
            out["tth"].append(2 * th * _DEG)
            out["comp"].append(np.full(nr, ci))
            out["ref"].append(np.arange(nr))
            out["fwhm_ok"].append(ok)
            if not grad:
                continue
            dth = np.zeros((nr, nL))
            dq = np.zeros((nr, nL))
            dq[:, :6] = dq_dcell
            dq[:, o_p + _IDX["D11"]:o_p + _IDX["D23"] + 1] = dq_dD
            dth[:] = dth_dq[:, None] * dq
            dth[:, o_p + il] += dth_dl
            dP = dpos_dth[:, None] * dth
            for n, v in dpos_direct.items():
                dP[:, o_p + _IDX[n]] += v
            dIm = dI_dth[:, None] * dth + dI_dq_direct[:, None] * dq
            dIm[:, o_at:o_p] += (scale * cw * self.mult * LP)[:, None] * dF2_dat.reshape(nr, -1)
            dIm[:, o_p + _IDX["scale"]] += base * LP
            if iratio is not None:
                dIm[:, o_p + iratio] += scale * self.mult * F2 * LP
            if self.radiation == "xray":
                dIm[:, o_p + _IDX["polarization"]] += scale * base * L * dPz_dpol
            dS = ds2_dth[:, None] * dth
            dS[:, o_p + _IDX["U"]] += tn ** 2
            dS[:, o_p + _IDX["V"]] += tn
            dS[:, o_p + _IDX["W"]] += 1.0
            dS[:, o_p + _IDX["P"]] += sec ** 2
            dG = dg_dth[:, None] * dth
            dG[:, o_p + _IDX["X"]] += sec
            dG[:, o_p + _IDX["Y"]] += tn
            dG[:, o_p + _IDX["size"]] += -ks / size * sec
            dG[:, o_p + _IDX["mustrain"]] += 100 * _DEG * 2e-6 * tn
            dG[:, o_p + il] += ks / lam * sec
            out["dI"].append(dIm)
            out["dpos"].append(dP)
            out["ds2"].append(dS)
            out["dg"].append(dG)
        I = np.concatenate(out["I"])
        pos = np.concatenate(out["pos"])
        s2 = np.concatenate(out["s2"])
        g = np.concatenate(out["g"])
        ok = np.concatenate(out["fwhm_ok"])
        I = np.where(ok, I, 0.0)
        if grad:
            dI = np.concatenate(out["dI"]) * ok[:, None]
            dpos = np.concatenate(out["dpos"])
            ds2 = np.concatenate(out["ds2"])
            dg = np.concatenate(out["dg"])
        # FCJ asymmetry: split peaks into weighted, shifted nodes
        nqs = np.tile(self.fcj_mask, len(comps))
        SL, HL = p[_IDX["SL"]], p[_IDX["HL"]]
        if np.any(nqs > 0) and SL + HL > 0:
            plain = np.flatnonzero(nqs == 0)
            poss, Is, srcs = [pos[plain]], [I[plain]], [plain]
            dps, dIs = ([dpos[plain]], [dI[plain]]) if grad else (None, None)
            for nq in np.unique(nqs[nqs > 0]):
                idx = np.flatnonzero(nqs == nq)
                sh, wt, dsh, dwt = fcj_nodes(pos[idx], SL, HL, int(nq))
                srcs.append(np.repeat(idx, nq))
                poss.append((pos[idx, None] + sh).ravel())
                Is.append((I[idx, None] * wt).ravel())
                if grad:
                    dposf = dpos[idx]                                  # (m, nL)
                    # d node_pos = dpos (1 + dsh/dpos) + dsh/dSL e_SL + dsh/dHL e_HL
                    dnp = dposf[:, None, :] * (1 + dsh[0])[:, :, None]
                    dnp[:, :, o_p + _IDX["SL"]] += dsh[1]
                    dnp[:, :, o_p + _IDX["HL"]] += dsh[2]
                    dnI = dI[idx][:, None, :] * wt[:, :, None]
                    dnI += (I[idx, None] * dwt[0])[:, :, None] * dposf[:, None, :]
                    dnI[:, :, o_p + _IDX["SL"]] += I[idx, None] * dwt[1]
                    dnI[:, :, o_p + _IDX["HL"]] += I[idx, None] * dwt[2]
                    dps.append(dnp.reshape(-1, nL))
                    dIs.append(dnI.reshape(-1, nL))
            src = np.concatenate(srcs)
            pos, I = np.concatenate(poss), np.concatenate(Is)
            s2, g = s2[src], g[src]
            if grad:
                dpos, dI = np.concatenate(dps), np.concatenate(dIs)
                ds2, dg = ds2[src], dg[src]
        else:
            src = np.arange(len(pos))
        fwhm, eta, df_ds2, df_dg, de_ds2, de_dg = tch(s2, g)
        # pairs (point, node)
        half = fwhm * (3.0 + np.sqrt(eta) * max(self.peak_cutoff - 3.0, 0.0))
        lo = np.searchsorted(self.x, pos - half)
        hi = np.searchsorted(self.x, pos + half)
        cnt = hi - lo
        tot = int(cnt.sum())
        node = np.repeat(np.arange(len(pos)), cnt)
        start = np.cumsum(cnt) - cnt
        pt = lo[node] + (np.arange(tot) - start[node])
        dx = self.x[pt] - pos[node]
        val, d_pos, d_f, d_e = pseudo_voigt(dx, fwhm[node], eta[node], grad=grad)
        ypk = np.bincount(pt, weights=I[node] * val, minlength=self.x.size)
        yb = self.cheb @ bkg if self.n_background else np.zeros_like(self.x)
        ycalc = ypk + yb
        jac = None
        if grad:
            Iw = I[node]
            e_pos = Iw * d_pos
            e_s2 = Iw * (d_f * df_ds2[node] + d_e * de_ds2[node])
            e_g = Iw * (d_f * df_dg[node] + d_e * de_dg[node])
            npk = len(pos)
            indptr = np.concatenate([[0], np.cumsum(cnt)])
            A = sp.csc_matrix((np.concatenate([val, e_pos, e_s2, e_g]),
                               np.concatenate([pt] * 4),
                               np.concatenate([indptr[:-1] + k * tot for k in range(4)]
                                              + [[4 * tot]])),
                              shape=(self.x.size, 4 * npk))
            Dm = np.concatenate([dI, dpos, ds2, dg])
            if cols is None:
                jac = np.asarray(A @ Dm)
            else:
                jac = np.zeros((self.x.size, nL))
                jac[:, cols] = A @ Dm[:, cols]
            if self.n_background:
                jac[:, o_b:] += self.cheb
        if peaks:
            info = {"q": q, "F2": F2, "I": I, "pos": pos, "src": src, "point": pt, "node": node, "profile": val,
                    "ybkg": yb, "refl_pos": np.concatenate(out["pos"]),
                    "refl_I": np.where(ok, np.concatenate(out["I"]), 0.0),
                    "refl_index": np.concatenate(out["ref"]),
                    "comp": np.concatenate(out["comp"])}
            return ycalc, jac, info
        return ycalc, jac

    def calc(self, structure_values, pattern_values, *, grad: bool = False):
        """Evaluate from :class:`SlotValues`-like mappings of the structure and pattern groups."""
        cell, atoms = self._struct_arrays(structure_values)
        p, b = self._pattern_arrays(pattern_values)
        return self.evaluate(cell, atoms, p, b, grad=grad)
