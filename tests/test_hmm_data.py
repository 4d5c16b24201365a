"""HMM datasets: earthquake counts (published values) and the synthetic ion channel."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sciTie import datasets
from sciTie.hmm import TiedGaussianHMM, fit_linear_scheme, fit_poisson_restarts
from sciTie.hmm.data import ion_channel_truth, load_earthquakes, load_ion_channel


@pytest.fixture(scope="module")
def quakes():
    return load_earthquakes()["count"].values[:, None]


def test_earthquake_series_is_the_published_one(quakes):
    ds = datasets.load("earthquakes")
    assert ds.sizes["year"] == 107
    assert int(ds["count"].sum()) == 2072
    assert ds.year.values[0] == 1900 and ds.year.values[-1] == 2006
    assert ds["count"].sel(year=1943).item() == 41  # the maximum of the series
    assert "Zucchini" in ds.attrs["source"]
    np.testing.assert_array_equal(ds["count"].values, quakes[:, 0])


def test_earthquakes_one_state_is_the_poisson_mle(quakes):
    m = fit_poisson_restarts(quakes, 1, n_restarts=1)
    assert m.score(quakes) == pytest.approx(stats.poisson.logpmf(quakes, quakes.mean()).sum(),
                                            rel=1e-12)


@pytest.mark.parametrize("K, published", [(2, -341.8787), (3, -328.5275)])
def test_earthquakes_untied_poisson_published_loglik(quakes, K, published):
    """Zucchini, MacDonald & Langrock: Poisson-HMM with estimated initial distribution."""
    m = fit_poisson_restarts(quakes, K, n_restarts=6)
    assert round(m.score(quakes), 4) == pytest.approx(published, abs=1e-9)
    assert m.n_free_parameters() == (K - 1) + K * (K - 1) + K


@pytest.fixture(scope="module")
def channel():
    ds = load_ion_channel()
    return ds, ds["current"].values[:, None]


def test_ion_channel_is_deterministic_and_documented(channel):
    ds, X = channel
    again = load_ion_channel(n_samples=1000)
    np.testing.assert_array_equal(again["current"].values, X[:1000, 0])
    truth = ion_channel_truth()
    A = np.array(ds.attrs["true_transmat"]).reshape(ds.attrs["true_transmat_shape"])
    np.testing.assert_array_equal(A, truth["transmat"])
    # the simulated states follow the true chain: empirical transition frequencies
    s = ds["state"].values
    counts = np.zeros((5, 5))
    np.add.at(counts, (s[:-1], s[1:]), 1)
    freq = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(freq, A, atol=0.01)
    resid = X[:, 0] - truth["means"][s]
    assert resid.std() == pytest.approx(truth["noise_sd"], rel=0.01)


@pytest.fixture(scope="module")
def tied_fit(channel):
    _, X = channel
    truth = ion_channel_truth()
    rng = np.random.default_rng(11)
    A0 = truth["transmat"].copy()
    off = ~np.eye(5, dtype=bool) & (A0 > 0)
    A0[off] *= rng.uniform(0.5, 2.0, off.sum())  # perturbed truth, same zeros
    np.fill_diagonal(A0, 0.0)
    np.fill_diagonal(A0, 1 - A0.sum(axis=1))
    return fit_linear_scheme(X, [3, 2], transmat=A0, levels=[0.2, 0.8], n_iter=300,
                             tol=1e-4)


def test_ion_channel_tied_model_recovers_truth(tied_fit):
    truth = ion_channel_truth()
    m = tied_fit
    np.testing.assert_allclose(m.means_[:, 0], truth["means"], atol=0.01)
    np.testing.assert_allclose(np.sqrt(m.covars_[:, 0, 0]), truth["noise_sd"], rtol=0.02)
    A = truth["transmat"]
    assert np.all(m.transmat_[A == 0] == 0)
    off = (A > 0) & ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(m.transmat_[off], A[off], rtol=0.2)
    np.testing.assert_allclose(np.diag(m.transmat_), np.diag(A), atol=0.01)


def test_ion_channel_truth_within_standard_errors(channel, tied_fit):
    """Observed-information standard errors cover the true transition probabilities."""
    _, X = channel
    u = tied_fit.uncertainties(X)
    A = ion_channel_truth()["transmat"]
    z = [(tied_fit.transmat_[i, j] - A[i, j]) / u.error(f"transmat[{i},{j}]")
         for i, j in zip(*np.nonzero(A))]
    assert np.all(np.isfinite(z)) and np.max(np.abs(z)) < 4
    assert abs(tied_fit.means_[0, 0] - 0.0) < 4 * u.error("means[0,0]")


def test_ion_channel_bic_prefers_the_true_tied_structure(channel, tied_fit):
    _, X = channel
    best = tied_fit
    bic_true = best.bic(X)
    # the untied model with as many states, started from the tied optimum
    untied = TiedGaussianHMM(5, init_params="", n_iter=30, tol=1e-3)
    untied.startprob_, untied.transmat_ = best.startprob_, best.transmat_
    untied.means_, untied.covars_ = best.means_, best._covars_
    untied.fit(X)
    assert untied.score(X) >= best.score(X) - 1e-6  # nested model: no worse
    # counted by hand: zeros in the given start and transitions are structural (hmmlearn's
    # convention), every other row entry but one is free; 5 means and 5 variances
    s, T = np.asarray(best.startprob_), np.asarray(best.transmat_)
    expected = (np.count_nonzero(s) - 1) + int(np.sum(np.count_nonzero(T, axis=1) - 1)) + 10
    assert untied.n_free_parameters() == expected
    assert bic_true < untied.bic(X)
    # models with fewer states
    for sizes in ([2, 2], [2, 1], [1, 1]):
        smaller = fit_linear_scheme(X, sizes, n_iter=400, tol=1e-3)
        assert bic_true < smaller.bic(X) - 50, sizes


def test_registry_loads_ion_channel():
    ds = datasets.load("ion-channel", n_samples=500)
    assert ds.sizes["time"] == 500 and ds.attrs["seed"] == 20240607
    assert set(ds.data_vars) == {"current", "state", "level"}


def test_business_cycle_series_is_the_bundled_file_laid_out_for_the_lag():
    import hashlib
    from pathlib import Path

    from sciTie.hmm.data import NBER_RECESSIONS, load_business_cycle

    ds = datasets.load("business-cycle")
    file = Path(ds.attrs["file"])
    # the bundled file is the one its README describes (SHA-256 of the copy)
    readme = (file.parent / "README.md").read_text()
    assert hashlib.sha256(file.read_bytes()).hexdigest() in readme
    rows = [line.split(",") for line in file.read_text().splitlines()[1:]]
    assert len(rows) == 519 and rows[0][0] == "1948-02" and rows[-1][0] == "1991-04"
    # month t holds the growth of t and the indicator of t - 1 (the file's rows, shifted)
    assert ds.sizes["month"] == 518
    np.testing.assert_array_equal(ds["ip_growth"].values, [float(r[1]) for r in rows[1:]])
    np.testing.assert_array_equal(ds["leading_prev"].values, [float(r[2]) for r in rows[:-1]])
    np.testing.assert_array_equal(ds["leading_prev"].values[1:], ds["leading"].values[:-1])
    assert str(ds["month"].values[0])[:7] == "1948-03"
    # NBER recession months: from the month after each peak to the trough
    months = sum((np.datetime64(t, "M") - np.datetime64(p, "M")).astype(int)
                 for p, t in NBER_RECESSIONS)
    assert int(ds["nber_recession"].sum()) == months == 96
    assert ds["nber_recession"].sel(month="1990-08-01").item() == 1
    assert ds["nber_recession"].sel(month="1990-07-01").item() == 0
    # the published smoothed probabilities start after the four months the AR(4) conditions on
    assert np.isnan(ds["published_expansion"].values[:4]).all()
    assert np.isfinite(ds["published_expansion"].values[4:]).all()
    assert load_business_cycle(file.parent)["ip_growth"].equals(ds["ip_growth"])


def test_business_cycle_layout_gives_the_published_likelihood():
    """The published AR(4) TVTP model (Kim & Nelson's estimates, as statsmodels' TestFilardo
    holds them) evaluated by statsmodels on the loader's layout - growth of month t, indicator
    of month t - 1 - gives the published log-likelihood -586.5718 (an optional dependency)."""
    sm = pytest.importorskip("statsmodels.api")
    from sciTie.hmm.data import load_business_cycle

    ds = load_business_cycle()
    model = sm.tsa.MarkovAutoregression(
        ds["ip_growth"].values, k_regimes=2, order=4, switching_ar=False,
        exog_tvtp=sm.add_constant(ds["leading_prev"].values))
    published = np.r_[4.35941747, -1.6493936, 1.7702123, 0.9945672, 0.517298, -0.865888,
                      np.exp(-0.362469) ** 2, 0.189474, 0.079344, 0.110944, 0.122251]
    assert model.loglike(published) == pytest.approx(ds.attrs["published_log_likelihood"],
                                                      abs=5e-5)
    # the indicator of the same month (no lag) is not the published layout
    same_month = sm.tsa.MarkovAutoregression(
        ds["ip_growth"].values, k_regimes=2, order=4, switching_ar=False,
        exog_tvtp=sm.add_constant(ds["leading"].values))
    assert abs(same_month.loglike(published) + 586.5718) > 0.1
