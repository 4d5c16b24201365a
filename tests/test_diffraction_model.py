"""Structure factors, symmetry ties, peak shapes and exact derivatives of sciTie.diffraction."""
import itertools

import gemmi
import numpy as np
import pytest
from diffraction_checks import fd_check

from sciTie.errors import ValidationError
from sciTie.diffraction import (PHASE_PARAMS, ConstantWavelength, JointRefinement, Phase,
                                PowderPattern, fcj_nodes, make_pattern, pseudo_voigt, tch)
from sciTie.diffraction.data import synthetic_phase


def _pattern(radiation="xray", geometry="bragg-brentano", lo=20.0, hi=75.0, tolerance=0.0):
    tth = np.arange(lo, hi, 0.05)
    pat = make_pattern(tth, np.ones_like(tth), np.ones_like(tth))
    prof = {"U": 3.0, "V": -2.0, "W": 4.0, "P": 0.5, "X": 2.0, "Y": 1.5, "SL": 0.02,
            "HL": 0.015, "zero": 0.01}
    if radiation == "neutron":
        prof.update(SL=0.0, HL=0.0)
    inst = ConstantWavelength(radiation=radiation, geometry=geometry,
                              lam1=1.5406 if radiation == "xray" else 1.6,
                              lam2=1.5444 if radiation == "xray" else 0.0, polarization=0.7,
                              **prof)
    return PowderPattern(pat, synthetic_phase(), inst, n_background=3, tail_tolerance=tolerance,
                         strain_axis={"TiO2": (1, 0, 1)})    # uniaxial strain: every slot acts


def _local_vector(pat):
    """The pattern's local vector moved off every special value, so every slot matters."""
    v = pat.local_vector()
    lay = pat.layout
    p = v[lay.pattern]
    for n, val in {"shift": 30.0, "disp_x": 20.0, "disp_y": -15.0,
                   "scale": 0.7 * 62.43 ** 2}.items():
        p[pat.instrument_names.index(n)] = val
    hap = v[lay.hap[0]]
    for n, val in {"fraction": 0.9, "size": 2.0, "mustrain": 400.0, "mustrain_axial": 900.0,
                   "D11": 2e-5, "D22": 1e-5,
                   "D33": -2e-5, "D12": 1e-5, "D13": 5e-6, "D23": -5e-6}.items():
        hap[PHASE_PARAMS.index(n)] = val
    atoms = v[lay.atoms[0]].reshape(-1, 5)
    atoms[0, :3] = [0.01, 0.02, -0.015]   # move both atoms off their special positions:
    atoms[1, :3] = [0.31, 0.29, 0.02]     # every slot then changes the pattern
    v[lay.cell[0]][3:] = [90.5, 89.5, 90.3]
    v[lay.bkg] = [100.0, 5.0, -3.0]
    return v


@pytest.mark.parametrize("radiation, geometry", [("xray", "bragg-brentano"),
                                                  ("neutron", "debye-scherrer")])
def test_jacobian_matches_finite_differences_for_every_slot(radiation, geometry):
    pat = _pattern(radiation, geometry)
    v = _local_vector(pat)
    names = pat.local_names()
    checked = {n.split(".")[-1] for n in fd_check(pat, v, names, 2e-5)}
    # every slot has an effect, except those a pattern of this kind does not use
    unused = {"disp_x", "disp_y"} if geometry == "bragg-brentano" else {"shift"}
    if radiation == "neutron":     # a single-wavelength neutron pattern
        unused |= {"SL", "HL", "lam2", "ratio", "polarization"}
    leaves = [n.split(".")[-1] for n in names]
    assert set(leaves) - checked == unused
    J = pat.evaluate(v)[1]
    assert not np.any(J[:, [k for k, n in enumerate(leaves) if n in unused]])
    assert {"a", "alpha", "x", "y", "z", "uiso", "occ", "scale", "U", "X", "size", "mustrain",
            "D11", "D23", "zero", "lam1", "fraction", "mustrain_axial"} <= checked
    if radiation == "xray":
        assert {"SL", "HL", "shift", "ratio", "polarization", "lam2"} <= checked


def test_joint_jacobian_through_tie_matrix():
    """J_free = J_slots G: FD on the free vector of a joint group (O.x = O.y tie, b = a)."""
    from sciTie.diffraction.data import load_synthetic, synthetic_refinement

    ref = synthetic_refinement(load_synthetic(3))
    for p in ref.patterns:
        p.tail_tolerance = 0.0           # whole-pattern windows: no window edges in the FD
    ref.set_refined(structure=["cell", "xyz", "uiso"],
                    patterns={"*": ["scale", "bkg", "zero", "cell_correction", "profile"]})
    ref.initialize()
    g = ref.group
    assert "TiO2.O.x" in g.free_names and "TiO2.O.y" not in g.free_names
    terms = ref._terms()
    x0 = g.pack()
    for t in terms:
        J_t = t.jacobian(g.valuesdict(x0))          # columns: the slots the term reads
        J_slots = np.zeros((J_t.shape[0], g.n_slots))
        J_slots[:, t.slots] = J_t
        J = g.reduce_jacobian(J_slots, x0)
        J = J.toarray() if hasattr(J, "toarray") else np.asarray(J)
        for j in range(x0.size):
            h = 1e-9 if ".D" in g.free_names[j] else 1e-6 * max(1.0, abs(x0[j]))
            xp, xm = x0.copy(), x0.copy()
            xp[j] += h
            xm[j] -= h
            fd = (t.residual(g.valuesdict(xp)) - t.residual(g.valuesdict(xm))) / (2 * h)
            scale = max(np.abs(fd).max(), np.abs(J[:, j]).max())
            if scale == 0:
                continue
            assert np.abs(fd - J[:, j]).max() / scale < 2e-5, (t.name, g.free_names[j])


CIF = """data_t
_cell_length_a 8.48
_cell_length_b 5.398
_cell_length_c 6.958
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P n m a'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_U_iso_or_equiv
Pb Pb 0.1882 0.25 0.167 0.012
S S 0.063 0.25 0.686 0.008
O3 O 0.085 0.026 0.806 0.015
"""


def test_structure_factors_agree_with_gemmi(tmp_path):
    path = tmp_path / "t.cif"
    path.write_text(CIF)
    st = gemmi.read_small_structure(str(path))
    st.change_occupancies_to_crystallographic()   # gemmi sums all images: occ / site order
    ph = Phase.from_cif(path)
    hkl, mult = ph.reflections(0.9)
    q = np.einsum("ni,ij,nj->n", hkl, np.diag(1 / np.array([8.48, 5.398, 6.958]) ** 2), hkl)
    atoms = np.array([[*a.xyz, a.uiso, 1.0] for a in ph.atoms])
    F2, _, _ = ph.structure_factor2(hkl, q, atoms, ph.scattering("xray", 1.54, anomalous=False),
                                    grad=False)
    calc = gemmi.StructureFactorCalculatorX(st.cell)
    ref = np.array([abs(calc.calculate_sf_from_small_structure(st, [int(v) for v in h])) ** 2
                    for h in hkl])
    np.testing.assert_allclose(F2, ref, rtol=1e-5, atol=1e-6 * ref.max())


def test_reflections_multiplicity_and_absences_by_brute_force():
    ph = synthetic_phase()
    dmin = 1.0
    hkl, mult = ph.reflections(dmin)
    ops = ph.spacegroup.operations()
    a, c = 4.5937, 2.9587
    count = 0
    r = 6
    for h, k, l in itertools.product(range(-r, r + 1), repeat=3):
        if (h, k, l) == (0, 0, 0):
            continue
        if 1 / np.sqrt((h * h + k * k) / a ** 2 + l * l / c ** 2) < dmin:
            continue
        if ops.is_systematically_absent([h, k, l]):
            continue
        count += 1
    assert mult.sum() == count
    assert mult.max() == 16                                  # 4/mmm general position
    assert mult[(hkl == [2, 1, 1]).all(1)][0] == 16
    assert mult[(hkl == [1, 1, 0]).all(1)][0] == 4


def test_symmetry_ties():
    ph = synthetic_phase()
    g = ph.group
    assert g.free_names == ["a", "c", "Ti.uiso", "O.x", "O.uiso"]
    g["O.x"].value = 0.31
    assert g.valuesdict()["O.y"] == pytest.approx(0.31)    # (x, x, 0): y tied to x
    assert g.valuesdict()["b"] == g.valuesdict()["a"]
    assert ph.multiplicity.tolist() == [2, 4]


def test_profile_limits_and_area():
    fw, eta, *_ = tch(np.array([25.0]), np.array([0.0]))
    assert fw[0] == pytest.approx(np.sqrt(8 * np.log(2) * 25) / 100) and eta[0] == 0
    fw, eta, *_ = tch(np.array([0.0]), np.array([7.0]))
    assert fw[0] == pytest.approx(0.07, rel=1e-4) and eta[0] == pytest.approx(1.0, abs=1e-4)
    x = np.linspace(-30, 30, 600001)
    v, *_ = pseudo_voigt(x, np.full(x.shape, 0.1), np.full(x.shape, 0.4), grad=False)
    # closed form over [-30, 30]: the Gaussian part is complete, the Lorentzian part (fraction
    # eta = 0.4, FWHM 0.1) integrates to (2/pi) atan(30 / (0.1/2))
    expected = 0.6 + 0.4 * (2 / np.pi) * np.arctan(30 / 0.05)
    assert np.trapezoid(v, x) == pytest.approx(expected, rel=1e-9)


def test_fcj_weights_normalised_and_shift_direction():
    pos = np.array([15.0, 40.0, 140.0])
    sh, w, dsh, dw = fcj_nodes(pos, 0.02, 0.02, 8)
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert np.all(sh[:2] < 0) and np.all(sh[2] > 0)     # low angle: tail below the peak
    assert abs(sh[0]).max() > abs(sh[1]).max()          # asymmetry grows towards 0 degrees
    # the returned (complex-step) derivatives against central differences; the node formula
    # cancels digits near the peak, so the position step is large (the nodes vary slowly in it)
    for k, (dp, ds, dh) in enumerate([(1e-2, 0, 0), (0, 1e-6, 0), (0, 0, 1e-6)]):
        h = dp + ds + dh
        p1 = fcj_nodes(pos + dp, 0.02 + ds, 0.02 + dh, 8)
        p0 = fcj_nodes(pos - dp, 0.02 - ds, 0.02 - dh, 8)
        for got, want in ((dsh[k], (p1[0] - p0[0]) / (2 * h)), (dw[k], (p1[1] - p0[1]) / (2 * h))):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())


def test_lattice_ties_by_crystal_system():
    from sciTie.diffraction import Atom
    at = [Atom("Na", "Na", (0.1, 0.2, 0.3))]
    assert Phase("c", (5, 5, 5, 90, 90, 90), "P m -3 m", at).group.free_names[:1] == ["a"]
    hexa = Phase("h", (3, 3, 5, 90, 90, 120), "P 63/m m c", at).group
    assert [n for n in hexa.free_names if "." not in n] == ["a", "c"]
    mono = Phase("m", (5, 6, 7, 90, 100, 90), "P 1 21/c 1", at).group
    assert [n for n in mono.free_names if "." not in n] == ["a", "b", "c", "beta"]
    tri = Phase("t", (5, 6, 7, 80, 100, 95), "P -1", at).group
    assert [n for n in tri.free_names if "." not in n] == list("abc") + ["alpha", "beta",
                                                                          "gamma"]


def test_refinement_rejects_bad_input():
    pat = _pattern()
    with pytest.raises(ValidationError, match="phases must be a Phase"):
        JointRefinement(3, [pat]).fit()
    with pytest.raises(ValueError, match="another Phase"):
        JointRefinement(synthetic_phase(), [pat]).fit()
    with pytest.raises(ValueError, match="unique"):
        JointRefinement(pat.phase, [pat, pat]).fit()


def test_late_profile_parameters_are_freed_only_with_late_profile():
    """refine_profile_late: not freed by "profile", freed by "late_profile" (last STAGES item)."""
    from sciTie.diffraction import STAGES

    phase = synthetic_phase()
    tth = np.arange(20.0, 75.0, 0.05)
    cu = ConstantWavelength(radiation="xray", lam1=1.5405)
    pat = PowderPattern(make_pattern(tth, np.ones_like(tth), np.ones_like(tth)), phase, cu,
                        name="xray", refine_profile=("X", "Y"), refine_profile_late=("U", "W"))
    ref = JointRefinement(phase, [pat])
    ref.set_refined(patterns={"*": ["profile"]})
    assert set(pat.group.free_names) == {"X", "Y"}
    ref.set_refined(patterns={"*": ["profile", "late_profile"]})
    assert set(pat.group.free_names) == {"X", "Y", "U", "W"}
    assert "late_profile" in STAGES[-1][1]["pattern"]
    with pytest.raises(ValueError, match="refine_profile_late"):
        PowderPattern(make_pattern(tth, np.ones_like(tth), np.ones_like(tth)), phase, cu,
                      refine_profile_late=("UU",))


def test_fit_range_and_excluded_regions(tmp_path):
    from sciTie.diffraction import write_xye
    from sciTie.diffraction.data import load_synthetic, pattern_from_dataset

    ds = load_synthetic(0)["xray"]
    pat = pattern_from_dataset(ds, synthetic_phase(), name="xray", fit_range=(25, 100),
                               exclude=[(40, 45), (60, 61)])
    assert pat.x.min() >= 25 and pat.x.max() <= 100
    assert not np.any((pat.x >= 40) & (pat.x <= 45)) and not np.any((pat.x >= 60) & (pat.x <= 61))
    assert pat.obs.size == pat.x.size == pat.sigma.size
    # xye files go through the same constructor
    path = write_xye(ds["intensity"], tmp_path / "x.xye")
    pat2 = PowderPattern.from_files(path, pat.instrument, synthetic_phase(), name="x",
                                    fit_range=(25, 100))
    np.testing.assert_allclose(pat2.obs, ds["intensity"].sel(two_theta=slice(25, 100)).values)


def _fcj_brute_force(pos, S, H, x, fwhm, eta, n=100000):
    """FCJ profile by a plain midpoint sum over the axial angle (no substitution)."""
    back = pos > 90
    psi = np.radians(180 - pos if back else pos)
    c = np.cos(psi)
    pmin = np.arccos(c * np.sqrt(1 + (H + S) ** 2))
    pinf = np.arccos(c * np.sqrt(1 + (H - S) ** 2))
    edges = np.linspace(pmin, psi, n + 1)
    phi = 0.5 * (edges[1:] + edges[:-1])
    h = np.sqrt(np.cos(phi) ** 2 / c ** 2 - 1)
    W = np.where(phi < pinf, H + S - h, 2 * min(H, S))
    w = W / (h * np.cos(phi))
    w /= w.sum()
    ang = np.degrees(np.pi - phi) if back else np.degrees(phi)
    prof = np.zeros_like(x)
    for chunk in np.array_split(np.arange(n), 50):
        v, *_ = pseudo_voigt(x[:, None] - ang[chunk][None, :], np.full((1, 1), fwhm),
                             np.full((1, 1), eta), grad=False)
        prof += (v * w[chunk]).sum(1)
    return prof


@pytest.mark.parametrize("pos, S, H", [(20.0, 0.02, 0.02), (20.0, 0.02, 0.01),
                                        (150.0, 0.03, 0.01)])
def test_fcj_quadrature_matches_brute_force_convolution(pos, S, H):
    x = np.linspace(pos - 0.6, pos + 0.6, 121)
    ref = _fcj_brute_force(pos, S, H, x, 0.06, 0.3)
    sh, w, _, _ = fcj_nodes(np.array([pos]), S, H, 8)
    v, *_ = pseudo_voigt(x[:, None] - (pos + sh[0])[None, :], np.full((1, 8), 0.06),
                         np.full((1, 8), 0.3), grad=False)
    got = (v * w[0]).sum(1)
    assert np.abs(got - ref).max() < 5e-3 * ref.max()


def test_integrated_intensities_follow_the_intensity_formula():
    """Area under the calculated neutron pattern = sum of scale * m * L(theta) * |F|^2."""
    tth = np.arange(10.0, 175.0, 0.005)
    inst = ConstantWavelength(radiation="neutron", lam1=1.6, U=0.0, V=0.0, W=30.0)
    pat = PowderPattern(make_pattern(tth, np.ones_like(tth), np.ones_like(tth)),
                        synthetic_phase(), inst, n_background=0, tail_tolerance=0.0)
    V = 4.5937 ** 2 * 2.9587
    pat.group["scale"].value = 2.5 * V ** 2      # intensities scale as scale * fraction / V²
    y, _ = pat.calc()
    ph = pat.phase
    hkl, mult = ph.reflections(1.6 / (2 * np.sin(np.radians(85.0))))
    a, c = 4.5937, 2.9587
    q = (hkl[:, 0] ** 2 + hkl[:, 1] ** 2) / a ** 2 + hkl[:, 2] ** 2 / c ** 2
    th = np.arcsin(1.6 * np.sqrt(q) / 2)
    keep = (np.degrees(2 * th) > 11) & (np.degrees(2 * th) < 170)
    atoms = np.array([[*at.xyz, at.uiso, 1.0] for at in ph.atoms])
    F2, _, _ = ph.structure_factor2(hkl, q, atoms, ph.scattering("neutron", 1.6), grad=False)
    expected = np.sum((2.5 * mult * F2 / (np.sin(th) ** 2 * np.cos(th)))[keep])
    assert np.trapezoid(y, tth) == pytest.approx(expected, rel=2e-3)


def test_neutron_structure_factors_equal_a_hand_sum_with_published_lengths(tmp_path):
    """|F|² for neutrons against a brute-force sum over the symmetry images of each site,
    with coherent scattering lengths from the Sears (1992) table: Pb 9.405, S 2.847,
    O 5.803 fm."""
    path = tmp_path / "t.cif"
    path.write_text(CIF)
    ph = Phase.from_cif(path)
    hkl, _ = ph.reflections(1.0)
    q = np.einsum("ni,ij,nj->n", hkl, np.diag(1 / np.array([8.48, 5.398, 6.958]) ** 2), hkl)
    atoms = np.array([[*a.xyz, a.uiso, 1.0] for a in ph.atoms])
    F2, _, _ = ph.structure_factor2(hkl, q, atoms, ph.scattering("neutron", 1.6), grad=False)
    lengths = {"Pb": 9.405, "S": 2.847, "O": 5.803}
    ops = gemmi.SpaceGroup("P n m a").operations()
    F = np.zeros(len(hkl), dtype=complex)
    for a in ph.atoms:
        images = {tuple(np.round(np.mod(op.apply_to_xyz(list(a.xyz)), 1.0), 8)) for op in ops}
        for r in images:
            F += (lengths[a.element] * np.exp(-2 * np.pi**2 * a.uiso * q)
                  * np.exp(2j * np.pi * (hkl @ np.array(r))))
    np.testing.assert_allclose(F2, np.abs(F) ** 2, rtol=2e-3, atol=1e-6 * F2.max())
