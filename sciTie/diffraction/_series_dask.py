"""Series refinements on a Dask cluster: independent fits as tasks, block-arrow LM by map-reduce.

*Sequential* refinement runs :func:`~sciTie.diffraction._series.refine_one` as one task per
pattern: all at once from one start (``mode="start"``), or as a chain of tasks, each waiting
for the previous pattern's result (``mode="previous"``: no two run at the same time, the
work just happens on the cluster). The patterns travel inside their tasks, so the scheduler
re-runs a lost worker's fits elsewhere.

*Parametric* refinement keeps the series on the workers: the patterns are cut into
partitions of consecutive patterns, placed once (:class:`sciTie._dask.PlacedData`) together
with their share of the tie map (the ``laws`` group and their containers), and every
Levenberg-Marquardt operation sends each partition only its entries of the free vector (the
law coefficients and its patterns' own parameters). On the workers the tie map gives each
pattern's slots and tie-map rows, and its Jacobian blocks and normal-equation pieces are
computed (:func:`parametric_pattern_blocks`) and kept; the shared
pieces (``Σ A_ss``, ``Σ g_s``, χ²) and, for every damping tried, each partition's share of
the Schur complement (``Σ A_lsᵀ (A_ll + λD)⁻¹ [A_ls, g_l]``) are summed in a tree on the
workers; the shared block is solved on the client; the local steps are back-substituted on
the workers. What stays on the workers can be lost with one: placed patterns come back from
the client's copy, kept blocks are computed again from the same arguments, and the fit goes
on from where it was, with the same numbers.
"""
from __future__ import annotations

import uuid
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import cho_solve

from .. import _dask
from ..core.marquardt import cholesky, damped
from ..core.threads import blas_threads_for
from ..errors import ValidationError
from ._blockarrow import PatternBlocks
from ._chain import next_start
from ._parametric_blocks import Linearization, parametric_pattern_blocks

__all__ = ["sequential_fits", "ClusterEngine", "MAX_PATTERNS_PER_PARTITION",
           "SeriesPartition", "make_partition", "n_partitions"]

#: Most patterns in one partition of a parametric refinement (more partitions than worker
#: threads only when the series is longer than ``threads × MAX_PATTERNS_PER_PARTITION``).
MAX_PATTERNS_PER_PARTITION = 32


# ---------------------------------------------------------------------- sequential
def _refine_after(refine_one, spec, recipe, previous: list, *, tie_test: bool) -> dict:
    """``refine_one`` started from the previous patterns' results (a link of a chain:
    :func:`~sciTie.diffraction._chain.next_start`, as in this process)."""
    return refine_one(spec, recipe, next_start(previous, spec.temperature), tie_test=tie_test)


def sequential_fits(client, refine_one, specs, recipe, *, mode: str, start: dict | None,
                    tie_test: bool) -> list[dict]:
    """The per-pattern results of a sequential refinement, computed on ``client``'s cluster.

    ``refine_one`` is :func:`~sciTie.diffraction.refine_one` (passed in: this module sits
    below the series module).

    ``mode="start"``: every pattern from ``start`` (default: the full refinement of the
    first pattern, run first), all at once. ``mode="previous"``: a chain, pattern ``k``
    starting from the results of ``k - 2`` and ``k - 1`` (:func:`~._chain.next_start`).
    """
    token = uuid.uuid4().hex[:8]
    recipe_f = client.submit(_dask._hold, recipe, key=f"series-recipe-{token}")
    if mode == "previous":
        futures = []
        for k, spec in enumerate(specs):
            if k == 0:
                fut = client.submit(refine_one, spec, recipe_f, start, tie_test=tie_test,
                                    pure=False, key=(f"series-chain-{token}", k))
            else:
                fut = client.submit(_refine_after, refine_one, spec, recipe_f, futures[-2:],
                                    tie_test=tie_test, pure=False,
                                    key=(f"series-chain-{token}", k))
            futures.append(fut)
        _dask._wait_all(futures)
        _dask._raise_first_error(futures, f"series-chain-{token}")
        return client.gather(futures)
    fits: list[dict] = []
    rest = list(specs)
    if start is None:
        first = _dask.map_items(client, refine_one, rest[:1], recipe_f, None,
                                name=f"series-first-{token}", tie_test=tie_test)[0]
        fits.append(first)
        start = first["values"]
        rest = rest[1:]
    if rest:
        fits += _dask.map_items(client, refine_one, rest, recipe_f, start,
                                name=f"series-fit-{token}", tie_test=tie_test)
    return fits


# ---------------------------------------------------------------------- parametric
@dataclass
class SeriesPartition:
    """Consecutive patterns of a parametric refinement, kept on one worker with their share
    of the tie map.

    ``group`` holds the ``laws`` group and the patterns' containers (the same groups as the
    refinement's, so the slot values and tie-map rows computed from it are the whole
    group's); ``free_index`` says which entries of the whole free vector are its free
    vector. ``patterns`` are light copies of the client's (same data and frozen peak
    windows; the far-field grids, a cache, are rebuilt on the worker when first needed).
    """

    first: int
    patterns: list
    group: Any
    free_index: np.ndarray
    rows: list        # per pattern: its local vector's slots in ``group``
    cols: list        # per pattern: its columns (shared first) in ``group``'s free vector
    shared: np.ndarray

    def tie_rows(self, x: np.ndarray, *, grad: bool = True):
        """Per pattern: its local vector at the partition's free vector ``x`` and (with
        ``grad``) its rows of the tie map over its columns."""
        slots = self.group.tie_map().evaluate(x)
        if not grad:
            return [(slots[ii], None) for ii in self.rows]
        G = self.group.tie_matrix(x).tocsr()
        return [(slots[ii], G[ii][:, cols].toarray()) for ii, cols in zip(self.rows, self.cols)]


@dataclass
class PartitionBlocks:
    """What a partition's linearisation keeps on its worker: every pattern's blocks."""

    blocks: list
    summary: dict = field(default_factory=dict)


def _light(pattern):
    """A copy of a pattern that shares its data but not its caches (small to pickle)."""
    return pattern.light_copy()


def make_partition(refinement, a: int, b: int) -> SeriesPartition:
    """Patterns ``a`` to ``b - 1`` of a laid-out :class:`ParametricRefinement`, with the
    laws and their containers as one group."""
    from ..core import ParameterGroup

    r = refinement
    root = r.group_
    group = ParameterGroup(root.name, description=f"patterns {a} to {b - 1}")
    group.add_group(root["laws"])
    for label in r.labels_[a:b]:
        group.add_group(root[label])
    where = {n: j for j, n in enumerate(root.free_names)}
    free_index = np.array([where[n] for n in group.free_names], dtype=int)
    local_of = -np.ones(root.n_free, dtype=int)
    local_of[free_index] = np.arange(free_index.size)
    comp, whole = group.tie_map(), root.tie_map()
    rows, cols = [], []
    for ii, loc in zip(r._idx[a:b], r._local[a:b]):
        rows.append(np.array([comp.select(whole.names[i]) for i in ii], dtype=int))
        cols.append(local_of[np.concatenate([r._shared, loc])])
    if any(np.any(c < 0) for c in cols):
        raise RuntimeError("a pattern's columns are not in its partition's group")
    return SeriesPartition(a, [_light(p) for p in r.patterns_[a:b]], group, free_index, rows,
                           cols, r._shared)


def _linearize(part: SeriesPartition, x: np.ndarray) -> PartitionBlocks:
    """Every pattern's normal-equation pieces at the partition's free vector ``x``."""
    blocks = []
    # each pattern's columns hold the shared ones first: the widest is the refinement's
    # block width (ParametricRefinement._block_width)
    width = max((len(c) for c in part.cols), default=len(part.shared))
    with blas_threads_for(width):  # small products (see sciTie.core.threads)
        for pat, cols, (v, G_rows) in zip(part.patterns, part.cols, part.tie_rows(x)):
            blocks.append(parametric_pattern_blocks(pat, v, G_rows, part.shared, cols))
    A_ss = blocks[0].A_ss.copy()
    g_s = blocks[0].g_s.copy()
    for b in blocks[1:]:
        A_ss = A_ss + b.A_ss
        g_s = g_s + b.g_s
    summary = {"A_ss": A_ss, "g_s": g_s, "chi2": float(sum(b.chi2 for b in blocks)),
               "n": int(sum(b.n for b in blocks)),
               "diag_ll": [np.diag(b.A_ll).copy() for b in blocks],
               "g_l": [b.g_l for b in blocks]}
    return PartitionBlocks(blocks, summary)


def _summary(pb: PartitionBlocks) -> dict:
    return pb.summary


def _combine_summaries(*parts: dict) -> dict:
    """Sum of linearisation summaries; the per-pattern diagonals and gradients are kept in
    pattern order."""
    out = _dask.add_additive(*({k: v for k, v in p.items() if k not in _PER_PATTERN}
                               for p in parts))
    for key in _PER_PATTERN:
        out[key] = [d for p in parts for d in p[key]]
    return out


#: Summary entries kept per pattern (not summed).
_PER_PATTERN = ("diag_ll", "g_l")


def _schur_part(pb: PartitionBlocks, D_l: list, lam: float) -> dict:
    """A partition's share of the Schur complement and of its right-hand side."""
    p_s = pb.blocks[0].A_ss.shape[0]
    S = np.zeros((p_s, p_s))
    rhs = np.zeros(p_s)
    for b, d in zip(pb.blocks, D_l):
        if b.A_ll.size == 0:
            continue
        f = cholesky(damped(b.A_ll, d, lam))
        X = cho_solve(f, np.column_stack([b.A_ls, b.g_l]), check_finite=False)
        S += b.A_ls.T @ X[:, :-1]
        rhs += b.A_ls.T @ X[:, -1]
    return {"S": S, "rhs": rhs}


def _back_part(pb: PartitionBlocks, D_l: list, lam: float, ds: np.ndarray) -> list:
    """The local steps ``δl_i = -(A_ll + λD)⁻¹ (g_l + A_ls δs)`` of a partition's patterns."""
    out = []
    for b, d in zip(pb.blocks, D_l):
        if b.A_ll.size == 0:
            out.append(np.zeros(0))
            continue
        f = cholesky(damped(b.A_ll, d, lam))
        out.append(-cho_solve(f, b.g_l + b.A_ls @ ds, check_finite=False))
    return out


def _chi2_part(part: SeriesPartition, x: np.ndarray) -> float:
    """χ² of a partition's patterns at its free vector (inf where a model cannot be
    evaluated)."""
    total = 0.0
    try:
        for pat, (v, _) in zip(part.patterns, part.tie_rows(x, grad=False)):
            y, _ = pat.evaluate(v, grad=False)
            r = (pat.obs - y) / pat.sigma
            total += float(r @ r)
    except (ValidationError, FloatingPointError, ValueError):
        return float("inf")
    return total


def _calc_part(part: SeriesPartition, x: np.ndarray) -> list:
    return [pat.evaluate(v, grad=False)[0]
            for pat, (v, _) in zip(part.patterns, part.tie_rows(x, grad=False))]


def _windows_part(part: SeriesPartition, x: np.ndarray) -> bool:
    return all(pat.windows_ok(v)
               for pat, (v, _) in zip(part.patterns, part.tie_rows(x, grad=False)))


def _all(*parts) -> bool:
    return all(parts)


def _blocks_of(pb: PartitionBlocks) -> list:
    return pb.blocks


def n_partitions(n_patterns: int, threads: int) -> int:
    """At least one partition per worker thread, more when they would exceed
    :data:`MAX_PATTERNS_PER_PARTITION` patterns; never more than patterns."""
    return int(min(n_patterns, max(threads, -(-n_patterns // MAX_PATTERNS_PER_PARTITION))))


class ClusterEngine:
    """The block-arrow Levenberg-Marquardt operations of a parametric refinement on a cluster.

    Parameters
    ----------
    refinement : ParametricRefinement
        Built and laid out (``group_``, patterns, columns).
    client : distributed.Client
    max_recoveries : int
        Rounds of lost data survived per operation.

    Attributes
    ----------
    n_partitions : int
    n_recovered : int
        Partitions placed again, and kept blocks computed again, after a worker loss.
    """

    def __init__(self, refinement, client, *, max_recoveries: int = 3) -> None:
        self.ref = refinement
        self.client = client
        self.max_recoveries = max_recoveries
        self.token = uuid.uuid4().hex[:8]
        N = len(refinement.patterns_)
        P = n_partitions(N, _dask.client_threads(client))
        bounds = np.linspace(0, N, P + 1).round().astype(int)
        self.ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        self.n_partitions = len(self.ranges)
        self.placed = None
        self._blk = None
        self._lin_args = None
        self._calls = 0
        self.n_recovered = 0

    # -- placing -----------------------------------------------------------------------------
    def start(self) -> None:
        """Place the patterns (with their current, frozen peak windows) on the workers."""
        self.release()
        parts = [make_partition(self.ref, a, b) for a, b in self.ranges]
        self._free_index = [p.free_index for p in parts]
        self._calls += 1
        self.placed = _dask.PlacedData(self.client, parts,
                                       name=f"series-data-{self.token}-{self._calls}")

    def release(self) -> None:
        if self.placed is not None:
            self.n_recovered += self.placed.n_recovered
            self.placed.release()
            self.placed = None
        self._drop_blocks()

    def _drop_blocks(self) -> None:
        if self._blk is not None:
            for f in self._blk:
                f.release()
        self._blk = None

    def _name(self, what: str) -> str:
        self._calls += 1
        return f"series-{what}-{self.token}-{self._calls}"

    # -- what each partition is sent: its entries of the free vector -------------------------
    def _x_args(self, x: np.ndarray) -> list:
        return [(x[idx],) for idx in self._free_index]

    def _split(self, per_pattern: list) -> list:
        return [(per_pattern[a:b],) for a, b in self.ranges]

    # -- the kept blocks, computed again where lost -------------------------------------------
    def _ensure_blocks(self) -> list:
        self._blk = _dask._collect(self.client, _linearize, self.placed, (), {},
                                   self._name("blocks"), self.max_recoveries, self._blk,
                                   self._lin_args)
        return self._blk

    def _on_blocks(self, op):
        """``op(block futures)``, computing the blocks again when a worker took some away."""
        for _ in range(self.max_recoveries + 1):
            lost = self._blk is None or any(f.status in _dask._LOST for f in self._blk)
            if lost:
                if self._blk is not None:
                    self.n_recovered += sum(f.status in _dask._LOST for f in self._blk)
                self._ensure_blocks()
            try:
                return op(self._blk)
            except (CancelledError, _dask.LostDataError):
                continue
        raise _dask.LostDataError("series: the kept Jacobian blocks were lost with workers "
                                  f"{self.max_recoveries + 1} times in a row")

    # -- the operations of the solver ---------------------------------------------------------
    # Each operation first submits all its tasks at once (map and tree reduction: one round
    # trip); if a worker loss cancels them, it is done again through the helpers of
    # sciTie._dask, which place lost data again and resubmit what depended on it.
    def _submit_map(self, func, inputs, item_args, args, name):
        return [self.client.submit(func, inp, *ia, *args, pure=False, key=(name, i))
                for i, (inp, ia) in enumerate(zip(inputs, item_args))]

    def _submit_reduce(self, func, inputs, item_args, args, name, combine=None):
        maps = self._submit_map(func, inputs, item_args, args, f"{name}-map")
        return _dask.tree_reduce(self.client, maps, combine, name=f"{name}-sum").result()

    def linearize(self, x: np.ndarray) -> Linearization:
        self._drop_blocks()
        self._lin_args = self._x_args(x)
        name = self._name("blocks")
        try:
            self.placed.recover()
            self._blk = self._submit_map(_linearize, self.placed.futures, self._lin_args, (),
                                         name)
            total = self._submit_reduce(_summary, self._blk, [()] * len(self._blk), (),
                                        self._name("summary"), _combine_summaries)
        except CancelledError:
            total = self._on_blocks(lambda blk: _dask.map_reduce(
                self.client, _summary, blk, name=self._name("summary"),
                combine=_combine_summaries, max_recoveries=0))
        return Linearization(total["A_ss"], total["g_s"], float(total["chi2"]),
                             int(total["n"]), total["diag_ll"], total["g_l"])

    def step(self, lin: Linearization, lam: float, D_s: np.ndarray, D_l: list):
        d_args = self._split(D_l)
        parts = self._on_blocks(lambda blk: self._submit_reduce(
            _schur_part, blk, d_args, (lam,), self._name("schur")))
        S = damped(lin.A_ss, D_s, lam) - parts["S"]
        rhs = -lin.g_s + parts["rhs"]
        ds = cho_solve(cholesky(S), rhs, check_finite=False) if S.size else np.zeros(0)
        local = self._on_blocks(lambda blk: self.client.gather(self._submit_map(
            _back_part, blk, d_args, (lam, ds), self._name("back"))))
        return ds, [d for part in local for d in part]

    def _placed_reduce(self, func, item_args, what, combine=None):
        try:
            return self._submit_reduce(func, self.placed.futures, item_args, (),
                                       self._name(what), combine)
        except CancelledError:
            return _dask.map_reduce(self.client, func, self.placed, name=self._name(what),
                                    combine=combine, item_args=item_args,
                                    max_recoveries=self.max_recoveries)

    def chi2(self, x: np.ndarray) -> float:
        return float(self._placed_reduce(_chi2_part, self._x_args(x), "chi2"))

    def final_blocks(self) -> list[PatternBlocks]:
        parts = self._on_blocks(lambda blk: self.client.gather(self._submit_map(
            _blocks_of, blk, [()] * len(blk), (), self._name("final"))))
        return [b for part in parts for b in part]

    def calc(self, x: np.ndarray) -> list:
        futures = _dask.map_collect(self.client, _calc_part, self.placed,
                                    name=self._name("calc"), item_args=self._x_args(x),
                                    max_recoveries=self.max_recoveries)
        return [y for part in self.client.gather(futures) for y in part]

    def windows_ok(self, x: np.ndarray) -> bool:
        return bool(self._placed_reduce(_windows_part, self._x_args(x), "windows", _all))

    def close(self) -> None:
        self.release()
