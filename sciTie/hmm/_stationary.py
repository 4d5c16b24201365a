"""The stationary distribution of a transition matrix and its derivative.

``start_distribution="stationary"`` makes ``startprob`` this function of ``transmat`` in the
model's group (:meth:`sciTie.ParameterGroup.constrain_function`), so the M-step maximises the
start term through the transition probabilities like any other tie: its gradient reaches
``transmat`` through G.
"""
from __future__ import annotations

import numpy as np

from ..errors import ValidationError

__all__ = ["stationary_distribution", "stationary_jacobian"]

#: Beyond this condition number the chain has no unique stationary distribution (it is
#: reducible, or numerically so).
_MAX_CONDITION = 1e12


def _matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    K = int(round(np.sqrt(x.size)))
    if K * K != x.size:
        raise ValidationError(f"a transition matrix has K*K entries, got {x.size}")
    return x.reshape(K, K)


def stationary_distribution(x: np.ndarray) -> np.ndarray:
    """π with π T = π and Σ π = 1, for the transition matrix ``T`` (flattened in ``x``).

    Solves ``π (I - T + 1 1ᵀ) = 1ᵀ``, which has one solution exactly when the chain has one
    stationary distribution (one closed class of states).
    """
    T = _matrix(x)
    K = T.shape[0]
    A = np.eye(K) - T + 1.0
    if np.linalg.cond(A) > _MAX_CONDITION:
        raise ValidationError("start_distribution='stationary' needs a transition matrix with "
                              "one stationary distribution; this one is reducible (states that "
                              "never reach each other): use start_distribution='free'")
    return np.linalg.solve(A.T, np.ones(K))


def stationary_jacobian(x: np.ndarray) -> np.ndarray:
    """``d π_k / d T_ij = π_i Z_jk`` with ``Z = (I - T + 1 1ᵀ)⁻¹``, shape ``(K, K*K)``.

    From differentiating ``π A = 1ᵀ``: ``dπ A = π dT``; exact in every direction, also those
    that leave the rows' sums (the group's ties keep them at one).
    """
    T = _matrix(x)
    K = T.shape[0]
    pi = stationary_distribution(x)
    Z = np.linalg.inv(np.eye(K) - T + 1.0)
    # column i*K + j holds pi_i * Z[j, :]
    return (pi[:, None, None] * Z[None, :, :]).reshape(K * K, K).T
