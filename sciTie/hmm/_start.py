"""Starting values in the tied space, and the seeds of restarts.

hmmlearn starts a model untied: k-means centres (Gaussian), random rates or probabilities, in
an arbitrary order of states. Projecting that start onto a tie puts the tied states in roles
the data do not support (the upper rungs of a ladder ``means[k] = (k+1) * means[0]`` far
outside the data, two states with one mean and the same variance on a symmetric saddle EM
cannot leave). A tied model therefore starts from the untied start's *clusters*, not its
values:

1. every observation is labelled with the untied start's most likely state (for Gaussian
   emissions, its k-means cluster);
2. the clusters are matched to the tied states and the tied emission parameters are fitted
   to the matched clusters by the model's own exact M-step through the tie map; the
   assignment kept is the one whose fit gives the rows the highest classification
   log-likelihood (every assignment for a few states; for many, the Hungarian method on each
   cluster's log-likelihood under each state, alternated with the fit, from several
   assignments).

When the tie makes some states' means equal while their other parameters stay free
(``means[1] = means[0]``: two regimes around one level, one narrow and one wide), no clustering
of the rows can tell those states apart, and matching clusters to them gives the shared level
to rows it does not describe. Every second restart of such a model therefore starts from the
*mean groups* instead: k-means with one cluster per class of equal means (sub-clusters, one per
mixture component, for a mixture), each state of a class given its class's centres and a
covariance spread by a factor between e^-1 and e, so that the states of a class differ from the
start (:func:`mean_group_start`).

Only emission blocks with user ties are started this way; an untied model keeps hmmlearn's
start exactly (a drop-in gives hmmlearn's result). Restarts (``n_init``) repeat everything from
other seeds and keep the best log-likelihood.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["untied_labels", "match_clusters_to_states", "mean_group_start", "MeanGroupStart",
           "restart_seeds", "MAX_MATCH_ROUNDS"]

#: Rounds of matching and refitting at most (it stops as soon as the matching repeats).
MAX_MATCH_ROUNDS = 20
#: Up to this many states every assignment of clusters to states is tried (4! = 24 fits).
EXHAUSTIVE_STATES = 4
#: Random assignments tried (each refined by the Hungarian alternation) for more states.
RANDOM_ASSIGNMENTS = 8


def untied_labels(model: Any, X: np.ndarray) -> np.ndarray:
    """The most likely state of every row under the model's current (untied) emissions."""
    return np.asarray(model._compute_log_likelihood(X)).argmax(axis=1)


def _onehot(labels: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((labels.size, n))
    out[np.arange(labels.size), labels] = 1.0
    return out


def match_clusters_to_states(model: Any, X: np.ndarray, labels: np.ndarray,
                             fit_emissions: Any, random_state: Any = None) -> np.ndarray:
    """Match clusters to tied states and fit the tied emissions to them (module docstring).

    Every assignment of clusters to states is tried for up to ``EXHAUSTIVE_STATES`` states
    (beyond, the Hungarian alternation starts from the identity and ``RANDOM_ASSIGNMENTS``
    random assignments); each is scored by the classification log-likelihood (every row
    under the state its cluster went to, after the tied fit), and the best is refined by
    alternating the Hungarian matching and the tied fit until the matching repeats.

    Parameters
    ----------
    model : TiedHMMMixin
        With ``group_`` built; its emissions are changed in place.
    X : ndarray
        Observations.
    labels : ndarray of int
        Cluster of every row (``0 .. n_components - 1``).
    fit_emissions : callable
        ``fit_emissions(posteriors)`` runs the model's tied emission M-step on statistics of
        the given (hard) posteriors.
    random_state : int, RandomState or None
        Seeds the random assignments tried for many states.

    Returns
    -------
    ndarray of int
        The state each cluster was matched to.
    """
    from itertools import permutations

    from sklearn.utils import check_random_state

    K = model.n_components
    members = _onehot(labels, K)
    occupied = members.sum(axis=0) > 0
    start = _emission_state(model)

    def fitted(perm: np.ndarray) -> tuple[float, np.ndarray, Any]:
        _restore(model, start)
        fit_emissions(members[:, np.argsort(perm)])  # column k: the rows of cluster perm⁻¹(k)
        L = model._compute_log_likelihood(X)
        score = float(np.sum(members * L[:, perm]))
        return (score if np.isfinite(score) else -np.inf), L, _emission_state(model)

    if K <= EXHAUSTIVE_STATES:
        candidates = [np.array(p) for p in permutations(range(K))]
    else:
        rng = check_random_state(random_state)
        candidates = [np.arange(K)] + [rng.permutation(K) for _ in range(RANDOM_ASSIGNMENTS)]
    best = None
    for perm in candidates:
        score, L, state = fitted(perm)
        if K > EXHAUSTIVE_STATES:  # refine each by the Hungarian alternation
            perm, score, L, state = _alternate(perm, score, L, state, members, occupied, fitted)
        if best is None or score > best[1]:
            best = (perm, score, L, state)
    perm, score, L, state = _alternate(*best, members, occupied, fitted)
    _restore(model, state)
    return perm


def _alternate(perm, score, L, state, members, occupied, fitted):
    """Hungarian matching and the tied fit in turn while the score rises."""
    for _ in range(MAX_MATCH_ROUNDS):
        new = _assignment(members.T @ L, occupied)
        if np.array_equal(new, perm):
            break
        new_score, new_L, new_state = fitted(new)
        if not new_score > score:
            break
        perm, score, L, state = new, new_score, new_L, new_state
    return perm, score, L, state


def _emission_state(model: Any) -> np.ndarray:
    """The model's current free vector (EM keeps it in ``_slots``, not in the group)."""
    return np.array(model._slots[model.group_.tie_map().free_index])


def _restore(model: Any, free: np.ndarray) -> None:
    from ._group import write_arrays

    slots = model.group_.tie_map().evaluate(free)
    model._slots = slots
    write_arrays(model, slots, model.group_)


def _assignment(cost: np.ndarray, occupied: np.ndarray) -> np.ndarray:
    """Cluster -> state maximising the total log-likelihood (empty clusters take what is left)."""
    K = cost.shape[0]
    score = np.where(np.isfinite(cost), cost, -1e300)
    score[~occupied] = 0.0  # an empty cluster has no preference
    rows, cols = linear_sum_assignment(-score)
    perm = np.empty(K, dtype=np.intp)
    perm[rows] = cols
    return perm


@dataclass
class MeanGroupStart:
    """Emission starts from the mean groups (:func:`mean_group_start`).

    Attributes
    ----------
    means : ndarray, shape (n_states, n_sub, n_features)
        Centres; the states of one class share theirs.
    covars : ndarray, shape (n_states, n_sub, n_features, n_features)
        Each sub-cluster's covariance, times the state's spread factor.
    weights : ndarray, shape (n_states, n_sub)
        Each sub-cluster's share of its class's rows.
    """

    means: np.ndarray
    covars: np.ndarray
    weights: np.ndarray


def mean_group_start(X: np.ndarray, groups: list[list[int]], n_states: int, n_sub: int,
                     min_covar: float, random_state: Any) -> MeanGroupStart | None:
    """Centres and covariances for states whose means the tie makes equal.

    k-means puts the rows in one cluster per class of ``groups`` (which class gets which
    cluster is drawn), then each cluster in ``n_sub`` sub-clusters; every state of a class
    takes its class's sub-cluster centres, shares and covariances, the covariances scaled by
    a factor drawn between e^-1 and e (spread evenly within a class, in drawn order).

    Returns
    -------
    MeanGroupStart or None
        None when a cluster has fewer rows than it needs (two per sub-cluster).
    """
    from sklearn.cluster import KMeans
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    D = X.shape[1]
    top = KMeans(n_clusters=len(groups), n_init=10,
                 random_state=rng.randint(2**31 - 1)).fit(X)
    means = np.empty((n_states, n_sub, D))
    covars = np.empty((n_states, n_sub, D, D))
    weights = np.empty((n_states, n_sub))
    for cluster, group in zip(rng.permutation(len(groups)), groups):
        rows = X[top.labels_ == cluster]
        if len(rows) < 2 * n_sub:
            return None
        sub = KMeans(n_clusters=n_sub, n_init=10, random_state=rng.randint(2**31 - 1)).fit(rows)
        parts = [rows[sub.labels_ == j] for j in range(n_sub)]
        if min(len(p) for p in parts) < 2:
            return None
        cov = np.array([np.atleast_2d(np.cov(p, rowvar=False)) + min_covar * np.eye(D)
                        for p in parts])
        share = np.array([len(p) for p in parts], dtype=float) / len(rows)
        factors = rng.permutation(np.exp(np.linspace(-1.0, 1.0, len(group)))
                                  if len(group) > 1 else np.ones(1))
        for state, factor in zip(group, factors):
            means[state] = sub.cluster_centers_
            covars[state] = cov * factor
            weights[state] = share
    return MeanGroupStart(means, covars, weights)


def restart_seeds(random_state: Any, n_init: int) -> list[Any]:
    """The seed of each start: the model's own first (one start is exactly hmmlearn's fit),
    then integers drawn from it, so that a seeded model restarts reproducibly."""
    from sklearn.utils import check_random_state

    if n_init == 1:
        return [random_state]
    rng = check_random_state(random_state)
    return [random_state] + [int(s) for s in rng.randint(0, 2**31 - 1, size=n_init - 1)]
