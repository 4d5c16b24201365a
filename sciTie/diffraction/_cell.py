"""Cell geometry: the metric tensor of a cell, its volume and their derivatives.

The bottom of the crystal modules: :mod:`._adp`, :mod:`._crystal` and :mod:`._rows` use it,
and it uses none of them.
"""
from __future__ import annotations

import numpy as np

from ..errors import ValidationError

__all__ = ["metric_tensor", "cell_volume", "metric_derivatives"]


def metric_tensor(cell: np.ndarray) -> np.ndarray:
    """Direct-space metric tensor of ``(a, b, c, alpha, beta, gamma)`` (degrees)."""
    a, b, c = cell[:3]
    ca, cb, cg = np.cos(np.radians(cell[3:6]))
    return np.array([[a * a, a * b * cg, a * c * cb],
                     [a * b * cg, b * b, b * c * ca],
                     [a * c * cb, b * c * ca, c * c]])


def cell_volume(cell: np.ndarray, *, grad: bool = False):
    """Cell volume (Å³) of ``(a, b, c, alpha, beta, gamma)``; with ``grad`` also dV/dcell.

    ``V = sqrt(det G)``, so ``dV/dp = V/2 · tr(G⁻¹ dG/dp)`` (angles per degree).
    """
    cell = np.asarray(cell, dtype=float)
    G = metric_tensor(cell)
    det = np.linalg.det(G)
    if not det > 0:
        raise ValidationError(f"cell {cell.tolist()} has no positive volume")
    V = float(np.sqrt(det))
    if not grad:
        return V
    Gi = np.linalg.inv(G)
    dG = metric_derivatives(cell)
    return V, 0.5 * V * np.einsum("ij,cji->c", Gi, dG)


def metric_derivatives(cell: np.ndarray) -> np.ndarray:
    """d G / d cell parameter, shape (6, 3, 3); angles per degree."""
    a, b, c = cell[:3]
    ang = np.radians(cell[3:6])
    ca, cb, cg = np.cos(ang)
    sa, sb, sg = np.sin(ang) * (np.pi / 180.0)
    d = np.zeros((6, 3, 3))
    d[0] = [[2 * a, b * cg, c * cb], [b * cg, 0, 0], [c * cb, 0, 0]]
    d[1] = [[0, a * cg, 0], [a * cg, 2 * b, c * ca], [0, c * ca, 0]]
    d[2] = [[0, 0, a * cb], [0, 0, b * ca], [a * cb, b * ca, 2 * c]]
    d[3] = [[0, 0, 0], [0, 0, -b * c * sa], [0, -b * c * sa, 0]]
    d[4] = [[0, 0, -a * c * sb], [0, 0, 0], [-a * c * sb, 0, 0]]
    d[5] = [[0, -a * b * sg, 0], [-a * b * sg, 0, 0], [0, 0, 0]]
    return d
