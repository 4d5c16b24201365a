"""Several phases per pattern, background peaks, peak tails and scattering tables."""
import warnings

import gemmi
import numpy as np
import pytest
from diffraction_checks import fd_check
from scipy.integrate import quad

from sciTie.diffraction import (Atom, ConstantWavelength, JointRefinement, Phase, PowderPattern,
                                lost_fraction, make_pattern, pseudo_voigt, weight_fractions,
                                window_fwhm)
from sciTie.diffraction._refine import constrain_fractions
from sciTie.diffraction._rows import strain
from sciTie.diffraction.data import synthetic_phase
from sciTie.errors import DataFormatError, FitWarning, ValidationError


def _rocksalt(a=5.64):
    """NaCl (Fm-3m), a second phase beside rutile in the tests."""
    return Phase("NaCl", (a, a, a, 90, 90, 90), "F m -3 m",
                 [Atom("Na", "Na", (0, 0, 0), uiso=0.012), Atom("Cl", "Cl", (0.5, 0.5, 0.5),
                                                               uiso=0.010)])


def _cu(**values):
    """A Cu Kα1 X-ray diffractometer (other settings and starting values in ``values``)."""
    return ConstantWavelength(**{"radiation": "xray", "lam1": 1.5405, **values})


def _grid(lo=15.0, hi=80.0, step=0.02):
    tth = np.arange(lo, hi, step)
    return make_pattern(tth, np.ones_like(tth), np.ones_like(tth))


# -- the tail criterion -----------------------------------------------------------------------
@pytest.mark.parametrize("eta", [0.0, 0.05, 0.3, 0.7, 1.0])
def test_lost_fraction_closed_form_matches_direct_integration(eta):
    """lost(k, eta) against the numerical integral of the unit-area pseudo-Voigt outside ±k."""
    fwhm = 0.1
    for k in (2.0, 5.0, 40.0):
        f = lambda x: pseudo_voigt(np.array([x]), np.array([fwhm]), np.array([eta]),  # noqa: E731
                                   grad=False)[0][0]
        inside = quad(f, -k * fwhm, k * fwhm, points=[0.0], limit=400, epsabs=1e-13)[0]
        assert lost_fraction(k, eta) == pytest.approx(1.0 - inside, abs=1e-9)


@pytest.mark.parametrize("tol", [1e-2, 1e-3, 1e-4])
def test_window_is_the_smallest_that_meets_the_criterion(tol):
    eta = np.array([0.0, 1e-4, 0.02, 0.3, 0.7, 1.0])
    k = window_fwhm(eta, tol)
    assert np.all(lost_fraction(k, eta) <= tol)
    tight = k > 3.0                       # above the 3-FWHM floor the window is not wider
    assert np.all(lost_fraction(k[tight] * 0.99, eta[tight]) > tol)   # than it must be
    assert window_fwhm(eta, 0.0).tolist() == [np.inf] * eta.size
    # the old rule (at most 12 FWHM) lost 0.7 % of a pure Lorentzian's intensity
    assert lost_fraction(12.0, 0.5) > 1e-2 * 0.5


def _single_reflection_pattern(tolerance, X=5.0):
    """Primitive-cubic phase and neutrons of 4 Å: (100) is the only reflection (d >= 2 Å)."""
    ph = Phase("Ni", (2.5, 2.5, 2.5, 90, 90, 90), "P m -3 m", [Atom("Ni", "Ni", (0, 0, 0))])
    tth = np.arange(1.0, 179.0, 0.004)
    data = make_pattern(tth, np.ones_like(tth), np.ones_like(tth))
    inst = _cu(radiation="neutron", lam1=4.0, geometry="debye-scherrer", U=0.0, V=0.0, W=4.0,
               X=X, Y=0.0)
    return PowderPattern(data, ph, inst, n_background=0, tail_tolerance=tolerance)


@pytest.mark.parametrize("tolerance", [1e-3, 1e-2])
def test_pattern_peak_loses_less_than_the_tolerance(tolerance):
    """Integrate the calculated pattern of one (mostly Lorentzian) reflection directly."""
    pat = _single_reflection_pattern(tolerance)
    y, _, info = pat.evaluate(pat.local_vector(), grad=False, peaks=True)
    assert len(info["refl_I"]) == 1
    I = info["refl_I"][0]
    eta = pat._rows(pat.local_vector(), False)["eta"][0]
    assert eta > 0.6
    window = pat.windows.w_rows[0]             # frozen window: tapers from W/2 to W
    assert 1.0 < info["refl_pos"][0] - window and info["refl_pos"][0] + window < 179.0
    lost = 1.0 - np.trapezoid(y, pat.x) / I
    assert 0 <= lost < tolerance
    # the window is not needlessly wide: half the criterion's window would lose more
    assert lost_fraction(0.5 * window_fwhm(eta, tolerance), eta) > lost
    # with tolerance 0 the whole range is evaluated: only what lies outside 1-179 deg is lost
    exact = _single_reflection_pattern(0.0)
    ye, _ = exact.evaluate(exact.local_vector(), grad=False)
    fw = pat._rows(pat.local_vector(), False)["fwhm"][0]
    pos = info["refl_pos"][0]
    outside = 0.5 * (lost_fraction((pos - 1.0) / fw, eta) + lost_fraction((179 - pos) / fw, eta))
    assert 1.0 - np.trapezoid(ye, exact.x) / I == pytest.approx(outside, rel=2e-3, abs=1e-6)


def test_reflections_above_the_range_reach_in_with_their_tails():
    """Peaks above the fit range are generated when their windows reach into it."""
    phase = synthetic_phase()
    pat = PowderPattern(_grid(20.0, 60.0), phase, _cu(U=0.0, V=0.0, W=2.0, X=25.0, Y=0.0),
                        n_background=0)
    pos = pat.evaluate(pat.local_vector(), grad=False, peaks=True)[2]["refl_pos"]
    assert pos.max() > 62.0
    y_tail = pat.evaluate(pat.local_vector(), grad=False)[0]
    cut = PowderPattern(_grid(20.0, 60.0), phase, _cu(U=0.0, V=0.0, W=2.0, X=25.0, Y=0.0),
                        n_background=0, tail_tolerance=0.0)
    y_all = cut.evaluate(cut.local_vector(), grad=False)[0]
    # the tail model agrees with the exact one to the tolerance of the peaks' intensity
    assert np.abs(y_tail - y_all).max() < 2e-3 * y_all.max()


def test_far_field_agrees_with_direct_evaluation_of_the_same_windows():
    phase = synthetic_phase()
    pat = PowderPattern(_grid(15.0, 140.0, 0.01), phase,
                        _cu(lam2=1.5444, U=1.0, V=-1.0, W=2.0, X=6.0, Y=4.0, SL=0.02, HL=0.02),
                        n_background=2)
    v = pat.local_vector()
    pat.refresh_windows(v)
    y, _ = pat.evaluate(v, grad=False)
    grids = pat.windows.grids
    assert grids.base.max() >= 0                  # the far field is on coarse grids here
    base = grids.base.copy()
    grids.base[:] = -10 ** 6                      # every band on the data points instead
    yd, _ = pat.evaluate(v, grad=False)
    grids.base[:] = base
    assert np.abs(y - yd).max() < 5e-5 * y.max()


def test_jacobian_with_far_field_tails_matches_finite_differences():
    """Windows frozen for a fit make the model smooth: the analytic Jacobian (core, far-field
    bands, switch, taper, FCJ nodes) agrees with central differences."""
    phase = synthetic_phase()
    pat = PowderPattern(_grid(20.0, 90.0, 0.02), phase,
                        _cu(lam2=1.5444, U=1.0, V=-1.0, W=2.0, X=6.0, Y=4.0, SL=0.02, HL=0.02),
                        n_background=2, background_peaks=[(30.0, 50.0, 800.0, 20.0)])
    v = pat.local_vector()
    v[pat.layout.pattern][:3] = [1e3, 0.01, 30.0]          # scale, zero, shift
    pat.refresh_windows(v)
    assert pat.windows.grids.base.max() >= 0
    checked = fd_check(pat, v, pat.local_names(), 1e-4)
    assert {"TiO2.a", "TiO2.O.x", "pattern.SL", "pattern.X", "pattern.U", "pattern.TiO2.size",
            "pattern.bkpk.pos[0]", "pattern.bkpk.sigma2[0]", "pattern.bkpk.gamma[0]",
            "pattern.bkpk.area[0]"} <= set(checked)


# -- several phases ----------------------------------------------------------------------------
def _two_phase(fractions=(0.7, 0.3), tolerance=1e-3, **kw):
    ti, na = synthetic_phase(), _rocksalt()
    pat = PowderPattern(_grid(), [ti, na], _cu(U=2.0, V=-1.0, W=3.0, X=2.0, Y=1.0), n_background=2,
                        tail_tolerance=tolerance,
                        phase_values={"TiO2": {"fraction": fractions[0]},
                                      "NaCl": {"fraction": fractions[1]}},
                        **kw)
    return ti, na, pat


def test_two_phase_pattern_is_the_sum_of_its_phases():
    ti, na, pat = _two_phase()
    y2, _ = pat.calc()
    singles = []
    for ph, f in ((ti, 0.7), (na, 0.3)):
        one = PowderPattern(_grid(), ph, _cu(U=2.0, V=-1.0, W=3.0, X=2.0, Y=1.0), n_background=2,
                            phase_values={ph.name: {"fraction": f}})
        singles.append(one.calc()[0])
    np.testing.assert_allclose(y2, singles[0] + singles[1], rtol=1e-12, atol=1e-12)
    # intensity per phase scales as fraction / V²: doubling NaCl's cell volume quarters it
    lay = pat.layout
    v = pat.local_vector()
    v[lay.bkg] = 0.0
    v[lay.hap[0]][0] = 0.0
    y_na = pat.evaluate(v, grad=False)[0]
    v[lay.hap[1]][0] *= 2.0
    assert pat.evaluate(v, grad=False)[0] == pytest.approx(2.0 * y_na)


def test_two_phase_jacobian_matches_finite_differences():
    ti, na, pat = _two_phase(tolerance=0.0, background_peaks=[{"pos": 25.0, "area": 30.0,
                                                                 "sigma2": 400.0, "gamma": 5.0}])
    v = pat.local_vector()
    v[pat.layout.bkg] = [20.0, 3.0]
    v[pat.layout.pattern][0] = 1e4 / pat.evaluate(v, grad=False)[0].max()   # peaks ~1e4
    checked = fd_check(pat, v, pat.local_names(), 2e-5)
    assert {"TiO2.a", "NaCl.a", "NaCl.Na.uiso", "pattern.TiO2.fraction",
            "pattern.NaCl.fraction", "pattern.NaCl.size", "pattern.bkpk.area[0]"} <= set(checked)


def test_weight_fractions_from_z_m_v_and_their_errors():
    ti, na, pat = _two_phase(fractions=(0.6, 0.4))
    ref = JointRefinement([ti, na], [pat])
    out = weight_fractions(ref.group, pat)
    zm = {"TiO2": 2 * (47.867 + 2 * 15.9994), "NaCl": 4 * (22.98977 + 35.453)}
    vol = {"TiO2": 4.5937 ** 2 * 2.9587, "NaCl": 5.64 ** 3}
    rho = {k: zm[k] / vol[k] for k in zm}
    w_ti = 0.6 * rho["TiO2"] / (0.6 * rho["TiO2"] + 0.4 * rho["NaCl"])
    assert out["TiO2"]["weight"] == pytest.approx(w_ti, rel=1e-4)
    assert out["NaCl"]["volume"] == pytest.approx(0.4)
    assert np.isnan(out["TiO2"]["weight_stderr"])
    # error propagation: a covariance on the two fractions alone, against the analytic gradient
    g = ref.group
    i0, i1 = g.slot_index("pattern.TiO2.fraction"), g.slot_index("pattern.NaCl.fraction")
    cov = np.zeros((g.n_slots, g.n_slots))
    cov[i0, i0], cov[i1, i1], cov[i0, i1] = 1e-4, 4e-4, -1e-4
    cov[i1, i0] = cov[i0, i1]
    out = weight_fractions(g, pat, covariance=cov)
    a, b = rho["TiO2"], rho["NaCl"]
    den = (0.6 * a + 0.4 * b) ** 2
    grad = np.array([a * 0.4 * b / den, -0.6 * a * b / den])
    want = np.sqrt(grad @ cov[np.ix_([i0, i1], [i0, i1])] @ grad)
    assert out["TiO2"]["weight_stderr"] == pytest.approx(want, rel=1e-5)


def test_fraction_constraint_is_a_tie_in_the_core():
    ti, na, pat = _two_phase(fractions=(0.8, 0.5))
    constrain_fractions(pat, 1.0)
    v = pat.group.valuesdict()
    assert v["TiO2.fraction"] + v["NaCl.fraction"] == pytest.approx(1.0)
    assert "NaCl.fraction" in pat.group.slot_names and "NaCl.fraction" not in pat.group.free_names
    pat.group.free("TiO2.fraction")
    G = pat.group.tie_matrix().toarray()
    j = pat.group.free_names.index("TiO2.fraction")
    assert G[pat.group.slot_index("NaCl.fraction"), j] == -1.0
    with pytest.raises(ValidationError, match="total"):
        constrain_fractions(pat, -1.0)


def test_two_phase_refinement_recovers_known_fractions():
    """Poisson data from a 70:30 (volume) rutile + rock-salt mixture; fractions refined with
    their sum tied to 1 come back within 3 esd, and the weight fraction follows Z·M·V."""
    ti, na, pat = _two_phase(fractions=(0.7, 0.3))
    pat.group["scale"].value = 3e5
    pat.group["bkg"].value = [40.0, 5.0]
    y, _ = pat.calc()
    rng = np.random.default_rng(11)
    counts = rng.poisson(y).astype(float)
    data = make_pattern(pat.x, counts, np.maximum(counts, 1.0))
    ti2, na2 = synthetic_phase(), _rocksalt(5.645)
    fit = PowderPattern(data, [ti2, na2], _cu(U=2.0, V=-1.0, W=3.0, X=2.0, Y=1.0), n_background=2,
                        phase_values={"TiO2": {"fraction": 0.5}, "NaCl": {"fraction": 0.5}})
    ref = JointRefinement([ti2, na2], [fit])
    ref.constrain_fractions()
    ref.initialize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref.set_refined(structure=["cell"], patterns={"*": ["scale", "bkg", "fraction"]})
        ref.fit()
    P = ref.parameters()
    f = P["pattern.TiO2.fraction"]
    assert abs(f["value"] - 0.7) < 3 * f["stderr"] and f["stderr"] < 0.01
    assert abs(P["NaCl.a"]["value"] - 5.64) < 3 * P["NaCl.a"]["stderr"]
    wf = ref.phase_fractions()
    assert wf["TiO2"]["weight"] + wf["NaCl"]["weight"] == pytest.approx(1.0)
    assert wf["NaCl"]["volume_stderr"] == pytest.approx(f["stderr"], rel=1e-3)
    assert "phase fractions" in ref.report()


def test_a_phase_without_reflections_in_range_is_not_refined():
    """A phase whose reflections all lie outside the fit range is not determined by the
    pattern: its structure, its own terms and the fractions it would trade against stay
    fixed, with a FitWarning (not a run-away cell and a negative fraction)."""
    ti, small = synthetic_phase(), _rocksalt(3.0)     # (111) of the small cell at 52.8°
    pat = PowderPattern(_grid(15.0, 40.0), [ti, small], _cu(U=2.0, V=-1.0, W=3.0, X=2.0, Y=1.0),
                        n_background=2)
    counts = pat.reflections_in_range()
    assert counts["NaCl"] == 0 and counts["TiO2"] == 3          # (110), (101), (200)
    ref = JointRefinement([ti, small], [pat])
    ref.constrain_fractions()
    with pytest.warns(FitWarning, match="no reflection") as rec:
        ref.set_refined(structure=["cell"],
                        patterns={"*": ["scale", "fraction", "mustrain"]})
    assert len(rec) == 2
    free = ref.group.free_names
    assert "TiO2.a" in free and "pattern.TiO2.mustrain" in free
    assert not any(n.startswith("NaCl.") or ".NaCl." in n or n.endswith("fraction")
                   for n in free), free


# -- scattering tables ---------------------------------------------------------------------
def test_user_scattering_values_replace_gemmi_tables():
    ph = synthetic_phase()
    hkl, _ = ph.reflections(1.2)
    q = (hkl[:, 0] ** 2 + hkl[:, 1] ** 2) / 4.5937 ** 2 + hkl[:, 2] ** 2 / 2.9587 ** 2
    atoms = np.array([[*a.xyz, a.uiso, 1.0] for a in ph.atoms])
    # neutron: with b(Ti) = 0 only oxygen scatters: |F|² scales with b(O)²
    s1 = ph.scattering("neutron", 1.5, table={"Ti": {"b": 0.0}, "O": {"b": 1.0}})
    s2 = ph.scattering("neutron", 1.5, table={"Ti": {"b": 0.0}, "O": {"b": 3.0}})
    F1 = ph.structure_factor2(hkl, q, atoms, s1, grad=False)[0]
    F2 = ph.structure_factor2(hkl, q, atoms, s2, grad=False)[0]
    np.testing.assert_allclose(F2, 9.0 * F1, rtol=1e-12)
    # X-ray: f' enters as a constant added to f0; f0 itself can be replaced (here: constant 5)
    flat = {"Ti": {"f0": [0, 0, 0, 0, 1, 1, 1, 1, 5.0], "fp": 1.0, "fpp": 0.0},
            "O": {"f0": [0, 0, 0, 0, 1, 1, 1, 1, 0.0], "fp": 0.0, "fpp": 0.0}}
    sx = ph.scattering("xray", 1.54, table=flat)
    Fx = ph.structure_factor2(hkl, q, atoms, sx, grad=False)[0]
    sn = ph.scattering("neutron", 1.54, table={"Ti": {"b": 6.0}, "O": {"b": 0.0}})
    Fn = ph.structure_factor2(hkl, q, atoms, sn, grad=False)[0]
    np.testing.assert_allclose(Fx, Fn, rtol=1e-12)     # both: only Ti, with f = b = 6
    default = ph.scattering("xray", 1.5406)
    fp, fpp = gemmi.cromer_liberman(z=22, energy=gemmi.hc / 1.5406)
    assert default["fp"][0] == pytest.approx(fp) and default["fpp"][0] == pytest.approx(fpp)
    assert ph.scattering("xray", 1.5406, anomalous=False)["fp"][0] == 0.0


def test_scattering_table_errors_name_the_problem():
    ph = synthetic_phase()
    with pytest.raises(ValidationError, match=r"'b'\] are not valid for a xray pattern.*neutron"):
        ph.scattering("xray", 1.5, table={"O": {"b": 5.8}})
    with pytest.raises(ValidationError, match="not an element"):
        ph.scattering("neutron", 1.5, table={"Xx": {"b": 1.0}})
    with pytest.raises(ValidationError, match="9 finite numbers"):
        ph.scattering("xray", 1.5, table={"O": {"f0": [1, 2]}})
    with pytest.raises(ValidationError, match=r"elements \['Cu'\] are in no phase"):
        PowderPattern(_grid(), ph, _cu(), scattering={"Cu": {"fp": 1.0}})


def test_pattern_input_errors():
    ph = synthetic_phase()
    with pytest.raises(ValidationError, match="names must be unique"):
        PowderPattern(_grid(), [ph, synthetic_phase()], _cu())
    with pytest.raises(ValidationError, match="tail_tolerance"):
        PowderPattern(_grid(), ph, _cu(), tail_tolerance=0.7)
    with pytest.raises(ValidationError, match=r"background_peaks\[0\]"):
        PowderPattern(_grid(), ph, _cu(), background_peaks=[(5.0, 1.0, -3.0, 0.0)])
    with pytest.raises(ValidationError, match="clash with pattern parameters"):
        PowderPattern(_grid(),
                      Phase("U", (3, 3, 3, 90, 90, 90), "P m -3 m",
                                     [Atom("U", "U", (0, 0, 0))]),
                      _cu())
    with pytest.raises(ValidationError, match="phase_values: unknown phases"):
        PowderPattern(_grid(), ph, _cu(), phase_values={"NaCl": {"fraction": 1.0}})


def test_cif_setting_from_the_symmetry_loop_and_phase_name(tmp_path):
    """Fddd written with origin-choice-2 operators: Cu on 8a, Cr on 16d, O on 32h."""
    ops = [op.triplet() for op in gemmi.SpaceGroup("F d d d:2").operations()]
    cif = ["data_2p10h", "_pd_phase_name  CuCr2O4", "_cell_length_a 7.71",
           "_cell_length_b 8.54", "_cell_length_c 8.53", "_cell_angle_alpha 90",
           "_cell_angle_beta 90", "_cell_angle_gamma 90", "_symmetry_space_group_name_H-M Fddd",
           "loop_", "_space_group_symop_operation_xyz"]
    cif += [f"'{o}'" for o in ops]
    cif += ["loop_", "_atom_site_label", "_atom_site_type_symbol", "_atom_site_fract_x",
            "_atom_site_fract_y", "_atom_site_fract_z", "Cu Cu 0.125 0.125 0.125",
            "Cr Cr 0.5 0.5 0.5", "O O 0.2458 0.2683 0.2674"]
    path = tmp_path / "s.cif"
    path.write_text("\n".join(cif) + "\n")
    ph = Phase.from_cif(path)
    assert ph.name == "CuCr2O4" and ph.spacegroup.xhm() == "F d d d:2"
    assert ph.multiplicity.tolist() == [8, 16, 32]
    assert ph.cell_mass() == pytest.approx(8 * (63.546 + 2 * 51.9961 + 4 * 15.9994), rel=1e-6)
    assert Phase.from_cif(path, name="spinel").name == "spinel"
    with pytest.raises(DataFormatError, match="s2.cif"):
        (tmp_path / "s2.cif").write_text("data_x\n_cell_length_a 3\n")
        Phase.from_cif(tmp_path / "s2.cif")


def test_uniaxial_strain_follows_the_angle_to_the_axis():
    """μ(h) = μe μa / sqrt(μe² cos²φ + μa² sin²φ): μa along the axis, μe across it."""
    na = _rocksalt()
    pat = PowderPattern(_grid(), na, _cu(), strain_axis={"NaCl": (0, 0, 1)},
                        phase_values={"NaCl": {"mustrain": 300.0, "mustrain_axial": 900.0}})
    hkl = np.array([[0, 0, 2], [2, 0, 0], [1, 1, 1], [2, 2, 0]])
    Gs = np.eye(3) / 5.64 ** 2
    from sciTie.diffraction._cell import metric_derivatives, metric_tensor
    cell = np.array([5.64, 5.64, 5.64, 90, 90, 90])
    dGs = -np.einsum("ij,cjk,kl->cil", Gs, metric_derivatives(cell), Gs)
    assert np.allclose(np.linalg.inv(metric_tensor(cell)), Gs)
    mu, *_ = strain(pat, 0, hkl, Gs, dGs, pat.local_vector()[pat.layout.hap[0]])
    c2 = np.array([1.0, 0.0, 1 / 3, 0.0])
    want = 300 * 900 / np.sqrt(300 ** 2 * c2 + 900 ** 2 * (1 - c2))
    np.testing.assert_allclose(mu, want, rtol=1e-12)
    assert mu[0] == pytest.approx(900.0) and mu[1] == pytest.approx(300.0)
    with pytest.raises(ValidationError, match="strain_axis"):
        PowderPattern(_grid(), na, _cu(), strain_axis={"NaCl": (0, 0, 0)})


def test_suspicious_fits_are_reported():
    """A missing phase leaves wRp far above counting statistics; a fraction driven to its
    bound is named; a run cut short is a ConvergenceWarning."""
    from sciTie.errors import ConvergenceWarning, FitWarning

    ti, na, pat = _two_phase(fractions=(0.5, 0.5))
    pat.group["scale"].value = 3e5
    y, _ = pat.calc()
    data = make_pattern(pat.x, np.random.default_rng(2).poisson(y).astype(float),
                        np.maximum(y, 1.0))
    only = synthetic_phase()
    fit = PowderPattern(data, only, _cu(U=2.0, V=-1.0, W=3.0, X=2.0, Y=1.0), n_background=2)
    ref = JointRefinement(only, [fit])
    ref.initialize()
    ref.set_refined(patterns={"*": ["scale", "bkg"]})
    with pytest.warns(FitWarning, match="far above"):
        ref.fit()
    # pure rutile data, but the rutile fraction may not exceed 0.95: it ends on that bound
    ti2, na2 = synthetic_phase(), _rocksalt()
    pure = PowderPattern(_rutile_only_data(), [ti2, na2], _cu(U=2.0, V=-1.0, W=3.0, X=2.0, Y=1.0),
                         n_background=2,
                         phase_values={"TiO2": {"fraction": 0.9}, "NaCl": {"fraction": 0.1}})
    pure.group["TiO2.fraction"].max = 0.99
    ref2 = JointRefinement([ti2, na2], [pure])
    ref2.constrain_fractions()
    ref2.initialize()
    ref2.set_refined(patterns={"*": ["scale", "bkg", "fraction"]})
    with pytest.warns(FitWarning, match="at their bounds: pattern.TiO2.fraction"):
        ref2.fit()
    pure.group["TiO2.fraction"].value = 0.5
    pure.group["scale"].value = 2 * pure.group["scale"].value
    with pytest.warns(ConvergenceWarning, match="stopped before converging"):
        ref2.set_params(max_nfev=2).fit()


def _rutile_only_data():
    pat = PowderPattern(_grid(), synthetic_phase(), _cu(U=2.0, V=-1.0, W=3.0, X=2.0, Y=1.0),
                        n_background=2)
    pat.group["scale"].value = 3e2
    pat.group["bkg"].value = [40.0, 5.0]
    y, _ = pat.calc()
    counts = np.random.default_rng(8).poisson(y).astype(float)
    return make_pattern(pat.x, counts, np.maximum(counts, 1.0))
