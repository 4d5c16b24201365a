"""Loss terms of a periodic PINN, written once as weighted residual rows.

Every term is a set of *rows* (one per point, one column per equation or output) whose
weighted sum of squares is the term's contribution to the loss. First-order optimisers use
the batched sums (:meth:`PINNLoss.terms`); the Gauss-Newton optimiser and the Laplace
approximation use the same rows per point (:meth:`PINNLoss.point_rows`), differentiated with
:mod:`torch.func`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from ..errors import ArgumentTypeError, ValidationError
from ._fields import Fields
from ._problems import PDEProblem
from ._sampling import Batch
from ._user import call_user

__all__ = ["LossWeights", "PINNLoss", "PointFields", "Observations", "stack_rows"]

_POINTWISE = ("it receives the fields f (f.u, f.u_x, f.parameters['nu'] ...) and must return a "
              "torch tensor computed point by point with torch operations (the Gauss-Newton "
              "stage evaluates it one point at a time under torch.vmap)")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms and the causal weighting strength."""

    ic: float = 10.0
    bc: float = 1.0
    data: float = 1.0
    causal_eps: float | None = None
    n_causal_chunks: int = 16


@dataclass
class Observations:
    """Observed values of some outputs at scattered points (inverse problems).

    Attributes
    ----------
    points : torch.Tensor
        ``(n, n_coords)``: coordinates, space first, then time.
    values : torch.Tensor
        ``(n, len(outputs))``.
    outputs : tuple of str
        The observed outputs.
    """

    points: torch.Tensor
    values: torch.Tensor
    outputs: tuple[str, ...]

    def in_window(self, window: tuple[float, float], last: bool) -> "Observations":
        """The observations whose time lies in ``window`` (its end only for the last one)."""
        t = self.points[:, -1]
        sel = (t >= window[0]) & ((t <= window[1]) if last else (t < window[1]))
        return Observations(self.points[sel], self.values[sel], self.outputs)

    def to(self, dtype: torch.dtype, device: torch.device) -> "Observations":
        """The same observations as ``dtype`` on ``device``."""
        return Observations(self.points.to(device=device, dtype=dtype),
                            self.values.to(device=device, dtype=dtype), self.outputs)


def stack_rows(value: Any, n: int | None, what: str) -> torch.Tensor:
    """Residual(s) returned by a user function as one tensor with equations on the last axis.

    ``n`` is the number of points (batched evaluation), or None for one point at a time.
    """
    parts = list(value) if isinstance(value, (tuple, list)) else [value]
    if isinstance(value, dict):
        parts = list(value.values())
    if not parts:
        raise ValidationError(f"{what} returned no equations")
    cols = []
    for p in parts:
        if not isinstance(p, torch.Tensor):
            raise ArgumentTypeError(f"{what} must return a torch.Tensor (or a tuple of them); "
                                    f"got {type(p).__name__}")
        if n is not None:
            if p.shape not in ((n,), (n, 1)):
                raise ValidationError(f"{what} must return shape ({n},) (one value per point); "
                                      f"got {tuple(p.shape)}")
            p = p.reshape(n)
        elif p.numel() != 1:
            raise ValidationError(f"{what} must return one value per point; got shape "
                                  f"{tuple(p.shape)}")
        else:
            p = p.reshape(())
        cols.append(p)
    return torch.stack(cols, dim=-1)


class PointFields(Fields):
    """:class:`Fields` at one point, for :mod:`torch.func` transforms.

    Each derivative is a chain of forward-mode directional derivatives
    (:func:`torch.func.jvp`) of ``fn`` (the network at one point) along the coordinates it
    names, computed on first use: ``u_xxxx`` costs four nested forward passes, not the
    ``d**4`` entries of a full fourth-derivative tensor. Values are 0-d tensors; under
    :func:`torch.vmap` they act as the batch.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                 coordinates: Sequence[str], *, outputs: Sequence[str],
                 parameters: Mapping[str, Any] | None = None) -> None:
        values = fn(z)
        self._fn = fn
        self._z = z
        self._index = {c: i for i, c in enumerate(coordinates)}
        self._derivatives: dict[str, torch.Tensor] = {"": values}
        super().__init__(values[None, :], {c: z[i].reshape(1, 1)
                                           for i, c in enumerate(coordinates)},
                         outputs=outputs, parameters=parameters)
        self._cache = {name: values[i] for i, name in enumerate(self._outputs)}

    def _derivative(self, letters: str) -> torch.Tensor:
        """Every output differentiated along ``letters`` (derivatives commute: the letters
        are taken in a canonical order, so ``u_xt`` and ``u_tx`` are computed once)."""
        key = "".join(sorted(letters))
        if key not in self._derivatives:
            g = self._fn
            for c in key:
                tangent = torch.zeros_like(self._z)
                tangent[self._index[c]] = 1.0
                g = (lambda inner, v: (lambda z: torch.func.jvp(inner, (z,), (v,))[1]))(
                    g, tangent)
            self._derivatives[key] = g(self._z)
        return self._derivatives[key]

    def _column(self, name: str) -> torch.Tensor:
        if name in self._cache:
            return self._cache[name]
        base, letters = self._parse(name)
        value = self._derivative(letters)[self._outputs.index(base)]
        self._cache[name] = value
        return value

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._column(name)

    def __getattr__(self, name: str) -> torch.Tensor:
        if name.startswith("_"):
            raise AttributeError(name)
        index = self.__dict__.get("_index", {})
        if name in index:
            return self._z[index[name]]
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None


class PINNLoss:
    """The loss of one time window: PDE residual, initial condition, faces, boundary, data.

    Parameters
    ----------
    problem : PDEProblem
        The PDE.
    mode : {"hard", "soft", "shared"}
        Periodicity mode: soft and shared add face terms for every periodic coordinate.
    weights : LossWeights
        Term weights.

    The network, its PDE coefficients and shared boundary networks come in as a
    :class:`~sciTie.pinn._window.Bound` window (its parameter group's slot values).
    """

    def __init__(self, problem: PDEProblem, mode: str, weights: LossWeights) -> None:
        self.problem = problem
        self.mode = mode
        self.weights = weights
        self.coordinates = problem.coordinates
        self.outputs = problem.outputs

    # -------------------------------------------------------------- fields at points
    def batch_fields(self, bound: Any, z: torch.Tensor) -> Fields:
        """Fields at a batch of points (autograd derivatives)."""
        cols = [z[:, i:i + 1].detach().requires_grad_(True) for i in range(z.shape[1])]
        values = bound.forward_points(torch.cat(cols, dim=1))
        return Fields(values, dict(zip(self.coordinates, cols)), outputs=self.outputs,
                      parameters=bound.parameters)

    def point_fields(self, bound: Any, z: torch.Tensor) -> PointFields:
        """Fields at one point (``torch.func`` derivatives)."""
        return PointFields(bound.forward_points, z, self.coordinates, outputs=self.outputs,
                           parameters=bound.parameters)

    # -------------------------------------------------------------- rows (any backend)
    def pde_rows(self, f: Fields, n: int | None) -> torch.Tensor:
        """PDE residual rows ``(n, m)`` (or ``(m,)`` at one point)."""
        return stack_rows(call_user(self.problem.residual, f"problem {self.problem.name!r}: "
                                    "residual", f, hint=_POINTWISE), n, "residual")

    def initial_rows(self, f: Fields, target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Initial-condition misfit, one column per prescribed output."""
        return torch.stack([f[o] - target[o] for o in target], dim=-1)

    def face_rows(self, c: str, lo: Fields, hi: Fields,
                  shared: torch.Tensor | None) -> torch.Tensor:
        """Periodicity misfit on the faces of ``c``: values and normal slopes of every output.

        Soft mode compares the two faces; shared mode compares each face with the shared
        boundary network's ``(values, slopes)`` (``shared``, last axis ``2 k``).
        """
        k = len(self.outputs)
        cols = []
        for i, o in enumerate(self.outputs):
            for j, name in enumerate((o, f"{o}_{c}")):
                if shared is None:
                    cols.append(lo[name] - hi[name])
                else:
                    g = shared[..., i + j * k]
                    cols += [lo[name] - g, hi[name] - g]
        return torch.stack(cols, dim=-1)

    def boundary_rows(self, f: Fields, n: int | None) -> torch.Tensor:
        """Boundary-condition rows on the faces of non-periodic coordinates."""
        return stack_rows(call_user(self.problem.boundary, f"problem {self.problem.name!r}: "
                                    "boundary", f, hint=_POINTWISE), n, "boundary")

    # -------------------------------------------------------------- batched terms
    def causal_weights(self, per_point: torch.Tensor) -> torch.Tensor:
        """Causal weights per chunk from the squared residual per point (no gradient)."""
        m = self.weights.n_causal_chunks
        per_chunk = per_point.detach().reshape(m, -1).mean(dim=1)
        cum = torch.cumsum(per_chunk, 0) - per_chunk
        return torch.exp(-float(self.weights.causal_eps) * cum)

    def terms(self, bound: Any, batch: Batch,
              data: Observations | None = None) -> dict[str, torch.Tensor]:
        """The loss terms (means of squared rows) and their weighted total."""
        w = self.weights
        out: dict[str, torch.Tensor] = {}
        z = batch.interior
        r = self.pde_rows(self.batch_fields(bound, z), z.shape[0])
        per_point = (r ** 2).sum(dim=1)
        if w.causal_eps is not None:
            cw = self.causal_weights(per_point)
            per_chunk = per_point.reshape(w.n_causal_chunks, -1).mean(dim=1)
            out["residual"] = torch.mean(cw * per_chunk)
            out["causal_min_weight"] = cw.min()
        else:
            out["residual"] = per_point.mean()
        total = out["residual"]
        if batch.initial_target and w.ic > 0:
            f = self.batch_fields(bound, batch.initial)
            out["ic"] = (self.initial_rows(f, batch.initial_target) ** 2).sum(dim=1).mean()
            total = total + w.ic * out["ic"]
        if batch.faces and w.bc > 0:
            bc = 0.0
            for c, z_lo in batch.faces.items():
                rows = self._face_batch(bound, c, z_lo)
                bc = bc + (rows ** 2).sum(dim=1).mean()
            out["bc"] = bc
            total = total + w.bc * bc
        if batch.boundary is not None:
            f = self.batch_fields(bound, batch.boundary)
            rows = self.boundary_rows(f, batch.boundary.shape[0])
            out["boundary"] = (rows ** 2).sum(dim=1).mean()
            total = total + w.bc * out["boundary"]
        if data is not None and data.points.shape[0] > 0:
            pred = bound.forward_points(data.points)[:, self._output_index(data.outputs)]
            out["data"] = ((pred - data.values) ** 2).sum(dim=1).mean()
            total = total + w.data * out["data"]
        out["total"] = total
        return out

    def _output_index(self, names: Sequence[str]) -> list[int]:
        return [self.outputs.index(o) for o in names]

    def _face_batch(self, bound: Any, c: str, z_lo: torch.Tensor) -> torch.Tensor:
        ic = self.coordinates.index(c)
        z_hi = z_lo.clone()
        z_hi[:, ic] = z_lo[:, ic] + self.problem.periods[c]
        lo, hi = self.batch_fields(bound, z_lo), self.batch_fields(bound, z_hi)
        shared = None
        if self.mode == "shared":
            keep = [i for i in range(z_lo.shape[1]) if i != ic]
            shared = bound.boundary(c, z_lo[:, keep])
        return self.face_rows(c, lo, hi, shared)

    # -------------------------------------------------------------- rows per point
    def row_blocks(self, batch: Batch, data: Observations | None,
                   causal: torch.Tensor | None) -> Iterator[tuple[str, torch.Tensor, Any, float]]:
        """The point sets of the loss with the scale of their rows.

        Yields ``(kind, points, extra, scale)``: the weighted loss is the sum over blocks of
        ``scale**2 * sum(rows**2)`` (``scale`` a tensor per point for causal weighting).
        """
        w = self.weights
        n = batch.interior.shape[0]
        scale: Any = 1.0 / math.sqrt(n)
        if causal is not None:
            scale = torch.sqrt(causal.repeat_interleave(n // w.n_causal_chunks) / n)
        yield "pde", batch.interior, None, scale
        if batch.initial_target and w.ic > 0:
            target = torch.stack([batch.initial_target[o] for o in batch.initial_target], 1)
            yield "ic", batch.initial, target, math.sqrt(w.ic / batch.initial.shape[0])
        if batch.faces and w.bc > 0:
            for c, z in batch.faces.items():
                yield f"face:{c}", z, None, math.sqrt(w.bc / z.shape[0])
        if batch.boundary is not None:
            yield "boundary", batch.boundary, None, math.sqrt(w.bc / batch.boundary.shape[0])
        if data is not None and data.points.shape[0] > 0:
            yield "data", data.points, data.values, math.sqrt(w.data / data.points.shape[0])

    def point_rows(self, kind: str, bound: Any, z: torch.Tensor, extra: Any,
                   initial_outputs: Sequence[str], data_outputs: Sequence[str]) -> torch.Tensor:
        """Unweighted rows of block ``kind`` at one point ``z`` (for ``torch.func``)."""
        if kind == "pde":
            return self.pde_rows(self.point_fields(bound, z), None)
        if kind == "ic":
            values = bound.forward_points(z)
            return torch.stack([values[self.outputs.index(o)] - extra[i]
                                for i, o in enumerate(initial_outputs)])
        if kind == "boundary":
            return self.boundary_rows(self.point_fields(bound, z), None)
        if kind == "data":
            return bound.forward_points(z)[self._output_index(data_outputs)] - extra
        c = kind.split(":", 1)[1]
        ic = self.coordinates.index(c)
        shift = torch.tensor([self.problem.periods[c] if i == ic else 0.0
                              for i in range(len(self.coordinates))], dtype=z.dtype,
                             device=z.device)
        lo = self.point_fields(bound, z)
        hi = self.point_fields(bound, z + shift)
        shared = None
        if self.mode == "shared":
            keep = [i for i in range(z.shape[0]) if i != ic]
            shared = bound.boundary(c, z[keep])
        return self.face_rows(c, lo, hi, shared)
