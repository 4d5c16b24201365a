"""The periodic boundary condition as a tie, in the ParameterGroup vocabulary."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core import ParameterGroup
from ..errors import ValidationError

__all__ = ["periodic_tie_group", "window_group"]


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
        raise ValidationError(f"mode must be 'hard', 'soft' or 'shared'; got {mode!r}")
    if isinstance(n_times, bool) or int(n_times) != n_times or n_times < 1:
        raise ValidationError(f"n_times must be a positive integer; got {n_times!r}")
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
            raise ValidationError(f"bc_weight must be positive for mode='soft'; got {bc_weight!r}")
        sigma = math.sqrt(n / bc_weight)
        for i in range(n):
            for jump, pre in (("jump", "u"), ("jump_x", "ux")):
                g.add(f"{jump}_{i}", expr=f"{pre}_right[{i}] - {pre}_left[{i}]")
                g.restrain(f"{jump}_{i}", target=0.0, sigma=sigma)
    return g


def window_group(problem, *, mode: str, n_modes: int, learn: dict[str, float],
                 periods: dict[str, float], trainable_periods: bool,
                 boundary: dict[str, Any] | None = None,
                 name: str = "pinn") -> ParameterGroup:
    """The parameters of one time window that are shared or tied, as one ParameterGroup.

    Trained through :class:`sciTie.core.torch.TiedParameters`: its free vector is the leaf
    tensor and every slot is computed from it in the forward pass, so autograd honours each
    tie exactly (the gradient of the free vector is ``G^T`` times the slot gradient).

    - every PDE coefficient (free when learnt from observations, ``learn``), read by the
      residual as ``f.parameters[name]``; a learnt coefficient the problem declares
      ``positive`` is the expression ``exp(log_<name>)`` of a free ``log_<name>``;
    - in hard mode, the period ``period_<c>`` of each periodic coordinate (when
      ``trainable_periods``, ``exp(log_period_<c>)`` of a free ``log_period_<c>``: a period
      cannot reach zero) and the K harmonic frequencies of its embedding,
      ``frequency_<c>[0] = 2 pi / period_<c>`` and ``frequency_<c>[k] = (k + 1)
      frequency_<c>[0]``: one free period shared by all the features of the coordinate;
    - in shared mode, the weights of the boundary network of each periodic coordinate
      (``boundary_<c>``), the network both faces are tied to.

    The hard mode's periodicity itself is not a tie in this group: it is an identity of the
    embedding (cos and sin of the coordinate), exact by construction.

    Parameters
    ----------
    problem : PDEProblem
        Coefficients and periodic coordinates.
    mode : {"hard", "soft", "shared"}
        Periodicity mode.
    n_modes : int
        Harmonics per periodic coordinate.
    learn : dict
        Learnt coefficients and their starting values.
    periods : dict
        Starting period per periodic coordinate.
    trainable_periods : bool
        Whether the periods are free.
    boundary : dict, optional
        Shared-mode boundary networks by coordinate.
    name : str, optional
        Group name (default ``"pinn"``).

    Returns
    -------
    ParameterGroup
    """
    from ..core import Parameter
    from ..core.torch import group_from_module

    group = ParameterGroup(name, description=f"periodic PINN, problem {problem.name!r}")
    for name, value in problem.parameters.items():
        learnt = name in learn
        unit = problem.units.get(name, "")
        if learnt and name in problem.positive:
            # positive by its physics: trained through its logarithm, so it cannot change sign
            group.add(Parameter(f"log_{name}", math.log(float(learn[name])),
                                description=f"natural logarithm of {name} (learnt)"))
            group.add(Parameter(name, float(learn[name]), expr=f"exp(log_{name})", unit=unit,
                                description="PDE coefficient (learnt, positive)"))
            continue
        group.add(Parameter(name, float(learn.get(name, value)), vary=learnt, unit=unit,
                            description="PDE coefficient" + (" (learnt)" if learnt else "")))
    if mode == "hard":
        for c in problem.periodic:
            p = f"period_{c}"
            if trainable_periods:
                # a period is positive: trained through its logarithm, it cannot reach or cross
                # zero (where the embedding's frequency 2 pi / period would flip sign)
                group.add(Parameter(f"log_{p}", math.log(float(periods[c])),
                                    description=f"natural logarithm of the period of {c}"))
                group.add(Parameter(p, float(periods[c]), expr=f"exp(log_{p})",
                                    unit=problem.units.get(c, ""),
                                    description=f"period of {c} (learnt)"))
            else:
                group.add(Parameter(p, float(periods[c]), vary=False,
                                    unit=problem.units.get(c, ""),
                                    description=f"period of {c}"))
            w = 2.0 * math.pi / float(periods[c])
            group.add(Parameter(f"frequency_{c}", w * np.arange(1, n_modes + 1),
                                description=f"harmonic frequencies of the {c} embedding"))
            group.constrain(f"frequency_{c}[0]", f"2 * pi / {p}")
            for k in range(1, n_modes):
                group.tie(f"frequency_{c}[{k}]", to=f"frequency_{c}[0]", scale=k + 1.0)
    else:
        for c in problem.periodic:
            group.add(Parameter(f"period_{c}", float(periods[c]), vary=False,
                                unit=problem.units.get(c, ""), description=f"period of {c}"))
    for c, module in (boundary or {}).items():
        group.add_group(group_from_module(module, f"boundary_{c}"))
    return group
