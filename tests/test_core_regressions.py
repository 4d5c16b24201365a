"""Defects found in review of the core, each pinned by a test."""
import warnings

import sciTie

import numpy as np
import pytest
import xarray as xr

from sciTie import Expression, ExpressionError, Parameter, ParameterGroup, ResidualTerm, fit_least_squares
from sciTie.cli import main


def _shared_tree():
    s = ParameterGroup("structure")
    s.add("a", 8.0)
    x = ParameterGroup("xray")
    x.add("scale", 1.0)
    x.add_group(s)
    n = ParameterGroup("neutron")
    n.add("scale", 2.0)
    n.add_group(s)
    j = ParameterGroup("joint")
    j.add_group(x)
    j.add_group(n)
    return j


def test_constraint_never_binds_to_a_namesake_in_another_tree():
    s = ParameterGroup("s")
    s.add("a", 2.0)
    x = ParameterGroup("x")
    x.add("k", 10.0)
    x.add_group(s)
    y = ParameterGroup("y")
    y.add("k", 0.5)
    y.add_group(s)
    y.constrain("s.a", "2*k")
    assert y.valuesdict()["s.a"] == 1.0
    with pytest.raises(ValueError, match="not part of group 'x'"):
        x.valuesdict()


def test_every_path_to_a_shared_child_reads_the_same_slot():
    j = _shared_tree()
    v = j.valuesdict([3.0, 8.5, 4.0])
    assert v["neutron.structure.a"] == v["xray.structure.a"] == 8.5
    assert j.slot_index("neutron.structure.a") == j.slot_index("xray.structure.a")
    res = fit_least_squares(j, lambda v: np.array([v["xray.scale"] - 1, v["neutron.scale"] - 2,
                                                   v["neutron.structure.a"] - 8.2, 0.01]))
    assert res.value("neutron.structure.a") == pytest.approx(8.2)


def test_finite_difference_stderr_near_zero_matches_analytic():
    t = np.linspace(0, 1, 30)
    X = np.column_stack([np.ones_like(t), t])
    noise = np.random.default_rng(1).normal(0, 1e-3, 30)
    noise -= X @ np.linalg.lstsq(X, noise, rcond=None)[0]
    y = 1e-14 + 2 * t + noise
    g = ParameterGroup("g")
    g.add("c", 1.0)
    g.add("m", 1.0)
    res = lambda v: (v["c"] + v["m"] * t - y) / 1e-3  # noqa: E731
    fd = fit_least_squares(g, res).stderr
    exact = fit_least_squares(g, res, lambda v: X / 1e-3).stderr
    np.testing.assert_allclose(fd, exact, rtol=1e-5)


def test_a_parameter_object_belongs_to_one_group():
    p = Parameter("q", 1.0)
    g1, g2 = ParameterGroup("g1"), ParameterGroup("g2")
    g1.add(p)
    with pytest.raises(ValueError, match="already belongs to group 'g1'"):
        g2.add(p)


def test_tied_slot_outside_its_bounds_is_reported():
    g = ParameterGroup("g")
    g.add("a", 1.0)
    g.add("b", 0.5, max=1.0)
    g.tie("b", to="a", scale=2.0)
    with pytest.warns(sciTie.errors.FitWarning, match="outside their own bounds: b"):
        r = fit_least_squares(g, lambda v: np.array([v["a"] - 3.0, v["b"] - 6.0]))
    assert "outside its bounds" in r.report()


def test_untie_of_an_expr_parameter_keeps_its_value():
    g = ParameterGroup("g")
    g.add("a", 3.0)
    g.add("b", expr="2*a")
    assert g["b"].value == 6.0  # stored values follow the tie at once
    g.untie("b")
    assert g["b"].expr is None and g.free_names == ["a", "b"]
    np.testing.assert_allclose(g.pack(), [3.0, 6.0])


def test_bounds_changes_are_seen_and_bad_starts_are_named():
    g = ParameterGroup("g")
    g.add("a", 1.0)
    g.bounds()
    g["a"].min = 0.5
    g["a"].max = 2.0
    np.testing.assert_array_equal(g.bounds(), ([0.5], [2.0]))
    g["a"].value = 10.0
    with pytest.raises(ValueError, match="a=10 not in"):
        fit_least_squares(g, lambda v: np.array([v["a"], 1.0]))
    h = ParameterGroup("h")
    h.add("a", 1.0, min=1.0, max=1.0)
    with pytest.raises(ValueError, match="a have min == max"):
        fit_least_squares(h, lambda v: np.array([v["a"], 1.0]))


def test_cli_reports_unavailable_models_and_stray_options(capsys, monkeypatch, tmp_path):
    from sciTie.recipes import _recipe

    recipe = tmp_path / "g.toml"
    recipe.write_text('kind = "ghost"\nname = "g"\n')
    assert main(["fit", str(recipe)]) == 2
    assert "g.toml:1 [kind]: kind must be one of 'hmm'" in capsys.readouterr().err
    monkeypatch.setitem(_recipe.KINDS, "hmm", "sciTie.no_such:KIND")
    recipe.write_text('kind = "hmm"\nname = "g"\n')
    assert main(["fit", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "recipe kind 'hmm' is not available in this build" in err
    with pytest.raises(SystemExit):
        main(["datasets", "--bogus"])


def test_term_names_survive_netcdf_and_restraints_name_is_reserved(tmp_path):
    g = ParameterGroup("g")
    g.add("a", 1.0)
    f = lambda v: np.array([v["a"] - 2.0, 0.1])  # noqa: E731
    r = fit_least_squares(g, [ResidualTerm("x-ray/pattern 1", f)])
    path = tmp_path / "r.nc"
    r.to_xarray().to_netcdf(path)
    back = xr.load_dataset(path)
    assert list(back.term.values) == ["x-ray/pattern 1"]
    with pytest.raises(ValueError, match="reserved"):
        fit_least_squares(g, [ResidualTerm("restraints", f)])


def test_tie_matrix_is_a_copy():
    g = ParameterGroup("g")
    g.add("a", 1.0)
    g.add("b", 1.0)
    g.tie("b", to="a")
    G = g.tie_matrix()
    G.data *= 0
    np.testing.assert_array_equal(g.tie_matrix().toarray().ravel(), [1.0, 1.0])


def test_expression_edge_cases():
    with pytest.raises(ExpressionError, match="too large"):
        Expression("a ** 1" + "0" * 400)
    with pytest.raises(ExpressionError, match="no derivative at 0"):
        Expression("a**0.5").evaluate_with_gradient([0.0])


def test_bad_jacobians_and_shapes_are_named():
    g = ParameterGroup("g")
    g.add("a", 1.0)
    with pytest.raises(ValueError, match="not finite for a"):
        fit_least_squares(g, lambda v: np.array([v["a"], 1.0]), lambda v: [[np.nan], [1.0]])
    with pytest.raises(ValueError, match="empty"):
        fit_least_squares(g, lambda v: np.zeros(0))
    with pytest.raises(ValueError, match="'p': min, max and vary"):
        Parameter("p", [1.0, 2.0], vary=[True, False, True])


def test_fix_of_a_tied_slot_is_refused():
    g = ParameterGroup("g")
    g.add("a", 1.0)
    g.add("b", 1.0)
    g.tie("b", to="a")
    with pytest.raises(ValueError, match="tied or constrained"):
        g.fix("b")
