"""The trainable numbers of one time window as a flat vector, and Jacobians of the loss rows.

The vector is the network's own weights followed by the free vector of the window's parameter
group (coefficients, periods, shared boundary networks; trained through
:class:`sciTie.core.torch.TiedParameters`). Used by the Gauss-Newton (Levenberg-Marquardt)
optimiser and the Laplace approximation, which need the Jacobian of the weighted residual rows
with respect to every trainable number. It is computed point by point with
:func:`torch.func.jacrev` under :func:`torch.vmap` (linear cost in the number of points), the
derivatives in space and time inside each row with :func:`torch.func.jacfwd`. The Jacobian with
respect to the group is formed as the core does it, ``J_free = J_slots G`` with
``G = d slots / d free`` (exact for linear ties, the local linearisation for constrained ones).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from ._losses import Observations, PINNLoss
from ._sampling import Batch
from ._window import PointsAdapter, bind_functional, boundary_names

__all__ = ["WindowParameters"]


class WindowParameters:
    """The network weights and the group's free vector of one window, flattened.

    Parameters
    ----------
    net : PINNNetwork
        The window's network (its embedding frequencies come from the group).
    tied : sciTie.core.torch.TiedParameters
        The window's parameter group as a module (the free vector is trained).
    group : sciTie.ParameterGroup
        The group ``tied`` was built from (slot names and indices).
    templates : mapping of str to torch.nn.Module
        Shared-mode boundary networks (architectures; their weights live in the group).
    problem : PDEProblem
        Coefficient names.
    """

    def __init__(self, net: nn.Module, tied: Any, group: Any,
                 templates: Mapping[str, nn.Module], problem: Any) -> None:
        self.net, self.tied, self.templates = net, tied, dict(templates)
        self.net_entries = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        self.net_sizes = [p.numel() for _, p in self.net_entries]
        self.n_net = sum(self.net_sizes)
        self.n_free = int(tied.free.numel())
        self.free_names = list(tied.free_names)
        self.periodic = list(net.periodic_axes())
        self.coefficients = list(problem.parameters)
        self.names = boundary_names(group, self.templates)
        # the group's parameters the forward pass reads, and where their slots are
        needed = [f"frequency_{c}" for c in self.periodic] + self.coefficients + [
            g for c in self.names for g in self.names[c].values()]
        self.slot_shapes = {}
        index = []
        for name in needed:
            idx = np.atleast_1d(np.asarray(group.slot_index(name)))
            self.slot_shapes[name] = tuple(np.shape(group.slot_index(name)))
            index.append(idx.ravel())
        self.slot_names = needed
        self.slot_sizes = [len(i) for i in index]
        self.slot_index = torch.as_tensor(np.concatenate(index) if index else np.zeros(0, int))
        self._net_adapter = PointsAdapter(net)
        self._templates = {c: PointsAdapter(m) for c, m in self.templates.items()}

    # -------------------------------------------------------------- the flat vector
    @property
    def size(self) -> int:
        """Number of trainable numbers."""
        return self.n_net + self.n_free

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The leaf tensors the first-order optimisers train."""
        return [p for _, p in self.net_entries] + [self.tied.free]

    def labels(self) -> list[str]:
        """A name for every entry of the vector."""
        out = []
        for (n, p) in self.net_entries:
            out += [f"net.{n}"] * p.numel()
        return out + [f"group.{n}" for n in self.free_names]

    def free_offset(self, name: str) -> int:
        """Index in the vector of the group's free parameter ``name``."""
        return self.n_net + self.free_names.index(name)

    def flat(self) -> torch.Tensor:
        """All trainable numbers as one detached vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.tensors])

    def assign(self, vector: torch.Tensor) -> None:
        """Copy ``vector`` into the weights and the free vector (in place, no autograd)."""
        with torch.no_grad():
            for p, chunk in zip(self.tensors, torch.split(vector, self.net_sizes
                                                          + [self.n_free])):
                p.copy_(chunk.reshape(p.shape))

    # -------------------------------------------------------------- slots from free values
    def slots(self, free: torch.Tensor) -> torch.Tensor:
        """The needed slots (concatenated) at free vector ``free``."""
        flat = functional_call(self.tied, {"free": free}, ())
        return flat[self.slot_index.to(flat.device)]

    def _split(self, vector: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        parts = torch.split(vector[:self.n_net], self.net_sizes)
        params = {n: c.reshape(p.shape) for (n, p), c in zip(self.net_entries, parts)}
        return params, vector[self.n_net:]

    def _slot_dict(self, s: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: c.reshape(self.slot_shapes[name])
                for name, c in zip(self.slot_names, torch.split(s, self.slot_sizes))}

    # -------------------------------------------------------------- rows and Jacobian
    def rows(self, loss: PINNLoss, vector: torch.Tensor, batch: Batch,
             data: Observations | None, causal: torch.Tensor | None,
             jacobian: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weighted loss rows at ``vector`` and, if asked, their Jacobian.

        Returns
        -------
        rows : torch.Tensor
            ``(n_rows,)``; the loss is ``sum(rows**2)``.
        jac : torch.Tensor or None
            ``(n_rows, size)``: network weights, then the group's free vector
            (``J_slots G``).
        """
        net_params, free = self._split(vector)
        s = self.slots(free)
        initial_outputs = tuple(batch.initial_target or ())
        data_outputs = data.outputs if data is not None else ()
        all_rows, all_jacs = [], []
        g = jacrev(self.slots)(free) if jacobian and self.n_free else None

        def point(params: dict, svec: torch.Tensor, z: torch.Tensor, e: Any, kind: str):
            bound = bind_functional(self._net_adapter, params, self._slot_dict(svec),
                                    self._templates, self.names, self.periodic,
                                    self.coefficients)
            return loss.point_rows(kind, bound, z, e, initial_outputs, data_outputs)

        for kind, points, extra, scale in loss.row_blocks(batch, data, causal):
            in_dims = (None, None, 0, 0 if extra is not None else None)
            if jacobian:  # the rows come with their Jacobian (one pass)
                def with_value(params, svec, z, e, _kind=kind):
                    r = point(params, svec, z, e, _kind)
                    return r, r.detach()

                (j_net, j_s), r = vmap(jacrev(with_value, argnums=(0, 1), has_aux=True),
                                       in_dims=in_dims)(net_params, s, points, extra)
            else:
                r = vmap(lambda p, sv, z, e, _k=kind: point(p, sv, z, e, _k),
                         in_dims=in_dims)(net_params, s, points, extra)
            sc = scale if not isinstance(scale, torch.Tensor) else scale[:, None]
            all_rows.append((r * sc).reshape(-1))
            if jacobian:
                n_rows = r.reshape(-1).shape[0]
                cols = [j_net[n].reshape(n_rows, -1) for n, _ in self.net_entries]
                if self.n_free:
                    cols.append(j_s.reshape(n_rows, -1) @ g)
                jac = torch.cat(cols, dim=1)
                sj = sc if not isinstance(sc, torch.Tensor) else sc.repeat_interleave(
                    r.shape[-1] if r.ndim > 1 else 1, dim=0).reshape(-1, 1)
                all_jacs.append(jac * sj)
        rows = torch.cat(all_rows)
        return rows, (torch.cat(all_jacs) if jacobian else None)
