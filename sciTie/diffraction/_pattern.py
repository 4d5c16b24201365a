"""Constant-wavelength powder pattern of one or several phases, with exact derivatives.

The calculated pattern is

    y(2θ) = background + Σ_phases Σ_reflections I · pV(2θ - pos; FWHM, η)

where the background is a Chebyshev series plus optional pseudo-Voigt background peaks (an
amorphous hump, a window). Every peak quantity (intensity, position, Gaussian variance,
Lorentzian width) is computed per reflection and wavelength together with its derivatives
with respect to the pattern's local parameters (every phase's cell and atoms, the
instrument, each phase's pattern-specific terms, the background); the Jacobian is then one
sparse product ``[∂y/∂I | ∂y/∂pos | ∂y/∂σ² | ∂y/∂γ | ...] @ [dI; dpos; dσ²; dγ; ...]``.

Peak windows keep the tails: each peak is evaluated out to the half-width where the lost
fraction of its integrated intensity drops below ``tail_tolerance`` (see :mod:`._tails`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from .._validation import check_bool, check_float, check_int, check_mapping
from ..core import ParameterGroup
from ..errors import ArgumentTypeError, UnknownNameError, ValidationError
from ._crystal import (ATOM_PARAMS, CELL_NAMES, Phase, cell_volume, check_scattering_table,
                       metric_derivatives, metric_tensor)
from ._io import make_pattern, read_gsas_prm, read_gsas_std, read_xye
from ._kernels import item_sums, render_items
from ._profile import fcj_nodes, tch
from ._tails import CORE_FWHM, WINDOW_MARGIN, TailGrids, window_fwhm

__all__ = ["PowderPattern", "INSTRUMENT_PARAMS", "PHASE_PARAMS", "BACKGROUND_PEAK_PARAMS"]

#: Parameters of a pattern (instrument and overall scale), in local-vector order.
INSTRUMENT_PARAMS = ("scale", "zero", "shift", "disp_x", "disp_y", "U", "V", "W", "P", "X", "Y",
                     "SL", "HL", "lam1", "lam2", "ratio", "polarization")
#: Parameters of one phase in one pattern (GSAS-II's histogram-and-phase terms).
PHASE_PARAMS = ("fraction", "size", "mustrain", "mustrain_axial", "D11", "D22", "D33", "D12",
                "D13", "D23")
#: Parameters of one background peak: 2θ (deg), area (counts·deg), σ² (centideg²), γ (centideg).
BACKGROUND_PEAK_PARAMS = ("pos", "area", "sigma2", "gamma")
_IDX = {n: i for i, n in enumerate(INSTRUMENT_PARAMS)}
_HAP = {n: i for i, n in enumerate(PHASE_PARAMS)}
_DEG = 180.0 / np.pi
_UNITS = {"scale": "", "zero": "deg", "shift": "µm", "disp_x": "µm", "disp_y": "µm",
          "U": "centideg²", "V": "centideg²", "W": "centideg²", "P": "centideg²",
          "X": "centideg", "Y": "centideg", "SL": "", "HL": "", "lam1": "Å", "lam2": "Å",
          "ratio": "", "polarization": "", "fraction": "", "size": "µm", "mustrain": "1e-6", "mustrain_axial": "1e-6"}


def _chebyshev(t: np.ndarray, n: int) -> np.ndarray:
    T = np.empty((t.size, n))
    if n > 0:
        T[:, 0] = 1.0
    if n > 1:
        T[:, 1] = t
    for k in range(2, n):
        T[:, k] = 2 * t * T[:, k - 1] - T[:, k - 2]
    return T


@dataclass
class _Layout:
    """Where each piece of the local vector lives."""

    cell: list = field(default_factory=list)
    atoms: list = field(default_factory=list)
    pattern: slice = field(default_factory=lambda: slice(0, 0))
    hap: list = field(default_factory=list)
    bkg: slice = field(default_factory=lambda: slice(0, 0))
    bkpk: slice = field(default_factory=lambda: slice(0, 0))
    n: int = 0


@dataclass
class _Items:
    """Peaks to render: centre, switch centre, intensity, widths, and where their derivative
    rows are (row ``drow[i]`` of the shared matrices ``D = (dI, dc, ds2, dg, dp)``; ``dp``,
    the rows of the switch centre, is None when it moves with the profile centre)."""

    c: np.ndarray            # profile centre (deg)
    p: np.ndarray            # centre of the window / switch (the reflection's position)
    I: np.ndarray
    fwhm: np.ndarray
    eta: np.ndarray
    df_ds2: np.ndarray
    df_dg: np.ndarray
    de_ds2: np.ndarray
    de_dg: np.ndarray
    half: np.ndarray         # half-width of the window around p
    radius: np.ndarray       # switch radius C (inf: no switch)
    mask: str                # 'core' (1 - s), 'far' (a band of s)
    row: np.ndarray          # source row (reflection) of each item
    drow: np.ndarray         # row of its derivatives in D
    D: tuple | None = None   # shared derivative matrices, not sliced by take()
    level: np.ndarray | None = None      # far: grid level of each band
    scale: np.ndarray | None = None      # far: 2**band
    last: np.ndarray | None = None       # far: the outermost band
    inner: np.ndarray | None = None      # far: inner edge of the band
    taper: np.ndarray | None = None      # outer window W: weight tapers from W/2 to W

    def take(self, idx: np.ndarray) -> "_Items":
        def sub(k, a):
            return a if (a is None or k in ("mask", "D")) else a[idx]
        return _Items(**{k: sub(k, v) for k, v in self.__dict__.items()})


class PowderPattern:
    """One constant-wavelength powder pattern of one or several phases.

    Parameters
    ----------
    data : xarray.DataArray
        Observed pattern with a ``two_theta`` coordinate (degrees) and ``variance``.
    phases : Phase or sequence of Phase
        The crystal structures (a phase's group is shared when several patterns use it).
        Phase names must be unique.
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
    background_peaks : sequence, optional
        Pseudo-Voigt peaks added to the background, each ``(pos, area, sigma2, gamma)`` or
        a dict with those keys: 2θ (deg), area (counts·deg), Gaussian variance (centideg²,
        GSAS-II's "sig") and Lorentzian FWHM (centideg, "gam"). Example: the Kapton hump of a
        cryostat window, ``(5.25, 1.0, 2000.0, 0.0)``.
    profile : dict
        Initial ``U, V, W, P`` (centideg²), ``X, Y`` (centideg), ``SL, HL``, ``zero`` (deg).
    phase_values : dict, optional
        Starting values of the per-phase terms, ``{phase name: {"fraction": .., "size": ..,
        "mustrain": ..}}``.
    tail_tolerance : float
        Largest fraction of a peak's integrated intensity left outside its window
        (default 1e-3). The window half-width is ``k(η) FWHM`` with
        ``η (1 - (2/π) atan(2k)) = tail_tolerance`` (at least 3 FWHM), i.e. about
        ``η / (π tail_tolerance)`` FWHM; 0 evaluates every peak over the whole pattern.
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
        Profile parameters freed by the "profile" stage (instrument names, or per-phase
        ``size`` / ``mustrain``, which apply to every phase).
    refine_profile_late : tuple of str
        Profile parameters freed only with the atoms (``"late_profile"`` in
        :meth:`JointRefinement.set_refined`).
    scattering : dict, optional
        Scattering values that replace gemmi's tables, per element: ``{"Cu": {"fp": -1.9,
        "fpp": 0.6}}`` (X-ray f′, f″ at this wavelength), ``{"O": {"f0": [a1..a4, b1..b4,
        c]}}`` (X-ray form factor), ``{"O": {"b": 5.803}}`` (neutron length, fm).
    anomalous : bool
        Use gemmi's Cromer-Liberman f′, f″ for X-rays (default); False sets them to 0
        unless given in ``scattering``.
    strain_axis : dict, optional
        Phase name -> unique axis (h, k, l) of a uniaxial microstrain (GSAS-II's model):
        ``mustrain`` is then the equatorial and ``mustrain_axial`` the axial strain. Phases
        not named have isotropic strain (``mustrain`` only).

    Attributes
    ----------
    group : ParameterGroup
        :data:`INSTRUMENT_PARAMS`, ``bkg`` (Chebyshev coefficients), a child ``bkpk`` with
        arrays ``pos, area, sigma2, gamma`` when there are background peaks, and one child
        per phase (named after it) with :data:`PHASE_PARAMS`: ``fraction`` (volume
        fraction; intensities scale as ``scale · fraction / V²``), ``size`` (µm, Lorentzian
        ``0.9 λ / (size cos θ)``), ``mustrain`` and ``mustrain_axial`` (10⁻⁶, Lorentzian
        ``2·10⁻⁶ μ tan θ`` in radians of 2θ), and ``D..``, additive corrections to the reciprocal metric
        (1/d² = hᵀG*h + D11 h² + D22 k² + D33 l² + D12 hk + D13 hl + D23 kl) tied by crystal
        system. All start fixed except ``scale`` and ``bkg``.
    """

    def __init__(self, data: xr.DataArray, phases, *, name: str = "pattern",
                 radiation: str = "xray", lam1: float = 1.5405, lam2: float = 0.0,
                 ratio: float = 0.5, polarization: float = 0.5,
                 geometry: str = "bragg-brentano", radius: float = 250.0,
                 fit_range: tuple[float, float] | None = None, exclude=(),
                 n_background: int = 6, background_peaks=(), profile: dict | None = None,
                 phase_values: dict | None = None, tail_tolerance: float = 1e-3,
                 fcj_points: int = 8, cell_correction: bool = False, refine_zero: bool = True,
                 refine_displacement: bool = False, refine_profile=("U", "V", "W"),
                 refine_profile_late=(), scattering: dict | None = None,
                 anomalous: bool = True, strain_axis: dict | None = None) -> None:
        if not isinstance(data, xr.DataArray) or "two_theta" not in data.coords \
                or "variance" not in data.coords:
            raise ValidationError("data must be an xarray.DataArray with 'two_theta' and "
                                  "'variance' coordinates (see read_gsas_std / make_pattern)")
        if isinstance(phases, Phase):
            phases = [phases]
        elif isinstance(phases, (list, tuple)):
            phases = list(phases)
        else:
            raise ArgumentTypeError(f"phases must be a Phase or a list of Phase, got "
                                    f"{type(phases).__name__}")
        if not phases or not all(isinstance(p, Phase) for p in phases):
            raise ValidationError("phases must be a Phase or a non-empty sequence of Phase")
        pnames = [p.name for p in phases]
        if len(set(pnames)) != len(pnames):
            raise ValidationError(f"phases: names must be unique, got {pnames}")
        clash = [n for n in pnames if n in INSTRUMENT_PARAMS + ("bkg", "bkpk")]
        if clash:
            raise ValidationError(f"phases: names {clash} clash with pattern parameters; give "
                                  "the phases other names (Phase(name=...) or "
                                  "Phase.from_cif(..., name=...))")
        if radiation not in ("xray", "neutron"):
            raise ValidationError(f"radiation must be 'xray' or 'neutron', got {radiation!r}")
        if geometry not in ("bragg-brentano", "debye-scherrer"):
            raise ValidationError(f"geometry must be 'bragg-brentano' or 'debye-scherrer', got "
                                  f"{geometry!r}")
        lam1 = check_float(lam1, "lam1 (wavelength, Å)", minimum=0.0, low_open=True)
        lam2 = check_float(lam2, "lam2 (Å; 0: one wavelength)", minimum=0.0)
        ratio = check_float(ratio, "ratio (λ2/λ1 intensity)", minimum=0.0)
        polarization = check_float(polarization, "polarization", minimum=0.0, maximum=1.0)
        radius = check_float(radius, "radius (mm)", minimum=0.0, low_open=True)
        tail_tolerance = check_float(tail_tolerance, "tail_tolerance (a lost fraction of the "
                                     "peak intensity)", minimum=0.0, maximum=0.5, high_open=True)
        fcj_points = check_int(fcj_points, "fcj_points", minimum=3, maximum=64)
        cell_correction = check_bool(cell_correction, "cell_correction")
        refine_zero = check_bool(refine_zero, "refine_zero")
        refine_displacement = check_bool(refine_displacement, "refine_displacement")
        anomalous = check_bool(anomalous, "anomalous")
        if not isinstance(name, str):
            raise ArgumentTypeError(f"name must be a str, got {type(name).__name__}")
        tth = data["two_theta"].values
        if data.ndim != 1 or tth.size < 2:
            raise ValidationError(f"data must be a 1-D pattern of at least 2 points, got shape "
                                  f"{data.shape}")
        try:  # a DataArray built by hand gets the checks make_pattern makes
            make_pattern(tth, data.values, data["variance"].values)
        except (ValidationError, TypeError, ValueError) as exc:
            raise ValidationError(f"data: {exc}") from None
        # a Chebyshev term per point at most, and never a design matrix the size of memory
        n_background = check_int(n_background, "n_background", minimum=0,
                                 maximum=min(100, tth.size - 1))
        self.data = data
        self.phases = phases
        self.cell_correction = cell_correction
        self.refine_zero = refine_zero
        self.refine_displacement = refine_displacement
        allowed = INSTRUMENT_PARAMS + ("size", "mustrain")
        for arg, names in (("refine_profile", refine_profile),
                           ("refine_profile_late", refine_profile_late)):
            if isinstance(names, str) or not isinstance(names, (list, tuple)):
                raise ArgumentTypeError(f"{arg} must be a list or tuple of parameter names, "
                                        f"got {names!r}")
            bad = [n for n in names if n not in allowed]
            if bad:
                raise ValidationError(f"{arg}: unknown parameters {bad}; expected names from "
                                      f"INSTRUMENT_PARAMS or 'size', 'mustrain'")
        self.refine_profile = tuple(refine_profile)
        self.refine_profile_late = tuple(refine_profile_late)
        self.name = name
        self.radiation = radiation
        self.geometry = geometry
        self.radius = float(radius)
        self.tail_tolerance = float(tail_tolerance)
        self.fcj_points = int(fcj_points)
        if fit_range is None:
            fit_range = (float(tth[0]), float(tth[-1]))
            if fit_range[0] <= 0:
                raise ValidationError(f"fit_range: the data start at 2theta = {tth[0]:g}; give "
                                      "fit_range=(lo, hi) with 0 < lo < hi < 180")
        lo, hi = _pair(fit_range, "fit_range")
        if not (lo < hi) or hi >= 180 or lo <= 0:
            raise ValidationError(f"fit_range must be (lo, hi) with 0 < lo < hi < 180, got "
                                  f"{fit_range}")
        mask = (tth >= lo) & (tth <= hi)
        if isinstance(exclude, (str, bytes)) or not isinstance(exclude, (list, tuple)):
            raise ArgumentTypeError(f"exclude must be a list of (lo, hi) 2theta regions, got "
                                    f"{exclude!r}")
        exclude = [_pair(reg, f"exclude[{i}]") for i, reg in enumerate(exclude)]
        for i, (a, b) in enumerate(exclude):
            if not a < b:
                raise ValidationError(f"exclude[{i}] must be (lo, hi) with lo < hi, got "
                                      f"({a:g}, {b:g})")
            mask &= ~((tth >= a) & (tth <= b))
        if mask.sum() < 10:
            raise ValidationError(f"fit_range/exclude leave {int(mask.sum())} points; need at "
                                  "least 10")
        self.fit_range = (lo, hi)
        self.exclude = [tuple(r) for r in exclude]
        self.mask = mask
        self.x = tth[mask]
        self.obs = data.values[mask].astype(float)
        self.sigma = np.sqrt(data["variance"].values[mask])
        self.n_background = int(n_background)
        self.cheb = _chebyshev(2 * (self.x - lo) / (hi - lo) - 1, self.n_background)
        self.background_peaks = self._check_background_peaks(background_peaks)
        prof = {"U": 2.0, "V": -2.0, "W": 5.0, "P": 0.0, "X": 0.0, "Y": 0.0, "SL": 0.0,
                "HL": 0.0, "zero": 0.0}
        profile = check_mapping(profile, "profile", prof, example="{'U': 2.0, 'W': 5.0}")
        for k, v in profile.items():
            prof[k] = check_float(v, f"profile[{k!r}]")
        if prof["SL"] < 0 or prof["HL"] < 0:
            raise ValidationError(f"profile: SL and HL must be >= 0, got {prof['SL']:g}, "
                                  f"{prof['HL']:g}")
        # the Gaussian FWHM² (U tan²θ + V tanθ + W + P sec²θ) must not be negative where the
        # pattern is fitted: its square root is the peak width
        tn = np.tan(np.radians(self.x / 2))
        s2 = prof["U"] * tn ** 2 + prof["V"] * tn + prof["W"] + prof["P"] * (1 + tn ** 2)
        if s2.min() < 0:
            at = int(np.argmin(s2))
            raise ValidationError(
                f"profile: the Gaussian FWHM² U tan²θ + V tanθ + W + P sec²θ is negative in "
                f"fit_range ({s2[at]:.4g} centideg² at 2theta = {self.x[at]:.4g}; "
                f"U={prof['U']:g}, V={prof['V']:g}, W={prof['W']:g}, P={prof['P']:g}); a peak "
                "width is its square root: give U, V, W, P (profile= or the .prm) that keep "
                "it >= 0")
        init = {"scale": 1.0, "shift": 0.0, "disp_x": 0.0, "disp_y": 0.0, "lam1": float(lam1),
                "lam2": float(lam2), "ratio": float(ratio) if lam2 > 0 else 0.0,
                "polarization": float(polarization)}
        init.update({k: float(prof[k]) for k in ("U", "V", "W", "P", "X", "Y", "SL", "HL",
                                                  "zero")})
        phase_values = check_mapping(phase_values, "phase_values", pnames, what="phases",
                                     example="{phase name: {'fraction': ...}}")
        for ph_name, terms in phase_values.items():
            if not isinstance(terms, dict):
                raise ArgumentTypeError(f"phase_values[{ph_name!r}] must be a dict such as "
                                        f"{{'fraction': 0.5, 'size': 2.0}}, got {terms!r}")
            for k, v in terms.items():
                check_float(v, f"phase_values[{ph_name!r}][{k!r}]")
        strain_axis = {} if strain_axis is None else strain_axis
        if not isinstance(strain_axis, dict):
            raise ArgumentTypeError(f"strain_axis must be a dict {{phase name: (h, k, l)}}, got "
                                    f"{type(strain_axis).__name__}")
        self.strain_axis = {}
        for ph_name, ax in strain_axis.items():
            if ph_name not in pnames:
                raise ValidationError(f"strain_axis: unknown phase {ph_name!r}; have {pnames}")
            try:
                ax = np.asarray(ax, dtype=float)
            except (TypeError, ValueError):
                ax = np.full(1, np.nan)
            if ax.shape != (3,) or not np.all(np.isfinite(ax)) or not np.any(ax != 0):
                raise ValidationError(f"strain_axis[{ph_name!r}]: expected a non-zero (h, k, l), "
                                      f"got {strain_axis[ph_name]!r}")
            self.strain_axis[ph_name] = tuple(float(a) for a in ax)
        self.group = self._make_group(init, phase_values)
        self._layout = self._make_layout()
        elements = {e for ph in phases for e in ph.elements}
        table = check_scattering_table(scattering, radiation)
        missing = sorted(set(table) - elements)
        if missing:
            raise ValidationError(f"scattering: elements {missing} are in no phase of pattern "
                                  f"{name!r} (elements: {sorted(elements)})")
        self.scattering_table = table
        self.anomalous = anomalous
        self.scattering = [ph.scattering(radiation, lam1, table=table, anomalous=anomalous)
                           for ph in phases]
        self._tails: dict | None = None
        self._setup_reflections()
        counts = self.reflections_in_range()
        if not any(counts.values()):
            raise ValidationError(
                f"pattern {name!r}: no reflection of {', '.join(pnames)} lies inside fit_range "
                f"({lo:g}, {hi:g}) degrees at lam1 = {lam1:g} Å (largest d-spacing "
                f"{self._largest_d():.4g} Å, first peak at 2theta = "
                f"{self._first_peak(lam1):.4g}); check the wavelength, the cell and fit_range")

    def _largest_d(self) -> float:
        """The largest d-spacing of any phase (Å)."""
        d = 0.0
        for ph in self.phases:
            cell = ph.cell_values()
            hkl, _ = ph.reflections(0.5 * float(np.max(cell[:3])), cell=cell)
            if len(hkl):
                q = np.einsum("ni,ij,nj->n", hkl, np.linalg.inv(metric_tensor(cell)), hkl)
                d = max(d, float(1 / np.sqrt(q.min())))
        return d

    def _first_peak(self, lam: float) -> float:
        d = self._largest_d()
        return float(2 * np.degrees(np.arcsin(lam / (2 * d)))) if d and lam < 2 * d \
            else float("nan")

    @property
    def phase(self) -> Phase:
        """The first (main) phase."""
        return self.phases[0]

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_files(cls, data_path: str | os.PathLike, prm_path: str | os.PathLike | None,
                   phases, **kwargs) -> "PowderPattern":
        """Read data (GSAS STD/FXYE or xye) and a GSAS ``.prm`` file and build the pattern.

        Keyword arguments override the instrument values from the ``.prm`` file.
        """
        data_path = Path(data_path)
        if data_path.suffix.lower() in (".xye", ".xy", ".dat", ".txt"):
            data = read_xye(data_path)
        else:
            data = read_gsas_std(data_path)
        opts: dict = {}
        if prm_path is not None:
            opts = instrument_options(read_gsas_prm(prm_path))
        prof = dict(opts.get("profile", {}))
        extra = kwargs.pop("profile", None) or {}
        if not isinstance(extra, dict):
            raise ArgumentTypeError(f"profile must be a dict such as {{'U': 2.0, 'W': 5.0}}, "
                                    f"got {type(extra).__name__}")
        prof.update(extra)
        opts.update(kwargs)
        opts["profile"] = prof
        return cls(data, phases, **opts)

    @staticmethod
    def _check_background_peaks(peaks) -> np.ndarray:
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

    def _make_group(self, init: dict, phase_values: dict) -> ParameterGroup:
        g = ParameterGroup(self.name, description=f"{self.radiation} pattern")
        for n in INSTRUMENT_PARAMS:
            g.add(n, init[n], vary=(n == "scale"), unit=_UNITS.get(n, ""))
        g.add("bkg", np.zeros(self.n_background), unit="counts",
              description="Chebyshev background coefficients")
        if len(self.background_peaks):
            bp = ParameterGroup("bkpk", description="background peaks (pseudo-Voigt)")
            units = ("deg", "counts·deg", "centideg²", "centideg")
            for j, (n, u) in enumerate(zip(BACKGROUND_PEAK_PARAMS, units)):
                kw = {"min": 0.0} if n in ("sigma2", "gamma") else {}
                bp.add(n, self.background_peaks[:, j].copy(), vary=False, unit=u, **kw)
            g.add_group(bp)
        self._allowed_D = {}
        for ph in self.phases:
            vals = {"fraction": 1.0, "size": 1.0e3, "mustrain": 0.0}
            vals.update(phase_values.get(ph.name, {}))
            vals.setdefault("mustrain_axial", vals["mustrain"])
            bad = [k for k in vals if k not in ("fraction", "size", "mustrain", "mustrain_axial")]
            if bad:
                raise ValidationError(f"phase_values[{ph.name!r}]: unknown keys {bad}; expected "
                                      "fraction, size, mustrain, mustrain_axial")
            hg = ParameterGroup(ph.name, description=f"phase {ph.name} in pattern {self.name}")
            for n in PHASE_PARAMS:
                kw = ({"min": 0.0} if n == "fraction" else {"min": 1e-3} if n == "size"
                      else {})
                hg.add(n, float(vals.get(n, 0.0)), vary=False, unit=_UNITS.get(n, "Å⁻²"), **kw)
            system = ph.crystal_system
            if system in ("cubic", "tetragonal", "hexagonal", "trigonal"):
                hg.tie("D22", to="D11")
            if system == "cubic":
                hg.tie("D33", to="D11")
            if system in ("hexagonal", "trigonal"):
                hg.tie("D12", to="D11")
            self._allowed_D[ph.name] = {
                "cubic": ["D11"], "tetragonal": ["D11", "D33"],
                "orthorhombic": ["D11", "D22", "D33"], "hexagonal": ["D11", "D33"],
                "trigonal": ["D11", "D33"], "monoclinic": ["D11", "D22", "D33", "D13"]}.get(
                system, ["D11", "D22", "D33", "D12", "D13", "D23"])
            g.add_group(hg)
        return g

    def _make_layout(self) -> _Layout:
        lay = _Layout()
        o = 0
        for ph in self.phases:
            lay.cell.append(slice(o, o + 6))
            o += 6
            lay.atoms.append(slice(o, o + 5 * len(ph.atoms)))
            o += 5 * len(ph.atoms)
        lay.pattern = slice(o, o + len(INSTRUMENT_PARAMS))
        o += len(INSTRUMENT_PARAMS)
        for _ in self.phases:
            lay.hap.append(slice(o, o + len(PHASE_PARAMS)))
            o += len(PHASE_PARAMS)
        lay.bkg = slice(o, o + self.n_background)
        o += self.n_background
        lay.bkpk = slice(o, o + 4 * len(self.background_peaks))
        o += 4 * len(self.background_peaks)
        lay.n = o
        return lay

    @property
    def cell_correction_names(self) -> list[str]:
        """The ``D`` terms allowed (and independent) in each phase's crystal system."""
        return [f"{ph}.{d}" for ph, ds in self._allowed_D.items() for d in ds]

    def _setup_reflections(self) -> None:
        """Reflections of every phase whose tails reach into the fit range, FCJ node counts."""
        v = self.local_vector()
        p = v[self._layout.pattern]
        lam = [p[_IDX["lam1"]]] + ([p[_IDX["lam2"]]] if p[_IDX["lam2"]] > 0 else [])
        self._refl = []
        sl, hl = p[_IDX["SL"]], p[_IDX["HL"]]
        if {"SL", "HL"} & set(self.refine_profile + self.refine_profile_late):
            # asymmetry to be refined: size the quadrature for at least S/L = H/L = 0.01
            sl, hl = max(sl, 0.01), max(hl, 0.01)
        for k, ph in enumerate(self.phases):
            hap = v[self._layout.hap[k]]
            # how far the tails of reflections above the range reach down into it
            hi = self.fit_range[1]
            reach = 0.5
            if self.tail_tolerance > 0:
                fw, eta = self._width_at(np.array([hi]), p, hap)
                reach += 1.5 * float(fw[0] * window_fwhm(eta, self.tail_tolerance)[0])
            else:
                reach = 180.0
            top = min(hi + reach, 179.5)
            dmin = min(lam) / (2 * np.sin(np.radians(top / 2)))
            hkl, mult = ph.reflections(dmin, cell=v[self._layout.cell[k]])
            h, kk, l = hkl.T
            hh = np.column_stack([h * h, kk * kk, l * l, h * kk, h * l, kk * l]).astype(float)
            nq = np.zeros(len(hkl), dtype=int)
            if sl + hl > 0 and len(hkl):
                # nodes per peak from the asymmetry span relative to the width (fixed here)
                q = np.einsum("ni,ij,nj->n", hkl,
                              np.linalg.inv(metric_tensor(v[self._layout.cell[k]])), hkl)
                th = np.arcsin(np.clip(p[_IDX["lam1"]] * np.sqrt(q) / 2, 0, 0.9999))
                pos = 2 * th * _DEG
                ok = np.abs(pos - 90.0) > 0.5
                sh, _, _, _ = fcj_nodes(np.where(ok, pos, 45.0), sl, hl, 4)
                span = np.abs(sh).max(axis=1)
                fwhm, _ = self._width_at(pos, p, hap)
                r = span / fwhm
                nq = np.where(r < 0.02, 0, np.where(r < 0.15, 3, np.where(r < 0.5, 5,
                                                                          self.fcj_points)))
                nq = np.where(ok, nq, 0)
            self._refl.append({"hkl": hkl, "mult": mult, "hh": hh, "nq": nq})
        self._tails = None

    def _width_at(self, tth: np.ndarray, p: np.ndarray, hap: np.ndarray):
        """FWHM (deg) and eta of a phase's peaks at 2θ = ``tth``."""
        th = np.radians(np.minimum(tth, 179.0) / 2)
        tn, sec = np.tan(th), 1 / np.cos(th)
        s2 = (p[_IDX["U"]] * tn ** 2 + p[_IDX["V"]] * tn + p[_IDX["W"]] + p[_IDX["P"]] * sec ** 2)
        lam = p[_IDX["lam1"]]
        ks = 100 * _DEG * 0.9 * lam / (hap[_HAP["size"]] * 1e4)
        km = 100 * _DEG * 2e-6 * max(hap[_HAP["mustrain"]], hap[_HAP["mustrain_axial"]])
        g = (p[_IDX["X"]] + ks) * sec + (p[_IDX["Y"]] + km) * tn
        fwhm, eta, *_ = tch(s2, g)
        return fwhm, eta

    # -- parameter plumbing ---------------------------------------------------------------------
    def local_vector(self, values=None) -> np.ndarray:
        """The local vector (see :meth:`local_names`) from the phases' and pattern's groups.

        ``values`` (a :class:`~sciTie.SlotValues` of a tree holding them) overrides the
        groups' own current values.
        """
        out = np.empty(self._layout.n)
        lay = self._layout
        if values is not None and not callable(getattr(values, "__getitem__", None)) \
                or isinstance(values, (str, bytes)):
            raise ArgumentTypeError(f"values must be the SlotValues of a group holding the "
                                    f"phases and pattern {self.name!r} (group.valuesdict()), got "
                                    f"{type(values).__name__}")

        def source(group):
            if values is None:
                return group.valuesdict()
            prefix = f"{group.name}."

            class _Prefixed:  # names of a tree that holds ``group`` as a direct child
                def __getitem__(self, n):
                    try:
                        return values[prefix + n]
                    except (KeyError, ValueError, IndexError):
                        raise UnknownNameError(f"values: no slot {prefix + n!r}; give the "
                                               "values of a group that holds the phases and "
                                               "this pattern as children") from None
            return _Prefixed()

        for k, ph in enumerate(self.phases):
            sv = source(ph.group)
            out[lay.cell[k]] = [sv[n] for n in CELL_NAMES]
            out[lay.atoms[k]] = [sv[f"{a.name}.{q}"] for a in ph.atoms for q in ATOM_PARAMS]
        pv = source(self.group)
        out[lay.pattern] = [pv[n] for n in INSTRUMENT_PARAMS]
        for k, ph in enumerate(self.phases):
            out[lay.hap[k]] = [pv[f"{ph.name}.{n}"] for n in PHASE_PARAMS]
        out[lay.bkg] = np.asarray(pv["bkg"], dtype=float).reshape(-1)
        if len(self.background_peaks):
            out[lay.bkpk] = np.concatenate([np.asarray(pv[f"bkpk.{n}"], dtype=float).reshape(-1)
                                            for n in BACKGROUND_PEAK_PARAMS])
        return out

    def local_names(self, structures: dict | None = None, prefix: str | None = None) -> list[str]:
        """Names of the local-vector entries as slot names of a group that holds them.

        Parameters
        ----------
        structures : dict, optional
            Phase name -> path of that phase's structure group in the fitted tree (default:
            the phase name, i.e. phase groups are direct children).
        prefix : str, optional
            Path of this pattern's group (default: its name).
        """
        prefix = self.name if prefix is None else prefix
        structures = dict(structures or {})
        names: list[str] = []
        for ph in self.phases:
            s = structures.get(ph.name, ph.name)
            s = f"{s}." if s else ""
            names += [s + n for n in CELL_NAMES]
            names += [f"{s}{a.name}.{q}" for a in ph.atoms for q in ATOM_PARAMS]
        names += [f"{prefix}.{n}" for n in INSTRUMENT_PARAMS]
        for ph in self.phases:
            names += [f"{prefix}.{ph.name}.{n}" for n in PHASE_PARAMS]
        names += [f"{prefix}.bkg[{i}]" for i in range(self.n_background)]
        for n in BACKGROUND_PEAK_PARAMS:
            names += [f"{prefix}.bkpk.{n}[{i}]" for i in range(len(self.background_peaks))]
        return names

    def reflections_in_range(self) -> dict[str, int]:
        """Number of reflections of each phase whose centre (first wavelength, current cell,
        no zero shift) lies inside the fit range and outside the excluded regions: a phase
        with none contributes no more than tails, and its parameters are not determined."""
        v = self.local_vector()
        lam = v[self._layout.pattern][_IDX["lam1"]]
        out = {}
        for k, ph in enumerate(self.phases):
            hkl = self._refl[k]["hkl"] if self._refl else np.zeros((0, 3))
            if not len(hkl):
                out[ph.name] = 0
                continue
            q = np.einsum("ni,ij,nj->n", hkl,
                          np.linalg.inv(metric_tensor(v[self._layout.cell[k]])), hkl)
            pos = 2 * np.arcsin(np.clip(lam * np.sqrt(q) / 2, 0, 1)) * _DEG
            inside = (pos >= self.fit_range[0]) & (pos <= self.fit_range[1])
            for lo, hi in self.exclude:
                inside &= ~((pos >= lo) & (pos <= hi))
            out[ph.name] = int(np.count_nonzero(inside))
        return out

    @property
    def n_local(self) -> int:
        """Number of local derivative columns."""
        return self._layout.n

    def split(self, v: np.ndarray) -> dict:
        """The local vector as named pieces (per phase: cell, atoms, terms; pattern; bkg)."""
        lay = self._layout
        return {"phases": {ph.name: {"cell": v[lay.cell[k]],
                                     "atoms": v[lay.atoms[k]].reshape(-1, 5),
                                     "terms": dict(zip(PHASE_PARAMS, v[lay.hap[k]]))}
                           for k, ph in enumerate(self.phases)},
                "pattern": dict(zip(INSTRUMENT_PARAMS, v[lay.pattern])),
                "bkg": v[lay.bkg], "bkpk": v[lay.bkpk].reshape(4, -1)}

    # -- model --------------------------------------------------------------------------------------
    def _phase_rows(self, k: int, v: np.ndarray, grad: bool) -> dict:
        """Per reflection and wavelength of phase ``k``: I, position, widths, derivative rows."""
        lay = self._layout
        ph, R = self.phases[k], self._refl[k]
        nL = lay.n
        cell = v[lay.cell[k]]
        atoms = v[lay.atoms[k]].reshape(-1, 5)
        p = v[lay.pattern]
        hap = v[lay.hap[k]]
        o_c, o_a, o_p, o_h = lay.cell[k].start, lay.atoms[k].start, lay.pattern.start, \
            lay.hap[k].start
        hkl = R["hkl"]
        nr = len(hkl)
        Gm = metric_tensor(cell)
        Gs = np.linalg.inv(Gm)
        q = np.einsum("ni,ij,nj->n", hkl, Gs, hkl) + R["hh"] @ hap[_HAP["D11"]:]
        if np.any(q <= 0):
            raise ValidationError(f"phase {ph.name}: the cell {np.round(cell, 5).tolist()} "
                                  "gives non-positive 1/d² (degenerate cell)")
        dGs = -np.einsum("ij,cjk,kl->cil", Gs, metric_derivatives(cell), Gs)
        dq_dcell = np.einsum("ni,cij,nj->nc", hkl, dGs, hkl)
        V, dV = cell_volume(cell, grad=True)
        F2, dF2_dq, dF2_dat = ph.structure_factor2(hkl, q, atoms, self.scattering[k], grad=grad)
        comps = [(_IDX["lam1"], 1.0, None)]
        if p[_IDX["lam2"]] > 0:
            comps.append((_IDX["lam2"], p[_IDX["ratio"]], _IDX["ratio"]))
        sq = np.sqrt(q)
        R_mm = self.radius
        scale = p[_IDX["scale"]]
        pol = p[_IDX["polarization"]]
        frac = hap[_HAP["fraction"]]
        vf = frac / V ** 2                         # volume fraction per cell volume squared
        size = hap[_HAP["size"]]
        mus, dmus_e, dmus_a, dmus_dcell = self._strain(k, hkl, Gs, dGs, hap)
        if not size > 0:
            raise ValidationError(f"{self.name}.{ph.name}.size must be > 0 µm, got {size:g}")
        out = {k2: [] for k2 in ("I", "pos", "s2", "g", "dI", "dpos", "ds2", "dg", "ok",
                                 "comp", "ref")}
        for ci, (il, cw, iratio) in enumerate(comps):
            lam = p[il]
            if lam <= 0:
                raise ValidationError(f"{INSTRUMENT_PARAMS[il]} (wavelength) must be > 0, got "
                                      f"{lam:g}")
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
            pos = 2 * th * _DEG + p[_IDX["zero"]]
            dpos_dth = np.full(nr, 2 * _DEG)
            kR = _DEG * 1e-3 / R_mm
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
            base = cw * R["mult"] * F2 * vf              # without scale, LP
            I = scale * base * LP
            # widths
            U, Vv, W, Pp = (p[_IDX[n]] for n in ("U", "V", "W", "P"))
            X, Y = p[_IDX["X"]], p[_IDX["Y"]]
            s2 = U * tn ** 2 + Vv * tn + W + Pp * sec ** 2
            ds2_dth = (2 * U * tn + Vv) * sec ** 2 + 2 * Pp * sec ** 2 * tn
            ks = 100 * _DEG * 0.9 * lam / (size * 1e4)
            km = 100 * _DEG * 2e-6 * mus
            g = X * sec + Y * tn + ks * sec + km * tn
            dg_dth = (X + ks) * sec * tn + (Y + km) * sec ** 2
            out["I"].append(np.where(ok, I, 0.0))
            out["pos"].append(pos)
            out["s2"].append(s2)
            out["g"].append(g)
            out["ok"].append(ok)
            out["comp"].append(np.full(nr, ci))
            out["ref"].append(np.arange(nr))
            if not grad:
                continue
            dI_dth = scale * base * dLP
            dI_dq_direct = scale * cw * R["mult"] * vf * LP * dF2_dq
            dq = np.zeros((nr, nL))
            dq[:, o_c:o_c + 6] = dq_dcell
            dq[:, o_h + _HAP["D11"]:o_h + _HAP["D23"] + 1] = R["hh"]
            dth = dth_dq[:, None] * dq
            dth[:, o_p + il] += dth_dl
            dP = dpos_dth[:, None] * dth
            for n, val in dpos_direct.items():
                dP[:, o_p + _IDX[n]] += val
            dIm = dI_dth[:, None] * dth + dI_dq_direct[:, None] * dq
            dIm[:, o_a:o_a + atoms.size] += ((scale * cw * vf * LP * R["mult"])[:, None]
                                             * dF2_dat.reshape(nr, atoms.size))
            dIm[:, o_p + _IDX["scale"]] += base * LP
            dIm[:, o_h + _HAP["fraction"]] += scale * cw * R["mult"] * F2 * LP / V ** 2
            dIm[:, o_c:o_c + 6] += np.outer(I * (-2.0 / V), dV)
            if iratio is not None:
                dIm[:, o_p + iratio] += scale * R["mult"] * F2 * vf * LP
            if self.radiation == "xray":
                dIm[:, o_p + _IDX["polarization"]] += scale * base * L * dPz_dpol
            dIm *= ok[:, None]
            dS = ds2_dth[:, None] * dth
            dS[:, o_p + _IDX["U"]] += tn ** 2
            dS[:, o_p + _IDX["V"]] += tn
            dS[:, o_p + _IDX["W"]] += 1.0
            dS[:, o_p + _IDX["P"]] += sec ** 2
            dG = dg_dth[:, None] * dth
            dG[:, o_p + _IDX["X"]] += sec
            dG[:, o_p + _IDX["Y"]] += tn
            dG[:, o_h + _HAP["size"]] += -ks / size * sec
            kmu = 100 * _DEG * 2e-6 * tn
            dG[:, o_h + _HAP["mustrain"]] += kmu * dmus_e
            dG[:, o_h + _HAP["mustrain_axial"]] += kmu * dmus_a
            if dmus_dcell is not None:
                dG[:, o_c:o_c + 6] += (kmu[:, None] * dmus_dcell)
            dG[:, o_p + il] += ks / lam * sec
            out["dI"].append(dIm)
            out["dpos"].append(dP)
            out["ds2"].append(dS)
            out["dg"].append(dG)
        res = {k2: (np.concatenate(v2) if v2 else None) for k2, v2 in out.items()}
        res.update(q=q, F2=F2, nq=np.tile(R["nq"], len(comps)), volume=V)
        return res

    def _strain(self, k: int, hkl: np.ndarray, Gs: np.ndarray, dGs: np.ndarray,
                hap: np.ndarray):
        """Microstrain of every reflection of phase ``k`` and its derivatives.

        Isotropic: ``mustrain``. Uniaxial (a ``strain_axis`` u given for the phase, as
        GSAS-II's model): ``μ = μe μa / sqrt(μe² cos²φ + μa² sin²φ)`` with φ the angle between
        the reciprocal vectors h and u, μe = ``mustrain`` (equatorial), μa =
        ``mustrain_axial``. Returns μ, dμ/dμe, dμ/dμa and dμ/dcell (None when isotropic).
        """
        me, ma = hap[_HAP["mustrain"]], hap[_HAP["mustrain_axial"]]
        n = len(hkl)
        axis = self.strain_axis.get(self.phases[k].name)
        if axis is None:
            return np.full(n, me), np.ones(n), np.zeros(n), None
        u = np.asarray(axis, dtype=float)
        t = hkl @ Gs @ u
        q = np.einsum("ni,ij,nj->n", hkl, Gs, hkl)
        qu = u @ Gs @ u
        c2 = t * t / (q * qu)
        dt = np.einsum("ni,cij,j->nc", hkl, dGs, u)
        dq = np.einsum("ni,cij,nj->nc", hkl, dGs, hkl)
        dqu = np.einsum("i,cij,j->c", u, dGs, u)
        dc2 = c2[:, None] * (2 * dt / t[:, None] - dq / q[:, None] - dqu[None, :] / qu) \
            if np.all(t != 0) else np.where(t[:, None] != 0, c2[:, None] * (
                2 * dt / np.where(t != 0, t, 1)[:, None] - dq / q[:, None] - dqu[None, :] / qu),
                0.0)
        s2 = 1.0 - c2
        D2 = me * me * c2 + ma * ma * s2
        if not np.all(D2 > 0):       # both strains zero: no strain, derivatives of the
            D2 = np.where(D2 > 0, D2, 1.0)   # isotropic limit (μ = μe = μa)
            iso = True
        else:
            iso = False
        D = np.sqrt(D2)
        mu = me * ma / D
        dme = ma ** 3 * s2 / D ** 3
        dma = me ** 3 * c2 / D ** 3
        dmu_dc2 = -me * ma * (me * me - ma * ma) / (2 * D ** 3)
        if iso:
            mu, dme, dma, dmu_dc2 = np.zeros(n), s2, c2, np.zeros(n)
        return mu, dme, dma, dmu_dc2[:, None] * dc2

    def _rows(self, v: np.ndarray, grad: bool) -> dict:
        """Reflection rows of every phase, concatenated, with widths from TCH."""
        parts = [self._phase_rows(k, v, grad) for k in range(len(self.phases))]
        rows = {}
        for key in ("I", "pos", "s2", "g", "ok", "comp", "ref", "nq") + (
                ("dI", "dpos", "ds2", "dg") if grad else ()):
            rows[key] = np.concatenate([pt[key] for pt in parts])
        rows["phase"] = np.concatenate([np.full(len(pt["I"]), k) for k, pt in enumerate(parts)])
        rows["per_phase"] = parts
        (rows["fwhm"], rows["eta"], rows["df_ds2"], rows["df_dg"], rows["de_ds2"],
         rows["de_dg"]) = tch(rows["s2"], rows["g"])
        return rows

    def _fcj(self, rows: dict, p: np.ndarray, grad: bool):
        """Node shifts/weights of the asymmetric rows; span and mean shift of every row."""
        n = len(rows["pos"])
        span, mean, nodes = np.zeros(n), np.zeros(n), []
        SL, HL = p[_IDX["SL"]], p[_IDX["HL"]]
        if not (np.any(rows["nq"] > 0) and SL + HL > 0):
            return span, mean, nodes, None
        dmean = np.zeros((n, 3)) if grad else None
        for nq in np.unique(rows["nq"][rows["nq"] > 0]):
            idx = np.flatnonzero(rows["nq"] == nq)
            sh, wt, dsh, dwt = fcj_nodes(rows["pos"][idx], SL, HL, int(nq))
            span[idx] = np.abs(sh).max(axis=1)
            mean[idx] = (sh * wt).sum(axis=1)
            if grad:
                for j in range(3):
                    dmean[idx, j] = (dsh[j] * wt + sh * dwt[j]).sum(axis=1)
            nodes.append((idx, sh, wt, dsh, dwt))
        return span, mean, nodes, dmean

    def _criterion_windows(self, v: np.ndarray):
        """Half-widths the lost-intensity criterion asks for now: Bragg rows, background peaks;
        plus the rows' FWHM and FCJ span (for the switch radius)."""
        rows = self._rows(v, grad=False)
        span, _, _, _ = self._fcj(rows, v[self._layout.pattern], grad=False)
        w_rows = rows["fwhm"] * window_fwhm(rows["eta"], self.tail_tolerance) + span
        bk = v[self._layout.bkpk].reshape(4, -1)
        fw_bk, eta_bk, *_ = tch(bk[2], bk[3]) if bk.shape[1] else (np.zeros(0), np.zeros(0))
        w_bk = fw_bk * window_fwhm(eta_bk, self.tail_tolerance)
        return w_rows, w_bk, rows["fwhm"], span, fw_bk

    def refresh_windows(self, v: np.ndarray | None = None) -> None:
        """Freeze the peak windows and the far-field set-up at the local vector ``v``.

        Called at the start of every fit, so that the model is a smooth function of the
        parameters during it: each peak keeps its switch radius ``C`` (6 FWHM plus four
        times its asymmetry span) and its window ``W``, twice ``WINDOW_MARGIN`` times the
        half-width the lost-intensity criterion asks for, with a smooth taper from ``W/2`` to
        ``W``. :meth:`windows_ok` says whether the criterion still holds at new values.
        """
        v = self.local_vector() if v is None else np.asarray(v, dtype=float)
        if self.tail_tolerance <= 0:
            self._tails = {"rows": None, "bkpk": None, "w_rows": None, "w_bkpk": None}
            return
        w_rows, w_bk, fw_rows, span, fw_bk = self._criterion_windows(v)
        r_rows = CORE_FWHM * fw_rows + 4.0 * span
        r_bk = CORE_FWHM * fw_bk
        grids = TailGrids.build(self.x, np.concatenate([r_rows, r_bk]))
        self._tails = {"grids": grids, "rows": r_rows, "bkpk": r_bk,
                       "w_rows": 2.0 * WINDOW_MARGIN * w_rows, "w_bkpk": 2.0 * WINDOW_MARGIN * w_bk}

    def windows_ok(self, v: np.ndarray) -> bool:
        """Whether the frozen windows still meet the lost-intensity criterion at ``v``."""
        if self._tails is None:
            return False
        if self.tail_tolerance <= 0:
            return True
        w_rows, w_bk, *_ = self._criterion_windows(np.asarray(v, dtype=float))
        return bool(np.all(w_rows <= 0.5 * self._tails["w_rows"] * (1 + 1e-9))
                    and np.all(w_bk <= 0.5 * self._tails["w_bkpk"] * (1 + 1e-9)))

    def _windows(self, it: _Items):
        """Per grid level: the grid, the items on it and their index windows ``[lo, hi)``."""
        out = []
        levels = np.unique(it.level) if it.mask == "far" else [-1]
        for ell in levels:
            sel = np.flatnonzero(it.level == ell) if it.mask == "far" else np.arange(len(it.c))
            if not len(sel):
                continue
            sub = it.take(sel)
            if ell < 0:
                xs, P = self.x, None
            else:
                xs, P = self._tails["grids"].grid(int(ell))
            lo = np.searchsorted(xs, sub.p - sub.half, side="left")
            hi = np.searchsorted(xs, sub.p + sub.half, side="right")
            if it.mask == "far":           # a band has two sides, outside its inner edge
                lo_in = np.searchsorted(xs, sub.p - sub.inner, side="left")
                hi_in = np.searchsorted(xs, sub.p + sub.inner, side="right")
                lo, hi, lo2, hi2 = lo, np.minimum(lo_in, hi), np.maximum(hi_in, lo), hi
            else:
                lo2 = hi2 = np.zeros_like(lo)
            win = [np.asarray(a, dtype=np.int64) for a in (lo, hi, lo2, hi2)]
            out.append((P, xs, sub, win))
        return out

    @staticmethod
    def _kernel_args(sub: _Items):
        radius = np.where(np.isfinite(sub.radius), sub.radius, 0.0)
        n = len(sub.c)
        scale = sub.scale if sub.scale is not None else np.ones(n)
        last = sub.last if sub.last is not None else np.ones(n, dtype=bool)
        taper = (np.where(np.isfinite(sub.taper), sub.taper, 0.0) if sub.taper is not None
                 else np.zeros(n))
        return radius, scale, last, taper

    def _render(self, it: _Items, grad: bool, sel_cols: np.ndarray, y: np.ndarray,
                Jc: np.ndarray | None) -> None:
        """Add the items' profiles to ``y`` and their Jacobian columns ``sel_cols`` to ``Jc``,
        on the data points (core) or on coarse grids interpolated onto them (far field)."""
        empty = np.zeros((0, 0))
        if grad:
            D = [np.ascontiguousarray(a[:, sel_cols]) for a in it.D[:4]]
            has_p = it.D[4] is not None
            DP = np.ascontiguousarray(it.D[4][:, sel_cols]) if has_p else D[1]
        else:
            D = [np.zeros((1, 0))] * 4
            DP, has_p = D[0], False
        for P, xs, sub, win in self._windows(it):
            radius, scale, last, taper = self._kernel_args(sub)
            drow = sub.drow.astype(np.int64) if grad else np.zeros(len(sub.c), dtype=np.int64)
            if P is None:
                render_items(xs, *win, sub.c, sub.p, sub.I, sub.fwhm, sub.eta, sub.df_ds2,
                             sub.df_dg, sub.de_ds2, sub.de_dg, radius, it.mask == "far",
                             scale, last, taper, drow, D[0], D[1], D[2], D[3], DP, has_p,
                             grad, y, Jc if grad else empty)
                continue
            yl = np.zeros(xs.size)
            Jl = np.zeros((xs.size, sel_cols.size)) if grad else empty
            render_items(xs, *win, sub.c, sub.p, sub.I, sub.fwhm, sub.eta, sub.df_ds2,
                         sub.df_dg, sub.de_ds2, sub.de_dg, radius, it.mask == "far", scale,
                         last, taper, drow, D[0], D[1], D[2], D[3], DP, has_p, grad, yl, Jl)
            y += P @ yl
            if grad:
                Jc += P @ Jl

    def item_sums(self, info: dict, weights: np.ndarray) -> np.ndarray:
        """Σ over the data points of each reflection row's (core) contribution × ``weights``.

        With ``weights = 1`` the calculated integrated intensity seen in the fit range; with
        ``weights = (obs - bkg) / (calc - bkg)`` Rietveld's observed one (Bragg R).
        """
        it = info["core_items"]
        out = np.zeros(len(info["refl_index"]))
        for _, xs, sub, win in self._windows(it):
            radius, scale, last, taper = self._kernel_args(sub)
            s = item_sums(xs, *win, sub.c, sub.p, sub.I, sub.fwhm, sub.eta, radius, False,
                          scale, last, taper, np.asarray(weights, dtype=float))
            np.add.at(out, sub.row, s)
        return out

    def _peak_items(self, rows: dict, p: np.ndarray, grad: bool):
        """Core and far-field items of the Bragg peaks."""
        n = len(rows["pos"])
        span, mean, nodes, dmean = self._fcj(rows, p, grad)
        C = np.full(n, np.inf)
        W = np.full(n, np.inf)
        if self.tail_tolerance > 0:
            C, W = self._tails["rows"], self._tails["w_rows"]
        far = W > C
        radius = np.where(far, C, np.inf)
        half = np.where(far, np.minimum(W, 2 * C), W)
        keep = rows["ok"]
        wid = {k: rows[k] for k in ("fwhm", "eta", "df_ds2", "df_dg", "de_ds2", "de_dg")}
        asym = np.zeros(n, dtype=bool)
        lay = self._layout
        o_p = lay.pattern.start
        node_items, node_D = [], []
        n_extra = n
        for idx, sh, wt, dsh, dwt in nodes:
            idx_k = keep[idx]
            idx, sh, wt = idx[idx_k], sh[idx_k], wt[idx_k]
            dsh = tuple(d[idx_k] for d in dsh)
            dwt = tuple(d[idx_k] for d in dwt)
            asym[idx] = True
            m, nq = sh.shape
            src = np.repeat(idx, nq)
            node_items.append(_Items(
                c=(rows["pos"][idx, None] + sh).ravel(), p=rows["pos"][src],
                I=(rows["I"][idx, None] * wt).ravel(), **{k: v[src] for k, v in wid.items()},
                half=half[src], radius=radius[src], mask="core", row=src,
                drow=n_extra + np.arange(src.size)))
            n_extra += src.size
            if grad:
                dposf = rows["dpos"][idx]
                dnp = dposf[:, None, :] * (1 + dsh[0])[:, :, None]
                dnp[:, :, o_p + _IDX["SL"]] += dsh[1]
                dnp[:, :, o_p + _IDX["HL"]] += dsh[2]
                dnI = rows["dI"][idx][:, None, :] * wt[:, :, None]
                dnI += (rows["I"][idx, None] * dwt[0])[:, :, None] * dposf[:, None, :]
                dnI[:, :, o_p + _IDX["SL"]] += rows["I"][idx, None] * dwt[1]
                dnI[:, :, o_p + _IDX["HL"]] += rows["I"][idx, None] * dwt[2]
                node_D.append((dnI.reshape(-1, lay.n), dnp.reshape(-1, lay.n), src))
        plain = np.flatnonzero(keep & ~asym)
        part = _Items(c=rows["pos"][plain], p=rows["pos"][plain], I=rows["I"][plain],
                      **{k: v[plain] for k, v in wid.items()}, half=half[plain],
                      radius=radius[plain], mask="core", row=plain, drow=plain)
        core = _concat_items([part] + node_items)
        core.taper = W[core.row]
        if grad:
            if node_D:
                srcs = np.concatenate([s for _, _, s in node_D])
                core.D = (np.concatenate([rows["dI"]] + [a for a, _, _ in node_D]),
                          np.concatenate([rows["dpos"]] + [b for _, b, _ in node_D]),
                          np.concatenate([rows["ds2"], rows["ds2"][srcs]]),
                          np.concatenate([rows["dg"], rows["dg"][srcs]]),
                          np.concatenate([rows["dpos"], rows["dpos"][srcs]]))
            else:
                core.D = (rows["dI"], rows["dpos"], rows["ds2"], rows["dg"], None)
        fi = np.flatnonzero(keep & far)
        farit = None
        if len(fi):
            farit = _Items(c=rows["pos"][fi] + mean[fi], p=rows["pos"][fi], I=rows["I"][fi],
                           **{k: v[fi] for k, v in wid.items()}, half=W[fi], radius=C[fi],
                           mask="far", row=fi, drow=fi, taper=W[fi])
            if grad:
                if dmean is not None:   # the far field sits at the mean of the FCJ nodes
                    dc = rows["dpos"] * (1 + dmean[:, 0])[:, None]
                    dc[:, o_p + _IDX["SL"]] += dmean[:, 1]
                    dc[:, o_p + _IDX["HL"]] += dmean[:, 2]
                    farit.D = (rows["dI"], dc, rows["ds2"], rows["dg"], rows["dpos"])
                else:
                    farit.D = (rows["dI"], rows["dpos"], rows["ds2"], rows["dg"], None)
            farit = self._bands(farit, fi)
        return core, farit

    def _bands(self, far: _Items, index: np.ndarray) -> _Items:
        """Split far-field items into octave bands (see :mod:`._tails`)."""
        ratio = far.half / far.radius
        nb = np.maximum(np.floor(np.log2(ratio)).astype(int) - 1, 0) + 1
        src = np.repeat(np.arange(len(nb)), nb)
        band = np.arange(src.size) - np.repeat(np.cumsum(nb) - nb, nb)
        out = far.take(src)
        out.scale = 2.0 ** band
        out.last = band == nb[src] - 1
        out.inner = out.radius * out.scale
        out.half = np.where(out.last, out.half, np.minimum(out.half, 4.0 * out.inner))
        out.level = self._tails["grids"].levels(index[src], band)
        return out

    def _bkpk_items(self, v: np.ndarray, grad: bool):
        lay = self._layout
        bk = v[lay.bkpk].reshape(4, -1)
        nb = bk.shape[1]
        if nb == 0:
            return None, None
        pos, area, s2, g = bk
        fwhm, eta, df_ds2, df_dg, de_ds2, de_dg = tch(s2, g)
        if self.tail_tolerance > 0:
            C, W = self._tails["bkpk"], self._tails["w_bkpk"]
        else:
            C = W = np.full(nb, np.inf)
        far = W > C
        wid = dict(fwhm=fwhm, eta=eta, df_ds2=df_ds2, df_dg=df_dg, de_ds2=de_ds2, de_dg=de_dg)
        core = _Items(c=pos, p=pos, I=area, **wid, half=np.where(far, np.minimum(W, 2 * C), W),
                      radius=np.where(far, C, np.inf), mask="core", row=np.arange(nb),
                      drow=np.arange(nb), taper=W.copy())
        if grad:
            o = lay.bkpk.start
            E = np.eye(lay.n)
            core.D = (E[o + nb:o + 2 * nb], E[o:o + nb], E[o + 2 * nb:o + 3 * nb],
                      E[o + 3 * nb:o + 4 * nb], None)
        fi = np.flatnonzero(far)
        farit = None
        if len(fi):
            farit = core.take(fi)
            farit.mask, farit.half, farit.radius, farit.taper = "far", W[fi], C[fi], W[fi]
            farit = self._bands(farit, len(self._tails["rows"]) + fi)
        return core, farit

    def evaluate(self, v: np.ndarray, *, grad: bool = True, peaks: bool = False,
                 cols: np.ndarray | None = None):
        """Calculated pattern at the fit points and its Jacobian over the local columns.

        Parameters
        ----------
        v : ndarray
            The local vector, in :meth:`local_names` order.
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
        v = np.asarray(v, dtype=float)
        lay = self._layout
        if v.shape != (lay.n,):
            raise ValidationError(f"v must be the local vector of shape ({lay.n},), got "
                                  f"{v.shape}")
        if not np.all(np.isfinite(v)):
            bad = [n for n, x in zip(self.local_names(), v) if not np.isfinite(x)]
            raise ValidationError(f"v must be finite; not finite: {', '.join(bad[:8])}"
                                  f"{' ...' if len(bad) > 8 else ''}")
        if self._tails is None:
            self.refresh_windows(v)
        p = v[lay.pattern]
        rows = self._rows(v, grad)
        core, farit = self._peak_items(rows, p, grad)
        sel_cols = np.arange(lay.n) if cols is None else np.asarray(cols, dtype=int)
        Jc = np.zeros((self.x.size, sel_cols.size)) if grad else None
        ypk = np.zeros(self.x.size)
        for it in (core, farit):
            if it is not None:
                self._render(it, grad, sel_cols, ypk, Jc)
        yb = self.cheb @ v[lay.bkg] if self.n_background else np.zeros_like(self.x)
        bcore, bfar = self._bkpk_items(v, grad)
        for it in (bcore, bfar):
            if it is not None:
                self._render(it, grad, sel_cols, yb, Jc)
        jac = None
        if grad:
            jac = np.zeros((self.x.size, lay.n))
            jac[:, sel_cols] = Jc
            if self.n_background:
                b = np.arange(lay.bkg.start, lay.bkg.stop)
                keep = np.isin(b, sel_cols)
                jac[:, b[keep]] += self.cheb[:, keep]
        ycalc = ypk + yb
        if not peaks:
            return ycalc, jac
        info = {"ybkg": yb, "phase": rows["phase"], "refl_index": rows["ref"],
                "comp": rows["comp"], "refl_pos": rows["pos"], "refl_I": rows["I"],
                "core_items": core, "phases": {}}
        for k, ph in enumerate(self.phases):
            part = rows["per_phase"][k]
            nr = len(self._refl[k]["hkl"])
            info["phases"][ph.name] = {"hkl": self._refl[k]["hkl"], "mult": self._refl[k]["mult"],
                                       "q": part["q"], "F2": part["F2"], "pos": part["pos"][:nr],
                                       "I": part["I"][:nr], "volume": part["volume"]}
        return ycalc, jac, info

    def calc(self, values=None, *, grad: bool = False):
        """Evaluate at the groups' current values (or at ``values``, see :meth:`local_vector`)."""
        return self.evaluate(self.local_vector(values), grad=grad)


def _pair(value, name: str) -> tuple[float, float]:
    """``value`` as two finite floats ``(lo, hi)``."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
        raise ValidationError(f"{name} must be two numbers (lo, hi) in degrees 2theta, got "
                              f"{value!r}")
    lo, hi = (check_float(v, f"{name}[{i}]", finite=False) for i, v in enumerate(value))
    return lo, hi


def _concat_items(parts: list[_Items]) -> _Items:
    keys = [k for k in _Items.__dataclass_fields__
            if k not in ("mask", "D", "level", "scale", "last", "inner", "taper")]
    return _Items(mask=parts[0].mask, **{k: np.concatenate([getattr(pt, k) for pt in parts])
                                         for k in keys})


def instrument_options(prm: dict) -> dict:
    """:class:`PowderPattern` keyword arguments from :func:`read_gsas_prm`'s dict."""
    opts = {"radiation": prm["radiation"], "lam1": prm["lam1"], "lam2": prm["lam2"],
            "ratio": prm["ratio"],
            "polarization": prm["polarization"] if prm["radiation"] == "xray" else 0.5,
            "profile": {k: prm[k] for k in ("U", "V", "W", "P", "X", "Y", "SL", "HL")
                        if k in prm}}
    opts["profile"]["zero"] = prm["zero"]
    if prm["radiation"] == "neutron":
        opts["geometry"] = "debye-scherrer"
    return opts
