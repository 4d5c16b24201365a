"""Training points: collocation points, initial-condition points, face points."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._problems import PDEProblem

__all__ = ["Batch", "sample_batch"]


@dataclass
class Batch:
    """One set of training points for a time window; each tensor has one row per point and
    one column per coordinate (space first, then time).

    Attributes
    ----------
    interior : torch.Tensor
        Collocation points of the PDE residual. With causal weighting they are ordered by
        time chunk (equal counts per chunk).
    initial : torch.Tensor
        Points at the window's start time.
    faces : dict of str to torch.Tensor
        For each periodic coordinate compared by a loss (soft and shared modes): points on its
        lower face; the upper face is the same points moved by one period.
    boundary : torch.Tensor or None
        Points on the faces of the non-periodic coordinates (both ends, half each).
    initial_target : dict of str to torch.Tensor
        The initial condition at ``initial`` per prescribed output (filled by the trainer).
    """

    interior: torch.Tensor
    initial: torch.Tensor
    faces: dict[str, torch.Tensor]
    boundary: torch.Tensor | None
    initial_target: dict[str, torch.Tensor] | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        """All tensors under flat names (for checkpoints)."""
        out = {"interior": self.interior, "initial": self.initial}
        out.update({f"face_{c}": z for c, z in self.faces.items()})
        if self.boundary is not None:
            out["boundary"] = self.boundary
        for k, v in (self.initial_target or {}).items():
            out[f"target_{k}"] = v
        return out

    @classmethod
    def from_tensors(cls, data: dict[str, torch.Tensor]) -> "Batch":
        """Inverse of :meth:`tensors`."""
        faces = {k[5:]: v for k, v in data.items() if k.startswith("face_")}
        target = {k[7:]: v for k, v in data.items() if k.startswith("target_")}
        return cls(data["interior"], data["initial"], faces, data.get("boundary"),
                   target or None)

    def to(self, dtype: torch.dtype, device: torch.device) -> "Batch":
        """The same points as ``dtype`` on ``device``."""
        return Batch.from_tensors({k: v.to(device=device, dtype=dtype)
                                   for k, v in self.tensors().items()})


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def sample_batch(problem: PDEProblem, window: tuple[float, float], gen: torch.Generator, *,
                 n_collocation: int, n_initial: int, n_boundary: int,
                 causal_chunks: int | None, compare_faces: bool) -> Batch:
    """Draw the training points of one window (float64, on the CPU, from ``gen``).

    Parameters
    ----------
    problem : PDEProblem
        Domains and periodicity.
    window : (float, float)
        Time window.
    gen : torch.Generator
        Random source (its state is checkpointed, so a resumed run draws the same points).
    n_collocation, n_initial, n_boundary : int
        Numbers of interior, initial and face points.
    causal_chunks : int or None
        Stratify interior times into this many equal chunks (for causal weighting); the
        interior count is rounded down to a multiple of it.
    compare_faces : bool
        Draw face points of the periodic coordinates (soft and shared modes).

    Returns
    -------
    Batch
    """
    t0, t1 = window
    space = problem.space
    cols = [_uniform(gen, n_collocation, *problem.domain(c)) for c in space]
    if causal_chunks is not None:
        m = int(causal_chunks)
        per = n_collocation // m
        u = torch.rand(m, per, generator=gen, dtype=torch.float64)
        t = t0 + (t1 - t0) * (torch.arange(m, dtype=torch.float64)[:, None] + u) / m
        cols = [c[: m * per] for c in cols] + [t.reshape(-1)]
    else:
        cols.append(_uniform(gen, n_collocation, t0, t1))
    interior = torch.stack(cols, dim=1)
    initial = torch.stack([_uniform(gen, n_initial, *problem.domain(c)) for c in space]
                          + [torch.full((n_initial,), t0, dtype=torch.float64)], dim=1)

    def on_faces(c: str, lo_only: bool) -> torch.Tensor:
        cols = []
        for name in space:
            if name == c:
                lo, hi = problem.domain(c)
                if lo_only:
                    cols.append(torch.full((n_boundary,), lo, dtype=torch.float64))
                else:
                    half = torch.arange(n_boundary) % 2 == 1
                    cols.append(torch.where(half, torch.tensor(hi, dtype=torch.float64),
                                            torch.tensor(lo, dtype=torch.float64)))
            else:
                cols.append(_uniform(gen, n_boundary, *problem.domain(name)))
        cols.append(_uniform(gen, n_boundary, t0, t1))
        return torch.stack(cols, dim=1)

    faces = {c: on_faces(c, True) for c in problem.periodic} if compare_faces else {}
    bounded = [c for c in space if c not in problem.periodic]
    boundary = torch.cat([on_faces(c, False) for c in bounded]) if bounded else None
    return Batch(interior, initial, faces, boundary)
