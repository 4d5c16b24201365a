"""Sequence lengths of stacked observations, checked once for every HMM path (in process
and on Dask workers)."""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError, ValidationError

__all__ = ["check_lengths"]


def check_lengths(lengths, n: int) -> np.ndarray:
    """``lengths`` checked against ``n`` rows of X, as int64 (None: one sequence)."""
    if lengths is None:
        return np.array([n], dtype=np.int64)
    lengths_arr = np.asarray(lengths)
    if lengths_arr.ndim != 1 or lengths_arr.size == 0:
        raise ValidationError(f"lengths must be a non-empty 1-D sequence of sequence "
                              f"lengths, got shape {lengths_arr.shape}")
    if not np.issubdtype(lengths_arr.dtype, np.integer):
        if (np.issubdtype(lengths_arr.dtype, np.floating)
                and np.all(lengths_arr == np.round(lengths_arr))):
            lengths_arr = lengths_arr.astype(np.int64)
        else:
            raise ArgumentTypeError(f"lengths must hold integers, got dtype "
                                    f"{lengths_arr.dtype}")
    if (lengths_arr <= 0).any():
        raise ValidationError(f"lengths must be positive, got {lengths_arr.tolist()[:10]}")
    if int(lengths_arr.sum()) != n:
        raise ValidationError(f"lengths sum to {int(lengths_arr.sum())} but X has {n} "
                              "rows; the sequence lengths must add up to len(X)")
    return lengths_arr.astype(np.int64)
