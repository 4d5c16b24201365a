"""The periodic boundary condition as a tie, in the ParameterGroup vocabulary."""
from __future__ import annotations

import math

import numpy as np

from ..core import ParameterGroup

__all__ = ["periodic_tie_group"]


def periodic_tie_group(mode: str, n_times: int, *, bc_weight: float = 1.0,
                       name: str = "periodic_boundary") -> ParameterGroup:
    """Describe how a mode ties ``u(a, t_i)`` to ``u(b, t_i)`` at ``n_times`` boundary times.

    Slots ``u_left[i]``, ``u_right[i]``, ``ux_left[i]``, ``ux_right[i]`` are the traces of
    ``u`` and ``u_x`` at the two ends. The modes differ only in their tie matrix ``G``:

    - ``"hard"``: ``u_right`` and ``ux_right`` are tied to ``u_left`` and ``ux_left``
      (``2 n`` free values; the periodic embedding realises this tie exactly);
    - ``"shared"``: both ends are tied to a shared boundary trace ``g[i]``, ``gx[i]`` (the
      boundary network's outputs; ``2 n`` free values). In torch the tie is one sub-network
      read at both ends, and autograd's sum over both uses is ``G.T @ grad``;
    - ``"soft"``: no tie (``4 n`` free values); instead the jumps ``jump[i]`` and
      ``jump_x[i]`` (expression parameters) carry restraints to 0 whose weights reproduce the
      penalty ``bc_weight * (mean(jump**2) + mean(jump_x**2))``.

    Parameters
    ----------
    mode : {"hard", "soft", "shared"}
        Periodicity mode.
    n_times : int
        Number of boundary times.
    bc_weight : float, optional
        Weight of the soft penalty (only used for ``"soft"``).
    name : str, optional
        Group name.

    Returns
    -------
    sciTie.ParameterGroup
    """
    if mode not in ("hard", "soft", "shared"):
        raise ValueError(f"mode must be 'hard', 'soft' or 'shared'; got {mode!r}")
    if isinstance(n_times, bool) or int(n_times) != n_times or n_times < 1:
        raise ValueError(f"n_times must be a positive integer; got {n_times!r}")
    n = int(n_times)
    g = ParameterGroup(name)
    for key, what in (("u_left", "u(a, t_i)"), ("u_right", "u(b, t_i)"),
                      ("ux_left", "u_x(a, t_i)"), ("ux_right", "u_x(b, t_i)")):
        g.add(key, np.zeros(n), description=what)
    if mode == "hard":
        g.tie("u_right", to="u_left")
        g.tie("ux_right", to="ux_left")
    elif mode == "shared":
        g.add("g", np.zeros(n), description="shared boundary value g(t_i)")
        g.add("gx", np.zeros(n), description="shared boundary slope g_x(t_i)")
        for end in ("left", "right"):
            g.tie(f"u_{end}", to="g")
            g.tie(f"ux_{end}", to="gx")
    else:
        if not (math.isfinite(bc_weight) and bc_weight > 0):
            raise ValueError(f"bc_weight must be positive for mode='soft'; got {bc_weight!r}")
        sigma = math.sqrt(n / bc_weight)
        for i in range(n):
            for jump, pre in (("jump", "u"), ("jump_x", "ux")):
                g.add(f"{jump}_{i}", expr=f"{pre}_right[{i}] - {pre}_left[{i}]")
                g.restrain(f"{jump}_{i}", target=0.0, sigma=sigma)
    return g
