"""Datasets of :mod:`sciTie.diffraction`: the PbSO4 round-robin data and a synthetic pair.

The PbSO4 and synthetic loaders return ``{"xray": Dataset, "neutron": Dataset}``; each Dataset
has the variable ``intensity`` on the pattern's axis (``two_theta``, or ``tof`` for the Si
time-of-flight pattern) with a ``variance`` coordinate, and the instrument in ``attrs``
(:meth:`PeakProfile.to_attrs`: the profile kind, its settings and starting values), so
:func:`pattern_from_dataset` can rebuild a :class:`PowderPattern`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import DataFormatError, ValidationError
from ._cell import cell_volume
from ._crystal import Atom, Phase
from ._io import make_pattern, read_gsas_std, read_instrument
from ._loaded import pattern_dataset, instrument_from_attrs, pattern_from_dataset
from ._pattern import PowderPattern
from ._refine import JointRefinement
from .profiles import ConstantWavelength

__all__ = ["load_pbso4", "load_synthetic", "make_synthetic", "pattern_from_dataset",
           "instrument_from_attrs",
           "pbso4_refinement", "synthetic_phase", "synthetic_refinement", "PBSO4_PUBLISHED",
           "SYNTHETIC_TRUTH", "load_cucr2o4_seq", "cucr2o4_recipe", "CUCR2O4_STAGES",
           "CUCR2O4_LAWS", "make_synthetic_series", "synthetic_series_recipe",
           "SYNTHETIC_SERIES_LAWS"]

#: Published joint refinement (GSAS-II combined tutorial): value, esd.
PBSO4_PUBLISHED = {
    "a": (8.4803, 1e-4), "b": (5.39857, 6e-5), "c": (6.96001, 8e-5),
    "Pb.x": (0.18754, 8e-5), "Pb.z": (0.16717, 12e-5), "Pb.uiso": (0.0208, 2e-4),
    "S.x": (0.0649, 3e-4), "S.z": (0.6835, 4e-4), "S.uiso": (0.0072, 6e-4),
    "O1.x": (-0.0930, 2e-4), "O1.z": (0.5954, 2e-4), "O1.uiso": (0.0251, 5e-4),
    "O2.x": (0.1937, 2e-4), "O2.z": (0.5426, 3e-4), "O2.uiso": (0.0177, 4e-4),
    "O3.x": (0.0809, 1e-4), "O3.y": (0.0269, 2e-4), "O3.z": (0.8093, 2e-4),
    "O3.uiso": (0.0173, 3e-4),
}

def load_pbso4(path: str | os.PathLike | None = None) -> dict:
    """The PbSO4 X-ray (Cu Kα) and D1A neutron patterns of the IUCr round robin.

    Parameters
    ----------
    path : path-like, optional
        Folder with ``PBSO4.XRA``, ``PBSO4.CWN``, ``INST_XRY.PRM``, ``inst_d1a.prm`` and
        ``PbSO4-Wyckoff.cif``; default: the copy shipped inside the package (about 100 kB,
        with its provenance and licence note, ``sciTie/datasets/data/pbso4/README.md``).

    Returns
    -------
    dict of str to xarray.Dataset
        ``"xray"`` and ``"neutron"``; attrs hold the instrument parameters from the
        ``.prm`` files, the file names and ``cif`` (path of the starting structure).
    """
    from ..datasets import data_dir

    folder = data_dir("pbso4", path)
    files = {"xray": ("PBSO4.XRA", "INST_XRY.PRM"), "neutron": ("PBSO4.CWN", "inst_d1a.prm")}
    out = {}
    for key, (dat, prm) in files.items():
        for f in (dat, prm, "PbSO4-Wyckoff.cif"):
            if not (folder / f).exists():
                raise FileNotFoundError(f"pbso4 dataset folder {folder} lacks {f}")
        pat = read_gsas_std(folder / dat, name=key)
        attrs = read_instrument(folder / prm).to_attrs()
        attrs.update({"dataset": "pbso4", "cif": str(folder / "PbSO4-Wyckoff.cif"),
                      "instrument_file": str(folder / prm),
                      "reference": "R. J. Hill, J. Appl. Cryst. 25 (1992) 589-610; GSAS-II "
                                   "combined-refinement tutorial"})
        out[key] = pattern_dataset(pat, attrs)
    return out


def pbso4_refinement(path: str | os.PathLike | None = None, *, data: dict | None = None,
                     xray_range=(16.0, 158.4), neutron_range=(19.0, 153.0),
                     n_background: int = 3, patterns=("xray", "neutron")) -> JointRefinement:
    """The PbSO4 joint refinement set up as in the GSAS-II tutorial (not yet refined).

    The model follows the published refinement item by item, because the positions and
    displacement parameters move by several esds with these choices (see the
    "PbSO4 results and known deviations" section of the diffraction docs):

    * three Chebyshev background terms per pattern;
    * the zero shifts stay at the ``.prm`` values (0 and -0.001 deg); the peak offsets are
      taken up by the sample displacement instead: ``shift`` (Bragg-Brentano) for the
      X-ray pattern, ``disp_x, disp_y`` (Debye-Scherrer) for the neutron pattern;
    * axial-divergence asymmetry S/L = H/L = 0.001 (GSAS-II's SH/L = 0.002): GSAS-II
      reads only the wavelengths, zero, polarisation, Kα2 ratio and GU, GV, GW from a
      ``.prm`` file and uses its defaults for the rest, so the tutorial ran with this
      value, not with the file's S/L = H/L = 0.015;
    * the X-ray pattern refines the Lorentzian widths ``X, Y`` (GSAS-II: crystallite size
      and microstrain) and, in the last stage with the atoms, the Gaussian ``U, V, W`` (as
      the tutorial does; freed earlier they run into the clip at zero variance); the neutron
      pattern refines ``U, V, W, X`` and, in a joint refinement, the cell correction
      ``D11, D22, D33`` (low temperature). The structure is shared.

    ``patterns=("neutron",)`` gives a single-pattern refinement.
    """
    data = data if data is not None else load_pbso4(path)
    phase = Phase.from_cif(data["xray"].attrs["cif"] if "xray" in data
                           else data["neutron"].attrs["cif"])
    asym = {"SL": 0.001, "HL": 0.001}
    pats = []
    if "xray" in patterns:
        pats.append(pattern_from_dataset(data["xray"], phase, name="xray", fit_range=xray_range,
                                         refine_profile=("X", "Y"),
                                         refine_profile_late=("U", "V", "W"),
                                         n_background=n_background,
                                         instrument_values=asym, refine_zero=False,
                                         refine_displacement=True))
    if "neutron" in patterns:
        pats.append(pattern_from_dataset(
            data["neutron"], phase, name="neutron", fit_range=neutron_range,
            cell_correction="xray" in patterns, n_background=n_background,
            instrument_values=asym,
            refine_profile=("U", "V", "W", "X"), refine_zero=False, refine_displacement=True))
    if not pats:
        raise ValidationError(f"patterns must name 'xray' and/or 'neutron', got {patterns!r}")
    return JointRefinement(phase, pats)


# -- synthetic ------------------------------------------------------------------------------------
#: Truth of the synthetic set: rutile-type TiO2 (P4_2/mnm), O on (x, x, 0).
SYNTHETIC_TRUTH = {"a": 4.5937, "c": 2.9587, "O.x": 0.30478, "Ti.uiso": 0.0060,
                   "O.uiso": 0.0080}
#: Instrument keys of the synthetic set (the rest: range, scale, background, cell corrections).
_SYN_KEYS = ("radiation", "lam1", "lam2", "ratio", "polarization", "geometry", "radius", "U", "V",
             "W", "P", "X", "Y", "SL", "HL", "zero")
_SYN_INSTRUMENT = {
    "xray": {"radiation": "xray", "lam1": 1.5406, "lam2": 1.5444, "ratio": 0.5,
             "polarization": 0.7, "geometry": "bragg-brentano", "radius": 240.0,
             "U": 3.0, "V": -2.0, "W": 4.0, "P": 0.0, "X": 3.0, "Y": 2.0, "SL": 0.02,
             "HL": 0.02, "zero": 0.01, "range": (20.0, 120.0, 0.04), "scale": 0.03,
             "bkg": (120.0, -20.0, 8.0)},
    "neutron": {"radiation": "neutron", "lam1": 1.594, "lam2": 0.0, "ratio": 0.0,
                "polarization": 0.5, "geometry": "debye-scherrer", "radius": 300.0,
                "U": 250.0, "V": -500.0, "W": 400.0, "P": 0.0, "X": 0.0, "Y": 0.0, "SL": 0.0,
                "HL": 0.0, "zero": -0.02, "range": (15.0, 150.0, 0.1), "scale": 0.3,
                "bkg": (150.0, 10.0, -5.0), "D11": -2.0e-5, "D33": -3.0e-5},
}


def synthetic_phase(truth: dict | None = None) -> Phase:
    """Rutile-type TiO2 with the synthetic truth (or ``truth``) as its parameters."""
    t = dict(SYNTHETIC_TRUTH)
    t.update(truth or {})
    atoms = [Atom("Ti", "Ti", (0.0, 0.0, 0.0), uiso=t["Ti.uiso"]),
             Atom("O", "O", (t["O.x"], t["O.x"], 0.0), uiso=t["O.uiso"])]
    return Phase("TiO2", (t["a"], t["a"], t["c"], 90, 90, 90), "P 42/m n m", atoms)


def make_synthetic(seed: int = 0, *, counts_scale: float = 1.0) -> dict:
    """Generate the synthetic X-ray + neutron pair from the known structure.

    Poisson counts around the model pattern (package code, deterministic for a seed); the
    truth (structure and instrument) is stored in ``attrs`` as ``true_<name>``.

    Parameters
    ----------
    seed : int
        Seed of :func:`numpy.random.default_rng`.
    counts_scale : float
        Multiplies the expected counts (more counts: smaller esds).

    Returns
    -------
    dict of str to xarray.Dataset
    """
    if not counts_scale > 0:
        raise ValidationError(f"counts_scale must be > 0, got {counts_scale}")
    rng = np.random.default_rng(seed)
    phase = synthetic_phase()
    volume = cell_volume(phase.cell_values())
    out = {}
    for key, inst in _SYN_INSTRUMENT.items():
        lo, hi, step = inst["range"]
        tth = np.round(np.arange(lo, hi + step / 2, step), 6)
        dummy = make_pattern(tth, np.ones_like(tth), np.ones_like(tth), name=key)
        instrument = ConstantWavelength(**{k: inst[k] for k in _SYN_KEYS})
        pat = PowderPattern(dummy, phase, instrument, name=key, n_background=3)
        g = pat.group
        # intensities scale as scale * fraction / V²: the instrument's scale is per unit cell
        g["scale"].value = inst["scale"] * counts_scale * volume ** 2
        g["bkg"].value = np.array(inst["bkg"]) * counts_scale
        for d in ("D11", "D22", "D33"):
            if d in inst:
                g[f"{phase.name}.{d}"].value = inst[d]
        y, _ = pat.calc()
        counts = rng.poisson(np.maximum(y, 0)).astype(float)
        attrs = {k: v for k, v in inst.items() if isinstance(v, (int, float, str))}
        attrs.update(instrument.to_attrs())
        attrs.update({f"true_{k}": float(v) for k, v in SYNTHETIC_TRUTH.items()})
        gv = g.valuesdict()
        attrs.update({"true_scale": float(gv["scale"]), "true_zero": float(gv["zero"])})
        attrs.update({f"true_{d}": float(gv[f"{phase.name}.{d}"]) for d in ("D11", "D33")})
        attrs.update({"dataset": "diffraction-synthetic", "seed": int(seed),
                      "structure": "rutile-type TiO2, P4_2/mnm, Ti 2a (0,0,0), O 4f (x,x,0)",
                      "generator": "sciTie.diffraction.data.make_synthetic"})
        out[key] = pattern_dataset(make_pattern(tth, counts, np.maximum(counts, 1.0), name=key), attrs)
    return out


def load_synthetic(seed: int = 0) -> dict:
    """The bundled synthetic two-pattern set (generated on the fly; see :func:`make_synthetic`)."""
    return make_synthetic(seed)


def synthetic_refinement(data: dict | None = None, *, patterns=("xray", "neutron"),
                         start: dict | None = None) -> JointRefinement:
    """Joint refinement of the synthetic set, starting from a perturbed structure.

    Parameters
    ----------
    data : dict, optional
        From :func:`load_synthetic` (default seed 0).
    patterns : tuple of str
        Which patterns to include (a single-pattern refinement for comparisons).
    start : dict, optional
        Starting structure values (default: the truth moved by about 1 %).
    """
    data = data if data is not None else load_synthetic()
    s = {"a": 4.60, "c": 2.955, "O.x": 0.30, "Ti.uiso": 0.01, "O.uiso": 0.01}
    s.update(start or {})
    phase = synthetic_phase(s)
    pats = []
    for key in patterns:
        pats.append(pattern_from_dataset(
            data[key], phase, name=key, n_background=3,
            cell_correction=(key == "neutron" and "xray" in patterns),
            refine_profile=("U", "V", "W", "X", "Y") if key == "xray" else ("U", "V", "W")))
    return JointRefinement(phase, pats)


# -- CuCr2O4 + CuO temperature series ------------------------------------------------------------
_TEMP = re.compile(r"^#\s*Temp\s*\(K\)\s*=\s*(?P<t>\S+)", re.IGNORECASE)


def _temperature(path: Path) -> float:
    with open(path, "r", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.upper().startswith("BANK"):
                break
            m = _TEMP.match(line.strip())
            if m:
                try:
                    return float(m.group("t"))
                except ValueError:
                    raise DataFormatError(f"temperature {m.group('t')!r} is not a number",
                                          path=path, line=lineno) from None
    raise DataFormatError("no '# Temp (K) =' line before the BANK line", path=path)


def load_cucr2o4_seq(path: str | os.PathLike | None = None) -> xr.Dataset:
    """The CuCr2O4 + CuO temperature series (11-BM, 17 patterns, 7-289 K).

    Parameters
    ----------
    path : path-like, optional
        Folder with ``OH_*.fxye``, ``OH_00.prm``, ``CuCr2O4.cif`` and ``CuO.cif``; default:
        found by :func:`sciTie.datasets.data_dir` (a local mirror ``<data_dir>/cucr2o4_seq``,
        else the download cache, downloading the 2.7 MB archive of the GSAS-II tutorial on
        first use).

    Returns
    -------
    xarray.Dataset
        ``intensity`` on ``(pattern, two_theta)`` with a ``variance`` coordinate (the files'
        esds squared), ``temperature`` (K, from each header) and ``file`` on ``pattern``; the
        instrument from ``OH_00.prm`` and the CIF paths in ``attrs``.
    """
    from ..datasets import data_dir

    folder = data_dir("cucr2o4-seq", path)
    files = sorted(folder.glob("OH_*.fxye"))
    for f in ("OH_00.prm", "CuCr2O4.cif", "CuO.cif"):
        if not (folder / f).exists():
            raise FileNotFoundError(f"cucr2o4_seq dataset folder {folder} lacks {f}")
    if not files:
        raise FileNotFoundError(f"cucr2o4_seq dataset folder {folder} has no OH_*.fxye files")
    pats = [read_gsas_std(f) for f in files]
    tth = pats[0]["two_theta"].values
    for f, p in zip(files, pats):
        if p.sizes["two_theta"] != tth.size or not np.allclose(p["two_theta"].values, tth):
            raise DataFormatError(f"its 2θ grid differs from {files[0].name}'s; a series needs "
                                  "one grid", path=f)
    temps = [_temperature(f) for f in files]
    attrs = read_instrument(folder / "OH_00.prm").replace(geometry="debye-scherrer",
                                                          radius=1000.0).to_attrs()
    attrs.update({"dataset": "cucr2o4-seq",
                  "cif_CuCr2O4": str(folder / "CuCr2O4.cif"), "cif_CuO": str(folder / "CuO.cif"),
                  "instrument_file": str(folder / "OH_00.prm"),
                  "reference": "11-BM (APS) data of the GSAS-II sequential-refinement tutorial; "
                               "M. R. Suchomel et al., Phys. Rev. B 86, 054406 (2012)"})
    ds = xr.Dataset(
        {"intensity": (("pattern", "two_theta"), np.array([p.values for p in pats]),
                       {"units": "counts", "long_name": "intensity"})},
        coords={"pattern": [f.stem for f in files],
                "two_theta": ("two_theta", tth, {"units": "degree", "long_name": "2θ"}),
                "variance": (("pattern", "two_theta"),
                             np.array([p["variance"].values for p in pats])),
                "temperature": ("pattern", temps, {"units": "K", "long_name": "temperature"}),
                "file": ("pattern", [str(f) for f in files])},
        attrs=attrs)
    return ds


#: Default refinement of one CuCr2O4 + CuO pattern, after the GSAS-II tutorial: each stage
#: lists what it refines (structure items, pattern items).
CUCR2O4_STAGES = (
    ("scale+background", (), ("scale", "bkg", "background_peaks")),
    ("cells+fractions", ("cell",), ("scale", "bkg", "background_peaks", "fraction")),
    ("displacement+broadening", ("cell",),
     ("scale", "bkg", "background_peaks", "bkpk.sigma2", "fraction", "disp_x", "mustrain")),
    ("atoms", {"CuCr2O4": ("cell", "xyz", "uiso"), "CuO": ("cell",)},
     ("scale", "bkg", "background_peaks", "bkpk.sigma2", "fraction", "disp_x", "mustrain")),
)


def cucr2o4_recipe(data: xr.Dataset, *, fit_range=(4.5, 26.1), tie_above: float | None = 135.0,
                   stages=None, uiso: bool = True, tail_tolerance: float = 1e-3):
    """The series recipe of the CuCr2O4 + CuO data, following the GSAS-II tutorial.

    Both phases in every pattern (fractions tied to sum to 1); fit range from 4.5°; a
    six-term Chebyshev background plus a pseudo-Voigt background peak for the Kapton hump
    (5.25°, σ² = 2000 centideg²); sample displacement perpendicular to the beam (``disp_x``,
    goniometer radius 1000 mm); cells of both phases; CuCr2O4 uniaxial (010) microstrain,
    CuO isotropic microstrain; then the CuCr2O4 coordinates and Uiso. The instrument
    (wavelength, polarisation 0.99, U, V, W, X, S/L, H/L) is the ``.prm`` file's and is not
    refined. The crystallite size, which the tutorial also refines, is fixed at 100 µm: free,
    it runs away (25 µm, then 180 µm with esd 90 µm on the first pattern), because size
    broadening below the 11-BM resolution is not determined by these data.

    Parameters
    ----------
    data : xarray.Dataset
        From :func:`load_cucr2o4_seq`.
    fit_range : (float, float)
        2θ range (degrees).
    tie_above : float or None
        Tie ``CuCr2O4.c`` to ``CuCr2O4.b`` (the tetragonal cell in the Fddd setting) for the
        patterns above this temperature; None: no tie.
    stages : list, optional
        Default :data:`CUCR2O4_STAGES`.
    uiso : bool
        Refine the CuCr2O4 Uiso in the last stage (default). Below about 12° 2θ
        (sin θ/λ < 0.25 Å⁻¹) they are not determined and their fit crawls: use False.
    """
    from ._series import SeriesRecipe, SeriesTie

    phases = [Phase.from_cif(data.attrs["cif_CuCr2O4"], name="CuCr2O4"),
              Phase.from_cif(data.attrs["cif_CuO"], name="CuO")]
    opts = dict(instrument=instrument_from_attrs(data.attrs).replace(geometry="debye-scherrer"),
                fit_range=tuple(fit_range), n_background=6,
                background_peaks=[(5.25, 5.0, 2000.0, 0.0)],
                strain_axis={"CuCr2O4": (0, 1, 0)}, refine_zero=False,
                refine_displacement=True, tail_tolerance=tail_tolerance,
                phase_values={"CuCr2O4": {"fraction": 0.9, "size": 100.0, "mustrain": 800.0},
                              "CuO": {"fraction": 0.1, "size": 100.0, "mustrain": 800.0}})
    ties = [SeriesTie("CuCr2O4.c", "CuCr2O4.b", above=tie_above)] if tie_above is not None \
        else []
    stages = [tuple(s) for s in (CUCR2O4_STAGES if stages is None else stages)]
    if not uiso:
        stages = [(lab, ({k: tuple(i for i in v if i != "uiso") for k, v in st.items()}
                         if isinstance(st, dict) else tuple(i for i in st if i != "uiso")), it)
                  for lab, st, it in stages]
    return SeriesRecipe(phases=phases, pattern_options=opts, stages=list(stages),
                        continue_stages=1, constrain_fractions=True, ties=ties)


def _spline(prefix: str, knots=(50, 100, 125, 150, 200)) -> str:
    """A cubic spline in T as a law: cubic polynomial plus truncated cubics at the knots
    (``t = T/100``)."""
    t = "(T/100)"
    terms = [f"{prefix}0", f"{prefix}1*{t}", f"{prefix}2*{t}**2", f"{prefix}3*{t}**3"]
    terms += [f"{prefix}k{k}*max({t} - {k / 100:g}, 0)**3" for k in knots]
    return " + ".join(terms)


def _cucr2o4_laws() -> dict:
    from ._parametric import Law

    split = {"Tc": 130.0, "d0": 6e-4}   # an order parameter needs a start inside the range
    m = _spline("m")
    d = "max(Tc - T, 0)**0.5*(d0 + d1*(T/100))"
    return {"CuCr2O4.a": Law(_spline("a")),
            "CuCr2O4.b": Law(f"{m} + {d}", start=split),
            "CuCr2O4.c": Law(f"{m} - {d}", start=split)}


#: Laws of the parametric refinement of the CuCr2O4 series, in the core's expression syntax:
#: a and the mean of b and c as cubic splines in T (knots at 50, 100, 125, 150 and 200 K),
#: and b - c as an order parameter ``2 sqrt(Tc - T) (d0 + d1 T/100)`` below ``Tc`` (zero
#: above, the tetragonal cell). Simple physical laws (a quadratic, an Einstein term plus
#: Landau coupling to the order parameter) miss the sequential values by 20 to 160 esd
#: around the transition; see the diffraction docs.
CUCR2O4_LAWS = _cucr2o4_laws()


# -- synthetic temperature series -----------------------------------------------------------------
#: Known laws of the synthetic series (rutile-type TiO2; Å, K): expression and coefficients.
SYNTHETIC_SERIES_LAWS = {
    "TiO2.a": ("a0 + a1*T + a2*T**2", {"a0": 4.5860, "a1": 1.5e-5, "a2": 2.0e-8}),
    "TiO2.c": ("c0 + c1*T + c2*T**2", {"c0": 2.9530, "c1": 8.0e-6, "c2": 1.2e-8}),
}


def make_synthetic_series(n_patterns: int = 200, *, seed: int = 0, temperatures=None,
                          counts_scale: float = 1.0, two_theta=(20.0, 100.0, 0.04)) -> xr.Dataset:
    """A temperature series from the synthetic X-ray generator, with known laws.

    Rutile-type TiO2 (:data:`SYNTHETIC_TRUTH` positions and Uiso) whose cell follows
    :data:`SYNTHETIC_SERIES_LAWS`; the X-ray instrument of :func:`make_synthetic` (Cu Kα1/Kα2,
    Bragg-Brentano, FCJ asymmetry). Every pattern has its own scale (±5 %), background and
    sample displacement (``shift``, σ = 20 µm), all random from ``seed``; Poisson counts.

    Parameters
    ----------
    n_patterns : int
    seed : int
        Seed of :func:`numpy.random.default_rng` (the whole series).
    temperatures : array_like, optional
        Default: evenly from 10 to 300 K.
    counts_scale : float
        Multiplies the expected counts.
    two_theta : (start, stop, step)
        The common 2θ grid (degrees).

    Returns
    -------
    xarray.Dataset
        The layout of :func:`load_cucr2o4_seq`, plus the per-pattern truth (``true_a``,
        ``true_c``, ``true_scale``, ``true_shift`` on ``pattern``) and the laws in ``attrs``.
    """
    from ..core import Expression

    if not (isinstance(n_patterns, (int, np.integer)) and n_patterns >= 1):
        raise ValidationError(f"n_patterns must be a positive int, got {n_patterns!r}")
    if not counts_scale > 0:
        raise ValidationError(f"counts_scale must be > 0, got {counts_scale}")
    T = (np.linspace(10.0, 300.0, n_patterns) if temperatures is None
         else np.asarray(temperatures, dtype=float))
    if T.shape != (n_patterns,) or not np.all(np.isfinite(T)):
        raise ValidationError(f"temperatures: expected {n_patterns} finite values")
    rng = np.random.default_rng(seed)
    inst = _SYN_INSTRUMENT["xray"]
    lo, hi, step = two_theta
    tth = np.round(np.arange(lo, hi + step / 2, step), 6)
    dummy = make_pattern(tth, np.ones_like(tth), np.ones_like(tth), name="series")
    laws = {k: (Expression(e), c) for k, (e, c) in SYNTHETIC_SERIES_LAWS.items()}

    def law(slot, t):
        expr, coefs = laws[slot]
        return expr.evaluate({**coefs, "T": t})

    phase = synthetic_phase()
    instrument = ConstantWavelength(**{k: inst[k] for k in _SYN_KEYS})
    pat = PowderPattern(dummy, phase, instrument, name="series", n_background=3)
    counts, truth = [], {"a": [], "c": [], "scale": [], "shift": []}
    for t in T:
        a, c = law("TiO2.a", t), law("TiO2.c", t)
        phase.group["a"].value = a
        phase.group["c"].value = c
        v = cell_volume(np.array([a, a, c, 90, 90, 90]))
        scale = inst["scale"] * counts_scale * v ** 2 * (1 + 0.05 * rng.uniform(-1, 1))
        shift = 20.0 * rng.normal()
        pat.group["scale"].value = scale
        pat.group["shift"].value = shift
        pat.group["bkg"].value = (np.array(inst["bkg"]) * counts_scale
                                  * (1 + 0.1 * rng.uniform(-1, 1, 3)))
        pat.reset_windows()                    # windows from this pattern's widths
        y, _ = pat.calc()
        counts.append(rng.poisson(np.maximum(y, 0)).astype(float))
        for k2, val in (("a", a), ("c", c), ("scale", scale), ("shift", shift)):
            truth[k2].append(val)
    counts = np.array(counts)
    attrs = {k: v for k, v in inst.items() if isinstance(v, (int, float, str))}
    attrs.update(instrument.to_attrs())
    attrs.update({"dataset": "diffraction-synthetic-series", "seed": int(seed),
                  "generator": "sciTie.diffraction.data.make_synthetic_series",
                  "laws": repr({k: e for k, (e, _) in SYNTHETIC_SERIES_LAWS.items()})})
    for slot, (expr, coefs) in SYNTHETIC_SERIES_LAWS.items():
        for name, value in coefs.items():
            attrs[f"true_{name}"] = float(value)
    attrs.update({f"true_{k}": float(v) for k, v in SYNTHETIC_TRUTH.items()
                  if k not in ("a", "c")})
    labels = [f"S{k:03d}" for k in range(n_patterns)]
    return xr.Dataset(
        {"intensity": (("pattern", "two_theta"), counts, {"units": "counts"})},
        coords={"pattern": labels,
                "two_theta": ("two_theta", tth, {"units": "degree", "long_name": "2θ"}),
                "variance": (("pattern", "two_theta"), np.maximum(counts, 1.0)),
                "temperature": ("pattern", T, {"units": "K", "long_name": "temperature"}),
                "file": ("pattern", [""] * n_patterns),
                **{f"true_{k}": ("pattern", np.array(v)) for k, v in truth.items()}},
        attrs=attrs)


def synthetic_series_recipe(data: xr.Dataset | None = None, *, start: dict | None = None):
    """The series recipe of :func:`make_synthetic_series`: scale, background and sample
    displacement per pattern; cell and O.x of the structure (started about 0.3 % off)."""
    from ._series import SeriesRecipe

    inst = _SYN_INSTRUMENT["xray"]
    s = {"a": 4.60, "c": 2.96, "O.x": 0.302}
    s.update(start or {})
    phase = synthetic_phase(s)
    opts = {"instrument": ConstantWavelength(**{k: inst[k] for k in _SYN_KEYS}),
            "n_background": 3, "refine_zero": False, "refine_displacement": True}
    stages = [("scale+background", (), ("scale", "bkg")),
              ("cell", ("cell",), ("scale", "bkg", "displacement")),
              ("structure", ("cell", "xyz"), ("scale", "bkg", "displacement"))]
    return SeriesRecipe(phases=[phase], pattern_options=opts, stages=stages,
                        continue_stages=1, constrain_fractions=False)


# -- Si on SEPD (time of flight) -----------------------------------------------------------------
from ._si_tof import (SI_TOF_EASYDIFFRACTION, SI_TOF_INSTRUMENT, SI_TOF_STAGES,  # noqa: E402
                      load_si_tof, si_phase, si_tof_refinement)

__all__ += ["load_si_tof", "si_phase", "si_tof_refinement", "SI_TOF_INSTRUMENT",
            "SI_TOF_STAGES", "SI_TOF_EASYDIFFRACTION"]
