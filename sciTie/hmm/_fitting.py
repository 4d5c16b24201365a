"""Fitting recipes shared by the CLI, the notebook and the tests: seeded restarts."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validation import check_int
from ..errors import ValidationError
from ._models import TiedGaussianHMM, TiedPoissonHMM
from ._tying import _counts, linear_scheme

__all__ = ["fit_poisson_restarts", "fit_linear_scheme"]


def fit_poisson_restarts(X, n_components: int, *, n_restarts: int = 10, n_iter: int = 2000,
                         tol: float = 1e-10, random_state: int = 0, **kwargs
                         ) -> TiedPoissonHMM:
    """Best of several seeded Baum-Welch runs of a :class:`TiedPoissonHMM`.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        Counts.
    n_components : int
        Number of states.
    n_restarts : int, optional
        Number of seeds tried (``random_state``, ``random_state + 1``, ...).
    n_iter, tol : optional
        EM budget and tolerance of each run.
    random_state : int, optional
        First seed.
    **kwargs
        Passed to :class:`TiedPoissonHMM` (e.g. ``tied_states``).

    Returns
    -------
    TiedPoissonHMM
        The run with the highest log-likelihood.
    """
    n_restarts = check_int(n_restarts, "n_restarts", minimum=1)
    random_state = check_int(random_state, "random_state", minimum=0)
    best, best_ll = None, -np.inf
    for seed in range(random_state, random_state + n_restarts):
        m = TiedPoissonHMM(n_components, n_iter=n_iter, tol=tol, random_state=seed,
                           **kwargs).fit(X)
        ll = m.score(X)
        if ll > best_ll:
            best, best_ll = m, ll
    return best


def fit_linear_scheme(X, group_sizes: Sequence[int], *, n_restarts: int = 1,
                      n_iter: int = 300, tol: float = 1e-3, random_state: int = 0,
                      levels: Sequence[float] | None = None, transmat=None, tied: bool = True
                      ) -> TiedGaussianHMM:
    """Fit a linear (tridiagonal) scheme with one Gaussian level per block of states.

    Parameters
    ----------
    X : array-like, shape (n_samples, 1)
        The record.
    group_sizes : sequence of int
        States per level, in order along the line (e.g. ``[3, 2]`` for C-C-C-O-O).
    n_restarts : int, optional
        Seeded restarts (perturbed initial exit probabilities); the best is returned.
    n_iter, tol : optional
        EM budget and tolerance.
    random_state : int, optional
        First seed.
    levels : sequence of float, optional
        Initial level of each block; default: evenly spaced quantiles of ``X``.
    transmat : ndarray, optional
        Initial transition matrix (its zeros are kept); default from
        :func:`~sciTie.hmm.linear_scheme`.
    tied : bool, optional
        False fits the same topology with one emission distribution per state.

    Returns
    -------
    TiedGaussianHMM
        The best fitted model.
    """
    sizes = _counts(group_sizes, "group_sizes")  # 2.7 refused, not truncated to 2
    n_restarts = check_int(n_restarts, "n_restarts", minimum=1)
    random_state = check_int(random_state, "random_state", minimum=0)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValidationError(f"X must have shape (n_samples, 1) (one recorded signal), got "
                              f"shape {X.shape}; reshape a 1-D record with X[:, None]")
    X = TiedGaussianHMM(1)._validate_X(X, None)[0]
    n_levels = len(sizes)
    K = sum(sizes)
    if levels is None:
        levels = np.quantile(X[:, 0], (np.arange(n_levels) + 0.5) / n_levels)
    levels = np.asarray(levels, dtype=float)
    if levels.shape != (n_levels,) or not np.all(np.isfinite(levels)):
        raise ValidationError(f"levels must be {n_levels} finite numbers (one per block of "
                              f"group_sizes), got {levels.tolist()}")
    if transmat is not None:
        transmat = np.array(transmat, dtype=float)
        if transmat.shape != (K, K):
            raise ValidationError(f"transmat must have shape ({K}, {K}) for group_sizes "
                                  f"{sizes}, got {transmat.shape}")
    best, best_ll = None, -np.inf
    for seed in range(random_state, random_state + n_restarts):
        spec = linear_scheme(sizes, random_state=seed if n_restarts > 1 else None)
        K = spec.n_components
        m = TiedGaussianHMM(K, init_params="", n_iter=n_iter, tol=tol,
                            tied_states=spec.tied_states if tied else None)
        m.startprob_ = spec.startprob
        m.transmat_ = spec.transmat if transmat is None else np.array(transmat, dtype=float)
        m.means_ = np.repeat(levels, sizes)[:, None]
        m.covars_ = np.full((K, 1), X.var() / max(4.0, n_levels ** 2))
        m.fit(X)
        ll = m.score(X)
        if ll > best_ll:
            best, best_ll = m, ll
    return best
