"""One time window as the loss sees it: the network plus its tied parameters.

The window's parameter group (coefficients, periods and their harmonic frequencies, shared
boundary networks; see :func:`window_group`) is trained through
:class:`sciTie.core.torch.TiedParameters`: a :class:`Bound` window reads every tied number
from the group's slots, computed from its free vector in the forward pass.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["Bound", "bind", "PointsAdapter", "boundary_names"]


class PointsAdapter(nn.Module):
    """Calls ``module.forward_points`` (networks) or ``module`` (boundary networks) on points,
    so that :func:`torch.func.functional_call` can run either with given parameters."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, z: torch.Tensor, frequencies: Any = None) -> torch.Tensor:
        if hasattr(self.module, "forward_points"):
            return self.module.forward_points(z, frequencies)
        return self.module(z)


class Bound:
    """A network with the slot values of its window group: what the loss evaluates.

    Parameters
    ----------
    forward : callable
        ``forward(z) -> outputs`` at points ``z`` (a batch ``(n, d)`` or one point ``(d,)``).
    boundary : mapping of str to callable
        Shared-mode boundary network of each periodic coordinate, same convention.
    parameters : mapping
        PDE coefficients handed to the residual as ``f.parameters``.
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor],
                 boundary: Mapping[str, Callable[[torch.Tensor], torch.Tensor]],
                 parameters: Mapping[str, Any]) -> None:
        self.forward_points = forward
        self.boundary_fns = dict(boundary)
        self.parameters = dict(parameters)

    def boundary(self, c: str, z: torch.Tensor) -> torch.Tensor:
        """The shared boundary network of ``c`` at ``z``."""
        return self.boundary_fns[c](z)


def boundary_names(group: Any, templates: Mapping[str, nn.Module]) -> dict[str, dict[str, str]]:
    """For each boundary network: its parameter names -> their names in the group, named as
    :func:`sciTie.core.torch.group_from_module` names them (the rule
    :meth:`TiedParameters.functional_call` reads them by)."""
    from ..core.torch import module_parameter_name  # the bridge's own rule, not a copy

    out = {}
    for c, module in templates.items():
        out[c] = {n: f"boundary_{c}.{module_parameter_name(n)}"
                  for n, _ in module.named_parameters(remove_duplicate=False)}
        missing = [g for g in out[c].values() if g not in group]
        if missing:  # pragma: no cover - a naming change in the bridge
            raise RuntimeError(f"boundary network {c}: {missing[:3]} not in the group")
    return out


def bind(net: nn.Module, tied: Any, templates: Mapping[str, nn.Module], problem: Any) -> Bound:
    """The window with its group's current slot values (autograd flows to the free vector)."""
    values = tied.values()
    frequencies = {c: values[f"frequency_{c}"] for c in net.periodic_axes()} or None
    boundary = {c: (lambda z, _m=m, _c=c: tied.functional_call(
        _m, (z,), prefix=f"boundary_{_c}", values=values)) for c, m in templates.items()}
    params = {name: values[name] for name in problem.parameters}
    return Bound(lambda z: net.forward_points(z, frequencies), boundary, params)


def bind_functional(net_adapter: PointsAdapter, net_params: Mapping[str, torch.Tensor],
                    slots: Mapping[str, torch.Tensor],
                    templates: Mapping[str, PointsAdapter],
                    names: Mapping[str, Mapping[str, str]], periodic: list[str],
                    coefficients: list[str]) -> Bound:
    """The window at one point with explicit parameters (for :mod:`torch.func` transforms).

    ``net_params`` are the network's own weights, ``slots`` the group's slot tensors by
    parameter name (frequencies, coefficients, boundary weights).
    """
    frequencies = {c: slots[f"frequency_{c}"] for c in periodic} or None
    params = {f"module.{k}": v for k, v in net_params.items()}

    def forward(z: torch.Tensor) -> torch.Tensor:
        return functional_call(net_adapter, params, (z[None, :],),
                               {"frequencies": frequencies})[0]

    boundary = {}
    for c, adapter in templates.items():
        bparams = {f"module.{n}": slots[g] for n, g in names[c].items()}
        boundary[c] = (lambda z, _a=adapter, _p=bparams:
                       functional_call(_a, _p, (z[None, :],))[0])
    return Bound(forward, boundary, {name: slots[name] for name in coefficients})
