"""Input features: the periodic x embedding and optional time features."""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["PeriodicEmbedding", "FourierTimeFeatures", "PeriodicTimeFeatures"]


def _check_positive(value: float, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a real number; got {type(value).__name__}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive finite number; got {value!r}")
    return value


def _check_column(z: torch.Tensor, what: str) -> None:
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor; got {type(z).__name__}")
    if z.ndim != 2 or z.shape[1] != 1:
        raise ValueError(f"{what} must have shape (n, 1); got {tuple(z.shape)}")


def _check_count(value: int, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{what} must be a positive integer; got {value!r}")
    return int(value)


class PeriodicEmbedding(nn.Module):
    """Map ``x`` to ``[cos(k w (x - x0)), sin(k w (x - x0))]``, ``k = 1..K``, ``w = 2 pi / L``.

    Any function of these features is periodic in ``x`` with period ``L``, and so are all of its
    ``x``-derivatives: ``u(x0, t) == u(x0 + L, t)`` holds by construction, not by training.

    Parameters
    ----------
    period : float
        The period ``L`` (> 0).
    n_modes : int, optional
        Number of harmonics ``K`` (default 1); the output has ``2 K`` features.
    x0 : float, optional
        Left end of the periodic interval (default 0); only shifts the phase.
    trainable_frequency : bool, optional
        Make ``w`` a trainable parameter (default False). The network then stays periodic with
        the *current* period ``2 pi / w``, which training may move away from ``L``; use it only
        when the period itself is unknown.
    """

    def __init__(self, period: float, n_modes: int = 1, *, x0: float = 0.0,
                 trainable_frequency: bool = False) -> None:
        super().__init__()
        self.period = _check_positive(period, "period")
        self.n_modes = _check_count(n_modes, "n_modes")
        self.x0 = float(x0)
        w = torch.tensor(2.0 * math.pi / self.period, dtype=torch.float64)
        if trainable_frequency:
            self.frequency = nn.Parameter(w)
        else:
            self.register_buffer("frequency", w)
        self.register_buffer("harmonics", torch.arange(1, self.n_modes + 1, dtype=torch.float64))

    @property
    def out_features(self) -> int:
        """Number of output features (``2 K``)."""
        return 2 * self.n_modes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of shape ``(n, 2 K)`` for ``x`` of shape ``(n, 1)``."""
        _check_column(x, "x")
        arg = (x - self.x0) * (self.frequency.to(x.dtype) * self.harmonics.to(x.dtype))
        return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


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
