"""Sequence lengths of stacked observations, checked once for every HMM path (in process
and on Dask workers)."""
from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError, ValidationError

__all__ = ["check_lengths", "check_sample_matrix"]


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


def check_sample_matrix(value, name: str, columns: str) -> np.ndarray:
    """``value`` as a 2-D array of real numbers, one row per sample, or an error naming
    ``name`` (``columns`` names the second axis in messages: "n_features")."""
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise ValidationError(f"{name} must be a rectangular array of shape (n_samples, "
                              f"{columns}); its rows have different lengths") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ArgumentTypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ArgumentTypeError(f"{name} must hold real numbers, got complex values "
                                f"({arr.dtype})")
    if arr.ndim != 2:
        raise ValidationError(f"{name} must be 2-D with shape (n_samples, {columns}), got "
                              f"shape {arr.shape}; reshape a single column with {name}[:, None]")
    return arr
