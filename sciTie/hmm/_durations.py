"""Dwell-time distributions of a hidden semi-Markov model: their parameters, pmf and Q.

A state's duration ``d`` lies in ``1..max_duration`` (D). The parametric families describe
``d - 1`` and are truncated to ``0..D-1`` (renormalised), so every pmf sums to one on the
support the segment recursions use:

* ``"poisson"``: ``d - 1 ~ Poisson(dwell_rate)``;
* ``"negbinom"``: ``d - 1 ~ NegBinomial`` with mean ``dwell_rate`` (μ) and shape
  ``dwell_shape`` (r), variance ``μ + μ²/r`` before truncation (``P(j) ∝ Γ(j + r) / (Γ(r) j!)
  p^r (1 - p)^j`` with ``p = r / (r + μ)``); the Poisson of the same ``dwell_rate`` is its
  limit ``r → ∞``, and in these coordinates that limit is a flat direction of Q instead of a
  curved ridge, so Newton's M-step converges on Poisson-like data too;
* ``"nonparametric"``: ``dwell_pmf[k, d - 1]`` free (each row a probability vector).

EM's duration statistic is the expected number of segments of each full duration,
``eta[k, d - 1]`` (censored last segments spread over the durations they may have), so the
M-step maximises ``Q = sum_k sum_d eta[k, d - 1] log p_k(d)``. For the parametric families
:func:`dwell_objective` gives Q with its exact gradient and Hessian in the group's slots
(the truncation's normaliser included), for Newton steps through the tie map.
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from ._logsum import log_sum_exp
from ._objectives import Objective, probability_objective

__all__ = ["DURATIONS", "dwell_names", "dwell_bounds", "initial_dwell", "dwell_pmf",
           "dwell_objective"]

#: The families and their parameters (names in ``group_``; attributes add ``_``).
DURATIONS = {"poisson": ("dwell_rate",), "negbinom": ("dwell_rate", "dwell_shape"),
             "nonparametric": ("dwell_pmf",)}
#: The negative binomial tends to the Poisson as its shape grows; data with Poisson-like
#: dwell times drive the shape to infinity, so it stops at MAX_SHAPE (the pmfs then differ
#: by about rate²/MAX_SHAPE relative).
MAX_SHAPE = 1e6
_BOUNDS = {"dwell_rate": (0.0, np.inf), "dwell_shape": (0.0, MAX_SHAPE),
           "dwell_pmf": (0.0, 1.0)}
_FAIL = (-np.inf, None, None)


def dwell_names(duration: str) -> tuple[str, ...]:
    """The parameter names of the family ``duration``."""
    return DURATIONS[duration]


def dwell_bounds(name: str) -> tuple[float, float]:
    """The domain of parameter ``name``: open at 0 (a pmf may hold zeros), closed at a finite
    cap (the negative binomial's shape)."""
    return _BOUNDS[name]


def initial_dwell(duration: str, n_components: int, max_duration: int) -> dict[str, np.ndarray]:
    """A start with mean duration near the middle of ``1..max_duration`` for every state
    (the nonparametric pmf uniform)."""
    K, D = n_components, max_duration
    mean = max(0.5, (D - 1) / 2.0)  # of d - 1, before truncation
    if duration == "poisson":
        return {"dwell_rate": np.full(K, mean)}
    if duration == "negbinom":
        # shape 2: between a geometric (1) and a Poisson (infinite) dwell
        return {"dwell_rate": np.full(K, mean), "dwell_shape": np.full(K, 2.0)}
    return {"dwell_pmf": np.full((K, D), 1.0 / D)}


def _log_terms(duration: str, params: dict[str, np.ndarray], D: int) -> np.ndarray:
    """``log P(j)`` of the untruncated family for ``j = 0..D-1``, shape (K, D)."""
    j = np.arange(D, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if duration == "poisson":
            lam = np.asarray(params["dwell_rate"], dtype=float)[:, None]
            return np.where(j == 0, 0.0, j * np.log(lam)) - lam - gammaln(j + 1)
        mu = np.asarray(params["dwell_rate"], dtype=float)[:, None]
        r = np.asarray(params["dwell_shape"], dtype=float)[:, None]
        # Γ(j + r) / Γ(r) / (r + μ)^j = Π_{i<j} (1 + (i - μ)/(r + μ)): a sum of log1p terms,
        # exact for a large shape where lgamma differences would lose every digit
        steps = np.log1p((j[:-1] - mu) / (r + mu))
        ratio = np.concatenate([np.zeros((mu.shape[0], 1)), np.cumsum(steps, axis=1)], axis=1)
        return (ratio + np.where(j == 0, 0.0, j * np.log(mu)) - gammaln(j + 1)
                - r * np.log1p(mu / r))


def dwell_pmf(duration: str, params: dict[str, np.ndarray], max_duration: int) -> np.ndarray:
    """``p_k(d)`` for ``d = 1..max_duration``, shape (n_components, max_duration)."""
    if duration == "nonparametric":
        return np.array(params["dwell_pmf"], dtype=float)
    logp = _log_terms(duration, params, max_duration)
    return np.exp(logp - log_sum_exp(logp)[:, None])


def dwell_objective(duration: str, idx: dict[str, np.ndarray], eta: np.ndarray,
                    n_slots: int) -> Objective:
    """``Q = sum eta log p`` over the dwell slots ``idx`` (name -> slot indices per state).

    Parametric families: with ``w`` the truncated pmf and ``u = ∂ log P``, ``v = ∂² log P``
    per state, ``∂Q = sum_j eta_j u_j - N E_w[u]`` and
    ``∂²Q = sum_j eta_j v_j - N (E_w[v] + Cov_w[u])`` (N the state's segment count).
    """
    eta = np.asarray(eta, dtype=float)
    K, D = eta.shape
    if duration == "nonparametric":
        return probability_objective([(np.asarray(idx["dwell_pmf"]), eta)], n_slots)
    names = DURATIONS[duration]
    cols = [np.asarray(idx[n]).reshape(K) for n in names]
    N = eta.sum(axis=1)
    j = np.arange(D, dtype=float)

    def objective(slots: np.ndarray):
        params = {n: slots[c] for n, c in zip(names, cols)}
        for n in names:
            lo, hi = _BOUNDS[n]
            if np.any(params[n] <= lo) or np.any(params[n] > hi):  # a shape may sit at its cap
                return _FAIL
        logp = _log_terms(duration, params, D)
        logz = log_sum_exp(logp)[:, None]
        w = np.exp(logp - logz)
        value = float(np.sum(eta * (logp - logz)))
        u, v = _derivatives(duration, params, j)  # u[a]: (K, D); v[a][b]: (K, D)
        m = len(names)
        grad = np.zeros(n_slots)
        hess = np.zeros((n_slots, n_slots))
        mean_u = [np.sum(w * u[a], axis=1) for a in range(m)]
        for a in range(m):
            np.add.at(grad, cols[a], np.sum(eta * u[a], axis=1) - N * mean_u[a])
            for b in range(m):
                cov = np.sum(w * u[a] * u[b], axis=1) - mean_u[a] * mean_u[b]
                h = np.sum(eta * v[a][b], axis=1) - N * (np.sum(w * v[a][b], axis=1) + cov)
                np.add.at(hess, (cols[a], cols[b]), h)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return _FAIL
        return value, grad, hess

    return objective


def _derivatives(duration: str, params: dict[str, np.ndarray], j: np.ndarray):
    """First and second derivatives of ``log P(j)`` in each parameter, per state and j."""
    if duration == "poisson":
        lam = params["dwell_rate"][:, None]
        return [j / lam - 1.0], [[-j / lam ** 2 + 0.0 * lam]]
    mu = params["dwell_rate"][:, None]
    r = params["dwell_shape"][:, None]
    s = r + mu
    i = j[:-1]
    pad = np.zeros((mu.shape[0], 1))

    def upto(terms):  # sum over i < j, for every j
        return np.concatenate([pad, np.cumsum(terms, axis=1)], axis=1)

    # the differences of digamma and trigamma at j + r and r, and the terms of the same
    # order beside them, written without cancellation for a large shape
    du_r = upto((mu - i) / ((r + i) * s)) - _log1p_gap(mu / r)
    v_rr = upto((i - mu) * (2 * r + i + mu) / (s ** 2 * (r + i) ** 2)) + mu ** 2 / (r * s ** 2)
    du_mu = np.where(j == 0, 0.0, j / mu) - (r + j) / s
    v_mumu = -j / mu ** 2 + (r + j) / s ** 2
    v_mur = (j - mu) / s ** 2
    return [du_mu, du_r], [[v_mumu, v_mur], [v_mur, v_rr]]


def _log1p_gap(x: np.ndarray) -> np.ndarray:
    """``log1p(x) - x / (1 + x)`` (>= 0), by its series where the difference would cancel."""
    x = np.asarray(x, dtype=float)
    series = x ** 2 / 2 - 2 * x ** 3 / 3 + 3 * x ** 4 / 4 - 4 * x ** 5 / 5
    with np.errstate(invalid="ignore"):
        direct = np.log1p(x) - x / (1 + x)
    return np.where(x < 1e-3, series, direct)
