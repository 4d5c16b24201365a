"""A problem's coefficients reach residual and reference alike, and a problem has one set of
defaults shared by the Python API and its recipe (issue 18, items 6 and 7)."""
import dataclasses
import json
import warnings

import numpy as np
import pytest
import xarray as xr

from sciTie.cli import main
from sciTie.errors import FitWarning, ValidationError
from sciTie.pinn import (PDEProblem, PeriodicPINN, allen_cahn, convection, etdrk4_solve,
                         recommended_settings, semilinear_reference, taylor_green)
from sciTie.pinn._recipes import GENERIC, RECOMMENDABLE
from sciTie.recipes import load_recipe
from sciTie.pinn.recipe import build_problem, model_settings

from pinn_settings import plain

# the heat equation u_t = nu u_xx on [0, 2 pi], u(x, 0) = sin x: exact sin(x) exp(-nu t)
_HEAT = '''
import numpy as np

def residual(f):
    return f.u_t - f.parameters["nu"] * f.u_xx

def initial(x):
    return np.sin(x)

def linear(k, parameters):
    return -parameters["nu"] * k ** 2

def nonlinear(u, parameters):
    return 0.0 * u

def linear_blind(k):          # a reference term that cannot see the coefficients
    return -0.1 * k ** 2

def nonlinear_blind(u):
    return 0.0 * u
'''

_HEAT_RECIPE = '''kind = "pinn"
name = "heat"

[problem]
file = "heat.py"
domain_x = [0.0, 6.283185307179586]
parameters = { nu = 0.1 }

[problem.etdrk4]
linear = "linear"
nonlinear = "nonlinear"
n_points = 64
dt = 0.01

[model]
hidden = [8]
adam_steps = 40
lm_steps = 6
n_collocation = 96
n_initial = 32
eval_grid = [33, 11]
'''


def _heat(tmp_path, recipe=_HEAT_RECIPE):
    (tmp_path / "heat.py").write_text(_HEAT)
    path = tmp_path / "heat.toml"
    path.write_text(recipe)
    return path


def test_overridden_coefficient_reaches_the_reference(tmp_path):
    # issue 18's check: a problem of the user's own with a coefficient overridden from the
    # command line; the reported error equals the error against the exact solution
    path = _heat(tmp_path)
    out = tmp_path / "out.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)  # the terms take the parameters: no warning
        assert main(["fit", str(path), "--nu", "0.3", "--json", str(out),
                     "--out", str(tmp_path / "res")]) == 0
    ds = xr.load_dataset(tmp_path / "res" / "heat.nc")
    x, t = ds["x"].values, ds["t"].values
    exact = np.sin(x)[None, :] * np.exp(-0.3 * t)[:, None]
    pred = ds["u_pred"].transpose("t", "x").values
    independent = np.linalg.norm(pred - exact) / np.linalg.norm(exact)
    reported = json.loads(out.read_text())["metrics"]["rel_l2"]
    assert reported == pytest.approx(independent, rel=1e-6)
    assert independent < 0.2  # a tiny budget, but the network did learn the decay
    # the reference itself is the exact solution of nu = 0.3 (not of the file's 0.1)
    assert np.allclose(ds["u_ref"].transpose("t", "x").values, exact, atol=1e-9)


def test_set_override_and_blind_reference_warns(tmp_path):
    recipe = load_recipe(_heat(tmp_path), overrides=["problem.parameters.nu=0.3"])
    problem = build_problem(recipe)
    x, t = np.linspace(0, 6, 7), np.linspace(0, 1, 5)
    assert np.allclose(problem.reference_values(x, t)["u"],
                       np.sin(x)[None] * np.exp(-0.3 * t)[:, None], atol=1e-9)
    blind = _HEAT_RECIPE.replace('linear = "linear"', 'linear = "linear_blind"').replace(
        'nonlinear = "nonlinear"', 'nonlinear = "nonlinear_blind"')
    with pytest.warns(FitWarning, match="do.*not take the problem's parameters.*nu"):
        build_problem(load_recipe(_heat(tmp_path, blind),
                                  overrides=["problem.parameters.nu=0.3"]))


def test_reference_follows_a_changed_problem():
    # the same through the Python API: a problem whose coefficients are replaced gets the
    # reference of the new coefficients (semilinear_reference and the bundled exact ones)
    x, t = np.linspace(-1, 1, 33), np.linspace(0, 0.2, 3)
    ac = allen_cahn(eps=1e-3, n_points=64, dt=1e-2)
    moved = dataclasses.replace(ac, parameters={"eps": 2e-2, "gamma": 1.0})
    direct = allen_cahn(eps=2e-2, gamma=1.0, n_points=64, dt=1e-2)
    assert np.allclose(moved.reference_values(x, t)["u"], direct.reference_values(x, t)["u"],
                       atol=1e-14)
    assert not np.allclose(moved.reference_values(x, t)["u"], ac.reference_values(x, t)["u"])
    conv = dataclasses.replace(convection(3.0), parameters={"beta": 1.5})
    xx = np.linspace(0, 6, 5)
    assert np.allclose(conv.reference_values(xx, t)["u"],
                       np.sin(xx[None] - 1.5 * t[:, None]), atol=1e-15)
    tg = dataclasses.replace(taylor_green(0.1), parameters={"nu": 0.4})
    ref = tg.reference_values(xx, xx, np.array([0.0, 1.0]))
    assert np.allclose(ref["u"][1], ref["u"][0] * np.exp(-0.8), atol=1e-14)


def test_one_and_two_argument_terms_and_keyword_parameters():
    # one-argument terms keep working; linear(k, parameters) and a keyword `parameters` get
    # the coefficients; the solver's own parameters= reaches them
    exact = lambda x, t, nu: np.sin(x)[None] * np.exp(-nu * t)[:, None]  # noqa: E731
    x, t = np.linspace(0, 6, 9), np.linspace(0, 1, 6)
    plain_ref = semilinear_reference(lambda k: -0.2 * k ** 2, lambda u: 0 * u, np.sin,
                                     (0, 2 * np.pi), n_points=32, dt=0.05)
    assert np.allclose(plain_ref(x, t), exact(x, t, 0.2), atol=1e-10)
    ref = semilinear_reference(lambda k, p: -p["nu"] * k ** 2,
                               lambda u, *, parameters: 0 * u, np.sin, (0, 2 * np.pi),
                               n_points=32, dt=0.05, parameters={"nu": 0.2})
    assert np.allclose(ref(x, t), exact(x, t, 0.2), atol=1e-10)
    assert np.allclose(ref(x, t, parameters={"nu": 0.7}), exact(x, t, 0.7), atol=1e-10)
    problem = PDEProblem(lambda f: f.u_t - f.parameters["nu"] * f.u_xx, np.sin,
                         (0, 2 * np.pi), (0, 1), ref, parameters={"nu": 0.45})
    assert np.allclose(problem.reference_values(x, t)["u"], exact(x, t, 0.45), atol=1e-10)


def test_one_set_of_defaults_for_api_and_recipe(tmp_path):
    # a bundled problem: the API's unset settings are the recipe's, for forward and inverse
    for name, factory in (("convection", convection), ("allen-cahn", allen_cahn)):
        s = PeriodicPINN(factory())._resolved_settings()
        rec = recommended_settings(name)
        assert {k: s[k] for k in RECOMMENDABLE} == {k: rec[k] for k in RECOMMENDABLE}
        recipe = load_recipe(name)
        kw = model_settings(recipe, build_problem(recipe), inverse=False)
        assert {k: kw[k] for k in RECOMMENDABLE} == {k: rec[k] for k in RECOMMENDABLE}
        inv = PeriodicPINN(factory(), learn={next(iter(factory().parameters)): 1.0})
        assert inv._resolved_settings()["n_windows"] == 1
    # explicit settings win; a problem of one's own gets the generic defaults, in the API
    # and in its recipe alike
    s = PeriodicPINN(convection(), hidden=(8,), n_windows=3)._resolved_settings()
    assert s["hidden"] == (8,) and s["n_windows"] == 3 and s["lm_steps"] == 60
    own = PDEProblem(lambda f: f.u_t, np.sin, (0, 1))
    assert {k: PeriodicPINN(own)._resolved_settings()[k] for k in RECOMMENDABLE} == GENERIC
    recipe = load_recipe(_heat(tmp_path, _HEAT_RECIPE.split("[model]")[0]))
    kw = model_settings(recipe, build_problem(recipe), inverse=False)
    assert {k: kw[k] for k in RECOMMENDABLE} == GENERIC
    # a problem may recommend settings of its own (a dict or a function of the mode)
    mine = PDEProblem(lambda f: f.u_t, np.sin, (0, 1), settings={"hidden": (5, 5)})
    assert PeriodicPINN(mine)._resolved_settings()["hidden"] == (5, 5)
    with pytest.raises(ValidationError, match="recommend"):
        PeriodicPINN(PDEProblem(lambda f: f.u_t, np.sin, (0, 1),
                                settings={"colour": "red"}))._validate()


@pytest.mark.filterwarnings("ignore::sciTie.errors.ConvergenceWarning")
def test_fitted_settings_are_recorded():
    m = PeriodicPINN(convection(1.0), hidden=(6,), n_windows=1, adam_steps=2, lm_steps=0,
                     n_collocation=32, n_initial=16, eval_grid=(9, 5)).fit()
    assert m.settings_["hidden"] == (6,) and m.settings_["ic_weight"] == 100.0
    assert m.get_params()["ic_weight"] is None  # scikit-learn: __init__ stores arguments
    assert json.loads(m.result_.data.attrs["settings"])["ic_weight"] == 100.0


def test_the_documented_defaults_table_is_what_problems_get():
    """docs/pinn.rst states every problem's defaults in a table; the API must use them."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "pinn.rst").read_text()
    head = text.index("problem                 windows")
    rows = [r for r in text[head:].split("\n\n")[0].splitlines()[2:] if not r.startswith("==")]
    keys = ("n_windows", "hidden", "n_modes", "adam_steps", "learning_rate", "lm_steps",
            "n_collocation", "n_initial", "ic_weight")
    seen = set()
    for row in rows:
        name, rest = row[:24].strip(), row[24:].split()
        rest = [rest[0], " ".join(rest[1:3])] + rest[3:]       # "32, 32" is one column
        documented = dict(zip(keys, rest))
        got = GENERIC if name.startswith("generic") else recommended_settings(name)
        assert str(got["n_windows"]) == documented["n_windows"], name
        assert ", ".join(map(str, got["hidden"])) == documented["hidden"], name
        for k in ("n_modes", "adam_steps", "lm_steps", "n_collocation", "n_initial"):
            assert got[k] == int(documented[k]), (name, k)
        for k in ("learning_rate", "ic_weight"):
            assert got[k] == float(documented[k]), (name, k)
        seen.add(name)
    assert len(seen) == 7


@pytest.mark.filterwarnings("ignore::sciTie.errors.ConvergenceWarning")
def test_window_budget_multiplies_the_steps_of_the_first_windows():
    # counted independently: the optimiser records one history entry per Adam step and per
    # Levenberg-Marquardt iteration, tagged with its window
    m = PeriodicPINN(convection(1.0), **plain(
        hidden=(6,), n_windows=3, n_collocation=32, n_initial=16, n_boundary=8, adam_steps=4,
        lm_steps=2, window_budget=(2.5, 1.5), eval_grid=(9, 7), budget=1.0)).fit()
    taken = [[sum(1 for h in m.history_ if h["window"] == w and h["stage"] == stage)
              for w in range(3)] for stage in (0, 2)]
    assert taken == [[10, 6, 4], [5, 3, 2]]  # round(4 * 2.5), round(2 * 1.5) ...
    assert (m.n_adam_steps_, m.n_lm_steps_) == (20, 10)
    assert m.settings_["window_budget"] == (2.5, 1.5) and len(m.networks_) == 3
    # the global budget multiplies on top
    m = PeriodicPINN(convection(1.0), **plain(
        hidden=(6,), n_windows=2, n_collocation=32, n_initial=16, n_boundary=8, adam_steps=3,
        window_budget=(2.0,), eval_grid=(9, 5), budget=2.0)).fit()
    assert [sum(1 for h in m.history_ if h["window"] == w) for w in range(2)] == [12, 6]
