"""Uncertainty of learnt coefficients and periods: a Laplace approximation with the PDE as a tie.

The trainable numbers of the network ``w`` and the learnt quantities ``theta`` (PDE
coefficients, periods) are tied by the physics: the residual rows ``r(w, theta)`` (PDE, initial
and boundary conditions) must vanish. The observations ``y`` then inform ``theta`` through that
tie. With the data Jacobian ``J_d`` (``d u(x_i) / d(w, theta)``), the physics Jacobian ``J_r``
and the noise variance ``sigma^2``, the Gauss-Newton posterior precision is::

    H = J_d^T J_d / sigma^2 + mu J_r^T J_r + alpha P_w

where ``mu`` holds the tie as tightly as the trained network satisfies it (the physics rows
taken as Gaussian with their achieved mean square). As ``mu`` grows this tends to the Fisher
information of the data on the manifold of PDE solutions, whose tie map ``G`` (free ``theta``
to slots ``(w, theta)``) carries the covariance, ``Sigma_slots = G Sigma_free G^T``; but a
finite network meets the PDE exactly on only part of the solution family, so a tie tighter
than its accuracy removes freedom the physics allows and understates the uncertainty.
``alpha P_w`` is a weak prior on the network weights only, which fixes their directions that
neither data nor physics determine (they do not move ``theta``). The covariance of ``theta``
is the ``theta`` block of ``H^{-1}``. The part of ``d r / d theta`` that the weights cannot
compensate (representation error, not information) is projected out first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ._functional import WindowParameters
from ._losses import Observations, PINNLoss
from ._sampling import Batch

__all__ = ["LaplaceResult", "laplace", "in_physical_terms"]


@dataclass
class LaplaceResult:
    """Learnt quantities with their Laplace covariance.

    Attributes
    ----------
    names : list of str
        The learnt quantities: coefficients and periods (``"beta"``, ``"period_x"`` ...).
    values : numpy.ndarray
        Estimates.
    covariance : numpy.ndarray
        Their covariance.
    noise_std : float
        The observation noise used (estimated from the data misfit unless given).
    n_observations : int
        Number of observations.
    free_names : list of str
        The free parameters of the window's group the approximation was computed for
        (``"log_eps"`` for a positive coefficient, boundary-network weights ...).
    free_values, free_covariance : numpy.ndarray
        Their values and covariance; the quantities' covariance is ``J C J^T`` with
        ``J = d quantities / d free`` (the group's tie matrix at the estimate).
    physics_precision : float
        ``mu``: the weight the physics rows were given (see :func:`laplace`).
    misfit_std : float
        ``sqrt(sum(data misfit**2) / (n - k))``: the noise the fit leaves (equal to
        ``noise_std`` unless that was given).
    weight_prior : float
        ``alpha``: the weak prior on the network weights (see :func:`laplace`).
    """

    names: list[str]
    values: np.ndarray
    covariance: np.ndarray
    noise_std: float
    n_observations: int
    free_names: list[str] = field(default_factory=list)
    free_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    free_covariance: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    physics_precision: float = float("nan")
    misfit_std: float = float("nan")
    weight_prior: float = float("nan")

    @property
    def stderr(self) -> np.ndarray:
        """Standard errors (square roots of the covariance diagonal)."""
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))


def laplace(wp: WindowParameters, loss: PINNLoss, batch: Batch, data: Observations, *,
            quantities: list[tuple[str, int]], noise_std: float | None = None,
            tie_strength: float | None = None, prior: float = 1e-7) -> LaplaceResult:
    """Laplace covariance of learnt quantities with the physics as a tie.

    Parameters
    ----------
    wp : WindowParameters
        The trained tensors of the (single) window, coefficients included.
    loss : PINNLoss
        The loss (its weights scale the physics rows).
    batch : Batch
        Points for the physics rows (initial targets filled).
    data : Observations
        The observations.
    quantities : list of (name, index)
        Each learnt quantity (a free parameter of the window's group: a coefficient, a period,
        a boundary-network weight) and its index in ``wp.flat()``.
    noise_std : float, optional
        Known noise standard deviation; default: estimated from the misfit.
    tie_strength : float, optional
        ``mu`` relative to the data information, ``mu = tie_strength * tr(J_d^T J_d / sigma^2)
        / tr(J_r^T J_r)``. Default (None): the tie is held as tightly as the trained network
        satisfies it, ``mu = n_rows / sum(rows**2)`` over the physics rows. Too loose a tie
        overstates the uncertainty (3.7 times at ``tie_strength = 1`` on convection), too tight
        a one understates it: a finite network satisfies the PDE exactly only on a small part
        of the solution family, so an over-tight tie removes freedom the physics allows (the
        unknown-period problem: 0.4 times at ``1e5``). The default measured 1.00 (convection
        beta) and 0.9-1.0 (period) times the exact values.
    prior : float, optional
        ``alpha`` relative to the mean diagonal of the data information (default 1e-7; the same
        measurement is stable from 1e-8 to 1e-4).

    Returns
    -------
    LaplaceResult
    """
    x = wp.flat()
    rows, jac = wp.rows(loss, x, batch, data, None, jacobian=True)
    n_obs = data.points.shape[0] * data.values.shape[1]
    scale_d = math.sqrt(loss.weights.data / data.points.shape[0])
    r_d, j_d = rows[-n_obs:] / scale_d, jac[-n_obs:] / scale_d
    j_r = jac[:-n_obs]
    k = len(quantities)
    misfit2 = float(r_d @ r_d) / max(n_obs - k, 1)
    sigma2 = misfit2 if noise_std is None else float(noise_std) ** 2
    idx = [q[1] for q in quantities]
    # The physics rows must not inform theta by themselves: in function space every theta has
    # its solution, so whatever part of d r / d theta the network weights cannot compensate is
    # representation error, not information. Keep only the compensable part (the projection
    # of d r / d theta onto the span of d r / d w), so that a strong tie cannot pin theta.
    w_cols = [i for i in range(x.numel()) if i not in set(idx)]
    j_rw = j_r[:, w_cols]
    coef = torch.linalg.lstsq(j_rw.cpu(), j_r[:, idx].cpu(), driver="gelsd").solution
    j_r = j_r.clone()
    j_r[:, idx] = (j_rw.cpu() @ coef).to(j_r)
    info_d = j_d.T @ j_d / sigma2
    info_r = j_r.T @ j_r
    if tie_strength is not None:
        mu = tie_strength * float(info_d.diagonal().sum()) / max(
            float(info_r.diagonal().sum()), 1e-300)
    if tie_strength is None:
        # the tie holds as tightly as the trained network satisfies it: physics rows as
        # Gaussian with their achieved mean square
        r_r = rows[:-n_obs]
        mu = r_r.numel() / max(float(r_r @ r_r), 1e-300)
    h = info_d + mu * info_r
    mask = torch.ones(x.numel(), dtype=h.dtype)
    mask[idx] = 0.0
    alpha = prior * float(info_d.diagonal().mean())
    h = h + torch.diag(alpha * mask)
    h = 0.5 * (h + h.T)
    # the theta block of H^{-1}: solve H X = E_theta
    e = torch.zeros(x.numel(), k, dtype=h.dtype)
    for j, i in enumerate(idx):
        e[i, j] = 1.0
    evals, evecs = torch.linalg.eigh(h)
    floor = float(evals.max()) * 1e-15
    inv = evecs @ torch.diag(1.0 / torch.clamp(evals, min=floor)) @ evecs.T
    cov = (e.T @ inv @ e).cpu().double().numpy()
    values = x[idx].cpu().double().numpy().copy()
    names = [name for name, _ in quantities]
    cov = 0.5 * (cov + cov.T)
    return LaplaceResult(names, values, cov, math.sqrt(sigma2), n_obs, free_names=list(names),
                         free_values=values.copy(), free_covariance=cov.copy(),
                         physics_precision=float(mu), misfit_std=math.sqrt(misfit2),
                         weight_prior=alpha)


def in_physical_terms(result: LaplaceResult, tied: Any, group: Any,
                      quantities: list[str]) -> LaplaceResult:
    """The covariance of ``quantities`` (slots: coefficients, periods) from that of the free
    parameters, through the group's tie map: ``J C J^T`` with ``J`` the rows of
    ``G = d slots / d free`` (exact for linear ties; for ``exp(log_eps)`` the delta method).

    Parameters
    ----------
    result : LaplaceResult
        Computed for every free parameter of the group, in the free vector's order.
    tied : sciTie.core.torch.TiedParameters
        The trained group.
    group : sciTie.ParameterGroup
        The group it was built from (slot indices).
    quantities : list of str
        Names of the learnt quantities.
    """
    g = tied.tie_matrix()
    rows = [int(group.slot_index(name)) for name in quantities]
    jac = np.asarray(g[rows, :].todense(), dtype=float)
    slots = tied.slots().detach().cpu().double().numpy()
    cov = jac @ result.free_covariance @ jac.T
    return replace(result, names=list(quantities), values=slots[rows].copy(),
                   covariance=0.5 * (cov + cov.T))
