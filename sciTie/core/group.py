"""ParameterGroup: named parameters, the model slots they feed, and the tie matrix G.

Every number a model reads is a *slot*. A slot is free (its own fitted value), fixed, tied
linearly to another slot (``slot = scale * target + offset``), or constrained by an expression
of other slots. The fitter sees only the free vector; one linear map connects the two::

    slots = G @ free + offset            (G = d slots / d free, exact for linear ties,
                                          the local linearisation for expressions)

and G serves least squares (``J_free = J_slots G``), EM (pooled statistics ``Gᵀ s``) and
uncertainty (``Σ_slots = G Σ_free Gᵀ``). Groups nest: a group can hold child groups, and the
same child object added in several places is one set of slots (that is how two datasets share
a structure).
"""
from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from ._links import (_ExprLink, _FunctionLink, _LinearLink, _SlotRef, _transposed, _VectorFunction,
                     descend, select_refs)
from ..errors import ArgumentTypeError, UnknownNameError, ValidationError
from .expressions import Expression
from .parameter import Parameter, check_name
from .tiemap import SlotValues, TieMap

__all__ = ["ParameterGroup", "SlotValues"]


def _is_number(value: Any) -> bool:
    """A real number that is not a bool (``scale=True`` is a mistake, not 1)."""
    return (isinstance(value, (int, float, np.floating, np.integer))
            and not isinstance(value, (bool, np.bool_)))


def _name_list(slots: Any, what: str) -> list[str]:
    """``slots`` (one name or an iterable of names) as a list of str."""
    if isinstance(slots, str):
        return [slots]
    if not isinstance(slots, Iterable) or isinstance(slots, (bytes, Mapping)):
        raise ArgumentTypeError(f"{what} must be a slot name or a list of slot names (e.g. "
                                f"'mu[1]' or ['b', 'c']), got {slots!r}")
    names = list(slots)
    for n in names:
        if not isinstance(n, str):
            raise ArgumentTypeError(f"{what} must hold slot names (str), got {n!r} "
                                    f"({type(n).__name__})")
    return names


class ParameterGroup(Mapping):
    """A named set of parameters and the model slots they feed.

    Like lmfit's ``Parameters``, a group is a mapping of parameter names (the whole tree's,
    ``a``, ``xray.scale``) to :class:`Parameter` objects: ``group["a"]``, ``list(group)``,
    ``group.items()``; ``group["child"]`` also returns a child group. Edits (:meth:`add`,
    :meth:`tie`, :meth:`constrain`, :meth:`tie_linear`, :meth:`apply_ties`, :meth:`fix`,
    :meth:`free`, :meth:`untie`) are all or nothing: one that fails leaves the group as it was.

    Parameters
    ----------
    name : str
        Group name; a child group's slots are shown as ``name.param``.
    description : str, optional
        Free text.

    Examples
    --------
    >>> g = ParameterGroup("cell")
    >>> _ = g.add("a", 5.43, min=0)
    >>> _ = g.add("b", 5.43, min=0)
    >>> _ = g.add("c", 5.43, min=0)
    >>> g.tie(["b", "c"], to="a")        # cubic: a = b = c
    >>> g.free_names, g.slot_names
    (['a'], ['a', 'b', 'c'])
    >>> g.tie_matrix().toarray()
    array([[1.],
           [1.],
           [1.]])
    >>> list(g)
    ['a', 'b', 'c']
    """

    __hash__ = object.__hash__  # a group is one object, not a value: identity, as Mapping's
                                # value equality would make equal-looking groups the same key

    def __init__(self, name: str, *, description: str = "") -> None:
        self.name = check_name(name, "group name")
        self.description = description
        self._params: dict[str, Parameter] = {}
        self._children: dict[str, ParameterGroup] = {}
        self._links: dict[tuple[str, int], _LinearLink | _ExprLink] = {}
        self._restraints: list[tuple[_SlotRef, float, float, str]] = []
        self._revision = 0
        self._cache: tuple[Any, TieMap] | None = None

    def __eq__(self, other: object) -> bool:
        return self is other

    # -- building ------------------------------------------------------------------------------
    def _touch(self) -> None:
        self._revision += 1

    @contextmanager
    def _edit(self) -> Iterator[None]:
        """Make the edits inside all or nothing: on an error the whole tree is restored."""
        saved = []
        for _, g in self._walk():
            state = {n: (p._value.copy(), p._vary.copy(), p.expr, p._min, p._max)
                     for n, p in g._params.items()}
            saved.append((g, dict(g._params), dict(g._children), dict(g._links),
                          list(g._restraints), state))
        try:
            yield
        except BaseException:
            for g, params, children, links, restraints, state in saved:
                g._params, g._children, g._links, g._restraints = (params, children, links,
                                                                    restraints)
                for n, (value, vary, expr, lo, hi) in state.items():
                    p = params[n]
                    p._value, p._vary, p.expr, p._min, p._max = value, vary, expr, lo, hi
                g._touch()
            self._touch()
            raise

    def add(self, name: str | Parameter, value: Any = None, *, vary: Any = True,
            min: Any = -np.inf, max: Any = np.inf, expr: str | None = None, unit: str = "",
            description: str = "") -> Parameter:
        """Add a parameter (scalar or array) and its slots; returns the :class:`Parameter`.

        A :class:`Parameter` instance may be passed instead of a name.
        """
        par = name if isinstance(name, Parameter) else Parameter(
            name, value, vary=vary, min=min, max=max, expr=expr, unit=unit,
            description=description)
        if par.name in self._params or par.name in self._children:
            raise ValidationError(f"group {self.name!r} already has a member named {par.name!r}")
        owner = getattr(par, "_owner", None)
        if owner is not None and owner is not self:
            raise ValidationError(
                f"parameter {par.name!r} already belongs to group {owner.name!r}; "
                "to share it, tie the slots (tie) or add one child group to both "
                "parents (add_group)")
        par._owner = self
        self._params[par.name] = par
        self._touch()
        if par.expr is not None:
            self._sync_values()
        return par

    def add_group(self, group: "ParameterGroup") -> "ParameterGroup":
        """Add a child group; its slots appear as ``child.param``. Returns the child.

        Adding the same group object to several parents shares its parameters: in any tree
        it occupies one set of slots.
        """
        if not isinstance(group, ParameterGroup):
            raise ArgumentTypeError(f"group must be a ParameterGroup, got {type(group).__name__}")
        if group.name in self._params or group.name in self._children:
            raise ValidationError(f"group {self.name!r} already has a member named {group.name!r}")
        if any(g is self for _, g in group._walk()):
            raise ValidationError(
                f"adding group {group.name!r} to {self.name!r} would make a cycle")
        self._children[group.name] = group
        self._touch()
        return group

    def tie(self, slots: str | Iterable[str], to: str, *, scale: float = 1.0,
            offset: float = 0.0, transpose: bool | Sequence[int] = False) -> None:
        """Make each of ``slots`` read ``scale * to + offset`` instead of its own value.

        Parameters
        ----------
        slots : str or iterable of str
            Parameters (``"b"``), elements (``"mu[1,0]"``), rows (``"mu[1]"``) or child slots
            (``"xray.a"``). Each selection must have the shape of ``to`` (after
            ``transpose``) or ``to`` must be one slot.
        to : str
            The slot(s) they follow; may itself be free, fixed or tied.
        scale, offset : float
            Linear relation; the default is plain equality.
        transpose : bool or sequence of int, default False
            Read ``to`` with its axes permuted, element by element: ``True`` reverses them
            (``to.T``, e.g. a decoder weight tied to the transpose of an encoder weight), a
            sequence is a permutation as in :func:`numpy.transpose`.

        Examples
        --------
        >>> g = ParameterGroup("autoencoder")
        >>> _ = g.add("encoder", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        >>> _ = g.add("decoder", np.zeros((3, 2)))
        >>> g.tie("decoder", to="encoder", transpose=True)
        >>> g.valuesdict()["decoder"]
        array([[1., 4.],
               [2., 5.],
               [3., 6.]])
        >>> g.n_free
        6
        """
        for what, v in (("scale", scale), ("offset", offset)):
            if not _is_number(v) or not np.isfinite(v):
                raise ValidationError(f"tie: {what} must be a finite number, got {v!r}")
        if scale == 0:
            raise ValidationError(f"tie: scale=0 would make the slots a constant ({offset!r}); "
                                  "fix them at that value instead (fix)")
        names = _name_list(slots, "tie: slots")
        if not names:
            raise ValidationError("tie: slots is empty")
        untransposed = self._select_some(to, "tie: to")
        target = _transposed(untransposed, transpose, to)
        planned: list[tuple[_SlotRef, _LinearLink, str]] = []
        for name in names:
            refs = self._select_some(name, "tie: slots")
            if target.shape == ():
                targets = np.full(refs.shape, target.item(), dtype=object)
            elif target.shape == refs.shape:
                targets = target
            else:
                shown = f"{to!r} transposed" if target is not untransposed else repr(to)
                raise ValidationError(f"tie: {name!r} has shape {refs.shape} but {shown} has shape "
                                 f"{target.shape}; they must match or {to!r} must be one slot")
            for ref, tgt in zip(refs.flat, targets.flat):
                if ref.key == tgt.key:
                    raise ValidationError(f"tie cycle: {name!r} cannot be tied to itself")
                label = to if target.shape == () else self._label(tgt)
                planned.append((ref, _LinearLink((tgt,), (float(scale),), float(offset), label),
                                name))
        for ref, _, name in planned:
            self._check_untied(ref, name)
        with self._edit():
            for ref, link, _ in planned:
                ref.group._links[(ref.param, ref.flat)] = link
                ref.group._touch()
            self._touch()
            self._reject_cycles()

    def constrain(self, slot: str, expr: str) -> None:
        """Make ``slot`` the value of ``expr``, a safe arithmetic expression of other slots.

        Names in ``expr`` are slots of this group (``a``, ``mu[0,1]``, ``child.a``); names not
        found here are looked up in the group the fit is run on. Nothing is passed to ``eval``.
        """
        refs = self._select_some(slot, "constrain: slot")
        if refs.shape != ():
            raise ValidationError(
                f"constrain: {slot!r} selects {refs.size} slots; constrain one slot")
        ref = refs.item()
        expression = Expression(expr, context=f"constraint on {slot!r}")
        self._check_untied(ref, slot)
        with self._edit():
            ref.group._links[(ref.param, ref.flat)] = _ExprLink(expression, self)
            ref.group._touch()
            self._touch()
            self._reject_cycles()

    def constrain_function(self, slots: str, function: Any, references: str | Sequence[str], *,
                           jacobian: Any, label: str) -> None:
        """Make the slots ``slots`` selects one vector function of other slots.

        ``slots[outputs] = function(x)`` with ``x`` the slots ``references`` select, flattened
        and concatenated in order. The function is linearised into G with ``jacobian``, as an
        expression constraint is; use it for relations no expression can write (a start
        distribution that is the stationary distribution of a transition matrix).

        Parameters
        ----------
        slots : str
            The computed slots (a parameter, row or element).
        function : callable
            ``function(x) -> ndarray`` of as many values as ``slots`` selects.
        references : str or sequence of str
            The slots it reads.
        jacobian : callable
            ``jacobian(x) -> ndarray`` of shape ``(n_outputs, len(x))``.
        label : str
            How reports show the relation, e.g. ``"stationary(transmat)"``.
        """
        if not callable(function) or not callable(jacobian):
            raise ArgumentTypeError("constrain_function: function and jacobian must be callable")
        if not isinstance(label, str) or not label:
            raise ArgumentTypeError("constrain_function: label must be a non-empty str")
        refs = self._select_some(slots, "constrain_function: slots")
        names = _name_list(references, "constrain_function: references")
        for name in names:
            self._select_some(name, "constrain_function: references")
        for ref in refs.flat:
            self._check_untied(ref, slots)
        block = _VectorFunction(function, jacobian, tuple(names), self, label, int(refs.size))
        with self._edit():
            for k, ref in enumerate(refs.flat):
                ref.group._links[(ref.param, ref.flat)] = _FunctionLink(block, k)
                ref.group._touch()
            self._touch()
            self._reject_cycles()

    def tie_linear(self, slot: str, terms: Mapping[str, float], *, offset: float = 0.0) -> None:
        """Make ``slot = offset + Σ coefficient · term`` (a linear equation, as GSAS-II writes).

        Exact in the tie matrix at any point, and without the length limits of an expression:
        ``tie_linear("p[3]", {"p[0]": -1, "p[1]": -1, "p[2]": -1}, offset=1)`` keeps a row
        of probabilities summing to one.

        Parameters
        ----------
        slot : str
            One slot.
        terms : mapping of str to float
            Slots (each one slot) and their finite coefficients.
        offset : float, optional
            Constant term.
        """
        refs = self._select_some(slot, "tie_linear: slot")
        if refs.shape != ():
            raise ValidationError(f"tie_linear: {slot!r} selects {refs.size} slots; give one slot")
        ref = refs.item()
        if not isinstance(terms, Mapping) or not terms:
            raise ValidationError(
                "tie_linear: terms must be a non-empty mapping {slot: coefficient}")
        targets, scales = [], []
        for name, coef in terms.items():
            t = self._select_some(name, "tie_linear: terms")
            if t.shape != ():
                raise ValidationError(f"tie_linear: term {name!r} selects {t.size} slots; give one")
            if not _is_number(coef) or not np.isfinite(coef):
                raise ValidationError(
                    f"tie_linear: coefficient of {name!r} must be a finite number, "
                    f"got {coef!r}")
            if t.item().key == ref.key:
                raise ValidationError(f"tie cycle: {slot!r} cannot depend on itself")
            targets.append(t.item())
            scales.append(float(coef))
        if not _is_number(offset) or not np.isfinite(offset):
            raise ValidationError(f"tie_linear: offset must be a finite number, got {offset!r}")
        self._check_untied(ref, slot)
        label = " + ".join(f"{c:g}*{n}" for n, c in terms.items())
        with self._edit():
            ref.group._links[(ref.param, ref.flat)] = _LinearLink(tuple(targets), tuple(scales),
                                                                  float(offset), label)
            ref.group._touch()
            self._touch()
            self._reject_cycles()

    def apply_ties(self, statements: str | Iterable[str], *,
                   new_parameters: bool = False) -> list[str]:
        """Apply tie statements ``"lhs = rhs"`` written in the core's syntax.

        ``"means[1] = means[0]"`` ties (rows element by element), ``"lam[1] = 2.5 * lam[0]"``
        ties with a scale, ``"means[0] = 0"`` fixes at a constant, ``"var[1] = phi * mu[1]"``
        constrains (an expression). All statements apply or none (on an error the group is
        left as it was). With
        ``new_parameters=True``, names on the right that the group does not have become new
        free scalar parameters, started at the least-squares values that reproduce the left
        sides' current values. See :mod:`sciTie.core.statements`.

        Returns
        -------
        list of str
            The parameters created.

        Examples
        --------
        >>> g = ParameterGroup("levels")
        >>> _ = g.add("mu", [1.0, 2.1, 2.9])
        >>> g.apply_ties(["mu[2] = 3 * mu[0]", "mu[1] = mu[0] + delta"], new_parameters=True)
        ['delta']
        >>> g.free_names
        ['mu[0]', 'delta']
        """
        from .statements import apply_ties

        with self._edit():
            return apply_ties(self, statements, new_parameters=new_parameters)

    def _reject_cycles(self) -> None:
        """Raise if the links just made close a cycle (the caller's ``_edit`` undoes them).

        Other compile problems (a name that only a parent group can resolve) are left for
        fit time, when the whole tree is known.
        """
        try:
            self.tie_map()
        except ValueError as exc:
            if "tie cycle" in str(exc):
                raise
            return
        self._sync_values()

    def untie(self, slots: str | Iterable[str]) -> None:
        """Remove ties or constraints from ``slots``; they get their own value again."""
        names = _name_list(slots, "untie: slots")
        current = self._try_slot_values()
        tie_map = self.tie_map() if current is not None else None
        with self._edit():
            for name in names:
                refs = self._select(name)
                indices = np.ravel(tie_map.select(name)) if tie_map is not None else ()
                for k, ref in enumerate(refs.flat):
                    par = ref.group._params[ref.param]
                    if current is not None:  # the slot keeps the value it had while tied
                        par._value.flat[ref.flat] = current[indices[k]]
                    ref.group._links.pop((ref.param, ref.flat), None)
                    if par.expr is not None:
                        par.expr = None
                    ref.group._touch()
            self._touch()

    def _try_slot_values(self) -> np.ndarray | None:
        """Current slot values, or None when the tree cannot be evaluated on its own."""
        try:
            return self.tie_map().evaluate()
        except ValueError:
            return None

    def _sync_values(self) -> None:
        """Write tied/constrained slot values into their parameters where possible."""
        slots = self._try_slot_values()
        if slots is not None:
            self.tie_map()._write_back(slots)

    def fix(self, *names: str) -> None:
        """Hold parameters (or elements, ``"mu[0]"``) at their current values."""
        self._set_vary(names, False)

    def free(self, *names: str) -> None:
        """Refine parameters (or elements) again after :meth:`fix`."""
        self._set_vary(names, True)

    def restrain(self, name: str, target: float, sigma: float) -> None:
        """Add a restraint: the pseudo-observation ``(slot - target) / sigma`` joins the fit.

        ``name`` may select several slots; ``target`` and ``sigma`` broadcast over them.
        """
        refs = self._select_some(name, "restrain: name")
        arrays = []
        for what, v in (("target", target), ("sigma", sigma)):
            if isinstance(v, (str, bytes)) or np.asarray(v).dtype.kind not in "iuf":
                raise ArgumentTypeError(f"restrain: {what} for {name!r} must be a number or an "
                                        f"array of numbers, got {v!r}")
            try:
                arrays.append(np.broadcast_to(np.asarray(v, dtype=float), refs.shape))
            except ValueError:
                raise ValidationError(f"restrain: {what} for {name!r} has shape "
                                      f"{np.shape(v)}, which does not fit the {refs.shape} "
                                      "slots selected; give one value or one per slot") from None
        t, s = arrays
        if not np.all(np.isfinite(t)):
            raise ValidationError(f"restrain: target for {name!r} must be finite, got {target!r}")
        if not np.all(np.isfinite(s) & (s > 0)):
            raise ValidationError(
                f"restrain: sigma for {name!r} must be positive and finite, got {sigma!r}")
        for ref, ti, si in zip(refs.flat, t.flat, s.flat):
            self._restraints.append((ref, float(ti), float(si), self._label(ref)))
        self._touch()

    # -- lookup --------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> "Parameter | ParameterGroup":
        group, last = self._descend(name)
        if last in group._params:
            return group._params[last]
        if last in group._children:
            return group._children[last]
        raise UnknownNameError(f"group {self.name!r} has no parameter or group {name!r}")

    def __contains__(self, name: object) -> bool:
        try:
            self[name]  # type: ignore[index]
        except (KeyError, ValueError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        """Every parameter's display name in the tree (``a``, ``xray.scale``), in slot order."""
        return (prefix + n for prefix, g in self._walk() for n in g._params)

    def __len__(self) -> int:
        return sum(len(g._params) for _, g in self._walk())

    def __bool__(self) -> bool:
        return True  # a group is an object even before its first parameter

    @property
    def parameters(self) -> dict[str, Parameter]:
        """Every parameter in the tree by display name (``a``, ``xray.scale``)."""
        return {prefix + n: p for prefix, g in self._walk() for n, p in g._params.items()}

    @property
    def groups(self) -> dict[str, "ParameterGroup"]:
        """Direct child groups by name."""
        return dict(self._children)

    def _walk(self) -> Iterator[tuple[str, "ParameterGroup"]]:
        seen: set[int] = set()
        stack: list[tuple[str, ParameterGroup]] = [("", self)]
        while stack:
            prefix, g = stack.pop()
            if id(g) in seen:
                continue
            seen.add(id(g))
            yield prefix, g
            stack.extend((prefix + n + ".", c) for n, c in reversed(list(g._children.items())))

    def _descend(self, path: str) -> tuple["ParameterGroup", str]:
        return descend(self, path)

    def _select(self, name: str) -> np.ndarray:
        """Object array of :class:`_SlotRef` for a name, shaped like the selection."""
        return select_refs(self, name)

    def selection_shape(self, name: str) -> tuple[int, ...]:
        """Shape of the slots ``name`` selects (``()`` for one slot); checks the name.

        Works before the tree can be compiled (for example while an expression still names
        a slot of a parent group).
        """
        return tuple(self._select(name).shape)

    def _select_some(self, name: Any, what: str) -> np.ndarray:
        """:meth:`_select`, refusing a selection with no slots (``"mu[0:0]"``)."""
        refs = self._select(name)
        if refs.size == 0:
            raise ValidationError(f"{what}: {name!r} selects no slots (shape {refs.shape}); "
                                  "name at least one element")
        return refs

    def _label(self, ref: _SlotRef) -> str:
        for prefix, g in self._walk():
            if g is ref.group:
                par = g._params[ref.param]
                nd = np.unravel_index(ref.flat, par.shape) if par.shape else ()
                return prefix + ref.param + (f"[{','.join(map(str, nd))}]" if par.shape else "")
        return f"{ref.group.name}.{ref.param}"

    def _check_untied(self, ref: _SlotRef, name: str) -> None:
        existing = ref.group._links.get((ref.param, ref.flat))
        if existing is not None:
            what = (existing.label if isinstance(existing, _LinearLink)
                    else existing.block.label if isinstance(existing, _FunctionLink)
                    else existing.expression.text)
            raise ValidationError(f"slot {self._label(ref)!r} (from {name!r}) is already tied to "
                             f"{what!r}; call untie({name!r}) first")
        if ref.group._params[ref.param].expr is not None:
            raise ValidationError(f"slot {self._label(ref)!r} already has expr "
                             f"{ref.group._params[ref.param].expr!r}")

    def _set_vary(self, names: Sequence[str], flag: bool) -> None:
        if not names:
            raise ValidationError("give at least one parameter name")
        with self._edit():
            for name in names:
                refs = self._select_some(name, "fix/free")
                for ref in refs.flat:
                    par = ref.group._params[ref.param]
                    if (ref.param, ref.flat) in ref.group._links or par.expr is not None:
                        raise ValidationError(f"slot {self._label(ref)!r} (from {name!r}) is "
                                              "tied or constrained; untie it before fixing or "
                                              "freeing it")
                    par._vary.flat[ref.flat] = flag
                    ref.group._touch()
            self._touch()

    def fix_at(self, name: str, value: Any) -> None:
        """Hold the slots ``name`` selects at ``value`` (one number or one per slot)."""
        refs = self._select_some(name, "fix_at: name")
        try:
            if isinstance(value, (str, bytes)) or np.asarray(value).dtype.kind not in "iuf":
                raise TypeError
            target = np.broadcast_to(np.asarray(value, dtype=float), refs.shape)
        except (TypeError, ValueError):
            raise ValidationError(f"fix_at: value for {name!r} must be one number or "
                                  f"{refs.size} numbers (shape {refs.shape}), got "
                                  f"{value!r}") from None
        if not np.all(np.isfinite(target)):
            raise ValidationError(f"fix_at: value for {name!r} must be finite, got {value!r}")
        with self._edit():
            for ref, v in zip(refs.flat, target.flat):
                self._check_untied(ref, name)
                par = ref.group._params[ref.param]
                lo = np.broadcast_to(par.min, par.shape).flat[ref.flat]
                hi = np.broadcast_to(par.max, par.shape).flat[ref.flat]
                if not lo <= v <= hi:
                    raise ValidationError(f"fix_at: {self._label(ref)} = {v:g} is outside its "
                                          f"bounds [{lo:g}, {hi:g}]")
                par._value.flat[ref.flat] = v
                par._vary.flat[ref.flat] = False
                ref.group._touch()
            self._touch()
            self._sync_values()

    # -- compiled view -------------------------------------------------------------------------
    def _signature(self) -> tuple:
        return tuple((id(g), g._revision,
                      tuple((p._vary.tobytes(), p.expr, np.asarray(p.min).tobytes(),
                             np.asarray(p.max).tobytes()) for p in g._params.values()))
                     for _, g in self._walk())

    def tie_map(self) -> TieMap:
        """The compiled :class:`~sciTie.core.tiemap.TieMap` of the whole tree (read-only).

        What fitters and model authors build on: slot order and kinds, relations, bounds,
        evaluation, G, structure queries. Rebuilt only when the tree changes.
        """
        sig = self._signature()
        if self._cache is None or self._cache[0] != sig:
            self._cache = (sig, TieMap(self))
        return self._cache[1]

    def __deepcopy__(self, memo: dict) -> "ParameterGroup":
        new = ParameterGroup.__new__(ParameterGroup)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            setattr(new, k, None if k == "_cache" else copy.deepcopy(v, memo))
        return new

    def __getstate__(self) -> dict[str, Any]:
        # a pickle (a Dask worker's copy) carries the tree, not its compiled tie map: the
        # copy compiles its own on first use
        return {k: (None if k == "_cache" else v) for k, v in self.__dict__.items()}

    def copy(self) -> "ParameterGroup":
        """Deep copy (shared children stay shared within the copy)."""
        return copy.deepcopy(self)

    @property
    def slot_names(self) -> list[str]:
        """Display names of every slot, in slot-vector order."""
        return list(self.tie_map().names)

    @property
    def n_slots(self) -> int:
        return self.tie_map().n_slots

    @property
    def free_names(self) -> list[str]:
        """Display names of the free parameters, in free-vector order."""
        return self.tie_map().free_names

    @property
    def n_free(self) -> int:
        """Number of free parameters: the column count of G (what AIC/BIC count)."""
        return self.tie_map().n_free

    def slot_index(self, name: str) -> int | np.ndarray:
        """Index (or index array shaped like the selection) of ``name`` in the slot vector."""
        return self.tie_map().select(name)

    def pack(self) -> np.ndarray:
        """The current free vector."""
        return self.tie_map().pack()

    def unpack(self, free: Any) -> np.ndarray:
        """Slot vector for the free vector ``free`` (parameters are not modified)."""
        return self.tie_map().evaluate(free)

    def valuesdict(self, free: Any = None) -> SlotValues:
        """Named slot values for ``free`` (default: the current values), as lmfit's
        ``Parameters.valuesdict``: ``vals["a"]``, ``vals["mu[1]"]``, ``vals.array``."""
        c = self.tie_map()
        return SlotValues(c.evaluate(free), c)

    def set_free(self, free: Any) -> None:
        """Write the free vector (and the tied slots it implies) into the parameters."""
        c = self.tie_map()
        c._write_back(c.evaluate(free))

    def set_slots(self, slots: Any) -> None:
        """Store a whole slot vector in the parameters, as given.

        Free and fixed slots take these values; dependent slots are stored too but are
        recomputed from their ties whenever the group is evaluated (use :meth:`set_free` to
        keep everything consistent).
        """
        c = self.tie_map()
        arr = np.asarray(slots, dtype=np.float64)
        if arr.shape != (c.n_slots,):
            raise ValidationError(f"slots must have shape ({c.n_slots},), got {arr.shape}")
        c._write_back(arr)

    def update(self) -> None:
        """Recompute tied and constrained slots from the current free values."""
        self.set_free(self.pack())

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the free vector."""
        c = self.tie_map()
        return c.lower[c.free_index].copy(), c.upper[c.free_index].copy()

    def tie_matrix(self, free: Any = None) -> sp.csr_matrix:
        """G = d slots / d free as a sparse ``(n_slots, n_free)`` matrix.

        Exact for equalities and linear ties; for expressions it is the linearisation at
        ``free`` (default: the current values).
        """
        return self.tie_map().matrix(free).copy()

    def reduce_jacobian(self, J_slots: Any, free: Any = None) -> np.ndarray | sp.spmatrix:
        """Chain rule: ``J_free = J_slots @ G``; a shared parameter's column is the sum of its slots'."""
        G = self.tie_matrix(free)
        if sp.issparse(J_slots):
            if J_slots.shape[-1] != G.shape[0]:
                raise ValidationError(
                    f"J_slots has {J_slots.shape[-1]} columns; expected n_slots={G.shape[0]}")
            return (J_slots @ G).tocsr()
        J = np.asarray(J_slots, dtype=np.float64)
        if J.ndim != 2 or J.shape[1] != G.shape[0]:
            raise ValidationError(
                f"J_slots must have shape (n_residuals, {G.shape[0]}), got {J.shape}")
        return np.asarray((G.T @ J.T).T)

    def pool(self, stats_slots: Any) -> np.ndarray:
        """Pooled statistics ``Gᵀ @ stats``: each free parameter sums the statistics of its slots.

        ``stats_slots`` has the slot axis first, shape ``(n_slots, ...)``.
        """
        s = np.asarray(stats_slots, dtype=np.float64)
        G = self.tie_matrix()
        if s.ndim == 0 or s.shape[0] != G.shape[0]:
            raise ValidationError(
                f"stats_slots must have n_slots={G.shape[0]} rows, got shape {s.shape}")
        flat = s.reshape(s.shape[0], -1)
        return np.asarray(G.T @ flat).reshape((G.shape[1],) + s.shape[1:])

    def propagate_covariance(self, cov_free: Any, free: Any = None) -> np.ndarray:
        """Covariance of every slot, ``G Σ Gᵀ`` (tied slots get correlated uncertainties)."""
        cov = np.asarray(cov_free, dtype=np.float64)
        n = self.n_free
        if cov.shape != (n, n):
            raise ValidationError(f"cov_free must have shape ({n}, {n}), got {cov.shape}")
        if not np.all(np.isfinite(cov)):
            raise ValidationError("cov_free must be finite; it holds NaN or infinite entries")
        G = self.tie_matrix(free)
        return np.asarray(G @ (G @ cov).T)

    def describe(self) -> str:
        """A table of every slot: value and how it is determined (free/fixed/tied)."""
        c = self.tie_map()
        slots = c.evaluate()
        width = max((len(n) for n in c.names), default=4)
        lines = [f"ParameterGroup {self.name!r}: {len(c.names)} slots, {c.n_free} free"]
        for i, n in enumerate(c.names):
            lines.append(f"    {n:<{width}} = {slots[i]: .8g}  {c.describe(i)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        try:
            c = self.tie_map()
            return f"<ParameterGroup {self.name!r}: {len(c.names)} slots, {c.n_free} free>"
        except ValueError:
            return f"<ParameterGroup {self.name!r} (inconsistent ties)>"
