"""The tie map of a group tree: the public contract between a ParameterGroup and every fitter.

A :class:`~sciTie.ParameterGroup` is what users build; a :class:`TieMap` is what model authors
and fitters read. It is the compiled, read-only layout of the whole tree::

    slots = G · free + offset          (exact for fixed values and linear ties; for expression
                                        constraints G is the linearisation at a point)

with the slot order, the kind of every slot (free, fixed, linear, expression), the relation
behind each dependent slot, bounds, name lookup, evaluation, the matrix ``G`` and structure
queries (which blocks of slots are equal, which free columns reach which slots). Obtain it with
:meth:`ParameterGroup.tie_map`; it is rebuilt only when the tree changes.

Everything a model needs is here: least squares uses ``J_free = J_slots G``
(:meth:`TieMap.matrix`), EM maximises ``Q(G·free + offset)`` with gradient ``Gᵀ∇Q``
(:func:`sciTie.core.maximize.maximize_through_ties`), uncertainty is ``G Σ Gᵀ``, and a model
decides how to solve a block (closed form, pooled statistics, Newton) from
:meth:`TieMap.equal_blocks` and :meth:`TieMap.columns_reaching`, never from how a tie was
written.
"""
from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import ArgumentTypeError, UnknownNameError, ValidationError
from ._links import (_SELECTION, _ExprLink, _FunctionLink, _LinearLink, _parse_index, _SlotRef,
                     select_refs)
from .expressions import Expression

__all__ = ["SlotKind", "LinearRelation", "ExpressionRelation", "FunctionRelation", "TieMap",
           "SlotValues"]


class SlotKind(enum.IntEnum):
    """How a slot gets its value (the entries of :attr:`TieMap.kind`)."""

    FREE = 0
    """Its own fitted value: one column of G."""
    FIXED = 1
    """Held at its stored value: a zero row of G, the value in the offset."""
    LINEAR = 2
    """``offset + Σ scale · target``, exact in G."""
    EXPRESSION = 3
    """An expression (or vector function) of other slots, linearised into G at a point."""


@dataclass(frozen=True)
class LinearRelation:
    """``slot = offset + Σ scales[i] · slots[targets[i]]`` (targets are slot indices)."""

    targets: tuple[int, ...]
    scales: tuple[float, ...]
    offset: float


@dataclass(frozen=True)
class ExpressionRelation:
    """``slot = expression(slots[references])``: the expression's names, in
    ``expression.names`` order, read the slots ``references``."""

    expression: Expression
    references: tuple[int, ...]

    @property
    def text(self) -> str:
        """The expression as written."""
        return self.expression.text


@dataclass(frozen=True, eq=False)
class FunctionRelation:
    """``slots[outputs] = function(slots[references])``; this slot is ``outputs[index]``.

    A vector function of other slots (made with :meth:`ParameterGroup.constrain_function`),
    e.g. a start distribution that is the stationary distribution of a transition matrix.
    ``jacobian(x)`` has shape ``(len(outputs), len(references))``.
    """

    label: str
    references: tuple[int, ...]
    outputs: tuple[int, ...]
    index: int
    function: Any
    jacobian: Any


class SlotValues(Mapping):
    """Slot values of a whole group tree, addressable by name.

    ``vals["a"]`` gives a float for a scalar parameter, ``vals["mu"]`` an array shaped like the
    parameter, ``vals["mu[1]"]`` a row, ``vals["structure.a"]`` a child's slot. ``vals.array``
    is the flat slot vector in :attr:`TieMap.names` order.
    """

    def __init__(self, array: np.ndarray, tie_map: "TieMap") -> None:
        self.array = array
        self.tie_map = tie_map

    def __getitem__(self, name: str) -> float | np.ndarray:
        idx = self.tie_map.select(name)
        out = self.array[idx]
        return float(out) if np.ndim(idx) == 0 else out

    def __iter__(self) -> Iterator[str]:
        return iter(self.tie_map.parameters)

    def __len__(self) -> int:
        return len(self.tie_map.parameters)

    def __repr__(self) -> str:
        return f"SlotValues({dict((k, self[k]) for k in self)})"


class TieMap:
    """The resolved slot layout of a group tree (read-only; see the module docstring).

    Attributes
    ----------
    names : list of str
        Display name of every slot, in slot-vector order (``a``, ``mu[1,0]``, ``xray.scale``).
    kind : ndarray of int8
        :class:`SlotKind` of every slot.
    free_index : ndarray of int
        Slot index of each free parameter, in free-vector order (the columns of G).
    fixed_index : ndarray of int
        Slot indices of the fixed slots.
    free_column : ndarray of int
        Column of G of each slot that is free, -1 for the others.
    lower, upper : ndarray
        Bounds of every slot (they act on free slots; dependent slots are checked after a fit).
    parameters : dict of str to ndarray
        Slot indices of each parameter, shaped like the parameter (``()`` for a scalar).
    units : dict of str to str
        Unit of each parameter.
    restraints : list of (int, float, float, str)
        ``(slot, target, sigma, label)`` of every restraint in the tree.
    dependency_order : list of int
        Dependent slots in an order in which each comes after every slot it reads.
    """

    def __init__(self, root: Any) -> None:
        self._root = root
        self._groups = list(root._walk())
        self.names: list[str] = []
        self._refs: list[_SlotRef] = []
        self._key_to_slot: dict[tuple[int, str, int], int] = {}
        self.parameters: dict[str, np.ndarray] = {}
        self.units: dict[str, str] = {}
        self._params: list[tuple[Any, np.ndarray]] = []
        for prefix, group in self._groups:
            for pname, par in group._params.items():
                start = len(self.names)
                idx = np.arange(start, start + par.size).reshape(par.shape)
                self.parameters[prefix + pname] = idx
                self.units[prefix + pname] = par.unit
                self._params.append((par, idx))
                for flat, nd in enumerate(np.ndindex(*par.shape)):
                    suffix = f"[{','.join(map(str, nd))}]" if par.shape else ""
                    self.names.append(prefix + pname + suffix)
                    ref = _SlotRef(group, pname, flat)
                    self._key_to_slot[ref.key] = len(self._refs)
                    self._refs.append(ref)
        self._name_to_slot = {n: i for i, n in enumerate(self.names)}
        n = len(self.names)
        self.kind = np.empty(n, dtype=np.int8)
        self._relations: dict[int, LinearRelation | ExpressionRelation | FunctionRelation] = {}
        functions: dict[int, list[tuple[int, int]]] = {}  # id(block) -> (output index, slot)
        blocks: dict[int, Any] = {}
        self._expressions: dict[int, Expression] = {}
        for i, ref in enumerate(self._refs):
            group, par = ref.group, ref.group._params[ref.param]
            link = group._links.get((ref.param, ref.flat))
            if link is None and par.expr is not None:
                link = _ExprLink(Expression(par.expr, context=f"parameter {self.names[i]!r}"), group)
            if link is None:
                self.kind[i] = SlotKind.FREE if par._vary.flat[ref.flat] else SlotKind.FIXED
                if not np.isfinite(par._value.flat[ref.flat]):
                    raise ValidationError(
                        f"parameter {self.names[i]!r} has no finite value; give it "
                        "a value (it may have lost its expr)")
            elif isinstance(link, _LinearLink):
                if any(t.key not in self._key_to_slot for t in link.targets):
                    raise ValidationError(
                        f"slot {self.names[i]!r} is tied to {link.label!r}, which is not part of "
                        f"group {root.name!r}; fit it within a group that contains both")
                self.kind[i] = SlotKind.LINEAR
                self._relations[i] = LinearRelation(
                    tuple(self._key_to_slot[t.key] for t in link.targets), tuple(link.scales),
                    float(link.offset))
            elif isinstance(link, _FunctionLink):
                self.kind[i] = SlotKind.EXPRESSION
                functions.setdefault(id(link.block), []).append((link.index, i))
                blocks[id(link.block)] = link.block
            else:
                self.kind[i] = SlotKind.EXPRESSION
                refs = tuple(self._resolve_expr_name(nm, link.declared_in, self.names[i])
                             for nm in link.expression.names)
                self._relations[i] = ExpressionRelation(link.expression, refs)
                self._expressions[i] = link.expression
        for key, members in functions.items():
            block = blocks[key]
            refs = tuple(int(r) for name in block.references
                         for r in np.ravel(self._resolve_function_refs(name, block)))
            outputs = tuple(slot for _, slot in sorted(members))
            if len(outputs) != block.n_outputs:
                raise ValidationError(
                    f"the slots computed by {block.label!r} are not all part of group "
                    f"{root.name!r}; fit it within a group that contains them all")
            for k, slot in enumerate(outputs):
                self._relations[slot] = FunctionRelation(block.label, refs, outputs, k,
                                                         block.function, block.jacobian)
        self.dependency_order = self._topological_order()
        self.free_index = np.flatnonzero(self.kind == SlotKind.FREE)
        self.fixed_index = np.flatnonzero(self.kind == SlotKind.FIXED)
        self.free_column = -np.ones(n, dtype=np.intp)
        self.free_column[self.free_index] = np.arange(self.free_index.size)
        lo, hi = np.empty(n), np.empty(n)
        for par, idx in self._params:
            lo[idx] = np.broadcast_to(par.min, par.shape)
            hi[idx] = np.broadcast_to(par.max, par.shape)
        self.lower, self.upper = lo, hi
        self.restraints = [(self._key_to_slot[r.key], t, s, label)
                           for _, g in self._groups for (r, t, s, label) in g._restraints
                           if r.key in self._key_to_slot]
        self._linear_G: sp.csr_matrix | None = None

    # -- name lookup ---------------------------------------------------------------------------
    def _resolve_expr_name(self, name: str, declared_in: Any, owner: str) -> int:
        for space in (declared_in, self._root):
            try:
                refs = select_refs(space, name)
            except (KeyError, ValueError):
                continue  # not a name of this group: try the group being compiled
            if refs.shape != ():
                zeros = ",".join("0" * len(refs.shape))
                example = f"{name[:-1]},{zeros}]" if name.endswith("]") else f"{name}[{zeros}]"
                raise ValidationError(
                    f"expression of slot {owner!r} refers to {name!r}, which is an "
                    f"array of shape {refs.shape}; index one element, e.g. {example}")
            key = refs.item().key
            if key not in self._key_to_slot:
                # the declaring group knows the name, but that slot is outside this tree:
                # binding to a namesake elsewhere would be silently wrong
                raise ValidationError(
                    f"expression of slot {owner!r} (declared in group {declared_in.name!r}) "
                    f"refers to {name!r}, which is not part of group {self._root.name!r}; fit "
                    "it within a group that contains both")
            return self._key_to_slot[key]
        raise ValidationError(f"expression of slot {owner!r} refers to unknown name {name!r} "
                         f"(known: {', '.join(self.names[:20])}{' ...' if len(self.names) > 20 else ''})")

    def _resolve_function_refs(self, name: str, block: Any) -> np.ndarray:
        for space in (block.declared_in, self._root):
            try:
                refs = select_refs(space, name)
            except (KeyError, ValueError):
                continue
            keys = [r.key for r in refs.flat]
            if any(k not in self._key_to_slot for k in keys):
                raise ValidationError(f"{block.label!r} reads {name!r}, which is not part of "
                                      f"group {self._root.name!r}")
            return np.array([self._key_to_slot[k] for k in keys], dtype=np.intp)
        raise ValidationError(f"{block.label!r} reads unknown name {name!r}")

    def select(self, name: str) -> Any:
        """Slot index (int) or index array (shaped like the selection) of a name.

        ``name`` is a parameter (``"mu"``), one slot (``"mu[1,0]"``), a sub-array
        (``"mu[1]"``, ``"mu[:, 0]"``) or a path through child groups (``"xray.scale"``).
        """
        if name in self.parameters:
            idx = self.parameters[name]
            return int(idx) if idx.ndim == 0 else idx
        if name in self._name_to_slot:
            return self._name_to_slot[name]
        m = _SELECTION.match(name) if isinstance(name, str) else None
        if m is not None and m.group("path") in self.parameters:
            base = self.parameters[m.group("path")]
            try:
                sub = base[_parse_index(m.group("index") or "", base.shape, f"slot {name!r}")]
            except IndexError as exc:
                raise ValidationError(
                    f"slot {name!r}: {exc} (parameter shape {base.shape})") from None
            return int(sub) if np.ndim(sub) == 0 else sub
        try:  # another path to a shared child group ("neutron.structure.a")
            refs = select_refs(self._root, name)
        except (KeyError, ValueError, TypeError):
            raise UnknownNameError(
                f"unknown parameter or slot {name!r} in group {self._root.name!r}") from None
        idx = np.vectorize(lambda r: self._key_to_slot[r.key], otypes=[np.intp])(refs) \
            if refs.size else np.zeros(refs.shape, dtype=np.intp)
        return int(idx) if idx.ndim == 0 else idx

    def __contains__(self, name: object) -> bool:
        try:
            self.select(name)  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError):
            return False
        return True

    # -- structure -----------------------------------------------------------------------------
    @property
    def n_slots(self) -> int:
        """Length of the slot vector."""
        return len(self.names)

    @property
    def n_free(self) -> int:
        """Number of free parameters: the column count of G (what AIC/BIC count)."""
        return int(self.free_index.size)

    @property
    def free_names(self) -> list[str]:
        """Display names of the free parameters, in free-vector order."""
        return [self.names[i] for i in self.free_index]

    @property
    def is_linear(self) -> bool:
        """True when every relation is linear: G is then the same at every point."""
        return not any(isinstance(r, (ExpressionRelation, FunctionRelation))
                       for r in self._relations.values())

    def relation(self, slot: int) -> LinearRelation | ExpressionRelation | None:
        """What dependent slot ``slot`` follows (None for a free or fixed slot)."""
        return self._relations.get(int(slot))

    def dependencies(self, slot: int) -> tuple[int, ...]:
        """Slots that ``slot`` reads directly (empty for free and fixed slots)."""
        rel = self._relations.get(int(slot))
        if rel is None:
            return ()
        return rel.targets if isinstance(rel, LinearRelation) else rel.references

    def _topological_order(self) -> list[int]:
        state = np.zeros(len(self.names), dtype=np.int8)  # 0 new, 1 on stack, 2 done
        order: list[int] = []
        dependent = (SlotKind.LINEAR, SlotKind.EXPRESSION)
        for start in np.flatnonzero(np.isin(self.kind, dependent)):
            if state[start]:
                continue
            stack: list[tuple[int, Iterator[int]]] = [(start, iter(self.dependencies(start)))]
            state[start] = 1
            while stack:
                node, deps = stack[-1]
                for d in deps:
                    if state[d] == 1:
                        path = [s for s, _ in stack]
                        cycle = path[path.index(d):] + [d]
                        raise ValidationError(
                            "tie cycle: " + " -> ".join(self.names[c] for c in cycle))
                    if state[d] == 0 and self.kind[d] in dependent:
                        state[d] = 1
                        stack.append((d, iter(self.dependencies(d))))
                        break
                else:
                    stack.pop()
                    state[node] = 2
                    order.append(int(node))
        return order

    def columns_reaching(self, slots: Any, free: Any = None) -> np.ndarray:
        """Free columns (sorted) that any of ``slots`` (indices) depends on."""
        idx = np.unique(np.ravel(np.asarray(slots, dtype=np.intp)))
        return np.unique(self.matrix(free)[idx].indices).astype(np.intp)

    def slots_reached(self, columns: Any, free: Any = None) -> np.ndarray:
        """Slots (sorted) that depend on any of the free ``columns``."""
        cols = np.unique(np.ravel(np.asarray(columns, dtype=np.intp)))
        return np.unique(self.matrix(free).tocsc()[:, cols].indices).astype(np.intp)

    def equal_blocks(self, blocks: Sequence[Any], free: Any = None) -> list[list[int]]:
        """Partition equally shaped blocks of slots into classes that are identical.

        Two blocks are in one class when each of their slots is, element by element, the same
        function of the free vector (the same row of G and the same offset; for expression
        constraints, at ``free``). The classes are ordered by their first block, each sorted.

        Parameters
        ----------
        blocks : sequence of array_like of int
            Slot indices of each block (for an HMM, one state's emission slots), all of
            one shape.

        Returns
        -------
        list of list of int
            Block numbers in each class.
        """
        arrays = [np.ravel(np.asarray(b, dtype=np.intp)) for b in blocks]
        if len({a.size for a in arrays}) > 1:
            raise ValidationError("equal_blocks: the blocks must have the same number of slots, "
                                  f"got {[a.size for a in arrays]}")
        G = self.matrix(free).tocsr()
        slots = self.evaluate(free)
        offsets = slots - G @ self.pack() if free is None else slots - G @ np.asarray(free)

        def signature(i: int) -> tuple:
            lo, hi = G.indptr[i], G.indptr[i + 1]
            return (tuple(G.indices[lo:hi].tolist()), tuple(np.round(G.data[lo:hi], 14).tolist()),
                    float(np.round(offsets[i], 12)))

        classes: dict[tuple, list[int]] = {}
        for b, arr in enumerate(arrays):
            classes.setdefault(tuple(signature(int(i)) for i in arr), []).append(b)
        return sorted(classes.values(), key=lambda c: c[0])

    # -- evaluation ----------------------------------------------------------------------------
    def stored_slots(self) -> np.ndarray:
        """Slot values as stored in the parameters (dependent slots as last written)."""
        out = np.empty(len(self.names))
        for par, idx in self._params:
            out[idx] = par._value
        return out

    def pack(self) -> np.ndarray:
        """The current free vector."""
        return self.stored_slots()[self.free_index]

    def _free_vector(self, free: Any) -> np.ndarray:
        try:
            if isinstance(free, (str, bytes)) or np.asarray(free).dtype.kind in "USVc":
                raise TypeError
            free = np.asarray(free, dtype=np.float64)
        except (TypeError, ValueError):
            raise ArgumentTypeError(f"free vector must hold real numbers, got {free!r}") from None
        if free.shape != (self.n_free,):
            raise ValidationError(f"free vector must have shape ({self.n_free},), got {free.shape}")
        if not np.all(np.isfinite(free)):
            bad = [self.names[self.free_index[j]] for j in np.flatnonzero(~np.isfinite(free))]
            raise ValidationError(f"free vector holds non-finite values for {', '.join(bad)}")
        return free

    def evaluate(self, free: Any = None) -> np.ndarray:
        """Slot vector for the free vector ``free`` (default: the current values)."""
        return self._evaluate(free)[0]

    def evaluate_with_gradients(self, free: Any = None
                                ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Slot vector and, for each expression slot, the gradient of its expression with
        respect to the slots it references (in :attr:`ExpressionRelation.references` order)."""
        return self._evaluate(free, gradients=True)

    def _evaluate(self, free: Any, gradients: bool = False):
        slots = self.stored_slots()
        if free is not None:
            slots[self.free_index] = self._free_vector(free)
        grads: dict[int, np.ndarray] = {}
        computed: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray | None]] = {}
        for i in self.dependency_order:
            rel = self._relations[i]
            if isinstance(rel, LinearRelation):
                slots[i] = rel.offset + sum(scale * slots[t]
                                            for t, scale in zip(rel.targets, rel.scales))
            elif isinstance(rel, FunctionRelation):
                if rel.outputs not in computed:  # one evaluation per vector function
                    computed[rel.outputs] = self._call_function(rel, slots, gradients)
                values, jac = computed[rel.outputs]
                slots[i] = values[rel.index]
                if gradients:
                    grads[i] = jac[rel.index]
            elif gradients:
                value, grad = self._expressions[i].evaluate_with_gradient(
                    slots[list(rel.references)])
                slots[i] = value
                grads[i] = grad
            else:
                slots[i] = self._expressions[i].evaluate_with_gradient(
                    slots[list(rel.references)])[0]
        return slots, grads

    @staticmethod
    def _call_function(rel: FunctionRelation, slots: np.ndarray, gradients: bool
                       ) -> tuple[np.ndarray, np.ndarray | None]:
        x = slots[list(rel.references)]
        values = np.asarray(rel.function(x), dtype=np.float64).reshape(-1)
        if values.shape != (len(rel.outputs),) or not np.all(np.isfinite(values)):
            raise ValidationError(f"{rel.label!r} must give {len(rel.outputs)} finite values, "
                                  f"got {values!r}")
        jac = None
        if gradients:
            jac = np.asarray(rel.jacobian(x), dtype=np.float64)
            if jac.shape != (len(rel.outputs), len(rel.references)):
                raise ValidationError(f"the Jacobian of {rel.label!r} must have shape "
                                      f"{(len(rel.outputs), len(rel.references))}, got "
                                      f"{jac.shape}")
        return values, jac

    def matrix(self, free: Any = None) -> sp.csr_matrix:
        """G = d slots / d free, sparse ``(n_slots, n_free)``; do not modify it.

        Exact for fixed values and linear ties; for expressions it is the linearisation at
        ``free`` (default: the current values).
        """
        has_expr = not self.is_linear
        if not has_expr and self._linear_G is not None:
            return self._linear_G
        ri, ci, vi = [], [], []
        for r, row in self._chain_rows(free).items():
            for c, v in row.items():
                if v != 0.0:
                    ri.append(r)
                    ci.append(c)
                    vi.append(v)
        G = sp.csr_matrix((vi, (ri, ci)), shape=(len(self.names), self.n_free))
        if not has_expr:
            self._linear_G = G
        return G

    def dense_matrix(self, free: Any = None) -> np.ndarray:
        """:meth:`matrix` as a dense array (a new one at each call), for small maps whose
        users do dense algebra: it skips the sparse bookkeeping, which costs more than the
        chain rule itself when a nonlinear map is linearised at every Newton step."""
        if self.is_linear:
            return self.matrix().toarray()
        G = np.zeros((len(self.names), self.n_free))
        for r, row in self._chain_rows(free).items():
            for c, v in row.items():
                G[r, c] = v
        return G

    def _chain_rows(self, free: Any) -> dict[int, dict[int, float]]:
        """Each slot's row of G as ``{free column: derivative}``, by the chain rule along the
        dependency order."""
        grads = self._evaluate(free, gradients=True)[1] if not self.is_linear else {}
        rows: dict[int, dict[int, float]] = {int(i): {int(self.free_column[i]): 1.0}
                                             for i in self.free_index}
        for i in self.dependency_order:
            row: dict[int, float] = {}
            rel = self._relations[i]
            if isinstance(rel, LinearRelation):
                pairs = zip(rel.targets, rel.scales)
            else:
                pairs = zip(rel.references, grads[i])
            for r, g in pairs:
                if g != 0.0:
                    for c, v in rows.get(int(r), {}).items():
                        row[c] = row.get(c, 0.0) + g * v
            rows[int(i)] = row
        return rows

    def _write_back(self, slots: np.ndarray) -> None:
        for par, idx in self._params:
            par._value = np.array(slots[idx], dtype=np.float64).reshape(par.shape)

    def describe(self, slot: int) -> str:
        """How ``slot`` gets its value: 'free', 'fixed', "== 'a'", "== '2*a + b'"."""
        k = self.kind[slot]
        if k == SlotKind.FREE:
            return "free"
        if k == SlotKind.FIXED:
            return "fixed"
        rel = self._relations[int(slot)]
        if isinstance(rel, ExpressionRelation):
            return f"== '{rel.text}'"
        if isinstance(rel, FunctionRelation):
            return f"== '{rel.label}[{rel.index}]'"
        terms = []
        for t, scale in zip(rel.targets, rel.scales):
            term = self.names[t] if abs(scale) == 1.0 else f"{abs(scale):g}*{self.names[t]}"
            terms.append(("- " if scale < 0 else "+ ") + term)
        text = " ".join(terms)
        if rel.offset and terms[0].startswith("- "):  # "1 - a - b"
            text = f"{rel.offset:g} {text}"
        else:
            text = text[2:] if text.startswith("+ ") else "-" + text[2:]
            if rel.offset:
                text += f" {'+' if rel.offset > 0 else '-'} {abs(rel.offset):g}"
        return f"== '{text}'"

    def __repr__(self) -> str:
        return f"<TieMap of {self._root.name!r}: {self.n_slots} slots, {self.n_free} free>"
