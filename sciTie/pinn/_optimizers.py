"""The optimisers of one time window: Adam, L-BFGS and Levenberg-Marquardt (Gauss-Newton).

Each runs on an *objective* (see :class:`sciTie.pinn._trainer.WindowObjective`): the window's
trainable tensors, a way to draw training points, the loss terms, a divergence check, a history
recorder and a checkpoint hook. Each can start from a checkpointed state and then continues
bit-identically.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ._functional import WindowParameters
from ._losses import Observations, PINNLoss
from ._sampling import Batch

__all__ = ["AdamSettings", "run_adam", "run_lbfgs", "run_levenberg_marquardt",
           "LBFGS_CHUNK"]

LBFGS_CHUNK = 10  # L-BFGS iterations between records/checkpoints


class Objective(Protocol):  # pragma: no cover - typing only
    params: list[torch.Tensor]
    loss: PINNLoss
    data: Observations | None
    window_parameters: WindowParameters
    checkpoint_every: int

    def new_batch(self, n_collocation: int) -> Batch: ...

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]: ...

    def bound(self) -> Any: ...

    def check(self, losses: dict[str, torch.Tensor], stage: str, step: int) -> None: ...

    def record(self, stage: str, step: int, losses: dict[str, torch.Tensor], lr: float,
               iterations: int) -> None: ...

    def save(self, stage: str, step: int, optimizer: dict | None, batch: Batch | None) -> None: ...


@dataclass(frozen=True)
class AdamSettings:
    """Adam's schedule: ``lr = learning_rate * lr_decay ** (step / lr_decay_steps)``."""

    learning_rate: float
    lr_decay: float
    lr_decay_steps: int
    resample_every: int
    n_collocation: int


def run_adam(obj: Objective, n_steps: int, settings: AdamSettings, state: dict | None,
             bar: Any) -> None:
    """Adam with an exponentially decaying rate; points redrawn every ``resample_every`` steps.

    ``state`` (from a checkpoint) holds ``step``, ``optimizer`` and ``batch``.
    """
    opt = torch.optim.Adam(obj.params, lr=settings.learning_rate)
    start, batch = 0, None
    if state is not None:
        start = state["step"]
        if state["optimizer"] is not None:
            opt.load_state_dict(state["optimizer"])
        batch = state["batch"]
    for s in range(start, n_steps):
        if batch is None or s % settings.resample_every == 0:
            batch = obj.new_batch(settings.n_collocation)
        lr = settings.learning_rate * settings.lr_decay ** (s / settings.lr_decay_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        losses = obj.losses(batch)
        obj.check(losses, "adam", s)
        losses["total"].backward()
        opt.step()
        obj.record("adam", s, losses, lr, 1)
        if bar is not None:
            bar.update(1)
            if s % 50 == 0:
                bar.set_postfix(loss=f"{float(losses['total']):.3e}")
        if (s + 1) % obj.checkpoint_every == 0 and s + 1 < n_steps:
            obj.save("adam", s + 1, opt.state_dict(), batch)


def run_lbfgs(obj: Objective, n_iter: int, n_collocation: int, state: dict | None,
              bar: Any) -> None:
    """L-BFGS (strong Wolfe line search) on a fixed point set, in chunks of
    :data:`LBFGS_CHUNK` iterations; stops early when an iteration makes no progress."""
    opt = torch.optim.LBFGS(obj.params, lr=1.0, max_iter=LBFGS_CHUNK,
                            max_eval=4 * LBFGS_CHUNK, history_size=50,
                            tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")
    done, batch = 0, None
    if state is not None:
        done = state["step"]
        if state["optimizer"] is not None:
            opt.load_state_dict(state["optimizer"])
        batch = state["batch"]
    if batch is None:
        batch = obj.new_batch(n_collocation)
    holder: dict[str, dict[str, torch.Tensor]] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        losses = obj.losses(batch)
        obj.check(losses, "lbfgs", done)
        losses["total"].backward()
        holder["losses"] = losses
        return losses["total"]

    while done < n_iter:
        chunk = min(LBFGS_CHUNK, n_iter - done)
        opt.param_groups[0]["max_iter"] = chunk
        opt.param_groups[0]["max_eval"] = 4 * chunk
        first = opt.state[opt.param_groups[0]["params"][0]]
        before = first.get("n_iter", 0)
        opt.step(closure)
        advanced = opt.state[opt.param_groups[0]["params"][0]].get("n_iter", 0) - before
        obj.record("lbfgs", done, holder["losses"], 1.0, max(int(advanced), 0))
        done += chunk
        if bar is not None:
            bar.update(chunk)
            bar.set_postfix(loss=f"{float(holder['losses']['total']):.3e}")
        if advanced == 0:  # converged (no progress possible): stop early
            if bar is not None:
                bar.update(n_iter - done)
            break
        if done < n_iter and (done // LBFGS_CHUNK) % max(
                1, obj.checkpoint_every // LBFGS_CHUNK) == 0:
            obj.save("lbfgs", done, opt.state_dict(), batch)


class _DampedSystem:
    """The Levenberg step ``-(J^T J + damping I)^{-1} J^T r`` for several dampings.

    The Gram matrix is formed once per iteration, in whichever of the primal (``J^T J``) or
    dual (``J J^T``, step ``-J^T (J J^T + damping I)^{-1} r``) forms is smaller; each damping
    then costs one Cholesky factorisation.
    """

    def __init__(self, jac: torch.Tensor, rows: torch.Tensor) -> None:
        self.jac = jac
        self.primal = jac.shape[0] >= jac.shape[1]
        self.gram = jac.T @ jac if self.primal else jac @ jac.T
        self.rhs = (jac.T @ rows) if self.primal else rows

    def step(self, damping: float) -> torch.Tensor | None:
        a = self.gram.clone()
        a.diagonal().add_(damping)
        chol, info = torch.linalg.cholesky_ex(a)
        if int(info) != 0:
            return None
        sol = torch.cholesky_solve(self.rhs[:, None], chol)[:, 0]
        return -sol if self.primal else -(self.jac.T @ sol)


def run_levenberg_marquardt(obj: Objective, n_iter: int, n_collocation: int,
                            state: dict | None, bar: Any, *, damping: float = 1e-3,
                            max_damping: float = 1e10, frozen: tuple[int, ...] = (),
                            resample_every: int = 0) -> None:
    """Levenberg-Marquardt on the weighted loss rows, on a fixed point set.

    Each iteration forms the Jacobian of every row with respect to every trainable number
    (:class:`WindowParameters`), solves the damped Gauss-Newton system and accepts the step if
    the loss falls (then the damping shrinks by 3), else retries with 4 times the damping. It
    stops early when no step within ``max_damping`` lowers the loss. Entries of the trainable
    vector listed in ``frozen`` are held where they are (their Jacobian columns are zeroed, so
    the damped step leaves them exactly unchanged). With ``resample_every`` a new point set is
    drawn every that many iterations (and when no step lowers the loss on the current one),
    so that the network does not end up fitted to one set of points. The loss of a linear PDE
    is quadratic in the network output, so this is Newton's method in function space
    (the "energy natural gradient" of Müller & Zeinhofer 2023), which is why it reaches
    residuals that first-order methods do not on small networks.
    """
    wp = obj.window_parameters
    done, batch, start_damping = 0, None, damping
    if state is not None:
        done = state["step"]
        if state["optimizer"] is not None:
            damping = float(state["optimizer"]["damping"])
        batch = state["batch"]
    if batch is None:
        batch = obj.new_batch(n_collocation)
    causal = None
    while done < n_iter:
        if resample_every and done > 0 and done % resample_every == 0:
            batch = obj.new_batch(n_collocation)
        losses = obj.losses(batch)
        obj.check(losses, "lm", done)
        if obj.loss.weights.causal_eps is not None:
            r = obj.loss.pde_rows(obj.loss.batch_fields(obj.bound(), batch.interior),
                                  batch.interior.shape[0])
            causal = obj.loss.causal_weights((r ** 2).sum(dim=1))
        x = wp.flat()
        rows, jac = wp.rows(obj.loss, x, batch, obj.data, causal, jacobian=True)
        if frozen:
            jac[:, list(frozen)] = 0.0
        loss = float(rows @ rows)
        system = _DampedSystem(jac, rows)
        accepted = False
        while damping <= max_damping:
            step = system.step(damping)
            if step is not None and bool(torch.isfinite(step).all()):
                trial, _ = wp.rows(obj.loss, x + step, batch, obj.data, causal, jacobian=False)
                new = float(trial @ trial)
                if new < loss:
                    wp.assign(x + step)
                    damping = max(damping / 3.0, 1e-15)
                    accepted = True
                    break
            damping *= 4.0
        obj.record("lm", done, losses, damping, 1)
        done += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3e}")
        if not accepted:  # no damping lowers the loss: converged for this point set
            if resample_every and done < n_iter:
                batch = obj.new_batch(n_collocation)
                damping = start_damping
                continue
            if bar is not None:
                bar.update(n_iter - done)
            break
        if done < n_iter and done % obj.checkpoint_every == 0:
            obj.save("lm", done, {"damping": damping}, batch)
