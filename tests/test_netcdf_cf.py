"""The netCDF files sciTie writes describe themselves (CF conventions, issue 21 item 4).

Every data variable and coordinate of every dataset a recipe run writes carries ``long_name``
and ``units`` (``"1"`` for dimensionless quantities). Text variables (parameter names, their
units, their tie status) are labels, not quantities: CF gives them no unit, so they need a
``long_name`` only. The files are checked as read back from disk, since that is what a
scientist keeps; spot checks make sure the units written are the true ones, not a default.
"""
import numpy as np
import pytest
import xarray as xr

import sciTie
from sciTie.core import FitResult, ParameterGroup, fit_least_squares
from sciTie.recipes import load_recipe, run_recipe


def cf_problems(ds: xr.Dataset) -> list[str]:
    """Every coordinate or data variable of ``ds`` lacking a CF ``long_name`` or ``units``
    (text variables need no ``units``), and every dimension without a coordinate."""
    problems = []
    for name, var in [*ds.coords.items(), *ds.data_vars.items()]:
        text = var.dtype.kind in "USO"
        missing = [a for a in ("long_name", "units")
                   if not str(var.attrs.get(a, "")).strip() and not (a == "units" and text)]
        if missing:
            problems.append(f"{name}{var.dims} lacks {' and '.join(missing)}")
    problems += [f"dimension {d!r} has no coordinate" for d in ds.dims if d not in ds.coords]
    return problems


def _written(summary, tmp_path) -> dict[str, xr.Dataset]:
    """The datasets of a run as read back from the netCDF files it writes."""
    summary.write(tmp_path)
    return {name: xr.load_dataset(tmp_path / f"{name}.nc") for name in summary.datasets}


def _run(name, tmp_path, **config):
    with sciTie.config_context(**config):
        summary = run_recipe(load_recipe(name, quick=True))
    files = _written(summary, tmp_path)
    for key, ds in files.items():
        assert cf_problems(ds) == [], f"{name}: {key}.nc"
    return files


def test_cf_problems_names_what_is_missing():
    ds = xr.Dataset({"a": ("x", [1.0, 2.0], {"long_name": "a", "units": "m"}),
                     "b": ("x", [1.0, 2.0], {"units": "1"}),
                     "label": ("x", ["p", "q"], {"long_name": "a label"})},
                    coords={"x": ("x", [0, 1], {"long_name": "index"}), "y": [5]})
    assert cf_problems(ds) == ["x('x',) lacks units", "y('y',) lacks long_name and units",
                               "b('x',) lacks long_name"]
    assert cf_problems(xr.Dataset({"c": ("z", [1.0], {"long_name": "c", "units": "1"})})) == [
        "dimension 'z' has no coordinate"]


def _line_fit(unit_a: str, unit_b: str) -> xr.Dataset:
    """A straight-line fit (intercept a, slope b) as ``FitResult.to_xarray()``."""
    g = ParameterGroup("line")
    g.add("a", 1.0, unit=unit_a)
    g.add("b", 2.0, unit=unit_b)
    x = np.linspace(0.0, 1.0, 11)
    y = 1.5 + 0.5 * x + 0.01 * np.sin(7 * x)
    result = fit_least_squares(g, lambda p: (p["a"] + p["b"] * x - y) / 0.01)
    assert isinstance(result, FitResult)
    return result.to_xarray()


def test_fit_result_to_xarray_states_its_units():
    ds = _line_fit("m", "m")
    assert cf_problems(ds) == []
    assert ds["value"].attrs["units"] == "m" and ds["covariance"].attrs["units"] == "(m)^2"
    assert ds["correlation"].attrs["units"] == "1" and ds["term_chisqr"].attrs["units"] == "1"
    # parameters of different units share a variable: 'mixed', each one's unit beside it
    ds = _line_fit("m", "m/s")
    assert cf_problems(ds) == []
    assert ds["value"].attrs["units"] == "mixed" and "'unit'" in ds["value"].attrs["comment"]
    assert ds["unit"].sel(param="b") == "m/s" and ds["slot_unit"].sel(slot="a") == "m"
    # an unstated unit is not claimed dimensionless; "1" states that it is
    assert _line_fit("", "")["value"].attrs["units"] == "unstated"
    assert _line_fit("1", "1")["covariance"].attrs["units"] == "1"


def test_hmm_recipes_write_cf_files(tmp_path):
    eq = _run("earthquakes", tmp_path / "eq")["earthquakes"]
    # the physical time is the dimension coordinate, the sample index beside it
    assert eq["time"].attrs["units"] == "year" and int(eq["time"][0]) == 1900
    assert eq["sample"].attrs["units"] == "1" and int(eq["sample"][-1]) == eq.sizes["time"] - 1
    assert eq["lambdas"].attrs["units"] == "earthquakes/year"
    assert eq["transmat"].attrs["units"] == "1" and eq["state_posterior"].attrs["units"] == "1"
    assert eq["slot_unit"].sel(slot="lambdas[0,0]") == "earthquakes/year"
    assert eq["slot_unit"].sel(slot="transmat[0,1]") == "1"
    assert eq["slot_value"].attrs["units"] == "mixed"


def test_ion_channel_recipe_writes_cf_files(tmp_path):
    ds = _run("ion-channel", tmp_path)["ion-channel"]
    assert ds["time"].attrs["units"] == "ms"
    assert ds["means"].attrs["units"] == "pA" and ds["covars"].attrs["units"] == "(pA)^2"
    assert ds["X"].attrs["units"] == "pA"


@pytest.mark.parametrize("name", ["diffraction-synthetic", "pbso4"])
def test_rietveld_recipes_write_cf_files(name, tmp_path):
    files = _run(name, tmp_path)
    for ds in files.values():
        two_theta = [c for c in ds.dims if str(c).startswith("two_theta")]
        assert two_theta
        for dim in two_theta:  # the pattern's dimension coordinate is the angle itself
            assert ds[dim].attrs["units"] == "degree"


# every bundled PINN problem: convection and Taylor-Green take 2-3 s of CPU at this budget,
# the others 5-25 s (their reference solvers), so they are in the slow tier
@pytest.mark.parametrize("name", [
    "convection", "taylor-green",
    *[pytest.param(n, marks=pytest.mark.slow) for n in
      ("allen-cahn", "allen-cahn-2d", "kuramoto-sivashinsky", "gray-scott")]])
def test_pinn_recipes_write_cf_files(name, tmp_path):
    files = _run(name, tmp_path, budget=0.02)
    for ds in files.values():
        predicted = [v for v in ds.data_vars if v.endswith("_pred")]
        assert predicted, list(ds.data_vars)
        for v in predicted:  # a field and its reference in the same units
            assert ds[v].attrs["units"] == ds[v[:-5] + "_ref"].attrs["units"]


def test_si_tof_recipe_writes_cf_files(tmp_path):
    ds = _run("si-tof", tmp_path)["si-tof"]
    tof = [d for d in ds.dims if str(d).startswith("tof")]
    assert tof and all(ds[d].attrs["units"] == "microsecond" for d in tof)
    assert ds["sepd_obs"].attrs["units"] == "counts"


def _round_trip(ds: xr.Dataset, path) -> xr.Dataset:
    """``ds`` as read back from netCDF (structured attributes stored as JSON text, as the
    command line writes them)."""
    import json

    out = ds.copy()
    out.attrs = {k: v if isinstance(v, (int, float, str)) else json.dumps(v, default=str)
                 for k, v in ds.attrs.items()}
    out.to_netcdf(path)
    return xr.load_dataset(path)


def _check_series_files(ds: xr.Dataset, result: xr.Dataset, temperatures) -> None:
    for d in (ds, result):
        assert cf_problems(d) == []
        # the physical series variable is the dimension coordinate, the labels beside it
        assert d["temperature"].dims == ("temperature",)
        assert d["temperature"].attrs["units"] == "K"
        np.testing.assert_allclose(d["temperature"].values, temperatures)
        assert d["pattern"].dims == ("temperature",)
    assert ds["value"].dims == ("temperature", "param")
    # each refined slot's unit is the one the fitted group states for it
    for name in ds["param"].values:
        assert str(ds["unit"].sel(param=name).values) == str(
            result["slot_unit"].sel(slot=f"p000.{name}").values)
    assert ds["wrp"].attrs["units"] == "%" and ds["gof"].attrs["units"] == "1"


def test_series_results_write_cf_files(tmp_path):
    """A sequential and a parametric refinement of a small synthetic series: their series
    Dataset and their one FitResult both describe themselves, temperature in kelvin as the
    dimension coordinate."""
    import warnings
    from dataclasses import replace

    from sciTie.diffraction import ParametricRefinement, SequentialRefinement, specs_from_dataset
    from sciTie.diffraction.data import make_synthetic_series, synthetic_series_recipe

    data = make_synthetic_series(2, seed=3)
    full = synthetic_series_recipe()
    recipe = replace(full, stages=full.stages[:1], continue_stages=1, max_nfev=6)
    specs = specs_from_dataset(data)
    T = data["temperature"].values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a six-evaluation fit does not converge
        seq = SequentialRefinement(specs, recipe).fit()
        par = ParametricRefinement(specs, recipe, laws={"TiO2.a": "a0"}, start=seq,
                                   max_nfev=3).fit()
    for name, est in (("seq", seq), ("par", par)):
        _check_series_files(_round_trip(est.to_xarray(), tmp_path / f"{name}.nc"),
                            _round_trip(est.result_.to_xarray(), tmp_path / f"{name}_r.nc"),
                            T)


@pytest.mark.slow
def test_series_recipe_writes_cf_files(tmp_path):
    files = _run("cucr2o4-seq", tmp_path)
    ds = files["cucr2o4-seq"]
    assert ds["temperature"].dims == ("temperature",) and ds["temperature"].attrs["units"] == "K"
    assert ds["two_theta"].attrs["units"] == "degree"
    assert ds["tie_difference"].attrs["units"] == "Å"
