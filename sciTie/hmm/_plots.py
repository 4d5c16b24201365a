"""Figures a practitioner expects of an HMM fit: the decoded record and dwell times."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_float, check_int
from ..errors import ArgumentTypeError, ValidationError

__all__ = ["plot_decoded", "plot_dwell_times", "dwell_times", "level_dwell_distribution"]


def dwell_times(levels: np.ndarray) -> dict[int, np.ndarray]:
    """Lengths of the runs of equal values in ``levels``, per value.

    Parameters
    ----------
    levels : ndarray of int, shape (n_samples,)
        A level sequence (e.g. the Viterbi group path).

    Returns
    -------
    dict of int to ndarray
        Run lengths (in samples) for each level; the first and last runs are dropped
        (censored).
    """
    levels = np.asarray(levels)
    if levels.ndim != 1 or levels.size == 0 or not np.issubdtype(levels.dtype, np.integer):
        raise ValidationError(f"levels must be a non-empty 1-D sequence of integer levels, got "
                              f"{levels.dtype} array of shape {levels.shape}")
    change = np.flatnonzero(np.diff(levels)) + 1
    starts = np.r_[0, change]
    lengths = np.diff(np.r_[starts, levels.size])
    vals = levels[starts]
    keep = slice(1, -1) if len(starts) > 2 else slice(0, 0)
    return {int(v): lengths[keep][vals[keep] == v] for v in np.unique(levels)}


def _stationary(A: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eig(A.T)
    p = np.real(v[:, np.argmin(np.abs(w - 1))])
    p = np.abs(p)
    return p / p.sum()


def level_dwell_distribution(transmat: np.ndarray, states, d_max: int) -> np.ndarray:
    """P(dwell = d), d = 1..d_max, of an observed level made of ``states`` (phase type).

    A visit to the level enters its states with the stationary flux from outside,
    ``π_in ∝ Σ_{i ∉ L} p_i A_{i, L}``, moves inside with the sub-matrix ``A_LL`` and leaves
    with ``1 - A_LL 1``: ``P(d) = π_in A_LL^(d-1) (1 - A_LL 1)``.
    """
    A = np.asarray(transmat, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.all(np.isfinite(A)) or np.any(A < 0):
        raise ValidationError(f"transmat must be a square matrix of probabilities, got shape "
                              f"{A.shape}")
    L = np.asarray(states)
    if L.ndim != 1 or L.size == 0 or not np.issubdtype(L.dtype, np.integer) \
            or np.any(L < 0) or np.any(L >= A.shape[0]):
        raise ValidationError(f"states must be a non-empty list of state indices "
                              f"0..{A.shape[0] - 1}, got {np.asarray(states).tolist()}")
    d_max = check_int(d_max, "d_max", minimum=1)
    outside = np.setdiff1d(np.arange(A.shape[0]), L)
    p = _stationary(A)
    flux = p[outside] @ A[np.ix_(outside, L)] if outside.size else np.ones(L.size)
    if flux.sum() <= 0:
        return np.zeros(d_max)
    v = flux / flux.sum()
    sub = A[np.ix_(L, L)]
    leave = 1.0 - sub.sum(axis=1)
    out = np.empty(d_max)
    for d in range(d_max):
        out[d] = v @ leave
        v = v @ sub
    return out


def _time_axis(n: int, time: Any) -> np.ndarray:
    if time is None:
        return np.arange(n, dtype=float)
    try:
        t = np.asarray(time, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"time must be an array of numbers, got "
                                f"{type(time).__name__}") from None
    if t.size != n:
        raise ValidationError(f"time must have one value per sample ({n}), got {t.size}")
    if not np.all(np.isfinite(t)):
        raise ValidationError("time must be finite (it holds NaN or infinite values)")
    return t


def _check_axes(ax, needed: int, what: str):
    """``ax`` as an array of matplotlib Axes (``needed`` at least), or None."""
    if ax is None:
        return None
    axes = np.atleast_1d(np.asarray(ax, dtype=object))
    if not all(callable(getattr(a, "plot", None)) for a in axes.ravel()):
        raise ArgumentTypeError(f"ax must be a matplotlib Axes or an array of them, got "
                                f"{type(ax).__name__}")
    if axes.size < needed:
        raise ValidationError(f"ax: {what} needs {needed} Axes, got {axes.size}")
    return ax


def plot_decoded(model, X, lengths=None, *, ax=None, time=None, time_unit: str = "samples",
                 max_points: int = 5000, feature: int = 0):
    """Observations with the labelled Viterbi path and the state posteriors underneath."""
    import matplotlib.pyplot as plt

    max_points = check_int(max_points, "max_points", minimum=1)
    feature = check_int(feature, "feature", minimum=0)
    _check_axes(ax, 1, "plot")
    Xv, lengths = model._validate_X(X, lengths)
    if feature >= Xv.shape[1]:
        raise ValidationError(f"feature must be below the {Xv.shape[1]} features of X, got "
                              f"{feature}")
    n = Xv.shape[0]
    t = _time_axis(n, time)
    post = model.predict_proba(Xv, lengths)
    _, path = model.decode(Xv, lengths, algorithm="viterbi")
    w = slice(0, min(int(max_points), n))
    if ax is None:
        _, ax = plt.subplots(2, 1, figsize=(10, 5), sharex=True,
                             gridspec_kw={"height_ratios": [2, 1]})
    axes = np.atleast_1d(ax)
    top = axes[0]
    y = Xv[:, feature] if Xv.ndim == 2 else Xv
    top.plot(t[w], y[w], lw=0.5, color="0.55", label="observed")
    level = model._state_level(feature)
    top.step(t[w], level[path][w], where="mid", lw=1.2, color="C3", label="Viterbi path")
    groups = model.state_to_group_
    for g in np.unique(groups[path[w]]):
        states = np.flatnonzero(groups == g)
        top.axhline(level[states[0]], lw=0.4, ls=":", color="C3")
        top.annotate(f"level {g} (states {', '.join(map(str, states))})",
                     (t[w][-1], level[states[0]]), fontsize=7, ha="right", va="bottom")
    top.set_ylabel("observation")
    top.legend(loc="upper left", fontsize=8, frameon=False)
    if axes.size > 1:
        bottom = axes[1]
        bottom.stackplot(t[w], post[w].T, labels=[f"state {k}" for k in range(post.shape[1])])
        bottom.set_ylim(0, 1)
        bottom.set_ylabel("P(state | data)")
        bottom.set_xlabel(f"time ({time_unit})")
        bottom.legend(loc="upper right", fontsize=7, ncol=min(post.shape[1], 5), frameon=False)
    else:
        top.set_xlabel(f"time ({time_unit})")
    return axes if axes.size > 1 else top


def plot_dwell_times(model, X, lengths=None, *, ax=None, dt: float = 1.0,
                     time_unit: str = "samples", levels=None, bins: int = 30):
    """Dwell-time histograms of the decoded levels with the fitted dwell distribution.

    Each observed level (a tied group of states) gets the histogram of its Viterbi dwell
    times in physical time (``dt`` per sample) and, overlaid, the model's own distribution
    of dwell times in that level (the model's ``_level_dwell_distribution``) scaled to the
    number of dwells: for a single state of an HMM a geometric law, for an aggregated level a
    phase-type law (:func:`level_dwell_distribution`), for a semi-Markov state its dwell pmf.
    """
    import matplotlib.pyplot as plt

    try:
        dt = check_float(dt, "dt", minimum=0.0, low_open=True)
    except ValidationError:
        raise ValidationError(f"dt must be a positive time step, got {dt!r}") from None
    bins = check_int(bins, "bins", minimum=2)
    Xv, lengths = model._validate_X(X, lengths)
    _, path = model.decode(Xv, lengths, algorithm="viterbi")
    groups = model.state_to_group_
    runs = dwell_times(groups[path])
    if levels is None:
        levels = sorted(runs)
    else:
        levels = [check_int(g, "levels", minimum=0, maximum=model.n_groups_ - 1)
                  for g in (levels if isinstance(levels, (list, tuple, np.ndarray)) else [levels])]
    _check_axes(ax, len(levels), "one panel per level")
    if ax is None:
        _, ax = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.4), squeeze=False)
        ax = ax[0]
    axes = np.atleast_1d(ax)
    for a, g in zip(axes, levels):
        d = runs.get(g, np.array([], dtype=int))
        states = np.flatnonzero(groups == g)
        d_max = int(max(d.max(initial=1), 10) * 1.5)
        edges = np.unique(np.round(np.logspace(0, np.log10(d_max + 1), bins)).astype(int))
        a.hist(d * dt, bins=edges * dt, histtype="step", lw=1.2, label="Viterbi dwells")
        pd = model._level_dwell_distribution(states, d_max + 1)
        expected = np.array([pd[lo - 1:hi - 1].sum() for lo, hi in zip(edges[:-1], edges[1:])])
        centres = np.sqrt(edges[:-1] * edges[1:]) * dt
        a.plot(centres, expected * d.size, "o-", ms=3, lw=1, label="fitted model")
        a.set_xscale("log")
        a.set_xlabel(f"dwell time ({time_unit})")
        a.set_ylabel("dwells per bin")
        a.set_title(f"level {g} (states {', '.join(map(str, states))})", fontsize=9)
        a.legend(fontsize=7, frameon=False)
    return axes
