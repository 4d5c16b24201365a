"""Settings measured to work on a 2-core CPU (see benchmarks/pinn_periodic.py)."""
from __future__ import annotations

from typing import Any

from ..errors import ValidationError

__all__ = ["recommended_settings", "RECIPE_PROBLEMS"]

RECIPE_PROBLEMS = ("convection", "allen-cahn", "taylor-green", "allen-cahn-2d")


def recommended_settings(problem: str, *, mode: str = "hard", quick: bool = False,
                         inverse: bool = False) -> dict[str, Any]:
    """Keyword arguments for :class:`PeriodicPINN` that work for a bundled problem.

    Forward problems use time marching (windows that each get their own small network, started
    from the previous one's weights) with a short Adam warm-up followed by Levenberg-Marquardt
    (Gauss-Newton) iterations in float64, and a large initial-condition weight: on networks of
    a few thousand weights the Gauss-Newton steps reach residuals that Adam and L-BFGS do not.
    Inverse problems (observations everywhere) use one window.

    Parameters
    ----------
    problem : {"convection", "allen-cahn", "taylor-green", "allen-cahn-2d"}
        Problem name.
    mode : {"hard", "soft", "shared"}, optional
        Periodicity mode (default ``"hard"``).
    quick : bool, optional
        A budget small enough for a demo (seconds); accuracy is then much lower.
    inverse : bool, optional
        Settings for learning coefficients from observations (one window).

    Returns
    -------
    dict
    """
    if problem not in RECIPE_PROBLEMS:
        raise ValidationError(f"problem must be one of {RECIPE_PROBLEMS}; got {problem!r}")
    if problem == "convection":
        # measured (hard, beta = 50): 7.2e-4 in 217 s of CPU (one thread; docs/pinn.rst)
        kw: dict[str, Any] = dict(n_windows=10, hidden=(32, 32), adam_steps=200,
                                  learning_rate=3e-3, lm_steps=60, n_collocation=2000,
                                  n_initial=256, ic_weight=100.0)
        if quick:
            kw.update(n_windows=5, hidden=(16, 16), adam_steps=80, lm_steps=8,
                      n_collocation=400, n_initial=128, learning_rate=5e-3)
        if inverse:
            kw.update(n_windows=1, hidden=(24, 24), adam_steps=400, learning_rate=5e-3,
                      lm_steps=40, n_collocation=1024, ic_weight=10.0)
    elif problem == "allen-cahn":
        # measured (hard): 2.5e-4 in 380 s of CPU (6.3 minutes, one thread); with 200 Adam +
        # 40 LM steps and 2000 points per window: 2.6e-4 in 679 s
        kw = dict(n_windows=20, hidden=(32, 32), n_modes=8, adam_steps=150, learning_rate=3e-3,
                  lm_steps=25, n_collocation=1500, n_initial=512, ic_weight=100.0,
                  eval_grid=(512, 201))
        if quick:
            kw.update(n_windows=4, hidden=(16, 16), n_modes=4, adam_steps=60, lm_steps=6,
                      n_collocation=400, n_initial=128, eval_grid=(256, 101))
        if inverse:
            kw.update(n_windows=1, hidden=(32, 32), n_modes=6, adam_steps=500, lm_steps=80,
                      n_collocation=1536, n_initial=256, ic_weight=10.0, eval_grid=(256, 101))
    elif problem == "taylor-green":
        # measured (hard): 5.4e-4 (velocity) in 114 s of CPU
        kw = dict(n_windows=1, hidden=(32, 32), n_modes=2, adam_steps=500, learning_rate=3e-3,
                  lm_steps=60, n_collocation=1500, n_initial=256, ic_weight=10.0)
        if quick:
            kw.update(hidden=(16, 16), n_modes=1, adam_steps=100, lm_steps=6,
                      n_collocation=300, n_initial=64, eval_grid=(24, 24, 5))
    else:  # allen-cahn-2d
        kw = dict(n_windows=5, hidden=(32, 32), n_modes=4, adam_steps=300, learning_rate=3e-3,
                  lm_steps=30, n_collocation=2000, n_initial=512, ic_weight=100.0)
        if quick:
            kw.update(n_windows=2, hidden=(16, 16), n_modes=2, adam_steps=60, lm_steps=5,
                      n_collocation=300, n_initial=128, eval_grid=(24, 24, 5))
    if inverse and problem in ("taylor-green", "allen-cahn-2d"):
        kw.update(n_windows=1)
    if quick and inverse:
        kw.update(adam_steps=150, lm_steps=10, n_collocation=400)
    kw["mode"] = mode
    if mode != "hard":
        # convection (beta = 50) needs a periodicity penalty as strong as the initial condition
        # (Adam + L-BFGS recipe: weight 1 gave soft/shared 6.7e-2 / 1.6e-1, weight 100 gave
        # 5.3e-3 / 1.4e-2; for Allen-Cahn weight 100 made soft worse: 0.19 against 9.4e-2)
        kw["bc_weight"] = kw["ic_weight"] if problem == "convection" else 1.0
    return kw
