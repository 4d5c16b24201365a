"""The tying shorthands (partitions of states, tied self-loops) and chain structures.

The shorthands are validated here and written as tie statements into the model's one
ParameterGroup (:mod:`sciTie.hmm._group`); nothing else encodes a tie."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._validation import check_float, check_int, check_random_state
from ..errors import ArgumentTypeError, ValidationError

__all__ = ["validate_partition", "validate_transition_groups", "ChainStructure", "erlang_chains",
           "linear_scheme"]



def _state_problems(groups: list[list[int]], n_states: int) -> tuple[list[int], set[int], set[int]]:
    """States out of range, states listed more than once, and every state seen, over ``groups``."""
    flat = [s for g in groups for s in g]
    out_of_range = sorted({s for s in flat if not 0 <= s < n_states})
    seen: set[int] = set()
    repeated: set[int] = set()
    for s in flat:
        (repeated if s in seen else seen).add(s)
    return out_of_range, repeated, seen

def _counts(values, what: str) -> list[int]:
    """Positive integers (1, 2.0 accepted; 2.7, True, 0 refused) naming ``what``."""
    arr = np.atleast_1d(np.asarray(values, dtype=object))
    out = []
    for v in arr.ravel():
        ok = (isinstance(v, (int, np.integer, float, np.floating)) and not isinstance(v, (bool, np.bool_))
              and np.isfinite(float(v)) and float(v) == int(float(v)) and int(float(v)) >= 1)
        if not ok:
            raise ValidationError(f"{what} must be a non-empty list of positive integers, got "
                                  f"{list(arr.ravel())}")
        out.append(int(float(v)))
    if not out:
        raise ValidationError(f"{what} must be a non-empty list of positive integers, got []")
    return out


def _as_state(value, what: str, n_states: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{what} must hold integer state indices, got {value!r} "
                        f"({type(value).__name__})")
    return int(value)


def validate_partition(tied_states, n_states: int) -> list[list[int]]:
    """Check that ``tied_states`` partitions ``range(n_states)``; return it as lists.

    Parameters
    ----------
    tied_states : sequence of sequences of int or None
        Groups of states that share one emission distribution. None means every state
        alone (the ordinary, untied HMM).
    n_states : int
        Number of states of the model.

    Returns
    -------
    list of list of int
        The groups, each sorted, ordered by their first (lowest) state.

    Raises
    ------
    ValueError
        If a state is out of range, repeated, missing or a group is empty.
    TypeError
        If the groups do not hold integers.
    """
    n_states = check_int(n_states, "n_states", minimum=1)
    if tied_states is None:
        return [[k] for k in range(n_states)]
    if isinstance(tied_states, (str, bytes)) or not hasattr(tied_states, "__iter__"):
        raise ArgumentTypeError("tied_states must be a sequence of groups of state indices, e.g. "
                        f"[[0, 1], [2]]; got {tied_states!r}")
    groups: list[list[int]] = []
    for gi, group in enumerate(tied_states):
        if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
            raise ArgumentTypeError(f"tied_states[{gi}] must be a sequence of state indices, "
                            f"got {group!r}")
        g = [_as_state(s, "tied_states", n_states) for s in group]
        if not g:
            raise ValidationError(f"tied_states[{gi}] is empty; every group needs at least one "
                             "state")
        groups.append(sorted(g))
    bad, repeated, seen = _state_problems(groups, n_states)
    if bad:
        raise ValidationError(f"tied_states names states {bad} out of range; states are "
                         f"0..{n_states - 1} (n_components={n_states})")
    if repeated:
        raise ValidationError(f"tied_states is not a partition: states {sorted(repeated)} appear "
                         "in more than one group (or twice in one group)")
    missing = sorted(set(range(n_states)) - seen)
    if missing:
        raise ValidationError(f"tied_states is not a partition: states {missing} are in no group; "
                         f"every state 0..{n_states - 1} must be in exactly one group")
    return sorted(groups, key=lambda g: g[0])


def validate_transition_groups(tied_transitions, n_states: int) -> list[list[int]]:
    """Check ``tied_transitions``: disjoint groups of states sharing one self-loop probability.

    Parameters
    ----------
    tied_transitions : sequence of sequences of int or None
        Groups of states whose self-transition probabilities are one parameter.
    n_states : int
        Number of states.

    Returns
    -------
    list of list of int
        The groups with more than one state (a group of one ties nothing).

    Raises
    ------
    ValueError
        If a state is out of range or in two groups.
    """
    n_states = check_int(n_states, "n_states", minimum=1)
    if tied_transitions is None:
        return []
    if isinstance(tied_transitions, (str, bytes)) or not hasattr(tied_transitions, "__iter__"):
        raise ArgumentTypeError("tied_transitions must be a sequence of groups of state indices, "
                        f"e.g. [[0, 1, 2]]; got {tied_transitions!r}")
    groups = []
    for gi, group in enumerate(tied_transitions):
        if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
            raise ArgumentTypeError(f"tied_transitions[{gi}] must be a sequence of state indices, "
                            f"got {group!r}")
        groups.append(sorted(_as_state(s, "tied_transitions", n_states) for s in group))
    bad, repeated, _ = _state_problems(groups, n_states)
    if bad:
        raise ValidationError(f"tied_transitions names states {bad} out of range; states are "
                         f"0..{n_states - 1}")
    if repeated:
        raise ValidationError(f"tied_transitions groups must be disjoint: states "
                         f"{sorted(repeated)} appear more than once")
    return [g for g in groups if len(g) > 1]


@dataclass(frozen=True)
class ChainStructure:
    """States arranged in chains (Erlang / negative-binomial dwell times).

    Attributes
    ----------
    startprob : ndarray, shape (n_states,)
        Start in the first state of a chain (uniform over chains).
    transmat : ndarray, shape (n_states, n_states)
        Within a chain: stay with probability ``p`` or move to the next state; the last
        state of a chain stays or leaves to the first state of another chain. Structural
        zeros everywhere else (they stay zero during fitting).
    tied_states : list of list of int
        One group per chain: the chain's states share an emission distribution.
    tied_transitions : list of list of int
        One group per chain: the chain's states share one self-loop probability.
    """

    startprob: np.ndarray
    transmat: np.ndarray
    tied_states: list
    tied_transitions: list

    @property
    def n_components(self) -> int:
        """Total number of states."""
        return len(self.startprob)


def erlang_chains(chain_lengths: Sequence[int], stay: float | Sequence[float] = 0.9
                  ) -> ChainStructure:
    """Build chains of states whose dwell time in each chain is negative binomial.

    A chain of ``r`` states that share one self-loop probability ``p`` is left after a sum
    of ``r`` geometric waiting times: a negative-binomial dwell time (shifted by ``r``),
    instead of the geometric dwell time of a single state.

    Parameters
    ----------
    chain_lengths : sequence of int
        Number of states in each chain (each >= 1).
    stay : float or sequence of float, optional
        Initial self-loop probability of each chain, in (0, 1).

    Returns
    -------
    ChainStructure
        Initial ``startprob``/``transmat`` and the ``tied_states``/``tied_transitions``
        arguments for the Tied* models.

    Examples
    --------
    >>> spec = erlang_chains([3, 2], stay=0.95)
    >>> spec.tied_states
    [[0, 1, 2], [3, 4]]
    """
    lengths = _counts(chain_lengths, "chain_lengths")
    raw = np.asarray(stay) if not isinstance(stay, (str, bytes)) else np.asarray([])
    if raw.dtype.kind not in "iuf" or raw.size == 0:
        raise ArgumentTypeError(f"stay must be a number or one number per chain, got {stay!r}")
    try:
        stays = np.broadcast_to(raw.astype(float), (len(lengths),))
    except ValueError:
        raise ValidationError(f"stay must be one number or {len(lengths)} numbers (one per "
                              f"chain), got {raw.size}") from None
    if np.any(~(stays > 0)) or np.any(~(stays < 1)):
        raise ValidationError(f"stay must lie strictly between 0 and 1, got {stays.tolist()}")
    n = sum(lengths)
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    T = np.zeros((n, n))
    groups = []
    for c, (r, f) in enumerate(zip(lengths, firsts)):
        p = stays[c]
        states = list(range(f, f + r))
        groups.append(states)
        for s in states[:-1]:
            T[s, s] = p
            T[s, s + 1] = 1 - p
        last = states[-1]
        others = [firsts[o] for o in range(len(lengths)) if o != c]
        if others:
            T[last, last] = p
            T[last, others] = (1 - p) / len(others)
        else:
            T[last, last] = 1.0
    start = np.zeros(n)
    start[firsts] = 1.0 / len(lengths)
    return ChainStructure(start, T, [list(g) for g in groups], [list(g) for g in groups])


def linear_scheme(group_sizes: Sequence[int], stay: float = 0.9,
                  random_state: int | np.random.Generator | None = None) -> ChainStructure:
    """States in one line (``S0 - S1 - ... - S(n-1)``), consecutive states grouped by level.

    The usual topology of an ion-channel scheme such as C1-C2-C3-O4-O5: only neighbours
    are connected, so the transition matrix is tridiagonal (its zeros are structural and
    stay zero during fitting), and each level is shared by a block of consecutive states.

    Parameters
    ----------
    group_sizes : sequence of int
        Number of states in each consecutive block (e.g. ``[3, 2]``).
    stay : float, optional
        Initial self-loop probability, in (0, 1).
    random_state : int or numpy.random.Generator, optional
        If given, the exit probabilities are perturbed by random factors in [0.6, 1.6]
        (for restarts).

    Returns
    -------
    ChainStructure
        ``tied_states`` are the blocks; ``tied_transitions`` is empty.
    """
    sizes = _counts(group_sizes, "group_sizes")
    stay = check_float(stay, "stay", minimum=0.0, maximum=1.0, low_open=True, high_open=True)
    if random_state is not None and not isinstance(random_state, np.random.Generator):
        check_random_state(random_state)
    n = sum(sizes)
    rng = None if random_state is None else np.random.default_rng(random_state)
    T = np.zeros((n, n))
    for i in range(n):
        nb = [j for j in (i - 1, i + 1) if 0 <= j < n]
        for j in nb:
            T[i, j] = (1 - stay) / len(nb)
            if rng is not None:
                T[i, j] *= rng.uniform(0.6, 1.6)
        T[i, i] = 1.0 - T[i].sum() if nb else 1.0
    bounds = np.cumsum([0] + sizes)
    groups = [list(range(bounds[k], bounds[k + 1])) for k in range(len(sizes))]
    return ChainStructure(np.full(n, 1.0 / n), T, groups, [])
