"""Baum-Welch, scores, decoding and posteriors of a tied HMM on a Dask cluster.

The sequences are cut into partitions of whole sequences, each placed on a worker once:
scattered from an in-memory ``X`` (the client keeps its copy to place it again if a worker
is lost), computed from a dask array, or read by the workers themselves from ``.npy``,
netCDF or zarr files. Every EM iteration then sends the model's parameters out, runs the
model's own E-step (``_do_estep``) on each partition where it lives, sums the per-partition
sufficient statistics in a tree on the workers, and runs the model's own M-step
(``_do_mstep``) once on the client. The statistics are additive over sequences; the value
each one starts from (hmmlearn starts some at a prior) is subtracted on the workers and
added back once on the client, so the sum is the in-process E-step's, to rounding. The one
exception is a model with covariate-dependent transitions: the logit's M-step needs each
row's expected departures (``_covariates.PER_ROW_STATISTICS``, n_samples x n_components), which
are put together in row order and brought to the client with the sums. Known states and
covariates travel with their partitions' rows.
Convergence is hmmlearn's monitor with the same ``tol``, ``n_iter`` and history.
"""
from __future__ import annotations

import copy
import logging
import operator
import os
import threading
import time
import uuid
from typing import NamedTuple

import numpy as np

from .. import _dask
from .._array_files import array_file_shape, read_array_rows
from .._config import config_context, get_config
from ..errors import DataFormatError, ValidationError
from ._sequences import check_lengths
from ._covariates import PER_ROW_STATISTICS
from . import _forward_backward as fb

__all__ = ["fit", "score", "predict", "predict_proba", "decoding", "HMMPartition",
           "PARTITION_WORK_BYTES", "INIT_ROWS"]

_log = logging.getLogger(__name__)

#: Working memory of the E-step aimed at per partition (data, emission log-probabilities,
#: forward lattice, scaled emissions); more partitions than worker threads only when larger.
PARTITION_WORK_BYTES = 128 * 2**20
#: Most rows gathered to the client to initialise a model from data that live on the
#: cluster (files, dask arrays). Smaller data sets are gathered whole, so the start equals
#: the in-process fit's; larger ones give whole leading sequences of evenly spread partitions.
INIT_ROWS = 200_000


class HMMPartition(NamedTuple):
    """Whole sequences kept on one worker."""

    X: np.ndarray
    lengths: np.ndarray
    start: int
    first_sequence: int
    origin: str
    #: The rows' known states (-1 where unknown), or None: they travel with the rows.
    known: np.ndarray | None = None
    #: The rows' covariates (covariate-dependent transitions), or None; likewise.
    covariates: np.ndarray | None = None


# ---------------------------------------------------------------------- planning
def _n_partitions(n_rows: int, n_features: int, n_states: int, n_sequences: int,
                  threads: int) -> int:
    """At least one partition per worker thread, more when one would exceed the work budget."""
    row_bytes = 8 * (n_features + 3 * n_states + 2)
    by_memory = -(-n_rows * row_bytes // PARTITION_WORK_BYTES)
    return int(max(1, min(n_sequences, max(threads, by_memory))))


def _split_sequences(lengths: np.ndarray, n_parts: int) -> list[tuple[int, int]]:
    """Consecutive sequence ranges ``[lo, hi)`` with about equal numbers of rows."""
    n_parts = max(1, min(n_parts, lengths.size))
    cum = np.concatenate([[0], np.cumsum(lengths)])
    targets = cum[-1] * np.arange(1, n_parts) / n_parts
    cuts = np.searchsorted(cum, targets)
    # move each cut to the nearer sequence boundary
    lower = np.clip(cuts - 1, 0, lengths.size)
    cuts = np.where(np.abs(cum[lower] - targets) <= np.abs(cum[cuts] - targets), lower, cuts)
    bounds = np.unique(np.clip(np.concatenate([[0], cuts, [lengths.size]]), 0, lengths.size))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class _Plan(NamedTuple):
    start: int  # global first row
    stop: int
    lengths: np.ndarray
    first_sequence: int
    known: np.ndarray | None = None
    covariates: np.ndarray | None = None


class _RowData(NamedTuple):
    """Per-row inputs in force besides ``X`` (None where absent), cut with the rows."""

    known: np.ndarray | None = None
    covariates: np.ndarray | None = None

    def rows(self, start: int, stop: int) -> dict:
        return {name: None if value is None else value[start:stop]
                for name, value in self._asdict().items()}


def _plans(lengths: np.ndarray, ranges, offset_rows: int = 0, offset_seq: int = 0,
           row_data: _RowData | None = None):
    """The partitions' plans; each carries its rows of the known states and covariates."""
    row_data = _RowData() if row_data is None else row_data
    cum = np.concatenate([[0], np.cumsum(lengths)])
    out = []
    for a, b in ranges:
        start, stop = offset_rows + int(cum[a]), offset_rows + int(cum[b])
        out.append(_Plan(start, stop, lengths[a:b], offset_seq + a,
                         **row_data.rows(start, stop)))
    return out


# ---------------------------------------------------------------------- worker functions
def _validated(validator, X, lengths, plan: _Plan, origin: str, path=None) -> HMMPartition:
    try:
        Xv, lv = validator._validate_X(X, lengths)
    except (TypeError, ValueError) as err:
        msg = f"{origin} (row numbers below count from the first of these rows): {err}"
        if path is not None:
            raise DataFormatError(msg, path=path) from err
        raise ValidationError(msg) from err
    return HMMPartition(Xv, lv, plan.start, plan.first_sequence, origin, plan.known,
                        plan.covariates)


def _load_file_partition(path: str, file_start: int, file_stop: int, plan: _Plan,
                         validator) -> HMMPartition:
    X = read_array_rows(path, file_start, file_stop)
    return _validated(validator, X, plan.lengths, plan,
                      f"rows {file_start}..{file_stop - 1} of {path}", path=path)


def _prepare_block(block, plan: _Plan, validator) -> HMMPartition:
    return _validated(validator, np.asarray(block), plan.lengths, plan,
                      f"X rows {plan.start}..{plan.stop - 1} (dask array)")


def _with_partition(model, part: HMMPartition):
    """A shallow copy of the worker's model for one task on ``part``, with the partition's
    known states and covariates in force (tasks on one worker share the model object)."""
    out = copy.copy(model)
    if part.known is not None:
        out._known = part.known
    if part.covariates is not None:
        out._covariates = part.covariates
    return out


def _restored(skeleton, params: dict):
    """The model for one task: the worker's copy of the skeleton with these parameters.

    Each worker holds one skeleton object for the whole fit; it also keeps one scratch
    workspace per worker thread, reused by every E-step of that thread (Dask's worker
    processes hand freed memory back to the system at once, so fresh lattices would be
    page-faulted in at every iteration).
    """
    model = copy.copy(skeleton)
    model.__dict__.update(params)
    scratch = skeleton.__dict__.setdefault("_scratch_per_thread", _Scratch())
    model._workspace = scratch.setdefault(threading.get_ident(), {})
    return model


class _Scratch(dict):
    """Per-thread scratch arrays; pickled empty (they never travel with the skeleton)."""

    def __reduce__(self):
        return (_Scratch, ())


def _reraise_impossible(err: Exception, part: HMMPartition):
    raise fb.ImpossibleObservationError(
        f"{part.origin} (row numbers below count from the first of these rows): {err}"
    ) from None


def _additive_part(stats: dict, base: dict) -> dict:
    """The statistics minus their starting values; every entry must be additive."""
    out = {}
    for key, value in stats.items():
        if not (isinstance(value, np.ndarray) or _dask._is_number(value)):
            raise TypeError(f"E-step statistic {key!r} is a {type(value).__name__}; only "
                            "arrays and numbers (sums over sequences) can be added up over "
                            "partitions")
        out[key] = value - base[key] if key in base else value
    return out


def _estep(part: HMMPartition, skeleton, params: dict) -> dict:
    model = _with_partition(_restored(skeleton, params), part)
    try:
        # the client's settings (hmm_threads), not the worker process's defaults
        with config_context(**getattr(skeleton, "_worker_settings", {})):
            stats, log_prob = model._do_estep(part.X, part.lengths)
    except fb.ImpossibleObservationError as err:
        _reraise_impossible(err, part)
    rows = {key: [stats.pop(key)] for key in PER_ROW_STATISTICS if key in stats}
    return {"stats": _additive_part(stats, model._initialize_sufficient_statistics()),
            "rows": rows, "log_prob": float(log_prob)}


def _combine_esteps(*parts: dict) -> dict:
    """Sum of partitions' E-steps; their per-row statistics are kept in row order."""
    out = _dask.add_additive(*({k: v for k, v in p.items() if k != "rows"} for p in parts))
    out["rows"] = {key: [block for p in parts for block in p["rows"][key]]
                   for key in parts[0]["rows"]}
    return out


def _loglik(part: HMMPartition, model) -> float:
    model = _with_partition(model, part)
    try:
        with config_context(**getattr(model, "_worker_settings", {})):
            return float(model._score(part.X, part.lengths, compute_posteriors=False)[0])
    except fb.ImpossibleObservationError as err:
        _reraise_impossible(err, part)


def _states(part: HMMPartition, model) -> np.ndarray:
    model = _with_partition(model, part)
    try:
        return np.asarray(model.decode(part.X, part.lengths)[1], dtype=np.int64)
    except fb.ImpossibleObservationError as err:
        _reraise_impossible(err, part)


def _posteriors(part: HMMPartition, model) -> np.ndarray:
    model = _with_partition(model, part)
    try:
        return model._score(part.X, part.lengths, compute_posteriors=True)[1]
    except fb.ImpossibleObservationError as err:
        _reraise_impossible(err, part)


def _result_arrays(part: HMMPartition, model, state_to_group, onehot) -> dict:
    """Everything ``to_xarray`` shows for one partition."""
    model = _with_partition(model, part)
    try:
        log_prob, post = model._score(part.X, part.lengths, compute_posteriors=True)
        vit_ll, path = model.decode(part.X, part.lengths, algorithm="viterbi")
    except fb.ImpossibleObservationError as err:
        _reraise_impossible(err, part)
    return {"X": part.X, "state_posterior": post, "group_posterior": post @ onehot,
            "viterbi_state": np.asarray(path, dtype=np.int64),
            "viterbi_group": state_to_group[path],
            "sequence": part.first_sequence + np.repeat(np.arange(part.lengths.size),
                                                        part.lengths),
            "log_prob": float(log_prob), "viterbi_log_prob": float(vit_ll)}


def _head(part: HMMPartition, max_rows: int, chosen=None) -> tuple[np.ndarray, np.ndarray]:
    """Leading whole sequences of a partition, at most ``max_rows`` rows (at least one).

    Partitions whose first row is not in ``chosen`` (when given) contribute nothing.
    """
    if chosen is not None and part.start not in chosen:
        return part.X[:0], part.lengths[:0]
    n = max(1, int(np.searchsorted(np.cumsum(part.lengths), max_rows, side="right")))
    return part.X[:int(part.lengths[:n].sum())], part.lengths[:n]


def _max_value(part: HMMPartition) -> int:
    return int(np.nanmax(part.X))


# ---------------------------------------------------------------------- placing the data
class _Placed:
    """The partitions of one data set on the cluster, with what the client knows of them."""

    def __init__(self, data: _dask.PlacedData, plans: list[_Plan], n_features: int,
                 local=None):
        self.data, self.plans, self.n_features, self.local = data, plans, n_features, local
        self.n_samples = plans[-1].stop
        self.lengths = np.concatenate([p.lengths for p in plans])

    def init_data(self, client, model, name: str):
        """``(X, lengths)`` the model is initialised from (see :data:`INIT_ROWS`)."""
        if self.local is not None:
            return self.local
        if self.n_samples <= INIT_ROWS:
            heads = _dask.map_collect(client, _head, self.data, self.n_samples, name=name)
        else:
            from hmmlearn.hmm import CategoricalHMM

            if isinstance(model, CategoricalHMM) and model.n_features is None \
                    and not hasattr(model, "emissionprob_"):
                # the sample may miss the largest symbol: count symbols over all the data
                top = _dask.map_reduce(client, _max_value, self.data, name=f"{name}-symbols",
                                       combine=max)
                model.n_features = int(top) + 1
            # evenly spread partitions, each giving its leading sequences
            n_use = min(len(self.plans), max(1, INIT_ROWS // 1000))
            chosen = np.unique(np.linspace(0, len(self.plans) - 1, n_use).round().astype(int))
            quota = max(1, INIT_ROWS // chosen.size)
            starts = frozenset(self.plans[i].start for i in chosen)
            heads = _dask.map_collect(client, _head, self.data, quota, starts, name=name)
        parts = client.gather(heads)
        return (np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]))


def _validator(model):
    """A copy of the model that can check data on a worker (no history, no scratch arrays)."""
    return _shipped(model)


def _is_paths(X) -> bool:
    if isinstance(X, (str, os.PathLike)):
        return True
    return (isinstance(X, (list, tuple)) and len(X) > 0
            and all(isinstance(p, (str, os.PathLike)) for p in X))


def _place(model, X, lengths, client, name: str) -> _Placed:
    import dask

    threads = _dask.client_threads(client)
    K = model.n_components
    try:
        import xarray as xr

        if isinstance(X, xr.DataArray):
            X = X.data
    except ImportError:  # pragma: no cover - xarray is a core dependency
        pass
    if _is_paths(X):
        return _place_files(model, [os.fspath(p) for p in
                                    ([X] if isinstance(X, (str, os.PathLike)) else X)],
                            lengths, client, name, threads)
    if dask.is_dask_collection(X):
        return _place_dask(model, X, lengths, client, name, threads)
    Xv, lv = model._validate_X(X, lengths)  # in memory: exactly the in-process checks
    n_parts = _n_partitions(Xv.shape[0], Xv.shape[1], K, lv.size, threads)
    plans = _plans(lv, _split_sequences(lv, n_parts), row_data=_row_data(model, Xv.shape[0]))
    parts = [HMMPartition(Xv[p.start:p.stop], p.lengths, p.start, p.first_sequence,
                          f"X rows {p.start}..{p.stop - 1}", p.known, p.covariates)
             for p in plans]
    return _Placed(_dask.PlacedData(client, parts, name=name), plans, Xv.shape[1],
                   local=(Xv, lv))


def _row_data(model, n_rows: int) -> _RowData:
    """The known states and covariates in force (``fit(..., known_states=, covariates=)``),
    checked against the rows here, before anything is sent."""
    known = getattr(model, "_known", None)
    if known is not None and len(known) != n_rows:
        raise ValidationError(f"known_states has {len(known)} entries but X has {n_rows} "
                              "rows; give one state (or -1) per row")
    return _RowData(known, model._covariate_rows(n_rows))


def _place_dask(model, X, lengths, client, name, threads) -> _Placed:
    import dask
    import dask.array as da

    if not isinstance(X, da.Array):
        raise ValidationError(f"X must be an array, a dask array or a list of file paths, got "
                              f"a dask collection of type {type(X).__name__}")
    if X.ndim != 2:
        raise ValidationError(f"X must be 2-D with shape (n_samples, n_features), got shape "
                              f"{X.shape}; reshape a single feature with X[:, None]")
    if np.isnan(X.shape[0]):
        raise ValidationError("X is a dask array whose number of rows is unknown; call "
                              "X.compute_chunk_sizes() first")
    n = int(X.shape[0])
    if n == 0:
        raise ValidationError("X is empty (0 samples)")
    lv = check_lengths(lengths, n)
    n_parts = _n_partitions(n, int(X.shape[1]), model.n_components, lv.size, threads)
    plans = _plans(lv, _split_sequences(lv, n_parts), row_data=_row_data(model, n))
    X = X.rechunk((tuple(p.stop - p.start for p in plans), X.shape[1]))
    blocks = X.to_delayed().ravel()
    validator = _validator(model)
    items = [dask.delayed(_prepare_block, pure=True)(blk, plan, validator,
                                                     dask_key_name=f"{name}-{i}")
             for i, (blk, plan) in enumerate(zip(blocks, plans))]
    return _Placed(_dask.PlacedData(client, items, name=name), plans, int(X.shape[1]))


def _place_files(model, paths, lengths, client, name, threads) -> _Placed:
    shapes = _dask.map_items(client, array_file_shape, paths, name=f"{name}-shapes")
    for path, (n_rows, n_cols) in zip(paths, shapes):
        # in memory an empty X is refused: a file of X that is empty is refused alike
        # (skipping it would fit other data than the list names)
        if n_rows == 0 or n_cols == 0:
            raise DataFormatError(f"holds an array of shape ({n_rows}, {n_cols}): no samples; "
                                  f"every file of X must hold at least one row of features "
                                  f"(remove it from the list)", path=path)
    widths = {s[1] for s in shapes}
    if len(widths) > 1:
        first = shapes[0][1]
        bad = next(p for p, s in zip(paths, shapes) if s[1] != first)
        raise DataFormatError(f"has {dict(zip(paths, shapes))[bad][1]} columns but "
                              f"{paths[0]} has {first}; all files must hold the same features",
                              path=bad)
    rows = np.array([s[0] for s in shapes], dtype=np.int64)
    file_start = np.concatenate([[0], np.cumsum(rows)])
    if lengths is None:
        lv = rows.copy()
    else:
        lv = check_lengths(lengths, int(rows.sum()))
    seq_end = np.cumsum(lv)
    cut = np.searchsorted(seq_end, file_start[1:], side="left")
    for f, (c, end) in enumerate(zip(cut, file_start[1:])):
        if c >= seq_end.size or seq_end[c] != end:
            raise ValidationError(f"lengths: a sequence crosses the end of {paths[f]} (row "
                                  f"{int(end)} of the stacked files); each sequence must lie "
                                  "within one file")
    total = int(rows.sum())
    row_data = _row_data(model, total)
    n_target = _n_partitions(total, int(shapes[0][1]), model.n_components, lv.size, threads)
    validator = _validator(model)
    items, plans, seq0 = [], [], 0
    for f, path in enumerate(paths):
        seq1 = int(cut[f]) + 1
        lf = lv[seq0:seq1]
        n_parts = int(np.ceil(n_target * rows[f] / total))
        for plan in _plans(lf, _split_sequences(lf, n_parts), int(file_start[f]), seq0,
                           row_data):
            a, b = plan.start - int(file_start[f]), plan.stop - int(file_start[f])
            items.append(_dask.OnWorker(_load_file_partition, path, a, b, plan, validator))
            plans.append(plan)
        seq0 = seq1
    return _Placed(_dask.PlacedData(client, items, name=name), plans, int(shapes[0][1]))


# ---------------------------------------------------------------------- what travels
def _fitted_params(model) -> dict:
    """The fitted numbers of a model: attributes ending in ``_`` holding arrays or numbers."""
    return {k: v for k, v in vars(model).items()
            if k.endswith("_") and not k.endswith("__")
            and (isinstance(v, np.ndarray) or _dask._is_number(v))}


def _shipped(model, *, with_params: bool = True):
    """A light copy of the model for the workers: no history, scratch arrays or results."""
    out = copy.copy(model)
    for key, value in list(vars(out).items()):
        fitted = key.endswith("_") and not key.endswith("__")
        # known states and covariates travel with the partitions, not with the model
        if key in ("_workspace", "_known", "_covariates") or (fitted and (not with_params or not (
                isinstance(value, np.ndarray) or _dask._is_number(value)))):
            delattr(out, key)
    # settings are per process: the client's travel with the model to the workers
    out._worker_settings = {"hmm_threads": get_config()["hmm_threads"]}
    return out


def _note_recovery(placed: _Placed, what: str) -> None:
    if placed.data.n_recovered:
        _log.info("%s: %d partition(s) lost with a worker were placed again",
                  what, placed.data.n_recovered)


# ---------------------------------------------------------------------- public functions
def fit(model, X, lengths=None, *, client):
    """Baum-Welch with the E-step on the workers; see ``TiedHMMMixin.fit``.

    The caller (``fit``) has checked the settings and cleared the previous fit.
    """
    client = _dask.check_client(client)
    token = uuid.uuid4().hex[:8]
    t0 = time.perf_counter()
    placed = _place(model, X, lengths, client, f"hmm-data-{token}")
    with placed.data:
        if model.n_components > placed.n_samples:
            raise ValidationError(f"n_components={model.n_components} is more than the "
                                  f"{placed.n_samples} samples in X; each state needs data")
        X0, lengths0 = placed.init_data(client, model, f"hmm-init-{token}")
        model._init(X0, lengths0)
        del X0, lengths0
        model._check()
        skeleton = client.submit(_hold, _shipped(model, with_params=False),
                                 key=f"hmm-model-{token}")
        iteration = iter(range(model.n_iter))

        def estep():
            it = next(iteration)
            params = client.submit(_hold, _fitted_params(model), key=(f"hmm-params-{token}", it))
            total = _dask.map_reduce(client, _estep, placed.data, skeleton, params,
                                     name=f"hmm-estep-{token}-it{it}",
                                     combine=_combine_esteps)
            stats = _dask.add_additive(model._initialize_sufficient_statistics(), total["stats"])
            stats.update((key, np.concatenate(blocks)) for key, blocks in total["rows"].items())
            return stats, total["log_prob"]

        model._run_em(estep)
        seconds = time.perf_counter() - t0

        def final_score() -> float:  # at the parameters _finish_fit settles on
            shipped = client.submit(_hold, _shipped(model), key=f"hmm-final-{token}")
            return float(_dask.map_reduce(client, _loglik, placed.data, shipped,
                                          name=f"hmm-final-score-{token}"))

        model._finish_fit((placed.n_samples, placed.n_features), placed.lengths.size, seconds,
                          final_score, stacklevel=4)
        _note_recovery(placed, "fit")
    return model


def _hold(value):
    return value


def _fitted_copy_on_cluster(model, client, token, what):
    model._require_parameters(what)
    model._check()
    return client.submit(_hold, _shipped(model), key=f"hmm-model-{token}")


def score(model, X, lengths=None, *, client) -> float:
    """Log-likelihood of ``X``, summed over partitions on the workers."""
    client = _dask.check_client(client)
    token = uuid.uuid4().hex[:8]
    shipped = _fitted_copy_on_cluster(model, client, token, "score")
    placed = _place(model, X, lengths, client, f"hmm-data-{token}")
    with placed.data:
        total = _dask.map_reduce(client, _loglik, placed.data, shipped,
                                 name=f"hmm-score-{token}")
        _note_recovery(placed, "score")
    return float(total)


def _collected_array(client, model, X, lengths, func, name, width=None, dtype=float):
    import dask.array as da

    client = _dask.check_client(client)
    token = uuid.uuid4().hex[:8]
    shipped = _fitted_copy_on_cluster(model, client, token, name)
    placed = _place(model, X, lengths, client, f"hmm-data-{token}")
    with placed.data:
        futures = _dask.map_collect(client, func, placed.data, shipped,
                                    name=f"hmm-{name}-{token}")
        _note_recovery(placed, name)
    blocks = [da.from_delayed(f, shape=(p.stop - p.start,) + (() if width is None else
                                                              (width,)), dtype=dtype)
              for f, p in zip(futures, placed.plans)]
    return da.concatenate(blocks, axis=0)


def predict(model, X, lengths=None, *, client):
    """Decoded states (the model's ``algorithm``) as a dask array computed on the workers."""
    return _collected_array(client, model, X, lengths, _states, "predict", dtype=np.int64)


def predict_proba(model, X, lengths=None, *, client):
    """State posteriors as a dask array computed on the workers."""
    return _collected_array(client, model, X, lengths, _posteriors, "posteriors",
                            width=model.n_components)


def decoding(model, X, lengths=None, *, client):
    """The decoding part of ``to_xarray``: dask arrays computed and kept on the workers."""
    import dask.array as da

    client = _dask.check_client(client)
    token = uuid.uuid4().hex[:8]
    model._require_fitted("to_xarray")
    shipped = _fitted_copy_on_cluster(model, client, token, "to_xarray")
    placed = _place(model, X, lengths, client, f"hmm-data-{token}")
    with placed.data:
        bundles = _dask.map_collect(client, _result_arrays, placed.data, shipped,
                                    model.state_to_group_, model._group_onehot(),
                                    name=f"hmm-results-{token}")
        _note_recovery(placed, "to_xarray")
    scalars = client.gather([client.submit(_scalars, b, key=(f"hmm-scalars-{token}", i))
                             for i, b in enumerate(bundles)])
    is_cat = hasattr(model, "emissionprob_")
    fields = {"X": (placed.n_features, np.int64 if is_cat else float),
              "state_posterior": (model.n_components, float),
              "group_posterior": (model.n_groups_, float),
              "viterbi_state": (None, np.int64), "viterbi_group": (None, np.int64),
              "sequence": (None, np.int64)}
    arrays = {}
    for field, (width, dtype) in fields.items():
        parts = []
        for i, (b, p) in enumerate(zip(bundles, placed.plans)):
            fut = client.submit(operator.getitem, b, field, key=(f"hmm-{field}-{token}", i))
            shape = (p.stop - p.start,) + (() if width is None else (width,))
            parts.append(da.from_delayed(fut, shape=shape, dtype=dtype))
        arrays[field] = da.concatenate(parts, axis=0)
    return model._decoding_dataset(
        arrays, n_sequences=placed.lengths.size,
        log_prob=float(sum(s[0] for s in scalars)),
        viterbi_log_prob=float(sum(s[1] for s in scalars)))


def _scalars(bundle: dict) -> tuple[float, float]:
    return bundle["log_prob"], bundle["viterbi_log_prob"]

