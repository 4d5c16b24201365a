"""Markov-switching autoregression (``TiedARHMM``): the emission family added in one module.

Checked against independent computations: scipy's normal log-density on hand-built lags,
hmmlearn's compiled log-space forward pass on those densities, scipy's L-BFGS-B maximisation of that
likelihood, hmmlearn's own EM loop on the untied family, and finite differences.
"""
import warnings

import numpy as np
import pytest
from hmmlearn import _hmmc
from scipy.optimize import minimize
from scipy.stats import norm

from sciTie.hmm import ARHMM, TiedARHMM


def _truth(shared=True):
    m = ARHMM(2, order=1)
    m.startprob_ = np.array([0.5, 0.5])
    m.transmat_ = np.array([[0.95, 0.05], [0.1, 0.9]])
    m.intercepts_ = np.array([[1.0], [-1.0]])
    m.coefs_ = np.array([[[0.6]], [[0.6 if shared else 0.2]]])
    m.covars_ = np.array([[0.2], [1.0]])
    return m


def _loglik(X, lengths, start, trans, c, phi, v):
    """Conditional log-likelihood (order 1, D = 1): scipy's normal densities on the lags,
    hmmlearn's compiled log-space forward pass; the first value of a sequence has no term."""
    total, s0 = 0.0, 0
    for n in lengths:
        y = X[s0:s0 + n, 0]
        s0 += n
        e = np.zeros((n, len(c)))
        e[1:] = norm.logpdf(y[1:, None], c[None, :] + phi[None, :] * y[:-1, None], np.sqrt(v))
        total += _hmmc.forward_log(np.asarray(start, float), np.asarray(trans, float), e)[0]
    return total


def test_emission_rows_are_normal_densities_on_the_lags_of_their_own_sequence():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(9, 2))
    lengths = np.array([4, 5])
    m = TiedARHMM(3, order=2)
    m.intercepts_ = rng.normal(size=(3, 2))
    m.coefs_ = rng.normal(size=(3, 2, 2)) * 0.3
    m.covars_ = rng.uniform(0.5, 2, size=(3, 2))
    got = m._frame_log_likelihood(X, lengths)
    want = np.zeros((9, 3))
    for s0, n in ((0, 4), (4, 5)):
        for t in range(s0 + 2, s0 + n):            # the first two rows of each sequence: none
            for k in range(3):
                mean = m.intercepts_[k] + m.coefs_[k, 0] * X[t - 1] + m.coefs_[k, 1] * X[t - 2]
                want[t, k] = norm.logpdf(X[t], mean, np.sqrt(m.covars_[k])).sum()
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_untied_em_is_hmmlearns_own_loop_on_the_family():
    """hmmlearn's fit (its forward-backward, the family's _accumulate_sufficient_statistics
    hook, its M-step) and sciTie's EM take the same steps from the same start."""
    X, _ = _truth(shared=False).sample(800, random_state=3)
    lengths = [300, 500]
    start = dict(startprob_=np.array([0.6, 0.4]), transmat_=np.array([[0.9, 0.1], [0.2, 0.8]]),
                 intercepts_=np.array([[0.5], [-0.5]]), coefs_=np.array([[[0.3]], [[0.1]]]),
                 covars_=np.array([[0.5], [0.5]]))
    peer = ARHMM(2, order=1, init_params="", n_iter=15, tol=-np.inf, implementation="log")
    ours = TiedARHMM(2, order=1, init_params="", n_iter=15, tol=-np.inf)
    for m in (peer, ours):
        for k, v in start.items():
            setattr(m, k, v.copy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(X, lengths)
    for name in start:
        np.testing.assert_allclose(getattr(ours, name), getattr(peer, name), rtol=1e-8,
                                   atol=1e-10)
    assert ours.score(X, lengths) == pytest.approx(peer.score(X, lengths), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_shared_coefficient_reaches_a_direct_maximisation_from_default_starts(seed):
    X, _ = _truth().sample(1200, random_state=1)
    lengths = [700, 500]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = TiedARHMM(2, order=1, ties=["coefs[1] = coefs[0]"], n_iter=1000, tol=1e-9,
                      random_state=seed).fit(X, lengths)
    assert m.n_free_parameters() == 8  # start 1, transitions 2, intercepts 2, coef 1, vars 2
    assert m.coefs_[1, 0, 0] == m.coefs_[0, 0, 0]
    ll = m.score(X, lengths)
    assert ll == pytest.approx(_loglik(X, lengths, m.startprob_, m.transmat_,
                                       m.intercepts_[:, 0], m.coefs_[:, 0, 0],
                                       m.covars_[:, 0]), abs=1e-8)

    def negll(x):
        p0, a, b, c0, c1, phi, lv0, lv1 = x
        start = np.array([p0, 1 - p0])
        trans = np.array([[1 - a, a], [b, 1 - b]])
        return -_loglik(X, lengths, start, trans, np.array([c0, c1]), np.array([phi, phi]),
                        np.exp([lv0, lv1]))

    x0 = [0.5, 0.05, 0.1, 1.0, -1.0, 0.6, np.log(0.2), np.log(1.0)]
    bounds = [(1e-9, 1 - 1e-9)] * 3 + [(None, None)] * 3 + [(-10, 5)] * 2
    best = minimize(negll, x0, method="L-BFGS-B", bounds=bounds,
                    options=dict(maxiter=2000, ftol=1e-14, gtol=1e-9))
    # states may come out in either order; the likelihood does not care
    assert ll >= -best.fun - 1e-3


def test_a_constant_intercept_is_held_and_the_gradient_is_the_score():
    X, _ = _truth().sample(600, random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = TiedARHMM(2, order=1, ties=["intercepts[0] = 0"], n_iter=200, tol=1e-8,
                      random_state=0).fit(X)
    assert m.intercepts_[0, 0] == 0.0
    assert m.n_free_parameters() == 8  # the fixed intercept is not counted
    # Fisher's identity against central differences of the log-likelihood in every slot
    tm = m.group_.tie_map()
    slots = tm.evaluate(m.group_.pack())
    grad = m.loglik_gradient(X)
    for name in ("intercepts[1,0]", "coefs[0,0,0]", "covars[0,0]", "covars[1,0]"):
        i = tm.names.index(name)
        h = 1e-6 * max(1.0, abs(slots[i]))
        vals = []
        for step in (h, -h):
            work = TiedARHMM(2, order=1)
            work.startprob_, work.transmat_ = m.startprob_, m.transmat_
            arrays = {"intercepts": m.intercepts_.copy(), "coefs": m.coefs_.copy(),
                      "covars": m.covars_.copy()}
            base, rest = name.split("[")
            idx = tuple(int(j) for j in rest[:-1].split(","))
            arrays[base][idx] += step
            work.intercepts_, work.coefs_, work.covars_ = (arrays["intercepts"], arrays["coefs"],
                                                            arrays["covars"])
            vals.append(work.score(X))
        assert grad[i] == pytest.approx((vals[0] - vals[1]) / (2 * h), rel=1e-5, abs=1e-5)


def test_bad_settings_and_data_are_named():
    from sciTie.errors import ValidationError

    with pytest.raises(ValidationError, match="order"):
        TiedARHMM(2, order=0).fit(np.zeros((50, 1)))
    with pytest.raises(ValidationError, match="NaN"):
        TiedARHMM(2).fit(np.array([[0.0], [np.nan], [1.0]] * 10))


def test_the_family_is_found_by_recipes_and_the_command_line(tmp_path, monkeypatch):
    import json

    from sciTie.cli import main
    from sciTie.hmm._family import families

    assert families()["autoregressive"] is TiedARHMM
    X, _ = _truth().sample(500, random_state=4)
    np.savetxt(tmp_path / "y.csv", X, header="y", comments="", delimiter=",")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["fit", "hmm", "--data", "y.csv", "--column", "y", "--family",
                   "autoregressive", "--states", "2", "--set", "model.order=1", "--tie",
                   "coefs[1] = coefs[0]", "--json", "out.json"])
        assert rc == 0
        api = TiedARHMM(2, order=1, ties=["coefs[1] = coefs[0]"], n_iter=100, tol=1e-4,
                        random_state=0).fit(X)
    out = json.loads((tmp_path / "out.json").read_text())
    p = out["parameters"]
    assert p["coefs[1,0,0]"]["value"] == p["coefs[0,0,0]"]["value"]
    assert out["metrics"]["n_free_parameters"] == 8
    assert out["metrics"]["log_likelihood"] == pytest.approx(api.score(X), abs=1e-6)
    # a key the family's class does not take is refused, naming the families that take it
    rc = main(["fit", "hmm", "--data", "y.csv", "--column", "y", "--family", "autoregressive",
               "--states", "2", "--set", "model.n_mix=2"])
    assert rc == 2
