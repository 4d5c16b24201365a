"""Slot references and the links that tie one slot to others (the pieces of the tie map)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError, UnknownNameError, ValidationError
from .expressions import Expression

_SELECTION = re.compile(r"^\s*(?P<path>[A-Za-z]\w*(?:\.[A-Za-z]\w*)*)\s*(?:\[(?P<index>[^\[\]]*)\])?\s*$")

@dataclass(frozen=True)
class _SlotRef:
    """One slot, addressed structurally (never by parsing a display string)."""

    group: Any  # the ParameterGroup that owns the parameter
    param: str
    flat: int

    @property
    def key(self) -> tuple[int, str, int]:
        return (id(self.group), self.param, self.flat)


@dataclass
class _LinearLink:
    """``slot = offset + Σ scales[i] * targets[i]`` (one target for a plain tie)."""

    targets: tuple[_SlotRef, ...]
    scales: tuple[float, ...]
    offset: float
    label: str  # how the user wrote the target(s), for reports


@dataclass
class _ExprLink:
    expression: Expression
    declared_in: Any  # the ParameterGroup whose names the expression uses


@dataclass(eq=False)
class _VectorFunction:
    """``outputs = function(references)``: several slots computed together from others."""

    function: Any            # (n_in,) -> (n_out,)
    jacobian: Any            # (n_in,) -> (n_out, n_in)
    references: tuple[str, ...]
    declared_in: Any         # the ParameterGroup whose names ``references`` uses
    label: str               # e.g. 'stationary(transmat)', for reports
    n_outputs: int


@dataclass
class _FunctionLink:
    """Output ``index`` of a :class:`_VectorFunction`."""

    block: _VectorFunction
    index: int


def _parse_index(text: str, shape: tuple[int, ...], where: str) -> tuple:
    """Turn ``"1, 0:2"`` into a numpy index for an array of ``shape``."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if len(parts) > len(shape):
        raise ValidationError(
            f"{where}: {len(parts)} indices given for a parameter of shape {shape}")
    index: list[Any] = []
    for part in parts:
        if re.fullmatch(r"-?\d+", part):
            index.append(int(part))
        elif re.fullmatch(r"(-?\d+)?:(-?\d+)?", part):
            lo, hi = part.split(":")
            index.append(slice(int(lo) if lo else None, int(hi) if hi else None))
        else:
            raise ValidationError(f"{where}: index {part!r} is not an integer or a slice")
    return tuple(index)


def _transposed(target: np.ndarray, transpose: Any, to: str) -> np.ndarray:
    """``target`` (an array of slot references) with its axes permuted as ``transpose`` says."""
    if transpose is None or isinstance(transpose, (bool, np.bool_)):
        if not transpose:
            return target
        if target.ndim < 2:
            raise ValidationError(f"tie: transpose=True needs a target with at least two axes; "
                                  f"{to!r} has shape {target.shape}")
        return target.T
    try:
        axes = tuple(int(a) for a in transpose)
        valid = (not isinstance(transpose, str) and sorted(axes) == list(range(target.ndim))
                 and all(isinstance(a, (int, np.integer)) for a in transpose))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValidationError(f"tie: transpose must be True/False or a permutation of the "
                              f"{target.ndim} axes of {to!r} (shape {target.shape}), "
                              f"got {transpose!r}")
    return np.transpose(target, axes)


def descend(group: Any, path: str) -> tuple[Any, str]:
    """The group that holds the last part of a dotted ``path``, and that part."""
    if not isinstance(path, str):
        raise ArgumentTypeError(f"parameter name must be a str, got {type(path).__name__}")
    parts = path.split(".")
    for part in parts[:-1]:
        if part not in group._children:
            raise UnknownNameError(
                f"group {group.name!r} has no child group {part!r} (in {path!r})")
        group = group._children[part]
    return group, parts[-1]


def select_refs(root: Any, name: str) -> np.ndarray:
    """Object array of :class:`_SlotRef` for a name under ``root``, shaped like the selection."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"slot name must be a str, got {type(name).__name__}")
    m = _SELECTION.match(name)
    if m is None:
        raise ValidationError(f"{name!r} is not a parameter or slot name (expected e.g. 'a', "
                              "'mu[1,0]', 'child.a')")
    group, last = descend(root, m.group("path"))
    if last not in group._params:
        known = [prefix + n for prefix, g in root._walk() for n in g._params]
        raise UnknownNameError(
            f"unknown parameter {m.group('path')!r} in group {root.name!r}; known: "
            f"{', '.join(known) or '(none)'}")
    par = group._params[last]
    flat = np.arange(par.size).reshape(par.shape)
    try:
        chosen = flat[_parse_index(m.group("index") or "", par.shape, f"slot {name!r}")]
    except IndexError as exc:
        raise ValidationError(f"slot {name!r}: index out of range: {exc} (parameter "
                              f"{m.group('path')!r} has shape {par.shape})") from None
    out = np.empty(np.shape(chosen), dtype=object)
    for pos, f in np.ndenumerate(chosen):
        out[pos] = _SlotRef(group, last, int(f))
    return out
