"""The ``PeriodicPINN`` estimator: settings, ``fit``, prediction and results."""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from .. import errors, io
from ..errors import ValidationError
from ._checkpoint import prepare_checkpoint, settings_key
from ._evaluation import WindowedSolution, evaluation_dataset
from ._initial import HARMONICS
from ._losses import LossWeights, Observations, PINNLoss
from ._network import ACTIVATIONS, MODES, BoundaryNetwork, PINNNetwork, _check_hidden
from ._optimizers import AdamSettings
from ._problems import PDEProblem
from .._estimator import EstimatorParams
from .._progress import progress_bar
from ._settings import (MAX_BATCH, MAX_STEPS, TrainingPlan, budget_multiplier, check_bool,
                        check_window_budget,
                        check_eval_grid, check_nonnegative_float, check_nonnegative_int, check_positive_float,
                        check_positive_int, check_seed, resolve_threads, torch_threads)
from ._trainer import Trainer

__all__ = ["PeriodicPINN"]

# settings that do not change what is trained (a checkpoint may be resumed across them)
_NOT_IN_CHECKPOINT_KEY = {"problem", "checkpoint", "checkpoint_every", "progress", "device",
                          "n_threads", "budget", "adam_steps", "lbfgs_steps", "lm_steps",
                          "eval_grid", "uncertainty_check", "window_budget"}


#: Relative L2 error against the reference above which a training is reported as failed.
SUSPICIOUS_REL_L2 = 0.5


class PeriodicPINN(EstimatorParams):
    """Physics-informed network for a time-dependent PDE, periodic in some space coordinates.

    Parameters
    ----------
    problem : PDEProblem
        The PDE (residual, domains, periodicity, initial condition, optional reference).
    mode : {"hard", "soft", "shared"}, optional
        How periodicity ``u(a) == u(a + L)`` is imposed: ``"hard"`` by the periodic embedding
        (exact for ``u`` and every derivative), ``"soft"`` by a penalty on the values and
        normal slopes at both faces, ``"shared"`` by a boundary network per periodic coordinate
        that both faces must match. Default ``"hard"``.
    n_modes : int, optional
        Harmonics of the periodic embedding per periodic coordinate.
    trainable_frequency : bool, optional
        Train the period of every periodic coordinate (one free frequency shared by all its
        harmonics; hard mode). Default False.
    time_features : {None, "fourier", "periodic"}, optional
        Time features (default None: scaled ``t``).
    n_time_features : int, optional
        Fourier frequencies or periodic time harmonics (default 8).
    time_scale : float, optional
        Standard deviation of Fourier time frequencies, in cycles per window (default 1).
    time_period : float, optional
        Initial period of periodic time features (default: twice the window length).
    hidden : sequence of int, optional
        Hidden widths.
    activation : str, optional
        ``"tanh"``, ``"sin"``, ``"gelu"``, ``"silu"``.
    architecture : {"mlp", "modified"}, optional
        Plain or modified MLP.
    n_windows : int, optional
        Time-marching windows (1: the whole interval at once). Each window has its own
        network whose initial condition is the previous window's prediction.
    warm_start : bool, optional
        Start each window's network from the previous window's weights (default True).
    window_budget : sequence of float, optional
        Step multipliers of the first windows: window ``w`` trains ``window_budget[w]`` times
        the Adam, L-BFGS and Levenberg-Marquardt steps of a window (rounded; windows past
        the sequence: 1). Time marching carries the first windows' error into every later
        one, so that is where extra steps pay. ``()`` trains every window alike (the generic
        default); at most ``n_windows`` entries, each positive.
    causal_eps : float, optional
        Causal weighting strength (Wang, Sankaran & Perdikaris 2024); None switches it off.
    n_causal_chunks : int, optional
        Time chunks for causal weighting (default 16).
    n_collocation, n_initial, n_boundary : int, optional
        Points per batch for the residual, the initial condition and the face terms.
    ic_weight, bc_weight : float, optional
        Loss weights of the initial condition and of the face terms (periodicity in soft and
        shared mode, boundary conditions of non-periodic coordinates).
    initial_condition : {"soft", "hard"}, optional
        ``"soft"`` (default): the initial condition is a loss term of weight ``ic_weight``.
        ``"hard"``: it is built into every window's network, ``output(x, t) = g(x) +
        phi(t - t0) N(x, t)`` with ``phi(t0) = 0``, so it holds by construction and cannot be
        traded against the residual (the loss term is dropped). ``g`` is the trigonometric
        interpolant of the initial values (the problem's in the first window, the previous
        window's network at ``t0`` in the others) on ``2 K + 1`` points per coordinate
        (``K = 256`` in 1-D, 24 in 2-D): exactly periodic, so periodicity stays exact in hard
        mode. Needs every space coordinate periodic and fixed periods.
    ic_timescale : float, optional
        With ``initial_condition="hard"``: ``phi = 1 - exp(-(t - t0) / ic_timescale)``, for
        a solution that moves fast at the start of a window; None (default):
        ``phi = (t - t0) / (t1 - t0)``.
    adam_steps : int, optional
        Adam steps per window, scaled by the budget.
    learning_rate : float, optional
        Initial Adam rate.
    lr_decay, lr_decay_steps : float, int, optional
        The rate is ``learning_rate * lr_decay ** (step / lr_decay_steps)``.
    lbfgs_steps : int, optional
        L-BFGS iterations per window after Adam, scaled by the budget.
    lm_steps : int, optional
        Levenberg-Marquardt (Gauss-Newton) iterations per window after L-BFGS, scaled by the
        budget. Each forms the full Jacobian of the loss rows: worth it for networks of a few
        thousand weights, where it reaches far smaller residuals.
    resample_every : int, optional
        Draw new Adam collocation points every this many steps.
    lm_resample_every : int, optional
        Draw new Levenberg-Marquardt points every this many iterations (0: one point set per
        window, the generic default).
    dtype : {"float64", "float32"}, optional
        Floating-point type (default ``"float64"``).
    device : str, optional
        Torch device; default ``"cuda"`` when available, else ``"cpu"``.
    n_threads : int, optional
        CPU threads during ``fit`` (torch's setting is restored afterwards); None reads the
        ``n_threads`` setting of :func:`sciTie.set_config`, else picks
        ``min(4, max(1, cpu_count // 2))``. Ignored on CUDA.
    random_state : int, optional
        Seed for weights, random features and collocation points (default 0).
    checkpoint : str or Path, optional
        File to save training state to (every ``checkpoint_every`` steps, after each stage
        and window); ``fit(resume=True)`` continues from it bit-identically. An existing file
        that is not a checkpoint of this model is never replaced unless
        ``fit(overwrite=True)``.
    checkpoint_every : int, optional
        Steps between checkpoints (default 500).
    progress : bool, optional
        Show a progress bar; None (default) follows the ``progress`` setting (on in a
        terminal, off in pipes and tests).
    budget : float, optional
        Multiplier on the step counts; None reads the ``budget`` setting
        (:func:`sciTie.set_config`, default 1).
    eval_grid : tuple of int, optional
        Grid sizes of :attr:`result_`, space first, then time (without a recommendation
        ``(256, 101)`` in 1-D, ``(64, 64, 11)`` in 2-D).
    learn : dict of str to float, optional
        PDE coefficients to learn from observations (inverse problems), with their starting
        values, e.g. ``{"beta": 30.0}``; needs ``n_windows=1`` and ``fit(X, y)``.
    data_weight : float, optional
        Weight of the observation misfit (default 1).
    noise_std : float, optional
        Standard deviation of the observation noise, if known; otherwise the uncertainty of
        learnt quantities uses the noise estimated from the misfit.
    uncertainty_check : {"profile", None}, optional
        Check the Laplace standard errors of learnt quantities against a second method: the
        profile of the objective, each quantity held at its estimate and at plus and minus
        three standard errors while the network is retrained (a few Gauss-Newton iterations,
        then the minimum of the Gauss-Newton model; see :mod:`sciTie.pinn._profile`).
        A disagreement beyond a factor of 2, a fit that reproduces the data better than the
        known noise allows, or a positive coefficient collapsed towards zero warns
        (:class:`~sciTie.errors.IdentifiabilityWarning`). Default ``"profile"``; None skips
        it (with the Laplace approximation it cost 0.3 of the fit on convection).

    Settings left at None take the problem's recommendation,
    ``recommended_settings(problem, mode=mode, inverse=...)`` (:func:`recommended_settings`):
    what a bundled problem recommends, else the generic defaults (:data:`GENERIC
    <sciTie.pinn._recipes.GENERIC>`: one window of a 2x32 tanh network with 2 harmonics, 500
    Adam steps at 3e-3 then 40 Levenberg-Marquardt iterations, 1024 collocation and 256
    initial points, initial-condition weight 10). The problem's recipe uses the same ones,
    so a problem has one set of defaults; :attr:`settings_` holds those a fit used.

    Attributes
    ----------
    networks_ : torch.nn.ModuleList
        One network per time window.
    boundary_networks_ : list of torch.nn.ModuleDict
        Shared-mode boundary networks per window (empty otherwise).
    tied_ : torch.nn.ModuleList
        Per window, the :class:`sciTie.core.torch.TiedParameters` the window's parameter
        group was trained through.
    coefficients_ : dict of str to float
        Learnt coefficients (inverse problems).
    periods_ : dict of str to float
        The period of each periodic coordinate at the end of training (learnt with
        ``trainable_frequency``; the last window's).
    uncertainty_ : LaplaceResult or None
        With observations: the learnt coefficients and periods with their Laplace covariance
        (the PDE as a tie); see :mod:`sciTie.pinn._uncertainty`.
    settings_ : dict
        Every setting the last ``fit`` used, the problem's recommendations filled in.
    uncertainty_check_ : dict or None
        The second uncertainty method's result for each learnt quantity (profile standard
        error, its ratio to the Laplace one) and the warnings it raised.
    history_ : list of dict
        One record per Adam step, L-BFGS chunk or Levenberg-Marquardt iteration.
    group_ : sciTie.ParameterGroup
        The group the model trained (see :func:`sciTie.pinn.window_group`): every PDE
        coefficient, the period of every periodic coordinate and its embedding's harmonic
        frequencies tied to it, the shared boundary networks; free where trained. One child
        group per window with several windows.
    result_ : sciTie.FitResult
        Parameters with standard errors (learnt ones), statistics (``rel_l2``,
        ``periodicity_violation``, ``final_loss`` ...), and the evaluation grid of
        :meth:`evaluate` as ``result_.data``.
    fit_seconds_ : float
        Wall time of the training in the last ``fit`` call.
    fit_cpu_seconds_ : float
        CPU time of this process during that training (all its threads): on a shared machine
        the honest measure of the work done.
    n_adam_steps_, n_lbfgs_steps_, n_lm_steps_ : int
        Planned Adam steps, L-BFGS and Levenberg-Marquardt iterations of the whole run (every
        window, ``budget`` and ``window_budget`` applied; Levenberg-Marquardt may stop a
        window early once no step lowers its loss).
    """

    def __init__(self, problem: PDEProblem, *, mode: str = "hard", n_modes: int | None = None,
                 trainable_frequency: bool = False, time_features: str | None = None,
                 n_time_features: int = 8, time_scale: float = 1.0,
                 time_period: float | None = None, hidden: Sequence[int] | None = None,
                 activation: str | None = None, architecture: str | None = None,
                 n_windows: int | None = None, warm_start: bool = True,
                 window_budget: Sequence[float] | None = None,
                 causal_eps: float | None = None, n_causal_chunks: int = 16,
                 n_collocation: int | None = None, n_initial: int | None = None,
                 n_boundary: int | None = None, ic_weight: float | None = None,
                 bc_weight: float | None = None, adam_steps: int | None = None,
                 initial_condition: str = "soft", ic_timescale: float | None = None,
                 learning_rate: float | None = None, lr_decay: float | None = None,
                 lr_decay_steps: int | None = None, lbfgs_steps: int | None = None,
                 lm_steps: int | None = None, resample_every: int | None = None,
                 lm_resample_every: int | None = None,
                 dtype: str = "float64", device: str | None = None,
                 n_threads: int | None = None, random_state: int = 0,
                 checkpoint: str | Path | None = None, checkpoint_every: int = 500,
                 progress: bool | None = None, budget: float | None = None,
                 eval_grid: tuple[int, ...] | None = None,
                 learn: dict[str, float] | None = None, data_weight: float = 1.0,
                 noise_std: float | None = None, uncertainty_check: str | None = "profile"
                 ) -> None:
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
        self.window_budget = window_budget
        self.causal_eps = causal_eps
        self.n_causal_chunks = n_causal_chunks
        self.n_collocation = n_collocation
        self.n_initial = n_initial
        self.n_boundary = n_boundary
        self.ic_weight = ic_weight
        self.bc_weight = bc_weight
        self.initial_condition = initial_condition
        self.ic_timescale = ic_timescale
        self.adam_steps = adam_steps
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.lr_decay_steps = lr_decay_steps
        self.lbfgs_steps = lbfgs_steps
        self.lm_steps = lm_steps
        self.resample_every = resample_every
        self.lm_resample_every = lm_resample_every
        self.dtype = dtype
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.progress = progress
        self.budget = budget
        self.eval_grid = eval_grid
        self.learn = learn
        self.data_weight = data_weight
        self.noise_std = noise_std
        self.uncertainty_check = uncertainty_check

    # ------------------------------------------------------------------ validation
    def _default_grid(self) -> tuple[int, ...]:
        return (256, 101) if len(self.problem.space) == 1 else (64, 64, 11)

    def _inverse(self) -> bool:
        """Whether the settings are those of an inverse problem (something is learnt)."""
        return bool(self.learn) or self.trainable_frequency is True

    def _resolved_settings(self) -> dict[str, Any]:
        """Every constructor setting, those left at None filled from the problem's
        recommendation (:func:`recommended_settings`)."""
        from ._recipes import RECOMMENDABLE, recommended_settings

        out = {k: v for k, v in self.get_params().items() if k != "problem"}
        if not any(out[k] is None for k in RECOMMENDABLE):
            return out
        rec = recommended_settings(self.problem, mode=self.mode, inverse=self._inverse())
        for k in RECOMMENDABLE:
            if out[k] is None:
                out[k] = rec[k]
        return out

    def _validate(self) -> TrainingPlan:
        """Check every setting; return the resolved plan. Nothing heavy happens before this."""
        if not isinstance(self.problem, PDEProblem):
            raise ValidationError(f"problem must be a PDEProblem; got "
                                  f"{type(self.problem).__name__}")
        p = self.problem
        if self.mode not in MODES:
            raise ValidationError(f"mode must be one of {MODES}; got {self.mode!r}")
        if self.mode != "hard":
            odd = [c for c in p.periodic if not p.faces_match_period(c)]
            if odd:
                raise ValidationError(
                    f"mode={self.mode!r} compares the faces of each periodic coordinate, so its "
                    f"period must equal its interval; not so for {odd}: use mode='hard'")
        for name in ("warm_start", "trainable_frequency"):
            check_bool(getattr(self, name), name)
        if self.progress is not None:
            check_bool(self.progress, "progress")
        s = self._resolved_settings()
        if self.dtype not in ("float64", "float32"):
            raise ValidationError(f"dtype must be 'float64' or 'float32'; got {self.dtype!r}")
        for name in ("n_windows", "n_causal_chunks", "n_collocation", "n_initial", "n_boundary",
                     "resample_every", "checkpoint_every", "lr_decay_steps", "n_modes",
                     "n_time_features"):
            check_positive_int(s[name], name)
        for name in ("n_collocation", "n_initial", "n_boundary"):
            if s[name] > MAX_BATCH:
                raise ValidationError(f"{name}={s[name]} points per batch is more "
                                      f"than {MAX_BATCH} (each keeps its activations for the "
                                      "derivatives); use more steps instead")
        s["hidden"] = _check_hidden(s["hidden"])
        for name in ("adam_steps", "lbfgs_steps", "lm_steps", "lm_resample_every"):
            check_nonnegative_int(s[name], name)
        for name in ("learning_rate", "lr_decay", "time_scale"):
            check_positive_float(s[name], name)
        if s["lr_decay"] > 1:
            raise ValidationError(f"lr_decay must lie in (0, 1] (the rate is multiplied by it "
                                  f"every lr_decay_steps); got {s['lr_decay']!r}")
        for name in ("ic_weight", "bc_weight", "data_weight"):
            check_nonnegative_float(s[name], name)
        if self.trainable_frequency and s["n_windows"] != 1:
            raise ValidationError("trainable_frequency needs n_windows=1 (one period, learnt "
                                  "by one network)")
        if self.trainable_frequency and self.mode != "hard":
            raise ValidationError("trainable_frequency needs mode='hard' (only the periodic "
                                  "embedding has a period to train)")
        if self.time_period is not None:
            check_positive_float(self.time_period, "time_period")
        self._check_initial_condition()
        if self.noise_std is not None:
            check_positive_float(self.noise_std, "noise_std")
        if self.uncertainty_check not in (None, "profile"):
            raise ValidationError(f"uncertainty_check must be 'profile' or None; got "
                                  f"{self.uncertainty_check!r}")
        if self.time_features not in (None, "fourier", "periodic"):
            raise ValidationError("time_features must be None, 'fourier' or 'periodic'; "
                                  f"got {self.time_features!r}")
        if s["activation"] not in ACTIVATIONS:
            raise ValidationError(f"activation must be one of {sorted(ACTIVATIONS)}; "
                                  f"got {s['activation']!r}")
        if s["architecture"] not in ("mlp", "modified"):
            raise ValidationError(f"architecture must be 'mlp' or 'modified'; "
                                  f"got {s['architecture']!r}")
        if s["architecture"] == "modified" and len(set(s["hidden"])) != 1:
            raise ValidationError(f"architecture='modified' needs equal hidden widths; got "
                                  f"{list(s['hidden'])}")
        if self.causal_eps is not None:
            check_nonnegative_float(self.causal_eps, "causal_eps")
            if s["n_collocation"] < self.n_causal_chunks:
                raise ValidationError("n_collocation must be at least n_causal_chunks "
                                      f"({self.n_causal_chunks}); got {s['n_collocation']}")
        check_seed(self.random_state)
        self._check_learn(s["n_windows"])
        s["window_budget"] = check_window_budget(s["window_budget"], s["n_windows"])
        s["eval_grid"] = check_eval_grid(s["eval_grid"] if s["eval_grid"] is not None
                                         else self._default_grid(), len(p.coordinates),
                                         p.coordinates)
        device = self._torch_device()
        threads = resolve_threads(self.n_threads) if device.type == "cpu" else None
        mult = budget_multiplier(self.budget)
        for name in ("adam_steps", "lbfgs_steps", "lm_steps"):
            steps = s[name] * mult * max(s["window_budget"], default=1.0)
            if not math.isfinite(steps) or steps > MAX_STEPS:
                raise ValidationError(f"{name}={s[name]} times the budget {mult:g} "
                                      f"is {steps:.3g} steps; at most {MAX_STEPS:.0e}")
        checkpoint = None
        if self.checkpoint is not None:
            checkpoint = io.as_path(self.checkpoint, "checkpoint")
        t0, t1 = p.domain_t
        return TrainingPlan(
            dtype=torch.float64 if self.dtype == "float64" else torch.float32, device=device,
            n_adam=int(round(s["adam_steps"] * mult)),
            n_lbfgs=int(round(s["lbfgs_steps"] * mult)), n_lm=int(round(s["lm_steps"] * mult)),
            threads=threads, window_edges=np.linspace(t0, t1, s["n_windows"] + 1),
            eval_grid=s["eval_grid"], checkpoint=checkpoint, settings=s,
            window_budget=s["window_budget"])

    def _check_initial_condition(self) -> None:
        if self.initial_condition not in ("soft", "hard"):
            raise ValidationError(f"initial_condition must be 'soft' or 'hard'; got "
                                  f"{self.initial_condition!r}")
        if self.ic_timescale is not None:
            check_positive_float(self.ic_timescale, "ic_timescale")
        if self.initial_condition != "hard":
            if self.ic_timescale is not None:  # a setting that would change nothing
                raise ValidationError(f"ic_timescale={self.ic_timescale!r} applies only to "
                                      f"initial_condition='hard' (the initial values built into "
                                      f"the network); got initial_condition="
                                      f"{self.initial_condition!r}")
            return
        odd = [c for c in self.problem.space if c not in self.problem.periodic]
        if odd:
            raise ValidationError(f"initial_condition='hard' writes the initial values as a "
                                  f"trigonometric polynomial, so every space coordinate must be "
                                  f"periodic; {odd} are not: use initial_condition='soft'")
        if self.trainable_frequency:
            raise ValidationError("initial_condition='hard' needs fixed periods; got "
                                  "trainable_frequency=True")

    def _check_learn(self, n_windows: int) -> None:
        if self.learn is None:
            return
        if not isinstance(self.learn, dict) or not self.learn:
            raise ValidationError("learn must be a non-empty dict {coefficient: starting "
                                  f"value}}; got {self.learn!r}")
        for name, value in self.learn.items():
            if name not in self.problem.parameters:
                raise ValidationError(f"learn names {name!r}, which is not a coefficient of "
                                      f"problem {self.problem.name!r} "
                                      f"({sorted(self.problem.parameters)})")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not math.isfinite(float(value)):
                raise ValidationError(f"learn[{name!r}] must be a finite starting value; "
                                      f"got {value!r}")
            if name in self.problem.positive and not float(value) > 0:
                raise ValidationError(f"learn[{name!r}] must be positive: {name} is a positive "
                                      f"coefficient of problem {self.problem.name!r} (learnt "
                                      f"through its logarithm); got {value!r}")
        if n_windows != 1:
            raise ValidationError("learning coefficients needs n_windows=1 (one network sees "
                                  "all observations)")

    def _torch_device(self) -> torch.device:
        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValidationError(f"device must be a torch device name ('cpu', 'cuda', "
                                  f"'cuda:0'); got {self.device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValidationError(f"device={self.device!r} but CUDA is not available (this "
                                  "torch build or machine has no usable GPU); use 'cpu'")
        if device.type == "meta":
            raise ValidationError("device='meta' holds no values; use 'cpu' or 'cuda'")
        try:  # torch reports a device it was not built for with AssertionError or RuntimeError
            torch.zeros(1, device=device)
        except (AssertionError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            first = first if len(first) <= 120 else first[:117] + "..."
            raise ValidationError(f"device={self.device!r} is not usable here ({first}); use "
                                  "'cpu'") from None
        return device

    def _settings_key(self, settings: dict[str, Any]) -> str:
        """What a checkpoint must match: every setting that changes training, and the
        problem's fingerprint (coefficients, domains, periodicity, and the source of the
        residual, initial and boundary functions)."""
        key = {k: v for k, v in settings.items() if k not in _NOT_IN_CHECKPOINT_KEY}
        key["hidden"] = [int(h) for h in key["hidden"]]
        key["problem"] = self.problem.fingerprint()
        return settings_key(key)

    def _observations(self, X: Any, y: Any, observed: Any,
                      plan: TrainingPlan) -> Observations | None:
        p = self.problem
        if X is None and y is None:
            if self.learn:
                raise ValidationError("learn= needs observations: call fit(X, y)")
            return None
        if X is None or y is None:
            raise ValidationError("give both X (observation coordinates) and y (observed "
                                  "values), or neither")
        outputs = p.outputs[:1] if observed is None else (
            (observed,) if isinstance(observed, str) else tuple(observed))
        bad = [o for o in outputs if o not in p.outputs]
        if bad or not outputs:
            raise ValidationError(f"observed must name outputs of the problem {p.outputs}; "
                                  f"got {observed!r}")
        try:
            if any(np.asarray(v).dtype.kind not in "iuf" for v in (X, y)):
                raise TypeError  # booleans, text, objects: not coordinates or values
            Xa = np.asarray(X, dtype=float)
            ya = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise ValidationError("X and y must be numeric arrays") from None
        n_coords = len(p.coordinates)
        if Xa.ndim != 2 or Xa.shape[1] != n_coords:
            raise ValidationError(f"X must have shape (n, {n_coords}) with columns "
                                  f"{', '.join(p.coordinates)}; got {Xa.shape}")
        if ya.ndim == 1:
            ya = ya[:, None]
        if ya.shape != (Xa.shape[0], len(outputs)):
            raise ValidationError(f"y must have shape ({Xa.shape[0]},) or ({Xa.shape[0]}, "
                                  f"{len(outputs)}) for observed outputs {outputs}; got "
                                  f"{np.shape(y)}")
        if Xa.shape[0] == 0:
            raise ValidationError("X holds no observations")
        if not (np.all(np.isfinite(Xa)) and np.all(np.isfinite(ya))):
            raise ValidationError("X and y must be finite (no NaN or inf)")
        for i, c in enumerate(p.coordinates):
            lo, hi = p.domain(c)
            tol = 1e-12 * max(1.0, abs(lo), abs(hi))
            if Xa[:, i].min() < lo - tol or Xa[:, i].max() > hi + tol:
                raise ValidationError(f"X column {i} ({c}) must lie in the problem's interval "
                                      f"[{lo}, {hi}]; got [{Xa[:, i].min()}, {Xa[:, i].max()}]")
        return Observations(torch.as_tensor(Xa, dtype=plan.dtype, device=plan.device),
                            torch.as_tensor(ya, dtype=plan.dtype, device=plan.device), outputs)

    # ------------------------------------------------------------------ networks
    def _make_network(self, w: int, gen: torch.Generator, plan: TrainingPlan) -> PINNNetwork:
        p, s = self.problem, plan.settings
        return PINNNetwork(
            p.domain_x, plan.window(w), mode=self.mode, n_modes=s["n_modes"],
            time_features=self.time_features, hidden=s["hidden"], activation=s["activation"],
            architecture=s["architecture"], trainable_frequency=False,
            n_time_features=self.n_time_features, time_scale=self.time_scale,
            time_period=self.time_period, generator=gen, domain_y=p.domain_y,
            periodic=p.periodic, periods=p.periods, n_outputs=len(p.outputs),
            initial_harmonics=(HARMONICS[len(p.space)] if self.initial_condition == "hard"
                               else None), initial_timescale=self.ic_timescale,
        ).to(device=plan.device, dtype=plan.dtype)

    def _make_boundary(self, w: int, gen: torch.Generator,
                       plan: TrainingPlan) -> nn.ModuleDict:
        if self.mode != "shared":
            return nn.ModuleDict()
        p = self.problem
        out = nn.ModuleDict()
        for c in p.periodic:
            domains = [p.domain(o) for o in p.space if o != c] + [plan.window(w)]
            out[c] = BoundaryNetwork(domains, (32, 32), plan.settings["activation"], gen,
                                     n_fields=len(p.outputs)).to(device=plan.device,
                                                                 dtype=plan.dtype)
        return out

    # ------------------------------------------------------------------ training
    def fit(self, X: Any = None, y: Any = None, *, observed: Sequence[str] | None = None,
            resume: bool = False, overwrite: bool = False) -> "PeriodicPINN":
        """Train the network(s).

        Parameters
        ----------
        X : array_like, optional
            Observation coordinates ``(n, n_coords)`` (space first, then time) for an inverse
            problem or data assimilation.
        y : array_like, optional
            Observed values ``(n,)`` or ``(n, len(observed))``.
        observed : sequence of str, optional
            The observed outputs (default: the first output).
        resume : bool, optional
            Continue from ``checkpoint`` (it must exist and come from the same settings). The
            continuation is bit-identical to an uninterrupted run.
        overwrite : bool, optional
            Allow replacing a ``checkpoint`` file that is not a checkpoint of this model.

        Returns
        -------
        PeriodicPINN
            ``self``.

        Raises
        ------
        sciTie.errors.ValidationError
            A bad setting or argument (before any training).
        sciTie.errors.CheckpointError
            ``resume=True`` without a usable checkpoint of this model.
        sciTie.errors.OutputExistsError
            ``checkpoint`` names a file that is not a checkpoint of this model.
        sciTie.errors.TrainingDivergedError
            The loss became NaN or infinite; the last good checkpoint is left in place.
        """
        plan = self._validate()
        check_bool(resume, "resume")
        check_bool(overwrite, "overwrite")
        observations = self._observations(X, y, observed, plan)
        s = plan.settings
        key = self._settings_key(s)
        state = prepare_checkpoint(plan.checkpoint, resume=resume, overwrite=overwrite,
                                   settings=key, n_windows=plan.n_windows)
        loss = PINNLoss(self.problem, self.mode,
                        LossWeights(ic=(0.0 if self.initial_condition == "hard"  # built in
                                        else float(s["ic_weight"])), bc=float(s["bc_weight"]),
                                    data=float(s["data_weight"]),
                                    causal_eps=None if self.causal_eps is None
                                    else float(self.causal_eps),
                                    n_causal_chunks=int(self.n_causal_chunks)))
        trainer = Trainer(
            self.problem, plan, loss,
            make_network=lambda w, g: self._make_network(w, g, plan),
            make_boundary=lambda w, g: self._make_boundary(w, g, plan),
            make_group=lambda w, boundary: self._make_group(w, boundary, plan),
            observations=observations,
            settings=dict(mode=self.mode, warm_start=self.warm_start,
                          n_initial=int(s["n_initial"]), n_boundary=int(s["n_boundary"]),
                          causal_chunks=(int(self.n_causal_chunks)
                                         if self.causal_eps is not None else None),
                          checkpoint_every=int(self.checkpoint_every),
                          adam=AdamSettings(float(s["learning_rate"]), float(s["lr_decay"]),
                                            int(s["lr_decay_steps"]), int(s["resample_every"]),
                                            int(s["n_collocation"])),
                          n_collocation=int(s["n_collocation"]),
                          lm_resample_every=int(s["lm_resample_every"]), settings_key=key,
                          seed=int(self.random_state)))
        bar = progress_bar(trainer.total_steps(), f"PINN {self.problem.name} ({self.mode})",
                           progress=self.progress, unit="step")
        t_start, cpu_start = time.perf_counter(), time.process_time()
        try:
            with torch_threads(plan.threads):
                trainer.run(state, bar)
        finally:
            if bar is not None:
                bar.close()
        self.fit_seconds_ = time.perf_counter() - t_start
        self.fit_cpu_seconds_ = time.process_time() - cpu_start
        self.networks_ = trainer.networks
        self.boundary_networks_ = [nn.ModuleDict(t) for t in trainer.templates
                                   ] if self.mode == "shared" else []
        self.tied_ = trainer.tied
        self.history_ = trainer.history
        planned = [plan.stage_steps(w) for w in range(plan.n_windows)]
        self.n_adam_steps_, self.n_lbfgs_steps_, self.n_lm_steps_ = (
            sum(p[k] for p in planned) for k in ("adam", "lbfgs", "lm"))
        self._plan = plan
        self.settings_ = dict(s)
        with torch.no_grad():
            last = self.tied_[-1].values()
            self.coefficients_ = {k: float(last[k]) for k in (self.learn or {})}
            self.periods_ = {c: float(last[f"period_{c}"]) for c in self.problem.periodic}
        self.uncertainty_ = self.uncertainty_check_ = None
        if observations is not None and plan.n_windows == 1 and (
                self.learn or self.trainable_frequency):
            with torch_threads(plan.threads):
                self.uncertainty_, self.uncertainty_check_ = self._uncertainty(trainer,
                                                                              observations)
        self._build_result(observations)
        self._warn_if_suspicious()
        return self

    def _warn_if_suspicious(self) -> None:
        """A training that ended far from the solution does not pass silently."""
        stats = self.result_.statistics
        bad = {k: v for k, v in stats.items() if k.startswith("rel_l2")
               and isinstance(v, (int, float)) and v > SUSPICIOUS_REL_L2}
        if bad:
            shown = ", ".join(f"{k} = {v:.3g}" for k, v in bad.items())
            warnings.warn(f"PeriodicPINN: the trained solution is far from the reference "
                          f"({shown}, above {SUSPICIOUS_REL_L2:g}): training has not converged "
                          "or found a wrong solution (more steps, time windows, or causal "
                          "weighting)", errors.ConvergenceWarning, stacklevel=3)
        history = self.history_
        if len(history) >= 2 and history[-1]["loss_total"] >= history[0]["loss_total"]:
            warnings.warn(f"PeriodicPINN: training did not reduce the loss (from "
                          f"{history[0]['loss_total']:.3g} to {history[-1]['loss_total']:.3g}); "
                          "lower learning_rate or check the residual", errors.ConvergenceWarning,
                          stacklevel=3)

    def _make_group(self, w: int, boundary: dict[str, nn.Module], plan: TrainingPlan):
        from ._tying import window_group

        group = window_group(self.problem, mode=self.mode, n_modes=int(plan.settings["n_modes"]),
                             learn=dict(self.learn or {}), periods=dict(self.problem.periods),
                             trainable_periods=bool(self.trainable_frequency),
                             boundary=boundary,
                             name="pinn" if plan.n_windows == 1 else f"window_{w}")
        return group

    def _trained_group(self):
        """The group the model trained: the window group (one window), or one child group
        per window."""
        from ..core import ParameterGroup

        groups = [t.to_group() for t in self.tied_]
        if len(groups) == 1:
            return groups[0]
        parent = ParameterGroup("pinn", description=f"periodic PINN, problem "
                                                    f"{self.problem.name!r}, one group per "
                                                    "time window")
        for g in groups:
            parent.add_group(g)
        return parent

    def _build_result(self, observations: Observations | None) -> None:
        from ._results import build_result

        plan = self._plan
        self.group_ = self._trained_group()
        data = self.evaluate(*plan.eval_grid)
        stages = [name for name, n in (("Adam", plan.n_adam), ("L-BFGS", plan.n_lbfgs),
                                       ("Levenberg-Marquardt", plan.n_lm)) if n > 0]
        hist = self.history_
        ndata = (int(observations.points.shape[0]) if observations is not None
                 else int(plan.settings["n_collocation"]) * plan.n_windows)
        self.result_ = build_result(
            group=self.group_, uncertainty=self.uncertainty_, data=data, ndata=ndata,
            method=" + ".join(stages) + f", {plan.n_windows} time window(s)",
            seconds=self.fit_seconds_, n_steps=int(sum(h.get("iterations", 1) for h in hist)),
            final_loss=hist[-1]["loss_total"] if hist else float("nan"),
            attrs={k: v for k, v in data.attrs.items()
                   if k in ("model", "sciTie_version", "created", "python_version",
                            "numpy_version", "settings", "random_seed", "inputs")})

    # ------------------------------------------------------------------ results
    def report(self, min_correl: float = 0.1) -> str:
        """The fit report: settings, figures of merit, coefficients and periods (learnt ones
        with their standard errors, and the check of those standard errors).

        Parameters
        ----------
        min_correl : float, optional
            Smallest correlation listed (default 0.1).

        Returns
        -------
        str
        """
        self._check_fitted("report")
        p = self.problem
        head = (f"Periodic PINN, problem {p.name!r} ({self.mode} periodicity in "
                f"{', '.join(p.periodic) or 'no coordinate'}), {len(self.networks_)} time "
                f"window(s), hidden {tuple(int(h) for h in self.settings_['hidden'])}")
        text = head + "\n" + self.result_.report(min_correl=min_correl)
        check = getattr(self, "uncertainty_check_", None)
        if check:
            lines = ["[[Uncertainty check]] (profile of the objective, networks retrained)"]
            for name, q in check["quantities"].items():
                lines.append(f"    {name}: Laplace stderr of {q['free']} "
                             f"{q['laplace_stderr']:.3g}, profile {q['profile_stderr']:.3g} "
                             f"({q['ratio']:.2f} times)")
            if "misfit_ratio" in check:
                lines.append(f"    misfit / known noise = {check['misfit_ratio']:.3f}")
            lines += [f"    WARNING: {w}" for w in check["warnings"]]
            text += "\n" + "\n".join(lines)
        return text

    def to_xarray(self) -> xr.Dataset:
        """The result as one Dataset: fields, errors and loss history with the parameters,
        their covariance, statistics and provenance (``result_.to_xarray()``).

        Returns
        -------
        xarray.Dataset
        """
        self._check_fitted("to_xarray")
        return self.result_.to_xarray()

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Plot the result (see :func:`plot_result`): the whole figure, or one panel into ``ax``.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw one panel (``panel="pred" | "ref" | "error" | "loss"``) there.
        **kwargs
            Passed to :func:`plot_result`.
        """
        self._check_fitted("plot")
        if ax is not None and not callable(getattr(ax, "plot", None)):
            raise ValidationError(f"ax must be a matplotlib Axes or None; got "
                                  f"{type(ax).__name__}")
        return self.result_.plot(ax=ax, **kwargs)

    def _uncertainty(self, trainer: Trainer, observations: Observations):
        """The Laplace uncertainty of the learnt quantities and, with ``uncertainty_check``,
        its check against the profile of the objective (see :mod:`sciTie.pinn._profile`)."""
        from ._functional import WindowParameters
        from ._profile import profile_check
        from ._sampling import sample_batch
        from ._uncertainty import in_physical_terms, laplace
        from ._window import bind

        plan, p = trainer.plan, self.problem
        wp = WindowParameters(self.networks_[0], self.tied_[0], trainer.groups[0],
                              trainer.templates[0], p)
        gen = torch.Generator().manual_seed(int(self.random_state) + 1)
        batch = sample_batch(p, plan.window(0), gen,
                             n_collocation=2 * int(plan.settings["n_collocation"]),
                             n_initial=int(plan.settings["n_initial"]),
                             n_boundary=int(plan.settings["n_boundary"]), causal_chunks=None,
                             compare_faces=self.mode != "hard").to(plan.dtype, plan.device)
        batch.initial_target = trainer.initial_target(0, batch.initial)
        # every free parameter of the group (coefficients or their logarithms, periods' logs,
        # boundary weights)
        quantities = [(name, wp.free_offset(name)) for name in wp.free_names]
        free = laplace(wp, trainer.loss, batch, observations, quantities=quantities,
                       noise_std=self.noise_std)
        learnt = {n: (f"log_{n}" if n in p.positive else n) for n in (self.learn or {})}
        starts = {n: float(v) for n, v in (self.learn or {}).items()}
        if self.trainable_frequency:
            for c in p.periodic:
                learnt[f"period_{c}"] = f"log_period_{c}"
                starts[f"period_{c}"] = float(p.periods[c])
        result = in_physical_terms(free, self.tied_[0], trainer.groups[0], list(learnt))
        check = None
        if self.uncertainty_check == "profile":
            last = self.history_[-1] if self.history_ else {}
            check = profile_check(
                wp, lambda: bind(self.networks_[0], self.tied_[0], trainer.templates[0], p),
                trainer.loss, batch, observations, free, learnt=learnt, starts=starts,
                noise_known=self.noise_std is not None,
                damping=float(last["lr"]) if last.get("stage") == 2 else 1e-3)
        return result, check

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "networks_") or len(self.networks_) == 0:
            raise errors.not_fitted(self, what)

    def _solution(self) -> WindowedSolution:
        edges = np.linspace(*self.problem.domain_t, len(self.networks_) + 1)
        return WindowedSolution(self.problem, self.networks_, self.boundary_networks_, edges)

    def predict(self, *coords: Any) -> np.ndarray:
        """The trained outputs at points ``(x[, y], t)`` (broadcast against each other).

        Parameters
        ----------
        *coords : array_like
            Coordinates, space first, then time.

        Returns
        -------
        numpy.ndarray
            The output with the broadcast shape (one output), or that shape plus a last axis
            over the outputs.
        """
        self._check_fitted("predict")
        out = self._solution().predict(coords)
        return out[..., 0] if out.shape[-1] == 1 else out

    def periodicity_violation(self, t: Any) -> tuple[float, float]:
        """Largest jump of any output, and of its normal slope, across one period of any
        periodic coordinate, at times ``t`` (on a grid of the other coordinates' faces).

        Parameters
        ----------
        t : array_like
            Times at which the faces are compared.

        Returns
        -------
        (float, float)
        """
        from ._evaluation import _check_inside

        self._check_fitted("periodicity_violation")
        try:
            t = np.asarray(t, dtype=float).ravel()
        except (TypeError, ValueError):
            raise ValidationError(f"t must be an array of times; got {t!r}") from None
        if t.size == 0 or not np.all(np.isfinite(t)):
            raise ValidationError("t must hold at least one finite time")
        _check_inside(t, "t", self.problem.domain_t)
        return self._solution().periodicity_violation(t)

    def _traces(self, t: np.ndarray) -> dict[str, np.ndarray]:
        return self._solution().traces(np.asarray(t, dtype=float).ravel())

    def boundary_group(self, n_times: int = 11):
        """The periodic tie of a 1-D model as a :class:`sciTie.ParameterGroup`, with values.

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

        self._check_fitted("boundary_group")
        if self.problem.space != ("x",) or len(self.problem.outputs) != 1:
            raise ValidationError("boundary_group describes 1-D problems with one output")
        n_times = check_positive_int(n_times, "n_times")
        group = periodic_tie_group(self.mode, n_times,
                                   bc_weight=float(self.settings_["bc_weight"] or 1.0))
        traces = self._traces(np.linspace(*self.problem.domain_t, n_times))
        free_keys = {"hard": ("u_left", "ux_left"), "shared": ("g", "gx"),
                     "soft": ("u_left", "u_right", "ux_left", "ux_right")}[self.mode]
        for key in free_keys:
            group[key].value = traces[key]
        group.update()
        return group

    def evaluate(self, *sizes: int) -> xr.Dataset:
        """Prediction, reference and error on a grid, plus the loss history.

        Parameters
        ----------
        *sizes : int
            Grid sizes, space first, then time (``n_x, n_t`` or ``n_x, n_y, n_t``); every
            interval's ends included. Default: ``eval_grid``.

        Returns
        -------
        xarray.Dataset
            ``<output>_pred`` (and ``_ref``, ``_error`` with a reference) on dims
            ``(t, x[, y])``, the loss history on dim ``record``; attrs ``rel_l2``,
            ``periodicity_violation``, ``periodicity_violation_slope``, settings and
            provenance.
        """
        self._check_fitted("evaluate")
        p = self.problem
        grid = check_eval_grid(sizes if sizes else self.settings_["eval_grid"],
                               len(p.coordinates), p.coordinates)
        from ..provenance import provenance

        settings = dict(self.settings_)
        attrs: dict[str, Any] = {
            "mode": self.mode,
            "fit_seconds": float(getattr(self, "fit_seconds_", float("nan"))),
            "fit_cpu_seconds": float(getattr(self, "fit_cpu_seconds_", float("nan"))),
            **provenance(model="PeriodicPINN", settings={"problem": p.name, **settings},
                         seed=self.random_state),
        }
        for k, v in getattr(self, "coefficients_", {}).items():
            attrs[f"learnt_{k}"] = float(v)
        return evaluation_dataset(self._solution(), grid, getattr(self, "history_", []), attrs)
