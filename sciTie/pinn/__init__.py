"""Periodic physics-informed neural networks (PyTorch).

Periodicity ``u(a, t) == u(b, t)`` is a tie between the two ends of the interval. It can be
imposed exactly by a periodic embedding of ``x`` (``mode="hard"``), by a penalty
(``mode="soft"``), or through a boundary network shared by both ends (``mode="shared"``).
"""
from ._embedding import FourierTimeFeatures, PeriodicEmbedding, PeriodicTimeFeatures
from ._etdrk4 import (etdrk4_coefficients, etdrk4_solve, fourier_interpolate,
                      spectral_derivative, wavenumbers)
from ._fields import Fields
from ._network import BoundaryNetwork, PINNNetwork
from ._problems import PDEProblem, allen_cahn, convection, semilinear_reference
from ._trainer import PeriodicPINN, TrainingDivergedError, budget_multiplier
from ._tying import periodic_tie_group
from ._plotting import plot_result
from ._recipes import recommended_settings

__all__ = [
    "PeriodicEmbedding", "FourierTimeFeatures", "PeriodicTimeFeatures",
    "etdrk4_solve", "etdrk4_coefficients", "spectral_derivative", "fourier_interpolate",
    "wavenumbers", "Fields", "PINNNetwork", "BoundaryNetwork", "PDEProblem", "convection",
    "allen_cahn", "semilinear_reference", "PeriodicPINN", "TrainingDivergedError",
    "budget_multiplier", "periodic_tie_group", "plot_result", "recommended_settings",
]
