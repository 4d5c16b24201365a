"""Settings measured to work on a 2-core CPU (see benchmarks/pinn_periodic.py)."""
from __future__ import annotations

from typing import Any

__all__ = ["recommended_settings"]


def recommended_settings(problem: str, *, mode: str = "hard", quick: bool = False) -> dict[str, Any]:
    """Keyword arguments for :class:`PeriodicPINN` that work for a bundled problem.

    The recipe is time marching (windows that each get their own small network, started
    from the previous one's weights) with Adam followed by L-BFGS in float64, and a large
    initial-condition weight: the initial-condition error is what limits the accuracy. For
    convection, periodic time features (two harmonics, trainable period) on top.

    Parameters
    ----------
    problem : {"convection", "allen-cahn"}
        Problem name.
    mode : {"hard", "soft", "shared"}, optional
        Periodicity mode (default ``"hard"``).
    quick : bool, optional
        A budget small enough for a demo (about 20 s); accuracy is then much lower.

    Returns
    -------
    dict
    """
    if problem == "convection":
        kw: dict[str, Any] = dict(n_windows=10, hidden=(32, 32, 32), adam_steps=200,
                                  lbfgs_steps=500, n_collocation=1024, n_initial=256,
                                  ic_weight=100.0, learning_rate=1e-3,
                                  time_features="periodic", n_time_features=2)
        if quick:
            kw.update(time_features=None, hidden=(24, 24), adam_steps=80, lbfgs_steps=100, n_collocation=512,
                      n_initial=128)
    elif problem == "allen-cahn":
        # measured (hard): 2.8e-3 in 683 s; 10 windows, 4 harmonics, 300 + 700 steps: 6.8e-3 in 431 s
        kw = dict(n_windows=20, hidden=(48, 48, 48), n_modes=8, adam_steps=200,
                  lbfgs_steps=600, n_collocation=2048, n_initial=512, ic_weight=100.0,
                  learning_rate=1e-3)
        if quick:
            kw.update(n_windows=5, hidden=(24, 24), n_modes=4, adam_steps=60, lbfgs_steps=120,
                      n_collocation=512, n_initial=256)
    else:
        raise ValueError(f"problem must be 'convection' or 'allen-cahn'; got {problem!r}")
    kw["mode"] = mode
    if mode != "hard" and problem == "convection":
        # convection (beta = 50) needs a periodicity penalty as strong as the initial condition:
        # weight 1 gave soft/shared 6.7e-2 / 1.6e-1, weight 100 gave 5.3e-3 / 1.4e-2. For
        # Allen-Cahn weight 100 made soft worse (0.19 against 9.4e-2), so it keeps weight 1.
        kw["bc_weight"] = kw["ic_weight"]
    return kw
