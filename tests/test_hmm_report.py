"""ParameterGroup view, report and xarray output of the tied HMMs."""
from __future__ import annotations

import numpy as np
import pytest

from sciTie.hmm import TiedCategoricalHMM, TiedGaussianHMM, TiedPoissonHMM, erlang_chains


@pytest.fixture(scope="module")
def X2():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(0, 1, (200, 2)), rng.normal(3, 1, (200, 2))]


@pytest.mark.parametrize("cov", ["diag", "spherical", "full", "tied"])
def test_parameter_group_counts_what_is_fitted(X2, cov):
    spec = erlang_chains([2, 2], stay=0.9)
    m = TiedGaussianHMM(4, covariance_type=cov, init_params="mc", n_iter=3, random_state=0,
                        tied_states=spec.tied_states, tied_transitions=spec.tied_transitions)
    m.startprob_, m.transmat_ = spec.startprob, spec.transmat
    m.fit(X2)
    pg = m.parameter_group()
    # two independent counts: the tie matrix's columns and the closed-form count
    assert pg.n_free == pg.tie_matrix().shape[1] == m.n_free_parameters()
    D = 2
    n_cov = {"diag": 2 * D, "spherical": 2, "full": 2 * 3, "tied": 3}[cov]
    n_start = np.count_nonzero(m.startprob_) - 1
    assert m.n_free_parameters() == n_start + 2 + 2 * D + n_cov
    text = pg.describe()
    assert "emissions.means[1,0]" in text and "== 'emissions.means[0,0]'" in text
    assert "== 'transitions.transmat[0,0]'" in text  # the tied self-loop


def test_parameter_group_other_families():
    rng = np.random.default_rng(1)
    c = TiedCategoricalHMM(3, tied_states=[[0], [1, 2]], n_iter=3, random_state=0)
    c.fit(rng.integers(0, 3, (100, 1)))
    assert c.parameter_group().n_free == c.n_free_parameters() == 2 + 6 + 4
    p = TiedPoissonHMM(3, tied_states=[[0, 2], [1]], n_iter=3, random_state=0)
    p.fit(rng.poisson(4, (100, 2)))
    assert p.parameter_group().n_free == p.n_free_parameters() == 2 + 6 + 4
    p.params = "l"
    assert p.parameter_group().n_free == p.n_free_parameters() == 4


def test_to_xarray(X2, tmp_path):
    m = TiedGaussianHMM(3, tied_states=[[0, 2], [1]], n_iter=10, random_state=0).fit(X2)
    ds = m.to_xarray(X2, lengths=[150, 250])
    assert {"time", "state", "group"} <= set(ds.dims)
    assert ds.sizes["time"] == 400 and ds.sizes["state"] == 3 and ds.sizes["group"] == 2
    post = m.predict_proba(X2, [150, 250])
    np.testing.assert_allclose(ds["state_posterior"].values, post)
    # group posterior = sum of the posteriors of the group's states
    np.testing.assert_allclose(ds["group_posterior"].values[:, 0], post[:, 0] + post[:, 2])
    np.testing.assert_allclose(ds["group_posterior"].sum("group"), 1.0)
    np.testing.assert_array_equal(ds["viterbi_state"].values, m.predict(X2, [150, 250]))
    np.testing.assert_array_equal(ds["viterbi_group"].values,
                                  m.state_to_group_[ds["viterbi_state"].values])
    np.testing.assert_array_equal(ds["sequence"].values, np.repeat([0, 1], [150, 250]))
    np.testing.assert_allclose(ds["means"].values, m.means_[[0, 1]])
    assert ds.attrs["log_likelihood"] == pytest.approx(m.score(X2, [150, 250]))
    assert ds.attrs["bic"] == pytest.approx(m.bic(X2, [150, 250]))
    assert ds.attrs["tied_states"] == "[[0, 2], [1]]"
    ds.to_netcdf(tmp_path / "hmm.nc")  # attrs are netCDF-compatible


def test_report_mentions_groups_and_statistics(X2):
    m = TiedGaussianHMM(3, tied_states=[[0, 2], [1]], n_iter=4, random_state=0).fit(X2)
    text = m.report(X2)
    assert "emission groups    = [[0, 2], [1]]" in text
    assert f"{m.score(X2):.6f}" in text
    assert "not converged" in text  # 4 iterations at tol=1e-2 do not converge here
