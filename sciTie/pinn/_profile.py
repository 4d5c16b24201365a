"""A second opinion on the uncertainty of learnt quantities: the profile of the objective.

The Laplace approximation (:mod:`._uncertainty`) reads the uncertainty from the curvature at
the estimate of ``Phi(w, theta) = |r_d|^2 / sigma^2 + mu |r_phys|^2`` (data misfit and physics
rows, with the noise ``sigma`` and the tie strength ``mu`` it used). If that quadratic picture
holds, the profile ``Phi_p(theta) = min_w Phi(w, theta)`` rises by 9 when ``theta`` moves three
standard errors away. The check moves each learnt quantity's free parameter by ``-delta, 0,
+delta`` (``delta`` = :data:`PROFILE_SHIFT` Laplace standard errors), holds it there, retrains
every other trainable number with a few Gauss-Newton iterations from the fitted state, and
takes as ``Phi_p`` the minimum of the Gauss-Newton model of ``Phi`` at the retrained state
(``Phi`` less the decrease one undamped Gauss-Newton step in the weights predicts, with the
Laplace approximation's weak prior on the weights). ``se_profile = delta sqrt(2 / (Phi_p(+delta)
+ Phi_p(-delta) - 2 Phi_p(0)))``.

Why the model's minimum and not ``Phi`` itself: no retraining reaches its minimum. The fitted
state lies hundreds of units of ``Phi`` above the valley (the training weighted data and
physics otherwise), and the weights have directions that lower ``Phi`` by units per iteration
for hundreds of iterations; each retraining stops at its own distance from its minimum, and
that scatter (tens of units) swamped the rise being measured: on well-posed fits the profile
came out flat or inverted (a false warning). The decrease still to come is what the
Gauss-Newton model predicts, so subtracting it leaves the profile; the retraining is kept for
what the model does not hold, the nonlinear response of the network to the moved quantity.

A ratio ``se_profile / se_laplace`` far from 1 means the Laplace figure cannot be trusted:
typically the network fits the noise and the physics no longer constrains the coefficient,
which then barely moves the objective (its true uncertainty is much larger).

Two direct symptoms of that failure are checked too: a misfit well below a known noise level
(the data are fitted better than noise allows), and a positive coefficient collapsed by orders
of magnitude towards zero.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import IdentifiabilityWarning
from ._losses import Observations, PINNLoss
from ._optimizers import run_levenberg_marquardt
from ._sampling import Batch
from ._uncertainty import LaplaceResult

__all__ = ["profile_check", "RATIO_LIMIT", "OVERFIT_LIMIT", "COLLAPSE_LIMIT",
           "PROFILE_SHIFT"]

#: Laplace and profile standard errors disagree when their ratio leaves [1/2, 2].
RATIO_LIMIT = 2.0
#: A misfit below this fraction of the known noise means the network fits the noise.
OVERFIT_LIMIT = 0.7
#: How far (in Laplace standard errors) the profile points move a learnt quantity.
PROFILE_SHIFT = 3.0
#: A positive coefficient below this fraction of its starting value has collapsed.
COLLAPSE_LIMIT = 1e-3


@dataclass
class _Objective:
    """What :func:`run_levenberg_marquardt` needs, on one fixed batch, recording nothing."""

    window_parameters: Any
    loss: PINNLoss
    data: Observations
    batch: Batch
    bind: Any
    checkpoint_every: int = 10**9

    @property
    def params(self) -> list[torch.Tensor]:
        return self.window_parameters.tensors

    def new_batch(self, n_collocation: int) -> Batch:
        return self.batch

    def bound(self) -> Any:
        return self.bind()

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.loss.terms(self.bound(), batch, self.data)

    def check(self, losses: dict[str, torch.Tensor], stage: str, step: int) -> None:
        pass

    def record(self, *args: Any) -> None:
        pass

    def save(self, *args: Any) -> None:
        pass


def _model_minimum(obj: _Objective, mu: float, k: int, alpha: float) -> float:
    """The minimum over the weights of the Gauss-Newton model of ``Phi = mu * sum(rows**2)``
    at the window's current state, entry ``k`` held, the weights under the Laplace prior
    ``alpha |dw|^2``: ``Phi - b^T (mu J^T J + alpha I)^{-1} b`` with ``b = mu J^T rows``."""
    wp = obj.window_parameters
    rows, jac = wp.rows(obj.loss, wp.flat(), obj.batch, obj.data, None, jacobian=True)
    jac[:, k] = 0.0
    gram = mu * (jac.T @ jac)
    gram.diagonal().add_(alpha)
    b = mu * (jac.T @ rows)
    return mu * float(rows @ rows) - float(b @ torch.linalg.solve(gram, b))


def profile_check(wp: Any, bind: Any, loss: PINNLoss, batch: Batch, data: Observations,
                  result: LaplaceResult, *, learnt: dict[str, str], starts: dict[str, float],
                  noise_known: bool, n_iter: int = 5,
                  damping: float = 1e-3) -> dict[str, Any]:
    """Profile standard errors of the learnt quantities, and the warnings they raise.

    Parameters
    ----------
    wp : WindowParameters
        The fitted window (its state is restored afterwards).
    bind : callable
        ``bind() -> Bound``: the window with its current slot values.
    loss : PINNLoss
        The training loss (its weights give the physics rows).
    batch : Batch
        The points the Laplace approximation used.
    data : Observations
        The observations.
    result : LaplaceResult
        The Laplace result (free covariance, ``sigma``, ``mu``).
    learnt : dict of str to str
        Each learnt quantity and the free parameter it is trained through
        (``{"eps": "log_eps", "beta": "beta"}``).
    starts : dict of str to float
        Starting values of the learnt quantities (to recognise a collapse).
    noise_known : bool
        Whether ``result.noise_std`` was given (then the misfit is compared with it).
    n_iter : int, optional
        Gauss-Newton iterations per retraining (default 5).
    damping : float, optional
        Initial Levenberg-Marquardt damping (the training's last one fits the scale of the
        rows; default 1e-3).

    Returns
    -------
    dict
        ``quantities``: per learnt quantity the free parameter, the Laplace and profile
        standard errors (of the free parameter), their ratio and the objective rises;
        ``misfit_ratio``; ``warnings``: the messages issued.
    """
    sigma2 = result.noise_std ** 2
    mu = result.physics_precision
    n_obs = data.points.shape[0]
    # the data weight that makes the training loss Phi / mu (see the module docstring): the
    # physics held as tightly as the Laplace approximation holds it
    weights = replace(loss.weights, data=n_obs / (sigma2 * mu), causal_eps=None)
    obj = _Objective(wp, PINNLoss(loss.problem, loss.mode, weights), data, batch, bind)
    fitted = wp.flat().clone()
    messages: list[str] = []
    out: dict[str, Any] = {"quantities": {}, "warnings": messages}
    try:
        for name, free in learnt.items():
            j = result.free_names.index(free)
            se = math.sqrt(max(float(result.free_covariance[j, j]), 0.0))
            k = wp.free_offset(free)
            delta = PROFILE_SHIFT * se if se > 0 else 1e-3 * max(1.0, abs(float(fitted[k])))
            values = {}
            for step in (-1.0, 0.0, 1.0):
                trial = fitted.clone()
                trial[k] += step * delta
                wp.assign(trial)
                run_levenberg_marquardt(obj, n_iter, batch.interior.shape[0], None, None,
                                        frozen=(k,), damping=damping)
                values[step] = _model_minimum(obj, mu, k, result.weight_prior)
            rise = values[1.0] + values[-1.0] - 2.0 * values[0.0]
            se_profile = delta * math.sqrt(2.0 / rise) if rise > 0 else math.inf
            ratio = se_profile / se if se > 0 else math.inf
            out["quantities"][name] = {
                "free": free, "laplace_stderr": se, "profile_stderr": se_profile,
                "ratio": ratio, "objective_rise": (values[-1.0] - values[0.0],
                                                   values[1.0] - values[0.0])}
            if not 1.0 / RATIO_LIMIT <= ratio <= RATIO_LIMIT:
                messages.append(
                    f"{name}: the Laplace standard error of {free} ({se:.3g}) disagrees with "
                    f"the profile of the objective ({se_profile:.3g}, {ratio:.3g} times); "
                    "the stated uncertainty cannot be trusted")
    finally:
        wp.assign(fitted)
    if noise_known:
        ratio = result.misfit_std / result.noise_std
        out["misfit_ratio"] = ratio
        if ratio < OVERFIT_LIMIT:
            messages.append(
                f"the fit leaves a misfit of {result.misfit_std:.3g}, {ratio:.2f} times the "
                f"known noise {result.noise_std:.3g}: the network fits the noise and the "
                "physics no longer constrains the learnt coefficients")
    for name, value in zip(result.names, result.values):
        start = starts.get(name)
        if start and learnt.get(name, "").startswith("log_") and value < COLLAPSE_LIMIT * start:
            messages.append(
                f"{name} collapsed from its start {start:.3g} to {value:.3g}: the physics "
                "stopped constraining the field (a fit of the noise), not a measurement")
    for m in messages:
        warnings.warn(f"PeriodicPINN: {m}. More observations, a smaller network or a start "
                      "closer to the truth may help.", IdentifiabilityWarning, stacklevel=4)
    return out
