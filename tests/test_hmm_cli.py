"""``scitie fit earthquakes`` / ``ion-channel`` through sciTie.hmm.cli.run."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sciTie.cli import main
from sciTie.hmm import dwell_times
from sciTie.hmm.cli import run


def test_run_earthquakes(tmp_path):
    s = run("earthquakes", ["--states", "2", "3", "--restarts", "4"])
    assert round(s.metrics["log_likelihood_2"], 4) == -341.8787
    assert round(s.metrics["log_likelihood_3"], 4) == -328.5275
    assert s.metrics["best_n_states_bic"] == 2
    p = s.parameters
    assert p["lambdas[0,0]"]["value"] < p["lambdas[1,0]"]["value"]  # states sorted by rate
    assert 0 < p["lambdas[0,0]"]["stderr"] < 2
    # the complete parameter set; its free entries are the model's free parameters
    assert {"startprob[0]", "transmat[0,1]", "transmat[1,1]"} <= set(p)
    assert sum(v["status"] == "free" for v in p.values()) == 2 + 2  # 2 transitions + 2 rates
    written = s.write(tmp_path)
    assert sorted(q.name for q in written) == ["earthquakes_hmm.nc", "earthquakes_hmm.png"]
    ds = xr.open_dataset(tmp_path / "earthquakes_hmm.nc")
    assert ds.sizes["time"] == 107 and int(ds["year"][0]) == 1900
    # one labelling everywhere: JSON, netCDF and report agree on state 0
    assert float(ds["lambdas"][0, 0]) == pytest.approx(p["lambdas[0,0]"]["value"], rel=1e-12)
    assert float(ds["slot_value"].sel(slot="lambdas[0,0]")) == pytest.approx(
        p["lambdas[0,0]"]["value"], rel=1e-12)
    assert f"lambdas[0,0]:   {p['lambdas[0,0]']['value']:.8g}" in s.report
    ds.close()


def test_run_ion_channel_quick(tmp_path):
    s = run("ion-channel", ["--quick"])
    m = s.metrics
    assert abs(m["closed_level_pA"]) < 0.02 and abs(m["open_level_pA"] - 1) < 0.02
    assert m["noise_sd_pA"] == pytest.approx(0.25, rel=0.03)
    assert m["bic"] < m["bic_two_state"]
    assert m["max_rel_err_rates"] < 0.5  # 50k samples: rough rates
    rates = {k: v for k, v in s.parameters.items() if k.startswith("k_")}
    assert len(rates) == 8 and all(v["stderr"] > 0 for v in rates.values())
    out = s.write(tmp_path)
    assert {p.suffix for p in out} == {".nc", ".png"}


def test_cli_main_json(tmp_path, capsys):
    rc = main(["fit", "earthquakes", "--json", str(tmp_path / "s.json"), "--states", "1",
               "--restarts", "1"])
    assert rc == 0
    assert "Poisson HMMs" in capsys.readouterr().out
    assert (tmp_path / "s.json").exists()


def test_bad_options():
    with pytest.raises(ValueError, match="--states"):
        run("earthquakes", ["--states", "0"])
    with pytest.raises(ValueError, match="not 'pbso4'"):
        run("pbso4", [])
    with pytest.raises(SystemExit):
        run("earthquakes", ["--no-such-option"])


def test_dwell_times():
    d = dwell_times(np.array([0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 0]))
    np.testing.assert_array_equal(d[1], [3, 2])
    np.testing.assert_array_equal(d[0], [1])  # first and last runs are censored
