"""Starting values in the tied space, and the seeds of restarts.

hmmlearn starts a model untied: k-means centres (Gaussian), random rates or probabilities, in
an arbitrary order of states. Projecting that start onto a tie puts the tied states in roles
the data do not support (the upper rungs of a ladder ``means[k] = (k+1) * means[0]`` far
outside the data, two states with one mean and the same variance on a symmetric saddle EM
cannot leave). A tied model therefore starts from the untied start's *clusters*, not its
values:

1. every observation is labelled with the untied start's most likely state (for Gaussian
   emissions, its k-means cluster);
2. the clusters are matched to the tied states (an assignment problem, solved exactly with
   the Hungarian method on each cluster's log-likelihood under each state), and the tied
   emission parameters are fitted to the matched clusters by the model's own exact M-step
   through the tie map;
3. steps 2 alternate until the matching no longer changes.

Only emission blocks with user ties are started this way; an untied model keeps hmmlearn's
start exactly (a drop-in gives hmmlearn's result). Restarts (``n_init``) repeat everything from
other seeds and keep the best log-likelihood.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["untied_labels", "match_clusters_to_states", "restart_seeds", "MAX_MATCH_ROUNDS"]

#: Rounds of matching and refitting at most (it stops as soon as the matching repeats).
MAX_MATCH_ROUNDS = 20


def untied_labels(model: Any, X: np.ndarray) -> np.ndarray:
    """The most likely state of every row under the model's current (untied) emissions."""
    return np.asarray(model._compute_log_likelihood(X)).argmax(axis=1)


def _onehot(labels: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((labels.size, n))
    out[np.arange(labels.size), labels] = 1.0
    return out


def match_clusters_to_states(model: Any, X: np.ndarray, labels: np.ndarray,
                             fit_emissions: Any) -> np.ndarray:
    """Match clusters to tied states and fit the tied emissions to them (module docstring).

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

    Returns
    -------
    ndarray of int
        The state each cluster was matched to.
    """
    K = model.n_components
    members = _onehot(labels, K)
    occupied = members.sum(axis=0) > 0
    perm = _assignment(members.T @ model._compute_log_likelihood(X), occupied)
    for _ in range(MAX_MATCH_ROUNDS):
        fit_emissions(members[:, np.argsort(perm)])  # column k: the rows of cluster perm⁻¹(k)
        new = _assignment(members.T @ model._compute_log_likelihood(X), occupied)
        if np.array_equal(new, perm):
            break
        perm = new
    return perm


def _assignment(cost: np.ndarray, occupied: np.ndarray) -> np.ndarray:
    """Cluster -> state maximising the total log-likelihood (empty clusters take what is left)."""
    K = cost.shape[0]
    score = np.where(np.isfinite(cost), cost, -1e300)
    score[~occupied] = 0.0  # an empty cluster has no preference
    rows, cols = linear_sum_assignment(-score)
    perm = np.empty(K, dtype=np.intp)
    perm[rows] = cols
    return perm


def restart_seeds(random_state: Any, n_init: int) -> list[Any]:
    """The seed of each start: the model's own first (one start is exactly hmmlearn's fit),
    then integers drawn from it, so that a seeded model restarts reproducibly."""
    from sklearn.utils import check_random_state

    if n_init == 1:
        return [random_state]
    rng = check_random_state(random_state)
    return [random_state] + [int(s) for s in rng.randint(0, 2**31 - 1, size=n_init - 1)]
