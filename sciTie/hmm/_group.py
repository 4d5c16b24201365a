"""The ParameterGroup of a tied HMM: its slots are the model's own arrays.

One group per fitted model (``group_``) holds every number the model reads: ``startprob``,
``transmat`` and the emission parameters under their own names (``means``, ``covars``,
``lambdas``, ``emissionprob``, ``weights``), shaped like hmmlearn's arrays. The user's ties
(``ties=`` statements or a ParameterGroup, and the ``tied_states``/``tied_transitions``
shorthands, which are written as statements) go in first; then the structure every HMM has:
parameters outside ``params`` and structural zeros fixed, symmetric covariance matrices tied
to their upper triangle, and each probability row normalised by a linear equation
``last = 1 - sum(others)``. The M-step, the parameter count, the uncertainties and the report
all read this one group.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..core import ParameterGroup
from ..core import LinearRelation, SlotKind
from ..errors import ValidationError
from ._tying import validate_partition, validate_transition_groups

__all__ = ["HMMGroupPlan", "build_group", "model_slots", "write_arrays", "finalise_probabilities",
           "PROBABILITY_PARAMS"]

TRANSITION_PARAMS = ("startprob", "transmat", "beta")
#: Parameters whose rows are probability vectors (each row normalised in the group).
PROBABILITY_PARAMS = ("startprob", "transmat", "emissionprob", "weights", "dwell_pmf")


@dataclass
class HMMGroupPlan:
    """How each block of the M-step is solved, decided once from the group's ties.

    ``"closed"``: no user tie touches the block, hmmlearn's closed form is the exact argmax;
    ``"pooled"``: every emission parameter of each tied state equals its representative's
    (statistics pooled through G, then the closed form: exact only for such full equality
    ties); ``"general"``: Newton steps on Q through the tie map.
    """

    transitions: str
    emissions: str
    partition: list[list[int]]
    block_columns: dict[str, np.ndarray] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)
    new_parameters: list[str] = field(default_factory=list)


def _statements_from_shorthands(model) -> list[str]:
    K = model.n_components
    out: list[str] = []
    groups = validate_partition(model.tied_states, K)
    names = [n for n, _, _ in model._emission_params()]
    for g in groups:
        for s in g[1:]:
            for name in names:
                if name == "covars" and not model._is_mixture() and model.covariance_type == "tied":
                    continue  # one matrix for every state already
                out.append(f"{name}[{s}] = {name}[{g[0]}]")
    for g in validate_transition_groups(model.tied_transitions, K):
        out += [f"transmat[{s},{s}] = transmat[{g[0]},{g[0]}]" for s in g[1:]]
    return out


def _user_statements(ties: Any) -> list[str]:
    if ties is None or isinstance(ties, ParameterGroup):
        return []
    if isinstance(ties, str):
        return [ties]
    if isinstance(ties, (dict, bytes)) or hasattr(ties, "keys"):
        raise ValidationError(f"ties must be a tie statement, a sequence of statements (e.g. "
                              f"['means[1] = means[0]']) or a ParameterGroup; got "
                              f"{type(ties).__name__} (write each tie as 'lhs = rhs')")
    try:
        items = list(ties)
    except TypeError:
        raise ValidationError(f"ties must be a tie statement, a sequence of statements (e.g. "
                              f"['means[1] = means[0]']) or a ParameterGroup; got "
                              f"{type(ties).__name__}") from None
    for item in items:
        if not isinstance(item, str):
            raise ValidationError(f"ties must hold statements (str) like 'means[1] = means[0]'; "
                                  f"got {item!r} ({type(item).__name__})")
    return items


def _bounds(model, name: str, shape: tuple[int, ...]) -> tuple[Any, Any]:
    if name in PROBABILITY_PARAMS:
        return 0.0, 1.0
    if name in {n for n, _, _ in model._duration_params()}:
        return model._duration_bounds(name)
    if name == "lambdas":
        return 0.0, np.inf
    if name == "covars":
        lo = np.full(shape, -np.inf)
        ctype = model.covariance_type
        if ctype in ("spherical", "diag"):
            lo[...] = 0.0
        else:  # the diagonals of (..., D, D) matrices
            D = shape[-1]
            lo[..., np.arange(D), np.arange(D)] = 0.0
        return lo, np.inf
    return -np.inf, np.inf


def _arrays(model) -> list[tuple[str, str, np.ndarray]]:
    """(name, params letter, current float array) of every parameter of the model."""
    out = [("startprob", "s", np.asarray(model.startprob_, dtype=float)),
           ("transmat", "t", np.asarray(model.transmat_, dtype=float))]
    for name, letter, _ in model._emission_params():
        out.append((name, letter, np.asarray(model._get_param(name), dtype=float)))
    if getattr(model, "n_covariates_", 0):  # covariate-dependent transitions (_covariates)
        out.append(("beta", "t", np.asarray(model.beta_, dtype=float)))
    for name, letter, attr in model._duration_params():  # semi-Markov dwell times (_hsmm)
        out.append((name, letter, np.asarray(getattr(model, attr), dtype=float)))
    return out


def _kind(group: ParameterGroup) -> dict[str, int]:
    c = group.tie_map()
    return dict(zip(c.names, c.kind.tolist()))


def _slots(group: ParameterGroup, name: str) -> list[str]:
    c = group.tie_map()
    return [c.names[i] for i in np.ravel(np.asarray(c.select(name)))]


def _fix_free(group: ParameterGroup, slot_names: Sequence[str]) -> None:
    kinds = _kind(group)
    free = [n for n in slot_names if kinds[n] == SlotKind.FREE]
    if free:
        group.fix(*free)


def _probability_rows(group: ParameterGroup, name: str, shape: tuple[int, ...]) -> list[list[str]]:
    c = group.tie_map()
    idx = np.asarray(c.select(name))
    rows = idx.reshape(-1, shape[-1])
    return [[c.names[i] for i in row] for row in rows]


def normalise_row(group: ParameterGroup, row: Sequence[str]) -> None:
    """Make the largest free entry of a probability row ``1 - sum(other entries)``.

    The largest: ``1 - sum`` of the others loses nothing of it, while a tiny entry computed
    that way would round to 0 (a transition of 1e-23 must stay 1e-23).
    """
    kinds = _kind(group)
    values = group.valuesdict()
    free = [n for n in row if kinds[n] == SlotKind.FREE]
    if not free or _sums_to_one(group, row):
        return
    candidates = _without_dependants(group, row, free, kinds)
    if not candidates:
        base = row[0].split("[")[0]
        raise ValidationError(
            f"with these ties the probability row {', '.join(row)} cannot be normalised: each "
            f"of its free entries ({', '.join(free)}) has another entry of the row tied to it, "
            f"so no entry is left to make the row sum to 1; leave one entry of each {base} row "
            "untied (or fix the row)")
    last = max(candidates, key=lambda n: (values[n], free.index(n)))
    terms = {n: -1.0 for n in row if n != last and not (kinds[n] == SlotKind.FIXED and values[n] == 0.0)}
    if terms:
        group.tie_linear(last, terms, offset=1.0)
    else:  # the only entry that is not a structural zero: it is 1
        group.fix(last)


def _sums_to_one(group: ParameterGroup, row: Sequence[str]) -> bool:
    """Whether the row already sums to one whatever the free values (its ties say so: the
    rows of G add up to zero and the offsets to one), as in a fitted model's group."""
    tm = group.tie_map()
    idx = [int(tm.select(n)) for n in row]
    G = tm.matrix()[idx]
    offsets = tm.evaluate()[idx] - G @ tm.pack()
    return bool(np.allclose(np.asarray(G.sum(axis=0)).ravel(), 0.0, atol=1e-12)
                and abs(offsets.sum() - 1.0) < 1e-12)


def _without_dependants(group: ParameterGroup, row: Sequence[str], free: list[str],
                        kinds: dict[str, int]) -> list[str]:
    """Free entries of ``row`` that no other entry of the row follows through a tie.

    Making such an entry ``1 - sum(others)`` would close a tie cycle.
    """
    if not any(kinds[n] in (SlotKind.LINEAR, SlotKind.EXPRESSION) for n in row):
        return free
    c = group.tie_map()
    G = c.matrix().tocsc()
    in_row = {c.select(n) for n in row}
    out = []
    for n in free:
        i = c.select(n)
        col = int(c.free_column[i])
        followers = set(G.indices[G.indptr[col]:G.indptr[col + 1]].tolist()) & in_row
        if not followers - {i}:
            out.append(n)
    return out


def _symmetric_ties(group: ParameterGroup, name: str, shape: tuple[int, ...]) -> None:
    kinds = _kind(group)
    D = shape[-1]
    for prefix in np.ndindex(*shape[:-2]):
        pre = "".join(f"{i}," for i in prefix)
        for a in range(D):
            for b in range(a):
                lower, upper = f"{name}[{pre}{a},{b}]", f"{name}[{pre}{b},{a}]"
                if kinds[lower] in (SlotKind.FREE, SlotKind.FIXED):
                    group.tie(lower, to=upper)


def user_held(model) -> set[str]:
    """Model parameters whose start a ParameterGroup given as ``ties`` supplies."""
    ties = getattr(model, "ties", None)
    if not isinstance(ties, ParameterGroup):
        return set()
    return {name for name, _, _ in _arrays(model) if name in ties.parameters}


def build_group(model) -> tuple[ParameterGroup, HMMGroupPlan]:
    """The model's group from its current arrays, settings and ties (see module docstring)."""
    ties = getattr(model, "ties", None)
    arrays = _arrays(model)
    model_names = [name for name, _, _ in arrays]
    if isinstance(ties, ParameterGroup):
        group = _from_user_group(model, ties, arrays)
    else:
        group = ParameterGroup("hmm", description=type(model).__name__)
        for name, _, arr in arrays:
            lo, hi = _bounds(model, name, arr.shape)
            group.add(name, arr, min=lo, max=hi)
    statements = _statements_from_shorthands(model) + _user_statements(ties)
    created = group.apply_ties(statements, new_parameters=True) if statements else []
    _check_given_values(model, group, arrays, created, user_held(model))
    created += [n for n in group.parameters if n not in model_names and n not in created]
    _check_extras_used(model, group, model_names, created)
    constrained = _user_constrained(group, model_names)
    held = user_held(model)
    stationary = getattr(model, "start_distribution", "free") == "stationary"
    if stationary:
        _make_start_stationary(group, constrained)
    logit = "beta" in group.parameters and "beta" in model_names
    if logit:
        _make_transitions_logit(group)
    letters = model.params
    for name, letter, arr in arrays:
        slots = _slots(group, name)
        if name == "startprob" and stationary:
            continue
        if letter not in letters:
            _fix_free(group, slots)
        elif name in PROBABILITY_PARAMS and name not in held:
            # zeros in arrays the user gave are structural (a given group says by its own
            # fixed values which are: a fitted group's zeros are only where EM ended)
            values = group.valuesdict()
            _fix_free(group, [s for s in slots if values[s] == 0.0])
        if name == "covars" and (model.covariance_type in ("full", "tied")):
            _symmetric_ties(group, name, arr.shape)
    # whole states equal? judged before the rows get their normalising ties (structure that
    # the closed-form update provides itself)
    partition = _equality_partition(model, group) if model._supports_pooling() else None
    for name, letter, arr in arrays:
        if name in PROBABILITY_PARAMS and letter in letters and not (name == "startprob"
                                                                 and stationary):
            for row in _probability_rows(group, name, arr.shape):
                normalise_row(group, row)
    group.update()  # tied slots take the values their ties give
    _check_tied_bounds(group)
    write_arrays(model, group.valuesdict().array, group)
    _check_probabilities(model, group)
    plan = _plan(model, group, constrained, created, statements, partition, stationary or logit)
    return group, plan


def _from_user_group(model, ties: ParameterGroup, arrays) -> ParameterGroup:
    """A copy of the user's group with every model parameter: the group's own values are the
    start of the parameters it holds (its fixed values stay fixed, its bounds are kept within
    the model's domain); the others come from the model's arrays."""
    if ties.tie_map().restraints:
        raise ValidationError(
            "ties: the group holds restraints (pseudo-observations of least squares), which "
            "EM cannot honour; write them as ties or fixed values, or remove them")
    group = ties.copy()
    for name, _, arr in arrays:
        lo, hi = _bounds(model, name, arr.shape)
        if name not in group.parameters:
            group.add(name, arr, min=lo, max=hi)
            continue
        par = group[name]
        if par.shape != arr.shape:
            raise ValidationError(
                f"ties: the group's parameter {name!r} has shape {par.shape} but "
                f"{type(model).__name__}({model.n_components} states) has {arr.shape}; give a "
                "group built for a model of the same family and shape")
        par.min = np.maximum(np.broadcast_to(par.min, arr.shape), lo)
        par.max = np.minimum(np.broadcast_to(par.max, arr.shape), hi)
    return group


def _make_transitions_logit(group: ParameterGroup) -> None:
    """``transmat = softmax(beta[:, :, 0])`` (the transitions at zero covariates), each row's
    self-transition coefficients ``beta[i, i, :]`` the fixed reference (see ``_covariates``)."""
    from ._covariates import intercept_softmax, intercept_softmax_jacobian

    K, _, P = group["beta"].shape
    kinds = _kind(group)
    values = group.valuesdict()
    for i in range(K):
        for p in range(P):
            name = f"beta[{i},{i},{p}]"
            if kinds[name] != SlotKind.FIXED and kinds[name] != SlotKind.FREE:
                raise ValidationError(f"ties: {name} is the reference of transition row {i} "
                                      "(fixed at 0, the self-transition); tie other "
                                      "coefficients")
            if values[name] != 0.0:
                raise ValidationError(f"{name} must be 0: the self-transition is each row's "
                                      "reference in the covariate logit")
            if kinds[name] == SlotKind.FREE:
                group.fix(name)
    group.constrain_function("transmat", intercept_softmax, "beta",
                             jacobian=intercept_softmax_jacobian, label="softmax(beta[:,:,0])")


def _check_extras_used(model, group: ParameterGroup, model_names, extras: list[str]) -> None:
    """A parameter of the user's group that no tie reads would be fitted to nothing."""
    if not extras:
        return
    tm = group.tie_map()
    stack = [int(i) for n in model_names for i in np.ravel(tm.select(n))]
    seen: set[int] = set()
    while stack:
        for d in tm.dependencies(stack.pop()):
            if d not in seen:
                seen.add(d)
                stack.append(d)
    unused = [n for n in extras if not set(np.ravel(tm.select(n)).tolist()) & seen]
    if unused:
        raise ValidationError(
            f"ties: {', '.join(repr(n) for n in unused)} is not a parameter of "
            f"{type(model).__name__} (its parameters: {', '.join(model_names)}) and no tie "
            "uses it; rename it or remove it from the group")


def _user_constrained(group: ParameterGroup, model_names) -> set[str]:
    """Model slots the user's ties and fixed values determine (a structural zero of a
    probability excepted: every closed-form update keeps it zero)."""
    tm = group.tie_map()
    values = tm.evaluate()
    out = set()
    for name in model_names:
        for i in np.ravel(tm.select(name)):
            kind = tm.kind[i]
            if kind in (SlotKind.LINEAR, SlotKind.EXPRESSION) or (
                    kind == SlotKind.FIXED and not (name in PROBABILITY_PARAMS and values[i] == 0.0)):
                out.add(tm.names[i])
    return out


def _make_start_stationary(group: ParameterGroup, constrained: set[str]) -> None:
    from ._stationary import stationary_distribution, stationary_jacobian

    own = sorted(n for n in constrained if n.startswith("startprob"))
    if own:
        raise ValidationError(
            f"start_distribution='stationary' makes startprob a function of transmat, but the "
            f"ties also set {', '.join(own)}; remove those ties or use "
            "start_distribution='free'")
    group.constrain_function("startprob", stationary_distribution, "transmat",
                             jacobian=stationary_jacobian, label="stationary(transmat)")


def _check_given_values(model, group: ParameterGroup, arrays, created: list[str],
                        held: set[str]) -> None:
    """Values the user set (letters outside ``init_params``) must already satisfy the ties.

    Values that fit initialised are projected onto the ties silently; values a user gave
    and a tie contradicts are an error, not a silent replacement.
    """
    init = model.init_params
    c = group.tie_map()
    implied = c.evaluate()
    depends_on_new = set()
    for n in created:
        col = int(c.free_column[c.select(n)]) if n in group.parameters else -1
        if col >= 0:
            G = c.matrix()
            depends_on_new |= set(np.flatnonzero(G[:, col].toarray().ravel()).tolist())
    for name, letter, arr in arrays:
        if letter in init or name in held:
            continue
        idx = np.ravel(np.asarray(c.select(name)))
        given = arr.ravel()
        for i, v in zip(idx, given):
            if int(i) in depends_on_new or c.kind[i] not in (SlotKind.LINEAR, SlotKind.EXPRESSION):
                continue
            if not np.isclose(implied[i], v, rtol=1e-10, atol=1e-12):
                attr = {"startprob": "startprob_", "transmat": "transmat_"}.get(
                    name, dict((n, a) for n, _, a in model._emission_params()).get(name, name))
                raise ValidationError(
                    f"{attr} was given with {c.names[i]} = {v:g}, but the ties make it "
                    f"{implied[i]:g} ({c.describe(i)}); give values that satisfy the ties "
                    f"or let fit initialise them (init_params containing {letter!r})")


def _check_tied_bounds(group: ParameterGroup) -> None:
    """A tie must keep what it sets in its domain (a variance tied to minus another ...)."""
    c = group.tie_map()
    slots = c.evaluate()
    for i in range(len(c.names)):
        if c.kind[i] not in (SlotKind.LINEAR, SlotKind.EXPRESSION) or c.names[i].split("[")[0] in PROBABILITY_PARAMS:
            continue  # probability rows are checked as rows below
        if not c.lower[i] <= slots[i] <= c.upper[i]:
            raise ValidationError(
                f"with these ties {c.names[i]} = {slots[i]:g} ({c.describe(i)}) is "
                f"outside its domain [{c.lower[i]:g}, {c.upper[i]:g}]; a tie must keep "
                "every parameter valid (variances and rates positive)")


def _check_probabilities(model, group: ParameterGroup) -> None:
    vals = group.valuesdict()
    for name, _, arr in _arrays(model):
        if name not in PROBABILITY_PARAMS:
            continue
        rows = np.atleast_2d(np.asarray(vals[name]).reshape(-1, arr.shape[-1]))
        bad = np.flatnonzero(~np.isclose(rows.sum(axis=1), 1.0, atol=1e-8) | (rows < -1e-12).any(1))
        if bad.size:
            r = int(bad[0])
            where = name if name == "startprob" else f"{name}[{r}]"
            raise ValidationError(
                f"with these ties {where} = {np.array2string(rows[r], precision=4)} is not a "
                "probability vector (it must be non-negative and sum to 1); tie probability "
                "entries so that each row keeps at least one free entry")


_BLOCK_WORDS = {"transitions": "transition", "emissions": "emission",
                "durations": "dwell-time"}


def _block_of(name: str, durations: frozenset = frozenset()) -> str:
    """The M-step block a slot belongs to: its parameter's (``durations``: the model's dwell
    parameter names)."""
    base = name.split("[")[0]
    if base in durations:
        return "durations"
    return "transitions" if base in TRANSITION_PARAMS else "emissions"


def _plan(model, group: ParameterGroup, constrained: set[str], created: list[str],
          statements: list[str], partition: list[list[int]] | None,
          stationary: bool = False) -> HMMGroupPlan:
    """How each block of the M-step is solved, decided from the tie map (see HMMGroupPlan)."""
    c = group.tie_map()
    G = c.matrix().tocsc()
    durations = frozenset(n for n, _, _ in model._duration_params())
    # a parameter the ties created ("dwell_rate[1] = 2 * tau") belongs to the block it sets
    own = {name for name, _, _ in _arrays(model)}
    block = np.array([_block_of(n, durations) if n.split("[")[0] in own else ""
                      for n in c.names])
    cols: dict[str, list[int]] = {"transitions": [], "emissions": [], "durations": []}
    for j in range(G.shape[1]):
        rows = G.indices[G.indptr[j]:G.indptr[j + 1]]
        touched = set(block[rows]) - {""}
        if not touched:
            touched = {_block_of(c.names[c.free_index[j]], durations)}
        if len(touched) > 1:
            raise ValidationError(
                f"the free parameter {c.names[c.free_index[j]]!r} reaches both "
                f"{' and '.join(_BLOCK_WORDS[b] for b in _BLOCK_WORDS if b in touched)} "
                "parameters through the ties; EM maximises them separately, so a tie may not "
                "connect them")
        cols[touched.pop()].append(j)
    by_block = {b: {n for n in constrained if _block_of(n, durations) == b} for b in cols}
    new_in = {b: [n for n in created if int(c.free_column[c.select(n)]) in cols[b]]
              for b in cols}
    transitions = ("general" if by_block["transitions"] or new_in["transitions"] or stationary
                   else "closed")
    if not by_block["emissions"] and not new_in["emissions"]:
        emissions, partition = "closed", None
    else:
        emissions = "pooled" if partition is not None else "general"
    if emissions == "general" and not model._supports_general_ties():
        raise ValidationError(
            f"{type(model).__name__} accepts ties that make whole states equal (every emission "
            "parameter of a state tied by equality to another state's, e.g. tied_states); the "
            f"ties {statements} are not of that form")
    if partition is None:
        partition = [[k] for k in range(model.n_components)]
    return HMMGroupPlan(transitions, emissions, partition,
                        {b: np.asarray(v, dtype=np.intp) for b, v in cols.items()},
                        list(statements), list(created))


def _equality_partition(model, group: ParameterGroup) -> list[list[int]] | None:
    """Classes of states whose emission slots are the same free parameters, or None.

    Pooling the statistics of such a class and applying the closed-form update is the exact
    M-step only when every emission slot of the class is its own free parameter (a unit row
    of G whose column no other class reads), or is held by ``params``; any other tie, fixed
    value or scale needs Newton through the tie map.
    """
    tm = group.tie_map()
    K = model.n_components
    specs = [(name, letter) for name, letter, _ in model._emission_params()
             if not (name == "covars" and not model._is_mixture()
                     and model.covariance_type == "tied")]
    blocks = [np.concatenate([np.ravel(np.asarray(tm.select(name)).reshape(K, -1)[k])
                              for name, _ in specs]) for k in range(K)]
    letters = np.concatenate([np.full(np.asarray(tm.select(name)).size // K, letter)
                              for name, letter in specs])
    classes = tm.equal_blocks(blocks)
    G = tm.matrix().tocsr()
    owner: dict[int, int] = {}
    for ci, members in enumerate(classes):
        for slot, letter in zip(blocks[members[0]], letters):
            lo, hi = G.indptr[slot], G.indptr[slot + 1]
            if hi == lo:
                if letter in model.params:
                    return None        # fixed by the user: the closed form would move it
                continue
            if hi - lo != 1 or G.data[lo] != 1.0:
                return None
            if owner.setdefault(int(G.indices[lo]), ci) != ci:
                return None
    return classes


def model_slots(model, group: ParameterGroup, base: np.ndarray | None = None) -> np.ndarray:
    """The slot vector read from the model's arrays (other slots from ``base``)."""
    c = group.tie_map()
    slots = c.stored_slots() if base is None else np.array(base, dtype=float)
    for name, _, arr in _arrays(model):
        slots[np.asarray(c.select(name))] = arr
    return slots


def write_arrays(model, slots: np.ndarray, group: ParameterGroup) -> None:
    """Write slot values into the model's arrays (the only place arrays are set from slots)."""
    c = group.tie_map()
    model.startprob_ = np.array(slots[np.asarray(c.select("startprob"))])
    model.transmat_ = np.array(slots[np.asarray(c.select("transmat"))])
    for name, _, _ in model._emission_params():
        model._set_param(name, np.array(slots[np.asarray(c.select(name))]))
    if "beta" in group.parameters and getattr(model, "n_covariates_", 0):
        model.beta_ = np.array(slots[np.asarray(c.select("beta"))])
    for name, _, attr in model._duration_params():
        setattr(model, attr, np.array(slots[np.asarray(c.select(name))]))


def finalise_probabilities(group: ParameterGroup, names: Sequence[str],
                           slots: np.ndarray) -> None:
    """Store the fitted ``slots`` in ``group``, re-choosing how probability rows normalise.

    Each row is normalised on its largest entry at the fitted values, so that no small
    probability is computed as ``1 - sum`` of larger ones and rounded to zero. Probabilities
    that EM drove to 0 stay free parameters (on the boundary of their domain): the model's
    parameter count does not depend on where one fit ended.
    """
    c = group.tie_map()
    rows = []
    for name in names:
        if name in group.parameters:
            rows += _probability_rows(group, name, group[name].shape)
    normalisers = [n for row in rows for n in row
                   if c.kind[c.select(n)] == SlotKind.LINEAR and _is_normaliser(c, n, row)]
    if normalisers:
        group.untie(normalisers)
    group.set_slots(np.asarray(slots, dtype=float))
    for row in rows:
        normalise_row(group, row)


def _is_normaliser(c, name: str, row: Sequence[str]) -> bool:
    link = c.relation(c.select(name))
    if not isinstance(link, LinearRelation) or link.offset != 1.0:
        return False
    return {c.names[t] for t in link.targets} <= set(row)
