"""Expected complete-data log-likelihood Q (plus log-prior) of each block, in slots.

Each function returns ``objective(slots) -> (value, gradient, hessian)`` over the whole slot
vector of the model's group, built from the sufficient statistics of one E-step. They are
the MAP objectives whose per-state maximisers are hmmlearn's closed-form updates (same
priors, same conventions), so an untied model's maximiser is hmmlearn's M-step, and a tied
model's is the exact M-step under its ties (:func:`sciTie.core.maximize.maximize_through_ties`).
Outside a family's domain (a negative variance, a probability below zero, a matrix that is
not positive definite) the value is ``-inf``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["probability_objective", "probability_start", "gaussian_diag_objective",
           "gaussian_full_objective", "poisson_objective", "sum_objectives"]

Objective = Callable[[np.ndarray], tuple[float, np.ndarray | None, sp.spmatrix | None]]
_FAIL = (-np.inf, None, None)


#: Up to this many slots the Hessian is a dense array (assembling a sparse one costs more
#: than the whole dense algebra of a model of this size).
DENSE_SLOTS = 600


class _Accumulator:
    """Gradient and Hessian entries over ``n`` slots (dense for small models)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.grad = np.zeros(n)
        self.dense = np.zeros((n, n)) if n <= DENSE_SLOTS else None
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []

    def add_grad(self, idx: np.ndarray, g: np.ndarray) -> None:
        np.add.at(self.grad, np.ravel(idx), np.ravel(g))

    def add_hess(self, ri: np.ndarray, ci: np.ndarray, h: np.ndarray, *, symmetric: bool = False
                 ) -> None:
        ri, ci, h = np.broadcast_arrays(np.asarray(ri), np.asarray(ci), np.asarray(h))
        if self.dense is not None:
            np.add.at(self.dense, (ri.ravel(), ci.ravel()), h.ravel())
            if symmetric:  # also the transposed block
                np.add.at(self.dense, (ci.ravel(), ri.ravel()), h.ravel())
            return
        self.rows.append(ri.ravel())
        self.cols.append(ci.ravel())
        self.vals.append(h.ravel())
        if symmetric:
            self.rows.append(ci.ravel())
            self.cols.append(ri.ravel())
            self.vals.append(h.ravel())

    def result(self, value: float):
        if self.dense is not None:
            return float(value), self.grad, self.dense
        if self.rows:
            H = sp.coo_matrix((np.concatenate(self.vals),
                               (np.concatenate(self.rows), np.concatenate(self.cols))),
                              shape=(self.n, self.n)).tocsr()
        else:
            H = sp.csr_matrix((self.n, self.n))
        return float(value), self.grad, H


def probability_objective(blocks: list[tuple[np.ndarray, np.ndarray]], n_slots: int
                          ) -> Objective:
    """``Σ c log p`` over probability slots (start, transitions, categorical emissions).

    Parameters
    ----------
    blocks : list of (slot indices, counts)
        Counts are the Dirichlet-MAP counts ``max(prior - 1 + expected count, 0)``, already
        zero where the probability is a structural zero.
    n_slots : int
        Length of the slot vector.
    """
    idx = np.concatenate([np.ravel(i) for i, _ in blocks]) if blocks else np.zeros(0, int)
    cnt = np.concatenate([np.ravel(c) for _, c in blocks]) if blocks else np.zeros(0)
    pos = cnt > 0

    def objective(slots: np.ndarray):
        p = slots[idx]
        if np.any(p < 0) or np.any(p[pos] <= 0):
            return _FAIL
        acc = _Accumulator(n_slots)
        value = float(np.sum(cnt[pos] * np.log(p[pos])))
        acc.add_grad(idx[pos], cnt[pos] / p[pos])
        # p² underflows for probabilities near 1e-160; the Newton step only needs a curvature
        # that is large there, not its exact size (the line search keeps the ascent)
        acc.add_hess(idx[pos], idx[pos], -cnt[pos] / np.maximum(p[pos], 1e-150) ** 2)
        return acc.result(value)

    return objective


def probability_start(tie_map, blocks: list[tuple[np.ndarray, np.ndarray]], free: np.ndarray,
                      columns: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Free values that each set one class of probability rows to its normalised counts,
    pooled over the rows the ties make identical: the closed-form maximiser of
    :func:`probability_objective` in that class where its ties are whole-row equalities, and
    a start near it otherwise.

    Newton's method on ``c log p`` from a probability far from its maximiser at most doubles
    it per step, and one step size serves every row, so one such row (a start probability
    that fell to 1e-17 and must rise) slows the M-step of all the others. The caller keeps
    each class's values where they raise the objective.

    Parameters
    ----------
    tie_map : TieMap
        The group's tie map.
    blocks : list of (slot indices, counts)
        As for :func:`probability_objective`; each block's last axis is one probability row.
    free : ndarray
        The current free vector; only ``columns`` of it change.
    columns : ndarray of int
        The free columns the M-step moves.

    Returns
    -------
    list of (columns, values)
        Per class of rows with counts, the free columns that reach its rows (among
        ``columns``) and their values there.
    """
    by_length: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for idx, cnt in blocks:
        for r, c in zip(np.atleast_2d(idx), np.atleast_2d(cnt)):
            by_length.setdefault(r.size, []).append((r, c))
    current = tie_map.evaluate(free)
    moved = set(np.asarray(columns).tolist())
    starts = []
    for pairs in by_length.values():
        for members in tie_map.equal_blocks([r for r, _ in pairs], free):
            total = np.sum([pairs[m][1] for m in members], axis=0)
            if not total.sum() > 0:  # a row with no counts keeps its values
                continue
            target = current.copy()
            target[pairs[members[0]][0]] = total / total.sum()
            cols = np.array([j for j in tie_map.columns_reaching(pairs[members[0]][0], free)
                             if j in moved], dtype=np.intp)
            if cols.size:
                starts.append((cols, target[tie_map.free_index[cols]]))
    return starts


def gaussian_diag_objective(mean_idx: np.ndarray, var_idx: np.ndarray, post: np.ndarray,
                            obs: np.ndarray, obs2: np.ndarray, *, means_prior, means_weight,
                            covars_prior, covars_weight, n_slots: int) -> Objective:
    """Diagonal or spherical Gaussian emissions (hmmlearn's MAP objective).

    Per state k and feature d, with ``N = post[k]``, ``S1 = obs[k,d]``, ``S2 = obs2[k,d]``::

        F = -c/2 log v - (cp + τ (μ - m0)² + S2 - 2 μ S1 + N μ²) / (2 v),
        c = max(w - 1, 0) + N

    whose maximiser is hmmlearn's update. ``var_idx`` has shape (K, D) for diagonal and
    (K,) for spherical covariances (one variance read by every feature). ``post`` is (K,),
    or (K, D) per-feature occupancies when values are missing (N then depends on d).
    """
    K, D = obs.shape
    m_idx = np.asarray(mean_idx).reshape(K, D)
    v_idx = np.broadcast_to(np.asarray(var_idx).reshape(K, -1), (K, D))
    N = np.asarray(post, dtype=float)
    N = N[:, None] if N.ndim == 1 else N  # per-feature occupancies where values are missing
    m0 = np.broadcast_to(np.asarray(means_prior, dtype=float), (K, D)) if np.ndim(means_prior) < 2 \
        else np.asarray(means_prior, dtype=float).reshape(K, D)
    tau = np.broadcast_to(np.asarray(means_weight, dtype=float), (K, D)) \
        if np.ndim(means_weight) < 2 else np.asarray(means_weight, dtype=float).reshape(K, D)
    cp = np.broadcast_to(np.asarray(covars_prior, dtype=float), (K, D)) \
        if np.ndim(covars_prior) < 2 else np.asarray(covars_prior, dtype=float).reshape(K, D)
    w = np.broadcast_to(np.asarray(covars_weight, dtype=float), (K, D)) \
        if np.ndim(covars_weight) < 2 else np.asarray(covars_weight, dtype=float).reshape(K, D)
    c = np.maximum(np.maximum(w - 1.0, 0.0) + N, 1e-5)

    def objective(slots: np.ndarray):
        mu, v = slots[m_idx], slots[v_idx]
        if np.any(v <= 0):
            return _FAIL
        B = cp + tau * (mu - m0) ** 2 + obs2 - 2 * mu * obs + N * mu ** 2
        a = tau * (mu - m0) - obs + N * mu  # dB/dmu / 2
        value = float(np.sum(-0.5 * c * np.log(v) - B / (2 * v)))
        acc = _Accumulator(n_slots)
        acc.add_grad(m_idx, -a / v)
        acc.add_grad(v_idx, -c / (2 * v) + B / (2 * v ** 2))
        acc.add_hess(m_idx, m_idx, -(tau + N) / v)
        acc.add_hess(v_idx, v_idx, c / (2 * v ** 2) - B / v ** 3)
        acc.add_hess(m_idx, v_idx, a / v ** 2, symmetric=True)
        return acc.result(value)

    return objective


def gaussian_full_objective(mean_idx: np.ndarray, cov_idx: np.ndarray, post: np.ndarray,
                            obs: np.ndarray, obs_outer: np.ndarray, *, means_prior,
                            means_weight, covars_prior, covars_weight, n_slots: int,
                            unit_cov: np.ndarray | None = None) -> Objective:
    """Gaussian units (states, or mixture components) with full covariance matrices.

    Unit k reads matrix ``unit_cov[k]`` (default: its own; all zeros for one tied matrix).
    Per matrix j, with ``P = Σ_j⁻¹`` and, per unit,
    ``B_k = τ (μ - m0)(μ - m0)ᵀ + S2 - S1 μᵀ - μ S1ᵀ + N μ μᵀ``::

        F_j = -c_j/2 log|Σ_j| - tr(P (cp_j + Σ_{k→j} B_k)) / 2,
        c_j = max(w_j - D, 0) + Σ_{k→j} N_k

    hmmlearn's MAP objective ('full': one matrix per state; 'tied': one for all). Every entry
    of Σ is a slot; the group ties the lower triangle to the upper. ``covars_prior`` and
    ``covars_weight`` are given per matrix.
    """
    K, D = obs.shape
    m_idx = np.asarray(mean_idx).reshape(K, D)
    unit_cov = np.arange(K) if unit_cov is None else np.asarray(unit_cov, dtype=np.intp)
    n_cov = int(unit_cov.max()) + 1
    c_idx = np.asarray(cov_idx).reshape(n_cov, D, D)
    N = np.asarray(post, dtype=float)
    m0 = np.broadcast_to(np.asarray(means_prior, dtype=float), (K, D)) if np.ndim(means_prior) < 2 \
        else np.asarray(means_prior, dtype=float).reshape(K, D)
    tau = np.broadcast_to(np.asarray(means_weight, dtype=float), (K,)) \
        if np.ndim(means_weight) < 1 else np.asarray(means_weight, dtype=float).reshape(K, -1)[:, 0]
    cp = np.broadcast_to(np.asarray(covars_prior, dtype=float), (n_cov, D, D)) \
        if np.ndim(covars_prior) < 3 else np.asarray(covars_prior, dtype=float).reshape(-1, D, D)
    cp = np.broadcast_to(cp, (n_cov, D, D)) if cp.shape[0] == 1 else cp[:n_cov]
    wv = np.asarray(covars_weight, dtype=float).reshape(-1)
    w = np.broadcast_to(wv, (n_cov,)) if wv.size == 1 else wv[:n_cov]
    cvals = np.maximum(w - D, 0.0) + np.bincount(unit_cov, weights=N, minlength=n_cov)

    def objective(slots: np.ndarray):
        mu = slots[m_idx]
        Sig = slots[c_idx]
        acc = _Accumulator(n_slots)
        value = 0.0
        P_all = []
        for j in range(n_cov):
            try:
                L = np.linalg.cholesky(0.5 * (Sig[j] + Sig[j].T))
            except np.linalg.LinAlgError:
                return _FAIL
            if not np.all(np.isfinite(L)):
                return _FAIL
            P_all.append(np.linalg.inv(Sig[j]))
        B_tot = [cp[j].copy() for j in range(n_cov)]
        As = []
        for k in range(K):
            d = mu[k] - m0[k]
            B_tot[unit_cov[k]] += (tau[k] * np.outer(d, d) + obs_outer[k] - np.outer(obs[k], mu[k])
                                   - np.outer(mu[k], obs[k]) + N[k] * np.outer(mu[k], mu[k]))
            As.append(tau[k] * d - obs[k] + N[k] * mu[k])
        for j in range(n_cov):
            P, B, c = P_all[j], B_tot[j], cvals[j]
            sign, logdet = np.linalg.slogdet(Sig[j])
            value += -0.5 * c * logdet - 0.5 * float(np.sum(P * B.T))
            M = P @ B @ P
            acc.add_grad(c_idx[j], 0.5 * (-c * P + M).T)
            # d2F / dΣ_ab dΣ_ef = c/2 P_be P_fa - 1/2 (P_be M_fa + M_be P_fa)
            H4 = (0.5 * c * np.einsum("be,fa->abef", P, P)
                  - 0.5 * (np.einsum("be,fa->abef", P, M) + np.einsum("be,fa->abef", M, P)))
            ab = c_idx[j].reshape(-1)
            acc.add_hess(ab[:, None], ab[None, :], H4.reshape(D * D, D * D))
        for k in range(K):
            j = unit_cov[k]
            P, a = P_all[j], As[k]
            acc.add_grad(m_idx[k], -P @ a)
            acc.add_hess(m_idx[k][:, None], m_idx[k][None, :], -(tau[k] + N[k]) * P)
            # d2F / dμ_m dΣ_ab = (P_ma (P a)_b + P_bm (P a)_a) / 2  (symmetric in a, b)
            Pa = P @ a
            cross = 0.5 * (np.einsum("ma,b->mab", P, Pa)
                           + np.einsum("bm,a->mab", P, Pa)).reshape(D, D * D)
            acc.add_hess(m_idx[k][:, None], c_idx[j].reshape(-1)[None, :], cross, symmetric=True)
        return acc.result(value)

    return objective


def sum_objectives(*objectives: Objective) -> Objective:
    """The sum of objectives over the same slot vector (e.g. weights plus components)."""
    def objective(slots: np.ndarray):
        total, grad, hess = 0.0, None, None
        for obj in objectives:
            f, g, h = obj(slots)
            if not np.isfinite(f):
                return _FAIL
            total += f
            grad = g if grad is None else grad + g
            hess = h if hess is None else hess + h
        return total, grad, hess

    return objective


def poisson_objective(lam_idx: np.ndarray, post: np.ndarray, obs: np.ndarray, *,
                      lambdas_prior, lambdas_weight, n_slots: int) -> Objective:
    """Poisson emissions: ``F = (α + S1) log λ - (β + N) λ`` per state and feature.

    With the default α = β = 0 this is the expected complete-data log-likelihood; with a
    Gamma prior its maximiser is the per-state posterior mean ``(α + S1)/(β + N)``.
    """
    K, D = obs.shape
    idx = np.asarray(lam_idx).reshape(K, D)
    alpha = np.broadcast_to(np.asarray(lambdas_prior, dtype=float), (K, D)) \
        if np.ndim(lambdas_prior) < 2 else np.asarray(lambdas_prior, dtype=float).reshape(K, D)
    beta = np.broadcast_to(np.asarray(lambdas_weight, dtype=float), (K, D)) \
        if np.ndim(lambdas_weight) < 2 else np.asarray(lambdas_weight, dtype=float).reshape(K, D)
    a = alpha + obs
    N = np.asarray(post, dtype=float)
    b = beta + (N[:, None] if N.ndim == 1 else N)  # (K, D): per-feature, values missing

    def objective(slots: np.ndarray):
        lam = slots[idx]
        if np.any(lam < 0) or np.any((a > 0) & (lam <= 0)):
            return _FAIL
        pos = a > 0
        value = float(np.sum(a[pos] * np.log(lam[pos])) - np.sum(b * lam))
        acc = _Accumulator(n_slots)
        acc.add_grad(idx, np.where(pos, a / np.where(pos, lam, 1.0), 0.0) - b)
        acc.add_hess(idx, idx, np.where(pos, -a / np.where(pos, lam, 1.0) ** 2, 0.0))
        return acc.result(value)

    return objective
