"""The ``PeriodicPINN`` estimator: training (Adam, L-BFGS, causal weights, time marching),
checkpoint/resume, prediction and evaluation."""
from __future__ import annotations

import inspect
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from ._fields import Fields
from ._network import MODES, BoundaryNetwork, PINNNetwork
from ._problems import PDEProblem

__all__ = ["PeriodicPINN", "TrainingDivergedError", "budget_multiplier"]

_CHECKPOINT_VERSION = 1
_LBFGS_CHUNK = 10


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


def budget_multiplier(budget: float | None = None) -> float:
    """The training-budget multiplier: ``budget``, else the ``budget`` setting (default 1).

    Parameters
    ----------
    budget : float, optional
        Explicit multiplier; None reads :func:`sciTie.get_config` (set with
        :func:`sciTie.set_config`, or the environment variable ``SCITIE_BUDGET`` /
        ``SCITIE_PINN_BUDGET``).

    Returns
    -------
    float
        A positive multiplier applied to step counts.
    """
    if budget is None:
        from .._config import get_config

        return get_config()["budget"]
    budget = float(budget)
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"budget must be a positive finite number; got {budget!r}")
    return budget


def _as_column(value: Any, what: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    arr = torch.as_tensor(np.asarray(value, dtype=float), dtype=dtype, device=device)
    return arr.reshape(-1, 1)


class PeriodicPINN:
    """Physics-informed network for a 1-D PDE with periodic boundary conditions in ``x``.

    Parameters
    ----------
    problem : PDEProblem
        The PDE (residual, domain, initial condition, optional reference).
    mode : {"hard", "soft", "shared"}, optional
        How the periodic tie ``u(a, t) == u(b, t)`` is imposed: ``"hard"`` by the periodic
        embedding (exact for ``u`` and every x-derivative), ``"soft"`` by a penalty on ``u`` and
        ``u_x`` at both ends, ``"shared"`` by a boundary network ``g(t)`` that both ends must
        match (value and slope). Default ``"hard"``.
    n_modes : int, optional
        Harmonics of the periodic embedding (default 1).
    trainable_frequency : bool, optional
        Train the embedding frequency (default False).
    time_features : {None, "fourier", "periodic"}, optional
        Time features (default None: scaled ``t``).
    n_time_features : int, optional
        Fourier frequencies or periodic time harmonics (default 8).
    time_scale : float, optional
        Standard deviation of Fourier time frequencies, in cycles per window (default 1).
    time_period : float, optional
        Initial period of periodic time features (default: twice the window length).
    hidden : sequence of int, optional
        Hidden widths (default ``(64, 64, 64, 64)``).
    activation : str, optional
        ``"tanh"`` (default), ``"sin"``, ``"gelu"``, ``"silu"``.
    architecture : {"mlp", "modified"}, optional
        Plain or modified MLP (default ``"mlp"``).
    n_windows : int, optional
        Time-marching windows (default 1: the whole interval at once). Each window has its own
        network whose initial condition is the previous window's prediction.
    warm_start : bool, optional
        Start each window's network from the previous window's weights (default True).
    causal_eps : float, optional
        Causal weighting strength (Wang, Sankaran & Perdikaris 2024); None switches it off.
    n_causal_chunks : int, optional
        Time chunks for causal weighting (default 16).
    n_collocation, n_initial, n_boundary : int, optional
        Points per batch for the residual, the initial condition and the boundary terms.
    ic_weight, bc_weight : float, optional
        Loss weights of the initial-condition and periodicity terms (defaults 10 and 1).
    adam_steps : int, optional
        Adam steps per window (default 2000), scaled by the budget.
    learning_rate : float, optional
        Initial Adam rate (default 1e-3).
    lr_decay, lr_decay_steps : float, int, optional
        The rate is ``learning_rate * lr_decay ** (step / lr_decay_steps)``.
    lbfgs_steps : int, optional
        L-BFGS iterations per window after Adam (default 0), scaled by the budget.
    resample_every : int, optional
        Draw new Adam collocation points every this many steps (default 100).
    dtype : {"float64", "float32"}, optional
        Floating-point type (default ``"float64"``).
    device : str, optional
        Torch device; default ``"cuda"`` when available, else ``"cpu"``.
    n_threads : int, optional
        CPU threads during ``fit`` (torch's setting is restored afterwards). None picks
        ``min(4, max(1, cpu_count // 2))``: the networks are small, so more threads mostly add
        overhead. Ignored on CUDA.
    random_state : int, optional
        Seed for weights, random features and collocation points (default 0).
    checkpoint : str or Path, optional
        File to save training state to (every ``checkpoint_every`` steps, after each stage
        and window); ``fit(resume=True)`` continues from it bit-identically.
    checkpoint_every : int, optional
        Steps between checkpoints (default 500).
    progress : bool, optional
        Show a tqdm progress bar (default False).
    budget : float, optional
        Multiplier on ``adam_steps`` and ``lbfgs_steps``; None reads ``$SCITIE_PINN_BUDGET``.
    eval_grid : (int, int), optional
        ``(n_x, n_t)`` of the evaluation grid in :attr:`result_` (default ``(256, 101)``).

    Attributes
    ----------
    networks_ : torch.nn.ModuleList
        One network per time window.
    boundary_networks_ : torch.nn.ModuleList
        Shared-mode boundary networks (empty otherwise).
    history_ : list of dict
        Per-step losses.
    result_ : xarray.Dataset
        Evaluation on the grid (see :meth:`evaluate`).
    fit_seconds_ : float
        Wall time of the last ``fit`` call.
    """

    def __init__(self, problem: PDEProblem, *, mode: str = "hard", n_modes: int = 1,
                 trainable_frequency: bool = False, time_features: str | None = None,
                 n_time_features: int = 8, time_scale: float = 1.0,
                 time_period: float | None = None, hidden: Sequence[int] = (64, 64, 64, 64),
                 activation: str = "tanh", architecture: str = "mlp", n_windows: int = 1,
                 warm_start: bool = True, causal_eps: float | None = None,
                 n_causal_chunks: int = 16, n_collocation: int = 2048, n_initial: int = 256,
                 n_boundary: int = 256, ic_weight: float = 10.0, bc_weight: float = 1.0,
                 adam_steps: int = 2000, learning_rate: float = 1e-3, lr_decay: float = 0.9,
                 lr_decay_steps: int = 500, lbfgs_steps: int = 0, resample_every: int = 100,
                 dtype: str = "float64", device: str | None = None, n_threads: int | None = None,
                 random_state: int = 0, checkpoint: str | Path | None = None,
                 checkpoint_every: int = 500, progress: bool = False,
                 budget: float | None = None, eval_grid: tuple[int, int] = (256, 101)) -> None:
        self.problem = problem
        self.mode = mode
        self.n_modes = n_modes
        self.trainable_frequency = trainable_frequency
        self.time_features = time_features
        self.n_time_features = n_time_features
        self.time_scale = time_scale
        self.time_period = time_period
        self.hidden = hidden
        self.activation = activation
        self.architecture = architecture
        self.n_windows = n_windows
        self.warm_start = warm_start
        self.causal_eps = causal_eps
        self.n_causal_chunks = n_causal_chunks
        self.n_collocation = n_collocation
        self.n_initial = n_initial
        self.n_boundary = n_boundary
        self.ic_weight = ic_weight
        self.bc_weight = bc_weight
        self.adam_steps = adam_steps
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.lr_decay_steps = lr_decay_steps
        self.lbfgs_steps = lbfgs_steps
        self.resample_every = resample_every
        self.dtype = dtype
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.budget = budget
        self.eval_grid = eval_grid

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments (scikit-learn convention).

        Parameters
        ----------
        deep : bool, optional
            Ignored; kept for scikit-learn compatibility.

        Returns
        -------
        dict
        """
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params: Any) -> "PeriodicPINN":
        """Set constructor arguments; returns ``self``.

        Parameters
        ----------
        **params
            Names and values of constructor arguments.

        Returns
        -------
        PeriodicPINN
        """
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"unknown parameter {k!r}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def _validate(self) -> None:
        if not isinstance(self.problem, PDEProblem):
            raise TypeError(f"problem must be a PDEProblem; got {type(self.problem).__name__}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {self.mode!r}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32'; got {self.dtype!r}")
        for name in ("n_windows", "n_causal_chunks", "n_collocation", "n_initial", "n_boundary",
                     "resample_every", "checkpoint_every", "lr_decay_steps", "n_modes",
                     "n_time_features"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        for name in ("adam_steps", "lbfgs_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer; got {v!r}")
        for name in ("learning_rate", "lr_decay", "ic_weight", "time_scale"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive finite number; got {v!r}")
        if not isinstance(self.bc_weight, (int, float)) or not self.bc_weight >= 0:
            raise ValueError(f"bc_weight must be a non-negative number; got {self.bc_weight!r}")
        if self.causal_eps is not None and not (self.causal_eps >= 0):
            raise ValueError(f"causal_eps must be None or >= 0; got {self.causal_eps!r}")
        if self.causal_eps is not None and self.n_collocation < self.n_causal_chunks:
            raise ValueError("n_collocation must be at least n_causal_chunks "
                             f"({self.n_causal_chunks}); got {self.n_collocation}")

    # ------------------------------------------------------------------ set-up
    def _torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32

    def _torch_device(self) -> torch.device:
        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _window_edges(self) -> np.ndarray:
        t0, t1 = self.problem.domain_t
        return np.linspace(t0, t1, self.n_windows + 1)

    def _make_network(self, w: int, gen: torch.Generator) -> PINNNetwork:
        edges = self._window_edges()
        return PINNNetwork(
            self.problem.domain_x, (edges[w], edges[w + 1]), mode=self.mode,
            n_modes=self.n_modes, time_features=self.time_features, hidden=self.hidden,
            activation=self.activation, architecture=self.architecture,
            trainable_frequency=self.trainable_frequency, n_time_features=self.n_time_features,
            time_scale=self.time_scale, time_period=self.time_period, generator=gen,
        ).to(device=self._device, dtype=self._dtype)

    def _make_boundary(self, w: int, gen: torch.Generator) -> BoundaryNetwork:
        edges = self._window_edges()
        return BoundaryNetwork((edges[w], edges[w + 1]), (32, 32), self.activation, gen).to(
            device=self._device, dtype=self._dtype)

    # ------------------------------------------------------------------ sampling & loss
    def _sample(self, w: int, gen: torch.Generator, n_col: int) -> dict[str, torch.Tensor]:
        (a, b), edges = self.problem.domain_x, self._window_edges()
        t0, t1 = float(edges[w]), float(edges[w + 1])
        dt, dv = torch.float64, self._device
        x = a + (b - a) * torch.rand(n_col, 1, generator=gen, dtype=dt)
        if self.causal_eps is not None:
            m = self.n_causal_chunks
            per = n_col // m
            u = torch.rand(m, per, generator=gen, dtype=dt)
            t = t0 + (t1 - t0) * (torch.arange(m, dtype=dt)[:, None] + u) / m
            t = t.reshape(-1, 1)
            x = x[: m * per]
        else:
            t = t0 + (t1 - t0) * torch.rand(n_col, 1, generator=gen, dtype=dt)
        xi = a + (b - a) * torch.rand(self.n_initial, 1, generator=gen, dtype=dt)
        tb = t0 + (t1 - t0) * torch.rand(self.n_boundary, 1, generator=gen, dtype=dt)
        pts = {"x": x, "t": t, "x_ic": xi, "t_bc": tb}
        return {k: v.to(device=dv, dtype=self._dtype) for k, v in pts.items()}

    def _ic_target(self, w: int, x_ic: torch.Tensor) -> torch.Tensor:
        if w == 0:
            vals = np.asarray(self.problem.initial(x_ic.detach().cpu().double().numpy()[:, 0]),
                              dtype=float)
            if vals.shape != (x_ic.shape[0],):
                raise ValueError("problem.initial(x) must return one value per point; got shape "
                                 f"{vals.shape} for {x_ic.shape[0]} points")
            return torch.as_tensor(vals, dtype=self._dtype, device=self._device).reshape(-1, 1)
        t_start = float(self._window_edges()[w])
        with torch.no_grad():
            prev = self.networks_[w - 1]
            return prev(x_ic, torch.full_like(x_ic, t_start))

    def _residual(self, net: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        t = t.detach().requires_grad_(True)
        fields = Fields(net(x, t), x, t)
        r = self.problem.residual(fields)
        if not isinstance(r, torch.Tensor):
            raise TypeError(f"residual must return a torch.Tensor; got {type(r).__name__}")
        n = x.shape[0]
        if r.shape not in ((n,), (n, 1)):
            raise ValueError(f"residual must return shape ({n},) (one value per collocation "
                             f"point); got {tuple(r.shape)}")
        return r.reshape(-1)

    def _losses(self, w: int, pts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        net = self.networks_[w]
        r = self._residual(net, pts["x"], pts["t"])
        out: dict[str, torch.Tensor] = {}
        if self.causal_eps is not None:
            per_chunk = (r ** 2).reshape(self.n_causal_chunks, -1).mean(dim=1)
            with torch.no_grad():
                cum = torch.cumsum(per_chunk, 0) - per_chunk
                weights = torch.exp(-float(self.causal_eps) * cum)
            out["residual"] = torch.mean(weights * per_chunk)
            out["causal_min_weight"] = weights.min()
        else:
            out["residual"] = torch.mean(r ** 2)
        u_ic = net(pts["x_ic"], torch.full_like(pts["x_ic"], float(self._window_edges()[w])))
        out["ic"] = torch.mean((u_ic - pts["u_ic"]) ** 2)
        total = out["residual"] + self.ic_weight * out["ic"]
        if self.mode != "hard" and self.bc_weight > 0:
            a, b = self.problem.domain_x
            tb = pts["t_bc"].detach().requires_grad_(True)
            ends = []
            for xe in (a, b):
                xx = torch.full_like(tb, xe).requires_grad_(True)
                u = net(xx, tb)
                (ux,) = torch.autograd.grad(u, xx, torch.ones_like(u), create_graph=True)
                ends.append((u, ux))
            (u0, ux0), (u1, ux1) = ends
            if self.mode == "soft":
                bc = torch.mean((u0 - u1) ** 2) + torch.mean((ux0 - ux1) ** 2)
            else:
                g = self.boundary_networks_[w](pts["t_bc"])
                g0, g1 = g[:, :1], g[:, 1:]
                bc = (torch.mean((u0 - g0) ** 2) + torch.mean((u1 - g0) ** 2)
                      + torch.mean((ux0 - g1) ** 2) + torch.mean((ux1 - g1) ** 2))
            out["bc"] = bc
            total = total + self.bc_weight * bc
        out["total"] = total
        return out

    def _window_params(self, w: int) -> list[nn.Parameter]:
        params = list(self.networks_[w].parameters())
        if self.mode == "shared":
            params += list(self.boundary_networks_[w].parameters())
        return params

    # ------------------------------------------------------------------ checkpoints
    def _save(self, gen: torch.Generator, w: int, stage: str, step: int,
              opt: torch.optim.Optimizer | None, pts: dict[str, torch.Tensor] | None) -> None:
        if self.checkpoint is None:
            return
        state = {
            "version": _CHECKPOINT_VERSION,
            "config": self._config_key(),
            "window": w, "stage": stage, "step": step,
            "networks": [n.state_dict() for n in self.networks_],
            "boundary_networks": [n.state_dict() for n in self.boundary_networks_],
            "optimizer": None if opt is None else opt.state_dict(),
            "generator": gen.get_state(),
            "points": None if pts is None else {k: v.cpu() for k, v in pts.items()},
            "history": list(self.history_),
        }
        path = Path(self.checkpoint)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint

    def _config_key(self) -> dict[str, Any]:
        skip = {"problem", "checkpoint", "checkpoint_every", "progress", "device", "n_threads",
                "budget", "adam_steps", "lbfgs_steps", "eval_grid"}
        key = {k: v for k, v in self.get_params().items() if k not in skip}
        key["hidden"] = list(key["hidden"])
        key["problem"] = (self.problem.name, dict(self.problem.parameters),
                          self.problem.domain_x, self.problem.domain_t)
        return key

    def _load(self) -> dict[str, Any] | None:
        if self.checkpoint is None:
            raise ValueError("resume=True needs checkpoint= (the file to continue from)")
        path = Path(self.checkpoint)
        if not path.exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint {str(path)!r} is not a sciTie PINN checkpoint "
                             f"(version {_CHECKPOINT_VERSION})")
        if state["config"] != self._config_key():
            diff = sorted(k for k in set(state["config"]) | set(self._config_key())
                          if state["config"].get(k) != self._config_key().get(k))
            raise ValueError(f"checkpoint {str(path)!r} was written with different settings "
                             f"({', '.join(diff)}); cannot resume")
        return state

    # ------------------------------------------------------------------ training
    def fit(self, *, resume: bool = False) -> "PeriodicPINN":
        """Train the network(s).

        Parameters
        ----------
        resume : bool, optional
            Continue from ``checkpoint`` when that file exists (default False: start afresh).
            The continuation is bit-identical to an uninterrupted run with the same settings.

        Returns
        -------
        PeriodicPINN
            ``self``.

        Raises
        ------
        TrainingDivergedError
            When the loss becomes NaN or infinite; the last good checkpoint is left in place.
        """
        self._validate()
        self._dtype, self._device = self._torch_dtype(), self._torch_device()
        mult = budget_multiplier(self.budget)
        n_adam = int(round(self.adam_steps * mult))
        n_lbfgs = int(round(self.lbfgs_steps * mult))
        old_threads = torch.get_num_threads()
        threads = self.n_threads
        if threads is None:
            threads = min(4, max(1, (os.cpu_count() or 2) // 2))
        if isinstance(threads, bool) or int(threads) != threads or threads < 1:
            raise ValueError(f"n_threads must be a positive integer or None; got {threads!r}")
        set_threads = self._device.type == "cpu"
        if set_threads:
            torch.set_num_threads(int(threads))
        t_start = time.perf_counter()
        try:
            self._train(resume, n_adam, n_lbfgs)
        finally:
            if set_threads:
                torch.set_num_threads(old_threads)
        self.fit_seconds_ = time.perf_counter() - t_start
        self.n_adam_steps_, self.n_lbfgs_steps_ = n_adam, n_lbfgs
        self.result_ = self.evaluate(*self.eval_grid)
        return self

    def _train(self, resume: bool, n_adam: int, n_lbfgs: int) -> None:
        gen = torch.Generator().manual_seed(int(self.random_state))
        self.networks_ = nn.ModuleList()
        self.boundary_networks_ = nn.ModuleList()
        self.history_: list[dict[str, float]] = []
        state = self._load() if resume else None
        w0, stage0, step0 = 0, "adam", 0
        if state is not None:
            for w in range(len(state["networks"])):
                self.networks_.append(self._make_network(w, gen))
                self.networks_[w].load_state_dict(state["networks"][w])
                if self.mode == "shared":
                    self.boundary_networks_.append(self._make_boundary(w, gen))
                    self.boundary_networks_[w].load_state_dict(state["boundary_networks"][w])
            gen.set_state(state["generator"])
            self.history_ = list(state["history"])
            w0, stage0, step0 = state["window"], state["stage"], state["step"]
            if stage0 == "done":  # the checkpointed run had finished: nothing left to train
                w0 = self.n_windows
        total = self.n_windows * (n_adam + n_lbfgs)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, desc=f"PINN {self.problem.name} ({self.mode})")
            bar.update(min(total, w0 * (n_adam + n_lbfgs)
                           + (step0 if stage0 == "adam" else n_adam + step0)))
        try:
            for w in range(w0, self.n_windows):
                if w >= len(self.networks_):
                    net = self._make_network(w, gen)
                    if self.warm_start and w > 0:
                        net.load_state_dict(self.networks_[w - 1].state_dict())
                    self.networks_.append(net)
                    if self.mode == "shared":
                        bnet = self._make_boundary(w, gen)
                        if self.warm_start and w > 0:
                            bnet.load_state_dict(self.boundary_networks_[w - 1].state_dict())
                        self.boundary_networks_.append(bnet)
                resumed = state if (state is not None and w == w0) else None
                if stage0 == "adam" or resumed is None:
                    self._adam(w, gen, n_adam, resumed if stage0 == "adam" else None, bar)
                    resumed = None if stage0 == "adam" else resumed
                if n_lbfgs > 0:
                    self._lbfgs(w, gen, n_lbfgs, resumed if stage0 == "lbfgs" else None, bar)
                stage0 = "adam"
                if w + 1 < self.n_windows:
                    self._save(gen, w + 1, "adam", 0, None, None)
                else:
                    self._save(gen, w, "done", 0, None, None)
        finally:
            if bar is not None:
                bar.close()

    def _check_finite(self, losses: dict[str, torch.Tensor], w: int, stage: str,
                      step: int) -> None:
        if not torch.isfinite(losses["total"]):
            where = f"window {w}, {stage} step {step}"
            kept = (f"; the last good checkpoint {str(self.checkpoint)!r} was kept"
                    if self.checkpoint is not None and Path(self.checkpoint).exists() else "")
            parts = ", ".join(f"{k}={float(v.detach()):.3g}" for k, v in losses.items())
            raise TrainingDivergedError(
                f"training loss became non-finite at {where} ({parts}){kept}. Lower "
                "learning_rate, use dtype='float64', or check the residual function.")

    def _record(self, w: int, stage: str, step: int, losses: dict[str, torch.Tensor],
                lr: float) -> None:
        rec = {"window": w, "stage": 0 if stage == "adam" else 1, "step": step, "lr": lr}
        rec.update({f"loss_{k}" if k != "causal_min_weight" else k: float(v.detach())
                    for k, v in losses.items()})
        self.history_.append(rec)

    def _adam(self, w: int, gen: torch.Generator, n_steps: int, state: dict | None,
              bar: Any) -> None:
        params = self._window_params(w)
        opt = torch.optim.Adam(params, lr=float(self.learning_rate))
        start, pts = 0, None
        if state is not None:
            start = state["step"]
            if state["optimizer"] is not None:
                opt.load_state_dict(state["optimizer"])
            if state["points"] is not None:
                pts = {k: v.to(device=self._device, dtype=self._dtype)
                       for k, v in state["points"].items()}
        for s in range(start, n_steps):
            if pts is None or s % self.resample_every == 0:
                pts = self._sample(w, gen, int(self.n_collocation))
                pts["u_ic"] = self._ic_target(w, pts["x_ic"])
            lr = float(self.learning_rate) * float(self.lr_decay) ** (s / self.lr_decay_steps)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            losses = self._losses(w, pts)
            self._check_finite(losses, w, "adam", s)
            losses["total"].backward()
            opt.step()
            self._record(w, "adam", s, losses, lr)
            if bar is not None:
                bar.update(1)
                if s % 50 == 0:
                    bar.set_postfix(loss=f"{float(losses['total']):.3e}")
            if (s + 1) % self.checkpoint_every == 0 and s + 1 < n_steps:
                self._save(gen, w, "adam", s + 1, opt, pts)
        self._save(gen, w, "lbfgs", 0, None, None)

    def _lbfgs(self, w: int, gen: torch.Generator, n_iter: int, state: dict | None,
               bar: Any) -> None:
        params = self._window_params(w)
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=_LBFGS_CHUNK,
                                max_eval=4 * _LBFGS_CHUNK, history_size=50,
                                tolerance_grad=1e-14, tolerance_change=1e-16,
                                line_search_fn="strong_wolfe")
        done, pts = 0, None
        if state is not None:
            done = state["step"]
            if state["optimizer"] is not None:
                opt.load_state_dict(state["optimizer"])
            if state["points"] is not None:
                pts = {k: v.to(device=self._device, dtype=self._dtype)
                       for k, v in state["points"].items()}
        if pts is None:
            pts = self._sample(w, gen, 2 * int(self.n_collocation))
            pts["u_ic"] = self._ic_target(w, pts["x_ic"])
        holder: dict[str, dict[str, torch.Tensor]] = {}

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            losses = self._losses(w, pts)
            self._check_finite(losses, w, "lbfgs", done)
            losses["total"].backward()
            holder["losses"] = losses
            return losses["total"]

        while done < n_iter:
            chunk = min(_LBFGS_CHUNK, n_iter - done)
            opt.param_groups[0]["max_iter"] = chunk
            opt.param_groups[0]["max_eval"] = 4 * chunk
            before = opt.state[opt._params[0]].get("n_iter", 0)
            opt.step(closure)
            after = opt.state[opt._params[0]].get("n_iter", 0)
            advanced = after - before
            self._record(w, "lbfgs", done, holder["losses"], 1.0)
            done += chunk
            if bar is not None:
                bar.update(chunk)
                bar.set_postfix(loss=f"{float(holder['losses']['total']):.3e}")
            if advanced == 0:  # converged (no progress possible): stop early
                if bar is not None:
                    bar.update(n_iter - done)
                break
            if done < n_iter and (done // _LBFGS_CHUNK) % max(
                    1, self.checkpoint_every // _LBFGS_CHUNK) == 0:
                self._save(gen, w, "lbfgs", done, opt, pts)

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if not hasattr(self, "networks_") or len(self.networks_) == 0:
            raise RuntimeError("this PeriodicPINN is not fitted yet; call fit() first")

    def _forward_all(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        edges = torch.as_tensor(self._window_edges()[1:-1], dtype=t.dtype, device=t.device)
        idx = torch.bucketize(t[:, 0].detach(), edges, right=True)
        idx = idx.clamp(max=len(self.networks_) - 1)
        out = torch.zeros_like(t)
        for w in range(len(self.networks_)):
            sel = idx == w
            if bool(sel.any()):
                out = out.index_put((sel,), self.networks_[w](x[sel], t[sel]))
        return out

    def predict(self, x: Any, t: Any) -> np.ndarray:
        """The trained ``u`` at points ``(x, t)`` (broadcast against each other).

        Parameters
        ----------
        x, t : array_like
            Coordinates.

        Returns
        -------
        numpy.ndarray
            ``u`` with the broadcast shape of ``x`` and ``t``.
        """
        self._check_fitted()
        try:
            xb, tb = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(t, dtype=float))
        except ValueError:
            raise ValueError(f"x and t must broadcast to one shape; got shapes "
                             f"{np.shape(x)} and {np.shape(t)}") from None
        dt = next(self.networks_[0].parameters()).dtype
        dv = next(self.networks_[0].parameters()).device
        out = []
        xf, tf = xb.ravel(), tb.ravel()
        with torch.no_grad():
            for i in range(0, xf.size, 65536):
                out.append(self._forward_all(_as_column(xf[i:i + 65536], "x", dt, dv),
                                             _as_column(tf[i:i + 65536], "t", dt, dv)))
        if not out:
            return np.zeros(xb.shape)
        return torch.cat(out).cpu().double().numpy().reshape(xb.shape)

    def _traces(self, t: np.ndarray) -> dict[str, np.ndarray]:
        p = next(self.networks_[0].parameters())
        tt = _as_column(t, "t", p.dtype, p.device)
        out = {}
        for xe, end in zip(self.problem.domain_x, ("left", "right")):
            xx = torch.full_like(tt, xe).requires_grad_(True)
            u = self._forward_all(xx, tt)
            (ux,) = torch.autograd.grad(u, xx, torch.ones_like(u))
            out[f"u_{end}"] = u.detach().cpu().double().numpy()[:, 0]
            out[f"ux_{end}"] = ux.detach().cpu().double().numpy()[:, 0]
        if self.mode == "shared":
            edges = torch.as_tensor(self._window_edges()[1:-1], dtype=tt.dtype, device=tt.device)
            idx = torch.bucketize(tt[:, 0], edges, right=True).clamp(max=len(self.networks_) - 1)
            g = torch.zeros(tt.shape[0], 2, dtype=tt.dtype, device=tt.device)
            with torch.no_grad():
                for w in range(len(self.boundary_networks_)):
                    sel = idx == w
                    if bool(sel.any()):
                        g[sel] = self.boundary_networks_[w](tt[sel])
            out["g"], out["gx"] = (g[:, 0].cpu().double().numpy(), g[:, 1].cpu().double().numpy())
        return out

    def boundary_group(self, n_times: int = 11):
        """The periodic tie of this model as a :class:`sciTie.ParameterGroup`, with values.

        See :func:`periodic_tie_group` for the slots and the tie matrix of each mode. Free
        values are the trained traces at ``n_times`` equally spaced times (``u_left`` and
        ``ux_left`` for ``"hard"``, ``g`` and ``gx`` for ``"shared"``, all four traces for
        ``"soft"``); tied slots then read them. The measured mismatch of the network itself is
        :meth:`periodicity_violation`.

        Parameters
        ----------
        n_times : int, optional
            Number of boundary times (default 11).

        Returns
        -------
        sciTie.ParameterGroup
        """
        from ._tying import periodic_tie_group

        self._check_fitted()
        group = periodic_tie_group(self.mode, n_times, bc_weight=float(self.bc_weight or 1.0))
        traces = self._traces(np.linspace(*self.problem.domain_t, int(n_times)))
        free_keys = {"hard": ("u_left", "ux_left"), "shared": ("g", "gx"),
                     "soft": ("u_left", "u_right", "ux_left", "ux_right")}[self.mode]
        for key in free_keys:
            group[key].value = traces[key]
        group.update()
        return group

    def periodicity_violation(self, t: Any) -> tuple[float, float]:
        """``max |u(a,t) - u(b,t)|`` and ``max |u_x(a,t) - u_x(b,t)|`` over times ``t``.

        Parameters
        ----------
        t : array_like
            Times at which both ends are compared.

        Returns
        -------
        (float, float)
        """
        self._check_fitted()
        tr = self._traces(np.asarray(t, dtype=float).ravel())
        return (float(np.max(np.abs(tr["u_left"] - tr["u_right"]))),
                float(np.max(np.abs(tr["ux_left"] - tr["ux_right"]))))

    def evaluate(self, n_x: int = 256, n_t: int = 101) -> xr.Dataset:
        """Prediction, reference and error on an ``n_x`` by ``n_t`` grid, plus loss history.

        Parameters
        ----------
        n_x, n_t : int, optional
            Grid sizes; ``x`` includes both ends of the period, ``t`` both ends of the interval.

        Returns
        -------
        xarray.Dataset
            Variables ``u_pred``, ``u_ref``, ``error`` (dims ``t``, ``x``) when a reference
            exists, and the loss history on dim ``step``; attrs ``rel_l2``,
            ``periodicity_violation``, ``periodicity_violation_ux``, settings and provenance.
        """
        self._check_fitted()
        (a, b), (t0, t1) = self.problem.domain_x, self.problem.domain_t
        x = np.linspace(a, b, int(n_x))
        t = np.linspace(t0, t1, int(n_t))
        pred = self.predict(x[None, :], t[:, None])
        pv, pvx = self.periodicity_violation(t)
        data = {"u_pred": (("t", "x"), pred)}
        attrs: dict[str, Any] = {
            "problem": self.problem.name, "mode": self.mode,
            "periodicity_violation": pv, "periodicity_violation_ux": pvx,
            "reference_source": self.problem.reference_source,
            "fit_seconds": float(getattr(self, "fit_seconds_", float("nan"))),
        }
        attrs.update({f"pde_{k}": v for k, v in self.problem.parameters.items()})
        if self.problem.reference is not None:
            ref = np.asarray(self.problem.reference(x, t), dtype=float)
            data["u_ref"] = (("t", "x"), ref)
            data["error"] = (("t", "x"), pred - ref)
            attrs["rel_l2"] = float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))
        hist = self.history_
        if hist:
            keys = sorted({k for h in hist for k in h})
            for k in keys:
                data[k if k.startswith("loss") or k == "causal_min_weight" else f"history_{k}"] = (
                    ("step",), np.array([h.get(k, np.nan) for h in hist], dtype=float))
        ds = xr.Dataset(data, coords={"x": x, "t": t, "step": np.arange(len(hist))}, attrs=attrs)
        ds["u_pred"].attrs["long_name"] = "PINN prediction"
        ds["x"].attrs["long_name"] = "space"
        ds["t"].attrs["long_name"] = "time"
        return ds
