"""Input features: the periodic embedding of space (a torus) and optional time features."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ValidationError

__all__ = ["PeriodicEmbedding", "FourierTimeFeatures", "PeriodicTimeFeatures"]


def _check_positive(value: float, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a positive finite number; got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValidationError(f"{what} must be a positive finite number; got {value!r}")
    return value


def _check_column(z: torch.Tensor, what: str) -> None:
    if not isinstance(z, torch.Tensor):
        raise ValidationError(f"{what} must be a torch.Tensor; got {type(z).__name__}")
    if z.ndim != 2 or z.shape[1] != 1:
        raise ValidationError(f"{what} must have shape (n, 1); got {tuple(z.shape)}")


def _check_count(value: int, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise ValidationError(f"{what} must be a positive integer; got {value!r}")
    return int(value)


class _PeriodicAxis(nn.Module):
    """``[cos(k w (x - x0)), sin(k w (x - x0))]``, ``k = 1..K``, for one periodic coordinate.

    The K frequencies are tied to one value ``w = 2 pi / L``: the slots ``k w`` are ``G w`` with
    ``G = [1, 2, ..., K]^T`` (scaled harmonics), so a trainable ``w`` moves every harmonic
    together and the features stay periodic with one common period.
    """

    def __init__(self, period: float, n_modes: int, x0: float, trainable: bool) -> None:
        super().__init__()
        self.n_modes = n_modes
        self.x0 = float(x0)
        w = torch.tensor(2.0 * math.pi / period, dtype=torch.float64)
        if trainable:
            self.frequency = nn.Parameter(w)
        else:
            self.register_buffer("frequency", w)
        self.register_buffer("harmonics", torch.arange(1, n_modes + 1, dtype=torch.float64))

    @property
    def period(self) -> float:
        """The current period ``2 pi / w``."""
        return float(2.0 * math.pi / self.frequency.detach())

    @property
    def out_features(self) -> int:
        return 2 * self.n_modes

    def harmonic_frequencies(self) -> torch.Tensor:
        """The K frequencies ``k w`` (the slots of the tie ``G w``)."""
        return self.frequency * self.harmonics

    def set_frequency(self, w: float) -> None:
        """Set ``w`` (for example the value a model trained through its parameter group)."""
        with torch.no_grad():
            self.frequency.fill_(float(w))

    def forward(self, x: torch.Tensor, frequencies: torch.Tensor | None = None) -> torch.Tensor:
        if frequencies is None:
            frequencies = self.harmonic_frequencies()
        arg = (x - self.x0) * frequencies.to(x.dtype)
        return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


class _ScaledAxis(nn.Module):
    """A non-periodic coordinate, scaled linearly from ``[lo, hi]`` to ``[-1, 1]``."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.lo, self.hi = float(lo), float(hi)

    @property
    def out_features(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * (x - self.lo) / (self.hi - self.lo) - 1.0


def _per_axis(value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValidationError(f"{what} must have one entry per coordinate ({n}); got {value!r}")
        return list(value)
    return [value] * n


class PeriodicEmbedding(nn.Module):
    """The periodic embedding of space: a torus in any subset of the coordinates.

    A periodic coordinate ``x`` with period ``L`` becomes
    ``[cos(k w (x - x0)), sin(k w (x - x0))]``, ``k = 1..K``, ``w = 2 pi / L``; a non-periodic
    one is scaled linearly to ``[-1, 1]``. Any function of these features is periodic in each
    periodic coordinate, and so are all of its derivatives: ``u(x0, .) == u(x0 + L, .)`` holds by
    construction, not by training (to round-off). Mixed problems (periodic in ``x``, bounded in
    ``y``) use ``period=(L, None)``.

    Parameters
    ----------
    period : float or sequence of (float or None)
        One period per input column; None marks a non-periodic column (then ``bounds`` gives its
        interval). A single number embeds one periodic coordinate.
    n_modes : int or sequence of int, optional
        Harmonics ``K`` per periodic column (default 1).
    x0 : float or sequence of float, optional
        Phase origin per column (default 0); the left end of the periodic interval.
    trainable_frequency : bool or sequence of bool, optional
        Make ``w`` of a periodic column a trainable parameter (default False): one free
        frequency shared by all its harmonics. The network then stays exactly periodic with
        the *current* period ``2 pi / w``; use it when the period itself is unknown.
    bounds : sequence of (float, float) or None, optional
        Interval of each non-periodic column (ignored for periodic ones).
    """

    def __init__(self, period: Any, n_modes: Any = 1, *, x0: Any = 0.0,
                 trainable_frequency: Any = False, bounds: Sequence[Any] | None = None) -> None:
        super().__init__()
        periods = list(period) if isinstance(period, (list, tuple)) else [period]
        if not periods:
            raise ValidationError("period must name at least one coordinate")
        n = len(periods)
        modes = _per_axis(n_modes, n, "n_modes")
        origins = _per_axis(x0, n, "x0")
        trainable = _per_axis(trainable_frequency, n, "trainable_frequency")
        limits = list(bounds) if bounds is not None else [None] * n
        if len(limits) != n:
            raise ValidationError(f"bounds must have one entry per coordinate ({n}); "
                                  f"got {bounds!r}")
        axes = []
        for i, p in enumerate(periods):
            if p is None:
                if limits[i] is None:
                    raise ValidationError(f"coordinate {i} is not periodic: give its interval "
                                          "in bounds")
                lo, hi = (float(v) for v in limits[i])
                if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                    raise ValidationError(f"bounds[{i}] must be finite with hi > lo; "
                                          f"got {limits[i]!r}")
                axes.append(_ScaledAxis(lo, hi))
            else:
                if not isinstance(trainable[i], (bool, np.bool_)):
                    raise ValidationError(f"trainable_frequency must be True or False; "
                                          f"got {trainable[i]!r}")
                axes.append(_PeriodicAxis(_check_positive(p, "period"),
                                          _check_count(modes[i], "n_modes"),
                                          float(origins[i]), bool(trainable[i])))
        self.axes = nn.ModuleList(axes)

    @property
    def n_inputs(self) -> int:
        """Number of input columns."""
        return len(self.axes)

    @property
    def periods(self) -> list[float | None]:
        """The current period of each column (None where not periodic)."""
        return [a.period if isinstance(a, _PeriodicAxis) else None for a in self.axes]

    @property
    def period(self) -> float:
        """The current period of the first periodic column."""
        return next(p for p in self.periods if p is not None)

    @property
    def out_features(self) -> int:
        """Number of output features (``2 K`` per periodic column, 1 per other column)."""
        return sum(a.out_features for a in self.axes)

    def forward(self, x: torch.Tensor,
                frequencies: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        """Features of shape ``(n, out_features)`` for ``x`` of shape ``(n, n_inputs)``.

        ``frequencies`` optionally gives the K harmonic frequencies of periodic column ``i``
        (a model trained through a parameter group computes them from its free period).
        """
        if not isinstance(x, torch.Tensor):
            raise ValidationError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValidationError(f"x must have shape (n, {self.n_inputs}); got "
                                  f"{tuple(x.shape)}")
        feats = []
        for i, a in enumerate(self.axes):
            if isinstance(a, _PeriodicAxis):
                feats.append(a(x[:, i:i + 1], None if frequencies is None
                               else frequencies.get(i)))
            else:
                feats.append(a(x[:, i:i + 1]))
        return torch.cat(feats, dim=-1)


class FourierTimeFeatures(nn.Module):
    """Random Fourier features of time: ``[t_s, cos(2 pi B t_s), sin(2 pi B t_s)]``.

    ``t_s = (t - t0) / T`` is time scaled to ``[0, 1]``; ``B`` holds ``n_features`` frequencies
    drawn once from ``N(0, scale^2)`` with the given generator (fixed, not trained).

    Parameters
    ----------
    n_features : int
        Number of frequencies.
    scale : float
        Standard deviation of the frequencies (cycles per unit of scaled time).
    t0, duration : float
        Time origin and span used for scaling.
    generator : torch.Generator, optional
        Source of the random frequencies (reproducible when seeded).
    """

    def __init__(self, n_features: int, scale: float, *, t0: float = 0.0, duration: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_features = _check_count(n_features, "n_features")
        self.scale = _check_positive(scale, "scale")
        self.t0 = float(t0)
        self.duration = _check_positive(duration, "duration")
        b = torch.randn(self.n_features, generator=generator, dtype=torch.float64) * self.scale
        self.register_buffer("frequencies", b)

    @property
    def out_features(self) -> int:
        """Number of output features (``1 + 2 n_features``)."""
        return 1 + 2 * self.n_features

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Features of shape ``(n, 1 + 2 n_features)`` for ``t`` of shape ``(n, 1)``."""
        _check_column(t, "t")
        ts = (t - self.t0) / self.duration
        arg = 2.0 * math.pi * ts * self.frequencies.to(t.dtype)
        return torch.cat([ts, torch.cos(arg), torch.sin(arg)], dim=-1)


class PeriodicTimeFeatures(nn.Module):
    """Periodic time features ``[cos(k v t), sin(k v t)]``, ``k = 1..M``, ``v = 2 pi / P``.

    The period ``P`` is trainable by default (initialised to ``period``), as in Wang, Sankaran
    & Perdikaris (2023), so the network need not be periodic in time with a guessed period.

    Parameters
    ----------
    period : float
        Initial time period ``P`` (> 0); choose it larger than the time span for a
        non-periodic problem.
    n_modes : int, optional
        Number of harmonics ``M`` (default 1).
    trainable : bool, optional
        Train the time frequency (default True).
    include_time : bool, optional
        Also pass the raw (scaled) time ``t`` as a feature (default True).
    """

    def __init__(self, period: float, n_modes: int = 1, *, trainable: bool = True,
                 include_time: bool = True) -> None:
        super().__init__()
        self.period = _check_positive(period, "period")
        self.n_modes = _check_count(n_modes, "n_modes")
        self.include_time = bool(include_time)
        v = torch.tensor(2.0 * math.pi / self.period, dtype=torch.float64)
        if trainable:
            self.frequency = nn.Parameter(v)
        else:
            self.register_buffer("frequency", v)
        self.register_buffer("harmonics", torch.arange(1, self.n_modes + 1, dtype=torch.float64))

    @property
    def out_features(self) -> int:
        """Number of output features."""
        return 2 * self.n_modes + int(self.include_time)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Features of shape ``(n, out_features)`` for ``t`` of shape ``(n, 1)``."""
        _check_column(t, "t")
        arg = t * (self.frequency.to(t.dtype) * self.harmonics.to(t.dtype))
        feats = [torch.cos(arg), torch.sin(arg)]
        if self.include_time:
            feats.insert(0, t)
        return torch.cat(feats, dim=-1)
