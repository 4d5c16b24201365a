"""Hidden semi-Markov models (issue 23, item 4): each number against something independent.

References: brute-force enumeration of every state path; hmmlearn's ordinary HMM on the
expanded state space (each state a countdown chain of ``max_duration`` substates), for the
likelihood, the posteriors and the expected counts EM uses; hmmlearn's HMM with self-loops
for geometric dwell times; scipy's direct maximisation of the tied likelihood; simulated
data for parameter recovery; finite differences for the dwell objective's derivatives.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hmmlearn.hmm import CategoricalHMM, GaussianHMM, PoissonHMM
from scipy import optimize, stats
from sklearn.base import clone

from sciTie.errors import ConvergenceWarning, ValidationError
from sciTie.hmm import TiedCategoricalHMM, TiedGaussianHSMM, TiedPoissonHSMM
from sciTie.hmm._hsmm import SemiMarkovMixin
from sciTie.hmm._durations import DURATIONS, dwell_objective, dwell_pmf


def gaussian_hsmm(K=3, D=4, duration="nonparametric", seed=0, **kw):
    """A model with random parameters set by hand (nothing fitted)."""
    rng = np.random.default_rng(seed)
    m = TiedGaussianHSMM(K, max_duration=D, duration=duration, init_params="",
                         random_state=seed, **kw)
    m.startprob_ = rng.dirichlet(np.ones(K))
    A = rng.random((K, K)) + 0.2
    np.fill_diagonal(A, 0.0)
    m.transmat_ = A / A.sum(axis=1, keepdims=True)
    m.means_ = np.linspace(-1.0, 1.0, K)[:, None]
    m.covars_ = np.full((K, 1), 0.8)
    m.n_features = 1
    if duration == "nonparametric":
        m.dwell_pmf_ = rng.dirichlet(np.ones(D), size=K)
    elif duration == "poisson":
        m.dwell_rate_ = rng.uniform(0.5, 3.0, K)
    else:
        m.dwell_rate_ = rng.uniform(0.5, 3.0, K)
        m.dwell_shape_ = rng.uniform(0.5, 3.0, K)
    return m


def path_probability(m, z, x):
    """``p(x, z)`` of one label path, by its segments (a state never follows itself)."""
    p, T = m.dwell_distribution_, len(z)
    surv = np.cumsum(p[:, ::-1], axis=1)[:, ::-1]
    segs, s = [], 0
    for t in range(1, T + 1):
        if t == T or z[t] != z[s]:
            segs.append((z[s], t - s))
            s = t
    prob = m.startprob_[segs[0][0]]
    for i, (k, d) in enumerate(segs):
        if d > m.max_duration:
            return 0.0
        last = i == len(segs) - 1
        prob *= surv[k, d - 1] if last else p[k, d - 1] * m.transmat_[k, segs[i + 1][0]]
    emis = stats.norm.pdf(x, m.means_[z, 0], np.sqrt(m.covars_[z, 0, 0]))
    return prob * np.prod(emis)


@pytest.mark.parametrize("duration", ["nonparametric", "poisson", "negbinom"])
def test_brute_force_enumeration(duration):
    m = gaussian_hsmm(duration=duration)
    x = np.random.default_rng(5).normal(size=7)
    X = x[:, None]
    total, post, best = 0.0, np.zeros((7, 3)), (0.0, None)
    for z in itertools.product(range(3), repeat=7):
        w = path_probability(m, np.array(z), x)
        total += w
        post[np.arange(7), z] += w
        if w > best[0]:
            best = (w, z)
    assert m.score(X) == pytest.approx(np.log(total), rel=1e-12)
    np.testing.assert_allclose(m.predict_proba(X), post / total, atol=1e-12)
    log_prob, path = m.decode(X, algorithm="viterbi")
    assert log_prob == pytest.approx(np.log(best[0]), rel=1e-12)
    assert tuple(path) == best[1]


def expanded_hmm(m, cls=GaussianHMM, **emission):
    """hmmlearn's HMM on the countdown chains: substate (k, r) has r steps left in k."""
    K, D = m.n_components, m.max_duration
    p = m.dwell_distribution_
    start = (m.startprob_[:, None] * p).ravel()
    A = np.zeros((K * D, K * D))
    for k in range(K):
        for r in range(2, D + 1):
            A[k * D + r - 1, k * D + r - 2] = 1.0
        A[k * D, :] = (m.transmat_[k][:, None] * p).ravel()
    h = cls(K * D, init_params="", implementation="log")
    h.startprob_, h.transmat_ = start, A
    for name, value in emission.items():
        setattr(h, name, np.repeat(value, D, axis=0))
    return h


def test_expanded_state_space_likelihood_posteriors_and_counts():
    """The HSMM is hmmlearn's HMM on countdown chains: same log-likelihood, posteriors, and
    the expected start, transition and full-duration counts of EM (censored segments
    included) read off hmmlearn's own E-step."""
    K, D = 3, 5
    m = gaussian_hsmm(K, D, seed=1)
    X = np.random.default_rng(2).normal(size=(40, 1))
    lengths = [13, 27]
    h = expanded_hmm(m, means_=m.means_, covars_=np.full((K, 1), 0.8))
    assert m.score(X, lengths) == pytest.approx(h.score(X, lengths), rel=1e-12)
    sub = h.predict_proba(X, lengths).reshape(-1, K, D).sum(axis=2)
    np.testing.assert_allclose(m.predict_proba(X, lengths), sub, atol=1e-12)

    h_stats, _ = h._do_estep(X, lengths)
    ours, _ = m._do_estep(X, np.array(lengths))
    trans = h_stats["trans"].reshape(K, D, K, D)
    entered = h_stats["start"].reshape(K, D) + trans[:, 0].sum(axis=0)
    np.testing.assert_allclose(ours["dwell"], entered, atol=1e-10)
    np.testing.assert_allclose(ours["trans"], trans[:, 0].sum(axis=2), atol=1e-10)
    np.testing.assert_allclose(ours["start"], h_stats["start"].reshape(K, D).sum(axis=1),
                               atol=1e-12)


def test_poisson_emissions_on_the_expanded_space():
    m = TiedPoissonHSMM(2, max_duration=6, duration="poisson", init_params="")
    m.startprob_ = np.array([0.3, 0.7])
    m.transmat_ = np.array([[0.0, 1.0], [1.0, 0.0]])
    m.lambdas_ = np.array([[1.0], [6.0]])
    m.dwell_rate_ = np.array([1.5, 3.0])
    X = np.random.default_rng(0).poisson(3.0, size=(30, 1))
    h = expanded_hmm(m, PoissonHMM, lambdas_=m.lambdas_)
    assert m.score(X) == pytest.approx(h.score(X), rel=1e-12)


@pytest.mark.parametrize("duration", ["nonparametric", "negbinom"])
def test_geometric_dwell_is_an_ordinary_hmm(duration):
    """A geometric dwell (a free pmf, or the negative binomial of shape 1) far from its
    truncation is hmmlearn's HMM with self-loops ``a_k`` and ``(1 - a_k) A_kj`` elsewhere."""
    K, D = 3, 200
    a = np.array([0.6, 0.8, 0.7])
    m = gaussian_hsmm(K, D, duration=duration, seed=3)
    if duration == "nonparametric":
        d = np.arange(1, D + 1)
        pmf = (1 - a[:, None]) * a[:, None] ** (d - 1)
        m.dwell_pmf_ = pmf / pmf.sum(axis=1, keepdims=True)
    else:
        # shape 1: P(d - 1 = j) = p (1 - p)^j with p = 1 / (1 + mean), i.e. 1 - a
        m.dwell_shape_, m.dwell_rate_ = np.ones(K), a / (1 - a)
    h = GaussianHMM(K, init_params="", implementation="log")
    h.startprob_, h.means_, h.covars_ = m.startprob_, m.means_, np.full((K, 1), 0.8)
    h.transmat_ = np.diag(a) + (1 - a)[:, None] * m.transmat_
    X = np.random.default_rng(4).normal(size=(120, 1))
    lengths = [50, 70]
    assert m.score(X, lengths) == pytest.approx(h.score(X, lengths), rel=1e-10)
    np.testing.assert_allclose(m.predict_proba(X, lengths), h.predict_proba(X, lengths),
                               atol=1e-10)
    np.testing.assert_array_equal(m.predict(X, lengths), h.predict(X, lengths))


@pytest.mark.parametrize("duration", ["poisson", "negbinom"])
def test_dwell_objective_derivatives_against_finite_differences(duration):
    rng = np.random.default_rng(1)
    K, D = 3, 12
    eta = rng.random((K, D)) * 5
    names = DURATIONS[duration]
    idx = {n: np.arange(K) + i * K for i, n in enumerate(names)}
    x = np.concatenate([rng.uniform(1, 4, K)] + ([rng.uniform(0.5, 4, K)]
                                                 if duration == "negbinom" else []))
    f = dwell_objective(duration, idx, eta, x.size)
    value, grad, hess = f(x)
    pmf = dwell_pmf(duration, {n: x[idx[n]] for n in names}, D)
    assert value == pytest.approx(np.sum(eta * np.log(pmf)), rel=1e-12)
    # the truncated pmf itself, against scipy's distributions
    j = np.arange(D)
    mean = x[:K, None]
    ref = (stats.poisson.pmf(j, mean) if duration == "poisson"
           else stats.nbinom.pmf(j, x[K:, None], x[K:, None] / (x[K:, None] + mean)))
    np.testing.assert_allclose(pmf, ref / ref.sum(axis=1, keepdims=True), rtol=1e-12)
    h = 1e-6
    g_fd = [(f(x + e)[0] - f(x - e)[0]) / (2 * h) for e in np.eye(x.size) * h]
    H_fd = np.array([(f(x + e)[1] - f(x - e)[1]) / (2 * h) for e in np.eye(x.size) * h])
    np.testing.assert_allclose(grad, g_fd, atol=1e-6)
    np.testing.assert_allclose(hess, H_fd, atol=1e-6)


def simulated(seed=0, n=1500, rates=(3.0, 6.0, 2.0), duration="poisson"):
    """Three Gaussian states with Poisson (or overdispersed negative-binomial) dwell times."""
    truth = TiedGaussianHSMM(3, max_duration=20, duration=duration, init_params="",
                             random_state=seed)
    truth.startprob_ = np.full(3, 1 / 3)
    truth.transmat_ = np.array([[0.0, 0.7, 0.3], [0.5, 0.0, 0.5], [0.6, 0.4, 0.0]])
    truth.means_ = np.array([[0.0], [2.5], [5.0]])
    truth.covars_ = np.full((3, 1), 0.5)
    if duration == "poisson":
        truth.dwell_rate_ = np.array(rates)
    else:
        truth.dwell_shape_ = np.array([2.0, 2.0, 3.0])
        truth.dwell_rate_ = np.array([3.0, 6.0, 3.0])
    X, z = truth.sample(n, random_state=seed + 1)
    return truth, X, z


def test_parameter_recovery_and_sampling():
    truth, X, z = simulated()
    # the sampled segments follow the dwell pmf: mean run length of the inner segments
    runs = np.diff(np.flatnonzero(np.diff(z) != 0))
    assert runs.mean() == pytest.approx(truth.mean_durations()[z[np.flatnonzero(
        np.diff(z) != 0)[:-1] + 1]].mean(), rel=0.1)
    m = TiedGaussianHSMM(3, max_duration=20, n_iter=200, tol=1e-6, covars_prior=0,
                         random_state=0).fit(X)
    order = np.argsort(m.means_[:, 0])
    np.testing.assert_allclose(m.means_[order, 0], truth.means_[:, 0], atol=0.1)
    np.testing.assert_allclose(m.dwell_rate_[order], truth.dwell_rate_, rtol=0.2)
    np.testing.assert_allclose(m.transmat_[np.ix_(order, order)], truth.transmat_, atol=0.15)
    assert np.mean(np.argsort(order)[m.predict(X)] == z) > 0.97


@pytest.mark.parametrize("duration,ties", [
    ("poisson", None), ("negbinom", ["dwell_shape[1] = dwell_shape[0]"]),
    ("nonparametric", ["dwell_pmf[1,0] = dwell_pmf[0,0]"]),
    ("poisson", ["dwell_rate[2] = 2 * dwell_rate[0]", "means[1] = means[0] + 2.5"])])
def test_em_never_decreases_the_likelihood(duration, ties):
    # maximum likelihood (covars_prior=0): EM's monotone quantity is then log L itself
    _, X, _ = simulated(seed=3, n=600, duration="negbinom" if duration == "negbinom"
                        else "poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = TiedGaussianHSMM(3, max_duration=20, duration=duration, ties=ties, n_iter=30,
                             tol=-np.inf, covars_prior=0, n_init=1, random_state=1).fit(X)
    history = np.array(m.monitor_.history)
    assert history.size == 30
    assert np.all(np.diff(history) >= -1e-10 * np.abs(history[1:]))


def test_ties_hold_exactly_and_count():
    _, X, _ = simulated(seed=4, n=800)
    kw = dict(max_duration=20, n_iter=500, tol=1e-8, random_state=0, n_init=1)
    free = TiedGaussianHSMM(3, **kw).fit(X)
    tied = TiedGaussianHSMM(3, ties=["dwell_rate[1] = dwell_rate[0]",
                                     "dwell_rate[2] = 2 * dwell_rate[0]"], **kw).fit(X)
    assert tied.dwell_rate_[1] == tied.dwell_rate_[0]
    assert tied.dwell_rate_[2] == 2 * tied.dwell_rate_[0]
    # 3 states: 2 start, 3 transitions (zero diagonal, rows of two), 3 means, 3 variances
    assert free.n_free_parameters() == 2 + 3 + 3 + 3 + 3
    assert tied.n_free_parameters() == free.n_free_parameters() - 2
    n = X.shape[0]
    assert tied.bic(X) == pytest.approx(-2 * tied.score(X) + tied.n_free_parameters()
                                        * np.log(n))
    with warnings.catch_warnings():  # one iteration is enough to count
        warnings.simplefilter("ignore", ConvergenceWarning)
        nb = TiedGaussianHSMM(3, duration="negbinom", **{**kw, "n_iter": 1}).fit(X)
        npm = TiedGaussianHSMM(3, duration="nonparametric", **{**kw, "n_iter": 1}).fit(X)
    assert nb.n_free_parameters() == free.n_free_parameters() + 3
    assert npm.n_free_parameters() == free.n_free_parameters() - 3 + 3 * 19
    se = tied.uncertainties(X).error("dwell_rate")
    assert np.all(np.isfinite(se)) and se[0] > 0
    assert se[1] == pytest.approx(se[0], rel=1e-12)
    assert se[2] == pytest.approx(2 * se[0], rel=1e-12)
    assert "dwell_rate[1]" in tied.report() and "dwell times" in tied.report()


def test_em_matches_direct_maximisation():
    """EM with a partial tie (shared negative-binomial shape, free mean dwell times)
    against scipy's maximisation of the same likelihood over the same free parameters."""
    truth = TiedGaussianHSMM(2, max_duration=12, duration="negbinom", init_params="",
                             random_state=0)
    truth.startprob_ = np.array([0.5, 0.5])
    truth.transmat_ = np.array([[0.0, 1.0], [1.0, 0.0]])
    truth.means_ = np.array([[0.0], [1.5]])
    truth.covars_ = np.ones((2, 1))
    truth.dwell_shape_ = np.array([2.0, 2.0])
    truth.dwell_rate_ = np.array([3.0, 1.3])
    X = np.concatenate([truth.sample(60, random_state=s)[0] for s in range(8)])
    lengths = [60] * 8
    m = TiedGaussianHSMM(2, max_duration=12, duration="negbinom", covars_prior=0,
                         ties=["dwell_shape[1] = dwell_shape[0]"], n_iter=1000, tol=1e-9,
                         n_init=3, random_state=0).fit(X, lengths)

    work = clone(m).set_params(init_params="")

    def negloglik(theta):
        s0, mu0, mu1, lv0, lv1, lr, lp0, lp1 = theta
        s = 1 / (1 + np.exp(-s0))
        work.startprob_ = np.array([s, 1 - s])
        work.transmat_ = truth.transmat_
        work.means_ = np.array([[mu0], [mu1]])
        work.covars_ = np.exp([[lv0], [lv1]])
        work.dwell_shape_ = np.exp([lr, lr])
        work.dwell_rate_ = np.exp([lp0, lp1])
        return -work.score(X, lengths)

    start = np.array([0.0, -0.3, 1.0, 0.3, 0.0, np.log(1.5), np.log(2.0), np.log(2.0)])
    res = optimize.minimize(negloglik, start, method="BFGS", options={"gtol": 1e-7})
    assert -res.fun == pytest.approx(m.score(X, lengths), abs=1e-5)
    order = np.argsort(m.means_[:, 0])
    np.testing.assert_allclose(m.means_[order, 0], np.sort(res.x[1:3]), atol=1e-3)
    assert m.dwell_shape_[0] == pytest.approx(np.exp(res.x[5]), rel=1e-3)
    np.testing.assert_allclose(m.dwell_rate_[order], np.exp(res.x[6:8])[np.argsort(res.x[1:3])],
                               rtol=1e-3)


def test_known_states_and_impossible_sequences():
    m = gaussian_hsmm(K=2, D=3, duration="poisson")
    X = np.zeros((8, 1))
    known = np.full(8, -1)
    known[2] = 1
    post = m.predict_proba(X, known_states=known)
    assert post[2, 1] == pytest.approx(1.0)
    # a state known on 4 consecutive rows cannot be one segment of at most 3
    known[:4] = 0
    with pytest.raises(ValidationError, match="impossible"):
        m.score(X, known_states=known)


def test_bad_arguments_are_named():
    X = np.random.default_rng(0).normal(size=(50, 1))
    with pytest.raises(ValidationError, match="duration"):
        TiedGaussianHSMM(2, duration="gamma").fit(X)
    with pytest.raises(ValidationError, match="max_duration"):
        TiedGaussianHSMM(2, max_duration=0).fit(X)
    with pytest.raises(ValidationError, match="at least 2"):
        TiedGaussianHSMM(1).fit(X)
    with pytest.raises(ValidationError, match="tied_transitions"):
        TiedGaussianHSMM(2, tied_transitions=[[0, 1]]).fit(X)
    with pytest.raises(ValidationError, match="covariates"):
        TiedGaussianHSMM(2).fit(X, covariates=X)
    with pytest.raises(ValidationError, match="params"):
        TiedGaussianHSMM(2, params="stmcx").fit(X)
    m = gaussian_hsmm(K=2, D=3, duration="poisson")
    m.transmat_ = np.array([[0.5, 0.5], [1.0, 0.0]])
    with pytest.raises(ValidationError, match="zero diagonal"):
        m.score(X)
    m = gaussian_hsmm(K=2, D=3, duration="poisson")
    m.dwell_rate_ = np.array([1.0, -1.0])
    with pytest.raises(ValidationError, match="dwell_rate_"):
        m.score(X)
    m = gaussian_hsmm(K=2, D=3)
    m.dwell_pmf_ = np.ones((2, 4)) / 4
    with pytest.raises(ValidationError, match=r"dwell_pmf_ must have shape \(2, 3\)"):
        m.score(X)
    with pytest.raises(ValidationError, match="dwell_rate"):
        TiedGaussianHSMM(2, ties=["dwell_rate[1] = means[0]"]).fit(X)


def test_dask_fit_equals_in_process(dask_client):
    _, X, _ = simulated(seed=5, n=600)
    lengths = [200, 150, 250]
    kw = dict(max_duration=15, ties=["dwell_rate[1] = dwell_rate[0]"], n_iter=15,
              n_init=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = TiedGaussianHSMM(3, **kw).fit(X, lengths)
        ours = TiedGaussianHSMM(3, **kw).fit(X, lengths, client=dask_client)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(ours.dwell_rate_, ref.dwell_rate_, rtol=1e-8)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-8)
    assert ours.score(X, lengths, client=dask_client) == pytest.approx(ref.score(X, lengths),
                                                                       rel=1e-12)
    np.testing.assert_array_equal(np.asarray(ours.predict(X, lengths, client=dask_client)),
                                  ref.predict(X, lengths))


def test_recipe_and_command_line_equal_the_python_api(tmp_path, monkeypatch):
    import json

    from sciTie.cli import main

    truth, X, _ = simulated(seed=6, n=400, duration="negbinom")
    (tmp_path / "x.csv").write_text("x\n" + "\n".join(f"{v:.17g}" for v in X[:, 0]) + "\n")
    monkeypatch.chdir(tmp_path)
    tie = "dwell_shape[1] = dwell_shape[0]"
    rc = main(["fit", "hmm", "--data", "x.csv", "--column", "x", "--family", "gaussian",
               "--states", "3", "--duration", "negbinom", "--max-duration", "20", "--tie", tie,
               "--restarts", "2", "--json", "out.json"])
    assert rc == 0
    out = json.loads((tmp_path / "out.json").read_text())
    api = TiedGaussianHSMM(3, max_duration=20, duration="negbinom", ties=[tie], n_init=2,
                           n_iter=100, tol=1e-4, random_state=0).fit(X)
    assert out["metrics"]["log_likelihood"] == pytest.approx(api.score(X), rel=1e-10)
    p = out["parameters"]
    assert p["dwell_shape[1]"]["value"] == p["dwell_shape[0]"]["value"]
    assert sum(v["status"] == "free" for v in p.values()) == api.n_free_parameters()


@pytest.mark.parametrize("model, match", [
    ('family = "categorical"\nn_components = 2\nduration = "poisson"', "gaussian and poisson"),
    ('family = "gaussian"\nn_components = 2\nmax_duration = 5', "give model.duration"),
    ('family = "gaussian"\nn_components = 2\nduration = "gamma"', "duration"),
])
def test_recipe_duration_errors(tmp_path, model, match):
    from sciTie.errors import RecipeError
    from sciTie.recipes import load_recipe

    (tmp_path / "x.csv").write_text("x\n" + "\n".join(str(i % 3) for i in range(30)) + "\n")
    recipe = tmp_path / "bad.toml"
    recipe.write_text('kind = "hmm"\nname = "bad"\n[data]\nfile = "x.csv"\ncolumns = ["x"]\n'
                      f"[model]\n{model}\n")
    with pytest.raises(RecipeError, match=match):
        load_recipe(recipe)


def test_docstring_examples_run():
    import doctest

    from sciTie.hmm import _hsmm

    outcome = doctest.testmod(_hsmm)
    assert outcome.attempted > 0 and outcome.failed == 0


def test_missing_observations_against_enumeration():
    """A NaN row carries no emission: the enumeration with a factor 1 on that row."""
    m = gaussian_hsmm(duration="poisson", seed=2)
    x = np.random.default_rng(7).normal(size=6)
    x[[1, 4]] = np.nan
    total = 0.0
    for z in itertools.product(range(3), repeat=6):
        w = path_probability(m, np.array(z), np.nan_to_num(x))
        seen = ~np.isnan(x)
        # undo the factor of the missing rows that path_probability put in
        w /= np.prod(stats.norm.pdf(0.0, m.means_[np.array(z)[~seen], 0],
                                    np.sqrt(m.covars_[np.array(z)[~seen], 0, 0])))
        total += w
    assert m.score(x[:, None]) == pytest.approx(np.log(total), rel=1e-12)
    # and EM runs on such data (per-feature occupancies from the segment posteriors)
    X = np.where(np.random.default_rng(0).random((300, 1)) < 0.1, np.nan,
                 simulated(seed=8, n=300)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = TiedGaussianHSMM(3, max_duration=20, n_iter=20, covars_prior=0, n_init=1,
                               tol=-np.inf, random_state=0).fit(X)
    history = np.array(fit.monitor_.history)
    assert history.size == 20 and np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))


class CategoricalHSMM(SemiMarkovMixin, TiedCategoricalHMM):
    """A user's own HSMM of another family, as the docs describe it."""

    def __init__(self, n_components=2, *, max_duration=10, duration="poisson", **kw):
        super().__init__(n_components, params="sted", init_params="sted", **kw)
        self.max_duration = max_duration
        self.duration = duration

    @classmethod
    def _get_param_names(cls):
        return sorted(set(TiedCategoricalHMM._get_param_names()) | {"max_duration",
                                                                     "duration"})


def test_the_mixin_on_another_family():
    m = CategoricalHSMM(2, max_duration=6, duration="negbinom")
    m.n_features = 3
    m.startprob_ = np.array([0.4, 0.6])
    m.transmat_ = np.array([[0.0, 1.0], [1.0, 0.0]])
    m.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    m.dwell_shape_, m.dwell_rate_ = np.array([1.5, 3.0]), np.array([1.0, 2.5])
    m.init_params = ""
    X = np.random.default_rng(0).integers(0, 3, size=(40, 1))
    h = expanded_hmm(m, CategoricalHMM, emissionprob_=m.emissionprob_)
    h.n_features = 3
    assert m.score(X) == pytest.approx(h.score(X), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = CategoricalHSMM(2, max_duration=6, random_state=0, n_iter=20).fit(X)
    assert fit.n_free_parameters() == 1 + 0 + 2 * 2 + 2


def test_dwell_time_figure_shows_the_dwell_pmf():
    """The overlay is the state's dwell pmf times the number of Viterbi dwells (an HMM's
    geometric law from the zero diagonal would put every dwell at d = 1)."""
    import matplotlib

    from sciTie.hmm import dwell_times

    matplotlib.use("Agg")
    _, X, _ = simulated(seed=9, n=600)
    m = TiedGaussianHSMM(3, max_duration=20, n_iter=30, random_state=0).fit(X)
    axes = m.plot_dwell_times(X)
    runs = dwell_times(m.predict(X))
    for ax, k in zip(axes, sorted(runs)):
        first_bin = ax.get_lines()[0].get_ydata()[0]  # durations [1, 2): d = 1
        assert first_bin == pytest.approx(m.dwell_distribution_[k, 0] * runs[k].size)
    with pytest.raises(ValidationError, match="several states"):
        m._level_dwell_distribution([0, 1], 10)


def test_netcdf_layout_has_the_dwell_times():
    _, X, _ = simulated(seed=10, n=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = TiedGaussianHSMM(3, max_duration=20, n_iter=5, random_state=0).fit(X)
    ds = m.to_xarray(X)
    np.testing.assert_array_equal(ds["dwell_rate"].values, m.dwell_rate_)
    assert ds["dwell_distribution"].dims == ("state", "duration")
    assert ds["duration"].values.tolist() == list(range(1, 21))
    np.testing.assert_allclose(ds["dwell_distribution"].sum("duration"), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ds["state_posterior"].values, m.predict_proba(X))


def test_permute_states_moves_the_dwell_times_too():
    _, X, _ = simulated(seed=11, n=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = TiedGaussianHSMM(3, max_duration=20, n_iter=10, random_state=0).fit(X)
    before, rates, post = m.score(X), m.dwell_rate_.copy(), m.predict_proba(X)
    m.permute_states([2, 0, 1])
    assert m.score(X) == pytest.approx(before, rel=1e-12)
    np.testing.assert_array_equal(m.dwell_rate_, rates[[2, 0, 1]])
    np.testing.assert_allclose(m.predict_proba(X), post[:, [2, 0, 1]], atol=1e-12)


def test_negative_binomial_reaches_its_poisson_limit():
    """On Poisson dwell times the negative binomial's shape runs to its cap and the fit is
    the Poisson HSMM's (a limit of the family): same likelihood and rates, EM converged."""
    _, X, _ = simulated(seed=3, n=600)
    kw = dict(max_duration=20, n_iter=300, tol=1e-7, covars_prior=0, n_init=1,
              random_state=1)
    pois = TiedGaussianHSMM(3, duration="poisson", **kw).fit(X)
    nb = TiedGaussianHSMM(3, duration="negbinom", **kw).fit(X)
    assert nb.monitor_.converged and pois.monitor_.converged
    assert nb.score(X) == pytest.approx(pois.score(X), abs=1e-3)
    assert nb.score(X) >= pois.score(X) - 1e-3
    a, b = np.argsort(nb.means_[:, 0]), np.argsort(pois.means_[:, 0])
    np.testing.assert_allclose(nb.dwell_rate_[a], pois.dwell_rate_[b], rtol=1e-3)
    assert np.all(nb.dwell_shape_ > 1e4)
