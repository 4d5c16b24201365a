"""How many BLAS threads a fit's linear algebra gets.

A least-squares fit's matrix products (``JᵀJ``, ``J·G``, a covariance's SVD) are usually an
``n x p`` Jacobian with ``p`` small: a millisecond or less on one thread. OpenBLAS's worker
threads spin-wait around each such product, and on a busy machine a product waits for a
thread that is not running: measured on this project's 2-core machine with other work on it,
one pattern's normal-equation blocks of a parametric series (a 2751 x 28 Jacobian) took
85 ms with two BLAS threads against 0.3-0.8 ms with one, and the whole CuCr2O4 sequential
series 133 s of CPU against 36 s (``docs/diffraction.rst``, performance). Products
large enough to profit from threads keep the threads the user has.
"""
from __future__ import annotations

import contextlib

from threadpoolctl import threadpool_limits

__all__ = ["THREADED_FROM", "blas_threads_for"]

#: Columns (free parameters of one linear system) from which BLAS keeps its threads.
THREADED_FROM = 256


def blas_threads_for(n_columns: int):
    """Context manager: one BLAS thread for linear algebra on fewer than
    :data:`THREADED_FROM` columns; the user's setting otherwise.

    Parameters
    ----------
    n_columns : int
        The width of the largest matrix the work factorises or multiplies by its transpose
        (the free parameters of a dense fit; a parametric series' shared plus one pattern's
        own parameters).
    """
    if n_columns >= THREADED_FROM:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
