"""Slot references and the links that tie one slot to others (the pieces of the tie map)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ValidationError
from .expressions import Expression

if TYPE_CHECKING:  # pragma: no cover
    from .group import ParameterGroup

_SELECTION = re.compile(r"^\s*(?P<path>[A-Za-z]\w*(?:\.[A-Za-z]\w*)*)\s*(?:\[(?P<index>[^\[\]]*)\])?\s*$")

FREE, FIXED, LINEAR, EXPR = 0, 1, 2, 3


@dataclass(frozen=True)
class _SlotRef:
    """One slot, addressed structurally (never by parsing a display string)."""

    group: "ParameterGroup"
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
    declared_in: "ParameterGroup"


def _parse_index(text: str, shape: tuple[int, ...], where: str) -> tuple:
    """Turn ``"1, 0:2"`` into a numpy index for an array of ``shape``."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if len(parts) > len(shape):
        raise ValidationError(f"{where}: {len(parts)} indices given for a parameter of shape {shape}")
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
