"""A hard initial condition: a window's output is its initial values plus a term that
vanishes at the window's start.

``output(x, t) = g(x) + phi(t - t0) N(x, t)`` with ``phi(0) = 0``, so the initial condition
holds by construction and the optimiser cannot trade it against the residual. ``g`` is the
trigonometric interpolant of the initial values on a grid of ``2 K + 1`` points per space
coordinate: periodic (with every derivative) like the network, so periodicity stays exact,
and a torch function of ``x`` whatever the problem's ``initial`` is written in. The first
window interpolates the problem's initial condition, each later one the previous window's
network at its start (the hand-over).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["HardInitial", "HARMONICS"]

#: Harmonics ``K`` of the interpolant per space coordinate, by the number of space
#: coordinates (an evaluation costs ``(2K + 1)^d`` products per output and point).
HARMONICS = {1: 256, 2: 24}


def _basis(theta: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``[1, cos(k theta), sin(k theta)]`` (``k = 1..K``) along a new last axis."""
    kt = theta[..., None] * k
    return torch.cat([torch.ones_like(theta)[..., None], torch.cos(kt), torch.sin(kt)], -1)


class HardInitial(nn.Module):
    """Initial values of one window and the factor ``phi`` that switches the network on.

    Parameters
    ----------
    bounds : sequence of (float, float)
        Start and period of each space coordinate (all periodic).
    window : (float, float)
        The window's time interval ``(t0, t1)``.
    n_outputs : int
        Outputs of the network.
    n_harmonics : int
        Harmonics ``K`` of the interpolant per coordinate (``2 K + 1`` grid points).
    timescale : float, optional
        ``phi = 1 - exp(-(t - t0) / timescale)``; None: ``phi = (t - t0) / (t1 - t0)``.

    Outputs the initial condition does not prescribe (``set_values`` leaves them out) are
    the network's alone.
    """

    def __init__(self, bounds: Sequence[tuple[float, float]], window: tuple[float, float],
                 n_outputs: int, n_harmonics: int, timescale: float | None = None) -> None:
        super().__init__()
        self.starts = [float(a) for a, _ in bounds]
        self.periods = [float(p) for _, p in bounds]
        self.t0, self.t1 = float(window[0]), float(window[1])
        self.timescale = None if timescale is None else float(timescale)
        self.n_harmonics = int(n_harmonics)
        m = 2 * self.n_harmonics + 1
        d = len(self.starts)
        self.register_buffer("k", torch.arange(1, self.n_harmonics + 1, dtype=torch.float64))
        self.register_buffer("coefficients", torch.zeros((n_outputs,) + (m,) * d,
                                                         dtype=torch.float64))
        # 1 where the output's initial value is prescribed (hard), 0 where it is free
        self.register_buffer("prescribed", torch.zeros(n_outputs, dtype=torch.float64))

    @property
    def n_points(self) -> int:
        """Grid points per coordinate."""
        return 2 * self.n_harmonics + 1

    def nodes(self) -> np.ndarray:
        """The interpolation grid, ``((2K + 1)^d, d)``, the first coordinate slowest."""
        m = self.n_points
        axes = [a + p * np.arange(m) / m for a, p in zip(self.starts, self.periods)]
        return np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=1)

    def set_values(self, values: Mapping[int, np.ndarray]) -> None:
        """Interpolate the initial values ``{output index: values at nodes()}``."""
        m, d = self.n_points, len(self.starts)
        theta = torch.as_tensor(2.0 * math.pi * np.arange(m) / m, dtype=torch.float64)
        basis = _basis(theta, self.k.detach().cpu().double())  # (m, m): nodes x functions
        # orthogonal on an odd grid: basis^T basis = diag(m, m/2, ..., m/2)
        norms = torch.full((m,), m / 2.0, dtype=torch.float64)
        norms[0] = m
        project = basis.T / norms[:, None]
        coef = torch.zeros_like(self.coefficients, device="cpu", dtype=torch.float64)
        mask = torch.zeros_like(self.prescribed, device="cpu", dtype=torch.float64)
        for o, v in values.items():
            c = torch.as_tensor(np.asarray(v, dtype=float).reshape((m,) * d))
            for axis in range(d):  # apply the projection along every axis
                c = torch.movedim(torch.tensordot(project, c, dims=([1], [axis])), 0, axis)
            coef[o], mask[o] = c, 1.0
        with torch.no_grad():
            self.coefficients.copy_(coef)
            self.prescribed.copy_(mask)

    def values(self, space: torch.Tensor) -> torch.Tensor:
        """The interpolant at points ``(n, d)``: ``(n, n_outputs)`` (``d`` is 1 or 2)."""
        b = [_basis((2.0 * math.pi / p) * (space[:, i] - a), self.k)
             for i, (a, p) in enumerate(zip(self.starts, self.periods))]
        if len(b) == 1:
            return b[0] @ self.coefficients.T
        return torch.einsum("nk,okl,nl->no", b[0], self.coefficients, b[1])

    def phi(self, t: torch.Tensor) -> torch.Tensor:
        """The factor of the network, zero at ``t0``."""
        if self.timescale is None:
            return (t - self.t0) / (self.t1 - self.t0)
        return -torch.expm1(-(t - self.t0) / self.timescale)

    def forward(self, z: torch.Tensor, network_out: torch.Tensor) -> torch.Tensor:
        """``g(x) + phi(t - t0) N`` for prescribed outputs, ``N`` for the others, at points
        ``z`` (space, then time) with the network's outputs ``network_out``."""
        g = self.values(z[..., :-1])
        factor = self.prescribed * self.phi(z[..., -1:]) + (1.0 - self.prescribed)
        return g + factor * network_out
