"""Partitions of states, their tie matrices, pooled statistics and chain structures."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["tying_group", "validate_partition", "validate_transition_groups", "state_tie_matrix",
           "pool_statistics", "ChainStructure", "erlang_chains", "linear_scheme",
           "tied_transition_mstep",
           "count_transition_parameters"]



def _state_problems(groups: list[list[int]], n_states: int) -> tuple[list[int], set[int], set[int]]:
    """States out of range, states listed more than once, and every state seen, over ``groups``."""
    flat = [s for g in groups for s in g]
    out_of_range = sorted({s for s in flat if not 0 <= s < n_states})
    seen: set[int] = set()
    repeated: set[int] = set()
    for s in flat:
        (repeated if s in seen else seen).add(s)
    return out_of_range, repeated, seen

def _as_state(value, what: str, n_states: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must hold integer state indices, got {value!r} "
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
    if tied_states is None:
        return [[k] for k in range(n_states)]
    if isinstance(tied_states, (str, bytes)) or not hasattr(tied_states, "__iter__"):
        raise TypeError("tied_states must be a sequence of groups of state indices, e.g. "
                        f"[[0, 1], [2]]; got {tied_states!r}")
    groups: list[list[int]] = []
    for gi, group in enumerate(tied_states):
        if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
            raise TypeError(f"tied_states[{gi}] must be a sequence of state indices, "
                            f"got {group!r}")
        g = [_as_state(s, "tied_states", n_states) for s in group]
        if not g:
            raise ValueError(f"tied_states[{gi}] is empty; every group needs at least one "
                             "state")
        groups.append(sorted(g))
    bad, repeated, seen = _state_problems(groups, n_states)
    if bad:
        raise ValueError(f"tied_states names states {bad} out of range; states are "
                         f"0..{n_states - 1} (n_components={n_states})")
    if repeated:
        raise ValueError(f"tied_states is not a partition: states {sorted(repeated)} appear "
                         "in more than one group (or twice in one group)")
    missing = sorted(set(range(n_states)) - seen)
    if missing:
        raise ValueError(f"tied_states is not a partition: states {missing} are in no group; "
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
    if tied_transitions is None:
        return []
    if isinstance(tied_transitions, (str, bytes)) or not hasattr(tied_transitions, "__iter__"):
        raise TypeError("tied_transitions must be a sequence of groups of state indices, "
                        f"e.g. [[0, 1, 2]]; got {tied_transitions!r}")
    groups = []
    for gi, group in enumerate(tied_transitions):
        if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
            raise TypeError(f"tied_transitions[{gi}] must be a sequence of state indices, "
                            f"got {group!r}")
        groups.append(sorted(_as_state(s, "tied_transitions", n_states) for s in group))
    bad, repeated, _ = _state_problems(groups, n_states)
    if bad:
        raise ValueError(f"tied_transitions names states {bad} out of range; states are "
                         f"0..{n_states - 1}")
    if repeated:
        raise ValueError(f"tied_transitions groups must be disjoint: states "
                         f"{sorted(repeated)} appear more than once")
    return [g for g in groups if len(g) > 1]


def tying_group(groups: Sequence[Sequence[int]], n_states: int, name: str = "tied_states"):
    """A :class:`sciTie.ParameterGroup` with one slot per state, tied within each group.

    Its tie matrix is the state-to-group matrix G (free parameters = the first state of each
    group, in increasing order) and ``pool`` sums per-state statistics over the groups.

    Parameters
    ----------
    groups : sequence of sequences of int
        A partition of the states, ordered by first state.
    n_states : int
        Number of states.
    name : str, optional
        Name of the group.

    Returns
    -------
    sciTie.ParameterGroup
        The tying group.
    """
    from sciTie.core import ParameterGroup

    pg = ParameterGroup(name, description="emission groups of the hidden states")
    pg.add("state", np.arange(n_states, dtype=float))
    for g in groups:
        if len(g) > 1:
            pg.tie([f"state[{s}]" for s in g[1:]], to=f"state[{g[0]}]")
    return pg


def state_tie_matrix(groups: Sequence[Sequence[int]], n_states: int) -> sp.csr_matrix:
    """The tie matrix G (n_states x n_groups): ``G[k, g] = 1`` when state k is in group g.

    Per-state emission parameters are ``G @ group_parameters``; pooled statistics are
    ``G.T @ state_statistics``.

    Parameters
    ----------
    groups : sequence of sequences of int
        A partition of the states.
    n_states : int
        Number of states.

    Returns
    -------
    scipy.sparse.csr_matrix
        The tie matrix.
    """
    rows = [s for g in groups for s in g]
    cols = [gi for gi, g in enumerate(groups) for _ in g]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_states, len(groups)))


def pool_statistics(G: sp.csr_matrix, stats: np.ndarray) -> np.ndarray:
    """Sum per-state statistics over each group: ``G.T @ stats`` along the first axis.

    Parameters
    ----------
    G : scipy.sparse.csr_matrix, shape (n_states, n_groups)
        Tie matrix from :func:`state_tie_matrix`.
    stats : ndarray, shape (n_states, ...)
        Per-state sufficient statistics.

    Returns
    -------
    ndarray, shape (n_groups, ...)
        Pooled statistics.
    """
    stats = np.asarray(stats, dtype=np.float64)
    flat = stats.reshape(stats.shape[0], -1)
    return np.asarray(G.T @ flat).reshape((G.shape[1],) + stats.shape[1:])


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
    lengths = [int(r) for r in np.atleast_1d(chain_lengths)]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"chain_lengths must be a non-empty list of positive integers, got "
                         f"{list(np.atleast_1d(chain_lengths))}")
    stays = np.broadcast_to(np.asarray(stay, dtype=float), (len(lengths),))
    if np.any(~(stays > 0)) or np.any(~(stays < 1)):
        raise ValueError(f"stay must lie strictly between 0 and 1, got {stays.tolist()}")
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
    sizes = [int(r) for r in np.atleast_1d(group_sizes)]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"group_sizes must be positive integers, got {list(group_sizes)}")
    if not 0 < float(stay) < 1:
        raise ValueError(f"stay must lie strictly between 0 and 1, got {stay}")
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


def tied_transition_mstep(counts: np.ndarray, current: np.ndarray,
                          groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Maximum-likelihood transition matrix when self-loops are tied within groups.

    With expected counts ``n_ij`` and, for states i in a group, ``a_ii = p`` and
    ``a_ij = (1 - p) b_ij`` (``sum_j b_ij = 1`` over j != i), the expected complete-data
    log-likelihood separates: ``p = sum_i n_ii / sum_i n_i.`` over the group, and
    ``b_ij = n_ij / sum_{j != i} n_ij`` row by row. Untied rows are ``n_ij / n_i.``.
    Structural zeros (zero entries of ``current``) stay zero.

    Parameters
    ----------
    counts : ndarray, shape (n_states, n_states)
        Expected transition counts (prior pseudo-counts already added, non-negative).
    current : ndarray, shape (n_states, n_states)
        Current transition matrix (its zeros are structural).
    groups : sequence of sequences of int
        Groups of states with a shared self-loop probability.

    Returns
    -------
    ndarray, shape (n_states, n_states)
        The updated transition matrix (rows with no counts keep their current values).
    """
    counts = np.where(current == 0, 0.0, counts)
    K = counts.shape[0]
    new = np.array(current, dtype=float, copy=True)
    tied_rows = {s for g in groups for s in g}
    for i in range(K):
        if i in tied_rows:
            continue
        tot = counts[i].sum()
        if tot > 0:
            new[i] = counts[i] / tot
    for g in groups:
        g = list(g)
        stay = sum(counts[i, i] for i in g)
        tot = sum(counts[i].sum() for i in g)
        if not tot > 0:
            continue
        p = stay / tot
        for i in g:
            off = counts[i].copy()
            off[i] = 0.0
            s_off = off.sum()
            row = np.zeros(K)
            if s_off > 0:
                row = (1 - p) * off / s_off
                row[i] = p
            else:  # never seen leaving this state: keep the old exit distribution
                old_off = current[i].copy()
                old_off[i] = 0.0
                if old_off.sum() > 0:
                    row = (1 - p) * old_off / old_off.sum()
                    row[i] = p
                else:
                    row[i] = 1.0
            new[i] = row
    return new


def count_transition_parameters(startprob: np.ndarray | None, transmat: np.ndarray | None,
                                groups: Sequence[Sequence[int]]) -> tuple[int, int]:
    """Free parameters of the start distribution and the transition matrix.

    Structural zeros are not parameters; a group of tied self-loops is one parameter.

    Parameters
    ----------
    startprob : ndarray or None
        Start distribution (None: not counted).
    transmat : ndarray or None
        Transition matrix (None: not counted).
    groups : sequence of sequences of int
        Tied self-loop groups.

    Returns
    -------
    (int, int)
        Number of free start and transition parameters.
    """
    n_start = 0
    if startprob is not None:
        n_start = max(int(np.count_nonzero(startprob)) - 1, 0)
    n_trans = 0
    if transmat is not None:
        tied_rows = {s for g in groups for s in g}
        for i in range(transmat.shape[0]):
            nz = np.count_nonzero(transmat[i])
            if i not in tied_rows:
                n_trans += max(nz - 1, 0)
            else:
                n_off = nz - (1 if transmat[i, i] != 0 else 0)
                n_trans += max(n_off - 1, 0)
        for g in groups:
            if any(transmat[i, i] != 0 and np.count_nonzero(transmat[i]) > 1 for i in g):
                n_trans += 1
    return n_start, n_trans
