"""Three user-defined tying groups, built without touching library code.

This file is included in the documentation (``extending.rst``) and run by the test suite
(``tests/test_extending.py``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sciTie import ParameterGroup


def cubic_cell(a: float, *, name: str = "cell") -> ParameterGroup:
    """A cubic lattice: six cell parameters, one free value (a = b = c, angles 90)."""
    cell = ParameterGroup(name, description="cubic cell")
    for edge in "abc":
        cell.add(edge, a, min=0.0, unit="Å")
    for angle in ("alpha", "beta", "gamma"):
        cell.add(angle, 90.0, vary=False, unit="deg")
    cell.tie(["b", "c"], to="a")
    return cell


def tied_states(means: np.ndarray, groups: Sequence[Sequence[int]],
                *, name: str = "emission") -> ParameterGroup:
    """Per-state emission means where the states of each group share one mean vector."""
    means = np.asarray(means, dtype=float)
    emission = ParameterGroup(name)
    emission.add("mu", means)
    for members in groups:
        first, *rest = members
        if rest:
            emission.tie([f"mu[{k}]" for k in rest], to=f"mu[{first}]")
    return emission


class LinearThermalLattice(ParameterGroup):
    """Lattice parameter a(T) = a0 + a1 * T, read by one child group per pattern.

    Each pattern ``p<i>`` gets its own slot ``a`` (what its model reads), constrained to the
    two shared parameters: N patterns, two free parameters.
    """

    def __init__(self, temperatures: Sequence[float], a0: float, a1: float = 0.0,
                 *, name: str = "thermal") -> None:
        super().__init__(name, description="a(T) = a0 + a1*T")
        self.add("a0", a0, unit="Å")
        self.add("a1", a1, unit="Å/K")
        self.temperatures = [float(t) for t in temperatures]
        for i, temperature in enumerate(self.temperatures):
            pattern = self.add_group(ParameterGroup(f"p{i}"))
            pattern.add("a", a0 + a1 * temperature, unit="Å")
            self.constrain(f"p{i}.a", f"a0 + a1*{temperature!r}")
