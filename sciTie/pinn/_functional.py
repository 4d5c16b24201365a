"""The trainable tensors of one time window as a flat vector, and Jacobians of the loss rows.

Used by the Gauss-Newton (Levenberg-Marquardt) optimiser and the Laplace approximation: both
need the Jacobian of the weighted residual rows with respect to every trainable number. It is
computed point by point with :func:`torch.func.jacrev` under :func:`torch.vmap` (linear cost in
the number of points), the derivatives in space and time inside each row with
:func:`torch.func.jacfwd`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from ._losses import Observations, PINNLoss
from ._sampling import Batch

__all__ = ["WindowParameters"]


class WindowParameters:
    """The trainable tensors of a window's modules and learnt coefficients, flattened.

    Parameters
    ----------
    modules : mapping of str to torch.nn.Module
        ``"net"`` (the window's network) and ``"face:<c>"`` boundary networks.
    coefficients : mapping of str to torch.nn.Parameter
        Learnt PDE coefficients (inverse problems).
    """

    def __init__(self, modules: Mapping[str, nn.Module],
                 coefficients: Mapping[str, nn.Parameter]) -> None:
        self.modules = dict(modules)
        self.coefficients = dict(coefficients)
        self.entries: list[tuple[str, str, torch.Tensor]] = []
        for key, module in self.modules.items():
            for name, p in module.named_parameters():
                if p.requires_grad:
                    self.entries.append((key, name, p))
        for name, p in self.coefficients.items():
            self.entries.append(("coef", name, p))
        self.sizes = [p.numel() for _, _, p in self.entries]
        self._adapters = {key: _PointsAdapter(m) for key, m in self.modules.items()}

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The trainable tensors (leaves), in a fixed order."""
        return [p for _, _, p in self.entries]

    @property
    def size(self) -> int:
        """Number of trainable numbers."""
        return sum(self.sizes)

    def labels(self) -> list[str]:
        """``"module.parameter"`` for each tensor."""
        return [f"{k}.{n}" for k, n, _ in self.entries]

    def flat(self) -> torch.Tensor:
        """All trainable numbers as one detached vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.tensors])

    def assign(self, vector: torch.Tensor) -> None:
        """Copy ``vector`` into the trainable tensors (in place, without autograd)."""
        with torch.no_grad():
            for p, chunk in zip(self.tensors, torch.split(vector, self.sizes)):
                p.copy_(chunk.reshape(p.shape))

    def split(self, vector: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """``vector`` as ``{module key: {parameter name: tensor}}`` (``"coef"`` for coefficients)."""
        out: dict[str, dict[str, torch.Tensor]] = {}
        for (key, name, p), chunk in zip(self.entries, torch.split(vector, self.sizes)):
            out.setdefault(key, {})[name] = chunk.reshape(p.shape)
        return out

    def _functions(self, parts: Mapping[str, Mapping[str, torch.Tensor]]):
        """The network and boundary networks at one point, with parameters from ``parts``."""
        def bind(key: str) -> Callable[[torch.Tensor], torch.Tensor]:
            adapter = self._adapters[key]
            params = {f"module.{k}": v for k, v in parts.get(key, {}).items()}
            return lambda z: functional_call(adapter, params, (z[None, :],))[0]

        boundary = {key.split(":", 1)[1]: bind(key) for key in self.modules
                    if key.startswith("face:")}
        return bind("net"), boundary

    def rows(self, loss: PINNLoss, vector: torch.Tensor, batch: Batch,
             data: Observations | None, causal: torch.Tensor | None,
             jacobian: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The weighted loss rows at ``vector`` and, if asked, their Jacobian.

        Returns
        -------
        rows : torch.Tensor
            ``(n_rows,)``; the loss is ``sum(rows**2)``.
        jac : torch.Tensor or None
            ``(n_rows, size)``.
        """
        initial_outputs = tuple(batch.initial_target or ())
        data_outputs = data.outputs if data is not None else ()
        all_rows, all_jacs = [], []
        for kind, points, extra, scale in loss.row_blocks(batch, data, causal):
            def point(vec: torch.Tensor, z: torch.Tensor, e: Any, _kind: str = kind):
                parts = self.split(vec)
                net_fn, boundary = self._functions(parts)
                coef = parts.get("coef", {})
                return loss.point_rows(_kind, net_fn, boundary, coef, z, e, initial_outputs,
                                       data_outputs)

            in_dims = (None, 0, 0 if extra is not None else None)
            if jacobian:  # the rows come with their Jacobian (one pass)
                def with_value(vec, z, e, _point=point):
                    r = _point(vec, z, e)
                    return r, r.detach()

                j, r = vmap(jacrev(with_value, has_aux=True), in_dims=in_dims)(vector, points,
                                                                                 extra)
            else:
                r = vmap(point, in_dims=in_dims)(vector, points, extra)
            s = scale if not isinstance(scale, torch.Tensor) else scale[:, None]
            all_rows.append((r * s).reshape(-1))
            if jacobian:
                all_jacs.append((j * (s if not isinstance(s, torch.Tensor)
                                      else s[:, :, None])).reshape(-1, vector.numel()))
        rows = torch.cat(all_rows)
        return rows, (torch.cat(all_jacs) if jacobian else None)


class _PointsAdapter(nn.Module):
    """Calls ``module.forward_points`` (networks) or ``module`` (boundary networks) on points."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if hasattr(self.module, "forward_points"):
            return self.module.forward_points(z)
        return self.module(z)
