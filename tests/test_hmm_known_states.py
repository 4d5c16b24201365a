"""Partially labelled sequences (``known_states``): checked against the complete-data
closed form, a direct maximisation of the likelihood of the observations and the known
states (scipy's L-BFGS-B, scipy's normal densities, hmmlearn's log-space forward pass), and
through a recipe."""
import json
import warnings

import numpy as np
import pytest
from hmmlearn import _hmmc
from scipy.optimize import minimize
from scipy.stats import norm

from sciTie.errors import ValidationError
from sciTie.hmm import TiedGaussianHMM


def _series(n=400, seed=0):
    rng = np.random.default_rng(seed)
    T = np.array([[0.95, 0.05], [0.08, 0.92]])
    z = np.zeros(n, dtype=int)
    for t in range(1, n):
        z[t] = rng.choice(2, p=T[z[t - 1]])
    X = np.where(z == 0, rng.normal(0.0, 1.0, n), rng.normal(1.5, 0.7, n))[:, None]
    return X, z


def test_fully_known_states_give_the_complete_data_estimates():
    X, z = _series()
    m = TiedGaussianHMM(2, covars_prior=0, n_iter=20, random_state=0).fit(X, known_states=z)
    x = X[:, 0]
    for k in range(2):
        assert m.means_[k, 0] == pytest.approx(x[z == k].mean(), rel=1e-10)
        assert m.covars_[k, 0, 0] == pytest.approx(x[z == k].var(), rel=1e-8)
    counts = np.zeros((2, 2))
    np.add.at(counts, (z[:-1], z[1:]), 1)
    np.testing.assert_allclose(m.transmat_, counts / counts.sum(1, keepdims=True), rtol=1e-10)
    assert m.startprob_[z[0]] == pytest.approx(1.0)


def _joint_loglik(X, known, start, trans, mu, var):
    e = norm.logpdf(X[:, :1], mu[None, :], np.sqrt(var)[None, :])
    rows = np.flatnonzero(known >= 0)
    keep = e[rows, known[rows]]
    e[rows] = -np.inf
    e[rows, known[rows]] = keep
    return _hmmc.forward_log(start, trans, e)[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_partly_known_states_reach_a_direct_maximisation(seed):
    X, z = _series(seed=3)
    known = np.where(np.random.default_rng(5).random(len(z)) < 0.15, z, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = TiedGaussianHMM(2, covars_prior=0, n_iter=500, tol=1e-9,
                            random_state=seed).fit(X, known_states=known)
    ll = m.score(X, known_states=known)
    assert ll == pytest.approx(_joint_loglik(X, known, m.startprob_, m.transmat_,
                                             m.means_[:, 0], m.covars_[:, 0, 0]), abs=1e-8)
    assert m.result_.log_likelihood == pytest.approx(ll, abs=1e-8)

    def negll(x):
        s0, a, b, m0, m1, lv0, lv1 = x
        return -_joint_loglik(X, known, np.array([s0, 1 - s0]),
                              np.array([[1 - a, a], [b, 1 - b]]), np.array([m0, m1]),
                              np.exp([lv0, lv1]))

    best = minimize(negll, [0.5, 0.05, 0.08, 0.0, 1.5, 0.0, np.log(0.5)], method="L-BFGS-B",
                    bounds=[(1e-9, 1 - 1e-9)] * 3 + [(None, None)] * 2 + [(-8, 4)] * 2,
                    options=dict(maxiter=3000, ftol=1e-15, gtol=1e-10))
    assert ll >= -best.fun - 1e-3
    # the known rows are decoded as known; the others need not be
    path = m.predict(X, known_states=known)
    assert np.array_equal(path[known >= 0], known[known >= 0])


def test_bad_or_impossible_known_states_are_named():
    X, z = _series(n=100)
    m = TiedGaussianHMM(2, n_iter=5, random_state=0)
    with pytest.raises(ValidationError, match="known_states must be -1"):
        m.fit(X, known_states=np.full(100, 5))
    with pytest.raises(ValidationError, match="100 rows"):
        m.fit(X, known_states=np.zeros(50, dtype=int))
    fitted = TiedGaussianHMM(2, covars_prior=0, n_iter=20, random_state=0).fit(
        X, known_states=z)
    start_state = 1 - z[0]  # the fit put all start probability on z[0]
    impossible = np.full(100, -1)
    impossible[0] = start_state
    for call in (fitted.score, fitted.predict):
        with pytest.raises(ValidationError, match="known states are impossible"):
            call(X, known_states=impossible)


def test_a_recipe_reads_known_states_from_a_column(tmp_path, monkeypatch):
    from sciTie.cli import main

    X, z = _series(n=300, seed=2)
    known = np.where(np.arange(300) % 7 == 0, z, -1)
    np.savetxt(tmp_path / "d.csv", np.c_[X[:, 0], known], header="x,state", comments="",
               delimiter=",", fmt=["%.17g", "%d"])
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", "hmm", "--data", "d.csv", "--column", "x", "--family", "gaussian",
                     "--states", "2", "--known-states-column", "state", "--json",
                     "out.json"]) == 0
        api = TiedGaussianHMM(2, n_iter=100, tol=1e-4, random_state=0).fit(
            X, known_states=known)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["metrics"]["log_likelihood"] == pytest.approx(api.result_.log_likelihood,
                                                             abs=1e-6)
