"""One pattern's share of a parametric refinement's normal equations, and their sums.

Below both places that compute them: this process (:mod:`._parametric`) and the workers of
a Dask cluster (:mod:`._series_dask`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._blockarrow import pattern_blocks
from ._pattern import PowderPattern

__all__ = ["parametric_pattern_blocks", "Linearization"]


def parametric_pattern_blocks(pattern: PowderPattern, v: np.ndarray, G_rows: np.ndarray,
                              shared: np.ndarray, local: np.ndarray):
    """One pattern's normal-equation blocks at its local vector ``v``.

    ``G_rows`` is the pattern's rows of the tie map restricted to its columns (the shared ones
    ``shared`` first, then its own ``local``), shape ``(n_local_slots, len(shared) +
    len(local))``. A plain function of picklable objects: the unit of work a cluster maps.
    """
    active = np.flatnonzero(np.any(G_rows != 0, axis=1))
    y, J = pattern.evaluate(v, grad=True, cols=active)
    r = (pattern.obs - y) / pattern.sigma
    Jf = -(J / pattern.sigma[:, None]) @ G_rows[active]
    ns = len(shared)
    return pattern_blocks(Jf[:, :ns], Jf[:, ns:], r)


@dataclass
class Linearization:
    """The shared sums of the normal equations at one point, and each pattern's diagonal
    and gradient (its own parameters)."""

    A_ss: np.ndarray
    g_s: np.ndarray
    chi2: float
    n: int
    diag_ll: list
    g_l: list
