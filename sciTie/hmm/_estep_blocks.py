"""Building blocks of the compiled E-step: constants, Gaussian emissions, log-space steps.

* the **Gaussian emissions** of a chunk are evaluated straight from ``X`` in state-major
  arrays (the lanes module hands them a chunk's (step, lane) pairs as rows);
* the **log-space steps** redo a forward or smoothing step whose normaliser or predicted
  probability is too small to keep precision (one lane at a time: they are rare).

The recursions themselves are in :mod:`sciTie.hmm._estep_lanes`, the drivers in
:mod:`sciTie.hmm._estep_kernels`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["TABLE", "GAUSSIAN", "MAX_BLOCKS"]

#: Emission sources of the kernels.
TABLE = 0      # log-probabilities given as a table
GAUSSIAN = 1   # diagonal Gaussians evaluated from X

#: Floating-point licences for the hot loops: reassociation (vectorised sums) and fused
#: multiply-add, but no assumptions about NaN or infinity (the guards rely on them).
_FAST = {"reassoc", "contract", "nsz"}
#: Below this normaliser a forward step is recomputed in log space.
_GUARD = 1e-250
#: Predicted probabilities below this are not divided by in the backward pass.
_TINY = 1e-280
#: Most blocks of sequences (their statistics are kept apart, then summed in order).
MAX_BLOCKS = 64


# ---------------------------------------------------------------------- emissions
# The arrays are state-major, ``(n_states, rows)``: these loops run over the rows and
# vectorise.
@njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
def _gaussian_block(XT, n, means, prec, const, lpT):
    """``lpT[k, i] = log N(x_i | means[k], diag(0.5 / prec[k]))`` from ``XT = X[block].T``.

    ``const[k]`` is the state's normalising constant, ``prec = 0.5 / var``.
    """
    K, D = means.shape
    for k in range(K):
        c = const[k]
        for i in range(n):
            lpT[k, i] = c
        for d in range(D):
            m = means[k, d]
            p = prec[k, d]
            for i in range(n):
                diff = XT[d, i] - m
                lpT[k, i] -= diff * diff * p


# ---------------------------------------------------------------------- guarded steps
@njit(cache=True, nogil=True, error_model="numpy")
def _guarded_step(lpT, i, pred, out):
    """A forward step in log space from column ``i`` of ``lpT``; returns ``log c`` (NaN
    when nothing can emit)."""
    K = pred.shape[0]
    m = -np.inf
    for j in range(K):
        if pred[j] > 0.0:
            v = np.log(pred[j]) + lpT[j, i]
            if v > m:
                m = v
    if not m > -np.inf:
        return np.nan
    s = 0.0
    for j in range(K):
        if pred[j] > 0.0:
            s += np.exp(np.log(pred[j]) + lpT[j, i] - m)
    logc = m + np.log(s)
    for j in range(K):
        out[j] = np.exp(np.log(pred[j]) + lpT[j, i] - logc) if pred[j] > 0.0 else 0.0
    return logc



@njit(cache=True, nogil=True, error_model="numpy")
def _log_space_smooth(a, A, g, pred, r, gnew, xi_full):
    """One smoothing step where some predicted probability is too small to divide by.

    Column ``j``'s share ``alpha_t(i) A_ij / pred_j`` (the probability of coming from ``i``
    given the next state ``j``) is computed in log space for those columns. Contributions
    go to ``gnew`` and, complete (with ``A``), to ``xi_full``.
    """
    K = g.shape[0]
    for i in range(K):
        gnew[i] = 0.0
    for j in range(K):
        if not g[j] > 0.0:
            continue
        if pred[j] >= _TINY:
            for i in range(K):
                w = a[i] * A[i, j] * r[j]
                gnew[i] += w
                xi_full[i, j] += w
            continue
        m = -np.inf
        for i in range(K):
            if a[i] > 0.0 and A[i, j] > 0.0:
                v = np.log(a[i]) + np.log(A[i, j])
                if v > m:
                    m = v
        if not m > -np.inf:
            continue
        s = 0.0
        for i in range(K):
            if a[i] > 0.0 and A[i, j] > 0.0:
                s += np.exp(np.log(a[i]) + np.log(A[i, j]) - m)
        for i in range(K):
            if a[i] > 0.0 and A[i, j] > 0.0:
                w = np.exp(np.log(a[i]) + np.log(A[i, j]) - m) / s * g[j]
                gnew[i] += w
                xi_full[i, j] += w
