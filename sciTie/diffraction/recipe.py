"""The ``rietveld`` recipe kind: a Rietveld refinement (joint or a series) from one TOML file.

.. code-block:: toml

    kind = "rietveld"
    name = "mixture"

    [[phases]]
    cif = "CuCr2O4.cif"            # space group, cell, atoms; named after _pd_phase_name
    [[phases]]
    cif = "CuO.cif"

    [[patterns]]
    name = "xray"
    file = "OH_00.fxye"            # GSAS STD/ESD/FXYE or xy(e)
    instrument = "OH_00.prm"       # GSAS .prm (wavelengths, polarisation, profile)
    geometry = "debye-scherrer"
    radius = 1000.0
    fit_range = [4.5, 26.1]
    n_background = 6
    background_peaks = [[5.25, 5.0, 2000.0, 0.0]]   # pos, area, sigma2, gamma
    strain_axis = {CuCr2O4 = [0, 1, 0]}
    preferred_orientation = {CuO = {model = "march-dollase", axis = [0, 0, 1]}}
    absorption = {model = "cylinder", muR = 0.3}

    [model]
    constrain_fractions = true
    ties = ["CuCr2O4.O.uiso = CuCr2O4.Cu.uiso"]     # the core's tie statements

    [[stages]]                     # each stage lists everything it refines
    structure = ["cell"]
    pattern = ["scale", "bkg", "fraction"]
    [[stages]]
    structure = ["cell", "uiso"]
    pattern = ["scale", "bkg", "fraction", "preferred_orientation", "absorption"]

A ``[series]`` table turns the same description into a sequential or parametric refinement
of many files (``files`` or a glob; temperatures from the files' headers or ``temperatures``),
with ``laws`` and ``[[series.ties]]`` over part of the series. ``[data] dataset`` names a
dataset sciTie knows (``pbso4``, ``diffraction-synthetic``, ``cucr2o4-seq``, ``si-tof``) and
sets all of that up as the published protocols do.
"""
from __future__ import annotations

import glob as _glob
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.summary import RunSummary
from ..errors import FitWarning, SciTieError
from ..recipes import ArrayOfTables, Field, Option, Recipe, RecipeKind, Table
from ._refine import STAGES, JointRefinement

__all__ = ["KIND", "SCHEMA", "summarize_joint", "run_series"]

DATASETS = ("pbso4", "diffraction-synthetic", "cucr2o4-seq", "si-tof")

def _values_are(table: dict, kind, expected: str) -> str | None:
    """A schema check: every value of a table is of ``kind`` (never a bool for numbers)."""
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"{key} must be {expected}, got {value!r} ({type(value).__name__})"
    return None


_PATTERN = Table({
    "name": Field("str", "name of the pattern's group (xray, neutron, pattern ...)",
                  required=True),
    "file": Field("path", "data file: GSAS STD/ESD/FXYE, or 2-3 columns (x, I[, esd])"),
    "instrument": Field("path", "instrument parameter file: GSAS .prm, GSAS-II .instprm, or "
                                "an EasyDiffraction experiment CIF (constant wavelength)"),
    "instrument_type": Field("str", "peak profile without an instrument file: 'cw' (constant "
                                    "wavelength, default) or 'tof' (time of flight)",
                             choices=("cw", "tof")),
    "phases": Field("list[str]", "phases in this pattern (default: all)"),
    "radiation": Field("str", "radiation (default: from the .prm; without an instrument "
                              "file it must be given, with lam1)", choices=("xray", "neutron")),
    "geometry": Field("str", "sample-displacement geometry",
                      choices=("bragg-brentano", "debye-scherrer")),
    "radius": Field("float", "goniometer radius (mm)", minimum=0.0),
    "lam1": Field("float", "wavelength (Å), overrides the .prm", minimum=0.0),
    "lam2": Field("float", "second wavelength (Å; 0: one wavelength)", minimum=0.0),
    "ratio": Field("float", "intensity ratio λ2/λ1", minimum=0.0),
    "polarization": Field("float", "X-ray polarisation term", minimum=0.0, maximum=1.0),
    "fit_range": Field("list[float]", "limits [lo, hi] on the pattern's axis (2θ degrees, "
                                      "TOF µs)"),
    "exclude": Field("list[list[float]]", "excluded regions [[lo, hi], ...]"),
    "n_background": Field("int", "Chebyshev background terms (default 6)", minimum=0),
    "background_points": Field("list[float]", "positions of a background of straight lines "
                                              "between points (instead of Chebyshev terms)"),
    "background_peaks": Field("list[list[float]]",
                              "pseudo-Voigt background peaks [[pos, area, sigma2, gamma], ...]",
                              default=[]),
    "profile": Field("table", "instrument values overriding the file's (U, V, W, X, Y, SL, "
                              "HL, zero ...; TOF: difc, alpha, beta0, sig1 ...); constant "
                              "wavelength without an instrument file and without U, V, W: "
                              "the Gaussian widths are measured on the data", default={}),
    "phase_values": Field("table", "starting per-phase terms {phase = {fraction, size, "
                                   "mustrain, mustrain_axial}}", default={}),
    "strain_axis": Field("table", "uniaxial microstrain axis per phase {phase = [h, k, l]}",
                         default={}),
    "scattering": Field("table", "scattering values per element {Cu = {fp, fpp}} or "
                                 "{O = {b}}", default={}),
    "tail_tolerance": Field("float", "largest lost fraction of a peak's intensity",
                            default=1e-3, minimum=0.0, maximum=0.5),
    "cell_correction": Field("bool", "refine D terms with 'cell_correction'", default=False),
    "refine_zero": Field("bool", "'zero' frees the zero shift", default=True),
    "refine_displacement": Field("bool", "'zero' also frees the sample displacement",
                                 default=False),
    "refine_profile": Field("list[str]", "what 'profile' frees (default: the profile's, "
                                         "U, V, W for constant wavelength)"),
    "refine_profile_late": Field("list[str]", "what 'late_profile' frees", default=[]),
    "preferred_orientation": Field(
        "table", "preferred orientation per phase: {phase = {model = 'march-dollase', axis = "
                 "[h, k, l], ratio = 1.0}} or {phase = {model = 'spherical-harmonics', order = "
                 "4, psi = 0.0, coefficients = {sh4_1 = 0.0}}} (psi: angle of the sample axis "
                 "to the scattering vector, default 0 Bragg-Brentano, 90 otherwise); stage "
                 "item 'preferred_orientation' refines po_ratio or the sh coefficients",
        default={}),
    "absorption": Field(
        "table", "sample absorption: {model = 'cylinder', muR = 0.5} (Debye-Scherrer "
                 "capillary or time of flight, Lobanov & Alte da Veiga as GSAS-II) or {model "
                 "= 'suortti', rough_p = 1.0, rough_q = 0.0} (Bragg-Brentano surface "
                 "roughness); stage item 'absorption' refines them", default={}),
}, doc="one powder pattern")

SCHEMA = Table({
    "data": Table({
        "dataset": Field("str", "a dataset sciTie knows (its published set-up)",
                         choices=DATASETS, role="dataset"),
        "path": Field("path", "folder of an external dataset (default: the data_dir setting)"),
        "seed": Field("int", "noise seed of the synthetic patterns", default=0, minimum=0),
        "cif": Field("list[path]", "quick form: phase CIF files ([[phases]] with defaults)",
                     default=[]),
        "pattern": Field("list[path]", "quick form: data files ([[patterns]] with defaults)",
                         default=[]),
        "instrument": Field("list[path]", "quick form: .prm (or EasyDiffraction experiment "
                                          ".cif) files, one per pattern", default=[]),
        "radiation": Field("list[str]", "quick form without .prm files: xray or neutron (one "
                                        "for all patterns, or one per pattern)", default=[],
                           check=lambda v: None if set(v) <= {"xray", "neutron"}
                           else "each must be 'xray' or 'neutron'"),
        "wavelength": Field("list[float]", "quick form without .prm files: wavelength (Å), one "
                                           "for all patterns or one per pattern", default=[],
                            minimum=0.01),
    }, doc="a known dataset, or the quick form of phases and patterns"),
    "phases": ArrayOfTables(Table({
        "cif": Field("path", "the phase's CIF", required=True),
        "name": Field("str", "phase name (default: _pd_phase_name, else the data block)"),
        "block": Field("str", "CIF data block (default: the first)"),
        "uiso": Field("table", "starting Uiso (Å²) by atom label, '*' for every atom: "
                               "{O1 = 0.012}", default={}),
        "biso": Field("table", "starting Biso = 8π²Uiso (Å²) by atom label, '*' for every "
                               "atom: {O1 = 0.95}", default={}),
        "adp": Field("str", "displacements in the output CIF: U_iso or B_iso (default: as the "
                            "phase's CIF gives them)", choices=("U", "B")),
        "anisotropic": Field("list[str]", "atom labels refined with anisotropic U^ij (['*']: "
                                          "all), starting from their Uiso; the site symmetry "
                                          "ties them; atoms with U^ij in the CIF are "
                                          "anisotropic anyway", default=[]),
    }), doc="crystal phases"),
    "patterns": ArrayOfTables(_PATTERN, doc="powder patterns (one template for a series)"),
    "model": Table({
        "constrain_fractions": Field("bool", "phase fractions of each pattern sum to 1",
                                     default=True),
        "ties": Field("list[str]", "tie statements on the joint group, e.g. "
                                   "'xray.PbSO4.size = neutron.PbSO4.size' (a slot "
                                   "'<phase>.<atom>.biso' stands for 8π² times its uiso)",
                      default=[]),
    }),
    "stages": ArrayOfTables(Table({
        "label": Field("str", "name shown in reports", default=""),
        "structure": Field("list[str]", "structure items (cell, xyz, uiso or biso (with the "
                                        "U^ij of anisotropic atoms), uij, occ, or slot names "
                                        "like 'CuCr2O4.O.x')", default=[]),
        "pattern": Field("list[str]", "pattern items (scale, bkg, zero, profile, fraction, "
                                      "mustrain, preferred_orientation, absorption ... or "
                                      "names like 'xray.X')", default=[]),
    }), doc="the staged refinement; each stage lists everything it refines"),
    "series": Table({
        "mode": Field("str", "pattern by pattern, or one fit with laws in temperature",
                      default="sequential", choices=("sequential", "parametric")),
        "files": Field("list[str]", "data files or glob patterns, in refinement order",
                       default=[], role="input"),
        "temperatures": Field("list[float]", "temperature of each file (default: the "
                                             "'# Temp (K) =' header line)", default=[]),
        "patterns": Field("int", "use only the first N patterns", minimum=1),
        "fit_range": Field("list[float]", "2θ limits for every pattern (cucr2o4-seq)"),
        "tie_above": Field("float", "cucr2o4-seq: tie CuCr2O4 c = b above this temperature",
                           default=135.0),
        "no_tie": Field("bool", "cucr2o4-seq: no b = c tie", default=False),
        "tie_test": Field("bool", "F-test every series tie on every pattern", default=True),
        "uiso": Field("bool", "cucr2o4-seq: refine the CuCr2O4 Uiso", default=True),
        "n_jobs": Field("int", "processes for independent fits", default=1, minimum=1),
        "laws": Field("table", "parametric laws {slot = expression in T}", default={},
                      check=lambda v: _values_are(v, str, "an expression in T (a string)")),
        "law_start": Field("table", "starting values of law coefficients", default={},
                           check=lambda v: _values_are(v, (int, float), "a number")),
        "ties": ArrayOfTables(Table({
            "slot": Field("str", "the tied slot", required=True),
            "to": Field("str", "the slot it follows", required=True),
            "scale": Field("float", "slot = scale * to + offset", default=1.0),
            "offset": Field("float", "", default=0.0),
            "above": Field("float", "holds above this temperature"),
            "below": Field("float", "holds below this temperature"),
        }), doc="ties that hold over part of the series"),
        "continue_stages": Field("int", "stages run by a pattern started from the previous",
                                 default=1, minimum=1),
    }, doc="a series of patterns (sequential or parametric refinement)"),
    "fit": Table({
        "quick": Field("bool", "small evaluation budget", default=False),
        "max_nfev": Field("int", "evaluation budget of each stage", minimum=1),
    }),
})


# -- what a recipe describes ---------------------------------------------------------------------
def _is_series(recipe: Recipe) -> bool:
    s = recipe.settings
    return s["data"]["dataset"] == "cucr2o4-seq" or bool(s["series"]["files"])


def _phase_key(recipe: Recipe, k: int) -> str:
    """Recipe key of the k-th phase (quick-form phases come after the [[phases]] tables)."""
    n = len(recipe.settings["phases"])
    return f"phases[{k}].cif" if k < n else "data.cif"


def _pattern_key(recipe: Recipe, k: int, field: str = "") -> str:
    """Recipe key of the k-th pattern (quick-form patterns come after [[patterns]])."""
    n = len(recipe.settings["patterns"])
    if k >= n:
        return {"file": "data.pattern", "instrument": "data.instrument"}.get(field,
                                                                             "data.pattern")
    return f"patterns[{k}]" + (f".{field}" if field else "")


def _build_phases(recipe: Recipe) -> list:
    """The recipe's phases read from their CIFs; an unreadable CIF or a duplicate phase name
    is a RecipeError naming the recipe key (and, in the message, the CIF file and line)."""
    from ._crystal import Phase

    phases = []
    for k, p in enumerate(_phases_and_patterns(recipe)[0]):
        key = _phase_key(recipe, k)
        path = recipe.resolve(p["cif"], key)
        try:
            phase = Phase.from_cif(path, block=p["block"] or 0, name=p["name"])
        except (SciTieError, OSError) as exc:
            raise recipe.error(f"{key}: {exc}", key) from None
        _displacements(recipe, k, p, phase)
        aniso = p.get("anisotropic") or []
        if aniso:
            try:
                phase = phase.with_anisotropic(None if "*" in aniso else list(aniso))
            except SciTieError as exc:
                key = f"phases[{k}].anisotropic"
                raise recipe.error(f"{key}: {exc}", key) from None
        phases.append(phase)
    names = [ph.name for ph in phases]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise recipe.error(f"phases: two phases are named {dup}; give each a distinct 'name'",
                           "phases")
    return phases


def _displacements(recipe: Recipe, k: int, p: dict, phase) -> None:
    """Starting Uiso or Biso from the recipe (by atom label, '*' for all), and the output
    form of the displacements."""
    from ._crystal import B_PER_U

    labels = {a.label: a.name for a in phase.atoms if a.uij is None}
    aniso = [a.label for a in phase.atoms if a.uij is not None]
    tables = {form: dict(p.get(form) or {}) for form in ("uiso", "biso")}
    both = sorted(set(tables["uiso"]) & set(tables["biso"]))
    if both:
        raise recipe.error(f"phases[{k}]: {both} are in both uiso and biso; give each atom one "
                           "(B = 8π²U)", f"phases[{k}].biso")
    start: dict[str, float] = {}
    for form, table in tables.items():
        key = f"phases[{k}].{form}"
        for label, value in table.items():
            if label in aniso:
                raise recipe.error(f"{key}: atom {label!r} of phase {phase.name!r} is "
                                   "anisotropic (U^ij in its CIF): its Uiso is their Ueq, not "
                                   "a starting value", key)
            if label != "*" and label not in labels:
                raise recipe.error(f"{key}: {label!r} is not an atom of phase {phase.name!r}; "
                                   f"atoms: {', '.join(labels)} (or '*' for all)", key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise recipe.error(f"{key}.{label} must be a number >= 0 (Å²), got {value!r}",
                                   key)
            u = float(value) / (B_PER_U if form == "biso" else 1.0)
            if label == "*":
                start = {lab: u for lab in labels} | start   # named atoms keep their value
            else:
                start[label] = u
    for label, u in start.items():
        phase.group[f"{labels[label]}.uiso"].value = u
    if p.get("adp"):
        phase.adp = p["adp"]


def _biso_statement(statement: str) -> str:
    """A tie statement with ``<slot>.biso`` written through ``uiso`` (B = 8π²U), so that
    ties between B values mean what they say."""
    from ..core.statements import parse_statement
    from ._crystal import B_PER_U

    if not isinstance(statement, str) or ".biso" not in statement:
        return statement
    lhs, rhs = parse_statement(statement)
    k = repr(B_PER_U)
    rhs = re.sub(r"\b([A-Za-z_][\w.]*)\.biso\b", lambda m: f"({k}*{m.group(1)}.uiso)", rhs)
    if lhs.endswith(".biso"):
        return f"{lhs[:-5]}.uiso = ({rhs})/{k}"
    return f"{lhs} = {rhs}"


def _biso_items(items) -> tuple:
    """Stage items with ``biso`` read as ``uiso`` (one displacement, two units)."""
    return tuple("uiso" if i == "biso" else (i[:-5] + ".uiso" if i.endswith(".biso") else i)
                 for i in items)


def _read_data(recipe: Recipe, path: Path, key: str, axis: str = "two_theta"):
    """A data file (GSAS STD/ESD/FXYE or xy(e)) on ``axis``; reader errors name the recipe
    key too."""
    from ._io import read_data

    try:
        return read_data(path, axis=axis)
    except (SciTieError, OSError) as exc:
        raise recipe.error(f"{key}: {exc}", key) from None


def _phases_and_patterns(recipe: Recipe) -> tuple[list[dict], list[dict]]:
    """Phase and pattern tables, the quick form (data.cif / data.pattern) expanded."""
    s = recipe.settings
    phases = list(s["phases"]) + [{"cif": c, "name": None, "block": None}
                                  for c in s["data"]["cif"]]
    patterns = list(s["patterns"])
    inst = s["data"]["instrument"]
    if inst and len(inst) != len(s["data"]["pattern"]):
        raise recipe.error(f"data.instrument has {len(inst)} files for "
                           f"{len(s['data']['pattern'])} data.pattern files; give one per "
                           "pattern (or none)", "data.instrument")
    files = s["data"]["pattern"]
    per_pattern = {}
    for key, field in (("radiation", "radiation"), ("wavelength", "lam1")):
        values = s["data"][key]
        if len(values) not in (0, 1, len(files)) or (values and not files):
            raise recipe.error(f"data.{key} has {len(values)} values for {len(files)} "
                               f"data.pattern files; give one for all, or one per pattern",
                               f"data.{key}")
        per_pattern[field] = values * len(files) if len(values) == 1 else values
    defaults = {k: v.default for k, v in _PATTERN.fields.items()}
    for k, f in enumerate(files):
        patterns.append({**defaults, "name": f"pattern{k}" if len(files) > 1 else "pattern",
                         "file": f, "instrument": inst[k] if inst else None,
                         **{field: v[k] for field, v in per_pattern.items() if v}})
    return phases, patterns


def _pattern_names(recipe: Recipe) -> list[str]:
    d = recipe.settings["data"]["dataset"]
    if d in ("pbso4", "diffraction-synthetic"):
        return ["xray", "neutron"]
    if d == "si-tof":
        return ["sepd"]
    return [p["name"] for p in _phases_and_patterns(recipe)[1]]


def _phase_names(recipe: Recipe) -> list[str]:
    d = recipe.settings["data"]["dataset"]
    if d == "pbso4":
        return ["PbSO4"]
    if d == "diffraction-synthetic":
        return ["TiO2"]
    if d == "si-tof":
        return ["Si"]
    return [ph.name for ph in _build_phases(recipe)]


def _series_has_tie(recipe: Recipe) -> bool:
    s = recipe.settings["series"]
    if recipe.settings["data"]["dataset"] == "cucr2o4-seq":
        return not s["no_tie"] and s["tie_test"]
    return bool(s["ties"]) and s["tie_test"]


def outputs(recipe: Recipe) -> list[str]:
    """Files ``--out`` writes, known before the fit."""
    n = recipe.name
    if _is_series(recipe):
        out = [f"{n}.nc", f"{n}_parameters.png", f"{n}_image.png", f"{n}_difference.png"]
        if recipe.settings["series"]["mode"] == "parametric":
            out.append(f"{n}_sequential.nc")
        if _series_has_tie(recipe):
            out.append(f"{n}_tie.png")
        return out
    return ([f"{n}.nc"] + [f"{n}_{p}.png" for p in _pattern_names(recipe)]
            + [f"{n}_{ph}.cif" for ph in _phase_names(recipe)])


def check(recipe: Recipe) -> None:
    """What the schema cannot check: one of dataset / phases+patterns / series, files exist."""
    s = recipe.settings
    phases, patterns = _phases_and_patterns(recipe)
    if s["data"]["dataset"]:
        if phases or patterns or s["series"]["files"]:
            raise recipe.error("give either data.dataset or your own phases and patterns, not "
                               "both", "data.dataset")
        if s["data"]["path"]:
            recipe.resolve(s["data"]["path"], "data.path")
        # a known dataset runs its published protocol: settings it would not use are refused
        # rather than silently ignored
        unused = [k for k, v in (("stages", s["stages"]), ("model.ties", s["model"]["ties"]),
                                 ("series.ties", s["series"]["ties"])) if v]
        if unused:
            raise recipe.error(f"data.dataset = {s['data']['dataset']!r} runs its published "
                               f"protocol, which does not use {', '.join(unused)}; remove "
                               f"{'them' if len(unused) > 1 else 'it'}, or describe the phases "
                               "and patterns yourself", unused[0])
        rng = s["series"]["fit_range"]
        if rng is not None and (len(rng) != 2 or not 0 < rng[0] < rng[1] < 180):
            raise recipe.error(f"series.fit_range must be [lo, hi] with 0 < lo < hi < 180, got "
                               f"{rng}", "series.fit_range")
        return
    if not phases:
        raise recipe.error("no phases: add [[phases]] with a cif (or data.cif), or name a "
                           "data.dataset", "phases")
    if not patterns:
        raise recipe.error("no patterns: add [[patterns]] (or data.pattern)", "patterns")
    for k, ph in enumerate(phases):
        recipe.resolve(ph["cif"], _phase_key(recipe, k))
    series = bool(s["series"]["files"])
    if series and len(patterns) != 1:
        raise recipe.error("a series takes one [[patterns]] entry: the template every file "
                           "of series.files uses", "patterns")
    for k, p in enumerate(patterns):
        if not series and not p["file"]:
            raise recipe.error(f"patterns[{k}] has no file", "patterns")
        if p["file"] and not series:
            recipe.resolve(p["file"], _pattern_key(recipe, k, "file"))
        if p["instrument"]:
            recipe.resolve(p["instrument"], _pattern_key(recipe, k, "instrument"))
    if series:
        files = _series_files(recipe)
        T = s["series"]["temperatures"]
        if T and len(T) != len(files):
            raise recipe.error(f"series.temperatures has {len(T)} values for {len(files)} "
                               "files", "series.temperatures")
    if s["series"]["mode"] == "parametric" and not series and s["data"]["dataset"] != \
            "cucr2o4-seq":
        raise recipe.error("series.mode = 'parametric' needs series.files", "series.mode")
    if s["series"]["mode"] == "parametric" and series and not s["series"]["laws"]:
        raise recipe.error("series.mode = 'parametric' needs series.laws {slot = expression "
                           "in T}", "series.laws")
    # everything the fit will use is built now (cheap next to the fit): a bad file, option,
    # tie or stage item is reported with its recipe key before any work starts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        if series:
            _check_series(recipe)
        else:
            ref = _joint(recipe)
            _check_stages(recipe, ref, _stages(recipe), cumulative=True)


def _check_stages(recipe: Recipe, ref: JointRefinement, stages, *, cumulative: bool) -> None:
    """Every stage names items the refinement has, and frees at least one parameter."""
    st: list[str] = []
    pt: list[str] = []
    key = "stages" if recipe.settings["stages"] else None
    for k, (label, spec) in enumerate(stages):
        if cumulative:
            st, pt = st + list(spec.get("structure", ())), pt + list(spec.get("pattern", ()))
        else:
            st, pt = list(spec.get("structure", ())), list(spec.get("pattern", ()))
        try:
            ref.set_refined(structure=st, patterns={"*": pt})
        except SciTieError as exc:
            raise recipe.error(f"stages[{k}] ({label}): {exc}", key and f"stages[{k}]") from None
        if ref.group.n_free == 0:
            raise recipe.error(f"stages[{k}] ({label}) refines nothing: list structure and/or "
                               "pattern items", key and f"stages[{k}]")


def _check_series(recipe: Recipe) -> None:
    """The series template on its first file: stages, ties and laws name real slots."""
    from ._parametric import _law_parts
    from ._series import build_refinement

    specs, rec, laws = _series_setup(recipe)
    labels = [sp.label for sp in specs]
    dup = sorted({n for n in labels if labels.count(n) > 1})
    if dup:
        raise recipe.error(f"series.files: patterns {dup} appear more than once", "series.files")
    try:
        ref = build_refinement(specs[0], rec, ties=[])
    except SciTieError as exc:
        raise recipe.error(f"patterns[0]: {exc}", "patterns") from None
    stages = [(lab, {"structure": st, "pattern": pt}) for lab, st, pt in rec.stages]
    _check_stages(recipe, ref, stages, cumulative=False)
    slots = set(ref.group.slot_names)
    for k, t in enumerate(rec.ties):
        bad = [n for n in (t.slot, t.to) if n not in slots]
        if bad:
            raise recipe.error(f"series.ties[{k}]: {bad} are not slots of a pattern's "
                               f"refinement; slots: {', '.join(ref.group.slot_names)}",
                               "series.ties")
    try:  # a tie onto a slot the symmetry already ties, or a cycle, fails only when applied
        build_refinement(specs[0], rec, ties=list(rec.ties))
    except SciTieError as exc:
        raise recipe.error(f"series.ties: {exc}", "series.ties") from None
    for slot, law in laws.items():
        if slot not in slots:
            raise recipe.error(f"series.laws: {slot!r} is not a slot of a pattern's "
                               f"refinement; slots: {', '.join(ref.group.slot_names)}",
                               "series.laws")
        if isinstance(law, str):
            try:
                _law_parts(law, "T", slot)
            except SciTieError as exc:
                raise recipe.error(f"series.laws: {exc}", "series.laws") from None


def _series_files(recipe: Recipe) -> list[Path]:
    out: list[Path] = []
    for item in recipe.settings["series"]["files"]:
        pattern = str(recipe.base / item) if not Path(item).is_absolute() else item
        hits = sorted(_glob.glob(pattern))
        if not hits:
            raise recipe.error(f"series.files: {item!r} matches no file (looked for "
                               f"{pattern})", "series.files")
        out += [Path(h) for h in hits]
    return out


# -- running -----------------------------------------------------------------------------------
def _save(ax, path) -> None:
    """Write the figure of ``ax`` to ``path`` (RunSummary hands a temporary file name)."""
    import matplotlib.pyplot as plt

    fig = ax.figure if hasattr(ax, "figure") else np.ravel(ax)[0].figure
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize_joint(ref: JointRefinement, name: str, dataset: str, seconds: float) -> RunSummary:
    """A :class:`RunSummary` of a finished joint refinement (metrics in percent)."""
    st = ref.statistics_
    metrics = {"rwp": {k: v["wrp"] for k, v in st.items() if k != "total"},
               "rp": {k: v["rp"] for k, v in st.items() if k != "total"},
               "bragg_r": {k: v["bragg_r"] for k, v in st.items() if k != "total"},
               "rwp_total": st["total"]["wrp"], "gof": st["total"]["gof"],
               "chi2": st["total"]["chi2"], "n_free": ref.result_.nvarys,
               "n_points": st["total"]["npoints"], "reduced_chi2": st["total"]["gof"] ** 2}
    if any(len(p.phases) > 1 for p in ref.pattern_list):
        metrics["fractions"] = {p.name: ref.phase_fractions(p.name) for p in ref.pattern_list
                                if len(p.phases) > 1}
    figures = {f"{name}_{p.name}": (lambda path, n=p.name: _save(ref.plot(pattern=n), path))
               for p in ref.pattern_list}
    cif = "\n".join(ref.to_cif(ph.name) for ph in ref.phase_list)
    return RunSummary(dataset=dataset, model="sciTie.diffraction.JointRefinement",
                      seconds=seconds, metrics=metrics, parameters=ref.parameters(biso=True),
                      report=ref.report() + "\n\n" + cif,
                      datasets={name: _netcdf_safe(ref.to_xarray())}, figures=figures,
                      texts={f"{name}_{ph.name}.cif": ref.to_cif(ph.name) for ph in ref.phase_list})


def _joint(recipe: Recipe) -> JointRefinement:
    from .data import load_synthetic, pbso4_refinement, synthetic_refinement

    s = recipe.settings
    d = s["data"]
    if d["dataset"] == "pbso4":
        return pbso4_refinement(recipe.resolve(d["path"], "data.path") if d["path"] else None)
    if d["dataset"] == "diffraction-synthetic":
        return synthetic_refinement(load_synthetic(d["seed"]))
    if d["dataset"] == "si-tof":
        from .data import si_tof_refinement
        return si_tof_refinement(recipe.resolve(d["path"], "data.path") if d["path"] else None)
    _, patterns_t = _phases_and_patterns(recipe)
    phases = _build_phases(recipe)
    by_name = {ph.name: ph for ph in phases}
    patterns = []
    for k, p in enumerate(patterns_t):
        key = _pattern_key(recipe, k, "file")
        patterns.append(_pattern(recipe, p, k, by_name, recipe.resolve(p["file"], key)))
    ref = JointRefinement(phases, patterns)
    try:
        ref.group  # the arguments are checked when the joint group is assembled
    except SciTieError as exc:
        raise recipe.error(f"patterns: {exc}", "patterns") from None
    if s["model"]["constrain_fractions"]:
        ref.constrain_fractions()
    if s["model"]["ties"]:
        try:
            ref.group.apply_ties([_biso_statement(t) for t in s["model"]["ties"]])
        except (SciTieError, ValueError, KeyError) as exc:
            raise recipe.error(f"model.ties: {exc}", "model.ties") from None
    return ref


def _instrument(recipe: Recipe, p: dict, k: int):
    """The pattern's instrument: its file's (or the profile's defaults), with the recipe's
    values on top."""
    from .._validation import check_float
    from ._io import read_instrument
    from .profiles import get_profile

    _require_instrument(recipe, p, k)
    key = _pattern_key(recipe, k, "instrument")
    overrides = {n: p[n] for n in ("radiation", "geometry", "radius", "lam1", "lam2", "ratio",
                                   "polarization") if p[n] is not None}
    try:
        overrides.update({n: check_float(v, f"profile[{n!r}]")
                          for n, v in (p["profile"] or {}).items()})
        if p["instrument"]:
            try:
                inst = read_instrument(recipe.resolve(p["instrument"], key))
            except (SciTieError, OSError) as exc:
                if getattr(exc, "key", None) == key:  # already a RecipeError about this key
                    raise
                raise recipe.error(f"{key}: {exc}", key) from None
            if p["instrument_type"] and p["instrument_type"] != inst.kind:
                raise recipe.error(f"{key}: the file describes a {inst.kind!r} instrument, not "
                                   f"instrument_type = {p['instrument_type']!r}", key)
            return inst.replace(**overrides)
        cls = get_profile(p["instrument_type"] or "cw")
        return cls.from_values(**overrides)
    except SciTieError as exc:
        if getattr(exc, "key", None) is not None:
            raise
        raise recipe.error(f"patterns[{k}] ({p['name']!r}): {exc}",
                           _pattern_key(recipe, k)) from None


def _pattern_options(recipe: Recipe, p: dict, k: int, phase_names) -> dict:
    opts: dict[str, Any] = {"instrument": _instrument(recipe, p, k)}
    if p["fit_range"] is not None:
        if len(p["fit_range"]) != 2:
            raise recipe.error(f"fit_range must be [lo, hi], got {p['fit_range']}",
                               _pattern_key(recipe, k, "fit_range"))
        opts["fit_range"] = tuple(p["fit_range"])
    if p["exclude"]:
        opts["exclude"] = [tuple(r) for r in p["exclude"]]
    unknown = [n for n in list(p["strain_axis"]) + list(p["phase_values"])
               + list(p["preferred_orientation"] or {}) if n not in phase_names]
    if unknown:
        raise recipe.error(f"unknown phases {unknown}; phases: {list(phase_names)}",
                           _pattern_key(recipe, k))
    if p["background_points"] is not None:
        opts["background_points"] = list(p["background_points"])
    if p["n_background"] is not None or p["background_points"] is None:
        opts["n_background"] = 6 if p["n_background"] is None else p["n_background"]
    opts.update(background_peaks=[tuple(b) for b in p["background_peaks"]],
                phase_values=p["phase_values"], strain_axis=p["strain_axis"],
                scattering=p["scattering"] or None, tail_tolerance=p["tail_tolerance"],
                cell_correction=p["cell_correction"], refine_zero=p["refine_zero"],
                refine_displacement=p["refine_displacement"],
                refine_profile=tuple(p["refine_profile"]) if p["refine_profile"] is not None
                else None,
                refine_profile_late=tuple(p["refine_profile_late"]))
    if p["preferred_orientation"]:
        opts["preferred_orientation"] = dict(p["preferred_orientation"])
    if p["absorption"]:
        opts["absorption"] = dict(p["absorption"])
    return opts


def _require_instrument(recipe: Recipe, p: dict, k: int) -> None:
    """No silent default radiation: a constant-wavelength pattern without an instrument file
    names its radiation and wavelength (a time-of-flight one is checked by its profile)."""
    if p["instrument"] or p["instrument_type"] == "tof":
        return
    quick = k >= len(recipe.settings["patterns"])
    # the quick form is the command line's: it speaks in flags only
    what = f"--pattern {p['file']!r}" if quick else f"patterns[{k}] ({p['name']!r})"
    key = "data.pattern" if quick else _pattern_key(recipe, k)
    if p["radiation"] is None:
        raise recipe.error(
            f"{what} has no instrument file and no radiation, so sciTie cannot know whether it "
            "is an X-ray or a neutron pattern: give --instrument FILE.prm (a GSAS instrument "
            "file), or --radiation xray|neutron with --wavelength Å"
            + ("" if quick else " (recipe keys: instrument, or radiation and lam1 in "
               "[[patterns]])"), key)
    if p["lam1"] is None:
        raise recipe.error(
            f"{what} has radiation {p['radiation']!r} but no wavelength: give --wavelength Å"
            + ("" if quick else " (lam1 in [[patterns]])"), key)


def _starting_profile(recipe: Recipe, p: dict, k: int, opts: dict, data) -> None:
    """Constant wavelength without an instrument file and without U, V, W: measure the
    Gaussian widths on the data (the staged refinement refines them)."""
    from ._profile_estimate import estimate_profile

    if p["instrument"] or opts["instrument"].kind != "cw" \
            or any(n in (p["profile"] or {}) for n in ("U", "V", "W")):
        return
    rng = opts.get("fit_range")
    if rng is not None and not (len(rng) == 2 and 0 < rng[0] < rng[1] < 180):
        return                       # the pattern's own checks report the range
    try:
        est = estimate_profile(data, fit_range=rng)
    except SciTieError as exc:
        warnings.warn(f"{p['name']!r}: {exc}; starting from the profile's default widths",
                      FitWarning, stacklevel=2)
        return
    opts["instrument"] = opts["instrument"].replace(U=est["U"], V=est["V"], W=est["W"])


def _pattern(recipe: Recipe, p: dict, k: int, by_name: dict, file: Path):
    from ._pattern import PowderPattern

    names = p["phases"] or list(by_name)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise recipe.error(f"patterns[{k}].phases names {missing}, which are not phases "
                           f"({list(by_name)})", _pattern_key(recipe, k, "phases"))
    opts = _pattern_options(recipe, p, k, names)
    data = _read_data(recipe, file, _pattern_key(recipe, k, "file"), opts["instrument"].axis)
    _starting_profile(recipe, p, k, opts, data)
    try:
        return PowderPattern(data, [by_name[n] for n in names], name=p["name"], **opts)
    except SciTieError as exc:
        raise recipe.error(f"patterns[{k}] ({p['name']!r}): {exc}", _pattern_key(recipe, k)) \
            from None


def _stages(recipe: Recipe):
    st = recipe.settings["stages"]
    if not st:
        return STAGES
    return tuple((s["label"] or f"stage {k + 1}", {"structure": _biso_items(s["structure"]),
                                                    "pattern": tuple(s["pattern"])})
                 for k, s in enumerate(st))


def _run_joint(recipe: Recipe) -> RunSummary:
    ref = _joint(recipe)
    quick = recipe.settings["fit"]["quick"]
    budget = recipe.settings["fit"]["max_nfev"] or (20 if quick else None)
    t0 = time.perf_counter()
    if recipe.settings["data"]["dataset"] in ("pbso4", "diffraction-synthetic"):
        ref.set_params(max_nfev=budget).refine_stages(STAGES[:-1])
        ref.set_refined(structure=["cell", "xyz", "uiso"],
                        patterns={"*": ["scale", "bkg", "zero", "cell_correction", "profile",
                                        "late_profile"]})
        ref.set_params(max_nfev=30 if quick else budget).fit()
    elif recipe.settings["data"]["dataset"] == "si-tof":
        return _run_si_tof(recipe, ref, budget, t0)
    else:
        ref.set_params(max_nfev=budget).refine_stages(_stages(recipe))
    seconds = time.perf_counter() - t0
    return summarize_joint(ref, recipe.name, recipe.settings["data"]["dataset"] or recipe.name,
                           seconds)


def _run_si_tof(recipe: Recipe, ref: JointRefinement, budget, t0: float) -> RunSummary:
    """EasyDiffraction's Si protocol: its free parameters, then the widths (see
    :mod:`._si_tof`); the reduced χ² with its free parameters alone is reported too."""
    from .data import SI_TOF_EASYDIFFRACTION, SI_TOF_STAGES

    stages = SI_TOF_STAGES
    ref.set_params(max_nfev=budget).refine_stages(stages[:2])
    same = ref.statistics_["total"]["gof"] ** 2
    last = stages[2][1]
    ref.set_refined(structure=list(last["structure"]), patterns={"*": list(last["pattern"])})
    ref.fit()
    summary = summarize_joint(ref, recipe.name, "si-tof", time.perf_counter() - t0)
    summary.metrics["reduced_chi2_easydiffraction_parameters"] = same
    summary.metrics["easydiffraction_reduced_chi2"] = SI_TOF_EASYDIFFRACTION["reduced_chi2"]
    summary.report = (f"reduced chi2 {summary.metrics['reduced_chi2']:.4f} (EasyDiffraction "
                      f"{SI_TOF_EASYDIFFRACTION['reduced_chi2']}; {same:.4f} with its free "
                      f"parameters alone, before freeing alpha, beta0, sig2)\n" + summary.report)
    return summary


def _series_setup(recipe: Recipe):
    """Specs, recipe, laws and a label for the series the recipe describes."""
    from ._series import PatternSpec, SeriesRecipe, SeriesTie, specs_from_dataset
    from .data import CUCR2O4_LAWS, _temperature, cucr2o4_recipe, load_cucr2o4_seq

    s = recipe.settings
    ser = s["series"]
    if s["data"]["dataset"] == "cucr2o4-seq":
        ds = load_cucr2o4_seq(recipe.resolve(s["data"]["path"], "data.path")
                              if s["data"]["path"] else None)
        if ser["patterns"]:
            ds = ds.isel(pattern=slice(0, ser["patterns"]))
        rng = tuple(ser["fit_range"]) if ser["fit_range"] else (4.5, 26.1)
        rec = cucr2o4_recipe(ds, fit_range=rng, tie_above=None if ser["no_tie"]
                             else ser["tie_above"], uiso=ser["uiso"])
        if s["fit"]["max_nfev"]:
            rec.max_nfev = s["fit"]["max_nfev"]
        laws = ser["laws"] or dict(CUCR2O4_LAWS)
        return specs_from_dataset(ds), rec, laws
    _, patterns_t = _phases_and_patterns(recipe)
    phases = _build_phases(recipe)
    template = patterns_t[0]
    opts = _pattern_options(recipe, template, 0, [ph.name for ph in phases])
    files = _series_files(recipe)
    if ser["patterns"]:
        files = files[:ser["patterns"]]
    try:
        temps = ser["temperatures"] or [_temperature(f) for f in files]
    except (SciTieError, OSError) as exc:
        raise recipe.error(f"series.temperatures not given, and {exc}",
                           "series.files") from None
    specs = []
    for f, T in zip(files, temps):
        data = _read_data(recipe, f, "series.files")
        specs.append(PatternSpec(f.stem, float(T), data["two_theta"].values, data.values,
                                 data["variance"].values, str(f)))
    if specs:
        _starting_profile(recipe, template, 0, opts, specs[0].data())
    stages = [(lab, tuple(spec.get("structure", ())), tuple(spec.get("pattern", ())))
              for lab, spec in _stages(recipe)]
    ties = []
    for k, t in enumerate(ser["ties"]):
        try:
            ties.append(SeriesTie(t["slot"], t["to"], scale=t["scale"], offset=t["offset"],
                                  above=t["above"], below=t["below"]))
        except SciTieError as exc:
            raise recipe.error(f"series.ties[{k}]: {exc}", f"series.ties[{k}]") from None
    try:
        rec = SeriesRecipe(phases=phases, pattern_options=opts, stages=stages,
                           continue_stages=min(ser["continue_stages"], len(stages)),
                           constrain_fractions=s["model"]["constrain_fractions"], ties=ties,
                           max_nfev=s["fit"]["max_nfev"] or 300)
    except SciTieError as exc:
        raise recipe.error(f"series: {exc}", "series") from None
    return specs, rec, dict(ser["laws"])


def run_series(recipe: Recipe) -> RunSummary:
    """A sequential or parametric refinement of the series the recipe describes."""
    from ._parametric import Law, ParametricRefinement
    from ._series import SequentialRefinement, sequence_entries, tie_transition
    from ._series_plot import plot_series_image, plot_series_parameters, plot_tie_test

    n = recipe.name
    ser = recipe.settings["series"]
    specs, rec, laws = _series_setup(recipe)
    for slot, law in list(laws.items()):
        if isinstance(law, str):
            start = {k: v for k, v in ser["law_start"].items()}
            laws[slot] = Law(law, start=start)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        seq = SequentialRefinement(specs, rec, tie_test=bool(rec.ties) and ser["tie_test"],
                                   n_jobs=ser["n_jobs"]).fit()
    result, model = seq, "sciTie.diffraction.SequentialRefinement"
    laws_out, law_curves = {}, {}
    if ser["mode"] == "parametric":
        if not laws:
            raise recipe.error("series.mode = 'parametric' needs series.laws", "series.laws")
        par = ParametricRefinement(specs, rec, laws=laws, start=seq).fit()
        result, model = par, "sciTie.diffraction.ParametricRefinement"
        laws_out = par.laws_
        law_curves = {k: (lambda T, k=k: par.law_curve(k, T)) for k in laws}
    seconds = time.perf_counter() - t0
    S = result.to_xarray()
    entries = sequence_entries(S)
    metrics: dict[str, Any] = {
        "rwp": {e["label"]: e["rwp"] for e in entries},
        "rwp_mean": float(np.mean(S["wrp"].values)), "rwp_max": float(np.max(S["wrp"].values)),
        "gof_mean": float(np.mean(S["gof"].values)), "chi2": float(np.sum(S["chi2"].values)),
        "n_points": int(np.sum(S["npoints"].values)), "n_patterns": len(specs)}
    if ser["mode"] == "parametric":
        metrics["n_free"] = int(result.result_.nvarys)
        metrics["n_free_sequential"] = int(np.sum(seq.to_xarray()["nvarys"].values))
        metrics["chi2_sequential"] = float(np.sum(seq.to_xarray()["chi2"].values))
    else:
        metrics["n_free"] = int(np.sum(S["nvarys"].values))
    tested = "tie" in seq.to_xarray().dims
    if tested:
        for t in seq.to_xarray()["tie"].values:
            metrics[f"tie[{t}]"] = tie_transition(seq.to_xarray(), str(t))
    cells = [p for p in S["param"].values if str(p).split(".")[-1] in ("a", "b", "c", "beta")
             and not str(p).startswith("pattern.")][:6]
    lines = [f"[[{n}: {ser['mode']} refinement of {len(specs)} patterns]]",
             f"    {'pattern':<8} {'T (K)':>7} {'wRp %':>7} {'GOF':>6} "
             + " ".join(f"{c:>18}" for c in cells[:3])]
    for e in entries:
        P = e["parameters"]

        def fmt(k):
            if k not in P:
                return "-"
            s = P[k]["stderr"]
            return f"{P[k]['value']:.5f}({s * 1e5:.0f})" if s else f"{P[k]['value']:.5f}"
        lines.append(f"    {e['label']:<8} {e['temperature']:>7.1f} {e['rwp']:>7.2f} "
                     f"{e['gof']:>6.3f} " + " ".join(f"{fmt(c):>18}" for c in cells[:3]))
    if laws_out:
        lines.append("    laws: " + ", ".join(f"{k} = {v['value']:.6g}({v['stderr']:.2g})"
                                                for k, v in laws_out.items()))
        lines.append(f"    free parameters: parametric {metrics['n_free']}, sequential "
                     f"{metrics['n_free_sequential']}; chi2 {metrics['chi2']:.1f} vs "
                     f"{metrics['chi2_sequential']:.1f}")
    for k, v in metrics.items():
        if k.startswith("tie["):
            lines.append(f"    {k}: F-test rejects the tie up to "
                         f"{v['f_test']['last_significant']} K; |difference| > 3 esd up to "
                         f"{v['difference']['last_significant']} K")
    tth = S["two_theta"].values if "two_theta" in S.dims else None
    lo = float(np.nanmin(tth[np.isfinite(S["calc"].values).any(axis=0)])) if tth is not None \
        else None
    window = (lo, lo + 8.0) if lo is not None else None
    figures = {
        f"{n}_parameters": lambda path: _save(plot_series_parameters(S, cells[:5],
                                                                     laws=law_curves)[0], path),
        f"{n}_image": lambda path: _save(plot_series_image(S, two_theta=window), path),
        f"{n}_difference": lambda path: _save(plot_series_image(S, what="difference",
                                                                two_theta=window), path),
    }
    if tested:
        tname = str(seq.to_xarray()["tie"].values[0])
        figures[f"{n}_tie"] = lambda path: _save(plot_tie_test(seq.to_xarray(), tname)[0], path)
    datasets = {n: _netcdf_safe(S)}
    if ser["mode"] == "parametric":
        datasets[f"{n}_sequential"] = _netcdf_safe(seq.to_xarray())
    return RunSummary(dataset=recipe.settings["data"]["dataset"] or n, model=model,
                      seconds=seconds, metrics=metrics,
                      parameters={k: dict(v) for k, v in laws_out.items()},
                      report="\n".join(lines), datasets=datasets, figures=figures,
                      extra={"mode": ser["mode"], "sequence": entries,
                             **({"laws": laws_out} if laws_out else {})})


def _netcdf_safe(ds):
    """Attributes netCDF can store (numbers and strings)."""
    import json

    out = ds.copy()
    out.attrs = {k: (v if isinstance(v, (int, float, str)) else json.dumps(v, default=str))
                 for k, v in ds.attrs.items()}
    return out


def run(recipe: Recipe) -> RunSummary:
    """Fit the recipe: a joint refinement, or a series when it describes one."""
    if _is_series(recipe):
        return run_series(recipe)
    return _run_joint(recipe)


KIND = RecipeKind(
    name="rietveld", schema=SCHEMA, run=run, outputs=outputs, check=check,
    description="Rietveld refinement: joint, multi-phase, sequential or parametric series",
    options=(Option(("--dataset",), "data.dataset",
                    help="pbso4, diffraction-synthetic or cucr2o4-seq"),
             Option(("--cif",), "data.cif", action="append", help="a phase's CIF (repeat)"),
             Option(("--pattern",), "data.pattern", action="append",
                    help="a data file (repeat)"),
             Option(("--instrument",), "data.instrument", action="append",
                    help="a GSAS .prm (or an EasyDiffraction experiment .cif), one per "
                         "--pattern"),
             Option(("--radiation",), "data.radiation", action="append",
                    help="xray or neutron, for patterns without --instrument (one for all, or "
                         "one per --pattern)"),
             Option(("--wavelength",), "data.wavelength", type=float, action="append",
                    help="wavelength in Å, for patterns without --instrument"),
             Option(("--mode",), "series.mode", help="sequential or parametric (a series)")))
