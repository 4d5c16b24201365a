"""Lazy autograd derivatives of the network output: ``f.u``, ``f.u_t``, ``f.u_xx`` ..."""
from __future__ import annotations

from typing import Iterator, Mapping

import torch

__all__ = ["Fields"]

_VARS = ("x", "t")


class Fields(Mapping[str, torch.Tensor]):
    """The field ``u`` and its partial derivatives at collocation points, computed on demand.

    A residual function receives a ``Fields`` object and reads what it needs, e.g.
    ``f.u_t + beta * f.u_x`` or ``f["u_xx"]``. A name is ``"u"`` followed by ``"_"`` and the
    differentiation variables in order (``"u_xt"`` is ``d/dt (d/dx u)``). Each derivative is
    computed once with :func:`torch.autograd.grad` (``create_graph=True``, so losses built from
    it can be trained) and cached. ``f.x`` and ``f.t`` are the coordinates, shape ``(n,)``.

    Parameters
    ----------
    u : torch.Tensor
        Network output, shape ``(n, 1)``.
    x, t : torch.Tensor
        Coordinates with ``requires_grad=True``, shape ``(n, 1)``.
    """

    def __init__(self, u: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> None:
        self._x = x
        self._t = t
        self._cache: dict[str, torch.Tensor] = {"u": u}

    @property
    def x(self) -> torch.Tensor:
        """The x coordinates, shape ``(n,)``."""
        return self._x[:, 0]

    @property
    def t(self) -> torch.Tensor:
        """The t coordinates, shape ``(n,)``."""
        return self._t[:, 0]

    def _column(self, name: str) -> torch.Tensor:
        if name in self._cache:
            return self._cache[name]
        if not name.startswith("u_") or len(name) < 3 or any(c not in _VARS for c in name[2:]):
            raise KeyError(f"unknown field {name!r}: use 'u' or 'u_' followed by x/t letters, "
                           "e.g. 'u_x', 'u_xx', 'u_t', 'u_xt'")
        parent = "u" if len(name) == 3 else name[:-1]
        base = self._column(parent)
        var = self._x if name[-1] == "x" else self._t
        (grad,) = torch.autograd.grad(base, var, grad_outputs=torch.ones_like(base),
                                      create_graph=True, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(base)
        self._cache[name] = grad
        return grad

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._column(name)[:, 0]

    def __getattr__(self, name: str) -> torch.Tensor:
        if name.startswith("u"):
            try:
                return self[name]
            except KeyError as exc:
                raise AttributeError(str(exc)) from None
        raise AttributeError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._cache))

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, name: object) -> bool:
        return name in self._cache
