"""Datasets of :mod:`sciTie.diffraction`: the PbSO4 round-robin data and a synthetic pair.

Both loaders return ``{"xray": Dataset, "neutron": Dataset}``; each Dataset has the variable
``intensity`` on dim ``two_theta`` with a ``variance`` coordinate, and the instrument
description (wavelengths, profile coefficients, geometry) in ``attrs``, so
:func:`pattern_from_dataset` can rebuild a :class:`PowderPattern`.
"""
from __future__ import annotations

import os

import numpy as np
import xarray as xr

from ..errors import ValidationError
from ._crystal import Atom, Phase, cell_volume
from ._io import make_pattern, read_gsas_prm, read_gsas_std
from ._pattern import PowderPattern
from ._refine import JointRefinement

__all__ = ["load_pbso4", "load_synthetic", "make_synthetic", "pattern_from_dataset",
           "pbso4_refinement", "synthetic_phase", "synthetic_refinement", "PBSO4_PUBLISHED",
           "SYNTHETIC_TRUTH"]

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

_INSTRUMENT_KEYS = ("radiation", "lam1", "lam2", "ratio", "polarization", "geometry", "radius")


def _dataset(pattern: xr.DataArray, attrs: dict) -> xr.Dataset:
    ds = xr.Dataset({"intensity": pattern.rename(None)})
    ds["two_theta"].attrs["units"] = "degree"
    ds.attrs.update({k: v for k, v in pattern.attrs.items() if isinstance(v, (str, int, float))})
    ds.attrs.update(attrs)
    return ds


def pattern_from_dataset(ds: xr.Dataset, phases, *, name: str, **kwargs) -> PowderPattern:
    """Build a :class:`PowderPattern` from a loader's Dataset (instrument from ``attrs``).

    ``phases`` is a :class:`Phase` or a list of them. Keyword arguments override the stored
    instrument values and are passed on (fit_range, exclude, n_background, cell_correction,
    refine_profile ...).
    """
    if "intensity" not in ds or "variance" not in ds.coords:
        raise ValidationError(f"ds: expected a Dataset with 'intensity' and a 'variance' "
                              f"coordinate, got variables {list(ds.data_vars)}")
    opts = {k: ds.attrs[k] for k in _INSTRUMENT_KEYS if k in ds.attrs}
    prof = {k: float(ds.attrs[k]) for k in ("U", "V", "W", "P", "X", "Y", "SL", "HL", "zero")
            if k in ds.attrs}
    prof.update(kwargs.pop("profile", {}) or {})
    opts.update(kwargs)
    opts["profile"] = prof
    return PowderPattern(ds["intensity"], phases, name=name, **opts)


# -- PbSO4 -----------------------------------------------------------------------------------------
def load_pbso4(path: str | os.PathLike | None = None) -> dict:
    """The PbSO4 X-ray (Cu Kα) and D1A neutron patterns of the IUCr round robin.

    Parameters
    ----------
    path : path-like, optional
        Folder with ``PBSO4.XRA``, ``PBSO4.CWN``, ``INST_XRY.PRM``, ``inst_d1a.prm`` and
        ``PbSO4-Wyckoff.cif``; default ``$SCITIE_DATA_DIR/pbso4``.

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
        inst = read_gsas_prm(folder / prm)
        attrs = {k: v for k, v in inst.items() if isinstance(v, (int, float, str))}
        attrs["geometry"] = "bragg-brentano" if inst["radiation"] == "xray" else "debye-scherrer"
        if inst["radiation"] == "neutron":
            attrs["polarization"] = 0.5
        attrs.update({"dataset": "pbso4", "cif": str(folder / "PbSO4-Wyckoff.cif"),
                      "instrument_file": str(folder / prm),
                      "reference": "R. J. Hill, J. Appl. Cryst. 25 (1992) 589-610; GSAS-II "
                                   "combined-refinement tutorial"})
        out[key] = _dataset(pat, attrs)
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
                                         profile=asym, refine_zero=False,
                                         refine_displacement=True))
    if "neutron" in patterns:
        pats.append(pattern_from_dataset(
            data["neutron"], phase, name="neutron", fit_range=neutron_range,
            cell_correction="xray" in patterns, n_background=n_background, profile=asym,
            refine_profile=("U", "V", "W", "X"), refine_zero=False, refine_displacement=True))
    if not pats:
        raise ValidationError(f"patterns must name 'xray' and/or 'neutron', got {patterns!r}")
    return JointRefinement(phase, pats)


# -- synthetic ------------------------------------------------------------------------------------
#: Truth of the synthetic set: rutile-type TiO2 (P4_2/mnm), O on (x, x, 0).
SYNTHETIC_TRUTH = {"a": 4.5937, "c": 2.9587, "O.x": 0.30478, "Ti.uiso": 0.0060,
                   "O.uiso": 0.0080}
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
        prof = {k: inst[k] for k in ("U", "V", "W", "P", "X", "Y", "SL", "HL", "zero")}
        pat = PowderPattern(dummy, phase, name=key, radiation=inst["radiation"],
                            lam1=inst["lam1"], lam2=inst["lam2"], ratio=inst["ratio"],
                            polarization=inst["polarization"], geometry=inst["geometry"],
                            radius=inst["radius"], profile=prof, n_background=3)
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
        attrs.update({f"true_{k}": float(v) for k, v in SYNTHETIC_TRUTH.items()})
        gv = g.values()
        attrs.update({"true_scale": float(gv["scale"]), "true_zero": float(gv["zero"])})
        attrs.update({f"true_{d}": float(gv[f"{phase.name}.{d}"]) for d in ("D11", "D33")})
        attrs.update({"dataset": "diffraction-synthetic", "seed": int(seed),
                      "structure": "rutile-type TiO2, P4_2/mnm, Ti 2a (0,0,0), O 4f (x,x,0)",
                      "generator": "sciTie.diffraction.data.make_synthetic"})
        out[key] = _dataset(make_pattern(tth, counts, np.maximum(counts, 1.0), name=key), attrs)
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
