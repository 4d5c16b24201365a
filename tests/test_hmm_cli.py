"""HMM recipes: the bundled earthquakes / ion-channel fits, users' own files, the quick form."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from sciTie.cli import main
from sciTie.errors import RecipeError
from sciTie.hmm import TiedGaussianHMM, dwell_times
from sciTie.recipes import load_recipe, parse_recipe, run_recipe


def test_earthquakes_recipe_reproduces_the_published_fits(tmp_path):
    s = run_recipe(load_recipe("earthquakes", overrides=["fit.restarts=4",
                                                         "model.n_components=[2, 3]"]))
    assert round(s.metrics["log_likelihood_2"], 4) == -341.8787
    assert round(s.metrics["log_likelihood_3"], 4) == -328.5275
    assert s.metrics["best_n_states_bic"] == 2
    p = s.parameters
    assert p["lambdas[0,0]"]["value"] < p["lambdas[1,0]"]["value"]  # states sorted by rate
    assert 0 < p["lambdas[0,0]"]["stderr"] < 2
    # the complete parameter set; its free entries are the model's free parameters
    assert {"startprob[0]", "transmat[0,1]", "transmat[1,1]"} <= set(p)
    assert sum(v["status"] == "free" for v in p.values()) == s.metrics["n_free_parameters"]
    written = s.write(tmp_path)
    assert sorted(q.name for q in written) == ["earthquakes.nc", "earthquakes.png"]
    ds = xr.open_dataset(tmp_path / "earthquakes.nc")
    assert ds.sizes["time"] == 107 and int(ds["time"][0]) == 1900 and int(ds["sample"][0]) == 0
    assert ds["time"].attrs["units"] == "year"
    # one labelling everywhere: JSON, netCDF and report agree on state 0
    assert float(ds["lambdas"][0, 0]) == pytest.approx(p["lambdas[0,0]"]["value"], rel=1e-12)
    assert float(ds["slot_value"].sel(slot="lambdas[0,0]")) == pytest.approx(
        p["lambdas[0,0]"]["value"], rel=1e-12)
    assert f"lambdas[0,0]:   {p['lambdas[0,0]']['value']:.8g}" in s.report
    # provenance: version, settings, the recipe itself
    assert ds.attrs["sciTie_version"] and 'kind = "hmm"' in ds.attrs["recipe"]
    assert "override: fit.restarts=4" in ds.attrs["recipe"]
    ds.close()


def test_ion_channel_recipe_quick():
    s = run_recipe(load_recipe("ion-channel", quick=True))
    m, p = s.metrics, s.parameters
    assert abs(p["means[0,0]"]["value"]) < 0.02 and abs(p["means[3,0]"]["value"] - 1) < 0.02
    assert np.sqrt(p["covars[0,0]"]["value"]) == pytest.approx(0.25, rel=0.03)
    assert m["bic"] < m["bic_two_state"]
    assert m["max_rel_err_transitions"] < 0.5  # 50k samples: rough rates
    rates = {k: v for k, v in p.items() if k.startswith("rate[")}
    assert len(rates) == 8 and all(v["stderr"] > 0 for v in rates.values())
    assert all(v["unit"] == "1/ms" for v in rates.values())
    # a rate is the transition probability per sample divided by dt
    assert rates["rate[0,1]"]["value"] == pytest.approx(p["transmat[0,1]"]["value"] / 0.1)


def _series(tmp_path, n_seq=2):
    """Two-level data with a known structure, written as CSV by hand."""
    rng = np.random.default_rng(1)
    z = np.repeat([0, 1, 0, 1, 0], [200, 150, 100, 250, 100])
    x = np.where(z == 0, rng.normal(1.0, 0.3, z.size), rng.normal(2.5, 0.3, z.size))
    seq = (np.arange(z.size) >= 400).astype(int)
    path = tmp_path / "rates.csv"
    with open(path, "w") as fh:
        fh.write("# measured rates\nt,rate,seq\n")
        for i, (v, s) in enumerate(zip(x, seq)):
            fh.write(f"{0.5 * i},{float(v)!r},{s}\n")
    return path, x[:, None], np.array([400, 400])


def test_users_csv_through_a_recipe_equals_the_python_api(tmp_path):
    path, X, lengths = _series(tmp_path)
    recipe = tmp_path / "my.toml"
    recipe.write_text('kind = "hmm"\nname = "rates"\n[data]\nfile = "rates.csv"\n'
                      'columns = ["rate"]\nlengths_column = "seq"\ntime_column = "t"\n'
                      'time_unit = "s"\nunit = "Hz"\n[model]\nfamily = "gaussian"\n'
                      'n_components = 2\nties = ["covars[1] = covars[0]"]\n[fit]\n'
                      'random_state = 3\n')
    s = run_recipe(load_recipe(recipe))
    # the data's unit labels the observations and the emission parameters
    assert s.parameters["means[0,0]"]["unit"] == "Hz"
    assert s.parameters["covars[0,0]"]["unit"] == "(Hz)^2"
    assert s.parameters["transmat[0,1]"]["unit"] == ""
    ds = s.datasets["rates"]
    assert (ds["X"].attrs["units"], ds["means"].attrs["units"], ds["covars"].attrs["units"]) \
        == ("Hz", "Hz", "(Hz)^2")
    api = TiedGaussianHMM(2, ties=["covars[1] = covars[0]"], random_state=3, n_iter=100,
                          tol=1e-4).fit(X, lengths)
    order = np.argsort(api.means_[:, 0])
    assert s.metrics["log_likelihood"] == pytest.approx(api.score(X, lengths), rel=1e-12)
    # the same states, in whichever order the fit labels them
    np.testing.assert_allclose(sorted(s.parameters[f"means[{k},0]"]["value"] for k in range(2)),
                               api.means_[order, 0], rtol=1e-10)
    assert s.parameters["covars[1,0]"]["status"] == "== 'covars[0,0]'"


def test_quick_form_on_the_command_line(tmp_path, capsys, monkeypatch):
    path, X, lengths = _series(tmp_path)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "res.json"
    rc = main(["fit", "hmm", "--data", "rates.csv", "--column", "rate", "--family", "gaussian",
               "--states", "2", "--tie", "covars[1] = covars[0]", "--lengths-column", "seq",
               "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["parameters"]["covars[1,0]"]["value"] == data["parameters"]["covars[0,0]"]["value"]
    # the same command again refuses to replace the JSON, before fitting
    rc = main(["fit", "hmm", "--data", "rates.csv", "--column", "rate", "--family", "gaussian",
               "--states", "2", "--json", str(out)])
    assert rc == 2 and "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("body, key, match", [
    ('[data]\nfile = "nope.csv"\ncolumns = ["x"]\n[model]\nfamily = "poisson"\nn_components = 2',
     "data.file", "does not exist"),
    ('[data]\ndataset = "earthquakes"\ncolumns = ["count"]\n[model]\nfamily = "poisson"\n'
     'n_components = 2\nties = ["lambda[1] = lambdas[0]"]', "model.ties", "did you mean 'lambdas'"),
    ('[data]\ndataset = "earthquakes"\ncolumns = ["count"]\n[model]\nfamily = "poison"\n'
     'n_components = 2', "model.family", "must be one of"),
    ('[data]\ndataset = "earthquakes"\ncolumns = ["count"]\n[model]\nfamily = "poisson"\n'
     'n_components = "two"', "model.n_components", "integer"),
    ('[data]\ndataset = "earthquakes"\ncolumns = ["count"]\n[model]\nfamily = "poisson"\n'
     'n_components = 2\nstates = 2', "model.states", "unknown key"),
    ('[data]\ndataset = "earthquakes"\n[model]\nfamily = "poisson"\nn_components = 2\n'
     '[fit]\nrestarts = 0', "fit.restarts", ">= 1"),
])
def test_recipe_errors_name_file_key_and_line(tmp_path, body, key, match):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('kind = "hmm"\nname = "bad"\n' + body + "\n")
    with pytest.raises(RecipeError, match=match) as exc:
        load_recipe(recipe)
    assert exc.value.path == str(recipe) and exc.value.key == key
    assert exc.value.line is not None and str(exc.value).startswith(f"{recipe}:{exc.value.line}")


def test_malformed_toml_names_the_line(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('kind = "hmm"\nname = "x"\n[model\n')
    with pytest.raises(RecipeError, match="not valid TOML") as exc:
        load_recipe(recipe)
    assert exc.value.line == 3


def test_recipe_printing_and_keys(capsys):
    assert main(["recipe", "earthquakes"]) == 0
    text = capsys.readouterr().out
    assert parse_recipe(text).name == "earthquakes"
    assert main(["recipe", "hmm", "--keys"]) == 0
    keys = capsys.readouterr().out
    assert "model.ties" in keys and "data.lengths_column" in keys
    assert main(["recipe", "nope"]) == 2
    assert "no bundled recipe 'nope'" in capsys.readouterr().err


def test_dwell_times():
    d = dwell_times(np.array([0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0]))
    np.testing.assert_array_equal(d[1], [3, 2])
    np.testing.assert_array_equal(d[0], [1])  # first and last runs are censored


@pytest.mark.parametrize("fmt", ["npy", "netcdf"])
def test_npy_and_netcdf_data_through_a_recipe(tmp_path, fmt):
    rng = np.random.default_rng(7)
    counts = np.r_[rng.poisson(3, 120), rng.poisson(9, 80), rng.poisson(3, 100)].astype(float)
    if fmt == "npy":
        np.save(tmp_path / "counts.npy", counts[:, None])
        data = 'file = "counts.npy"\ncolumns = ["0"]\nlengths = [150, 150]'
    else:
        xr.Dataset({"n": ("t", counts), "seq": ("t", np.repeat([0, 1], 150))}).to_netcdf(
            tmp_path / "counts.nc")
        data = 'file = "counts.nc"\ncolumns = ["n"]\nlengths_column = "seq"'
    (tmp_path / "r.toml").write_text(f'kind = "hmm"\nname = "c"\n[data]\n{data}\n[model]\n'
                                     'family = "poisson"\nn_components = 2\n'
                                     'ties = ["lambdas[1] = 3 * lambdas[0]"]\n')
    s = run_recipe(load_recipe(tmp_path / "r.toml"))
    from sciTie.hmm import TiedPoissonHMM

    api = TiedPoissonHMM(2, ties=["lambdas[1] = 3 * lambdas[0]"], random_state=0, n_iter=100,
                         tol=1e-4).fit(counts[:, None].astype(int), [150, 150])
    assert s.metrics["log_likelihood"] == pytest.approx(api.score(counts[:, None].astype(int),
                                                                  [150, 150]), rel=1e-12)
    lam = sorted(v["value"] for k, v in s.parameters.items() if k.startswith("lambdas"))
    assert lam[1] == pytest.approx(3 * lam[0], rel=1e-14)
