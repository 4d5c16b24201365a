"""Least squares whose Jacobian is block-arrow shaped: shared columns plus per-pattern blocks.

A parametric refinement of N patterns has free parameters ``s`` shared by every pattern (the
coefficients of laws in temperature) and ``l_i`` that belong to pattern i alone (scale,
background, displacement). Pattern i's residuals depend on ``(s, l_i)`` only, so the
Jacobian is

    [ J_1s  J_1l                 ]
    [ J_2s        J_2l           ]
    [ ...               ...      ]
    [ J_Ns                  J_Nl ]

and the normal matrix ``JᵀJ`` is block-arrow shaped. Its pieces are sums over patterns, so
each pattern's contribution (:func:`pattern_blocks`: ``A_ll = J_lᵀJ_l``, ``A_ls = J_lᵀJ_s``,
``A_ss = J_sᵀJ_s``, ``g_l = J_lᵀr``, ``g_s = J_sᵀr``, χ²) can be computed where the pattern
lives (another process, a Dask worker) and reduced later (:func:`reduce_blocks`). A damped
Gauss-Newton (Levenberg-Marquardt) step eliminates the local blocks through the Schur
complement on the shared block::

    S = A_ss + λD_s - Σ_i A_ls,iᵀ (A_ll,i + λD_l,i)⁻¹ A_ls,i
    S δs = -(g_s - Σ_i A_ls,iᵀ (A_ll,i + λD_l,i)⁻¹ g_l,i)
    δl_i = -(A_ll,i + λD_l,i)⁻¹ (g_l,i + A_ls,i δs)

which costs O(N p_l³ + p_s³) time and O(N p_l² + p_s²) memory instead of O((N p_l + p_s)³)
and O((N p_l + p_s)²) for the dense normal equations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve

from ..core.marquardt import cholesky, damped

__all__ = ["PatternBlocks", "pattern_blocks", "reduce_blocks", "schur_step", "dense_step",
           "block_covariance", "assemble_dense"]


@dataclass
class PatternBlocks:
    """One pattern's pieces of the normal equations (plain arrays: cheap to send)."""

    A_ll: np.ndarray      # (p_l, p_l)
    A_ls: np.ndarray      # (p_l, p_s)
    A_ss: np.ndarray      # (p_s, p_s)
    g_l: np.ndarray       # (p_l,)
    g_s: np.ndarray       # (p_s,)
    chi2: float
    n: int


def pattern_blocks(J_s: np.ndarray, J_l: np.ndarray, r: np.ndarray) -> PatternBlocks:
    """Normal-equation pieces of one pattern from its Jacobian columns and residuals.

    Parameters
    ----------
    J_s : (n, p_s) ndarray
        Derivatives of the residuals with respect to the shared parameters.
    J_l : (n, p_l) ndarray
        Derivatives with respect to the pattern's own parameters.
    r : (n,) ndarray
        Weighted residuals.
    """
    return PatternBlocks(A_ll=J_l.T @ J_l, A_ls=J_l.T @ J_s, A_ss=J_s.T @ J_s, g_l=J_l.T @ r,
                         g_s=J_s.T @ r, chi2=float(r @ r), n=int(r.size))


def reduce_blocks(blocks: list[PatternBlocks]) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Sum of the shared pieces: ``Σ A_ss``, ``Σ g_s``, total χ² and number of residuals."""
    A_ss = sum(b.A_ss for b in blocks)
    g_s = sum(b.g_s for b in blocks)
    return A_ss, g_s, float(sum(b.chi2 for b in blocks)), int(sum(b.n for b in blocks))


def schur_step(blocks: list[PatternBlocks], lam: float, D_s: np.ndarray,
               D_l: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The damped Gauss-Newton step by the Schur complement on the shared block.

    ``D_s``, ``D_l`` are the diagonal scalings of the damping (Marquardt: the diagonals of
    the normal matrix). Returns ``δs`` and the ``δl_i``.
    """
    A_ss, g_s, _, _ = reduce_blocks(blocks)
    S = damped(A_ss, D_s, lam)
    rhs = -g_s.copy()
    facs = []
    for b, d in zip(blocks, D_l):
        if b.A_ll.size == 0:
            facs.append(None)
            continue
        f = cholesky(damped(b.A_ll, d, lam))
        facs.append(f)
        X = cho_solve(f, np.column_stack([b.A_ls, b.g_l]), check_finite=False)
        S -= b.A_ls.T @ X[:, :-1]
        rhs += b.A_ls.T @ X[:, -1]
    ds = cho_solve(cholesky(S), rhs, check_finite=False) if S.size else np.zeros(0)
    dl = []
    for b, f in zip(blocks, facs):
        if f is None:
            dl.append(np.zeros(0))
        else:
            dl.append(-cho_solve(f, b.g_l + b.A_ls @ ds, check_finite=False))
    return ds, dl


def assemble_dense(blocks: list[PatternBlocks]) -> tuple[np.ndarray, np.ndarray]:
    """The full normal matrix and gradient, ordered ``[s, l_1, ..., l_N]`` (for comparison)."""
    p_s = blocks[0].A_ss.shape[0]
    sizes = [b.A_ll.shape[0] for b in blocks]
    n = p_s + sum(sizes)
    A = np.zeros((n, n))
    g = np.zeros(n)
    A_ss, g_s, _, _ = reduce_blocks(blocks)
    A[:p_s, :p_s] = A_ss
    g[:p_s] = g_s
    o = p_s
    for b, k in zip(blocks, sizes):
        A[o:o + k, o:o + k] = b.A_ll
        A[o:o + k, :p_s] = b.A_ls
        A[:p_s, o:o + k] = b.A_ls.T
        g[o:o + k] = b.g_l
        o += k
    return A, g


def dense_step(blocks: list[PatternBlocks], lam: float, D_s: np.ndarray,
               D_l: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The same step from the dense normal equations of size ``p_s + Σ p_l`` (reference)."""
    A, g = assemble_dense(blocks)
    D = np.concatenate([D_s] + list(D_l))
    delta = cho_solve(cholesky(damped(A, D, lam)), -g, check_finite=False)
    p_s = len(D_s)
    out, o = [], p_s
    for d in D_l:
        out.append(delta[o:o + len(d)])
        o += len(d)
    return delta[:p_s], out


class SingularSharedBlock(np.linalg.LinAlgError):
    """The Schur complement of the shared block is singular: some combination of the shared
    parameters is not determined by the data. ``undetermined`` holds the indices (into the
    shared block) that carry the null directions."""

    def __init__(self, undetermined: list[int]):
        super().__init__(f"shared parameters {undetermined} are not determined")
        self.undetermined = undetermined


def _inverse_or_raise(S: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Inverse of the symmetric Schur complement, or :class:`SingularSharedBlock`.

    Judged after scaling to unit diagonal, so that coefficients of very different sizes (a
    T² term next to a constant) are not mistaken for undetermined ones.
    """
    S = 0.5 * (S + S.T)
    d = np.diag(S).copy()
    if not np.all(np.isfinite(S)) or np.any(d <= 0):
        bad = np.flatnonzero(~(d > 0)) if np.any(d <= 0) else np.arange(len(d))
        raise SingularSharedBlock([int(i) for i in bad])
    scale = 1.0 / np.sqrt(d)
    w, V = np.linalg.eigh(S * np.outer(scale, scale))
    null = w <= rtol * len(w)
    if null.any():
        raise SingularSharedBlock([int(i) for i in
                                   np.flatnonzero(np.abs(V[:, null]).max(axis=1) > 0.1)])
    return (V * (scale[:, None] / w)) @ (V.T * scale)


def block_covariance(blocks: list[PatternBlocks]):
    """Covariance ``(JᵀJ)⁻¹`` in blocks: shared, shared-local and local-local per pattern.

    Returns ``C_ss`` (p_s, p_s), and per pattern ``C_sl`` (p_s, p_l) and ``C_ll`` (p_l, p_l),
    from the block inverse of the arrow matrix (no dense N·p matrix is formed).
    """
    A_ss, _, _, _ = reduce_blocks(blocks)
    S = A_ss.copy()
    W = []   # A_ll⁻¹ A_ls
    facs = []
    for b in blocks:
        if b.A_ll.size == 0:
            W.append(np.zeros((0, A_ss.shape[0])))
            facs.append(None)
            continue
        f = cholesky(b.A_ll)
        facs.append(f)
        Wi = cho_solve(f, b.A_ls, check_finite=False)
        W.append(Wi)
        S -= b.A_ls.T @ Wi
    C_ss = _inverse_or_raise(S) if S.size else np.zeros((0, 0))
    C_sl, C_ll = [], []
    for b, f, Wi in zip(blocks, facs, W):
        if f is None:
            C_sl.append(np.zeros((A_ss.shape[0], 0)))
            C_ll.append(np.zeros((0, 0)))
            continue
        Ainv = cho_solve(f, np.eye(b.A_ll.shape[0]), check_finite=False)
        C_sl.append(-C_ss @ Wi.T)
        C_ll.append(Ainv + Wi @ C_ss @ Wi.T)
    return C_ss, C_sl, C_ll, W
