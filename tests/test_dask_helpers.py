"""sciTie._dask: the map-reduce helpers distributed fits are built from.

A LocalCluster started by the ``dask_client`` fixture (conftest); every sum is checked
against the same sum or solve done directly in this process.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

from sciTie import _dask  # noqa: E402
from sciTie.errors import ValidationError  # noqa: E402
from sciTie.hmm import _distributed as dist  # noqa: E402


def test_tree_reduce_and_map_helpers(dask_client):
    parts = [{"a": np.full(3, float(i)), "n": i, "inner": {"b": np.eye(2) * i}}
             for i in range(19)]
    futures = dask_client.scatter(parts)
    for fan_in in (2, 3, 8, 32):
        total = _dask.tree_reduce(dask_client, futures, name=f"test-sum-{fan_in}",
                                  fan_in=fan_in).result()
        np.testing.assert_array_equal(total["a"], np.full(3, sum(range(19))))
        assert total["n"] == sum(range(19))
        np.testing.assert_array_equal(total["inner"]["b"], np.eye(2) * sum(range(19)))
    assert _dask.map_items(dask_client, np.square, [1, 2, 3], name="test-map") == [1, 4, 9]
    with pytest.raises(ValueError, match="different keys"):
        _dask.add_additive({"a": 1}, {"b": 1})
    with pytest.raises(TypeError, match="only arrays and numbers"):
        dist._additive_part({"x": "text"}, {})
    with pytest.raises(ValidationError, match="fan_in must be at least 2"):
        _dask.tree_reduce(dask_client, futures, name="test-bad", fan_in=1)
    with pytest.raises(ValidationError, match="client must be a dask.distributed.Client"):
        _dask.check_client(object())


def _load(n):
    return np.arange(float(n))


def test_placed_data_comes_back_after_a_loss(dask_client):
    items = [np.full(4, float(i)) for i in range(5)] + [_dask.OnWorker(_load, 6)]
    with _dask.PlacedData(dask_client, items, name="test-placed") as placed:
        assert placed.recover() == 0
        placed.futures[2].cancel()  # what a lost worker does to scattered data
        placed.futures[5].cancel()
        total = _dask.map_reduce(dask_client, np.sum, placed, name="test-after-loss")
        assert placed.n_recovered == 2
        assert total == sum(4 * i for i in range(5)) + sum(range(6))
        np.testing.assert_array_equal(placed.futures[5].result(), np.arange(6.0))


# ---------------------------------------------------------------- the series-refinement seam
def _pattern_blocks(pattern):
    """One pattern's normal equations with its local parameters eliminated (Schur)."""
    A, B, y = pattern  # y = A s + B l + noise, s shared, l this pattern's own
    Bl = np.linalg.cholesky(B.T @ B)
    solve = lambda M: np.linalg.solve(Bl.T, np.linalg.solve(Bl, M))  # noqa: E731
    BtA, Bty = B.T @ A, B.T @ y
    return {"shared": {"S": A.T @ A - BtA.T @ solve(BtA), "b": A.T @ y - BtA.T @ solve(Bty)},
            "BtA": BtA, "Bty": Bty, "BtB": B.T @ B}


def _shared_part(blocks):
    return blocks["shared"]


def _local_step(blocks, s):
    return np.linalg.solve(blocks["BtB"], blocks["Bty"] - blocks["BtA"] @ s)


def test_block_normal_equations_reduced_on_workers_equal_dense_solve(dask_client):
    """The parametric-series pattern: per-item blocks on the workers, shared solve here."""
    rng = np.random.default_rng(12)
    n_items, n_shared, n_local, n_obs = 30, 3, 2, 40
    s_true = rng.normal(size=n_shared)
    patterns = []
    for _ in range(n_items):
        A, B = rng.normal(size=(n_obs, n_shared)), rng.normal(size=(n_obs, n_local))
        patterns.append((A, B, A @ s_true + B @ rng.normal(size=n_local)
                         + 0.01 * rng.normal(size=n_obs)))
    with _dask.PlacedData(dask_client, patterns, name="test-patterns") as placed:
        blocks = _dask.map_collect(dask_client, _pattern_blocks, placed, name="test-blocks")
        total = _dask.map_reduce(dask_client, _shared_part, blocks, name="test-normal",
                                 fan_in=4)
        s = np.linalg.solve(total["S"], total["b"])
        local = dask_client.gather(_dask.map_collect(dask_client, _local_step, blocks, s,
                                                name="test-local"))
    # the same least-squares problem as one dense system
    rows = []
    for p, (A, B, _) in enumerate(patterns):
        row = np.zeros((n_obs, n_shared + n_items * n_local))
        row[:, :n_shared] = A
        row[:, n_shared + p * n_local:n_shared + (p + 1) * n_local] = B
        rows.append(row)
    dense = np.linalg.lstsq(np.vstack(rows), np.concatenate([y for *_, y in patterns]),
                            rcond=None)[0]
    np.testing.assert_allclose(s, dense[:n_shared], rtol=1e-10)
    np.testing.assert_allclose(np.concatenate(local), dense[n_shared:], rtol=1e-9, atol=1e-12)


def _scaled_sum(item, factor, offset):
    return float(np.sum(item) * factor + offset)


def test_per_item_arguments(dask_client):
    """``item_args`` gives each item its own arguments, also when items were lost."""
    items = [np.full(3, float(i)) for i in range(5)]
    factors = [(float(k + 1),) for k in range(5)]
    want = [3.0 * i * (i + 1) + 0.5 for i in range(5)]
    with _dask.PlacedData(dask_client, items, name="test-item-args") as placed:
        futures = _dask.map_collect(dask_client, _scaled_sum, placed, 0.5,
                                    name="test-item-args-map", item_args=factors)
        assert dask_client.gather(futures) == want
        placed.futures[3].cancel()
        total = _dask.map_reduce(dask_client, _scaled_sum, placed, 0.5, item_args=factors,
                                 name="test-item-args-sum")
        assert total == sum(want) and placed.n_recovered == 1
        with pytest.raises(ValidationError, match="item_args: expected one tuple per item"):
            _dask.map_collect(dask_client, _scaled_sum, placed, 0.5, name="test-bad-args",
                              item_args=factors[:2])
