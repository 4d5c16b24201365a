"""The compiled layout of a group tree: slot order, kinds, evaluation and the tie matrix G.

A :class:`~sciTie.ParameterGroup` is what users build; ``_Compiled`` is what fitters use. It
is rebuilt only when the tree changes (a revision signature keys the cache) and holds no
state beyond the tree it was compiled from.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import ArgumentTypeError, UnknownNameError, ValidationError
from .expressions import Expression
from ._links import (EXPR, FIXED, FREE, LINEAR, _SELECTION, _ExprLink, _LinearLink, _parse_index,
                     _SlotRef)
from .parameter import Parameter

if TYPE_CHECKING:  # pragma: no cover
    from .group import ParameterGroup

__all__ = ["SlotValues"]

class SlotValues(Mapping):
    """Slot values of a whole group tree, addressable by name.

    ``vals["a"]`` gives a float for a scalar parameter, ``vals["mu"]`` an array shaped like the
    parameter, ``vals["mu[1]"]`` a row, ``vals["structure.a"]`` a child's slot. ``vals.array``
    is the flat slot vector in :attr:`ParameterGroup.slot_names` order.
    """

    def __init__(self, array: np.ndarray, compiled: "_Compiled") -> None:
        self.array = array
        self._compiled = compiled

    def __getitem__(self, name: str) -> float | np.ndarray:
        idx = self._compiled.select(name)
        out = self.array[idx]
        return float(out) if np.ndim(idx) == 0 else out

    def __iter__(self) -> Iterator[str]:
        return iter(self._compiled.param_index)

    def __len__(self) -> int:
        return len(self._compiled.param_index)

    def __repr__(self) -> str:
        return f"SlotValues({dict((k, self[k]) for k in self)})"


class _Compiled:
    """The resolved slot layout of a group tree: what is free, fixed, tied, and in what order."""

    def __init__(self, root: "ParameterGroup") -> None:
        self.root = root
        self.groups = list(root._walk())
        self.names: list[str] = []
        self.refs: list[_SlotRef] = []
        self.key_to_slot: dict[tuple[int, str, int], int] = {}
        self.param_index: dict[str, np.ndarray] = {}
        self.params: list[tuple[Parameter, np.ndarray]] = []
        for prefix, group in self.groups:
            for pname, par in group._params.items():
                start = len(self.names)
                idx = np.arange(start, start + par.size).reshape(par.shape)
                self.param_index[prefix + pname] = idx
                self.params.append((par, idx))
                for flat, nd in enumerate(np.ndindex(*par.shape)):
                    suffix = f"[{','.join(map(str, nd))}]" if par.shape else ""
                    self.names.append(prefix + pname + suffix)
                    ref = _SlotRef(group, pname, flat)
                    self.key_to_slot[ref.key] = len(self.refs)
                    self.refs.append(ref)
        self.name_to_slot = {n: i for i, n in enumerate(self.names)}
        n = len(self.names)
        self.kind = np.empty(n, dtype=np.int8)
        self.links: dict[int, Any] = {}
        self.expr_refs: dict[int, np.ndarray] = {}
        for i, ref in enumerate(self.refs):
            group, par = ref.group, ref.group._params[ref.param]
            link = group._links.get((ref.param, ref.flat))
            if link is None and par.expr is not None:
                link = _ExprLink(Expression(par.expr, context=f"parameter {self.names[i]!r}"), group)
            if link is None:
                self.kind[i] = FREE if par._vary.flat[ref.flat] else FIXED
                if not np.isfinite(par._value.flat[ref.flat]):
                    raise ValidationError(f"parameter {self.names[i]!r} has no finite value; give it "
                                     "a value (it may have lost its expr)")
            elif isinstance(link, _LinearLink):
                if any(t.key not in self.key_to_slot for t in link.targets):
                    raise ValidationError(
                        f"slot {self.names[i]!r} is tied to {link.label!r}, which is not part of "
                        f"group {root.name!r}; fit it within a group that contains both")
                self.kind[i] = LINEAR
                self.links[i] = link
            else:
                self.kind[i] = EXPR
                self.links[i] = link
                self.expr_refs[i] = np.array(
                    [self._resolve_expr_name(nm, link.declared_in, self.names[i])
                     for nm in link.expression.names], dtype=np.intp)
        self.order = self._topological_order()
        self.free_idx = np.flatnonzero(self.kind == FREE)
        self.fixed_idx = np.flatnonzero(self.kind == FIXED)
        self.free_column = -np.ones(n, dtype=np.intp)
        self.free_column[self.free_idx] = np.arange(self.free_idx.size)
        lo, hi = np.empty(n), np.empty(n)
        for par, idx in self.params:
            lo[idx] = np.broadcast_to(par.min, par.shape)
            hi[idx] = np.broadcast_to(par.max, par.shape)
        self.slot_lower, self.slot_upper = lo, hi
        self.restraints = [(self.key_to_slot[r.key], t, s, label)
                           for _, g in self.groups for (r, t, s, label) in g._restraints
                           if r.key in self.key_to_slot]
        self._linear_G: sp.csr_matrix | None = None

    # -- name lookup ---------------------------------------------------------------------------
    def _resolve_expr_name(self, name: str, declared_in: "ParameterGroup", owner: str) -> int:
        for space in (declared_in, self.root):
            try:
                refs = space._select(name)
            except (KeyError, ValueError):
                continue  # not a name of this group: try the group being compiled
            if refs.shape != ():
                raise ValidationError(f"expression of slot {owner!r} refers to {name!r}, which is an "
                                 f"array of shape {refs.shape}; index one element, e.g. {name}[0]")
            key = refs.item().key
            if key not in self.key_to_slot:
                # the declaring group knows the name, but that slot is outside this tree:
                # binding to a namesake elsewhere would be silently wrong
                raise ValidationError(
                    f"expression of slot {owner!r} (declared in group {declared_in.name!r}) "
                    f"refers to {name!r}, which is not part of group {self.root.name!r}; fit "
                    "it within a group that contains both")
            return self.key_to_slot[key]
        raise ValidationError(f"expression of slot {owner!r} refers to unknown name {name!r} "
                         f"(known: {', '.join(self.names[:20])}{' ...' if len(self.names) > 20 else ''})")

    def select(self, name: str) -> Any:
        """Flat slot index (int) or index array for a parameter, slot or sub-array name."""
        if name in self.param_index:
            idx = self.param_index[name]
            return int(idx) if idx.ndim == 0 else idx
        if name in self.name_to_slot:
            return self.name_to_slot[name]
        m = _SELECTION.match(name) if isinstance(name, str) else None
        if m is not None and m.group("path") in self.param_index:
            base = self.param_index[m.group("path")]
            try:
                sub = base[_parse_index(m.group("index") or "", base.shape, f"slot {name!r}")]
            except IndexError as exc:
                raise ValidationError(f"slot {name!r}: {exc} (parameter shape {base.shape})") from None
            return int(sub) if np.ndim(sub) == 0 else sub
        try:  # another path to a shared child group ("neutron.structure.a")
            refs = self.root._select(name)
        except (KeyError, ValueError, TypeError):
            raise UnknownNameError(f"unknown parameter or slot {name!r} in group {self.root.name!r}") from None
        idx = np.vectorize(lambda r: self.key_to_slot[r.key], otypes=[np.intp])(refs) \
            if refs.size else np.zeros(refs.shape, dtype=np.intp)
        return int(idx) if idx.ndim == 0 else idx

    # -- structure -----------------------------------------------------------------------------
    def _dependencies(self, i: int) -> Sequence[int]:
        if self.kind[i] == LINEAR:
            return [self.key_to_slot[t.key] for t in self.links[i].targets]
        if self.kind[i] == EXPR:
            return self.expr_refs[i].tolist()
        return []

    def _topological_order(self) -> list[int]:
        state = np.zeros(len(self.names), dtype=np.int8)  # 0 new, 1 on stack, 2 done
        order: list[int] = []
        for start in np.flatnonzero((self.kind == LINEAR) | (self.kind == EXPR)):
            if state[start]:
                continue
            stack: list[tuple[int, Iterator[int]]] = [(start, iter(self._dependencies(start)))]
            state[start] = 1
            while stack:
                node, deps = stack[-1]
                for d in deps:
                    if state[d] == 1:
                        path = [s for s, _ in stack]
                        cycle = path[path.index(d):] + [d]
                        raise ValidationError("tie cycle: " + " -> ".join(self.names[c] for c in cycle))
                    if state[d] == 0 and self.kind[d] in (LINEAR, EXPR):
                        state[d] = 1
                        stack.append((d, iter(self._dependencies(d))))
                        break
                else:
                    stack.pop()
                    state[node] = 2
                    order.append(node)
        return order

    @property
    def n_free(self) -> int:
        return int(self.free_idx.size)

    def current_slots(self) -> np.ndarray:
        """Slot values as stored in the parameters (free and fixed ones)."""
        out = np.empty(len(self.names))
        for par, idx in self.params:
            out[idx] = par._value
        return out

    def pack(self) -> np.ndarray:
        return self.current_slots()[self.free_idx]

    def evaluate(self, free: np.ndarray | None = None, *, gradient: bool = False):
        """Slot vector for ``free`` (and the expression gradients if asked)."""
        slots = self.current_slots()
        if free is not None:
            try:
                if isinstance(free, (str, bytes)) or np.asarray(free).dtype.kind in "USVc":
                    raise TypeError
                free = np.asarray(free, dtype=np.float64)
            except (TypeError, ValueError):
                raise ArgumentTypeError(f"free vector must hold real numbers, got "
                                        f"{free!r}") from None
            if free.shape != (self.n_free,):
                raise ValidationError(f"free vector must have shape ({self.n_free},), got {free.shape}")
            if not np.all(np.isfinite(free)):
                bad = [self.names[self.free_idx[j]] for j in np.flatnonzero(~np.isfinite(free))]
                raise ValidationError(f"free vector holds non-finite values for {', '.join(bad)}")
            slots[self.free_idx] = free
        grads: dict[int, np.ndarray] = {}
        for i in self.order:
            if self.kind[i] == LINEAR:
                link = self.links[i]
                slots[i] = link.offset + sum(scale * slots[self.key_to_slot[t.key]]
                                             for t, scale in zip(link.targets, link.scales))
            else:
                refs = self.expr_refs[i]
                value, grad = self.links[i].expression.evaluate_with_gradient(slots[refs])
                slots[i] = value
                grads[i] = grad
        return (slots, grads) if gradient else slots

    def tie_matrix(self, free: np.ndarray | None = None) -> sp.csr_matrix:
        has_expr = bool(np.any(self.kind == EXPR))
        if not has_expr and self._linear_G is not None:
            return self._linear_G
        grads = self.evaluate(free, gradient=True)[1] if has_expr else {}
        rows: dict[int, dict[int, float]] = {int(i): {int(self.free_column[i]): 1.0}
                                             for i in self.free_idx}
        for i in self.order:
            row: dict[int, float] = {}
            if self.kind[i] == LINEAR:
                link = self.links[i]
                for t, scale in zip(link.targets, link.scales):
                    for c, v in rows.get(self.key_to_slot[t.key], {}).items():
                        row[c] = row.get(c, 0.0) + scale * v
            else:
                for r, g in zip(self.expr_refs[i], grads[i]):
                    if g != 0.0:
                        for c, v in rows.get(int(r), {}).items():
                            row[c] = row.get(c, 0.0) + g * v
            rows[int(i)] = row
        ri, ci, vi = [], [], []
        for r, row in rows.items():
            for c, v in row.items():
                if v != 0.0:
                    ri.append(r)
                    ci.append(c)
                    vi.append(v)
        G = sp.csr_matrix((vi, (ri, ci)), shape=(len(self.names), self.n_free))
        if not has_expr:
            self._linear_G = G
        return G

    def write_back(self, slots: np.ndarray) -> None:
        for par, idx in self.params:
            par._value = np.array(slots[idx], dtype=np.float64).reshape(par.shape)

    def describe_slot(self, i: int) -> str:
        """How slot ``i`` gets its value: 'free', 'fixed', "== 'a'", "== '2*a + b'"."""
        k = self.kind[i]
        if k == FREE:
            return "free"
        if k == FIXED:
            return "fixed"
        if k == LINEAR:
            link = self.links[i]
            terms = []
            for t, scale in zip(link.targets, link.scales):
                target = self.names[self.key_to_slot[t.key]]
                term = target if abs(scale) == 1.0 else f"{abs(scale):g}*{target}"
                terms.append(("- " if scale < 0 else "+ ") + term)
            text = " ".join(terms)
            if link.offset and terms[0].startswith("- "):  # "1 - a - b"
                text = f"{link.offset:g} {text}"
            else:
                text = text[2:] if text.startswith("+ ") else "-" + text[2:]
                if link.offset:
                    text += f" {'+' if link.offset > 0 else '-'} {abs(link.offset):g}"
            return f"== '{text}'"
        return f"== '{self.links[i].expression.text}'"
