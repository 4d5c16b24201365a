"""A crystal phase: cell, space group and atoms, as a ParameterGroup with symmetry ties.

gemmi supplies the space-group operators, reflection generation with systematic absences,
the X-ray form factors (International Tables 1992 coefficients), f'/f'' (Cromer-Liberman)
and the neutron scattering lengths (Neutron92); this module turns them into structure
factors with exact derivatives.
"""
from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import gemmi
import numpy as np

from .._validation import check_float
from ._cell import metric_tensor
from ..io import as_path
from ..core import ParameterGroup
from ..errors import ArgumentTypeError, DataFormatError, ValidationError, location
from . import _adp
from ._kernels import phase_sums

__all__ = ["Atom", "Phase", "CELL_NAMES", "ATOM_PARAMS", "SCATTERING_KEYS",
           "B_PER_U", "biso_from_uiso", "uiso_from_biso"]

CELL_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")
ATOM_PARAMS = ("x", "y", "z", "uiso", "occ")
_TOL = 2e-3
#: B = 8π² U (defined with the anisotropic displacements, :mod:`._adp`).
B_PER_U = _adp.B_PER_U


def format_esd(value: float, stderr: float | None) -> str:
    """``value(esd)`` in the crystallographic way (two digits of esd below 20, else one);
    ``value`` with six decimals when there is no positive finite esd."""
    if stderr is None or not np.isfinite(stderr) or stderr <= 0:
        return f"{value:.6f}"
    dec = max(0, min(8, 1 - int(math.floor(math.log10(stderr)))))
    e = int(round(stderr * 10 ** dec))
    if e >= 20 and dec > 0:
        dec -= 1
        e = int(round(stderr * 10 ** dec))
    return f"{value:.{dec}f}({e})"


def biso_from_uiso(uiso):
    """B = 8π² U (Å²); works on numbers and arrays (standard errors scale the same way)."""
    return np.multiply(uiso, B_PER_U) if np.ndim(uiso) else float(uiso) * B_PER_U


def uiso_from_biso(biso):
    """U = B / (8π²) (Å²); works on numbers and arrays."""
    return np.divide(biso, B_PER_U) if np.ndim(biso) else float(biso) / B_PER_U


@dataclass
class Atom:
    """One atom of the asymmetric unit.

    Parameters
    ----------
    label : str
        Site label (also the name of the atom's parameter group, sanitised to an identifier).
    element : str
        Element symbol understood by gemmi.
    xyz : tuple of float
        Fractional coordinates.
    uiso : float, optional
        Isotropic displacement parameter U (Å²); default 0.01 unless ``biso`` is given.
    occ : float
        Site occupancy.
    biso : float, optional
        The same displacement as B = 8π²U (Å²), for values quoted that way; give U or B.
        A :class:`Phase` that reads the atom converts it into ``uiso`` (and sets ``biso``
        back to None, so ``uiso`` alone holds the value).
    uij : tuple of 6 float, optional
        Anisotropic displacement ``(U11, U22, U33, U12, U13, U23)`` (Å², the CIF's
        U^{ij}); None: isotropic. An anisotropic atom refines the U^{ij} its site allows
        and its ``uiso`` slot is their Ueq (see :mod:`._adp`).
    """

    label: str
    element: str
    xyz: tuple[float, float, float]
    uiso: float | None = None
    occ: float = 1.0
    biso: float | None = None
    uij: tuple | None = None
    # filled by Phase
    name: str = field(default="", repr=False)


def _identifier(label: str, taken: set[str]) -> str:
    s = re.sub(r"\W", "_", label)
    if not s or s[0].isdigit() or s[0] == "_":
        s = "A" + s.lstrip("_")
    base, k = s, 2
    while s in taken:
        s = f"{base}_{k}"
        k += 1
    taken.add(s)
    return s


def check_cell(cell, name: str = "cell") -> np.ndarray:
    """``cell`` as 6 floats: a, b, c > 0 (Å), 0 < angles < 180 (degrees), and a cell that
    exists (positive volume: angles such as 150/150/150 cannot close a parallelepiped)."""
    if isinstance(cell, (str, bytes)) or np.ndim(cell) != 1:
        raise ArgumentTypeError(f"{name} must be 6 numbers (a, b, c, alpha, beta, gamma), "
                                f"got {cell!r}")
    try:
        arr = np.array([check_float(v, f"{name}[{i}]") for i, v in enumerate(cell)])
    except TypeError:
        raise ArgumentTypeError(f"{name} must be 6 numbers (a, b, c, alpha, beta, gamma), "
                                f"got {cell!r}") from None
    if arr.shape != (6,):
        raise ValidationError(f"{name} must be 6 numbers (a, b, c, alpha, beta, gamma), got "
                              f"{arr.size}")
    if np.any(arr[:3] <= 0) or np.any(arr[3:] <= 0) or np.any(arr[3:] >= 180):
        raise ValidationError(f"{name} must be (a, b, c > 0, 0 < angles < 180), got "
                              f"{arr.tolist()}")
    det = np.linalg.det(metric_tensor(arr))
    if not det > 1e-12 * np.prod(arr[:3]) ** 2:
        raise ValidationError(f"{name} {arr.tolist()} is geometrically impossible: its angles "
                              "give no positive volume (each angle must be less than the sum "
                              "of the other two, and all three less than 360 degrees)")
    return arr


def _cif_lineno(path: Path, tag: str) -> int | None:
    """First line of ``path`` that mentions ``tag`` (for error messages), or None."""
    try:
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if tag.lower() in line.lower():
                return i
    except OSError:
        pass
    return None


SCATTERING_KEYS = {"xray": ("f0", "fp", "fpp"), "neutron": ("b",)}


def check_scattering_table(table, radiation: str) -> dict:
    """Validate a user scattering table ``{element: {key: value}}`` for ``radiation``."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ValidationError(f"scattering: expected a dict of element -> {{key: value}}, got "
                              f"{type(table).__name__}")
    allowed = SCATTERING_KEYS[radiation]
    out = {}
    for el, entry in table.items():
        if not isinstance(el, str) or gemmi.Element(el).atomic_number == 0:
            raise ValidationError(f"scattering: {el!r} is not an element symbol")
        sym = gemmi.Element(el).name
        if not isinstance(entry, dict) or not entry:
            raise ValidationError(f"scattering[{el!r}]: expected a dict with keys from {allowed}, "
                                  f"got {entry!r}")
        bad = [k for k in entry if k not in allowed]
        if bad:
            other = "neutron" if radiation == "xray" else "xray"
            hint = (f" ({', '.join(bad)} belong to {other} patterns)"
                    if all(k in SCATTERING_KEYS[other] for k in bad) else "")
            raise ValidationError(f"scattering[{el!r}]: keys {bad} are not valid for a {radiation} "
                                  f"pattern; expected {allowed}{hint}")
        clean = {}
        for k, v in entry.items():
            arr = np.asarray(v, dtype=float) if not isinstance(v, str) else np.array(np.nan)
            if k == "f0":
                if arr.shape != (9,) or not np.all(np.isfinite(arr)):
                    raise ValidationError(f"scattering[{el!r}]['f0']: expected 9 finite numbers "
                                          f"(a1..a4, b1..b4, c), got {v!r}")
                clean[k] = arr
            else:
                if arr.shape != () or not np.isfinite(arr):
                    raise ValidationError(f"scattering[{el!r}][{k!r}]: expected a finite number, "
                                          f"got {v!r}")
                clean[k] = float(arr)
        out[sym] = clean
    return out


def _check_atom(at, i: int) -> "Atom":
    """``atoms[i]`` checked: a str label, a known element, 3 finite coordinates, a finite
    Uiso >= 0 and an occupancy in [0, 1]."""
    if not isinstance(at, Atom):
        raise ArgumentTypeError(f"atoms[{i}] must be an Atom(label, element, xyz, uiso, occ), "
                                f"got {type(at).__name__}")
    if not isinstance(at.label, str) or not at.label.strip():
        raise ArgumentTypeError(f"atoms[{i}]: label must be a non-empty str, got {at.label!r}")
    what = f"atom {at.label!r}"
    if not isinstance(at.element, str) or gemmi.Element(at.element).atomic_number == 0:
        raise ValidationError(f"{what}: unknown element {at.element!r}; give a symbol such as "
                              "'O', 'Cu' or 'Pb'")
    if isinstance(at.xyz, (str, bytes)) or np.ndim(at.xyz) != 1 or len(at.xyz) != 3:
        raise ValidationError(f"{what}: xyz must be 3 fractional coordinates, got {at.xyz!r}")
    xyz = tuple(check_float(v, f"{what} xyz[{k}]") for k, v in enumerate(at.xyz))
    uiso = None if at.uiso is None else check_float(at.uiso, f"{what} uiso", minimum=0.0)
    if at.biso is not None:
        from_b = check_float(at.biso, f"{what} biso", minimum=0.0) / B_PER_U
        if uiso is not None:
            raise ValidationError(f"{what}: give uiso or biso (B = 8π²U), not both (uiso "
                                  f"{uiso:g}, biso {at.biso:g})")
        uiso = from_b
    uiso = 0.01 if uiso is None else uiso
    occ = check_float(at.occ, f"{what} occ", minimum=0.0, maximum=1.0)
    at.xyz, at.uiso, at.biso, at.occ = xyz, uiso, None, occ
    if at.uij is not None:
        at.uij = _adp.check_uij(at.uij, what)
    return at


def phase_identifier(name: str) -> str:
    """A phase name as a group identifier (``"2p10h"`` -> ``"A2p10h"``)."""
    return _identifier(str(name), set())


class Phase:
    """Crystal structure with symmetry-aware parameters.

    Parameters
    ----------
    name : str
        Phase name; made into an identifier (``"PbSO4"``, ``"CuCr2O4"``) that names the
        :attr:`group`, so several phases can live side by side in one refinement.
    cell : sequence of 6 float
        a, b, c (Å), alpha, beta, gamma (degrees).
    spacegroup : str or gemmi.SpaceGroup
        Hermann-Mauguin symbol (with ``:1``/``:2`` for the origin choice), number or gemmi
        object.
    atoms : list of Atom
        Asymmetric unit.

    Attributes
    ----------
    group : ParameterGroup
        Named after the phase. Slots ``a, b, c, alpha, beta, gamma`` and, per atom, a child
        group ``<label>`` with ``x, y, z, uiso, occ`` (and ``U11 ... U23`` for an
        anisotropic atom, whose ``uiso`` is then tied to their Ueq). Lattice constraints of
        the crystal system and site-symmetry constraints on coordinates and U^{ij} are ties /
        fixes in this group. Occupancies start fixed.
    aniso : list of int
        Indices of the anisotropic atoms.
    adp : {'U', 'B'}
        How displacements are written by :meth:`to_cif` (and listed first in reports): 'U'
        (``_atom_site_U_iso_or_equiv``), or 'B' for a phase read from a CIF that gave B_iso.
        The slots always hold Uiso.
    """

    def __init__(self, name: str, cell, spacegroup, atoms: list[Atom]) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(f"name must be a non-empty str, got {name!r}")
        if isinstance(spacegroup, gemmi.SpaceGroup):
            sg = spacegroup
        elif isinstance(spacegroup, (str, int)) and not isinstance(spacegroup, bool):
            sg = gemmi.find_spacegroup_by_name(str(spacegroup))
            if sg is None:
                raise ValidationError(f"spacegroup: unknown space group {spacegroup!r}; give a "
                                      "Hermann-Mauguin symbol ('P 42/m n m', 'F d d d:2') or a "
                                      "number (1-230)")
        else:
            raise ArgumentTypeError(f"spacegroup must be a str, an int or a gemmi.SpaceGroup, "
                                    f"got {type(spacegroup).__name__}")
        self.spacegroup = sg
        cell = check_cell(cell)
        if isinstance(atoms, Atom):
            atoms = [atoms]
        if not isinstance(atoms, (list, tuple)):
            raise ArgumentTypeError(f"atoms must be a list of Atom, got "
                                    f"{type(atoms).__name__}")
        if not atoms:
            raise ValidationError("atoms: a phase needs at least one atom")
        atoms = [_check_atom(at, i) for i, at in enumerate(atoms)]
        self.name = phase_identifier(name.strip())
        self.adp = "U"
        ops = sg.operations()
        allops = list(ops)
        self.rot = np.array([np.array(op.rot, dtype=float) / op.DEN for op in allops])
        self.tran = np.array([np.array(op.tran, dtype=float) / op.DEN for op in allops])
        # atom groups live next to the cell parameters: a label "a" or "beta" gets a suffix
        taken: set[str] = set(CELL_NAMES)
        for at in atoms:
            at.name = _identifier(at.label, taken)
        self.atoms = atoms
        self._site_setup()
        self._scattering_setup()
        self.group = self._make_group(cell)
        # what symmetry leaves free, remembered for staged refinement (the group's own flags
        # change as parameters are fixed and freed)
        self.refinable_cell = [n for n in self.group.free_names if n in CELL_NAMES]
        self.refinable_atoms = [n for n in self.group.free_names
                                if n.split(".")[-1] in ("x", "y", "z", "uiso")]
        self.refinable_uij = [n for n in self.group.free_names
                              if n.split(".")[-1] in _adp.UIJ_NAMES]

    def structure_names(self, items) -> list[str]:
        """Slot names (relative to :attr:`group`) for the keywords ``"cell"``, ``"xyz"``,
        ``"uiso"`` (the displacement of every atom: Uiso of isotropic atoms, the free U^{ij}
        of anisotropic ones), ``"uij"`` (anisotropic atoms only), ``"occ"`` or explicit
        names (``"O.x"``)."""
        names: list[str] = []
        for item in items:
            if item == "cell":
                names += self.refinable_cell
            elif item == "xyz":
                names += [n for n in self.refinable_atoms if n.split(".")[-1] in "xyz"]
            elif item == "uiso":
                names += [n for n in self.refinable_atoms if n.endswith(".uiso")]
                names += self.refinable_uij
            elif item == "uij":
                names += self.refinable_uij
            elif item == "occ":
                names += [f"{a.name}.occ" for a in self.atoms]
            else:
                names.append(item)
        return names

    def with_anisotropic(self, labels=None) -> "Phase":
        """A copy of the phase (current values) whose atoms ``labels`` (default: all) are
        anisotropic, starting from the U^{ij} of their Uiso (atoms already anisotropic keep
        their U^{ij})."""
        known = [a.label for a in self.atoms]
        if labels is None:
            labels = known
        if isinstance(labels, str) or not isinstance(labels, (list, tuple, set)):
            raise ArgumentTypeError(f"labels must be a list of atom labels, got {labels!r}")
        unknown = [lb for lb in labels if lb not in known]
        if unknown:
            raise ValidationError(f"anisotropic: no atoms {unknown} in phase {self.name}; "
                                  f"atoms: {known}")
        vals = self.group.valuesdict()
        cell = self.cell_values()
        atoms = []
        for i, at in enumerate(self.atoms):
            xyz = tuple(float(vals[f"{at.name}.{c}"]) for c in "xyz")
            uiso, occ = float(vals[f"{at.name}.uiso"]), float(vals[f"{at.name}.occ"])
            if at.uij is not None:
                uij = tuple(float(vals[f"{at.name}.{n}"]) for n in _adp.UIJ_NAMES)
            elif at.label in labels:
                uij = tuple(_adp.iso_uij(uiso, cell))
            else:
                uij = None
            atoms.append(Atom(at.label, at.element, xyz, uiso=uiso, occ=occ, uij=uij))
        out = Phase(self.name, cell, self.spacegroup, atoms)
        out.adp = self.adp
        if hasattr(self, "source_file"):
            out.source_file = self.source_file
        return out

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_cif(cls, path: str | os.PathLike, *, block: int | str = 0,
                 name: str | None = None) -> "Phase":
        """Read a phase from a CIF: CIF1 or CIF2/DDLm tags, as any program writes them.

        Both tag styles are read (``_cell_length_a`` and ``_cell.length_a``,
        ``_symmetry_space_group_name_H-M`` and ``_space_group.name_H-M_alt``,
        ``_atom_site_fract_x`` and ``_atom_site.fract_x``), so files from EasyDiffraction,
        cryspy, FullProf, GSAS-II, VESTA or the ICSD load alike. The space-group setting comes
        from the symmetry-operation loop when the file has one (so ``Fddd`` with its operators
        written for origin choice 2 is read as ``F d d d:2``), else from the Hall symbol, else
        from the Hermann-Mauguin symbol with ``_space_group.IT_coordinate_system_code`` (origin
        choice 1/2, hexagonal or rhombohedral axes). Cell parameters the crystal system fixes
        may be left out (a cubic file may give ``a`` only). Displacements are read as U_iso or
        B_iso (B = 8π²U; ``adp_type`` decides when both are given) and kept as Uiso; the
        phase remembers which the file used (:attr:`adp`) and writes its CIF the same way.
        The phase is named ``name``, else ``_pd_phase_name``, else the data block's name.

        Raises
        ------
        DataFormatError
            For a CIF without symmetry, without atoms, with a missing cell parameter that the
            crystal system does not fix (the message names the tag), or with an unknown
            element (the message names the file and, where possible, the line).
        """
        from ._cif import read_cif_structure

        path = as_path(path, "path")
        if isinstance(block, bool) or not isinstance(block, (int, str)):
            raise ArgumentTypeError(f"block must be an int (position) or a str (data block "
                                    f"name), got {block!r}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValidationError(f"name must be a non-empty str or None, got {name!r}")
        if not path.exists():
            raise FileNotFoundError(2, "no such CIF file", str(path))
        if path.is_dir():
            raise IsADirectoryError(21, "a folder, not a CIF file", str(path))
        cs = read_cif_structure(path, block)
        try:
            check_cell(cs.cell)
        except (ValidationError, ArgumentTypeError) as exc:
            raise DataFormatError(str(exc), path=path,
                                  line=_cif_lineno(path, "_cell")) from None
        atoms = [Atom(a["label"], a["element"], a["xyz"], uiso=a["uiso"], occ=a["occ"],
                      uij=a["uij"])
                 for a in cs.atoms]
        try:
            phase = cls(name if name is not None else cs.name, cs.cell, cs.spacegroup, atoms)
        except (ValidationError, ArgumentTypeError) as exc:
            raise DataFormatError(str(exc), path=path) from None
        phase.source_file = str(path)
        phase.adp = cs.adp
        return phase

    def _site_setup(self) -> None:
        n_ops = len(self.rot)
        self.site_order = np.zeros(len(self.atoms), dtype=int)
        self.site_projector = []
        self.site_rotations = []
        for at in self.atoms:
            x = np.array(at.xyz, dtype=float)
            images = np.einsum("gij,j->gi", self.rot, x) + self.tran
            diff = images - x
            diff -= np.round(diff)
            on = np.all(np.abs(diff) < _TOL, axis=1)
            self.site_order[self.atoms.index(at)] = int(on.sum())
            self.site_rotations.append(self.rot[on])
            P = self.rot[on].mean(axis=0)
            # symmetrise the starting position onto the special position
            img = images[on] - np.round(images[on] - x)
            at.xyz = tuple(float(v) for v in img.mean(axis=0))
            self.site_projector.append(P)
        self.multiplicity = n_ops // self.site_order
        #: Indices of the anisotropic atoms (their U^{ij} follow the atoms in local vectors).
        self.aniso = [i for i, at in enumerate(self.atoms) if at.uij is not None]

    def _scattering_setup(self) -> None:
        self.z = np.array([gemmi.Element(a.element).atomic_number for a in self.atoms])
        self.elements = [gemmi.Element(a.element).name for a in self.atoms]

    def cell_mass(self, occupancies=None) -> float:
        """Mass of the unit cell's contents, Z·M (g/mol): Σ occupancy · multiplicity · mass.

        ``occupancies`` (one per atom) default to the group's current values.
        """
        if occupancies is None:
            vals = self.group.valuesdict()
            occupancies = [vals[f"{a.name}.occ"] for a in self.atoms]
        w = np.array([gemmi.Element(e).weight for e in self.elements])
        return float(np.sum(np.asarray(occupancies, dtype=float) * self.multiplicity * w))

    def _make_group(self, cell: np.ndarray) -> ParameterGroup:
        g = ParameterGroup(self.name, description=f"crystal structure of {self.name} "
                                                  f"({self.spacegroup.xhm()})")
        units = ("Å",) * 3 + ("deg",) * 3
        system = self.spacegroup.crystal_system_str()
        given = np.asarray(cell, dtype=float)
        cell = cell.copy()
        if system in ("orthorhombic", "tetragonal", "cubic"):
            cell[3:] = 90.0
        elif system in ("hexagonal",) or (system == "trigonal" and self.spacegroup.ext != "R"):
            cell[3:5] = 90.0
            cell[5] = 120.0
        for n, v, u in zip(CELL_NAMES, cell, units):
            g.add(n, float(v), unit=u, description="lattice parameter")
        if system in ("tetragonal", "cubic", "hexagonal", "trigonal"):
            g.tie("b", to="a")
        if system == "cubic" or (system == "trigonal" and self.spacegroup.ext == "R"):
            g.tie("c", to="a")
        if system == "trigonal" and self.spacegroup.ext == "R":
            g.tie(["beta", "gamma"], to="alpha")
        elif system == "monoclinic":
            off = [n for n, v in zip(CELL_NAMES[3:], cell[3:]) if abs(v - 90) > 1e-6]
            keep = off[0] if off else "beta"
            g.fix(*[n for n in CELL_NAMES[3:] if n != keep])
        elif system != "triclinic":
            g.fix("alpha", "beta", "gamma")
        self.crystal_system = system
        held = np.array([g.valuesdict()[n] for n in CELL_NAMES])
        if np.any(np.abs(held - given)[:3] > 1e-3 * given[:3]) \
                or np.any(np.abs(held - given)[3:] > 1e-2):
            # the crystal system's constraints changed the cell the user gave: say so
            warnings.warn(f"phase {self.name}: the cell {given.tolist()} does not have the "
                          f"symmetry of {self.spacegroup.xhm()} ({system}); using "
                          f"{np.round(held, 6).tolist()}", UserWarning, stacklevel=3)
        for i, at in enumerate(self.atoms):
            ag = ParameterGroup(at.name, description=f"atom {at.label} ({at.element})")
            for k, v in enumerate(at.xyz):
                ag.add("xyz"[k], float(v), unit="", description="fractional coordinate")
            ag.add("uiso", float(at.uiso), unit="Å²", description="isotropic displacement")
            ag.add("occ", float(at.occ), vary=False, min=0.0, unit="",
                   description="site occupancy")
            self._site_ties(ag, i)
            if at.uij is not None:
                _adp.add_uij_parameters(ag, at.uij, self.site_rotations[i], cell)
            g.add_group(ag)
            if at.uij is not None:
                angles_fixed = not any(n in g.free_names for n in CELL_NAMES[3:])
                _adp.link_ueq(g, ag, cell, angles_fixed)
        return g

    def _site_ties(self, ag: ParameterGroup, i: int) -> None:
        """Coordinates allowed by the site symmetry: ties, fixes or constraints."""
        P = self.site_projector[i]
        x0 = np.array(self.atoms[i].xyz)
        u, s, _ = np.linalg.svd(P)
        r = int(np.sum(s > 1e-8))
        names = "xyz"
        if r == 3:
            return
        if r == 0:
            ag.fix("x", "y", "z")
            return
        Q = u[:, :r]
        # choose r coordinates as free by pivoted elimination
        free: list[int] = []
        rem = Q.copy()
        for _ in range(r):
            cand = [j for j in range(3) if j not in free]
            best = max(abs(rem[jj]).max() for jj in cand)
            j = next(jj for jj in cand if abs(rem[jj]).max() >= best - 1e-9)
            free.append(j)
            col = int(np.argmax(np.abs(rem[j])))
            rem = rem - np.outer(rem[:, col] / rem[j, col], rem[j])
        free.sort()
        M = Q @ np.linalg.inv(Q[free])
        M[np.abs(M) < 1e-9] = 0.0
        for d in range(3):
            if d in free:
                continue
            coef = M[d]
            nz = [k for k in range(r) if coef[k] != 0.0]
            if not nz:
                ag.fix(names[d])
            elif len(nz) == 1:
                src = free[nz[0]]
                m = float(np.round(coef[nz[0]], 9))
                ag.tie(names[d], to=names[src], scale=m, offset=float(x0[d] - m * x0[src]))
            else:
                expr = " + ".join(f"({float(coef[k]):.9g})*{names[free[k]]}" for k in nz)
                off = float(x0[d] - sum(coef[k] * x0[free[k]] for k in nz))
                ag.constrain(names[d], f"{expr} + ({off:.12g})")

    # -- reflections ------------------------------------------------------------------------------
    def reflections(self, dmin: float, cell=None) -> tuple[np.ndarray, np.ndarray]:
        """Unique reflections with d >= dmin (systematic absences removed).

        Returns
        -------
        hkl : ndarray of int, shape (n, 3)
        multiplicity : ndarray of int, shape (n,)
            Powder multiplicity (size of the orbit of hkl under the Laue group).
        """
        dmin = check_float(dmin, "dmin", minimum=0.0, low_open=True)
        if cell is None:
            cell = self.cell_values()
        uc = gemmi.UnitCell(*[float(v) for v in cell])
        hkl = np.asarray(gemmi.make_miller_array(uc, self.spacegroup, float(dmin)), dtype=int)
        hkl = hkl[np.any(hkl != 0, axis=1)]
        rot = np.rint(self.rot).astype(int)
        orb = np.einsum("ni,gij->ngj", hkl, rot)
        orb = np.concatenate([orb, -orb], axis=1)
        # distinct members of each orbit: one integer key per (h, k, l), sorted per row
        span = 2 * int(np.abs(orb).max(initial=0)) + 1
        key = np.sort(((orb[..., 0] * span) + orb[..., 1]) * span + orb[..., 2], axis=1)
        mult = 1 + np.count_nonzero(np.diff(key, axis=1), axis=1)
        return hkl, mult

    def cell_values(self) -> np.ndarray:
        """Current lattice parameters (respecting ties)."""
        vals = self.group.valuesdict()
        return np.array([vals[n] for n in CELL_NAMES])

    # -- structure factors ----------------------------------------------------------------------
    def scattering(self, radiation: str, wavelength: float, *, table: dict | None = None,
                   anomalous: bool = True) -> dict:
        """Per-atom scattering data for ``radiation`` ('xray' or 'neutron').

        Parameters
        ----------
        radiation : {'xray', 'neutron'}
        wavelength : float
            Å; sets f′, f″ (Cromer-Liberman, gemmi) for X-rays.
        table : dict, optional
            Values that replace gemmi's, per element symbol: ``{"Cu": {"fp": -1.9,
            "fpp": 0.6}}`` (X-ray f′, f″), ``{"O": {"f0": [a1, a2, a3, a4, b1, b2, b3, b4,
            c]}}`` (X-ray form factor as four Gaussians plus a constant, s = sin θ/λ in
            Å⁻¹), ``{"O": {"b": 5.803}}`` (neutron coherent length, fm). Elements not in the
            phase are ignored (a pattern's table may serve several phases).
        anomalous : bool
            Use gemmi's f′, f″ for X-rays (False: zero unless given in ``table``).

        Returns
        -------
        dict
            ``kind`` and per-atom arrays: ``a`` (n, 4), ``b`` (n, 4), ``c``, ``fp``, ``fpp``
            for X-rays, ``b`` for neutrons.
        """
        if radiation not in SCATTERING_KEYS:
            raise ValidationError(f"radiation must be 'xray' or 'neutron', got {radiation!r}")
        table = check_scattering_table(table, radiation)
        els = self.elements
        if radiation == "neutron":
            b = np.array([table.get(e, {}).get("b", gemmi.Element(e).neutron92.get_coefs()[0])
                          for e in els], dtype=float)
            return {"kind": "neutron", "b": b}
        wavelength = check_float(wavelength, "wavelength", minimum=0.0, low_open=True)
        energy = gemmi.hc / wavelength
        coefs = np.array([table[e]["f0"] if "f0" in table.get(e, {})
                          else gemmi.Element(e).it92.get_coefs() for e in els], dtype=float)
        fp = np.zeros(len(els))
        fpp = np.zeros(len(els))
        for i, (e, z) in enumerate(zip(els, self.z)):
            if anomalous:
                fp[i], fpp[i] = gemmi.cromer_liberman(z=int(z), energy=energy)
            fp[i] = table.get(e, {}).get("fp", fp[i])
            fpp[i] = table.get(e, {}).get("fpp", fpp[i])
        # the International Tables coefficients are for s = sin(theta)/lambda; the code below
        # works with s2 = q/4 = s**2, so they apply as they are
        return {"kind": "xray", "a": coefs[:, :4], "b": coefs[:, 4:8], "c": coefs[:, 8],
                "fp": fp, "fpp": fpp}

    def structure_factor2(self, hkl: np.ndarray, q: np.ndarray, atoms: np.ndarray,
                          scat: dict, *, grad: bool = True, images: np.ndarray | None = None):
        """Squared structure factor (Friedel-averaged) with derivatives.

        Parameters
        ----------
        hkl : (n, 3) int
        q : (n,) float
            1/d² (Å⁻²).
        atoms : (n_atoms, 5) float
            Columns x, y, z, uiso, occ.
        scat : dict
            From :meth:`scattering`.
        grad : bool
            Also return derivatives.
        images : (n, n_ops, n_atoms), optional
            A factor on each symmetry image of each atom (the anisotropic Debye-Waller
            factors of :mod:`._adp`).

        Returns
        -------
        F2 : (n,)
        dF2_dq : (n,)
        dF2_datoms : (n, n_atoms, 5)
        dF2_dlog_images : (n, n_ops, n_atoms)
            Only with ``images``: derivatives with respect to the logarithm of each factor
            (None without ``grad``).
        """
        s2 = q / 4.0
        if scat["kind"] == "xray":
            xa, xb = scat["a"], scat["b"]
            e = np.exp(-np.multiply.outer(s2, xb))                # (n, na, 4)
            f0 = (e * xa).sum(-1) + scat["c"]                      # (n, na)
            df0_ds2 = -(e * xa * xb).sum(-1)
            fr = f0 + scat["fp"]
            fi = np.broadcast_to(scat["fpp"], fr.shape)
        else:
            fr = np.broadcast_to(scat["b"], (len(q), len(self.atoms)))
            fi = np.zeros_like(fr)
            df0_ds2 = np.zeros_like(fr)
        xyz = atoms[:, :3]
        U = atoms[:, 3]
        occ = atoms[:, 4]
        T = np.exp(-8.0 * np.pi ** 2 * np.multiply.outer(s2, U))  # (n, na)
        site = 1.0 / self.site_order                              # weight of each image
        w = occ * site * T                                        # (n, na)
        # image sums (n, na), their coordinate derivatives (n, na, 3), image terms (n, g, na)
        Gr, Gi, dGr, dGi, cs, sn = phase_sums(
            np.ascontiguousarray(hkl, dtype=np.float64), self.rot, self.tran,
            np.ascontiguousarray(xyz, dtype=np.float64),
            np.zeros((0, 0, 0)) if images is None
            else np.ascontiguousarray(images, dtype=np.float64), bool(grad))
        # F(h) = sum w (fr + i fi)(Gr + i Gi);  F(-h) = sum w (fr + i fi)(Gr - i Gi)
        Ap = (w * (fr * Gr - fi * Gi)).sum(1)
        Bp = (w * (fr * Gi + fi * Gr)).sum(1)
        Am = (w * (fr * Gr + fi * Gi)).sum(1)
        Bm = (w * (fi * Gr - fr * Gi)).sum(1)
        F2 = 0.5 * (Ap ** 2 + Bp ** 2 + Am ** 2 + Bm ** 2)
        if not grad:
            return (F2, None, None) + ((None,) if images is not None else ())
        # derivative helpers: dF2 = Ap dAp + Bp dBp + Am dAm + Bm dBm
        # w.r.t. w_a (per atom, per reflection)
        dF2_dw = (Ap[:, None] * (fr * Gr - fi * Gi) + Bp[:, None] * (fr * Gi + fi * Gr)
                  + Am[:, None] * (fr * Gr + fi * Gi) + Bm[:, None] * (fi * Gr - fr * Gi))
        # w.r.t. Gr, Gi
        dF2_dGr = w * (Ap[:, None] * fr + Bp[:, None] * fi + Am[:, None] * fr + Bm[:, None] * fi)
        dF2_dGi = w * (-Ap[:, None] * fi + Bp[:, None] * fr + Am[:, None] * fi - Bm[:, None] * fr)
        # w.r.t. fr (through f0(s))
        dF2_dfr = w * (Ap[:, None] * Gr + Bp[:, None] * Gi + Am[:, None] * Gr - Bm[:, None] * Gi)
        out = np.empty((len(q), len(self.atoms), 5))
        out[:, :, :3] = dF2_dGr[:, :, None] * dGr + dF2_dGi[:, :, None] * dGi
        out[:, :, 3] = dF2_dw * w * (-8.0 * np.pi ** 2 * s2[:, None])
        out[:, :, 4] = dF2_dw * (site * T)
        dw_ds2 = w * (-8.0 * np.pi ** 2 * U)
        dF2_ds2 = (dF2_dw * dw_ds2 + dF2_dfr * df0_ds2).sum(1)
        if images is not None:
            return F2, dF2_ds2 / 4.0, out, dF2_dGr[:, None] * cs + dF2_dGi[:, None] * sn
        return F2, dF2_ds2 / 4.0, out

    # -- output --------------------------------------------------------------------------------
    def to_cif(self, group: ParameterGroup | None = None, *, stderr: dict | None = None,
               adp: str | None = None) -> str:
        """The structure as CIF text (values from ``group``, default the phase's own group).

        ``stderr`` maps slot names (``"a"``, ``"Pb.x"``) to standard errors written in
        parentheses. ``adp`` chooses ``_atom_site_U_iso_or_equiv`` ('U') or
        ``_atom_site_B_iso_or_equiv`` ('B', values and esds times 8π²); default
        :attr:`adp`, the form the phase was read in.
        """
        adp = self.adp if adp is None else adp
        if adp not in ("U", "B"):
            raise ValidationError(f"adp must be 'U' or 'B' (B = 8π²U), got {adp!r}")
        g = group if group is not None else self.group
        vals = g.valuesdict()
        stderr = stderr or {}
        if not isinstance(stderr, dict):
            raise ArgumentTypeError(f"stderr must be a dict of slot name -> standard error, "
                                    f"got {type(stderr).__name__}")
        for k, v in stderr.items():
            if v is not None and (isinstance(v, (str, bytes, bool))
                                  or not isinstance(v, (int, float, np.number))):
                raise ArgumentTypeError(f"stderr[{k!r}] must be a number or None, got {v!r}")

        def fmt(name, v, factor=1.0):
            s = stderr.get(name)
            return format_esd(v * factor, None if s is None else s * factor)

        lines = [f"data_{self.name}", "_audit_creation_method  'sciTie.diffraction'"]
        for n, tag in zip(CELL_NAMES, ("length_a", "length_b", "length_c", "angle_alpha",
                                        "angle_beta", "angle_gamma")):
            lines.append(f"_cell_{tag}  {fmt(n, vals[n])}")
        lines.append(f"_symmetry_space_group_name_H-M  '{self.spacegroup.hm}'")
        lines.append(f"_space_group_IT_number  {self.spacegroup.number}")
        lines += ["loop_", "_space_group_symop_operation_xyz"]
        lines += [f"  '{op.triplet()}'" for op in self.spacegroup.operations()]
        lines += ["loop_", "_atom_site_label", "_atom_site_type_symbol", "_atom_site_fract_x",
                  "_atom_site_fract_y", "_atom_site_fract_z", f"_atom_site_{adp}_iso_or_equiv",
                  "_atom_site_occupancy", "_atom_site_symmetry_multiplicity",
                  "_atom_site_adp_type"]
        for at, m in zip(self.atoms, self.multiplicity):
            cols = [fmt(f"{at.name}.{p}", vals[f"{at.name}.{p}"],
                        B_PER_U if (p == "uiso" and adp == "B") else 1.0) for p in ATOM_PARAMS]
            lines.append(f"{at.label} {at.element} " + " ".join(cols[:3]) + f" {cols[3]} "
                         f"{cols[4]} {m} {adp}{'ani' if at.uij is not None else 'iso'}")
        lines += _adp.cif_aniso_loop(self, vals, fmt, adp)
        return "\n".join(lines) + "\n"
