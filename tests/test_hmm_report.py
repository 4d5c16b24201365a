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
    pg = m.group_
    # the tie matrix's column count against a count by hand
    assert pg.n_free == m.n_free_parameters() == pg.tie_matrix().shape[1]
    D = 2
    n_cov = {"diag": 2 * D, "spherical": 2, "full": 2 * 3, "tied": 3}[cov]
    n_start = np.count_nonzero(m.startprob_) - 1
    assert m.n_free_parameters() == n_start + 2 + 2 * D + n_cov
    text = pg.describe()
    assert "means[1,0]" in text and "== 'means[0,0]'" in text
    assert "== 'transmat[0,0]'" in text  # the tied self-loop


def test_parameter_group_other_families():
    rng = np.random.default_rng(1)
    c = TiedCategoricalHMM(3, tied_states=[[0], [1, 2]], n_iter=3, random_state=0)
    c.fit(rng.integers(0, 3, (100, 1)))
    assert c.group_.n_free == c.n_free_parameters() == 2 + 6 + 4
    X = rng.poisson(4, (100, 2))
    p = TiedPoissonHMM(3, tied_states=[[0, 2], [1]], n_iter=3, random_state=0).fit(X)
    assert p.group_.n_free == p.n_free_parameters() == 2 + 6 + 4
    p = TiedPoissonHMM(3, tied_states=[[0, 2], [1]], n_iter=3, random_state=0, params="l").fit(X)
    assert p.group_.n_free == p.n_free_parameters() == 4


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
    np.testing.assert_allclose(ds["means"].values, m.means_)
    assert ds.attrs["decoded_log_likelihood"] == pytest.approx(m.score(X2, [150, 250]))
    assert ds.attrs["log_likelihood"] == pytest.approx(m.score(X2))  # the data it was fitted to
    assert ds.attrs["bic"] == pytest.approx(m.bic(X2))
    assert ds.attrs["tied_states"] == "[[0, 2], [1]]"
    assert ds.attrs["n_free_parameters"] == m.n_free_parameters() == ds.sizes["param"]
    assert ds.attrs["sciTie_version"] and "random_state" in ds.attrs["settings"]
    ds.to_netcdf(tmp_path / "hmm.nc")  # attrs are netCDF-compatible


def test_report_mentions_groups_and_statistics(X2):
    m = TiedGaussianHMM(3, tied_states=[[0, 2], [1]], n_iter=4, random_state=0).fit(X2)
    text = m.report()
    assert "emission groups    = [[0, 2], [1]]" in text
    assert f"log-likelihood     = {m.score(X2):.8g}" in text
    assert "not converged" in text  # 4 iterations at tol=1e-2 do not converge here


def test_uncertainties_match_analytic_one_state_results():
    rng = np.random.default_rng(2)
    counts = rng.poisson(7.0, (300, 1))
    p = TiedPoissonHMM(1, n_iter=5).fit(counts)
    u = p.uncertainties(counts)
    lam = counts.mean()
    assert u.stderr[0] == pytest.approx(np.sqrt(lam / counts.size), rel=1e-6)
    assert p.result_ is u
    x = rng.normal(2.0, 1.5, (400, 1))
    g = TiedGaussianHMM(1, covars_prior=0.0, n_iter=3).fit(x)
    u = g.uncertainties(x)
    var = x.var()
    assert u.error("means[0,0]") == pytest.approx(np.sqrt(var / x.size), rel=1e-5)
    assert u.error("covars[0,0]") == pytest.approx(var * np.sqrt(2 / x.size), rel=1e-5)


def test_uncertainties_propagate_to_tied_slots():
    spec = erlang_chains([2, 1], stay=0.9)
    gen = TiedGaussianHMM(3, init_params="", tied_states=spec.tied_states,
                          tied_transitions=spec.tied_transitions)
    gen.startprob_, gen.transmat_ = spec.startprob, spec.transmat
    gen.means_, gen.covars_ = np.array([[0.0], [0.0], [2.0]]), np.full((3, 1), 0.5)
    X, _ = gen.sample(3000, random_state=3)
    m = TiedGaussianHMM(3, init_params="", n_iter=200, tol=1e-6, tied_states=spec.tied_states,
                        tied_transitions=spec.tied_transitions)
    m.startprob_, m.transmat_ = spec.startprob, spec.transmat
    m.means_, m.covars_ = np.array([[0.3], [0.3], [1.5]]), np.ones((3, 1))
    m.fit(X)
    u = m.uncertainties(X)
    assert np.all(np.isfinite(u.stderr))
    # tied slots carry the uncertainty of their free parameter
    assert u.error("means[1,0]") == u.error("means[0,0]") > 0
    assert u.error("transmat[1,1]") == u.error("transmat[0,0]")
    # a two-entry row: the constrained partner has the same standard error
    assert u.error("transmat[2,0]") == pytest.approx(u.error("transmat[2,2]"), rel=1e-12)
    # the truth lies within 4 standard errors
    assert abs(u.value("transmat[0,0]") - 0.9) < 4 * u.error("transmat[0,0]")
    assert abs(u.value("means[2,0]") - 2.0) < 4 * u.error("means[2,0]")


def _fd_gradient(model, pg, X, h=1e-6):
    import copy

    work, x0 = copy.deepcopy(model), pg.pack()

    def f(free):
        work._set_from_slots(pg.unpack(free))
        return work.score(X)

    return np.array([(f(x0 + e) - f(x0 - e)) / (2 * h) for e in np.eye(x0.size) * h])


@pytest.mark.parametrize("family", ["diag", "spherical", "poisson", "categorical"])
def test_analytic_score_matches_finite_differences(family):
    """Fisher-identity gradient, reduced through G, == central differences of log L."""
    rng = np.random.default_rng(6)
    spec = erlang_chains([2, 1], stay=0.8)
    kw = dict(init_params="", tied_states=spec.tied_states, n_iter=1, params="",
              tied_transitions=spec.tied_transitions)
    if family in ("diag", "spherical"):
        m = TiedGaussianHMM(3, covariance_type=family, **kw)
        X = rng.normal(size=(300, 2)) + np.repeat([[0, 0], [2, 1]], 150, axis=0)
        m.means_ = np.array([[0.2, 0.1], [0.2, 0.1], [1.8, 1.2]])
        m.covars_ = (np.array([1.2, 1.2, 0.8]) if family == "spherical"
                     else np.array([[1.2, 0.9], [1.2, 0.9], [0.8, 1.1]]))
    elif family == "poisson":
        m = TiedPoissonHMM(3, **kw)
        X = rng.poisson(np.repeat([3.0, 8.0], 150))[:, None]
        m.lambdas_ = np.array([[3.5], [3.5], [7.0]])
    else:
        m = TiedCategoricalHMM(3, n_features=3, **kw)
        X = rng.integers(0, 3, (300, 1))
        m.emissionprob_ = np.array([[.5, .3, .2], [.5, .3, .2], [.2, .2, .6]])
    m.startprob_ = np.array([0.6, 0.0, 0.4])
    m.transmat_ = spec.transmat
    m.fit(X)  # params="": builds the group, changes nothing
    m.group_ = TiedGaussianHMM  # replaced below by a group in which everything is refined
    m.params = "st" + m._emission_letters
    from sciTie.hmm._group import build_group
    m.group_, m._plan = build_group(m)
    pg = m.group_
    g = pg.reduce_jacobian(m.loglik_gradient(X)[None, :])[0]
    fd = _fd_gradient(m, pg, X)
    np.testing.assert_allclose(g, fd, rtol=2e-5, atol=2e-5 * np.abs(fd).max())
