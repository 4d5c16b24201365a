"""Time marching: one network per window, trained stage by stage, checkpointed, resumable."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, TrainingDivergedError
from ._checkpoint import check_module_state, save_checkpoint
from ._functional import WindowParameters
from ._losses import Observations, PINNLoss
from ._optimizers import run_adam, run_lbfgs, run_levenberg_marquardt
from ._sampling import Batch, sample_batch
from ._settings import TrainingPlan
from ._window import Bound, bind

__all__ = ["Trainer", "STAGE_ORDER"]

STAGE_ORDER = ("adam", "lbfgs", "lm")
_STAGE_CODE = {"adam": 0, "lbfgs": 1, "lm": 2}


class WindowObjective:
    """What the optimisers of one window work on (see :mod:`._optimizers`)."""

    def __init__(self, trainer: "Trainer", w: int) -> None:
        self.trainer = trainer
        self.w = w
        self.net = trainer.networks[w]
        self.tied = trainer.tied[w]
        self.templates = trainer.templates[w]
        self.window_parameters = WindowParameters(self.net, self.tied, trainer.groups[w],
                                                  self.templates, trainer.problem)
        self.params = self.window_parameters.tensors
        self.loss = trainer.loss
        self.checkpoint_every = trainer.checkpoint_every
        obs = trainer.observations
        last = w == trainer.plan.n_windows - 1
        self.data = None if obs is None else obs.in_window(trainer.plan.window(w), last)

    def new_batch(self, n_collocation: int) -> Batch:
        tr = self.trainer
        batch = sample_batch(tr.problem, tr.plan.window(self.w), tr.generator,
                             n_collocation=n_collocation, n_initial=tr.n_initial,
                             n_boundary=tr.n_boundary, causal_chunks=tr.causal_chunks,
                             compare_faces=tr.mode != "hard")
        batch = batch.to(tr.plan.dtype, tr.plan.device)
        batch.initial_target = tr.initial_target(self.w, batch.initial)
        return batch

    def bound(self) -> Bound:
        """The network with the group's current slot values."""
        return bind(self.net, self.tied, self.templates, self.trainer.problem)

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.loss.terms(self.bound(), batch, self.data)

    def check(self, losses: dict[str, torch.Tensor], stage: str, step: int) -> None:
        if torch.isfinite(losses["total"]):
            return
        ck = self.trainer.checkpoint
        kept = (f"; the last good checkpoint {str(ck)!r} was kept"
                if ck is not None and ck.exists() else "")
        parts = ", ".join(f"{k}={float(v.detach()):.3g}" for k, v in losses.items())
        raise TrainingDivergedError(
            f"training loss became non-finite at window {self.w}, {stage} step {step} "
            f"({parts}){kept}. Lower learning_rate, use dtype='float64', or check the "
            "residual function.")

    def record(self, stage: str, step: int, losses: dict[str, torch.Tensor], lr: float,
               iterations: int) -> None:
        rec: dict[str, float] = {"window": self.w, "stage": _STAGE_CODE[stage], "step": step,
                                 "lr": lr, "iterations": iterations}
        rec.update({f"loss_{k}" if k != "causal_min_weight" else k: float(v.detach())
                    for k, v in losses.items()})
        self.trainer.history.append(rec)

    def save(self, stage: str, step: int, optimizer: dict | None, batch: Batch | None) -> None:
        self.trainer.save(self.w, stage, step, optimizer, batch)


class Trainer:
    """Trains the windows of a :class:`PeriodicPINN` in order, stage by stage.

    Parameters
    ----------
    problem : PDEProblem
        The PDE.
    plan : TrainingPlan
        Resolved settings (dtype, device, steps, windows, checkpoint).
    loss : PINNLoss
        The loss of a window.
    make_network : callable
        ``make_network(w, generator) -> PINNNetwork`` for window ``w``.
    make_boundary : callable
        ``make_boundary(w, generator) -> dict`` of shared boundary networks (shared mode).
    make_group : callable
        ``make_group(w, boundary) -> ParameterGroup`` of window ``w`` (see
        :func:`window_group`); it is trained through
        :class:`sciTie.core.torch.TiedParameters`.
    observations : Observations or None
        Observed data.
    settings : dict
        ``mode``, ``warm_start``, ``n_initial``, ``n_boundary``, ``causal_chunks``,
        ``checkpoint_every``, ``adam`` (:class:`AdamSettings`), ``n_collocation``,
        ``lm_resample_every``, ``settings_key``, ``seed``.
    """

    def __init__(self, problem: Any, plan: TrainingPlan, loss: PINNLoss,
                 make_network: Callable[[int, torch.Generator], nn.Module],
                 make_boundary: Callable[[int, torch.Generator], dict[str, nn.Module]],
                 make_group: Callable[[int, dict[str, nn.Module]], Any],
                 observations: Observations | None, settings: dict[str, Any]) -> None:
        self.problem = problem
        self.plan = plan
        self.loss = loss
        self.make_network = make_network
        self.make_boundary = make_boundary
        self.make_group = make_group
        self.observations = observations
        self.mode = settings["mode"]
        self.warm_start = settings["warm_start"]
        self.n_initial = settings["n_initial"]
        self.n_boundary = settings["n_boundary"]
        self.causal_chunks = settings["causal_chunks"]
        self.checkpoint_every = settings["checkpoint_every"]
        self.adam = settings["adam"]
        self.n_collocation = settings["n_collocation"]
        self.lm_resample_every = settings.get("lm_resample_every", 0)
        self.settings_key = settings["settings_key"]
        self.checkpoint: Path | None = plan.checkpoint
        self.generator = torch.Generator().manual_seed(settings["seed"])
        self.networks = nn.ModuleList()
        self.templates: list[dict[str, nn.Module]] = []  # architectures only (not trained)
        self.groups: list[Any] = []
        self.tied = nn.ModuleList()
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ initial condition
    def initial_target(self, w: int, points: torch.Tensor) -> dict[str, torch.Tensor]:
        """The initial condition of window ``w`` at ``points``: the problem's for the first
        window, the previous window's prediction (same outputs) for the others."""
        if w == 0:
            space = [points[:, i].detach().cpu().double().numpy()
                     for i in range(points.shape[1] - 1)]
            values = self.problem.initial_values(*space)
            return {k: torch.as_tensor(v, dtype=points.dtype, device=points.device)
                    for k, v in values.items()}
        names = self.initial_outputs()
        with torch.no_grad():
            prev = self.networks[w - 1].forward_points(points)
        return {o: prev[:, self.problem.outputs.index(o)] for o in names}

    def set_hard_initial(self, w: int, net: nn.Module) -> None:
        """Interpolate window ``w``'s initial values (:meth:`initial_target`) into ``net``'s
        built-in initial condition."""
        nodes = torch.as_tensor(net.initial.nodes(), dtype=self.plan.dtype,
                                device=self.plan.device)
        t0 = torch.full((nodes.shape[0], 1), self.plan.window(w)[0], dtype=self.plan.dtype,
                        device=self.plan.device)
        target = self.initial_target(w, torch.cat([nodes, t0], dim=1))
        net.initial.set_values({self.problem.outputs.index(o): v.detach().cpu().double().numpy()
                                for o, v in target.items()})

    def initial_outputs(self) -> tuple[str, ...]:
        """The outputs the problem's initial condition prescribes."""
        if not hasattr(self, "_initial_outputs"):
            lo = [np.array([self.problem.domain(c)[0]]) for c in self.problem.space]
            self._initial_outputs = tuple(self.problem.initial_values(*lo))
        return self._initial_outputs

    # ------------------------------------------------------------------ checkpoints
    def save(self, w: int, stage: str, step: int, optimizer: dict | None,
             batch: Batch | None) -> None:
        """Write the whole training state (no-op without a checkpoint file)."""
        if self.checkpoint is None:
            return
        save_checkpoint(self.checkpoint, {
            "settings": self.settings_key,
            "window": w, "stage": stage, "step": step,
            "networks": [dict(n.state_dict()) for n in self.networks],
            "tied": [dict(t.state_dict()) for t in self.tied],
            "optimizer": optimizer,
            "generator": self.generator.get_state(),
            "batch": None if batch is None else {k: v.detach().cpu() for k, v in
                                                 batch.tensors().items()},
            "history": list(self.history),
        })

    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild the windows of a checkpoint (names and shapes checked) and the generator."""
        path = self.checkpoint
        if len(state["tied"]) != len(state["networks"]):
            raise CheckpointError("malformed checkpoint: one parameter group per network "
                                  "expected", path=path)
        for w, saved in enumerate(state["networks"]):
            self._add_window(w, warm=False)
            net = self.networks[w]
            check_module_state(path, f"network of window {w}", net.state_dict(), saved)
            net.load_state_dict(saved)
            tied_state = state["tied"][w]
            expected = {k: v for k, v in self.tied[w].state_dict().items()
                        if isinstance(v, torch.Tensor)}
            found = {k: v for k, v in tied_state.items() if isinstance(v, torch.Tensor)}
            check_module_state(path, f"parameter group of window {w}", expected, found)
            try:
                self.tied[w].load_state_dict(tied_state)
            except (CheckpointError, RuntimeError, KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(f"parameter group of window {w}: {exc}",
                                      path=path) from None
        try:
            self.generator.set_state(state["generator"])
        except RuntimeError as exc:
            raise CheckpointError(f"invalid random generator state: {exc}", path=path) from None
        self.history = [dict(h) for h in state["history"]]

    def sync(self) -> None:
        """Write the trained group values into the networks and boundary networks, so that
        each stands alone (its embedding frequency is the trained period's, the boundary
        networks hold their trained weights)."""
        with torch.no_grad():
            for w, net in enumerate(self.networks):
                values = self.tied[w].values()
                for c, axis in net.periodic_axes().items():
                    axis.set_frequency(float(values[f"frequency_{c}"][0]))
                names = None
                for c, module in self.templates[w].items():
                    if names is None:
                        from ._window import boundary_names

                        names = boundary_names(self.groups[w], self.templates[w])
                    for n, p in module.named_parameters():
                        p.copy_(values[names[c][n]].reshape(p.shape))

    # ------------------------------------------------------------------ training
    def _add_window(self, w: int, warm: bool = True) -> None:
        from ..core.torch import TiedParameters

        net = self.make_network(w, self.generator)
        if warm and self.warm_start and w > 0:
            net.load_state_dict(self.networks[w - 1].state_dict())
        if getattr(net, "initial", None) is not None:  # hard initial condition
            self.set_hard_initial(w, net)
        self.networks.append(net)
        templates = dict(self.make_boundary(w, self.generator))
        self.templates.append(templates)
        group = self.make_group(w, templates)
        self.groups.append(group)
        tied = TiedParameters(group, dtype=self.plan.dtype, device=self.plan.device,
                              check_finite=False)
        if warm and self.warm_start and w > 0:
            tied.free.data.copy_(self.tied[w - 1].free.data)  # same layout in every window
        self.tied.append(tied)

    def total_steps(self) -> int:
        """Optimiser steps of the whole run (for progress bars)."""
        return sum(sum(self.plan.stage_steps(w).values()) for w in range(self.plan.n_windows))

    def run(self, state: dict[str, Any] | None, bar: Any) -> None:
        """Train every window from the start, or from a checkpointed ``state``."""
        try:
            self._run(state, bar)
        finally:
            if self.networks:
                self.sync()

    def _run(self, state: dict[str, Any] | None, bar: Any) -> None:
        w0, stage0, step0 = 0, "adam", 0
        resumed = None
        if state is not None:
            self.restore(state)
            w0, stage0, step0 = state["window"], state["stage"], state["step"]
            if stage0 == "done":  # the checkpointed run had finished: nothing left to train
                return
            batch = state["batch"]
            resumed = {"step": step0, "optimizer": state["optimizer"],
                       "batch": None if batch is None else Batch.from_tensors(batch).to(
                           self.plan.dtype, self.plan.device)}
            if bar is not None:
                steps = self.plan.stage_steps(w0)
                done = sum(sum(self.plan.stage_steps(w).values()) for w in range(w0)) + step0 \
                    + sum(steps[s] for s in STAGE_ORDER[:STAGE_ORDER.index(stage0)])
                bar.update(min(bar.total, done))
        for w in range(w0, self.plan.n_windows):
            if w >= len(self.networks):
                self._add_window(w)
            obj = WindowObjective(self, w)
            steps = self.plan.stage_steps(w)
            if w == w0:
                self.preflight(obj)
            first = STAGE_ORDER.index(stage0) if w == w0 else 0
            for i, stage in enumerate(STAGE_ORDER[first:], start=first):
                st = resumed if (w == w0 and i == first) else None
                if steps[stage] > 0:
                    self._run_stage(stage, obj, steps[stage], st, bar)
                if i + 1 < len(STAGE_ORDER):
                    self.save(w, STAGE_ORDER[i + 1], 0, None, None)
            if w + 1 < self.plan.n_windows:
                self.save(w + 1, "adam", 0, None, None)
            else:
                self.save(w, "done", 0, None, None)

    def preflight(self, obj: WindowObjective) -> None:
        """Evaluate the loss once on a handful of points before any training, so that a
        residual (or initial or boundary function) that fails is reported at once, not
        minutes later; pointwise too when the Gauss-Newton stage or the uncertainty of an
        inverse problem will evaluate it under :func:`torch.vmap`."""
        n = max(4, self.causal_chunks or 0)
        batch = sample_batch(self.problem, self.plan.window(obj.w),
                             torch.Generator().manual_seed(0), n_collocation=n, n_initial=4,
                             n_boundary=4, causal_chunks=self.causal_chunks,
                             compare_faces=self.mode != "hard").to(self.plan.dtype,
                                                                   self.plan.device)
        batch.initial_target = self.initial_target(obj.w, batch.initial)
        obj.losses(batch)
        if self.plan.n_lm > 0 or self.observations is not None:
            wp = obj.window_parameters
            wp.rows(self.loss, wp.flat(), batch, obj.data, None, jacobian=False)

    def _run_stage(self, stage: str, obj: WindowObjective, n: int, state: dict | None,
                   bar: Any) -> None:
        if stage == "adam":
            run_adam(obj, n, self.adam, state, bar)
        elif stage == "lbfgs":
            run_lbfgs(obj, n, 2 * self.n_collocation, state, bar)
        else:
            run_levenberg_marquardt(obj, n, self.n_collocation, state, bar,
                                    resample_every=self.lm_resample_every)
