"""How many BLAS threads a fit's linear algebra gets.

A least-squares fit's matrix products (``JᵀJ``, ``J·G``, a covariance's SVD) are usually an
``n x p`` Jacobian with ``p`` small: a millisecond or less on one thread. OpenBLAS's worker
threads spin-wait around each such product, and on a busy machine a product waits for a
thread that is not running: measured on this project's 2-core machine with other work on it,
one pattern's normal-equation blocks of a parametric series (a 2751 x 28 Jacobian) took
85 ms with two BLAS threads against 0.3-0.8 ms with one, and the whole CuCr2O4 sequential
series 133 s of CPU against 36 s (``docs/diffraction.rst``, performance). Products
large enough to profit from threads keep the threads the user has.

Finding the thread pools means reading the process's memory map and matching every loaded
library: 3 to 9 ms with torch, numba and scipy loaded, about a third of a 2000-row HMM fit.
The pools found are kept (:func:`one_thread`) and looked for again only when a module has
been imported since, which is how a new BLAS or OpenMP library gets loaded.
"""
from __future__ import annotations

import contextlib
import sys
import threading

from threadpoolctl import ThreadpoolController

__all__ = ["THREADED_FROM", "blas_threads_for", "one_thread"]

# the thread pools of this process, with the number of imported modules when they were
# found (a cache of what is loaded, not of any fit's state)
_POOLS: dict = {}
_POOLS_LOCK = threading.Lock()


def _controller() -> ThreadpoolController:
    n_modules = len(sys.modules)
    with _POOLS_LOCK:
        if _POOLS.get("n_modules") != n_modules:
            _POOLS["controller"] = ThreadpoolController()
            _POOLS["n_modules"] = n_modules
        return _POOLS["controller"]


def one_thread(user_api: str | None = None):
    """Context manager: the thread pools (of ``user_api``, ``"blas"`` or ``"openmp"``; all
    when None) limited to one thread, and restored on exit."""
    return _controller().limit(limits=1, user_api=user_api)


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
    return one_thread("blas")
