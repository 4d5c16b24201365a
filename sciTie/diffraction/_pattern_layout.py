"""Where each slot of a pattern lives in its local vector, and the vector's names.

A pattern's *local vector* holds every slot its calculation reads: per phase the cell (6)
and the atoms (5 each: x, y, z, occ, uiso), then the pattern's own parameters (``scale``,
the instrument's and the absorption's), per phase the pattern's terms (:data:`PHASE_PARAMS`),
the background coefficients and the background peaks; last, per phase, the U^{ij} of its
anisotropic atoms (6 each) and the preferred-orientation terms it has in this pattern.
Derivative columns follow the same order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ArgumentTypeError, UnknownNameError
from ._adp import UIJ_NAMES
from ._background import BACKGROUND_PEAK_PARAMS
from ._crystal import ATOM_PARAMS, CELL_NAMES

__all__ = ["Layout", "PHASE_PARAMS", "make_layout", "local_vector", "local_names",
           "split_vector"]

#: Parameters of one phase in one pattern (GSAS-II's histogram-and-phase terms).
PHASE_PARAMS = ("fraction", "size", "mustrain", "mustrain_axial", "D11", "D22", "D33", "D12",
                "D13", "D23")


@dataclass
class Layout:
    """Slices of the local vector: per phase ``cell``, ``atoms`` and ``hap`` (the pattern's
    terms of the phase), the pattern's parameters, ``bkg`` and ``bkpk``, per phase ``adp``
    (U^{ij} of anisotropic atoms) and ``po`` (preferred orientation, named ``po_names``);
    ``names`` are the pattern's parameters in order, ``n`` the length."""

    cell: list = field(default_factory=list)
    atoms: list = field(default_factory=list)
    pattern: slice = field(default_factory=lambda: slice(0, 0))
    hap: list = field(default_factory=list)
    bkg: slice = field(default_factory=lambda: slice(0, 0))
    bkpk: slice = field(default_factory=lambda: slice(0, 0))
    adp: list = field(default_factory=list)
    po: list = field(default_factory=list)
    po_names: list = field(default_factory=list)
    names: tuple = ()
    n: int = 0

    def columns(self) -> dict:
        """Local column of each of the pattern's parameters."""
        return {n: self.pattern.start + i for i, n in enumerate(self.names)}


def make_layout(phases, pattern_names, n_background: int, n_peaks: int,
                po_names=None) -> Layout:
    """The layout of a pattern of ``phases`` with these pattern parameters and background
    (``po_names``: the preferred-orientation parameters of each phase, default none)."""
    lay = Layout(names=tuple(pattern_names),
                 po_names=[tuple(n) for n in (po_names or [()] * len(phases))])
    o = 0
    for ph in phases:
        lay.cell.append(slice(o, o + 6))
        o += 6
        lay.atoms.append(slice(o, o + 5 * len(ph.atoms)))
        o += 5 * len(ph.atoms)
    lay.pattern = slice(o, o + len(lay.names))
    o += len(lay.names)
    for _ in phases:
        lay.hap.append(slice(o, o + len(PHASE_PARAMS)))
        o += len(PHASE_PARAMS)
    lay.bkg = slice(o, o + n_background)
    o += n_background
    lay.bkpk = slice(o, o + 4 * n_peaks)
    o += 4 * n_peaks
    for ph in phases:
        lay.adp.append(slice(o, o + 6 * len(ph.aniso)))
        o += 6 * len(ph.aniso)
    for names in lay.po_names:
        lay.po.append(slice(o, o + len(names)))
        o += len(names)
    lay.n = o
    return lay


def local_vector(pattern, values=None) -> np.ndarray:
    """The local vector of ``pattern`` from its phases' and its own groups (or ``values``,
    the :class:`~sciTie.SlotValues` of a tree holding them as children)."""
    lay = pattern.layout
    out = np.empty(lay.n)
    if values is not None and not callable(getattr(values, "__getitem__", None)) \
            or isinstance(values, (str, bytes)):
        raise ArgumentTypeError(f"values must be the SlotValues of a group holding the "
                                f"phases and pattern {pattern.name!r} (group.valuesdict()), got "
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

    for k, ph in enumerate(pattern.phases):
        sv = source(ph.group)
        out[lay.cell[k]] = [sv[n] for n in CELL_NAMES]
        out[lay.atoms[k]] = [sv[f"{a.name}.{q}"] for a in ph.atoms for q in ATOM_PARAMS]
    pv = source(pattern.group)
    out[lay.pattern] = [pv[n] for n in lay.names]
    for k, ph in enumerate(pattern.phases):
        out[lay.hap[k]] = [pv[f"{ph.name}.{n}"] for n in PHASE_PARAMS]
    out[lay.bkg] = np.asarray(pv["bkg"], dtype=float).reshape(-1)
    if len(pattern.background_peaks):
        out[lay.bkpk] = np.concatenate([np.asarray(pv[f"bkpk.{n}"], dtype=float).reshape(-1)
                                        for n in BACKGROUND_PEAK_PARAMS])
    for k, ph in enumerate(pattern.phases):
        if ph.aniso:
            sv = source(ph.group)
            out[lay.adp[k]] = [sv[f"{ph.atoms[i].name}.{u}"] for i in ph.aniso
                               for u in UIJ_NAMES]
        out[lay.po[k]] = [pv[f"{ph.name}.{n}"] for n in lay.po_names[k]]
    return out


def local_names(pattern, structures: dict | None = None, prefix: str | None = None) -> list:
    """Names of the local-vector entries as slot names of a group that holds them."""
    prefix = pattern.name if prefix is None else prefix
    structures = dict(structures or {})
    names: list[str] = []
    for ph in pattern.phases:
        s = structures.get(ph.name, ph.name)
        s = f"{s}." if s else ""
        names += [s + n for n in CELL_NAMES]
        names += [f"{s}{a.name}.{q}" for a in ph.atoms for q in ATOM_PARAMS]
    names += [f"{prefix}.{n}" for n in pattern.layout.names]
    for ph in pattern.phases:
        names += [f"{prefix}.{ph.name}.{n}" for n in PHASE_PARAMS]
    names += [f"{prefix}.bkg[{i}]" for i in range(pattern.n_background)]
    for n in BACKGROUND_PEAK_PARAMS:
        names += [f"{prefix}.bkpk.{n}[{i}]" for i in range(len(pattern.background_peaks))]
    for ph in pattern.phases:
        s = structures.get(ph.name, ph.name)
        s = f"{s}." if s else ""
        names += [f"{s}{ph.atoms[i].name}.{u}" for i in ph.aniso for u in UIJ_NAMES]
    for ph, po in zip(pattern.phases, pattern.layout.po_names):
        names += [f"{prefix}.{ph.name}.{n}" for n in po]
    return names


def split_vector(pattern, v: np.ndarray) -> dict:
    """The local vector as named pieces (per phase: cell, atoms, terms; pattern; bkg)."""
    lay = pattern.layout
    return {"phases": {ph.name: {"cell": v[lay.cell[k]],
                                 "atoms": v[lay.atoms[k]].reshape(-1, 5),
                                 "uij": v[lay.adp[k]].reshape(-1, 6),
                                 "terms": {**dict(zip(PHASE_PARAMS, v[lay.hap[k]])),
                                           **dict(zip(lay.po_names[k], v[lay.po[k]]))}}
                       for k, ph in enumerate(pattern.phases)},
            "pattern": dict(zip(lay.names, v[lay.pattern])),
            "bkg": v[lay.bkg], "bkpk": v[lay.bkpk].reshape(4, -1)}
