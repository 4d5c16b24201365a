"""Validation of a :class:`PeriodicPINN`'s settings, the training budget and CPU threads.

Everything here runs before any training starts: a bad setting is reported by name while the
user is still at the keyboard, not after ten minutes of work.
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import ValidationError

__all__ = ["budget_multiplier", "resolve_threads", "torch_threads", "TrainingPlan",
           "check_window_budget", "check_positive_int", "check_nonnegative_int", "check_positive_float",
           "check_nonnegative_float", "check_bool", "check_seed", "check_eval_grid"]


#: Largest evaluation grid (points): beyond it the result would not fit in memory.
MAX_EVAL_POINTS = 10**7
#: Largest batch of training points: every point keeps its activations for the derivatives.
MAX_BATCH = 2**20
#: Largest number of optimiser steps after the budget multiplier.
MAX_STEPS = 10**9


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, else a :class:`ValidationError` naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValidationError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def check_nonnegative_int(value: Any, name: str) -> int:
    """``value`` as an int >= 0, else a :class:`ValidationError` naming ``name``."""
    if not _is_int(value) or value < 0:
        raise ValidationError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def _as_float(value: Any, name: str, expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise ValidationError(f"{name} must be {expected}; got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValidationError(f"{name} must be {expected}; got {value!r}")
    return out


def check_positive_float(value: Any, name: str) -> float:
    """``value`` as a finite float > 0, else a :class:`ValidationError` naming ``name``."""
    out = _as_float(value, name, "a positive finite number")
    if out <= 0:
        raise ValidationError(f"{name} must be a positive finite number; got {value!r}")
    return out


def check_nonnegative_float(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0, else a :class:`ValidationError` naming ``name``."""
    out = _as_float(value, name, "a non-negative finite number")
    if out < 0:
        raise ValidationError(f"{name} must be a non-negative finite number; got {value!r}")
    return out


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool (only True/False accepted: ``"False"`` is not silently True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValidationError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_seed(value: Any, name: str = "random_state") -> int:
    """A seed for :class:`torch.Generator`: an int in ``[0, 2**63)``."""
    if not _is_int(value) or not 0 <= value < 2 ** 63:
        raise ValidationError(f"{name} must be an integer in [0, 2**63); got {value!r}")
    return int(value)


def check_eval_grid(value: Any, n_axes: int, names: tuple[str, ...]) -> tuple[int, ...]:
    """The evaluation grid: one size >= 2 per coordinate (space first, then time).

    Parameters
    ----------
    value : sequence of int
        The grid sizes.
    n_axes : int
        Number of coordinates including time.
    names : tuple of str
        Coordinate names, for the message.
    """
    expected = f"a tuple of {n_axes} integers >= 2 (sizes along {', '.join(names)})"
    try:
        sizes = tuple(value)
    except TypeError:
        raise ValidationError(f"eval_grid must be {expected}; got {value!r}") from None
    if len(sizes) != n_axes or not all(_is_int(s) and s >= 2 for s in sizes):
        raise ValidationError(f"eval_grid must be {expected}; got {value!r}")
    total = math.prod(int(s) for s in sizes)
    if total > MAX_EVAL_POINTS:
        # refused before training: the grid is evaluated only after it
        raise ValidationError(f"eval_grid {tuple(sizes)} has {total:.3g} points; at most "
                              f"{MAX_EVAL_POINTS:.0e} (each is one network evaluation, kept in "
                              "memory with its fields)")
    return tuple(int(s) for s in sizes)


def check_window_budget(value: Any, n_windows: int) -> tuple[float, ...]:
    """The step multipliers of the first windows: positive finite numbers, at most one per
    window (``()`` or ``None``: every window alike).

    Parameters
    ----------
    value : sequence of float or None
        ``window_budget`` as given.
    n_windows : int
        Number of time windows.

    Returns
    -------
    tuple of float
    """
    expected = (f"a sequence of at most n_windows={n_windows} positive finite numbers (step "
                "multipliers of the first windows)")
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ValidationError(f"window_budget must be {expected}; got {value!r}")
    out = tuple(_as_float(v, "window_budget", expected) for v in value)
    if len(out) > n_windows or any(v <= 0 for v in out):
        raise ValidationError(f"window_budget must be {expected}; got {value!r}")
    return out


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
    return check_positive_float(budget, "budget")


def resolve_threads(n_threads: int | None) -> int:
    """CPU threads for training: ``n_threads``, else the ``n_threads`` setting, else automatic.

    Automatic is ``min(4, max(1, cpu_count // 2))``: the networks are small, so more threads
    mostly add synchronisation overhead.
    """
    if n_threads is None:
        from .._config import get_config

        n_threads = get_config()["n_threads"]
    if n_threads is None:
        return min(4, max(1, (os.cpu_count() or 2) // 2))
    return check_positive_int(n_threads, "n_threads")


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count inside the block and restore it afterwards.

    ``None`` leaves torch's setting alone (used on CUDA).
    """
    if n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class TrainingPlan:
    """The resolved, validated settings of one ``fit`` call.

    Attributes
    ----------
    dtype, device
        Torch floating type and device.
    n_adam, n_lbfgs, n_lm : int
        Optimiser steps per window after the budget multiplier (before ``window_budget``).
    threads : int or None
        Torch CPU threads during training (None on CUDA).
    window_edges : numpy.ndarray
        ``n_windows + 1`` times.
    eval_grid : tuple of int
        Evaluation grid sizes.
    checkpoint : Path or None
        Checkpoint file.
    settings : dict
        Every setting of the model, the problem's recommendations filled in.
    window_budget : tuple of float
        Step multipliers of the first windows (later windows: 1).
    """

    dtype: torch.dtype
    device: torch.device
    n_adam: int
    n_lbfgs: int
    n_lm: int
    threads: int | None
    window_edges: np.ndarray
    eval_grid: tuple[int, ...]
    checkpoint: Path | None
    settings: dict[str, Any]
    window_budget: tuple[float, ...] = ()

    @property
    def n_windows(self) -> int:
        """Number of time windows."""
        return len(self.window_edges) - 1

    def window(self, w: int) -> tuple[float, float]:
        """Start and end time of window ``w``."""
        return float(self.window_edges[w]), float(self.window_edges[w + 1])

    def stage_steps(self, w: int) -> dict[str, int]:
        """Adam, L-BFGS and Levenberg-Marquardt steps of window ``w``: the per-window counts
        times its ``window_budget`` multiplier, rounded."""
        m = self.window_budget[w] if w < len(self.window_budget) else 1.0
        return {"adam": int(round(self.n_adam * m)), "lbfgs": int(round(self.n_lbfgs * m)),
                "lm": int(round(self.n_lm * m))}
