"""Reading a crystal structure from a CIF written by any program: CIF1 tags
(``_cell_length_a``, ``_symmetry_space_group_name_H-M``) and CIF2/DDLm dotted tags
(``_cell.length_a``, ``_space_group.name_H-M_alt``, ``_atom_site.fract_x``) as EasyDiffraction,
cryspy and recent IUCr dictionaries write them.

Cell parameters that the crystal system fixes may be left out (EasyDiffraction writes only
``_cell.length_a`` for a cubic phase); one it does not fix is an error that names the tag.
Displacements are read as U (``U_iso_or_equiv``) or B (``B_iso_or_equiv``, B = 8π²U), as
``adp_type`` says, and anisotropic ones from the ``_atom_site_aniso`` loop (U^{ij} or B^{ij}).
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np

from ..errors import DataFormatError, ValidationError, location
from ._adp import B_PER_U, check_uij, read_cif_uij

__all__ = ["CifStructure", "read_cif_structure", "cif_tags"]

_CELL = ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")


def cif_tags(category: str, item: str, *legacy: str) -> tuple[str, ...]:
    """The spellings of one data item: DDLm (``_cell.length_a``), CIF1 (``_cell_length_a``)
    and older aliases."""
    return (f"_{category}.{item}", f"_{category}_{item}") + legacy


@dataclass
class CifStructure:
    """What a CIF says about one phase (before :class:`~sciTie.diffraction.Phase` builds it).

    Attributes
    ----------
    name : str
        ``_pd_phase_name``, else the data block's name.
    cell : ndarray
        a, b, c, alpha, beta, gamma with the values the crystal system fixes filled in.
    spacegroup : gemmi.SpaceGroup
    atoms : list of dict
        ``label, element, xyz, uiso, occ, uij, line`` (``uij``: the six U^{ij} of an
        anisotropic atom, else None).
    adp : {'U', 'B'}
        How the file gives displacements (``B`` when any atom has a B and no U).
    dotted : bool
        The file uses DDLm (dotted) tags.
    """

    name: str
    cell: np.ndarray
    spacegroup: gemmi.SpaceGroup
    atoms: list
    adp: str
    dotted: bool


class _Reader:
    """Look-ups in one block, with line numbers for messages."""

    def __init__(self, path: Path, block: gemmi.cif.Block):
        self.path = path
        self.block = block
        try:
            self.lines = path.read_text(errors="replace").splitlines()
        except OSError:
            self.lines = []

    def line_of(self, text: str) -> int | None:
        low = text.lower()
        return next((i for i, line in enumerate(self.lines, 1) if low in line.lower()), None)

    def fail(self, message: str, near: str | None = None, line: int | None = None):
        raise DataFormatError(message, path=self.path,
                              line=line if line is not None else (self.line_of(near)
                                                                  if near else None))

    def value(self, tags) -> tuple[str | None, str | None]:
        """(raw value, tag found) of the first tag present; None for absent or '?'/'.'."""
        for tag in tags:
            v = self.block.find_value(tag)
            if v is not None:
                return (None if gemmi.cif.is_null(v) else v), tag
        return None, None

    def column(self, tags) -> tuple[list[str] | None, str | None]:
        for tag in tags:
            col = self.block.find_values(tag)
            if len(col):
                return [col[i] for i in range(len(col))], tag
        return None, None


def _number(raw: str | None) -> float:
    """A CIF number (``5.4315(2)`` -> 5.4315); NaN for absent, '?', '.' or text."""
    if raw is None or gemmi.cif.is_null(raw):
        return math.nan
    return float(gemmi.cif.as_number(raw))


def _spacegroup(r: _Reader) -> gemmi.SpaceGroup:
    """From the symmetry operators when the file lists them, else Hall, else H-M (with
    ``IT_coordinate_system_code`` for the origin choice or axes), else the number."""
    ops, tag = r.column(cif_tags("space_group_symop", "operation_xyz")
                        + cif_tags("symmetry_equiv", "pos_as_xyz"))
    if ops:
        try:
            group = gemmi.GroupOps([gemmi.Op(gemmi.cif.as_string(o)) for o in ops])
            sg = gemmi.find_spacegroup_by_ops(group)
        except (RuntimeError, ValueError) as exc:
            r.fail(f"unreadable symmetry operation in {tag}: {exc}", near=tag)
        if sg is not None:
            return sg
    hall, tag = r.value(cif_tags("space_group", "name_Hall", "_symmetry_space_group_name_Hall"))
    if hall is not None:
        try:
            sg = gemmi.find_spacegroup_by_ops(gemmi.symops_from_hall(gemmi.cif.as_string(hall)))
        except (RuntimeError, ValueError) as exc:
            r.fail(f"unreadable Hall symbol {hall!r}: {exc}", near=tag)
        if sg is not None:
            return sg
    hm, tag = r.value(cif_tags("space_group", "name_H-M_alt", "_symmetry_space_group_name_H-M",
                               "_space_group.name_H-M_full", "_space_group_name_H-M_full"))
    if hm is not None:
        hm = gemmi.cif.as_string(hm).strip()
        code, _ = r.value(cif_tags("space_group", "IT_coordinate_system_code"))
        code = gemmi.cif.as_string(code).strip().upper() if code is not None else ""
        names = [hm]
        if ":" not in hm and code in ("1", "2", "H", "R"):
            names.insert(0, f"{hm}:{code}")
        for n in names:
            sg = gemmi.find_spacegroup_by_name(n)
            if sg is not None:
                return sg
        r.fail(f"unknown space group {hm!r} in {tag}", near=tag)
    number, tag = r.value(cif_tags("space_group", "IT_number", "_symmetry_Int_Tables_number"))
    if number is not None and _number(number) == int(_number(number)) \
            and 1 <= _number(number) <= 230:
        return gemmi.find_spacegroup_by_number(int(_number(number)))
    r.fail("CIF has no space-group symmetry (need _space_group_name_H-M_alt, "
           "_space_group.name_H-M_alt, _symmetry_space_group_name_H-M, a Hall symbol, a "
           "symmetry-operation loop or _space_group_IT_number)")


def _unique_axis(sg: gemmi.SpaceGroup) -> int:
    """0, 1 or 2: the unique axis of a monoclinic group (``P 1 21/c 1`` -> b)."""
    parts = sg.hm.split()[1:4]
    return next((k for k, p in enumerate(parts) if p != "1"), 1)


def _cell(r: _Reader, sg: gemmi.SpaceGroup, dotted: bool) -> np.ndarray:
    """The six cell parameters; those the crystal system fixes may be missing."""
    given = {}
    for item in _CELL:
        raw, tag = r.value(cif_tags("cell", item))
        v = _number(raw)
        if raw is not None and not math.isfinite(v):
            r.fail(f"{tag} must be a number, got {raw!r}", near=tag)
        given[item] = v
    a, b, c, al, be, ga = (given[i] for i in _CELL)
    system = sg.crystal_system_str()
    rhombohedral = system == "trigonal" and sg.ext == "R"
    equal_ab = system in ("tetragonal", "cubic", "hexagonal", "trigonal")
    fixed = {"length_a": None,
             "length_b": a if equal_ab else None,
             "length_c": a if (system == "cubic" or rhombohedral) else None}
    if system in ("orthorhombic", "tetragonal", "cubic"):
        fixed.update(angle_alpha=90.0, angle_beta=90.0, angle_gamma=90.0)
    elif system in ("hexagonal", "trigonal") and not rhombohedral:
        fixed.update(angle_alpha=90.0, angle_beta=90.0, angle_gamma=120.0)
    elif rhombohedral:
        fixed.update(angle_alpha=None, angle_beta=al, angle_gamma=al)
    elif system == "monoclinic":
        unique = _unique_axis(sg)
        fixed.update({name: (None if k == unique else 90.0)
                      for k, name in enumerate(_CELL[3:])})
    else:
        fixed.update(angle_alpha=None, angle_beta=None, angle_gamma=None)
    out = []
    for item in _CELL:
        v = given[item]
        if not math.isfinite(v):
            v = fixed[item] if fixed[item] is not None else math.nan
        if not math.isfinite(v):
            tag = f"_cell.{item}" if dotted else f"_cell_{item}"
            what = item.replace("length_", "").replace("angle_", "")
            r.fail(f"the file gives no {tag}, and the {system} space group {sg.xhm()} does "
                   f"not fix {what}; add {tag}", near="_cell")
        out.append(float(v))
    return np.array(out)


def _element(symbol: str) -> str:
    """The element of a type symbol or label (``O2-`` -> O, ``Ca1`` -> Ca); '' if none."""
    letters = re.match(r"[A-Za-z]+", symbol.strip())
    if not letters:
        return ""
    s = letters.group(0)
    for candidate in (s[:2], s[:1]):
        if candidate and gemmi.Element(candidate).atomic_number:
            return gemmi.Element(candidate).name
    return ""


def _site_line(r: _Reader, label: str) -> int | None:
    for i, line in enumerate(r.lines, 1):
        parts = line.split()
        if parts and parts[0] == label:
            return i
    return r.line_of(label)


def _aniso(r: _Reader) -> dict:
    """``{label: (U11, ..., U23)}`` of the anisotropic atoms (``_atom_site_aniso`` loop, U or
    B form, CIF1 or CIF2 tags), each checked (a tensor that is not positive definite names
    the atom and the loop)."""
    out = read_cif_uij(r.block, r.path)
    for label, uij in out.items():
        try:
            out[label] = check_uij(uij, f"atom {label!r}")
        except ValidationError as exc:
            r.fail(str(exc), near="_atom_site_aniso")
    return out


def _atoms(r: _Reader) -> tuple[list[dict], str]:
    labels, _ = r.column(cif_tags("atom_site", "label"))
    if not labels:
        r.fail("CIF has no _atom_site loop (_atom_site_label or _atom_site.label)")
    n = len(labels)

    def col(item, *legacy):
        values, _ = r.column(cif_tags("atom_site", item, *legacy))
        if values is not None and len(values) != n:
            values = None
        return values

    types = col("type_symbol")
    xyz = [col(f"fract_{k}") for k in "xyz"]
    if any(c is None for c in xyz):
        r.fail("the _atom_site loop has no fractional coordinates (_atom_site_fract_x/y/z or "
               "_atom_site.fract_x/y/z)", near="_atom_site")
    occ = col("occupancy")
    u_col, b_col = col("U_iso_or_equiv"), col("B_iso_or_equiv")
    kind = col("adp_type", "_atom_site_thermal_displace_type")
    aniso = _aniso(r)                  # anisotropic atoms stay anisotropic
    atoms, used_b = [], False
    for i in range(n):
        label = gemmi.cif.as_string(labels[i]).strip()
        line = _site_line(r, label)
        sym = gemmi.cif.as_string(types[i]) if types is not None else label
        element = _element(sym)
        if not element:
            near = f" {sym} " if types is not None else None
            r.fail(f"atom site {i + 1}: unknown element {sym!r}",
                   near=near, line=None if near else line)
        point = tuple(_number(c[i]) for c in xyz)
        if not all(math.isfinite(v) for v in point):
            r.fail(f"atom {label!r}: fractional coordinates {point} must be numbers (missing "
                   "'?' or unreadable values)", line=line)
        o = _number(occ[i]) if occ is not None else 1.0
        o = 1.0 if occ is not None and gemmi.cif.is_null(occ[i]) else o
        if not (math.isfinite(o) and 0 <= o <= 1):
            r.fail(f"atom {label!r}: occupancy {o:g} must be in [0, 1]", line=line)
        u = _number(u_col[i]) if u_col is not None else math.nan
        b = _number(b_col[i]) if b_col is not None else math.nan
        says_b = kind is not None and gemmi.cif.as_string(kind[i]).strip().upper().startswith("B")
        if math.isfinite(b) and (says_b or not math.isfinite(u)):
            given, value, uiso = "B_iso", b, b / B_PER_U
            used_b = True
        else:
            given, value, uiso = "U_iso", u, u
        if math.isfinite(value) and value < 0 and label not in aniso:
            # refined structures sometimes end with a slightly negative value: not a physical
            # start, so start from the typical value, and say so
            warnings.warn(f"{location(r.path, line)}: atom {label!r} has {given} {value:g} < 0; "
                          f"starting from U_iso 0.01 instead", UserWarning, stacklevel=4)
        # no (or zero) displacement in the file: a typical starting value
        uiso = uiso if math.isfinite(uiso) and uiso > 0 else 0.01
        atoms.append({"label": label, "element": element, "xyz": point, "uiso": uiso,
                      "occ": o, "uij": aniso.get(label), "line": line})
    return atoms, ("B" if used_b else "U")


def read_cif_structure(path: Path, block: int | str = 0) -> CifStructure:
    """Read cell, space group and atoms of one data block of ``path`` (see module notes).

    Raises
    ------
    DataFormatError
        Naming the file and, where possible, the line: unreadable CIF, no such block, no
        symmetry, a missing cell parameter the crystal system does not fix, no atoms, an
        unknown element, coordinates or occupancies that are not numbers or out of range.
    """
    try:
        doc = gemmi.cif.read_file(str(path))
    except (RuntimeError, ValueError) as exc:
        raise DataFormatError(f"not a readable CIF file: {exc}", path=path) from None
    try:
        blk = doc[block] if isinstance(block, int) else doc.find_block(block)
    except (IndexError, RuntimeError):
        blk = None
    if blk is None:
        raise DataFormatError(f"CIF has no data block {block!r}", path=path)
    r = _Reader(Path(path), blk)
    dotted = any(blk.find_value(f"_cell.{i}") is not None for i in _CELL) or \
        bool(len(blk.find_values("_atom_site.label")))
    sg = _spacegroup(r)
    cell = _cell(r, sg, dotted)
    atoms, adp = _atoms(r)
    name, _ = r.value(("_pd_phase_name", "_pd_phase.name"))
    name = gemmi.cif.as_string(name).strip() if name is not None else ""
    return CifStructure(name=name or blk.name or "phase", cell=cell, spacegroup=sg,
                        atoms=atoms, adp=adp, dotted=dotted)
