"""The model contract: result_ is a sciTie.FitResult with the trained group, statistics,
the evaluation grid (units, long names, provenance), report(), to_xarray() and plot()."""
import json

import numpy as np
import pytest
import torch

import sciTie
from sciTie.pinn import PDEProblem, PeriodicPINN, convection
from pinn_settings import plain

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fitted():
    p = convection(2.0)
    p = PDEProblem(p.residual, p.initial, p.domain_x, p.domain_t, p.reference, name=p.name,
                   parameters=p.parameters, units={"x": "m", "t": "s", "u": "K"})
    return PeriodicPINN(p, **plain(hidden=(8, 8), adam_steps=30, n_collocation=64,
                                   n_initial=32, eval_grid=(17, 6), random_state=3)).fit()


def test_result_is_a_fit_result_with_statistics_and_data(fitted):
    r = fitted.result_
    assert isinstance(r, sciTie.FitResult) and r.model == "PeriodicPINN"
    ds = r.data
    exact = np.sin(ds.x.values[None, :] - 2.0 * ds.t.values[:, None])
    rel = np.linalg.norm(ds.u_pred.values - exact) / np.linalg.norm(exact)
    assert r.statistics["rel_l2"] == pytest.approx(rel, rel=1e-12)
    assert r.statistics["final_loss"] == fitted.history_[-1]["loss_total"]
    assert ds.u_pred.attrs["units"] == "K" and ds.x.attrs["units"] == "m"
    assert "long_name" in ds.u_error.attrs
    settings = json.loads(ds.attrs["settings"])
    assert settings["hidden"] == [8, 8] and json.loads(ds.attrs["random_seed"]) == 3
    assert r.nvarys == 0 and r.errorbars  # a forward problem fits no parameter


def test_report_xarray_and_plot(fitted):
    text = fitted.report()
    assert "Periodic PINN" in text and "rel_l2" in text and "beta" in text
    ds = fitted.to_xarray()
    assert {"u_pred", "slot_value"} <= set(ds.data_vars)
    assert float(ds.slot_value.sel(slot="beta")) == 2.0
    assert float(ds.slot_value.sel(slot="period_x")) == pytest.approx(2 * np.pi)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    out = fitted.plot(ax=ax, panel="error")
    assert out is ax and ax.get_ylabel() == "x [m]" and ax.get_xlabel() == "t [s]"
    assert any("error" in a.get_ylabel() for a in fig.axes if a is not ax)  # colour bar
    fig2, ax2 = plt.subplots()
    fitted.plot(ax=ax2, panel="loss")
    assert ax2.get_xlabel() == "optimiser iteration"
    plt.close("all")
    with pytest.raises(sciTie.errors.ValidationError, match="panel"):
        fitted.plot(ax=ax2, panel="spectrum")
