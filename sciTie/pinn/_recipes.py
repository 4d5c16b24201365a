"""The one set of defaults of every problem: generic ones, and those the bundled problems
recommend (measured on a 2-core CPU where a comment says so; see benchmarks/pinn_periodic.py
and docs/pinn.rst). :class:`PeriodicPINN` and the ``pinn`` recipe both read them here."""
from __future__ import annotations

from functools import partial
from typing import Any

from ..errors import ValidationError

__all__ = ["recommended_settings", "bundled_settings", "RECIPE_PROBLEMS", "RECOMMENDABLE",
           "GENERIC"]

RECIPE_PROBLEMS = ("convection", "allen-cahn", "taylor-green", "allen-cahn-2d",
                   "kuramoto-sivashinsky", "gray-scott")

#: Settings of a problem without recommendations of its own: one small network over the
#: whole interval, a short Adam warm-up, then Levenberg-Marquardt (Gauss-Newton) iterations.
GENERIC: dict[str, Any] = dict(
    n_windows=1, hidden=(32, 32), n_modes=2, activation="tanh", architecture="mlp",
    n_collocation=1024, n_initial=256, n_boundary=256, ic_weight=10.0, bc_weight=1.0,
    adam_steps=500, learning_rate=3e-3, lr_decay=0.9, lr_decay_steps=500, lbfgs_steps=0,
    lm_steps=40, resample_every=100, lm_resample_every=0, eval_grid=None, window_budget=())
#: The generic settings shrunk for a demo (``--quick``; seconds, much lower accuracy).
GENERIC_QUICK: dict[str, Any] = dict(hidden=(16, 16), adam_steps=100, lm_steps=5,
                                     n_collocation=256, n_initial=64)

#: The :class:`PeriodicPINN` settings a problem may recommend (their constructor default is
#: None: "the problem's recommendation, else :data:`GENERIC`").
RECOMMENDABLE = tuple(GENERIC)


def bundled_settings(problem: str, *, mode: str = "hard", quick: bool = False,
                     inverse: bool = False) -> dict[str, Any]:
    """What a bundled problem recommends on top of :data:`GENERIC` (see
    :func:`recommended_settings`)."""
    if problem not in RECIPE_PROBLEMS:
        raise ValidationError(f"problem must be one of {RECIPE_PROBLEMS}; got {problem!r}")
    if problem == "convection":
        # measured (hard, beta = 50): 7.2e-4 in 217 s of CPU (one thread; docs/pinn.rst)
        kw: dict[str, Any] = dict(n_windows=10, hidden=(32, 32), n_modes=1, adam_steps=200,
                                  learning_rate=3e-3, lm_steps=60, n_collocation=2000,
                                  n_initial=256, ic_weight=100.0)
        if quick:
            kw.update(n_windows=5, hidden=(16, 16), adam_steps=80, lm_steps=8,
                      n_collocation=400, n_initial=128, learning_rate=5e-3)
        if inverse:
            kw.update(n_windows=1, hidden=(24, 24), adam_steps=400, learning_rate=5e-3,
                      lm_steps=40, n_collocation=1024, ic_weight=10.0)
    elif problem == "allen-cahn":
        # measured (hard, 2026-12-07, one thread, load 6-10): 5.1e-5 in 957 s of CPU
        # (`scitie fit allen-cahn --json out.json`; issue 24's goal 1e-4 in 1200 s); the
        # first window carries the kink of x^2 cos(pi x) at x = +-1 and its error into every
        # later window, so it gets 4 times the steps (the second twice). Before: uniform
        # windows, 512 IC points, one LM point set: 2.5e-4 in 535 s (docs/pinn.rst)
        kw = dict(n_windows=20, hidden=(32, 32), n_modes=8, adam_steps=150, learning_rate=3e-3,
                  lm_steps=25, n_collocation=1500, n_initial=2048, ic_weight=100.0,
                  lm_resample_every=5, window_budget=(4.0, 2.0), eval_grid=(512, 201))
        if quick:
            kw.update(n_windows=4, hidden=(16, 16), n_modes=4, adam_steps=60, lm_steps=6,
                      n_collocation=400, n_initial=128, lm_resample_every=0, window_budget=(),
                      eval_grid=(256, 101))
        if inverse:
            kw.update(n_windows=1, hidden=(32, 32), n_modes=6, adam_steps=500, lm_steps=80,
                      n_collocation=1536, n_initial=256, ic_weight=10.0, lm_resample_every=0,
                      window_budget=(), eval_grid=(256, 101))
    elif problem == "taylor-green":
        # measured (hard): 5.4e-4 (velocity) in 114 s of CPU
        kw = dict(n_windows=1, hidden=(32, 32), n_modes=2, adam_steps=500, learning_rate=3e-3,
                  lm_steps=60, n_collocation=1500, n_initial=256, ic_weight=10.0)
        if quick:
            kw.update(hidden=(16, 16), n_modes=1, adam_steps=100, lm_steps=6,
                      n_collocation=300, n_initial=64, eval_grid=(24, 24, 5))
    elif problem == "kuramoto-sivashinsky":
        # measured (hard, 2026-12-07, one thread, load 3-7): 5.4e-4 (target 1e-3) over
        # JAXPI's first window in 337 s of CPU (`scitie fit kuramoto-sivashinsky --json
        # out.json`); shaped like Allen-Cahn's (time marching, Fourier modes for the
        # fourth-order term)
        kw = dict(n_windows=5, hidden=(32, 32), n_modes=6, adam_steps=200, learning_rate=3e-3,
                  lm_steps=30, n_collocation=1500, n_initial=512, ic_weight=100.0,
                  eval_grid=(256, 101))
        if quick:
            kw.update(n_windows=2, hidden=(16, 16), n_modes=4, adam_steps=60, lm_steps=6,
                      n_collocation=400, n_initial=128, eval_grid=(128, 21))
        if inverse:
            kw.update(n_windows=1, adam_steps=500, lm_steps=60)
    elif problem == "gray-scott":
        # measured (hard, 2026-12-07): 0.41 (u 0.37, v 0.73) in 603 s of CPU, 40 times the
        # issue's 1e-2; the first window alone is as far off (0.37): the fast start (v
        # decays at rate b2 = 100) is not learnt; ic_weight=1e4 made the whole run worse
        # (0.61 in 743 s); on the first window 8 harmonics, the modified MLP, denser points
        # and shorter windows leave 0.19-0.41 (2026-12-07). What was tried: docs/pinn.rst
        kw = dict(n_windows=10, hidden=(32, 32), n_modes=4, adam_steps=200, learning_rate=3e-3,
                  lm_steps=20, n_collocation=2000, n_initial=1024, ic_weight=100.0,
                  eval_grid=(64, 64, 21))
        if quick:
            kw.update(n_windows=2, hidden=(16, 16), n_modes=2, adam_steps=60, lm_steps=4,
                      n_collocation=300, n_initial=128, eval_grid=(24, 24, 5))
    else:  # allen-cahn-2d
        kw = dict(n_windows=5, hidden=(32, 32), n_modes=4, adam_steps=300, learning_rate=3e-3,
                  lm_steps=30, n_collocation=2000, n_initial=512, ic_weight=100.0)
        if quick:
            kw.update(n_windows=2, hidden=(16, 16), n_modes=2, adam_steps=60, lm_steps=5,
                      n_collocation=300, n_initial=128, eval_grid=(24, 24, 5))
    if inverse and problem in ("taylor-green", "allen-cahn-2d", "gray-scott"):
        kw.update(n_windows=1)
    if quick and inverse:
        kw.update(adam_steps=150, lm_steps=10, n_collocation=400)
    if mode != "hard":
        # convection (beta = 50) needs a periodicity penalty as strong as the initial condition
        # (Adam + L-BFGS recipe: weight 1 gave soft/shared 6.7e-2 / 1.6e-1, weight 100 gave
        # 5.3e-3 / 1.4e-2; for Allen-Cahn weight 100 made soft worse: 0.19 against 9.4e-2)
        kw["bc_weight"] = kw["ic_weight"] if problem == "convection" else 1.0
    return kw


def settings_of(name: str) -> Any:
    """The ``settings`` a bundled problem's factory attaches to its :class:`PDEProblem`."""
    return partial(bundled_settings, name)


def recommended_settings(problem: Any, *, mode: str = "hard", quick: bool = False,
                         inverse: bool = False) -> dict[str, Any]:
    """The settings :class:`PeriodicPINN` uses for a problem when it is not given them.

    :data:`GENERIC` (one network, Adam then Levenberg-Marquardt), overridden by what the
    problem recommends (:attr:`PDEProblem.settings`). The bundled problems recommend time
    marching (windows that each get their own small network, started from the previous one's
    weights) with a short Adam warm-up followed by Levenberg-Marquardt (Gauss-Newton)
    iterations in float64, and a large initial-condition weight: on networks of a few
    thousand weights the Gauss-Newton steps reach residuals that Adam and L-BFGS do not.
    Inverse problems (observations everywhere) use one window. A recipe of the problem uses
    exactly these settings (``[quick]`` asks for ``quick=True``).

    Parameters
    ----------
    problem : PDEProblem or str
        The problem, or the name of a bundled one (``"convection"``, ``"allen-cahn"``,
        ``"taylor-green"``, ``"allen-cahn-2d"``).
    mode : {"hard", "soft", "shared"}, optional
        Periodicity mode (default ``"hard"``).
    quick : bool, optional
        A budget small enough for a demo (seconds); accuracy is then much lower.
    inverse : bool, optional
        Settings for learning coefficients or periods from observations (one window).

    Returns
    -------
    dict
        Keyword arguments for :class:`PeriodicPINN` (``mode`` included).
    """
    base = dict(GENERIC)
    if quick:
        base.update(GENERIC_QUICK)
    if isinstance(problem, str):
        own = bundled_settings(problem, mode=mode, quick=quick, inverse=inverse)
    elif hasattr(problem, "settings") and hasattr(problem, "residual"):
        # a PDEProblem, told by what it has (the problems module builds on this one)
        spec = problem.settings
        if spec is None:
            own = {}
        elif callable(spec):
            own = spec(mode=mode, quick=quick, inverse=inverse)
        else:
            own = dict(spec)
        if not isinstance(own, dict):
            raise ValidationError(f"problem {problem.name!r}: settings must give a dict; got "
                                  f"{type(own).__name__}")
    else:
        raise ValidationError(f"problem must be a PDEProblem or the name of a bundled problem "
                              f"{RECIPE_PROBLEMS}; got {problem!r}")
    unknown = sorted(set(own) - set(RECOMMENDABLE))
    if unknown:
        raise ValidationError(f"problem settings {unknown} are not settings a problem can "
                              f"recommend ({', '.join(RECOMMENDABLE)})")
    return {**base, **own, "mode": mode}
