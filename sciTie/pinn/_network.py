"""Network bodies (MLP, modified MLP) behind the periodic embedding and time features."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ValidationError
from ._embedding import FourierTimeFeatures, PeriodicEmbedding, PeriodicTimeFeatures
from ._initial import HardInitial

__all__ = ["PINNNetwork", "BoundaryNetwork", "MODES", "ACTIVATIONS"]

MODES = ("hard", "soft", "shared")


class _Sine(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z)


ACTIVATIONS = {"tanh": nn.Tanh, "sin": _Sine, "gelu": nn.GELU, "silu": nn.SiLU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValidationError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]()


def _check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    try:
        widths = tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
        raise ValidationError(f"hidden must be a sequence of layer widths; got {hidden!r}") from None
    if not widths or any(w < 1 for w in widths) or any(w != h for w, h in zip(widths, hidden)) \
            or any(isinstance(h, bool) for h in hidden):
        raise ValidationError(f"hidden must be a non-empty sequence of positive integers; got {hidden!r}")
    weights = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    if max(widths) > MAX_WIDTH or weights > MAX_WEIGHTS:
        # refused before any tensor is allocated: such a network would not fit in memory
        raise ValidationError(f"hidden {list(widths)} is too large (widest layer {max(widths)}, "
                              f"{weights:.3g} hidden weights); at most {MAX_WIDTH} units per "
                              f"layer and {MAX_WEIGHTS:.0e} weights")
    return widths


#: Widest hidden layer accepted (PINNs use tens to hundreds of units).
MAX_WIDTH = 8192
#: Most weights between hidden layers (about 400 MB in float64).
MAX_WEIGHTS = 5 * 10**7


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
            raise ValidationError(f"architecture must be 'mlp' or 'modified'; got {architecture!r}")
        if architecture == "modified" and len(set(hidden)) != 1:
            raise ValidationError(f"architecture='modified' needs equal hidden widths; got {hidden}")
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


def _interval(value: Any, what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a pair of numbers (start, end); got "
                              f"{value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValidationError(f"{what} must be finite with end > start; got {(lo, hi)!r}")
    return lo, hi


class PINNNetwork(nn.Module):
    """``(u, ...)(x[, y], t)``: input features followed by a fully connected body.

    Parameters
    ----------
    domain_x : (float, float)
        Interval of ``x`` (one period when ``x`` is periodic).
    domain_t : (float, float)
        Time interval this network covers (used to scale ``t``).
    mode : {"hard", "soft", "shared"}
        ``"hard"`` feeds the periodic coordinates through :class:`PeriodicEmbedding` (exactly
        periodic); the others feed every coordinate scaled to ``[-1, 1]`` and rely on a loss
        term.
    n_modes : int
        Harmonics of the periodic embedding per periodic coordinate (hard mode).
    time_features : {None, "fourier", "periodic"}
        Optional time features; None feeds ``t`` scaled to ``[-1, 1]``.
    hidden : sequence of int
        Hidden layer widths.
    activation : str
        ``"tanh"``, ``"sin"``, ``"gelu"`` or ``"silu"``.
    architecture : {"mlp", "modified"}
        Plain MLP or modified MLP.
    trainable_frequency : bool
        Trainable spatial frequency (one per periodic coordinate) in the embedding.
    n_time_features : int
        Number of Fourier frequencies or periodic time harmonics.
    time_scale : float
        Standard deviation of the Fourier time frequencies (cycles over the time span).
    time_period : float or None
        Initial period of periodic time features; default twice the time span.
    generator : torch.Generator, optional
        Source of the initial weights and random frequencies.
    domain_y : (float, float), optional
        Interval of a second spatial coordinate ``y``.
    periodic : sequence of str, optional
        The periodic coordinates (default: every spatial coordinate).
    periods : mapping of str to float, optional
        Period of each periodic coordinate (default: its interval's length).
    n_outputs : int, optional
        Number of output fields (default 1).
    initial_harmonics : int, optional
        Build the initial condition in (``sciTie.pinn._initial.HardInitial``, every
        space coordinate periodic): the output is ``g(x) + phi(t - t0)`` times the body's,
        ``g`` a trigonometric polynomial of this many harmonics per coordinate, set with
        ``initial.set_values``. None (default): the body's output alone.
    initial_timescale : float, optional
        ``phi = 1 - exp(-(t - t0) / initial_timescale)``; None: ``(t - t0) / (t1 - t0)``.
    """

    def __init__(self, domain_x: Sequence[float], domain_t: Sequence[float], *, mode: str = "hard",
                 n_modes: int = 1, time_features: str | None = None,
                 hidden: Sequence[int] = (64, 64, 64, 64), activation: str = "tanh",
                 architecture: str = "mlp", trainable_frequency: bool = False,
                 n_time_features: int = 8, time_scale: float = 1.0,
                 time_period: float | None = None,
                 generator: torch.Generator | None = None,
                 domain_y: Sequence[float] | None = None,
                 periodic: Sequence[str] | None = None,
                 periods: Mapping[str, float] | None = None, n_outputs: int = 1,
                 initial_harmonics: int | None = None,
                 initial_timescale: float | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValidationError(f"mode must be one of {MODES}; got {mode!r}")
        self.mode = mode
        space = {"x": _interval(domain_x, "domain_x")}
        if domain_y is not None:
            space["y"] = _interval(domain_y, "domain_y")
        self.space = tuple(space)
        self.bounds = space
        periodic = tuple(self.space if periodic is None else periodic)
        unknown = [c for c in periodic if c not in self.space]
        if unknown:
            raise ValidationError(f"periodic names unknown coordinate(s) {unknown}; the "
                                  f"spatial coordinates are {self.space}")
        periods = dict(periods or {})
        self.periodic = periodic
        self.a, self.b = space["x"]
        self.t0, self.t1 = _interval(domain_t, "domain_t")
        hidden = _check_hidden(hidden)
        if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
            raise ValidationError(f"n_outputs must be a positive integer; got {n_outputs!r}")
        self.n_outputs = n_outputs
        use_period = [mode == "hard" and c in periodic for c in self.space]
        self.x_features = PeriodicEmbedding(
            [periods.get(c, space[c][1] - space[c][0]) if p else None
             for c, p in zip(self.space, use_period)],
            n_modes, x0=[space[c][0] for c in self.space],
            trainable_frequency=trainable_frequency, bounds=[space[c] for c in self.space])
        n_in = self.x_features.out_features
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
            raise ValidationError("time_features must be None, 'fourier' or 'periodic'; "
                                  f"got {time_features!r}")
        self.body = _Body(n_in, hidden, n_outputs, activation, architecture, generator)
        self.initial = None
        if initial_harmonics is not None:
            if set(periodic) != set(self.space):
                raise ValidationError("a built-in initial condition is a trigonometric "
                                      "polynomial: every space coordinate must be periodic; "
                                      f"{sorted(set(self.space) - set(periodic))} are not")
            self.initial = HardInitial(
                [(space[c][0], periods.get(c, space[c][1] - space[c][0])) for c in self.space],
                (self.t0, self.t1), n_outputs, initial_harmonics, initial_timescale)

    @property
    def n_inputs(self) -> int:
        """Number of input coordinates (space, then time)."""
        return len(self.space) + 1

    def features(self, z: torch.Tensor,
                 frequencies: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Input features for points ``z`` of shape ``(n, n_inputs)`` (space, then time).

        ``frequencies`` optionally maps a periodic coordinate to its K harmonic frequencies
        (the slots of a parameter group, when the period is trained through one).
        """
        by_index = None if frequencies is None else {
            self.space.index(c): w for c, w in frequencies.items()}
        fx = self.x_features(z[:, :-1], by_index)
        t = z[:, -1:]
        if self.t_features is None:
            ft = 2.0 * (t - self.t0) / (self.t1 - self.t0) - 1.0
        elif isinstance(self.t_features, PeriodicTimeFeatures):
            ft = self.t_features(t - self.t0)
        else:
            ft = self.t_features(t)
        return torch.cat([fx, ft], dim=-1)

    def forward_points(self, z: torch.Tensor,
                       frequencies: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Outputs ``(n, n_outputs)`` at points ``z`` of shape ``(n, n_inputs)``."""
        out = self.body(self.features(z, frequencies))
        return out if self.initial is None else self.initial(z, out)

    def periodic_axes(self) -> dict[str, Any]:
        """The periodic embedding of each periodic coordinate (hard mode)."""
        from ._embedding import _PeriodicAxis

        return {c: a for c, a in zip(self.space, self.x_features.axes)
                if isinstance(a, _PeriodicAxis)}

    def forward(self, *coords: torch.Tensor) -> torch.Tensor:
        """Outputs ``(n, n_outputs)`` for coordinates ``x[, y], t``, each of shape ``(n, 1)``."""
        names = (*self.space, "t")
        if len(coords) != len(names):
            raise ValidationError(f"expected {len(names)} coordinate tensors "
                                  f"({', '.join(names)}); got {len(coords)}")
        for z, what in zip(coords, names):
            if not isinstance(z, torch.Tensor):
                raise ValidationError(f"{what} must be a torch.Tensor; got {type(z).__name__}")
            if z.ndim != 2 or z.shape[1] != 1:
                raise ValidationError(f"{what} must have shape (n, 1); got {tuple(z.shape)}")
        rows = {z.shape[0] for z in coords}
        if len(rows) != 1:
            raise ValidationError(f"{', '.join(names)} must have the same number of rows; "
                                  f"got {[z.shape[0] for z in coords]}")
        return self.forward_points(torch.cat(coords, dim=-1))


class BoundaryNetwork(nn.Module):
    """The shared boundary network of the ``"shared"`` mode: face traces of a periodic coordinate.

    For a periodic coordinate ``c`` it maps the remaining coordinates (the other spatial ones,
    then time) to the common value and normal slope, along ``c``, of every output at the two
    faces ``c = lo`` and ``c = hi``. Both faces are trained to match the *same* network: one
    sub-network read in two places, which is how a tie looks in autograd (its gradient is the
    sum over both uses).

    Parameters
    ----------
    domains : sequence of (float, float)
        Interval of each input (used for scaling); a single ``(t0, t1)`` pair for 1-D problems.
    hidden : sequence of int
        Hidden widths.
    activation : str
        Activation name.
    generator : torch.Generator, optional
        Source of the initial weights.
    n_fields : int, optional
        Number of output fields; the network returns ``2 n_fields`` columns (values, then
        slopes).
    """

    def __init__(self, domains: Sequence[Any], hidden: Sequence[int] = (32, 32),
                 activation: str = "tanh", generator: torch.Generator | None = None,
                 n_fields: int = 1) -> None:
        super().__init__()
        domains = list(domains)
        if len(domains) == 2 and all(isinstance(v, (int, float, np.floating, np.integer))
                                     for v in domains):
            domains = [tuple(domains)]
        self.domains = [_interval(d, "BoundaryNetwork domain") for d in domains]
        self.n_fields = int(n_fields)
        self.body = _Body(len(self.domains), _check_hidden(hidden), 2 * self.n_fields,
                          activation, "mlp", generator)

    @property
    def t0(self) -> float:
        return self.domains[-1][0]

    @property
    def t1(self) -> float:
        return self.domains[-1][1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(n, 2 n_fields)``: shared face values and slopes at inputs ``z`` ``(n, n_in)``."""
        lo = torch.tensor([d[0] for d in self.domains], dtype=z.dtype, device=z.device)
        hi = torch.tensor([d[1] for d in self.domains], dtype=z.dtype, device=z.device)
        return self.body(2.0 * (z - lo) / (hi - lo) - 1.0)
