"""Network bodies (MLP, modified MLP) behind the periodic x embedding and time features."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ._embedding import FourierTimeFeatures, PeriodicEmbedding, PeriodicTimeFeatures

__all__ = ["PINNNetwork", "BoundaryNetwork", "MODES", "ACTIVATIONS"]

MODES = ("hard", "soft", "shared")


class _Sine(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z)


ACTIVATIONS = {"tanh": nn.Tanh, "sin": _Sine, "gelu": nn.GELU, "silu": nn.SiLU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]()


def _check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    try:
        widths = tuple(int(h) for h in hidden)
    except TypeError:
        raise TypeError(f"hidden must be a sequence of layer widths; got {hidden!r}") from None
    if not widths or any(w < 1 for w in widths) or any(w != h for w, h in zip(widths, hidden)):
        raise ValueError(f"hidden must be a non-empty sequence of positive integers; got {hidden!r}")
    return widths


def _linear(n_in: int, n_out: int, generator: torch.Generator | None) -> nn.Linear:
    layer = nn.Linear(n_in, n_out, dtype=torch.float64)
    std = math.sqrt(2.0 / (n_in + n_out))  # Glorot normal
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n_out, n_in, generator=generator, dtype=torch.float64) * std)
        layer.bias.zero_()
    return layer


class _Body(nn.Module):
    """Fully connected body: plain MLP or the modified MLP of Wang, Teng & Perdikaris (2021)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int, activation: str,
                 architecture: str, generator: torch.Generator | None) -> None:
        super().__init__()
        if architecture not in ("mlp", "modified"):
            raise ValueError(f"architecture must be 'mlp' or 'modified'; got {architecture!r}")
        if architecture == "modified" and len(set(hidden)) != 1:
            raise ValueError(f"architecture='modified' needs equal hidden widths; got {hidden}")
        self.architecture = architecture
        self.act = _activation(activation)
        widths = (n_in, *hidden)
        self.layers = nn.ModuleList(_linear(a, b, generator) for a, b in zip(widths, widths[1:]))
        self.out = _linear(hidden[-1], n_out, generator)
        if architecture == "modified":
            self.enc_u = _linear(n_in, hidden[0], generator)
            self.enc_v = _linear(n_in, hidden[0], generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.architecture == "mlp":
            for layer in self.layers:
                h = self.act(layer(h))
            return self.out(h)
        u = self.act(self.enc_u(h))
        v = self.act(self.enc_v(h))
        for layer in self.layers:
            z = self.act(layer(h))
            h = (1.0 - z) * u + z * v
        return self.out(h)


class PINNNetwork(nn.Module):
    """``u(x, t)``: input features followed by a fully connected body.

    Parameters
    ----------
    domain_x : (float, float)
        Spatial period interval ``[a, b]``.
    domain_t : (float, float)
        Time interval this network covers (used to scale ``t``).
    mode : {"hard", "soft", "shared"}
        ``"hard"`` feeds ``x`` through :class:`PeriodicEmbedding` (exactly periodic); the
        others feed ``x`` scaled to ``[-1, 1]`` and rely on a loss term.
    n_modes : int
        Harmonics of the periodic embedding (hard mode).
    time_features : {None, "fourier", "periodic"}
        Optional time features; None feeds ``t`` scaled to ``[-1, 1]``.
    hidden : sequence of int
        Hidden layer widths.
    activation : str
        ``"tanh"``, ``"sin"``, ``"gelu"`` or ``"silu"``.
    architecture : {"mlp", "modified"}
        Plain MLP or modified MLP.
    trainable_frequency : bool
        Trainable spatial frequency in the embedding.
    n_time_features : int
        Number of Fourier frequencies or periodic time harmonics.
    time_scale : float
        Standard deviation of the Fourier time frequencies (cycles over the time span).
    time_period : float or None
        Initial period of periodic time features; default twice the time span.
    generator : torch.Generator, optional
        Source of the initial weights and random frequencies.
    """

    def __init__(self, domain_x: Sequence[float], domain_t: Sequence[float], *, mode: str = "hard",
                 n_modes: int = 1, time_features: str | None = None,
                 hidden: Sequence[int] = (64, 64, 64, 64), activation: str = "tanh",
                 architecture: str = "mlp", trainable_frequency: bool = False,
                 n_time_features: int = 8, time_scale: float = 1.0,
                 time_period: float | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        self.mode = mode
        self.a, self.b = float(domain_x[0]), float(domain_x[1])
        self.t0, self.t1 = float(domain_t[0]), float(domain_t[1])
        if not self.b > self.a:
            raise ValueError(f"domain_x must satisfy b > a; got {tuple(domain_x)!r}")
        if not self.t1 > self.t0:
            raise ValueError(f"domain_t must satisfy t1 > t0; got {tuple(domain_t)!r}")
        hidden = _check_hidden(hidden)
        n_in = 0
        if mode == "hard":
            self.x_features = PeriodicEmbedding(self.b - self.a, n_modes, x0=self.a,
                                                trainable_frequency=trainable_frequency)
            n_in += self.x_features.out_features
        else:
            self.x_features = None
            n_in += 1
        span = self.t1 - self.t0
        if time_features is None:
            self.t_features = None
            n_in += 1
        elif time_features == "fourier":
            self.t_features = FourierTimeFeatures(n_time_features, time_scale, t0=self.t0,
                                                  duration=span, generator=generator)
            n_in += self.t_features.out_features
        elif time_features == "periodic":
            self.t_features = PeriodicTimeFeatures(
                time_period if time_period is not None else 2.0 * span, n_time_features)
            n_in += self.t_features.out_features
        else:
            raise ValueError("time_features must be None, 'fourier' or 'periodic'; "
                             f"got {time_features!r}")
        self.body = _Body(n_in, hidden, 1, activation, architecture, generator)

    def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Input features for ``x``, ``t`` of shape ``(n, 1)``."""
        if self.x_features is not None:
            fx = self.x_features(x)
        else:
            fx = 2.0 * (x - self.a) / (self.b - self.a) - 1.0
        if self.t_features is None:
            ft = 2.0 * (t - self.t0) / (self.t1 - self.t0) - 1.0
        elif isinstance(self.t_features, PeriodicTimeFeatures):
            ft = self.t_features(t - self.t0)
        else:
            ft = self.t_features(t)
        return torch.cat([fx, ft], dim=-1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``u`` of shape ``(n, 1)`` for ``x``, ``t`` of shape ``(n, 1)``."""
        for z, what in ((x, "x"), (t, "t")):
            if not isinstance(z, torch.Tensor):
                raise TypeError(f"{what} must be a torch.Tensor; got {type(z).__name__}")
            if z.ndim != 2 or z.shape[1] != 1:
                raise ValueError(f"{what} must have shape (n, 1); got {tuple(z.shape)}")
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"x and t must have the same number of rows; got {x.shape[0]} "
                             f"and {t.shape[0]}")
        return self.body(self.features(x, t))


class BoundaryNetwork(nn.Module):
    """The shared boundary network ``g(t) -> (value, slope)`` of the ``"shared"`` mode.

    Both ends of the interval are trained to match the *same* ``g``: one sub-network read in two
    places, which is how a tie looks in autograd (its gradient is the sum over both uses).

    Parameters
    ----------
    domain_t : (float, float)
        Time interval (used to scale ``t``).
    hidden : sequence of int
        Hidden widths.
    activation : str
        Activation name.
    generator : torch.Generator, optional
        Source of the initial weights.
    """

    def __init__(self, domain_t: Sequence[float], hidden: Sequence[int] = (32, 32),
                 activation: str = "tanh", generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.t0, self.t1 = float(domain_t[0]), float(domain_t[1])
        self.body = _Body(1, _check_hidden(hidden), 2, activation, "mlp", generator)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``(n, 2)``: the shared boundary value and slope at times ``t`` (``(n, 1)``)."""
        return self.body(2.0 * (t - self.t0) / (self.t1 - self.t0) - 1.0)
