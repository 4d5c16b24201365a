"""The user-defined groups shown in docs/extending.rst behave as the docs say."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))
from custom_groups import LinearThermalLattice, cubic_cell, tied_states  # noqa: E402

from sciTie import fit_least_squares  # noqa: E402


def test_cubic_cell_has_one_free_edge():
    cell = cubic_cell(5.43)
    assert cell.free_names == ["a"]
    np.testing.assert_allclose(cell.unpack([5.5]), [5.5, 5.5, 5.5, 90, 90, 90])


def test_tied_states_pool_sums_members():
    em = tied_states(np.zeros((5, 2)), [[0, 1, 2], [3, 4]])
    assert em.n_free == 4
    stats = np.arange(10.0)
    np.testing.assert_allclose(em.pool(stats), [0 + 2 + 4, 1 + 3 + 5, 6 + 8, 7 + 9])


def test_thermal_lattice_fit_equals_linear_regression():
    temps = np.array([10.0, 80.0, 150.0, 220.0, 295.0])
    rng = np.random.default_rng(2)
    measured = 8.45 + 2.1e-4 * temps + rng.normal(0, 2e-4, temps.size)
    lattice = LinearThermalLattice(temps, a0=8.0)
    assert lattice.n_free == 2 and lattice.n_slots == 2 + temps.size

    def residual(v):
        return np.array([v[f"p{i}.a"] for i in range(temps.size)]) - measured

    res = fit_least_squares(lattice, residual)
    X = np.column_stack([np.ones_like(temps), temps])
    coef, rss, *_ = np.linalg.lstsq(X, measured, rcond=None)
    np.testing.assert_allclose(res.x, coef, rtol=1e-8)
    cov = np.linalg.inv(X.T @ X) * rss[0] / (temps.size - 2)
    np.testing.assert_allclose(res.stderr, np.sqrt(np.diag(cov)), rtol=1e-6)
    # a pattern's lattice value carries the propagated uncertainty x_i^T cov x_i
    i = 3
    assert res.error(f"p{i}.a") == pytest.approx(np.sqrt(X[i] @ cov @ X[i]), rel=1e-6)


def test_examples_in_the_extending_page_run_as_shown():
    import doctest

    import torch

    page = Path(__file__).resolve().parents[1] / "docs" / "extending.rst"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the page trains a small network: one thread is fastest here
    try:
        outcome = doctest.testfile(str(page), module_relative=False, verbose=False)
    finally:
        torch.set_num_threads(threads)
    assert outcome.attempted >= 30 and outcome.failed == 0
