"""Lazy autograd derivatives of the network outputs: ``f.u``, ``f.u_t``, ``f.v_xy`` ..."""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import torch

from ..errors import UnknownNameError, ValidationError

__all__ = ["Fields", "check_output_names"]


def check_output_names(outputs: Sequence[str], coordinates: Sequence[str]) -> tuple[str, ...]:
    """Validated output names: identifiers without ``_``, distinct, not coordinate names."""
    if isinstance(outputs, str):
        outputs = (outputs,)
    try:
        names = tuple(outputs)
    except TypeError:
        raise ValidationError(f"outputs must be a sequence of names; got {outputs!r}") from None
    if not names:
        raise ValidationError("outputs must name at least one field (e.g. ('u',))")
    for n in names:
        if not isinstance(n, str) or not n.isidentifier() or "_" in n:
            raise ValidationError(f"output names must be identifiers without '_' (so that "
                                  f"'u_x' parses); got {n!r}")
        if n in coordinates:
            raise ValidationError(f"output name {n!r} clashes with a coordinate name "
                                  f"({', '.join(coordinates)})")
    if len(set(names)) != len(names):
        raise ValidationError(f"output names must be distinct; got {names!r}")
    return names


class Fields(Mapping[str, torch.Tensor]):
    """The network outputs and their partial derivatives at collocation points, on demand.

    A residual function receives a ``Fields`` object and reads what it needs, e.g.
    ``f.u_t + beta * f.u_x`` or ``f["v_yy"]``. A name is an output name (``"u"``), optionally
    followed by ``"_"`` and the differentiation variables in order (``"u_xt"`` is
    ``d/dt (d/dx u)``). Each derivative is computed once with :func:`torch.autograd.grad`
    (``create_graph=True``, so losses built from it can be trained) and cached. The coordinates
    are ``f.x``, ``f.y``, ``f.t`` (shape ``(n,)``) and PDE coefficients ``f.parameters`` (fixed
    numbers, or tensors that are trained in an inverse problem).

    Parameters
    ----------
    values : torch.Tensor
        Network outputs, shape ``(n, k)`` (or ``(n,)`` for one output).
    coords : mapping of str to torch.Tensor
        Coordinates by name (one letter each), shape ``(n, 1)``, with ``requires_grad=True``
        wherever a derivative along them is wanted.
    outputs : sequence of str, optional
        Names of the ``k`` output columns (default ``("u",)``).
    parameters : mapping of str to float or torch.Tensor, optional
        PDE coefficients made available to the residual.
    """

    def __init__(self, values: torch.Tensor, coords: Mapping[str, torch.Tensor], *,
                 outputs: Sequence[str] = ("u",),
                 parameters: Mapping[str, Any] | None = None) -> None:
        if not isinstance(values, torch.Tensor):
            raise ValidationError(f"values must be a torch.Tensor; got {type(values).__name__}")
        if values.ndim == 1:
            values = values[:, None]
        for name in coords:
            if not (isinstance(name, str) and len(name) == 1 and name.isalpha()):
                raise ValidationError(f"coordinate names must be single letters; got {name!r}")
        self._coords = dict(coords)
        self._outputs = check_output_names(outputs, tuple(self._coords))
        if values.ndim != 2 or values.shape[1] != len(self._outputs):
            raise ValidationError(f"values must have shape (n, {len(self._outputs)}) for "
                                  f"outputs {self._outputs}; got {tuple(values.shape)}")
        self._cache: dict[str, torch.Tensor] = {
            name: values[:, i:i + 1] for i, name in enumerate(self._outputs)}
        self.parameters: Mapping[str, Any] = dict(parameters or {})

    @property
    def outputs(self) -> tuple[str, ...]:
        """Output names."""
        return self._outputs

    @property
    def coordinates(self) -> tuple[str, ...]:
        """Coordinate names."""
        return tuple(self._coords)

    def coordinate(self, name: str) -> torch.Tensor:
        """The coordinate ``name``, shape ``(n,)``."""
        if name not in self._coords:
            raise UnknownNameError(f"unknown coordinate {name!r}; have {', '.join(self._coords)}")
        return self._coords[name][:, 0]

    def _parse(self, name: str) -> tuple[str, str]:
        base, _, letters = name.partition("_")
        if base not in self._outputs or ("_" in name and (
                not letters or any(c not in self._coords for c in letters))):
            raise UnknownNameError(
                f"unknown field {name!r}: use an output ({', '.join(self._outputs)}) optionally "
                f"followed by '_' and coordinate letters ({', '.join(self._coords)}), e.g. "
                f"'{self._outputs[0]}_{self.coordinates[0]}', "
                f"'{self._outputs[0]}_{self.coordinates[0] * 2}'")
        return base, letters

    def _column(self, name: str) -> torch.Tensor:
        if name in self._cache:
            return self._cache[name]
        base, letters = self._parse(name)
        parent = base if len(letters) == 1 else f"{base}_{letters[:-1]}"
        value = self._column(parent)
        if not self._coords[letters[-1]].requires_grad:
            raise ValidationError(f"cannot differentiate along {letters[-1]!r}: that "
                                  "coordinate tensor does not require grad")
        # one backward pass gives the derivative along every coordinate: cache them all
        names = [c for c, v in self._coords.items() if v.requires_grad]
        grads = torch.autograd.grad(value, [self._coords[c] for c in names],
                                    grad_outputs=torch.ones_like(value), create_graph=True,
                                    allow_unused=True)
        stem = f"{base}_{letters[:-1]}"
        for c, grad in zip(names, grads):
            if grad is None:  # the output does not depend on this coordinate
                grad = torch.zeros_like(value)
            self._cache.setdefault(stem + c, grad)
        return self._cache[name]

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._column(name)[:, 0]

    def __getattr__(self, name: str) -> torch.Tensor:
        if name.startswith("_"):
            raise AttributeError(name)
        coords = self.__dict__.get("_coords", {})
        if name in coords:
            return coords[name][:, 0]
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._cache))

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, name: object) -> bool:
        return name in self._cache
