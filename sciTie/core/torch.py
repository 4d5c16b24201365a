"""Autograd through the tie map: a :class:`~sciTie.ParameterGroup` as a PyTorch module.

:class:`TiedParameters` holds the free vector of a group as ONE leaf tensor (an
:class:`torch.nn.Parameter`) and computes the slots inside the forward pass::

    slots = G @ free + offset          (one-target ties: gathered by index, one entry per row)
    slot  = expression(other slots)    (constraints, evaluated with torch operations)
    slot  = offset + Σ c_k slot_k      (``tie_linear``: evaluated slot by slot)

so autograd returns ``Gᵀ · d loss / d slots`` for every tie a group can state: equalities, scaled
and offset ties, element, row and transposed selections, and the local linearisation of
nonlinear constraints. Fixed values live in a buffer. Importing this module imports torch;
``import sciTie`` does not.

Bounds are *not* part of the gradient: autograd sees an unconstrained free vector. Project it
back with :meth:`TiedParameters.clamp_` (or :meth:`TiedParameters.clamp_after_step`) for
projected gradient descent; :meth:`TiedParameters.to_group` refuses free values outside their
bounds rather than return an invalid group.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, ValidationError
from .expressions import FUNCTIONS, Expression, ExpressionError
from .tiemap import FunctionRelation, LinearRelation
from .group import ParameterGroup
from .parameter import check_name

__all__ = ["TiedParameters", "TiedSlotValues", "group_from_module", "module_parameter_name",
           "TORCH_FUNCTIONS"]

_STATE_FORMAT = "sciTie.TiedParameters/1"
# where a slot's value starts before its chain of linear ties is applied
_ROOT_FREE, _ROOT_COMPUTED, _ROOT_FIXED = 0, 1, 2


# -- torch implementations of the core's whitelisted functions --------------------------------
def _as_tensor_like(x: Any, like: torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=like.dtype,
                                                                 device=like.device)


def _unary(torch_fn: Callable, float_fn: Callable) -> Callable:
    # constant sub-expressions (``sin(2)``) stay Python floats, as in the core's evaluator
    return lambda x: torch_fn(x) if isinstance(x, torch.Tensor) else float_fn(x)


def _binary(torch_fn: Callable, float_fn: Callable) -> Callable:
    def apply(x: Any, y: Any) -> Any:
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            like = x if isinstance(x, torch.Tensor) else y
            return torch_fn(_as_tensor_like(x, like), _as_tensor_like(y, like))
        return float_fn(x, y)
    return apply


#: torch twin of every function the core's expressions accept (``sciTie.core.expressions``).
#: ``min``/``max`` pick the first argument on a tie, as the core's derivative does.
TORCH_FUNCTIONS: dict[str, Callable] = {
    "sin": _unary(torch.sin, math.sin),
    "cos": _unary(torch.cos, math.cos),
    "tan": _unary(torch.tan, math.tan),
    "exp": _unary(torch.exp, math.exp),
    "log": _unary(torch.log, math.log),
    "log10": _unary(torch.log10, math.log10),
    "sqrt": _unary(torch.sqrt, math.sqrt),
    "abs": _unary(torch.abs, abs),
    "arcsin": _unary(torch.asin, math.asin),
    "arccos": _unary(torch.acos, math.acos),
    "arctan": _unary(torch.atan, math.atan),
    "sinh": _unary(torch.sinh, math.sinh),
    "cosh": _unary(torch.cosh, math.cosh),
    "tanh": _unary(torch.tanh, math.tanh),
    "arctan2": _binary(torch.atan2, math.atan2),
    "hypot": _binary(torch.hypot, math.hypot),
    "min": _binary(lambda x, y: torch.where(x <= y, x, y), min),
    "max": _binary(lambda x, y: torch.where(x >= y, x, y), max),
}
if set(TORCH_FUNCTIONS) != set(FUNCTIONS):  # one whitelist: a new core function needs a twin
    raise ImportError("sciTie.core.torch is out of date with the expression whitelist: "
                      f"{sorted(set(FUNCTIONS) ^ set(TORCH_FUNCTIONS))}")


# -- the tie program: a group's structure, flattened for vectorised evaluation ---------------
@dataclass(frozen=True)
class _Computed:
    """A slot computed from other slots one at a time: an expression, or a linear combination
    ``offset + Σ scales[k] * slot[refs[k]]`` of several slots (``tie_linear``)."""

    slot: int
    refs: np.ndarray
    expression: Expression | None = None
    scales: tuple[float, ...] = ()
    offset: float = 0.0

    def describe(self) -> str:
        if self.expression is not None:
            return self.expression.text
        return f"linear combination with offset {self.offset:g}"


@dataclass
class _Program:
    """How every slot of a group is computed from the free, expression and fixed values.

    Slot ``i`` starts at a *root* value (a free parameter, a computed slot -- an expression or
    a linear combination of several slots -- or a fixed value) and then goes through its chain
    of one-target linear ties ``x <- x * scale + offset``, in the order the core applies them,
    so the values equal :meth:`ParameterGroup.unpack` exactly.
    """

    slot_names: list[str]
    free_names: list[str]
    root_kind: np.ndarray       # (n_slots,) _ROOT_*
    root_index: np.ndarray      # (n_slots,) index into free / computed / fixed values
    chains: list[list[tuple[float, float]]]   # per slot, root outward; trivial (1, 0) dropped
    computed: list[_Computed]   # in an order where every input is available before use
    free_values: np.ndarray
    fixed_values: np.ndarray
    lower: np.ndarray           # bounds of the free vector
    upper: np.ndarray
    fingerprint: str
    layout: Any                 # the core's compiled view (name lookup); None after a copy
    segments: list[int]         # free-vector boundaries between parameters (0 ... n_free)

    @property
    def n_slots(self) -> int:
        return len(self.slot_names)


def _compile_program(group: ParameterGroup) -> _Program:
    c = group.tie_map()
    n = len(c.names)
    slots = c.evaluate()
    root_kind = np.full(n, -1, dtype=np.int8)
    root_index = np.zeros(n, dtype=np.int64)
    chains: list[list[tuple[float, float]]] = [[] for _ in range(n)]
    root_kind[c.free_index] = _ROOT_FREE
    root_index[c.free_index] = np.arange(c.free_index.size)
    root_kind[c.fixed_index] = _ROOT_FIXED
    root_index[c.fixed_index] = np.arange(c.fixed_index.size)
    computed: list[_Computed] = []
    for i in c.dependency_order:  # a slot's targets are resolved before the slot
        rel = c.relation(i)
        if isinstance(rel, LinearRelation) and len(rel.targets) == 1:
            t = rel.targets[0]
            scale, offset = rel.scales[0], rel.offset
            root_kind[i], root_index[i] = root_kind[t], root_index[t]
            chains[i] = chains[t] + ([] if (scale == 1.0 and offset == 0.0) else [(scale, offset)])
        elif isinstance(rel, LinearRelation):
            root_kind[i], root_index[i] = _ROOT_COMPUTED, len(computed)
            computed.append(_Computed(
                int(i), np.array(rel.targets, dtype=np.int64),
                scales=tuple(float(v) for v in rel.scales), offset=float(rel.offset)))
        elif isinstance(rel, FunctionRelation):
            raise ValidationError(
                f"group {group.name!r}: slot {c.names[i]!r} is computed by {rel.label!r} (a "
                "numpy vector function, constrain_function), which the torch bridge cannot "
                "differentiate; write it as ties or expressions")
        else:
            root_kind[i], root_index[i] = _ROOT_COMPUTED, len(computed)
            computed.append(_Computed(int(i), np.asarray(rel.references, dtype=np.int64),
                                      expression=rel.expression))
    if np.any(root_kind < 0):  # pragma: no cover - the core's compile guarantees this
        raise RuntimeError("internal error: a slot without a root")
    # what the forward pass computes, independent of the values: slot names, how each slot
    # is reached from its root, and the computed slots (fixed values and bounds excluded)
    digest = hashlib.sha256()
    digest.update("\n".join(c.names).encode())
    for array in (np.asarray(c.kind, dtype=np.int8), root_kind, root_index,
                  np.array([len(ch) for ch in chains], dtype=np.int64),
                  np.array([step for ch in chains for step in ch], dtype=np.float64)):
        digest.update(array.tobytes())
    digest.update(json.dumps([[e.slot, e.refs.tolist(), e.expression and e.expression.text,
                               [float.hex(v) for v in e.scales], float.hex(e.offset)]
                              for e in computed]).encode())
    return _Program(
        slot_names=list(c.names), free_names=c.free_names,
        root_kind=root_kind, root_index=root_index, chains=chains, computed=computed,
        free_values=slots[c.free_index].copy(), fixed_values=slots[c.fixed_index].copy(),
        lower=c.lower[c.free_index].copy(), upper=c.upper[c.free_index].copy(),
        fingerprint=digest.hexdigest(), layout=c, segments=_segments(c))


def _segments(c: Any) -> list[int]:
    """Boundaries of each parameter's run of columns in the free vector.

    The free columns follow slot order, so the free slots of one parameter are one run;
    :meth:`TiedSlotValues.__getitem__` hands out such runs as pieces of one ``split``, whose
    backward is a single concatenation instead of one zero-filled gradient per parameter.
    """
    cuts = {0, int(c.free_index.size)}
    for idx in c.parameters.values():
        cols = c.free_column[idx.reshape(-1)]
        cols = cols[cols >= 0]
        if cols.size:
            cuts.update((int(cols.min()), int(cols.max()) + 1))
    return sorted(cuts)


@dataclass
class _Plan:
    """Precomputed index tensors that evaluate one selection of slots."""

    shape: tuple[int, ...]
    mode: str                   # "view", "gather" or "general"
    start: int = 0
    stop: int = 0
    segment: int = -1           # view plans: which piece of the split free vector, if one
    source: torch.Tensor | None = None     # index into free (gather) or [free, expr, fixed]
    steps: tuple[tuple[torch.Tensor | None, torch.Tensor | None], ...] = ()
    needs_computed: bool = False
    needs_fixed: bool = False
    device: torch.device | None = None
    dtype: torch.dtype | None = None


class TiedSlotValues(Mapping):
    """Slot tensors of a :class:`TiedParameters`, addressable by name like :class:`SlotValues`.

    Returned by :meth:`TiedParameters.values`: constrained expressions are evaluated once when
    it is made; each ``values[name]`` then gathers only the selected slots (``"encoder.weight"``
    gives a tensor shaped like the parameter, ``"mu[1]"`` a row, ``"a"`` a 0-d tensor). Iterating
    yields the parameter names, so ``dict(values)`` maps every parameter to its tensor (what
    :func:`torch.func.functional_call` takes).
    """

    def __init__(self, module: "TiedParameters", expr_values: torch.Tensor | None) -> None:
        self._module = module
        self._expr_values = expr_values
        self._pieces: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            plan = self._module._plan(name)
        except ValidationError as exc:
            raise KeyError(str(exc)) from None
        if plan.segment >= 0:
            if self._pieces is None:
                self._pieces = self._module.free.split(np.diff(self._module._program.segments)
                                                       .tolist())
            return self._pieces[plan.segment].view(plan.shape)
        return self._module._run(plan, self._expr_values)

    def __iter__(self) -> Iterator[str]:
        return iter(self._module._parameter_names)

    def __len__(self) -> int:
        return len(self._module._parameter_names)

    def __repr__(self) -> str:
        return f"TiedSlotValues({list(self)})"


class TiedParameters(nn.Module):
    """The free vector of a :class:`~sciTie.ParameterGroup` as one trainable leaf tensor.

    The slots (every number the model reads) are computed from it inside the forward pass,
    so any tie the group states is honoured by autograd: the gradient of the free vector is
    ``Gᵀ`` times the gradient with respect to the slots, ``G = group.tie_matrix(free)``.

    Parameters
    ----------
    group : ParameterGroup
        Parameters, ties, constraints and fixed values, read once: later changes to it do not
        affect this module (build a new one for new ties; :meth:`load_group` loads new
        values). :meth:`to_group` refuses to run if the group's ties were changed since.
    dtype : torch.dtype, default torch.float64
        Floating dtype of the free vector and the slots.
    device : torch.device or str, optional
        Where the tensors live (default: torch's default device).
    check_finite : bool, default True
        Raise :class:`~sciTie.ExpressionError` when a constrained expression evaluates to a
        non-finite value (e.g. ``sqrt`` of a negative slot), instead of passing NaN on.

    Attributes
    ----------
    free : torch.nn.Parameter
        The free vector, shape ``(n_free,)``, in :attr:`free_names` order; the only trainable
        tensor and the only weight in :meth:`state_dict`.
    fixed : torch.Tensor
        Buffer with the values of the fixed slots (``vary=False``).

    Notes
    -----
    Ties to one target (``tie``: equal, scaled, offset, element, row and transposed
    selections, and chains of them) are evaluated by one gather from the free vector (their
    rows of ``G`` have a single non-zero), so the backward pass is a scatter-add: ``Gᵀ``
    without forming a matrix. Selections of untied free slots that are contiguous in the free
    vector are returned as views. Constrained expressions (walking the core's whitelisted
    syntax tree, never ``eval``) and linear ties to several slots (``tie_linear``) are
    evaluated one slot at a time with scalar torch operations; they suit a few such slots, not
    thousands. Every slot equals :meth:`~sciTie.ParameterGroup.unpack` (the same operations
    in the same order; transcendental functions up to the last bits of the math library).

    ``state_dict()`` holds ``free`` once (tied weights are not duplicated), ``fixed``, and a
    fingerprint of the tie structure; loading a state from differently tied parameters raises
    :class:`~sciTie.errors.CheckpointError`.

    Bounds are not enforced by autograd: call :meth:`clamp_` after each optimiser step
    (:meth:`clamp_after_step` registers that) for projected gradient descent.

    Examples
    --------
    >>> import torch
    >>> from sciTie import ParameterGroup
    >>> from sciTie.core.torch import TiedParameters
    >>> g = ParameterGroup("model")
    >>> _ = g.add("a", 2.0)
    >>> _ = g.add("b", 0.0)
    >>> g.tie("b", to="a", scale=3.0, offset=1.0)
    >>> tp = TiedParameters(g)
    >>> tp.slots()
    tensor([2., 7.], dtype=torch.float64, grad_fn=<...>)
    >>> tp.slots().sum().backward()          # d(a + 3a + 1)/da
    >>> tp.free.grad
    tensor([4.], dtype=torch.float64)
    """

    def __init__(self, group: ParameterGroup, *, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None, check_finite: bool = True) -> None:
        super().__init__()
        if not isinstance(group, ParameterGroup):
            raise ValidationError(f"group: expected a sciTie ParameterGroup, got "
                                  f"{type(group).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValidationError(f"dtype: expected a floating torch dtype such as "
                                  f"torch.float64, got {dtype!r}")
        try:
            device = torch.device(device) if device is not None else None
        except (RuntimeError, TypeError) as exc:
            raise ValidationError(f"device: {device!r} is not a torch device ({exc})") from None
        if device is not None and device.type == "cuda" and not torch.cuda.is_available():
            raise ValidationError(f"device: {str(device)!r} asked for, but this torch has no "
                                  "CUDA device (torch.cuda.is_available() is False); use 'cpu'")
        try:
            program = _compile_program(group)
        except ValueError as exc:
            raise ValidationError(f"group: {group.name!r} cannot be evaluated: {exc}") from None
        # the structure is snapshotted here; the group is only copied again by to_group()
        self._group = group
        self._program = program
        self._parameter_names = list(program.layout.parameters)
        self.check_finite = bool(check_finite)
        self._plans: dict[str | None, _Plan] = {}
        self.free = nn.Parameter(torch.tensor(program.free_values, dtype=dtype, device=device))
        self.register_buffer("fixed", torch.tensor(program.fixed_values, dtype=dtype,
                                                   device=device))
        self.register_buffer("_lower", torch.tensor(program.lower, dtype=dtype, device=device),
                             persistent=False)
        self.register_buffer("_upper", torch.tensor(program.upper, dtype=dtype, device=device),
                             persistent=False)
        # check a loaded state's structure before torch copies its tensors in
        self.register_load_state_dict_pre_hook(_check_state_first)

    # -- names -----------------------------------------------------------------------------------
    @property
    def slot_names(self) -> list[str]:
        """Display names of every slot, in the order of :meth:`slots`."""
        return list(self._program.slot_names)

    @property
    def free_names(self) -> list[str]:
        """Display names of the free parameters, in the order of :attr:`free`."""
        return list(self._program.free_names)

    @property
    def n_slots(self) -> int:
        """Number of slots (numbers the model reads)."""
        return self._program.n_slots

    @property
    def n_free(self) -> int:
        """Number of free parameters: what the optimiser trains and AIC/BIC count."""
        return len(self._program.free_names)

    @property
    def group_name(self) -> str:
        """Name of the group this module was built from."""
        return self._group.name

    # -- forward ---------------------------------------------------------------------------------
    def forward(self) -> torch.Tensor:
        """The slot vector, shape ``(n_slots,)``, in :attr:`slot_names` order."""
        plan = self._plan(None)
        return self._run(plan, self._computed_values() if plan.needs_computed else None)

    def slots(self) -> torch.Tensor:
        """The slot vector (same as calling the module)."""
        return self()

    def slot(self, name: str) -> torch.Tensor:
        """Tensor of one parameter or selection, shaped like it.

        ``"encoder.weight"`` gives the whole parameter, ``"mu[1]"`` a row, ``"mu[1,0]"`` and
        scalar parameters a 0-d tensor. To read several parameters in one forward pass, use
        :meth:`values` (constrained expressions are then evaluated once).
        """
        plan = self._plan(name)
        return self._run(plan, self._computed_values() if plan.needs_computed else None)

    def values(self) -> TiedSlotValues:
        """All slots by name, for one forward pass (a :class:`TiedSlotValues` mapping)."""
        return TiedSlotValues(self, self._computed_values() if self._program.computed
                              else None)

    def functional_call(self, module: nn.Module, args: Any = (),
                        kwargs: dict[str, Any] | None = None, *, prefix: str = "",
                        values: TiedSlotValues | None = None) -> Any:
        """Call ``module(*args, **kwargs)`` with its parameters taken from the tied slots.

        Like :func:`torch.func.functional_call`: ``module`` serves as the architecture, its
        own parameters are not used (keep them away from the optimiser and the state: do not
        register ``module`` as a submodule of a trained model, or build it on the ``meta``
        device).

        Parameters
        ----------
        module : torch.nn.Module
            The network. Each of its parameters is read from the slot named as
            :func:`group_from_module` names it (``"encoder.weight"``; ``"layers.0.weight"``
            becomes ``"layers_0.weight"``), after ``prefix``.
        args : tuple or object, default ()
            Positional arguments of ``module``; a single non-tuple is passed as one argument.
        kwargs : dict, optional
            Keyword arguments of ``module``.
        prefix : str, default ""
            Child group holding the module's parameters in this group (``"boundary"`` reads
            ``"boundary.layers_0.weight"``).
        values : TiedSlotValues, optional
            The result of :meth:`values` of this forward pass, so that constrained
            expressions are evaluated once when several modules are called.
        """
        if not isinstance(module, nn.Module):
            raise ValidationError(f"module: expected a torch.nn.Module, got "
                                  f"{type(module).__name__}")
        if not isinstance(prefix, str):
            raise ValidationError(f"prefix: expected a str, got {type(prefix).__name__}")
        lead = f"{prefix}." if prefix else ""
        names = {n: lead + module_parameter_name(n) for n, _ in module.named_parameters(
            remove_duplicate=False)}
        known = self._layout().parameters
        missing = [g for g in names.values() if g not in known]
        if missing:
            plain = [module_parameter_name(n) for n in names]
            hint = sorted({k[:-len(plain[0]) - 1] for k in known if k.endswith("." + plain[0])})
            hint_text = (f"; the module's weights are under prefix={hint[0]!r}" if hint else
                         "; build the group with group_from_module(module)")
            raise ValidationError(f"module: parameter(s) {', '.join(missing[:10])} are not in "
                                  f"group {self.group_name!r}{hint_text}")
        if values is None:
            values = self.values()
        elif not isinstance(values, TiedSlotValues) or values._module is not self:
            raise ValidationError("values: expected the result of this module's values()")
        return torch.func.functional_call(module, {n: values[g] for n, g in names.items()},
                                          args, kwargs)

    # -- evaluation ------------------------------------------------------------------------------
    def _layout(self) -> Any:
        """The core's compiled view of the group, rebuilt after a copy or unpickling.

        It addresses slots by object identity, which ``deepcopy`` and ``pickle`` change, so
        copies drop it (``__getstate__``) and recompile it from their copy of the group.
        """
        if self._program.layout is None:
            try:
                program = _compile_program(self._group)
            except ValueError:
                program = None
            if program is None or program.fingerprint != self._program.fingerprint:
                raise ValidationError(
                    f"group {self.group_name!r} was given other slots or ties after this module "
                    "was built from it; build a new TiedParameters from the changed group")
            self._program.layout = program.layout
        return self._program.layout

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_program"] = dataclasses.replace(self._program, layout=None)
        state["_plans"] = {}
        return state

    def _computed_values(self) -> torch.Tensor:
        """Values of the computed slots (expressions, multi-term linear ties), in order."""
        prog = self._program
        out: list[torch.Tensor] = []
        for entry in prog.computed:
            inputs = []
            for j in entry.refs:
                kind, r = prog.root_kind[j], int(prog.root_index[j])
                x = (self.free[r] if kind == _ROOT_FREE else out[r] if kind == _ROOT_COMPUTED
                     else self.fixed[r])
                for scale, offset in prog.chains[j]:
                    x = x * scale + offset
                inputs.append(x)
            if entry.expression is not None:
                value = entry.expression.evaluate_with(inputs, TORCH_FUNCTIONS)
                if not isinstance(value, torch.Tensor):
                    value = torch.as_tensor(value, dtype=self.free.dtype, device=self.free.device)
            else:  # the core's order: offset + (scale_0 x_0 + scale_1 x_1 + ...)
                total = inputs[0] * entry.scales[0]
                for scale, x in zip(entry.scales[1:], inputs[1:]):
                    total = total + x * scale
                value = total + entry.offset
            out.append(value)
        values = torch.stack(out)
        if self.check_finite and not bool(torch.isfinite(values).all()):
            bad = int(torch.nonzero(~torch.isfinite(values))[0, 0])
            entry = prog.computed[bad]
            raise ExpressionError(
                f"constraint on slot {prog.slot_names[entry.slot]!r}: {entry.describe()!r} "
                f"evaluated to {values[bad].item()} (inputs: "
                f"{', '.join(prog.slot_names[j] for j in entry.refs) or 'none'}); keep the "
                "slots it reads inside its domain, e.g. with bounds and clamp_()")
        return values

    def _plan(self, name: str | None) -> _Plan:
        plan = self._plans.get(name)
        if plan is not None and plan.device == self.free.device and plan.dtype == self.free.dtype:
            return plan
        if name is None:
            index = np.arange(self.n_slots)
        else:
            try:
                index = np.asarray(self._layout().select(name))
            except (KeyError, ValueError, TypeError) as exc:
                msg = exc.args[0] if exc.args else str(exc)
                raise ValidationError(f"name: {msg}") from None
        plan = self._make_plan(index)
        self._plans[name] = plan
        return plan

    def _make_plan(self, index: np.ndarray) -> _Plan:
        prog = self._program
        shape = tuple(index.shape)
        flat = index.reshape(-1)
        kind = prog.root_kind[flat]
        root = prog.root_index[flat]
        depth = max((len(prog.chains[i]) for i in flat), default=0)
        device, dtype = self.free.device, self.free.dtype
        common = dict(shape=shape, device=device, dtype=dtype)
        if flat.size == 0:
            return _Plan(mode="gather", source=torch.zeros(0, dtype=torch.long, device=device),
                         **common)
        if depth == 0 and np.all(kind == _ROOT_FREE):
            if np.array_equal(root, np.arange(root[0], root[0] + root.size)):
                start, stop = int(root[0]), int(root[0] + root.size)
                cuts = prog.segments
                k = int(np.searchsorted(cuts, start))
                segment = k if k + 1 < len(cuts) and cuts[k] == start and cuts[k + 1] == stop \
                    else -1
                return _Plan(mode="view", start=start, stop=stop, segment=segment, **common)
            return _Plan(mode="gather", source=torch.as_tensor(root, device=device), **common)
        n_free, n_computed = self.n_free, len(prog.computed)
        source = root + np.where(kind == _ROOT_FREE, 0,
                                 np.where(kind == _ROOT_COMPUTED, n_free, n_free + n_computed))
        steps = []
        for k in range(depth):
            scale = np.ones(flat.size)
            offset = np.zeros(flat.size)
            for pos, i in enumerate(flat):
                if k < len(prog.chains[i]):
                    scale[pos], offset[pos] = prog.chains[i][k]
            steps.append((None if np.all(scale == 1.0) else torch.as_tensor(scale, dtype=dtype,
                                                                             device=device),
                          None if np.all(offset == 0.0) else torch.as_tensor(offset, dtype=dtype,
                                                                              device=device)))
        return _Plan(mode="general", source=torch.as_tensor(source, device=device),
                     steps=tuple(steps), needs_computed=bool(np.any(kind == _ROOT_COMPUTED)),
                     needs_fixed=bool(np.any(kind == _ROOT_FIXED)), **common)

    def _run(self, plan: _Plan, expr_values: torch.Tensor | None) -> torch.Tensor:
        free = self.free
        if plan.mode == "view":
            return free[plan.start:plan.stop].view(plan.shape)
        if plan.mode == "gather":
            return free.index_select(0, plan.source).view(plan.shape)
        if plan.needs_computed or plan.needs_fixed:
            parts = [free]
            if self._program.computed:
                parts.append(expr_values if expr_values is not None
                             else free.new_zeros(len(self._program.computed)))
            parts.append(self.fixed)
            source = torch.cat(parts)
        else:
            source = free
        x = source.index_select(0, plan.source)
        for scale, offset in plan.steps:  # the core's order: scale * target + offset
            if scale is not None:
                x = x * scale
            if offset is not None:
                x = x + offset
        return x.view(plan.shape)

    # -- group <-> tensors -----------------------------------------------------------------------
    def tie_matrix(self):
        """``G = d slots / d free`` at the current values (a SciPy sparse matrix).

        Exact and constant for linear ties; with constrained expressions, their linearisation
        at the current free and fixed values.
        """
        if not any(e.expression is not None for e in self._program.computed):
            return self._layout().matrix().copy()
        return self._copy_group(check_bounds=False).tie_matrix()

    def _free_numpy(self) -> np.ndarray:
        return self.free.detach().to("cpu", torch.float64).numpy().copy()

    def out_of_bounds(self) -> list[str]:
        """Names of the free parameters whose value lies outside their bounds."""
        with torch.no_grad():
            bad = (self.free < self._lower) | (self.free > self._upper)
        return [self._program.free_names[i] for i in torch.nonzero(bad).flatten().tolist()]

    @torch.no_grad()
    def clamp_(self) -> "TiedParameters":
        """Project the free vector onto its bounds, in place (projected gradient descent)."""
        self.free.copy_(torch.maximum(torch.minimum(self.free, self._upper), self._lower))
        return self

    def clamp_after_step(self, optimizer: torch.optim.Optimizer):
        """Call :meth:`clamp_` after every ``optimizer.step()``; returns the hook's handle.

        ``optimizer`` must be training :attr:`free`.
        """
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValidationError(f"optimizer: expected a torch.optim.Optimizer, got "
                                  f"{type(optimizer).__name__}")
        if not any(p is self.free for grp in optimizer.param_groups for p in grp["params"]):
            raise ValidationError("optimizer: it does not train this module's free vector; "
                                  "build it from tied.parameters()")
        return optimizer.register_step_post_hook(lambda *_: self.clamp_())

    def to_group(self) -> ParameterGroup:
        """A copy of the group holding the current free and fixed values (float64).

        Raises
        ------
        ValidationError
            When free values are not finite or lie outside their bounds (call
            :meth:`clamp_` first, or give them wider bounds), or when the group this module
            was built from has been given other ties since.
        """
        return self._copy_group(check_bounds=True)

    def _copy_group(self, *, check_bounds: bool) -> ParameterGroup:
        free = self._free_numpy()
        names = self._program.free_names
        bad = [names[i] for i in np.flatnonzero(~np.isfinite(free))]
        if bad:
            raise ValidationError(f"free vector: non-finite values for {', '.join(bad[:10])} "
                                  "(did training diverge?)")
        outside = self.out_of_bounds() if check_bounds else []
        if outside:
            raise ValidationError(
                f"free vector: {', '.join(outside[:10])} lie outside their bounds (autograd does "
                "not enforce bounds); call clamp_() or use clamp_after_step(optimizer)")
        # values that are in bounds in this dtype may round just outside in float64
        free = np.clip(free, self._program.lower, self._program.upper)
        try:
            unchanged = _compile_program(self._group).fingerprint == self._program.fingerprint
        except ValueError:
            unchanged = False
        if not unchanged:
            raise ValidationError(
                f"group {self.group_name!r} was given other slots or ties after this module was "
                "built from it; build a new TiedParameters from the changed group")
        group = self._group.copy()
        c = group.tie_map()
        stored = c.stored_slots()
        stored[c.fixed_index] = self.fixed.detach().to("cpu", torch.float64).numpy()
        group.set_slots(stored)   # fixed values first: tied and constrained slots may read them
        group.set_free(free)
        return group

    @torch.no_grad()
    def load_group(self, group: ParameterGroup) -> "TiedParameters":
        """Copy the free and fixed values of ``group`` into this module; returns ``self``.

        ``group`` must have the same slots and ties as the one this module was built from
        (e.g. the result of :meth:`to_group`, or the group a least-squares fit returned).
        """
        if not isinstance(group, ParameterGroup):
            raise ValidationError(f"group: expected a sciTie ParameterGroup, got "
                                  f"{type(group).__name__}")
        try:
            program = _compile_program(group)
        except ValueError as exc:
            raise ValidationError(f"group: {group.name!r} cannot be evaluated: {exc}") from None
        if program.fingerprint != self._program.fingerprint:
            raise ValidationError(f"group: {group.name!r} has different slots or ties than "
                                  f"the group {self.group_name!r} this module was built from "
                                  f"({_difference(program, self._program)})")
        self.free.copy_(torch.as_tensor(program.free_values, dtype=self.free.dtype))
        self.fixed.copy_(torch.as_tensor(program.fixed_values, dtype=self.fixed.dtype))
        self._lower.copy_(torch.as_tensor(program.lower, dtype=self._lower.dtype))
        self._upper.copy_(torch.as_tensor(program.upper, dtype=self._upper.dtype))
        self._group, self._program = group, program
        return self

    # -- checkpoints -----------------------------------------------------------------------------
    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False):
        """torch's ``load_state_dict``, checked first: the tie structure must be this
        module's, and the free values of the right shape and finite."""
        if not isinstance(state_dict, Mapping):
            raise ValidationError(f"state_dict must be a mapping of names to tensors (what "
                                  f"state_dict() returns), got {type(state_dict).__name__}")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def get_extra_state(self) -> dict[str, Any]:
        """What a checkpoint records about the tie structure (checked on load)."""
        p = self._program
        return {"format": _STATE_FORMAT, "group": self.group_name, "n_slots": p.n_slots,
                "n_free": self.n_free, "n_fixed": int(p.fixed_values.size),
                "structure_sha256": p.fingerprint}

    def set_extra_state(self, state: Any) -> None:
        """Refuse a state saved from parameters with other slots or ties."""
        if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
            raise CheckpointError("not a sciTie TiedParameters state (missing or unknown "
                                  "format)", key="_extra_state")
        mine = self.get_extra_state()
        if state.get("structure_sha256") != mine["structure_sha256"]:
            counts = ", ".join(f"{k} {state.get(k)} vs {mine[k]}"
                               for k in ("n_slots", "n_free", "n_fixed"))
            raise CheckpointError(
                f"the state was saved from group {state.get('group')!r} with other slots or "
                f"ties than this module's group {mine['group']!r} ({counts}); rebuild the module "
                "from the group it was trained with", key="_extra_state")

    def extra_repr(self) -> str:
        return (f"group={self.group_name!r}, n_slots={self.n_slots}, n_free={self.n_free}, "
                f"dtype={self.free.dtype}")


def _check_state_first(module: "TiedParameters", state_dict: Mapping, prefix: str,
                       *_: Any) -> None:
    key = prefix + "_extra_state"
    if key in state_dict:
        module.set_extra_state(state_dict[key])
        free = state_dict.get(prefix + "free")
        if free is not None:
            if not isinstance(free, torch.Tensor) or tuple(free.shape) != tuple(module.free.shape):
                raise ValidationError(
                    f"state {prefix}free must be a tensor of shape {tuple(module.free.shape)} "
                    f"(this module's free parameters), got "
                    f"{tuple(free.shape) if isinstance(free, torch.Tensor) else type(free).__name__}")
            if not bool(torch.isfinite(free).all()):
                raise ValidationError(f"state {prefix}free holds non-finite values (NaN or inf); "
                                      "a checkpoint of a diverged run cannot be loaded")
    elif any(prefix + name in state_dict for name in ("free", "fixed")):
        # values without the structure record: whatever strict says, they cannot be checked
        # against this module's ties, so they are not loaded
        raise CheckpointError(
            f"the state holds {prefix}free/{prefix}fixed but no {key} (the record of the tie "
            "structure they were saved with), so they cannot be checked against this module's "
            f"group {module.group_name!r}; load a state saved from a TiedParameters "
            "(state_dict() includes the record)", key=key)


def _difference(a: _Program, b: _Program) -> str:
    if a.slot_names != b.slot_names:
        extra = sorted(set(a.slot_names) - set(b.slot_names))[:5]
        lacking = sorted(set(b.slot_names) - set(a.slot_names))[:5]
        return f"slots differ: extra {extra or 'none'}, missing {lacking or 'none'}"
    if a.free_names != b.free_names:
        return f"{len(a.free_names)} free parameters instead of {len(b.free_names)}"
    return "the same slots are tied differently"


def module_parameter_name(module_name: str) -> str:
    """Group name of a module parameter: index parts join their parent (``layers.0`` ->
    ``layers_0``); an index at the top becomes ``layer_0`` (an ``nn.Sequential``)."""
    out: list[str] = []
    for part in module_name.split("."):
        if part.isdigit():
            out.append(f"{out.pop() if out else 'layer'}_{part}")
        else:
            out.append(part)
    return ".".join(out)


def group_from_module(module: nn.Module, name: str = "model") -> ParameterGroup:
    """A :class:`~sciTie.ParameterGroup` holding the parameters of a torch module.

    Each submodule becomes a child group and each parameter keeps the module's dotted name
    (``"encoder.weight"``), so the group can be tied with the core's vocabulary and used with
    :meth:`TiedParameters.functional_call`. Indices of ``nn.Sequential`` / ``nn.ModuleList``
    join their parent's name, since group names are identifiers: ``"layers.0.weight"`` becomes
    ``"layers_0.weight"``, and the ``"0.weight"`` of a top-level ``nn.Sequential`` becomes
    ``"layer_0.weight"``. Values are copied (float64); parameters with
    ``requires_grad=False`` become fixed, and a parameter the module already shares by
    identity appears under each of its names, tied by equality to the first.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    name : str, default "model"
        Name of the returned group (add it to a larger group with ``add_group``).

    Returns
    -------
    ParameterGroup
        One slot per number of the module's parameters.

    Examples
    --------
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    >>> group_from_module(net, "mlp").parameters.keys()
    dict_keys(['layer_0.weight', 'layer_0.bias', 'layer_2.weight', 'layer_2.bias'])
    """
    if not isinstance(module, nn.Module):
        raise ValidationError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    try:
        root = ParameterGroup(name)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"name: {exc}") from None
    first_name: dict[int, str] = {}
    shared: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for full, tensor in module.named_parameters(remove_duplicate=False):
        target = module_parameter_name(full)
        if target in seen:
            raise ValidationError(f"module: parameters {seen[target]!r} and {full!r} would both "
                                  f"be named {target!r} in the group; rename a submodule")
        seen[target] = full
        *path, leaf = target.split(".")
        try:
            for part in (*path, leaf):
                check_name(part, "name")
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"module: parameter {full!r} cannot be named {target!r} in a sciTie group "
                f"({exc}); rename the submodule") from None
        group = root
        for part in path:
            if part in group.groups:
                group = group.groups[part]
            elif part in group.parameters:
                raise ValidationError(f"module: {part!r} is both a parameter and a submodule "
                                      f"name (from {full!r}); rename one")
            else:
                group = group.add_group(ParameterGroup(part))
        value = tensor.detach().to("cpu", torch.float64).numpy()
        try:
            group.add(leaf, value, vary=bool(tensor.requires_grad))
        except ValueError as exc:
            raise ValidationError(f"module: parameter {full!r}: {exc}") from None
        if id(tensor) in first_name:
            shared.append((target, first_name[id(tensor)]))
        else:
            first_name[id(tensor)] = target
    for follower, leader in shared:
        root.tie(follower, to=leader)
    return root
