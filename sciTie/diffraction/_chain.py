"""Where each pattern of a chained series refinement starts (in process and on a cluster)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["next_start"]


def next_start(previous: Sequence[dict], temperature: float) -> dict:
    """Where a chained refinement starts the pattern at ``temperature``: the last result's
    values, moved on along the line through the last two results (linear in temperature).

    In a temperature scan the refined values move smoothly, so the line predicts the next
    pattern's cell, strain and fractions several times closer (in esds) than the last result
    does, and its refinement needs fewer iterations. The line is used only for a step in the
    same direction as the last one and at most twice as long; otherwise, and with one
    result, the last result's values (see :func:`apply_values` for the bounds).
    """
    last = previous[-1]
    if len(previous) < 2:
        return dict(last["values"])
    before = previous[-2]
    span = last["temperature"] - before["temperature"]
    step = (temperature - last["temperature"]) / span if span != 0 else 0.0
    if not 0.0 < step <= 2.0:
        return dict(last["values"])
    old = before["values"]
    return {n: (v + step * (v - old[n]) if n in old and np.isfinite(old[n]) else v)
            for n, v in last["values"].items()}
