"""Series of patterns: block-arrow solver, sequential and parametric refinement (synthetic)."""
import pickle
import warnings

import numpy as np
import pytest

from sciTie.diffraction import (Law, ParametricRefinement, SequentialRefinement, SeriesTie,
                                refine_one, specs_from_dataset)
from sciTie.diffraction._blockarrow import (assemble_dense, block_covariance, dense_step,
                                            pattern_blocks, schur_step)
from sciTie.diffraction.data import (SYNTHETIC_SERIES_LAWS, make_synthetic_series,
                                     synthetic_series_recipe)
from sciTie.errors import ValidationError


# -- the block-arrow algebra against dense linear algebra ------------------------------------
def _random_blocks(rng, n_patterns=5, p_s=3, p_l=(2, 4, 1, 3, 2), n=40):
    Js, Jl, r = [], [], []
    for k in range(n_patterns):
        Js.append(rng.normal(size=(n, p_s)))
        Jl.append(rng.normal(size=(n, p_l[k])))
        r.append(rng.normal(size=n))
    return Js, Jl, r


def _stacked(Js, Jl):
    """The full Jacobian [J_s | blockdiag(J_l)] of the arrow problem."""
    p_s = Js[0].shape[1]
    cols = p_s + sum(j.shape[1] for j in Jl)
    rows = sum(j.shape[0] for j in Js)
    J = np.zeros((rows, cols))
    r0, c0 = 0, p_s
    for a, b in zip(Js, Jl):
        J[r0:r0 + a.shape[0], :p_s] = a
        J[r0:r0 + a.shape[0], c0:c0 + b.shape[1]] = b
        r0 += a.shape[0]
        c0 += b.shape[1]
    return J


def test_schur_step_is_the_least_squares_solution():
    rng = np.random.default_rng(4)
    Js, Jl, r = _random_blocks(rng)
    blocks = [pattern_blocks(a, b, c) for a, b, c in zip(Js, Jl, r)]
    D_s = np.ones(3)
    D_l = [np.ones(b.A_ll.shape[0]) for b in blocks]
    ds, dl = schur_step(blocks, 0.0, D_s, D_l)
    # Gauss-Newton step = least-squares solution of J δ = -r, by numpy's SVD solver
    J = _stacked(Js, Jl)
    want, *_ = np.linalg.lstsq(J, -np.concatenate(r), rcond=None)
    np.testing.assert_allclose(np.concatenate([ds] + dl), want, rtol=1e-9, atol=1e-12)
    # damped: the same as the dense damped normal equations
    lam = 0.7
    D_s = rng.uniform(0.5, 2, 3)
    D_l = [rng.uniform(0.5, 2, b.A_ll.shape[0]) for b in blocks]
    s1, l1 = schur_step(blocks, lam, D_s, D_l)
    A = J.T @ J + lam * np.diag(np.concatenate([D_s] + D_l))
    want = np.linalg.solve(A, -J.T @ np.concatenate(r))
    np.testing.assert_allclose(np.concatenate([s1] + l1), want, rtol=1e-9, atol=1e-12)
    s2, l2 = dense_step(blocks, lam, D_s, D_l)
    np.testing.assert_allclose(np.concatenate([s2] + l2), want, rtol=1e-9, atol=1e-12)
    Ad, gd = assemble_dense(blocks)
    np.testing.assert_allclose(Ad, J.T @ J, atol=1e-10)
    np.testing.assert_allclose(gd, J.T @ np.concatenate(r), atol=1e-10)


def test_block_covariance_is_the_inverse_normal_matrix():
    rng = np.random.default_rng(5)
    Js, Jl, r = _random_blocks(rng)
    blocks = [pattern_blocks(a, b, c) for a, b, c in zip(Js, Jl, r)]
    C_ss, C_sl, C_ll, W = block_covariance(blocks)
    J = _stacked(Js, Jl)
    C = np.linalg.inv(J.T @ J)
    np.testing.assert_allclose(C_ss, C[:3, :3], rtol=1e-9)
    o = 3
    offsets = []
    for k, b in enumerate(blocks):
        n = b.A_ll.shape[0]
        np.testing.assert_allclose(C_sl[k], C[:3, o:o + n], rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(C_ll[k], C[o:o + n, o:o + n], rtol=1e-8, atol=1e-12)
        offsets.append(o)
        o += n
    # patterns are correlated through the shared block: W_i C_ss W_jᵀ
    n0, n1 = blocks[0].A_ll.shape[0], blocks[1].A_ll.shape[0]
    np.testing.assert_allclose(W[0] @ C_ss @ W[1].T,
                               C[offsets[0]:offsets[0] + n0, offsets[1]:offsets[1] + n1],
                               rtol=1e-8, atol=1e-12)


def test_undetermined_shared_parameters_are_named_not_inverted():
    from sciTie.diffraction._blockarrow import SingularSharedBlock
    rng = np.random.default_rng(5)
    Js, Jl, r = _random_blocks(rng)
    # shared column 2 = 3 x column 0 in every pattern: only their combination is determined
    Js = [np.column_stack([a[:, 0], a[:, 1], 3 * a[:, 0]]) for a in Js]
    blocks = [pattern_blocks(a, b, c) for a, b, c in zip(Js, Jl, r)]
    with pytest.raises(SingularSharedBlock) as info:
        block_covariance(blocks)
    assert info.value.undetermined == [0, 2]
    # scaling alone is no reason: columns 1e8 apart still give numpy's inverse
    Js2 = [a * np.array([1.0, 1e4, 1e-4]) for a in _random_blocks(rng)[0]]
    blocks2 = [pattern_blocks(a, b, c) for a, b, c in zip(Js2, Jl, r)]
    J2 = _stacked(Js2, Jl)
    np.testing.assert_allclose(block_covariance(blocks2)[0], np.linalg.inv(J2.T @ J2)[:3, :3],
                               rtol=1e-7)


# -- synthetic series -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_series():
    ds = make_synthetic_series(5, seed=3)
    return ds, specs_from_dataset(ds), synthetic_series_recipe()


@pytest.fixture(scope="module")
def sequential_small(small_series):
    ds, specs, recipe = small_series
    return SequentialRefinement(specs, recipe).fit()


def test_sequential_result_layout_and_recovery(small_series, sequential_small):
    ds, specs, recipe = small_series
    S = sequential_small.to_xarray()
    assert S.sizes["temperature"] == 5 and "param" in S.dims
    assert S["temperature"].attrs["units"] == "K"
    np.testing.assert_allclose(S["temperature"].values, ds["temperature"].values)
    for name in ("TiO2.a", "TiO2.c", "TiO2.O.x", "pattern.scale", "pattern.shift"):
        assert name in S["param"].values
    assert np.all(S["stderr"].sel(param="TiO2.a").values > 0)
    assert "sciTie_version" in S.attrs and "settings" in S.attrs
    # every pattern's cell within 3 esd of the generating law, GOF near 1 (Poisson data)
    for key in ("a", "c"):
        z = ((S["value"].sel(param=f"TiO2.{key}") - ds[f"true_{key}"].values)
             / S["stderr"].sel(param=f"TiO2.{key}")).values
        assert np.all(np.abs(z) < 3.5), (key, z)
    z = ((S["value"].sel(param="pattern.shift") - ds["true_shift"].values)
         / S["stderr"].sel(param="pattern.shift")).values
    assert np.all(np.abs(z) < 3.5), z
    assert np.all((S["gof"].values > 0.95) & (S["gof"].values < 1.1))
    seq = sequential_small.sequence()
    assert seq[0]["temperature"] == pytest.approx(10.0) and "TiO2.a" in seq[0]["parameters"]
    assert set(seq[0]["parameters"]["TiO2.a"]) == {"value", "stderr"}


@pytest.mark.slow
def test_independent_fits_agree_across_modes_and_processes(small_series, sequential_small):
    ds, specs, recipe = small_series
    start = sequential_small.fits_[0]["values"]
    one = SequentialRefinement(specs[:3], recipe, mode="start", start=start).fit()
    two = SequentialRefinement(specs[:3], recipe, mode="start", start=start, n_jobs=2).fit()
    np.testing.assert_allclose(one.to_xarray()["value"].values, two.to_xarray()["value"].values,
                               rtol=1e-12, equal_nan=True)
    # from one start or from the previous pattern: the same minimum
    a_prev = sequential_small.to_xarray()["value"].sel(param="TiO2.a").values[:3]
    a_start = one.to_xarray()["value"].sel(param="TiO2.a").values
    err = sequential_small.to_xarray()["stderr"].sel(param="TiO2.a").values[:3]
    assert np.all(np.abs(a_prev - a_start) < 0.01 * err)
    # the unit of work pickles (a cluster can run it)
    blob = pickle.dumps((refine_one, specs[0], recipe, start))
    fn, sp, rc, st = pickle.loads(blob)
    assert fn(sp, rc, st)["values"]["TiO2.a"] == pytest.approx(a_start[0], abs=1e-3 * err[0])


LAWS = {"TiO2.a": "a0 + a1*T + a2*T**2", "TiO2.c": "c0 + c1*T + c2*T**2", "TiO2.O.x": "ox"}


def test_parametric_schur_equals_dense_and_recovers_the_laws(small_series, sequential_small):
    ds, specs, recipe = small_series
    par = ParametricRefinement(specs, recipe, laws=LAWS, start=sequential_small).fit()
    dense = ParametricRefinement(specs, recipe, laws=LAWS, start=sequential_small,
                                 solver="dense").fit()
    assert par.result_.chisqr == pytest.approx(dense.result_.chisqr, rel=1e-9)
    for k, v in par.laws_.items():
        assert v["value"] == pytest.approx(dense.laws_[k]["value"], rel=1e-7, abs=1e-12)
        assert v["stderr"] == pytest.approx(dense.laws_[k]["stderr"], rel=1e-6)
    truth = {n: c for _, (_, co) in SYNTHETIC_SERIES_LAWS.items() for n, c in co.items()}
    truth["ox"] = ds.attrs["true_O.x"]
    for k, v in par.laws_.items():
        assert abs(v["value"] - truth[k]) < 3 * v["stderr"], (k, v, truth[k])
    # fewer parameters than the sequential fits, and chi2 no lower (a restriction of them)
    n_seq = int(sequential_small.to_xarray()["nvarys"].sum())
    assert par.result_.nvarys == n_seq - 3 * 5 + 7
    chi_seq = float(sequential_small.to_xarray()["chi2"].sum())
    assert par.result_.chisqr >= chi_seq * (1 - 1e-6)
    # per-pattern results carry the laws evaluated at each temperature, with esds
    S = par.to_xarray()
    a = S["value"].sel(param="TiO2.a").values
    v, e = par.law_curve("TiO2.a", S["temperature"].values)
    np.testing.assert_allclose(a, v, rtol=1e-12)
    np.testing.assert_allclose(S["stderr"].sel(param="TiO2.a").values, e, rtol=1e-6)


def test_parametric_against_the_core_dense_least_squares(small_series, sequential_small):
    """The block LM reaches the minimum scipy's least_squares finds on the same tie map."""
    from sciTie import fit_least_squares

    ds, specs, recipe = small_series
    par = ParametricRefinement(specs[:3], recipe, laws=LAWS,
                               start=sequential_small.fits_[:3]).fit()
    g = par.group_.copy()
    terms = par.dense_terms()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fit_least_squares(g, terms, method="trf")
    assert ref.chisqr == pytest.approx(par.result_.chisqr, rel=1e-7)
    for k, v in par.laws_.items():
        assert ref.value(f"laws.{k}") == pytest.approx(v["value"], abs=0.05 * v["stderr"])
        assert ref.error(f"laws.{k}") == pytest.approx(v["stderr"], rel=1e-3)


def test_series_input_errors(small_series):
    ds, specs, recipe = small_series
    with pytest.raises(ValidationError, match="mode"):
        SequentialRefinement(specs, recipe, mode="sideways").fit()
    with pytest.raises(ValidationError, match="n_jobs"):
        SequentialRefinement(specs, recipe, n_jobs=0).fit()
    with pytest.raises(ValidationError, match="unique"):
        SequentialRefinement([specs[0], specs[0]], recipe).fit()
    with pytest.raises(ValidationError, match="not a slot"):
        ParametricRefinement(specs[:2], recipe, laws={"TiO2.q": "q0 + q1*T"},
                             start=[{"label": s.label, "values": {}, "stderr": {}}
                                    for s in specs[:2]]).fit()
    with pytest.raises(ValidationError, match="solver"):
        ParametricRefinement(specs, recipe, laws=LAWS, solver="qr").fit()
    assert SeriesTie("a.c", "a.b", above=10).applies(11) and not SeriesTie(
        "a.c", "a.b", above=10).applies(9)
    assert Law("x0").start == {}


@pytest.mark.slow
def test_a_few_hundred_patterns_recover_the_laws():
    """200 synthetic patterns (10-300 K), one parametric fit from the templates (scale and
    background by linear least squares, no sequential pass): every law coefficient within
    3 esd of the generating value, and each pattern's own scale and displacement too."""
    ds = make_synthetic_series(200, seed=11)
    specs = specs_from_dataset(ds)
    par = ParametricRefinement(specs, synthetic_series_recipe(), laws=LAWS,
                               start="initialize").fit()
    assert par.result_.success
    truth = {n: c for _, (_, co) in SYNTHETIC_SERIES_LAWS.items() for n, c in co.items()}
    truth["ox"] = ds.attrs["true_O.x"]
    z = {k: (v["value"] - truth[k]) / v["stderr"] for k, v in par.laws_.items()}
    assert all(abs(v) < 3 for v in z.values()), z
    S = par.to_xarray()
    for name, key in (("pattern.shift", "true_shift"), ("pattern.scale", "true_scale")):
        zz = (S["value"].sel(param=name) - ds[key].values) / S["stderr"].sel(param=name)
        assert np.mean(np.abs(zz.values) < 3) > 0.98, name
    assert 0.97 < par.result_.redchi < 1.1


@pytest.mark.slow
def test_law_esds_match_the_scatter_over_seeds():
    """Eight series of 12 patterns: the spread of the fitted coefficients over noise seeds
    equals their reported esds (ratio within 0.55-1.6, the 95 % range of a standard deviation
    from 8 samples), and their mean is within 4 standard errors of the truth."""
    truth = {n: c for _, (_, co) in SYNTHETIC_SERIES_LAWS.items() for n, c in co.items()}
    values, errors = [], []
    for seed in range(100, 108):
        ds = make_synthetic_series(12, seed=seed)
        par = ParametricRefinement(specs_from_dataset(ds), synthetic_series_recipe(),
                                   laws=LAWS, start="initialize").fit()
        names = [k for k in par.laws_ if k in truth]
        values.append([par.laws_[k]["value"] for k in names])
        errors.append([par.laws_[k]["stderr"] for k in names])
    values, errors = np.array(values), np.array(errors)
    ratio = values.std(axis=0, ddof=1) / np.sqrt(np.mean(errors ** 2, axis=0))
    print("scatter / esd:", dict(zip(names, ratio.round(2))))
    assert np.all((ratio > 0.55) & (ratio < 1.6)), dict(zip(names, ratio.round(2)))
    t = np.array([truth[k] for k in names])
    bias = (values.mean(0) - t) / (values.std(0, ddof=1) / np.sqrt(len(values)))
    assert np.all(np.abs(bias) < 4), dict(zip(names, bias.round(2)))


def test_series_image_draws_the_loaded_series_sorted_by_temperature():
    import matplotlib
    import matplotlib.pyplot as plt
    import xarray as xr
    from sciTie.diffraction import plot_series_image
    from sciTie.errors import ValidationError
    rng = np.random.default_rng(0)
    counts = rng.uniform(10, 100, size=(3, 5))
    ds = xr.Dataset({"intensity": (("pattern", "two_theta"), counts)},
                    coords={"two_theta": np.linspace(5, 6, 5),
                            "temperature": ("pattern", [300.0, 10.0, 150.0])})
    ax = plot_series_image(ds, two_theta=(5.2, 6.0))
    mesh = [c for c in ax.collections if isinstance(c, matplotlib.collections.QuadMesh)][0]
    # rows in temperature order (10, 150, 300 K), the first 2θ point left out by the range
    assert np.array_equal(np.asarray(mesh.get_array()).reshape(3, 4), counts[[1, 2, 0], 1:])
    plt.close(ax.figure)
    with pytest.raises(ValidationError, match="cannot draw 'difference'.*no calc"):
        plot_series_image(ds, what="difference")


def test_laws_with_more_coefficients_than_values_are_refused_before_the_fit():
    ds = make_synthetic_series(2, seed=0)
    laws = {k: Law(e) for k, (e, _) in SYNTHETIC_SERIES_LAWS.items()}  # quadratics in T
    par = ParametricRefinement(specs_from_dataset(ds), synthetic_series_recipe(ds), laws=laws,
                               start="initialize")
    with pytest.raises(ValidationError, match=r"3 coefficients \(a0, a1, a2\) but only 2"):
        par.fit()


def test_laws_sharing_coefficients_are_counted_together():
    from sciTie.diffraction._parametric import _check_enough_values
    laws = {"b": (None, None, ["m0", "m1", "d"]), "c": (None, None, ["m0", "m1", "e"])}
    # 4 coefficients; b applies at two temperatures, c (tied above) at one: 3 values
    with pytest.raises(ValidationError, match=r"4 coefficients \(d, e, m0, m1\) but only 3"):
        _check_enough_values(laws, {"b": {10.0, 20.0}, "c": {10.0}})
    _check_enough_values(laws, {"b": {10.0, 20.0}, "c": {10.0, 20.0}})  # 4 values: accepted


def test_undetermined_law_coefficients_warn_and_keep_the_values():
    from sciTie.errors import IdentifiabilityWarning
    ds = make_synthetic_series(3, seed=1)
    # a1 and a2 multiply the same T: only their sum is determined by the data
    laws = {"TiO2.a": Law("a0 + a1*T + a2*T", start={"a0": 4.59, "a1": 1e-5, "a2": 1e-5}),
            "TiO2.c": Law(SYNTHETIC_SERIES_LAWS["TiO2.c"][0])}
    par = ParametricRefinement(specs_from_dataset(ds), synthetic_series_recipe(ds), laws=laws,
                               start="initialize")
    with pytest.warns(IdentifiabilityWarning, match=r"do not determine.*laws\.a1.*laws\.a2"):
        par.fit()
    assert np.isnan(par.laws_["a1"]["stderr"]) and np.isnan(par.laws_["c0"]["stderr"])
    # the law's values still reach the per-pattern results, each one the law at its T
    a = par.to_xarray()["value"].sel(param="TiO2.a").values
    T = par.to_xarray()["temperature"].values
    coef = {k: v["value"] for k, v in par.laws_.items()}
    np.testing.assert_allclose(a, coef["a0"] + (coef["a1"] + coef["a2"]) * T, rtol=1e-12)
