"""Least-squares driver: NIST certified problems, shared parameters, lmfit, bounds, restraints."""
import numpy as np
import pytest

from sciTie import ParameterGroup, ResidualTerm, fit_least_squares

from nist_strd import MISRA1A, THURBER, misra1a_jac, misra1a_model, thurber_jac, thurber_model


def _significant_digits(value, reference):
    """Log relative error (LRE): how many leading digits agree."""
    err = abs(value - reference) / abs(reference)
    return np.inf if err == 0 else -np.log10(err)


def _fit_nist(problem, model, jac, start, analytic):
    g = ParameterGroup("nist")
    g.add("b", np.array(start, dtype=float))
    x, y = problem["x"], problem["y"]
    residual = lambda v: y - model(v["b"], x)  # noqa: E731
    jacobian = (lambda v: -jac(v["b"], x)) if analytic else None
    return fit_least_squares(g, residual, jacobian, ftol=1e-15, xtol=1e-15, gtol=1e-15,
                             max_nfev=5000)


@pytest.mark.parametrize("problem,model,jac", [(MISRA1A, misra1a_model, misra1a_jac),
                                               (THURBER, thurber_model, thurber_jac)],
                         ids=["Misra1a", "Thurber"])
@pytest.mark.parametrize("start", [0, 1], ids=["start1", "start2"])
@pytest.mark.parametrize("analytic", [True, False], ids=["analytic", "finite-diff"])
def test_nist_strd_certified_values(problem, model, jac, start, analytic):
    res = _fit_nist(problem, model, jac, problem["starts"][start], analytic)
    assert res.success
    # Certified values carry 11 digits, computed in extended precision. In float64 the
    # Thurber chi-square is flat to ~2e-14 (relative) around its minimum, which limits any
    # LM/TRF solver to about 8 digits there; Misra1a is well conditioned.
    digits = {("Misra1a", True): 9, ("Misra1a", False): 7, ("Thurber", True): 7,
              ("Thurber", False): 6}[(problem["name"], analytic)]
    for value, cert in zip(res.x, problem["certified"]):
        assert _significant_digits(value, cert) >= digits, (value, cert)
    for se, cert in zip(res.stderr, problem["stderr"]):
        assert _significant_digits(se, cert) >= digits - 1, (se, cert)
    assert res.chisqr == pytest.approx(problem["rss"], rel=1e-10)
    assert res.nfree == problem["x"].size - len(problem["certified"])


def _two_dataset_problem(seed=3):
    rng = np.random.default_rng(seed)
    t1 = np.linspace(0, 4, 40)
    t2 = np.linspace(0.5, 6, 55)
    k_true = 0.8
    s1, s2 = 0.05, 0.08
    y1 = 2.5 * np.exp(-k_true * t1) + 0.1 + rng.normal(0, s1, t1.size)
    y2 = 1.2 * np.exp(-k_true * t2) + rng.normal(0, s2, t2.size)
    return t1, y1, s1, t2, y2, s2


def test_shared_parameter_matches_hand_written_and_lmfit():
    import lmfit  # a test dependency: its absence must fail, not skip
    t1, y1, s1, t2, y2, s2 = _two_dataset_problem()

    # sciTie: two groups, each with its own k, tied into one
    d1 = ParameterGroup("d1")
    d1.add("A", 1.0)
    d1.add("k", 0.5, min=0.0)
    d1.add("c", 0.0)
    d2 = ParameterGroup("d2")
    d2.add("A", 1.0)
    d2.add("k", 0.5, min=0.0)
    joint = ParameterGroup("joint")
    joint.add_group(d1)
    joint.add_group(d2)
    joint.tie("d2.k", to="d1.k")
    terms = [
        ResidualTerm("d1", lambda v: (y1 - v["d1.A"] * np.exp(-v["d1.k"] * t1) - v["d1.c"]) / s1),
        ResidualTerm("d2", lambda v: (y2 - v["d2.A"] * np.exp(-v["d2.k"] * t2)) / s2),
    ]
    res = fit_least_squares(joint, terms, scale_covar=True, ftol=1e-15, xtol=1e-15, gtol=1e-15)
    assert joint.n_free == 4 and res.nvarys == 4
    assert res.free_names == ["d1.A", "d1.k", "d1.c", "d2.A"]

    # the same model written by hand with one k, in plain scipy + numpy covariance
    from scipy.optimize import least_squares

    def hand(p):
        A1, k, c, A2 = p
        return np.concatenate([(y1 - A1 * np.exp(-k * t1) - c) / s1,
                               (y2 - A2 * np.exp(-k * t2)) / s2])

    h = least_squares(hand, [1.0, 0.5, 0.0, 1.0], xtol=1e-15, ftol=1e-15, gtol=1e-15)
    cov_h = np.linalg.inv(h.jac.T @ h.jac) * (2 * h.cost) / (t1.size + t2.size - 4)
    np.testing.assert_allclose(res.x, h.x, rtol=1e-7)
    np.testing.assert_allclose(res.stderr, np.sqrt(np.diag(cov_h)), rtol=1e-6)

    # lmfit with an expr tie
    params = lmfit.Parameters()
    params.add("A1", 1.0)
    params.add("k1", 0.5, min=0.0)
    params.add("c", 0.0)
    params.add("A2", 1.0)
    params.add("k2", expr="k1")
    out = lmfit.minimize(lambda p: np.concatenate([
        (y1 - p["A1"] * np.exp(-p["k1"] * t1) - p["c"]) / s1,
        (y2 - p["A2"] * np.exp(-p["k2"] * t2)) / s2]), params, method="least_squares",
        xtol=1e-15, ftol=1e-15, gtol=1e-15)
    for ours, theirs in [("d1.A", "A1"), ("d1.k", "k1"), ("d1.c", "c"), ("d2.A", "A2"),
                         ("d2.k", "k2")]:
        assert res.value(ours) == pytest.approx(out.params[theirs].value, rel=1e-6)
        assert res.error(ours) == pytest.approx(out.params[theirs].stderr, rel=1e-6)
    # the tied slot reports the shared value and the same (propagated) stderr
    assert res.params["d2.k"].value == res.params["d1.k"].value
    assert res.params["d2.k"].stderr == pytest.approx(res.params["d1.k"].stderr, rel=1e-12)
    assert res.term_chisqr["d1"] + res.term_chisqr["d2"] == pytest.approx(res.chisqr)
    assert "== 'd1.k'" in res.report()


def test_analytic_jacobian_through_ties_equals_finite_differences_fit():
    t1, y1, s1, t2, y2, s2 = _two_dataset_problem(seed=11)
    g = ParameterGroup("g")
    g.add("A", np.array([1.0, 1.0]))
    g.add("k", np.array([0.5, 0.5]), min=0)
    g.tie("k[1]", to="k[0]", scale=1.0)

    def res_(v):
        A, k = v["A"], v["k"]
        return np.concatenate([(y1 - A[0] * np.exp(-k[0] * t1)) / s1,
                               (y2 - A[1] * np.exp(-k[1] * t2)) / s2])

    def jac_(v):  # w.r.t. slots A[0], A[1], k[0], k[1]
        A, k = v["A"], v["k"]
        J = np.zeros((t1.size + t2.size, 4))
        e1, e2 = np.exp(-k[0] * t1), np.exp(-k[1] * t2)
        J[:t1.size, 0] = -e1 / s1
        J[t1.size:, 1] = -e2 / s2
        J[:t1.size, 2] = A[0] * t1 * e1 / s1
        J[t1.size:, 3] = A[1] * t2 * e2 / s2
        return J

    a = fit_least_squares(g, res_, jac_)
    b = fit_least_squares(g, res_)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-7)
    np.testing.assert_allclose(a.stderr, b.stderr, rtol=1e-5)
    assert a.nvarys == 3


def test_bounds_are_honoured():
    x = np.linspace(0, 1, 30)
    y = 2.0 * x + 1.0
    g = ParameterGroup("line")
    g.add("m", 1.0, max=1.5)
    g.add("q", 0.0)
    res = fit_least_squares(g, lambda v: y - (v["m"] * x + v["q"]))
    assert res.value("m") <= 1.5
    assert res.value("m") == pytest.approx(1.5, abs=1e-8)
    # with m pinned at 1.5 the best intercept is the closed-form mean of the residual
    assert res.value("q") == pytest.approx(np.mean(y - 1.5 * x), rel=1e-8)


def test_restraint_equals_an_extra_observation():
    """A restraint (p - t)/sigma is a pseudo-observation: compare with the closed-form
    weighted linear least squares that includes that row."""
    rng = np.random.default_rng(5)
    x = np.linspace(0, 2, 20)
    y = 0.7 * x + 0.2 + rng.normal(0, 0.1, x.size)
    g = ParameterGroup("line")
    g.add("m", 0.0)
    g.add("q", 0.0)
    g.restrain("m", target=0.5, sigma=0.05)
    res = fit_least_squares(g, lambda v: (y - v["m"] * x - v["q"]) / 0.1, scale_covar=False)
    A = np.vstack([np.column_stack([x, np.ones_like(x)]) / 0.1, [1 / 0.05, 0.0]])
    b = np.concatenate([y / 0.1, [0.5 / 0.05]])
    sol, *_ = np.linalg.lstsq(A, b, rcond=None)
    np.testing.assert_allclose(res.x, sol, rtol=1e-9)
    np.testing.assert_allclose(res.stderr, np.sqrt(np.diag(np.linalg.inv(A.T @ A))), rtol=1e-9)
    assert res.term_ndata["restraints"] == 1
    assert res.ndata == x.size + 1


def test_input_group_is_not_modified_and_result_is_reproducible():
    x = np.linspace(0, 1, 10)
    y = 3 * x
    g = ParameterGroup("g")
    g.add("m", 1.0)
    r1 = fit_least_squares(g, lambda v: y - v["m"] * x)
    r2 = fit_least_squares(g, lambda v: y - v["m"] * x)
    assert g["m"].value == 1.0 and g["m"].stderr is None
    assert r1.value("m") == r2.value("m") == pytest.approx(3.0)


def test_expression_constraint_fit_and_propagated_stderr_match_lmfit():
    import lmfit  # a test dependency: its absence must fail, not skip
    rng = np.random.default_rng(8)
    x = np.linspace(-3, 3, 80)
    # two Gaussians whose widths are tied nonlinearly: w2 = 2*w1**2 + 0.1
    def model(a1, w1, a2, w2):
        return a1 * np.exp(-(x - 1) ** 2 / (2 * w1**2)) + a2 * np.exp(-(x + 1) ** 2 / (2 * w2**2))
    y = model(1.0, 0.5, 0.6, 2 * 0.25 + 0.1) + rng.normal(0, 0.02, x.size)
    g = ParameterGroup("peaks")
    for n, v in [("a1", 0.8), ("w1", 0.6), ("a2", 0.5), ("w2", 0.7)]:
        g.add(n, v)
    g.constrain("w2", "2*w1**2 + 0.1")
    res = fit_least_squares(g, lambda v: y - model(v["a1"], v["w1"], v["a2"], v["w2"]))
    p = lmfit.Parameters()
    p.add("a1", 0.8)
    p.add("w1", 0.6)
    p.add("a2", 0.5)
    p.add("w2", expr="2*w1**2 + 0.1")
    out = lmfit.minimize(lambda q: y - model(q["a1"], q["w1"], q["a2"], q["w2"]), p,
                         method="least_squares", xtol=1e-15, ftol=1e-15, gtol=1e-15)
    for n in ["a1", "w1", "a2", "w2"]:
        assert res.value(n) == pytest.approx(out.params[n].value, rel=1e-6)
        assert res.error(n) == pytest.approx(out.params[n].stderr, rel=1e-4)


def test_report_and_xarray():
    x = np.linspace(0, 1, 20)
    y = 2 * x + 1 + 0.01 * np.sin(7 * x)
    g = ParameterGroup("line")
    g.add("m", 1.0, unit="1/s")
    g.add("q", 0.0)
    g.add("q2", 0.0)
    g.tie("q2", to="q", scale=2.0)
    g.add("fixed_one", 1.0, vary=False)
    res = fit_least_squares(g, lambda v: y - (v["m"] * x + v["q"] + 0 * v["q2"] * v["fixed_one"]))
    text = res.report()
    for needle in ["[[Fit Statistics]]", "[[Variables]]", "m:", "(fixed)", "== '2*q'",
                   "[[Correlations]]", "C(m, q)"]:
        assert needle in text
    ds = res.to_xarray()
    assert list(ds.param.values) == ["m", "q"]
    assert ds.covariance.dims == ("cov_i", "cov_j")
    np.testing.assert_allclose(ds.covariance.values, res.covar)
    # the tied slot's stderr is exactly twice the free one (G has 2 in that row)
    assert res.error("q2") == pytest.approx(2 * res.error("q"), rel=1e-12)
    assert res.error("fixed_one") == 0.0


def test_lsmr_trust_region_solver_reaches_the_same_bounded_optimum():
    t1, y1, s1, t2, y2, s2 = _two_dataset_problem(seed=4)
    g = ParameterGroup("g")
    g.add("A", 1.0, min=0.0)
    g.add("k", 0.5, min=0.0, max=5.0)
    res_ = lambda v: (y1 - v["A"] * np.exp(-v["k"] * t1)) / s1  # noqa: E731
    exact = fit_least_squares(g, res_, ftol=1e-14, xtol=1e-14, gtol=1e-14)
    lsmr = fit_least_squares(g, res_, tr_solver="lsmr", ftol=1e-14, xtol=1e-14, gtol=1e-14)
    np.testing.assert_allclose(lsmr.x, exact.x, rtol=1e-7)
    np.testing.assert_allclose(lsmr.stderr, exact.stderr, rtol=1e-6)


def test_small_fits_run_blas_on_one_thread_and_restore_the_users_setting():
    """Small systems get one BLAS thread (threads only spin-wait on their products); wide
    ones keep the user's setting, and the setting is restored afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from sciTie.core.threads import THREADED_FROM, blas_threads_for

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with blas_threads_for(THREADED_FROM - 1):
            assert all(n == 1 for n in blas_threads())
        assert blas_threads() == before
        with blas_threads_for(THREADED_FROM):
            assert blas_threads() == before


def test_one_thread_finds_the_pools_again_after_an_import_and_nests():
    """The thread pools found are kept between calls and looked for again once a module has
    been imported (a new BLAS or OpenMP library comes with an import); limits nest and each
    exit restores what was there."""
    import sys
    import types

    from threadpoolctl import threadpool_info, threadpool_limits

    from sciTie.core import threads

    def counts(api):
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == api]

    with threadpool_limits(limits=2):
        before_blas, before_omp = counts("blas"), counts("openmp")
        with threads.one_thread("blas"):
            kept = threads._controller()
            assert all(n == 1 for n in counts("blas")) and counts("openmp") == before_omp
            assert threads._controller() is kept  # nothing imported in between
            sys.modules["_scitie_probe_module"] = types.ModuleType("_scitie_probe_module")
            try:
                assert threads._controller() is not kept
                with threads.one_thread():
                    assert all(n == 1 for n in counts("blas") + counts("openmp"))
                assert all(n == 1 for n in counts("blas")) and counts("openmp") == before_omp
            finally:
                del sys.modules["_scitie_probe_module"]
        assert counts("blas") == before_blas and counts("openmp") == before_omp
