"""Construction of a powder pattern: the checks of its arguments and its parameter group."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .._validation import check_float, check_mapping
from ..core import ParameterGroup
from ..errors import ArgumentTypeError, ValidationError
from ._background import BACKGROUND_PEAK_PARAMS
from ._crystal import Phase
from ._io import make_pattern
from ._pattern_layout import PHASE_PARAMS
from .profiles import PeakProfile

__all__ = ["check_data", "check_phases", "fit_points", "check_phase_values",
           "check_strain_axis", "check_refine", "make_group"]

_HAP_UNITS = {"fraction": "", "size": "µm", "mustrain": "1e-6", "mustrain_axial": "1e-6"}
#: Allowed (and independent) cell-correction terms of each crystal system.
_ALLOWED_D = {"cubic": ["D11"], "tetragonal": ["D11", "D33"],
              "orthorhombic": ["D11", "D22", "D33"], "hexagonal": ["D11", "D33"],
              "trigonal": ["D11", "D33"], "monoclinic": ["D11", "D22", "D33", "D13"]}


def check_data(data, instrument: PeakProfile) -> np.ndarray:
    """The axis values of ``data``, a 1-D DataArray on the instrument's axis with variances."""
    axis = instrument.axis
    if not isinstance(data, xr.DataArray) or axis not in data.coords \
            or "variance" not in data.coords:
        raise ValidationError(f"data must be an xarray.DataArray with {axis!r} and 'variance' "
                              f"coordinates for a {type(instrument).__name__} instrument (see "
                              "read_xye / read_gsas_std / make_pattern)")
    x = data[axis].values
    if data.ndim != 1 or x.size < 2:
        raise ValidationError(f"data must be a 1-D pattern of at least 2 points, got shape "
                              f"{data.shape}")
    try:  # a DataArray built by hand gets the checks make_pattern makes
        make_pattern(x, data.values, data["variance"].values, axis=axis)
    except (ValidationError, TypeError, ValueError) as exc:
        raise ValidationError(f"data: {exc}") from None
    return x


def check_phases(phases, reserved) -> list:
    """``phases`` as a non-empty list of Phase with unique names not in ``reserved``."""
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
    clash = [n for n in pnames if n in reserved]
    if clash:
        raise ValidationError(f"phases: names {clash} clash with pattern parameters; give "
                              "the phases other names (Phase(name=...) or "
                              "Phase.from_cif(..., name=...))")
    return phases


def _pair(value, name: str, axis: str) -> tuple[float, float]:
    """``value`` as two numbers ``(lo, hi)``."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
        raise ValidationError(f"{name} must be two numbers (lo, hi) on the {axis} axis, got "
                              f"{value!r}")
    lo, hi = (check_float(v, f"{name}[{i}]", finite=False) for i, v in enumerate(value))
    return lo, hi


def fit_points(x: np.ndarray, fit_range, exclude, instrument: PeakProfile):
    """The fit range, the excluded regions and the mask of the points that are fitted."""
    axis = instrument.axis
    if fit_range is None:
        fit_range = (float(x[0]), float(x[-1]))
        if fit_range[0] <= 0:
            raise ValidationError(f"fit_range: the data start at {axis} = {x[0]:g}; give "
                                  f"fit_range=(lo, hi) with 0 < lo")
    lo, hi = _pair(fit_range, "fit_range", axis)
    instrument.check_range(lo, hi, "fit_range")
    mask = (x >= lo) & (x <= hi)
    if isinstance(exclude, (str, bytes)) or not isinstance(exclude, (list, tuple)):
        raise ArgumentTypeError(f"exclude must be a list of (lo, hi) {axis} regions, got "
                                f"{exclude!r}")
    exclude = [_pair(reg, f"exclude[{i}]", axis) for i, reg in enumerate(exclude)]
    for i, (a, b) in enumerate(exclude):
        if not a < b:
            raise ValidationError(f"exclude[{i}] must be (lo, hi) with lo < hi, got "
                                  f"({a:g}, {b:g})")
        mask &= ~((x >= a) & (x <= b))
    if mask.sum() < 10:
        raise ValidationError(f"fit_range/exclude leave {int(mask.sum())} points; need at "
                              "least 10")
    return (lo, hi), [tuple(r) for r in exclude], mask


def check_phase_values(phase_values, pnames) -> dict:
    """Starting per-phase terms ``{phase: {fraction, size, mustrain, mustrain_axial}}``."""
    phase_values = check_mapping(phase_values, "phase_values", pnames, what="phases",
                                 example="{phase name: {'fraction': ...}}")
    for ph_name, terms in phase_values.items():
        if not isinstance(terms, dict):
            raise ArgumentTypeError(f"phase_values[{ph_name!r}] must be a dict such as "
                                    f"{{'fraction': 0.5, 'size': 2.0}}, got {terms!r}")
        for k, v in terms.items():
            check_float(v, f"phase_values[{ph_name!r}][{k!r}]")
    return phase_values


def check_strain_axis(strain_axis, pnames) -> dict:
    """Uniaxial microstrain axes ``{phase: (h, k, l)}`` as tuples of floats."""
    strain_axis = {} if strain_axis is None else strain_axis
    if not isinstance(strain_axis, dict):
        raise ArgumentTypeError(f"strain_axis must be a dict {{phase name: (h, k, l)}}, got "
                                f"{type(strain_axis).__name__}")
    out = {}
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
        out[ph_name] = tuple(float(a) for a in ax)
    return out


def check_refine(names, arg: str, allowed) -> tuple:
    """A list of parameter names freed by a stage keyword."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ArgumentTypeError(f"{arg} must be a list or tuple of parameter names, "
                                f"got {names!r}")
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValidationError(f"{arg}: unknown parameters {bad}; expected names from "
                              f"{', '.join(allowed)}")
    return tuple(names)


def make_group(pattern, phase_values: dict) -> tuple[ParameterGroup, dict]:
    """The pattern's group (its parameters, ``bkg``, background peaks, one child per phase)
    and the cell-correction terms each phase's crystal system allows."""
    inst = pattern.instrument
    start = {"scale": 1.0, **inst.start_values()}
    units = dict(inst.units)
    if pattern.absorption is not None:
        start.update(pattern.absorption.start)
        units.update(pattern.absorption.units)
    g = ParameterGroup(pattern.name, description=f"{inst.radiation} {inst.kind} pattern")
    for n in pattern.layout.names:
        g.add(n, start[n], vary=(n == "scale"), unit=units.get(n, ""))
    g.add("bkg", np.zeros(pattern.n_background), unit="counts",
          description="background coefficients")
    if len(pattern.background_peaks):
        bp = ParameterGroup("bkpk", description="background peaks (pseudo-Voigt)")
        for j, (n, u) in enumerate(zip(BACKGROUND_PEAK_PARAMS, inst.background_peak_units)):
            kw = {"min": 0.0} if n in ("sigma2", "gamma") else {}
            bp.add(n, pattern.background_peaks[:, j].copy(), vary=False, unit=u, **kw)
        g.add_group(bp)
    allowed = {}
    for ph in pattern.phases:
        vals = {"fraction": 1.0, "size": 1.0e3, "mustrain": 0.0}
        vals.update(phase_values.get(ph.name, {}))
        vals.setdefault("mustrain_axial", vals["mustrain"])
        bad = [k for k in vals if k not in ("fraction", "size", "mustrain", "mustrain_axial")]
        if bad:
            raise ValidationError(f"phase_values[{ph.name!r}]: unknown keys {bad}; expected "
                                  "fraction, size, mustrain, mustrain_axial")
        hg = ParameterGroup(ph.name, description=f"phase {ph.name} in pattern {pattern.name}")
        for n in PHASE_PARAMS:
            kw = ({"min": 0.0} if n == "fraction" else {"min": 1e-3} if n == "size" else {})
            hg.add(n, float(vals.get(n, 0.0)), vary=False, unit=_HAP_UNITS.get(n, "Å⁻²"), **kw)
        system = ph.crystal_system
        if system in ("cubic", "tetragonal", "hexagonal", "trigonal"):
            hg.tie("D22", to="D11")
        if system == "cubic":
            hg.tie("D33", to="D11")
        if system in ("hexagonal", "trigonal"):
            hg.tie("D12", to="D11")
        allowed[ph.name] = _ALLOWED_D.get(system, ["D11", "D22", "D33", "D12", "D13", "D23"])
        texture = pattern.texture[pattern.phases.index(ph)]
        if texture is not None:
            for n, v in texture.start().items():
                hg.add(n, v, vary=False, **({"min": 1e-3} if n == "po_ratio" else {}),
                       description="preferred orientation")
        g.add_group(hg)
    return g, allowed
