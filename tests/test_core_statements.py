"""Tie statements, linear equations and maximisation through the tie map (the core's EM row)."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy import optimize

from sciTie import ParameterGroup
from sciTie.core.maximize import maximize_through_ties
from sciTie.errors import ValidationError


def _levels():
    g = ParameterGroup("m")
    g.add("mu", np.array([[0.0, 1.0], [0.2, 1.1], [3.0, 4.0], [5.0, 6.0]]))
    return g


def test_row_statement_ties_element_by_element():
    g = _levels()
    assert g.apply_ties("mu[1] = mu[0]") == []
    assert g.free_names == ["mu[0,0]", "mu[0,1]", "mu[2,0]", "mu[2,1]", "mu[3,0]", "mu[3,1]"]
    np.testing.assert_array_equal(g.valuesdict()["mu[1]"], [0.0, 1.0])


def test_affine_statement_is_a_linear_tie_with_exact_scale_and_offset():
    g = _levels()
    g.apply_ties(["mu[2] = 2 * mu[0] + 0.1", "mu[3] = -mu[0] / 4"])
    G = g.tie_matrix().toarray()
    rows = g.slot_index("mu[2]"), g.slot_index("mu[3]")
    np.testing.assert_array_equal(G[rows[0]][:, :2], 2 * np.eye(2))
    np.testing.assert_array_equal(G[rows[1]][:, :2], -0.25 * np.eye(2))
    np.testing.assert_allclose(g.valuesdict()["mu[2]"], [0.1, 2.1])
    # a plain tie, not an expression: describe shows the linear form
    assert "== '2*mu[0,0] + 0.1'" in g.describe()


def test_new_parameters_start_at_least_squares_values():
    g = _levels()
    created = g.apply_ties(["mu[1] = mu[0] + delta"], new_parameters=True)
    assert created == ["delta"]
    # lhs was (0.2, 1.1), mu[0] = (0, 1): least squares delta = mean(0.2, 0.1) = 0.15
    assert g.valuesdict()["delta"] == pytest.approx(0.15)
    G = g.tie_matrix().toarray()
    d = g.free_names.index("delta")
    np.testing.assert_array_equal(G[np.ravel(g.slot_index("mu[1]")), d], [1.0, 1.0])


def test_nonlinear_statement_linearises_exactly():
    g = ParameterGroup("v")
    g.add("mean", np.array([2.0, 3.0]))
    g.add("var", np.array([1.0, 6.1]))
    g.apply_ties("var[1] = phi * mean[1]", new_parameters=True)
    phi = g.valuesdict()["phi"]
    assert phi == pytest.approx(6.1 / 3.0)
    G = g.tie_matrix().toarray()
    row = g.slot_index("var[1]")
    cols = {n: i for i, n in enumerate(g.free_names)}
    assert G[row, cols["mean[1]"]] == pytest.approx(phi)
    assert G[row, cols["phi"]] == pytest.approx(3.0)


def test_dense_tie_matrix_is_the_sparse_one_and_the_finite_differences():
    """The dense G (small nonlinear maps, dense Newton steps) and the sparse one are the same
    linearisation, at any point, and it is the slots' derivative (central differences)."""
    g = ParameterGroup("chain")
    g.add("a", np.array([1.5, 0.7, 2.0]))
    g.add("b", np.array([0.4, 0.9]), vary=False)
    g.apply_ties(["a[1] = phi * a[0] ** 2", "a[2] = exp(a[1]) - 2 * phi + b[0]"],
                 new_parameters=True)
    tm = g.tie_map()
    for free in (tm.pack(), tm.pack() * np.array([1.3, 0.8])):
        dense = tm.dense_matrix(free)
        np.testing.assert_array_equal(dense, tm.matrix(free).toarray())
        h = 1e-6
        fd = np.column_stack([(tm.evaluate(free + h * e) - tm.evaluate(free - h * e)) / (2 * h)
                              for e in np.eye(free.size)])
        np.testing.assert_allclose(dense, fd, rtol=1e-8, atol=1e-9)
    linear = _levels()
    linear.apply_ties("mu[1] = 2 * mu[0]")
    lm = linear.tie_map()
    np.testing.assert_array_equal(lm.dense_matrix(), lm.matrix().toarray())


@pytest.mark.parametrize("statement, match", [
    ("mu[1] == mu[0]", "exactly one '='"), ("mu[1]", "form 'slot = expression'"),
    ("mu[1] = mu[0] = mu[2]", "exactly one"), ("mu[1] = mu[9]", "index out of range"),
    ("mu[1] = nope", "not a parameter"), ("mu[9] = mu[0]", "index"),
    ("mu[1] = mu[0,0] + mu", "shape"), ("mu[1] = __import__('os')", "not allowed"),
    ("mu[1] = mu[0] + mu", "shape"),
])
def test_bad_statements_are_named(statement, match):
    with pytest.raises((ValidationError, ValueError), match=match):
        _levels().apply_ties(statement)


def test_statement_type_error_names_the_argument():
    with pytest.raises(ValidationError, match="must be a str"):
        _levels().apply_ties([3])


def test_tie_linear_sum_to_one_and_errors():
    g = ParameterGroup("p")
    g.add("p", [0.2, 0.3, 0.5], min=0, max=1)
    g.tie_linear("p[2]", {"p[0]": -1, "p[1]": -1}, offset=1)
    g.set_free([0.1, 0.6])
    np.testing.assert_allclose(g.valuesdict()["p"], [0.1, 0.6, 0.3])
    np.testing.assert_array_equal(g.tie_matrix().toarray(), [[1, 0], [0, 1], [-1, -1]])
    with pytest.raises(ValueError, match="already tied"):
        g.tie_linear("p[2]", {"p[0]": 1})
    with pytest.raises(ValueError, match="itself"):
        g.tie_linear("p[0]", {"p[0]": 1.0})
    with pytest.raises(ValueError, match="finite"):
        g.tie_linear("p[1]", {"p[0]": np.nan})


def test_maximize_through_ties_equals_scipy_on_a_tied_gaussian_objective():
    """Shared mean of two Gaussians with their own variances: the precision-weighted mean."""
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(1.0, 0.5, 40), rng.normal(1.3, 2.0, 70)
    g = ParameterGroup("q")
    g.add("mu", [0.0, 0.0])
    g.add("var", [1.0, 1.0], min=0)
    g.apply_ties("mu[1] = mu[0]")
    stats = [(x.size, x.sum(), (x ** 2).sum()) for x in (xa, xb)]
    im, iv = g.slot_index("mu"), g.slot_index("var")

    def objective(s):
        mu, var = s[im], s[iv]
        if np.any(var <= 0):
            return -np.inf, None, None
        grad, hess = np.zeros(s.size), np.zeros((s.size, s.size))
        f = 0.0
        for k, (n, s1, s2) in enumerate(stats):
            b = s2 - 2 * mu[k] * s1 + n * mu[k] ** 2
            f += -0.5 * n * np.log(var[k]) - b / (2 * var[k])
            grad[im[k]] = (s1 - n * mu[k]) / var[k]
            grad[iv[k]] = -n / (2 * var[k]) + b / (2 * var[k] ** 2)
            hess[im[k], im[k]] = -n / var[k]
            hess[iv[k], iv[k]] = n / (2 * var[k] ** 2) - b / var[k] ** 3
            hess[im[k], iv[k]] = hess[iv[k], im[k]] = -(s1 - n * mu[k]) / var[k] ** 2
        return f, grad, sp.csr_matrix(hess)

    x, info = maximize_through_ties(g, objective)
    assert info.converged

    def neg(th):
        mu, va, vb = th[0], np.exp(th[1]), np.exp(th[2])
        return -(np.sum(-0.5 * np.log(va) - (xa - mu) ** 2 / (2 * va))
                 + np.sum(-0.5 * np.log(vb) - (xb - mu) ** 2 / (2 * vb)))

    ref = optimize.minimize(neg, [1.0, 0.0, 0.0], method="BFGS").x
    mu, va, vb = x
    assert [mu, va, vb] == pytest.approx([ref[0], *np.exp(ref[1:])], rel=1e-5)
    m = 1.0  # independent: the stationarity conditions iterated to their fixed point
    for _ in range(500):
        v1, v2 = np.mean((xa - m) ** 2), np.mean((xb - m) ** 2)
        m = (xa.sum() / v1 + xb.sum() / v2) / (xa.size / v1 + xb.size / v2)
    assert [mu, va, vb] == pytest.approx([m, v1, v2], rel=1e-10)
    # not the pooled mean: the precision-weighted one
    assert abs(mu - np.r_[xa, xb].mean()) > 1e-3
    assert mu == pytest.approx((xa.sum() / va + xb.sum() / vb) / (xa.size / va + xb.size / vb),
                               rel=1e-12)


def test_maximize_refuses_a_start_outside_the_domain():
    g = ParameterGroup("q")
    g.add("v", -1.0)
    with pytest.raises(ValidationError, match="domain"):
        maximize_through_ties(g, lambda s: (-np.inf, None, None))


def test_a_constant_right_side_fixes_the_slots_at_that_value():
    g = _levels()
    g.apply_ties(["mu[0] = 0", "mu[1,1] = 2.5 * 2", "mu[3,0] = pi"])
    vals = g.valuesdict()
    np.testing.assert_array_equal(vals["mu[0]"], [0.0, 0.0])      # a row: every element
    assert vals["mu[1,1]"] == 5.0 and vals["mu[3,0]"] == np.pi
    assert g.free_names == ["mu[1,0]", "mu[2,0]", "mu[2,1]", "mu[3,1]"]
    assert g.tie_matrix().shape == (8, 4)
    assert all(g["mu"].vary.ravel()[[0, 1, 3, 6]] == [False] * 4)


def test_statements_apply_all_or_nothing():
    g = _levels()
    g.add("b", 1.0, min=0)
    before = (g.free_names, g.slot_names, g.pack().tolist(), list(g))
    for bad in (["mu[1] = mu[0] + delta", "mu[2] = mu[9]"],      # second fails: index
                ["mu[1] = mu[0]", "b = -1"],                      # constant outside bounds
                ["mu[1] = mu[0]", "mu[1] = mu[2]"]):              # already tied
        with pytest.raises(ValidationError):
            g.apply_ties(bad, new_parameters=True)
        assert (g.free_names, g.slot_names, g.pack().tolist(), list(g)) == before
        assert "delta" not in g
    g.apply_ties(["mu[1] = mu[0]"])                               # the group still works
    assert g.n_free == 7


def test_fix_and_tie_are_all_or_nothing_too():
    g = _levels()
    with pytest.raises(ValidationError):
        g.fix("mu[0,0]", "nope")
    assert g.n_free == 8
    with pytest.raises(ValidationError, match="tie cycle"):
        g.tie_linear("mu[0,0]", {"mu[0,1]": 1.0})
        g.tie_linear("mu[0,1]", {"mu[0,0]": 1.0})
    assert g.n_free == 7 and "mu[0,1]" in g.free_names


def test_a_group_is_a_mapping_of_names_to_parameters_like_lmfit():
    child = ParameterGroup("xray")
    child.add("scale", 2.0)
    g = _levels()
    g.add("a", 1.0)
    g.add_group(child)
    assert list(g) == ["mu", "a", "xray.scale"] and len(g) == 3
    assert dict(g.items())["xray.scale"] is child["scale"]
    assert [p.name for p in g.values()] == ["mu", "a", "scale"]
    assert g.valuesdict()["xray.scale"] == 2.0
    empty = ParameterGroup("empty")
    assert bool(empty) and len(empty) == 0
    assert g != g.copy() and {g: 1}[g] == 1          # identity, as for any model object


def _probability_group(start):
    """Three probabilities on the simplex (``p[2] = 1 - p[0] - p[1]``), each in [0, 1]."""
    g = ParameterGroup("q")
    g.add("p", start, min=0, max=1)
    g.apply_ties("p[2] = 1 - p[0] - p[1]")
    return g


def _multinomial(counts, idx):
    def objective(s):
        p = s[idx]
        pos = counts > 0
        if np.any(p < 0) or np.any(p[pos] <= 0):
            return -np.inf, None, None
        grad, hess = np.zeros(s.size), np.zeros((s.size, s.size))
        grad[idx[pos]] = counts[pos] / p[pos]
        hess[idx[pos], idx[pos]] = -counts[pos] / p[pos] ** 2
        return float(np.sum(counts[pos] * np.log(p[pos]))), grad, hess
    return objective


def test_a_maximum_on_a_bound_is_reached_exactly_and_promptly():
    """Counts (5, 0, 3): the maximum is p = (5/8, 0, 3/8), with p[1] on its lower bound (the
    closed form). Newton's step leaves the box there; the bound is held instead of every step
    being cut to nothing (it used to spend all ``max_iter`` iterations on that)."""
    counts = np.array([5.0, 0.0, 3.0])
    g = _probability_group([0.2, 0.5, 0.3])
    x, info = maximize_through_ties(g, _multinomial(counts, g.slot_index("p")))
    assert info.converged and info.n_iter < 20
    np.testing.assert_allclose(g.tie_map().evaluate(x), counts / counts.sum(), atol=1e-12)
    assert x[1] == 0.0  # on the bound, not a rounding error inside it


@pytest.mark.parametrize("tiny", [1e-30, 1e-20])
def test_a_dependent_probability_near_zero_does_not_hold_back_the_others(tiny):
    """Counts (600, 400, tiny): the maximum has ``p[2] = tiny / 1000``, below the spacing of
    floats near 1, so ``p[2] = 1 - p[0] - p[1]`` cannot reach it. Its bound is held as a
    constraint on the free vector; before, every step was cut to keep ``p[2] > 0`` and the
    iteration ended after ``max_iter`` steps at ``p = (0.29, 0.71, 1e-16)`` instead of the
    closed form ``counts / total``."""
    counts = np.array([600.0, 400.0, tiny])
    g = _probability_group([0.2, 0.5, 0.3])
    x, info = maximize_through_ties(g, _multinomial(counts, g.slot_index("p")))
    assert info.n_iter < 20
    p = g.tie_map().evaluate(x)
    np.testing.assert_allclose(p[:2], counts[:2] / counts.sum(), rtol=1e-12)
    assert 0 < p[2] < 1e-13


def test_an_objective_rising_towards_a_bound_without_a_maximum_stops():
    """``-0.5e-5 log v``, the variance term of a mixture component without data: it grows
    without limit as ``v -> 0``. The iteration stops early, with the objective increased and
    the variance still positive, instead of running all ``max_iter`` iterations."""
    g = ParameterGroup("q")
    g.add("v", 1.0, min=0)
    a = 0.5e-5

    def objective(s):
        v = s[0]
        if v <= 0:
            return -np.inf, None, None
        return -a * np.log(v), np.array([-a / v]), np.array([[a / v ** 2]])

    x, info = maximize_through_ties(g, objective, max_iter=100)
    assert 0 < x[0] < 1.0 and -a * np.log(x[0]) > 0.0  # it moved uphill
    assert not info.converged and info.n_iter < 100
