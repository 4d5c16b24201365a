"""Map-reduce on a Dask cluster: the helpers every distributed sciTie fit is built from.

A distributed fit keeps its data where they were put once (:class:`PlacedData`), runs one
picklable function per item there (:func:`map_collect`), and sums the small results in a tree
on the workers (:func:`tree_reduce`, :func:`map_reduce`), so that only parameters go out and
only sums come back. The scheduler already re-runs the tasks of a lost worker and recomputes
data it can rebuild (data loaded on the workers, dask collections); data scattered from the
client cannot be rebuilt by the scheduler, so :class:`PlacedData` keeps the client's copy and
scatters it again, and the helpers resubmit what depended on it. Results are summed in a fixed
order (item order, fixed fan-in), so they do not depend on which worker ran what.

``dask.distributed`` is optional: nothing here imports it before a client is given.
"""
from __future__ import annotations

import numbers
from concurrent.futures import CancelledError
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import ValidationError

__all__ = ["require_distributed", "check_client", "client_threads", "OnWorker", "PlacedData",
           "map_collect", "map_reduce", "map_items", "tree_reduce", "add_additive",
           "LostDataError"]

#: Future states after which a result must be produced again.
_LOST = ("cancelled", "lost")
#: Default number of partial results combined by one reduction task.
FAN_IN = 8


class LostDataError(RuntimeError):
    """Data on the cluster were lost more often than the recovery budget allows."""


def require_distributed():
    """Import :mod:`distributed`, with an installation hint when it is missing.

    Returns
    -------
    module
        The :mod:`distributed` package.
    """
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - dask is a test dependency
        raise ImportError("a Dask cluster needs dask.distributed: pip install "
                          "'scitie[dask]' (or dask[distributed])") from err
    return distributed


def check_client(client: Any, name: str = "client"):
    """Check that ``client`` is a running, synchronous :class:`distributed.Client`.

    Parameters
    ----------
    client : object
        The value given for the argument.
    name : str, optional
        The argument's name, used in the error message.

    Returns
    -------
    distributed.Client
        ``client`` itself.

    Raises
    ------
    ValidationError
        If ``client`` is not a connected, synchronous ``dask.distributed.Client``.
    """
    distributed = require_distributed()
    if not isinstance(client, distributed.Client):
        raise ValidationError(f"{name} must be a dask.distributed.Client (or None to run in "
                              f"this process), got {type(client).__name__}")
    if client.asynchronous:
        raise ValidationError(f"{name} is an asynchronous Client; pass a synchronous one "
                              "(Client(..., asynchronous=False))")
    if client.status != "running":
        raise ValidationError(f"{name} is not connected (status {client.status!r}); start "
                              "it or pass a running Client")
    return client


def client_threads(client) -> int:
    """Total number of worker threads of ``client``'s cluster (at least 1)."""
    return max(1, int(sum(client.nthreads().values())))


class OnWorker:
    """A picklable recipe ``func(*args, **kwargs)`` that :class:`PlacedData` runs on a worker.

    Use it for data a worker can load itself (a file on storage the workers share): the data
    then never pass through the client, and the scheduler rebuilds them on another worker if
    the one holding them is lost.

    Parameters
    ----------
    func : callable
        A module-level (picklable) function.
    *args, **kwargs
        Its arguments (small and picklable: paths, row ranges).
    """

    def __init__(self, func: Callable, *args, **kwargs):
        self.func, self.args, self.kwargs = func, args, kwargs

    def __call__(self):
        return self.func(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        return f"OnWorker({getattr(self.func, '__name__', self.func)!r}, {self.args!r})"


def _run_recipe(recipe: OnWorker):
    return recipe()


def _hold(value):
    """Identity: a small value submitted through it can be recomputed by the scheduler."""
    return value


class PlacedData:
    """Items kept on the workers of a client, put there once and re-placed when lost.

    Each item is placed according to its kind:

    * :class:`OnWorker` recipe: run on a worker (the data never pass through the client;
      the scheduler rebuilds them elsewhere when their worker is lost);
    * dask collection (``dask.delayed``, a dask array chunk ...): computed on the cluster
      and kept there (rebuilt from its graph when lost);
    * anything else: scattered from the client, which keeps a reference so that
      :meth:`recover` can scatter it again after a worker loss.

    Parameters
    ----------
    client : distributed.Client
        The cluster's client.
    items : sequence
        The items, in order.
    name : str
        Prefix of the task keys (seen on the dashboard).

    Attributes
    ----------
    futures : list of distributed.Future
        One future per item, in order.
    n_recovered : int
        Number of items placed again because their worker was lost.
    """

    def __init__(self, client, items: Sequence, *, name: str):
        self.client = client
        self.items = list(items)
        self.name = name
        self.n_recovered = 0
        self._placements = 0  # makes the keys of every placement unique
        self.futures: list = [None] * len(self.items)
        self._place(range(len(self.items)))

    def _place(self, indices: Iterable[int]) -> None:
        import dask

        indices = list(indices)
        self._placements += 1
        scatter = [i for i in indices
                   if not isinstance(self.items[i], OnWorker)
                   and not dask.is_dask_collection(self.items[i])]
        for i in indices:
            item = self.items[i]
            if isinstance(item, OnWorker):
                self.futures[i] = self.client.submit(_run_recipe, item, pure=False,
                                                     key=(self.name, self._placements, i))
            elif dask.is_dask_collection(item):
                self.futures[i] = self.client.compute(item)
        if scatter:
            placed = self.client.scatter([self.items[i] for i in scatter], hash=False)
            for i, fut in zip(scatter, placed):
                self.futures[i] = fut

    def __len__(self) -> int:
        return len(self.items)

    def recover(self) -> int:
        """Place again every item whose data were lost; return how many were.

        Returns
        -------
        int
            Number of items placed again.
        """
        lost = [i for i, fut in enumerate(self.futures) if fut.status in _LOST]
        if lost:
            self._place(lost)
            self.n_recovered += len(lost)
        return len(lost)

    def release(self) -> None:
        """Release the items on the cluster (the client's references are dropped)."""
        for fut in self.futures:
            if fut is not None:
                fut.release()
        self.futures = [None] * len(self.items)

    def __enter__(self) -> "PlacedData":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _wait_all(futures) -> None:
    """Wait until no future is pending (a cancelled one does not end the wait early)."""
    distributed = require_distributed()
    pending = [f for f in futures if f.status == "pending"]
    while pending:
        try:
            distributed.wait(pending)
        except CancelledError:
            pass
        pending = [f for f in pending if f.status == "pending"]


def _raise_first_error(futures, name: str) -> None:
    for i, fut in enumerate(futures):
        if fut.status == "error":
            err = fut.exception()
            if hasattr(err, "add_note"):
                err.add_note(f"(raised by task {i} of {name!r} on the Dask cluster)")
            raise err


def map_collect(client, func: Callable, data: PlacedData, *args, name: str,
                max_recoveries: int = 3, item_args: Sequence[tuple] | None = None,
                **kwargs) -> list:
    """Run ``func(item, *args, **kwargs)`` for every placed item; wait for all.

    Tasks whose inputs were lost with a worker are resubmitted after :meth:`PlacedData.recover`
    has placed the data again; tasks of a lost worker whose inputs survive are re-run by the
    scheduler itself.

    Parameters
    ----------
    client : distributed.Client
        The cluster's client.
    func : callable
        A module-level function; its first argument is the item's data.
    data : PlacedData or sequence of distributed.Future
        The placed items, or the futures of an earlier map (kept on the workers: e.g.
        per-pattern factorisations reused for a back-substitution).
    *args, **kwargs
        Further arguments (futures of small shared values, e.g. the model parameters).
    name : str
        Prefix of the task keys; must be unique among the tasks alive on the cluster.
    max_recoveries : int, optional
        How many rounds of lost data to survive.
    item_args : sequence of tuple, optional
        Arguments that differ between items, one tuple per item, passed right after the
        item: ``func(item, *item_args[i], *args, **kwargs)`` (small values that change
        every iteration, such as each item's slice of the parameters; they travel inside
        the tasks).

    Returns
    -------
    list of distributed.Future
        Finished futures, one per item, kept on the workers.

    Raises
    ------
    Exception
        The first error a task raised, unchanged (with a note naming the task).
    LostDataError
        If data were still being lost after ``max_recoveries`` rounds.
    """
    return _collect(client, func, data, args, kwargs, name, max_recoveries, None, item_args)


def _check_item_args(item_args, n: int) -> list:
    if item_args is None:
        return [()] * n
    item_args = [tuple(a) for a in item_args]
    if len(item_args) != n:
        raise ValidationError(f"item_args: expected one tuple per item ({n}), got "
                              f"{len(item_args)}")
    return item_args


def _collect(client, func, data, args, kwargs, name, max_recoveries, results, item_args=None):
    results = list(results) if results is not None else [None] * len(data)
    item_args = _check_item_args(item_args, len(results))
    for round_ in range(max_recoveries + 1):
        if isinstance(data, PlacedData):
            data.recover()
            inputs = data.futures
        else:  # futures of earlier results: the scheduler rebuilds what it can
            inputs = list(data)
        for i, fut in enumerate(results):
            if fut is None or fut.status in _LOST:
                results[i] = client.submit(func, inputs[i], *item_args[i], *args, pure=False,
                                           key=(name, round_, i), **kwargs)
        _wait_all(results)
        _raise_first_error(results, name)
        if all(f.status == "finished" for f in results):
            return results
    raise LostDataError(f"{name}: data were lost with workers in {max_recoveries + 1} "
                        "consecutive rounds; is the cluster losing workers continually?")


def tree_reduce(client, futures: Sequence, combine: Callable | None = None, *, name: str,
                fan_in: int = FAN_IN):
    """Combine futures in a tree of tasks on the workers, in a fixed order.

    Parameters
    ----------
    client : distributed.Client
        The cluster's client.
    futures : sequence of distributed.Future
        The partial results, in order.
    combine : callable, optional
        ``combine(*parts)`` returning one result of the same kind (default
        :func:`add_additive`).
    name : str
        Prefix of the task keys.
    fan_in : int, optional
        Number of parts combined by one task (>= 2).

    Returns
    -------
    distributed.Future
        The combined result (the only one left when ``futures`` has one element).
    """
    if fan_in < 2:
        raise ValidationError(f"fan_in must be at least 2, got {fan_in}")
    if not futures:
        raise ValidationError("tree_reduce needs at least one future")
    combine = add_additive if combine is None else combine
    level, depth = list(futures), 0
    while len(level) > 1:
        level = [client.submit(combine, *level[j:j + fan_in], pure=False,
                               key=(name, depth, j // fan_in))
                 for j in range(0, len(level), fan_in)]
        depth += 1
    return level[0]


def map_reduce(client, func: Callable, data: PlacedData, *args, name: str,
               combine: Callable | None = None, fan_in: int = FAN_IN,
               max_recoveries: int = 3, item_args: Sequence[tuple] | None = None, **kwargs):
    """``combine`` of ``func(item, *args, **kwargs)`` over all placed items, on the workers.

    The per-item results are tree-reduced on the workers and only the total comes back.
    Lost data are recovered as in :func:`map_collect`, also when a worker is lost during the
    reduction.

    Parameters
    ----------
    client : distributed.Client
        The cluster's client.
    func : callable
        A module-level function; its first argument is the item's data.
    data : PlacedData or sequence of distributed.Future
        The placed items, or futures of an earlier map.
    *args, **kwargs
        Further arguments of ``func``.
    name : str
        Prefix of the task keys; unique among the tasks alive on the cluster.
    combine : callable, optional
        Reduction of several results into one (default :func:`add_additive`).
    fan_in : int, optional
        Parts per reduction task.
    max_recoveries : int, optional
        How many rounds of lost data to survive.
    item_args : sequence of tuple, optional
        Per-item arguments, as in :func:`map_collect`.

    Returns
    -------
    object
        The reduced result, on the client.
    """
    results = None
    for round_ in range(max_recoveries + 1):
        results = _collect(client, func, data, args, kwargs, f"{name}-map-{round_}",
                           max_recoveries, results, item_args)
        total = tree_reduce(client, results, combine, name=f"{name}-sum-{round_}",
                            fan_in=fan_in)
        try:
            return total.result()
        except CancelledError:
            continue  # a worker died during the reduction and took data with it
    raise LostDataError(f"{name}: the reduction lost its inputs {max_recoveries + 1} times")


def map_items(client, func: Callable, items: Sequence, *args, name: str, retries: int = 0,
              **kwargs) -> list:
    """``[func(item, *args, **kwargs) for item in items]`` on the cluster, in order.

    For independent tasks whose inputs are small (paths, settings, a pattern's description):
    they travel inside the tasks, so a lost worker's tasks are simply re-run elsewhere.

    Parameters
    ----------
    client : distributed.Client
        The cluster's client.
    func : callable
        A module-level function.
    items : sequence
        One small, picklable item per task.
    *args, **kwargs
        Arguments shared by all tasks.
    name : str
        Prefix of the task keys.
    retries : int, optional
        Times a task that raised is retried (for transient failures such as a flaky file
        system); a lost worker does not count.

    Returns
    -------
    list
        The results, in the order of ``items``.
    """
    futures = [client.submit(func, item, *args, pure=False, retries=retries, key=(name, i),
                             **kwargs) for i, item in enumerate(items)]
    _wait_all(futures)
    _raise_first_error(futures, name)
    return client.gather(futures)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def add_additive(*parts):
    """Sum of several results: dicts of arrays and numbers (nested), arrays or numbers.

    Dicts must have the same keys; values are added key by key, in the order given.

    Parameters
    ----------
    *parts
        The results to add.

    Returns
    -------
    object
        Their sum, of the same structure.
    """
    first = parts[0]
    if isinstance(first, dict):
        keys = list(first)
        for p in parts[1:]:
            if not isinstance(p, dict) or set(p) != set(keys):
                raise ValueError("cannot add dicts with different keys: "
                                 f"{sorted(keys)} and {sorted(p) if isinstance(p, dict) else p}")
        return {k: add_additive(*(p[k] for p in parts)) for k in keys}
    if isinstance(first, np.ndarray) or _is_number(first):
        total = first.copy() if isinstance(first, np.ndarray) else first
        for p in parts[1:]:
            total = total + p
        return total
    raise TypeError(f"cannot add values of type {type(first).__name__}; additive results are "
                    "dicts of arrays and numbers")
