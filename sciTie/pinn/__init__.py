"""Periodic physics-informed neural networks (PyTorch).

Periodicity ``u(a) == u(a + L)`` in a space coordinate is a tie between the two faces of the
domain. It can be imposed exactly by a periodic embedding of the coordinate (``mode="hard"``:
a torus in any subset of the coordinates), by a penalty (``mode="soft"``), or through a
boundary network shared by both faces (``mode="shared"``).
"""
from ..errors import TrainingDivergedError
from ._embedding import FourierTimeFeatures, PeriodicEmbedding, PeriodicTimeFeatures
from ._etdrk4 import (etdrk4_coefficients, etdrk4_solve, fourier_interpolate,
                      spectral_derivative, wavenumbers)
from ._fields import Fields
from ._model import PeriodicPINN
from ._network import BoundaryNetwork, PINNNetwork
from ._plotting import plot_result
from ._problems import (PDEProblem, allen_cahn, allen_cahn_2d, convection, gray_scott,
                        kuramoto_sivashinsky, semilinear_reference, taylor_green)
from ._recipes import recommended_settings
from ._tying import periodic_tie_group, window_group

__all__ = [
    "PeriodicEmbedding", "FourierTimeFeatures", "PeriodicTimeFeatures",
    "etdrk4_solve", "etdrk4_coefficients", "spectral_derivative", "fourier_interpolate",
    "wavenumbers", "Fields", "PINNNetwork", "BoundaryNetwork", "PDEProblem", "convection",
    "allen_cahn", "allen_cahn_2d", "taylor_green", "kuramoto_sivashinsky",
    "gray_scott", "semilinear_reference", "PeriodicPINN", "TrainingDivergedError",
    "periodic_tie_group", "window_group", "plot_result",
    "recommended_settings",
]
