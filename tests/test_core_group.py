"""ParameterGroup: slots, ties, the tie matrix G and its three uses."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sciTie import Expression, ParameterGroup


def _model(slots):
    """A nonlinear function of four slots, used to build slot Jacobians."""
    a, b, c, d = slots
    return np.array([a * b, np.sin(c) + d**2, a * np.exp(0.1 * d), b * c - a, a + b + c + d])


def _model_jac(slots):
    a, b, c, d = slots
    return np.array([[b, a, 0, 0], [0, 0, np.cos(c), 2 * d],
                     [np.exp(0.1 * d), 0, 0, 0.1 * a * np.exp(0.1 * d)],
                     [-1, c, b, 0], [1, 1, 1, 1]], dtype=float)


def _group(kind, scale, offset):
    g = ParameterGroup("g")
    for n, v in zip("abcd", [0.7, -1.2, 0.4, 1.3]):
        g.add(n, v)
    if kind == "equal":
        g.tie(["b", "d"], to="a")
    elif kind == "linear":
        g.tie("b", to="a", scale=scale, offset=offset)
        g.tie("d", to="c", scale=-scale)
    else:
        g.constrain("b", f"{scale}*a**2 + sin(c)")
        g.constrain("d", "a*c + exp(0.2*c)")
    return g


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["equal", "linear", "expr"]),
       scale=st.floats(-3, 3).filter(lambda s: abs(s) > 0.05),
       offset=st.floats(-2, 2),
       free=st.lists(st.floats(-1.5, 1.5), min_size=2, max_size=2))
def test_reduce_jacobian_equals_finite_differences(kind, scale, offset, free):
    g = _group(kind, scale, offset)
    x = np.array(free)
    assert g.n_free == 2
    J_free = g.reduce_jacobian(_model_jac(g.unpack(x)), x)
    h = 1e-6
    fd = np.column_stack([(_model(g.unpack(x + h * e)) - _model(g.unpack(x - h * e))) / (2 * h)
                          for e in np.eye(2)])
    np.testing.assert_allclose(J_free, fd, rtol=1e-6, atol=1e-7)


def test_tie_matrix_shapes_and_values():
    g = ParameterGroup("cell")
    for n in "abc":
        g.add(n, 5.0, min=0)
    g.add("alpha", 90.0, vary=False)
    g.tie("b", to="a")
    g.tie("c", to="a", scale=1.5, offset=0.25)
    G = g.tie_matrix()
    assert G.shape == (4, 1)
    np.testing.assert_array_equal(G.toarray().ravel(), [1.0, 1.0, 1.5, 0.0])
    np.testing.assert_allclose(g.unpack([2.0]), [2.0, 2.0, 3.25, 90.0])
    assert g.free_names == ["a"] and g.n_slots == 4


def test_array_parameters_tie_row_wise_and_pool_sums_rows():
    g = ParameterGroup("emission")
    g.add("mu", np.arange(10.0).reshape(5, 2))
    g.tie(["mu[1]", "mu[2]"], to="mu[0]")
    g.tie("mu[4]", to="mu[3]")
    assert g.n_free == 4
    stats = np.arange(10.0).reshape(5, 2) + 1.0  # slot axis first (flattened parameter)
    pooled = g.pool(stats.ravel())
    brute = np.array([stats[:3, 0].sum(), stats[:3, 1].sum(), stats[3:, 0].sum(), stats[3:, 1].sum()])
    np.testing.assert_allclose(pooled, brute)
    # extra statistics axes are carried along
    pooled2 = g.pool(np.stack([stats.ravel(), 2 * stats.ravel()], axis=1))
    np.testing.assert_allclose(pooled2, np.column_stack([brute, 2 * brute]))
    vals = g.valuesdict()
    np.testing.assert_array_equal(vals["mu"][2], vals["mu"][0])
    np.testing.assert_array_equal(vals["mu[4]"], [6.0, 7.0])


def test_shared_child_group_is_one_set_of_slots():
    structure = ParameterGroup("structure")
    structure.add("a", 8.48)
    xray = ParameterGroup("xray")
    xray.add("scale", 1.0)
    xray.add_group(structure)
    neutron = ParameterGroup("neutron")
    neutron.add("scale", 2.0)
    neutron.add_group(structure)
    joint = ParameterGroup("joint")
    joint.add_group(xray)
    joint.add_group(neutron)
    assert joint.free_names == ["xray.scale", "xray.structure.a", "neutron.scale"]
    assert xray.n_free == 2 and neutron.n_free == 2 and joint.n_free == 3


def test_cross_group_expression_resolves_in_the_parent():
    s = ParameterGroup("structure")
    s.add("a", 8.0)
    n = ParameterGroup("neutron")
    n.add("a", 8.0)
    n.add("strain", 1e-3)
    joint = ParameterGroup("joint")
    joint.add_group(s)
    joint.add_group(n)
    n.constrain("a", "structure.a * (1 + strain)")
    np.testing.assert_allclose(joint.valuesdict([8.2, 2e-3])["neutron.a"], 8.2 * 1.002)
    G = joint.tie_matrix([8.2, 2e-3]).toarray()
    np.testing.assert_allclose(G, [[1, 0], [1.002, 8.2], [0, 1]])
    with pytest.raises(ValueError, match="unknown name 'structure.a'"):
        n.tie_matrix()  # alone, the neutron group cannot see the structure


def test_propagate_covariance_matches_monte_carlo():
    g = ParameterGroup("g")
    g.add("p", 1.2)
    g.add("q", 0.8)
    g.add("r", 0.0)
    g.add("s", 0.0)
    g.tie("r", to="p", scale=2.0, offset=1.0)
    g.constrain("s", "p*q + q**2")
    x0 = g.pack()
    cov = np.array([[0.010, 0.004], [0.004, 0.020]]) * 1e-2
    analytic = g.propagate_covariance(cov)
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(x0, cov, size=200_000)
    slots = np.array([g.unpack(d) for d in draws[:20_000]])
    mc = np.cov(slots, rowvar=False)
    # Monte-Carlo standard error of a covariance entry ~ sqrt(2/n) * scale
    np.testing.assert_allclose(analytic, mc, rtol=0.05, atol=2e-6)


def test_fix_free_and_element_vary():
    g = ParameterGroup("g")
    g.add("w", np.ones(3))
    g.fix("w[1]")
    assert g.free_names == ["w[0]", "w[2]"]
    g.free("w")
    assert g.n_free == 3
    g.fix("w")
    assert g.n_free == 0


def test_set_free_writes_tied_values_back():
    g = ParameterGroup("g")
    g.add("a", 1.0)
    g.add("b", 0.0)
    g.constrain("b", "3*a")
    g.set_free([2.0])
    assert g["a"].value == 2.0 and g["b"].value == 6.0


def test_expression_gradient_equals_finite_differences():
    e = Expression("a*sin(b) + sqrt(c)/b - arctan2(a, c) + hypot(a, b)**1.5 + log10(c)*exp(-a)")
    v = np.array([0.3, 1.1, 2.5])
    val, grad = e.evaluate_with_gradient(v)
    h = 1e-6
    fd = [(e.evaluate(v + h * d) - e.evaluate(v - h * d)) / (2 * h) for d in np.eye(3)]
    np.testing.assert_allclose(grad, fd, rtol=1e-7)
    assert val == pytest.approx(0.3 * np.sin(1.1) + np.sqrt(2.5) / 1.1 - np.arctan2(0.3, 2.5)
                                + np.hypot(0.3, 1.1) ** 1.5 + np.log10(2.5) * np.exp(-0.3))


def test_an_evaluated_expression_pickles_and_gives_the_same_numbers():
    """Expressions compile on first use (closures); a pickled copy recompiles and agrees
    bit for bit, also on the branches of min, max, abs and unary minus."""
    import pickle

    e = Expression("-min(a, b) + max(a, -b) * abs(a - b) / (1 + b**2)")
    points = [np.array([0.3, 1.1]), np.array([2.0, -0.5]), np.array([-1.0, -0.7])]
    before = [e.evaluate_with_gradient(v) for v in points]
    copy = pickle.loads(pickle.dumps(e))
    for v, (val, grad) in zip(points, before):
        a, b = v
        assert val == -min(a, b) + max(a, -b) * abs(a - b) / (1 + b ** 2)
        val2, grad2 = copy.evaluate_with_gradient(v)
        assert val2 == val and np.array_equal(grad2, grad)
        h = 1e-6
        fd = [(e.evaluate(v + h * d) - e.evaluate(v - h * d)) / (2 * h) for d in np.eye(2)]
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_docstring_examples_run_as_shown():
    import doctest

    import sciTie.core.group as group_module  # the ParameterGroup docstring examples

    outcome = doctest.testmod(group_module)
    assert outcome.attempted >= 4 and outcome.failed == 0
