"""Preferred orientation, anisotropic displacements and absorption, each against an
independent computation: hand-computed ratios, gemmi's structure factors, the published
site-symmetry tables, the characters of the Laue groups, a direct numerical integration of
a cylinder's transmission, finite differences for every new derivative, and refinements
that recover the values synthetic data were made with."""
import math
import warnings

import gemmi
import numpy as np
import pytest

from sciTie.diffraction import (Atom, ConstantWavelength, JointRefinement, Phase,
                                PowderPattern, TimeOfFlight, make_pattern)
from sciTie.diffraction._absorption import cylinder_transmission, suortti_roughness
from sciTie.diffraction._adp import B_PER_U, iso_uij, ueq, uij_tensor
from sciTie.diffraction._cell import metric_derivatives, metric_tensor
from sciTie.diffraction._texture import laue_rotations, symmetric_harmonics, texture_index
from sciTie.diffraction.data import synthetic_phase
from sciTie.errors import ValidationError


def _cw(radiation="xray", geometry="bragg-brentano", **kw):
    lam = 1.5406 if radiation == "xray" else 1.6
    return ConstantWavelength(radiation=radiation, lam1=lam, geometry=geometry,
                              **{"U": 3.0, "V": -2.0, "W": 4.0, "X": 2.0, **kw})


def _blank(lo=15.0, hi=110.0, step=0.05):
    x = np.arange(lo, hi, step)
    return make_pattern(x, np.ones_like(x), np.ones_like(x))


def _fd_columns(pat, v, wanted, tol=2e-5):
    """Every local column whose name ends with one of ``wanted`` against central
    differences; returns the names checked."""
    _, J = pat.evaluate(v)
    checked = []
    for j, name in enumerate(pat.local_names()):
        if not name.split(".")[-1] in wanted:
            continue
        h = 1e-6 * max(1.0, abs(v[j]))
        vp, vm = v.copy(), v.copy()
        vp[j] += h
        vm[j] -= h
        fd = (pat.evaluate(vp, grad=False)[0] - pat.evaluate(vm, grad=False)[0]) / (2 * h)
        scale = max(np.abs(fd).max(), np.abs(J[:, j]).max())
        assert scale > 0, f"{name}: no effect on the pattern"
        assert np.abs(fd - J[:, j]).max() / scale < tol, name
        checked.append(name.split(".")[-1])
    return checked


def _monoclinic(uij=(0.010, 0.014, 0.018, 0.002, 0.003, -0.001)):
    return Phase("mono", (5.1, 6.2, 7.3, 90, 101.0, 90), "P 1 21/c 1",
                 [Atom("Pb", "Pb", (0.11, 0.23, 0.31), uij=uij),
                  Atom("O", "O", (0.30, 0.10, 0.20), uiso=0.02)])


def _structure_factor_inputs(ph):
    hkl, _ = ph.reflections(1.0)
    cell = ph.cell_values()
    Gs = np.linalg.inv(metric_tensor(cell))
    q = np.einsum("ni,ij,nj->n", hkl, Gs, hkl)
    dGs = -np.einsum("ij,cjk,kl->cil", Gs, metric_derivatives(cell), Gs)
    atoms = np.array([[*a.xyz, a.uiso, a.occ] for a in ph.atoms])
    return hkl, q, cell, dGs, atoms


# -- March-Dollase ------------------------------------------------------------------------------
def test_march_dollase_parallel_and_perpendicular_reflections_by_hand():
    """Axis [001] of rutile: (00l) along it get r⁻³, (hk0) perpendicular r^(3/2); a general
    reflection the mean of the formula over its equivalents, enumerated by hand."""
    r = 0.7
    pat = PowderPattern(_blank(), synthetic_phase(), _cw(), n_background=1,
                        preferred_orientation={"TiO2": {"model": "march-dollase",
                                                        "axis": [0, 0, 1], "ratio": r}})
    _, _, info = pat.evaluate(pat.local_vector(), grad=False, peaks=True)
    ph = pat.phases[0]
    hkl = info["phases"]["TiO2"]["hkl"]
    P, _, _ = pat.texture[0].factor(pat._refl[0]["po"], hkl, ph.cell_values(),
                                    np.linalg.inv(metric_tensor(ph.cell_values())), None,
                                    np.array([r]), False)
    along = (hkl[:, 0] == 0) & (hkl[:, 1] == 0)
    across = hkl[:, 2] == 0
    assert along.any() and across.any()
    np.testing.assert_allclose(P[along], r ** -3, rtol=1e-12)
    np.testing.assert_allclose(P[across], r ** 1.5, rtol=1e-12)
    a, c = ph.cell_values()[0], ph.cell_values()[2]
    for i in np.flatnonzero(~along & ~across)[:5]:
        h, k, l = hkl[i]
        # 4/mmm: (±h, ±k, ±l) and (±k, ±h, ±l); cos²α = (l/c)² / |h*|²
        eq = {(s1 * x, s2 * y, s3 * l) for x, y in ((h, k), (k, h))
              for s1 in (1, -1) for s2 in (1, -1) for s3 in (1, -1)}
        vals = []
        for e in eq:
            c2 = (e[2] / c) ** 2 / ((e[0] ** 2 + e[1] ** 2) / a ** 2 + (e[2] / c) ** 2)
            vals.append((r * r * c2 + (1 - c2) / r) ** -1.5)
        assert P[i] == pytest.approx(np.mean(vals), rel=1e-12)


def test_march_dollase_function_integrates_to_one():
    """The March-Dollase distribution keeps the total intensity: its mean over the sphere
    is 1 for any r (Gauss-Legendre in cos α)."""
    t, w = np.polynomial.legendre.leggauss(200)
    for r in (0.4, 0.8, 1.3, 2.5):
        assert 0.5 * np.sum(w * (r * r * t * t + (1 - t * t) / r) ** -1.5) == \
            pytest.approx(1.0, rel=1e-10)


# -- spherical harmonics --------------------------------------------------------------------------
_LAUE = {"-1": "P -1", "2/m": "P 1 2/m 1", "mmm": "P m m m", "4/m": "P 4/m",
         "4/mmm": "P 4/m m m", "-3": "R -3:H", "-3m": "R -3 m:H", "6/m": "P 6/m",
         "6/mmm": "P 6/m m m", "m-3": "P m -3", "m-3m": "P m -3 m"}


def _cell_for(sg):
    system = sg.crystal_system_str()
    return {"triclinic": (5, 6, 7, 80, 95, 100), "monoclinic": (5, 6, 7, 90, 100, 90),
            "orthorhombic": (5, 6, 7, 90, 90, 90), "tetragonal": (5, 5, 7, 90, 90, 90),
            "trigonal": (5, 5, 7, 90, 90, 120), "hexagonal": (5, 5, 7, 90, 90, 120),
            "cubic": (5, 5, 5, 90, 90, 90)}[system]


def _molien(S, l):
    """Number of degree-l harmonics invariant under the Cartesian group S, from the
    characters χ_l(ω) = sin((l+½)ω)/sin(ω/2) of its rotations (-R acts as (-1)^l R)."""
    total = 0.0
    for g in S:
        det = np.linalg.det(g)
        R = g * det                                     # the proper rotation
        om = math.acos(np.clip((np.trace(R) - 1) / 2, -1, 1))
        chi = 2 * l + 1 if om < 1e-9 else math.sin((l + 0.5) * om) / math.sin(om / 2)
        total += chi * (det ** l)
    return round(total / len(S))


@pytest.mark.parametrize("laue", sorted(_LAUE))
def test_symmetric_harmonics_count_equals_molien_and_are_orthonormal_invariants(laue):
    sg = gemmi.SpaceGroup(_LAUE[laue])
    rot = np.array([np.array(op.rot) / op.DEN for op in sg.operations()])
    S = laue_rotations(rot, _cell_for(sg))
    rng = np.random.default_rng(1)
    u = rng.normal(size=(50, 3))
    t, w = np.polynomial.legendre.leggauss(30)       # an independent rule (degree 59)
    phi = 2 * np.pi * np.arange(60) / 60
    st = np.sqrt(1 - t * t)
    pts = np.stack([np.outer(st, np.cos(phi)), np.outer(st, np.sin(phi)),
                    np.outer(t, np.ones(60))], -1).reshape(-1, 3)
    wq = np.outer(w, np.full(60, 2 * np.pi / 60)).ravel()
    from sciTie.diffraction._texture import _eval_monomials, _monomials
    for l in (2, 4, 6, 8, 10, 12):
        C = symmetric_harmonics(S, l)
        assert len(C) == _molien(S, l), (laue, l)
        if not len(C):
            continue
        K = _eval_monomials(pts, _monomials(l)) @ C.T
        np.testing.assert_allclose((K * wq[:, None]).T @ K, np.eye(len(C)), atol=1e-9)
        Ku = _eval_monomials(u / np.linalg.norm(u, axis=1)[:, None], _monomials(l)) @ C.T
        for g in S:
            ug = u @ g.T
            Kg = _eval_monomials(ug / np.linalg.norm(ug, axis=1)[:, None], _monomials(l)) @ C.T
            np.testing.assert_allclose(Kg, Ku, atol=1e-9)


def test_cubic_harmonic_counts_follow_bunges_table_and_the_100_111_ratio():
    """m-3m: one invariant of each order 4, 6, 8, 10 and two of order 12 (Bunge 1982,
    table 14.1); the order-4 one is ∝ x⁴ + y⁴ + z⁴ - 3/5, so (K(100) - 0)/K(111) =
    (1 - 3/5)/(1/3 - 3/5) = -1.5."""
    nacl = Phase("NaCl", (5.64,) * 3 + (90,) * 3, "F m -3 m",
                 [Atom("Na", "Na", (0, 0, 0)), Atom("Cl", "Cl", (0.5, 0.5, 0.5))])
    pat = PowderPattern(_blank(), nacl, _cw(), n_background=1, preferred_orientation={
        "NaCl": {"model": "spherical-harmonics", "order": 12}})
    assert pat.texture[0].names == ("sh4_1", "sh6_1", "sh8_1", "sh10_1", "sh12_1", "sh12_2")
    K, _ = pat.texture[0].harmonics(np.array([[1.0, 0, 0], [1, 1, 1]]), False)
    assert K[0, 0] / K[1, 0] == pytest.approx(-1.5, rel=1e-12)
    assert texture_index({"sh4_1": 0.3, "sh6_1": -0.2}) == pytest.approx(1 + 0.09 / 9
                                                                          + 0.04 / 13)


def test_spherical_harmonics_are_one_with_zero_coefficients_and_linear_in_them():
    ph = synthetic_phase()
    kw = {"model": "spherical-harmonics", "order": 4}
    pat = PowderPattern(_blank(), ph, _cw(), n_background=1,
                        preferred_orientation={"TiO2": kw})
    plain = PowderPattern(_blank(), synthetic_phase(), _cw(), n_background=1)
    v = pat.local_vector()
    np.testing.assert_allclose(pat.evaluate(v, grad=False)[0],
                               plain.evaluate(plain.local_vector(), grad=False)[0], rtol=1e-12)
    # tetragonal 4/mmm, Bragg-Brentano (ψ = 0): P = 1 + Σ C √(4π/(2l+1)) K(h)
    assert pat.texture[0].names == ("sh2_1", "sh4_1", "sh4_2")
    assert pat.texture[0].sample[2] == pytest.approx(math.sqrt(4 * math.pi / 5))
    cap = PowderPattern(_blank(), synthetic_phase(), _cw(geometry="debye-scherrer"),
                        n_background=1, preferred_orientation={"TiO2": kw})
    assert cap.texture[0].sample[2] == pytest.approx(-0.5 * math.sqrt(4 * math.pi / 5))


# -- anisotropic displacement parameters ----------------------------------------------------------
# (space group, position, number of free U^ij): Peterse & Palm (1966); International Tables
# Vol. D, table 1.2.2.1 (the site's point group fixes the count)
_WYCKOFF = [
    ("P 1", (0.1, 0.2, 0.3), 6),                  # 1a, general
    ("P 1 21/c 1", (0.1, 0.2, 0.3), 6),           # 4e, general
    ("C 1 2/m 1", (0.1, 0.0, 0.3), 4),            # 4i, m: U12 = U23 = 0
    ("C 1 2/m 1", (0.0, 0.3, 0.0), 4),            # 4g, 2: U12 = U23 = 0
    ("P n m a", (0.1, 0.25, 0.3), 4),             # 4c, .m.
    ("P m m m", (0.5, 0.5, 0.5), 3),              # 1h, mmm
    ("P 42/m n m", (0.0, 0.0, 0.0), 3),           # rutile 2a, m.mm: U11 = U22, U33, U12
    ("P 42/m n m", (0.3, 0.3, 0.0), 3),           # rutile 4f, m.2m
    ("P 4/m m m", (0.0, 0.0, 0.0), 2),            # 1a, 4/mmm: U11 = U22, U33
    ("P 63/m m c", (0.0, 0.0, 0.0), 2),           # 2a, -3m.: U11 = U22 = 2 U12, U33
    ("R -3 m:H", (0.0, 0.0, 0.0), 2),             # 3a, -3m
    ("F m -3 m", (0.0, 0.0, 0.0), 1),             # 4a, m-3m
    ("F d -3 m:2", (0.125, 0.125, 0.125), 1),     # 8a, -43m
    ("F d -3 m:2", (0.5, 0.5, 0.5), 2),           # 16c/d, .-3m: U11 = U22 = U33, U12 = U13 = U23
    ("P 3 2 1", (0.3, 0.0, 0.0), 4),              # 3e, .2.: U12 = U22/2, U23 = 2 U13
]


@pytest.mark.parametrize("sg, xyz, n_free", _WYCKOFF)
def test_free_uij_follow_the_site_symmetry_tables(sg, xyz, n_free):
    sgo = gemmi.SpaceGroup(sg)
    ph = Phase("t", _cell_for(sgo), sg, [Atom("M", "Fe", xyz, uij=(0.02, 0.015, 0.01, 0.001,
                                                                   0.002, 0.003))])
    free = [n for n in ph.group.free_names if n.split(".")[-1].startswith("U")]
    assert len(free) == n_free
    # every allowed tensor is invariant under the site's rotations: R U* Rᵀ = U*
    at = ph.atoms[0].name
    u = np.array([ph.group.valuesdict()[f"{at}.{n}"] for n in ("U11", "U22", "U33", "U12",
                                                             "U13", "U23")])
    n = np.sqrt(np.diag(np.linalg.inv(metric_tensor(ph.cell_values()))))
    Us = np.diag(n) @ uij_tensor(u) @ np.diag(n)
    for R in ph.site_rotations[0]:
        np.testing.assert_allclose(R @ Us @ R.T, Us, atol=1e-12)
    assert np.linalg.eigvalsh(uij_tensor(u)).min() > 0


def test_hexagonal_site_ties_are_the_tabulated_ones():
    ph = Phase("t", (3.0, 3.0, 5.0, 90, 90, 120), "P 63/m m c",
               [Atom("M", "Mg", (0, 0, 0), uij=(0.02, 0.02, 0.01, 0.01, 0, 0))])
    G = ph.group.tie_matrix().toarray()
    col = ph.group.free_names.index("M.U11")
    assert G[ph.group.slot_index("M.U22"), col] == 1.0
    assert G[ph.group.slot_index("M.U12"), col] == 0.5
    assert not G[ph.group.slot_index("M.U13")].any()


def test_ueq_equals_a_third_of_the_trace_of_the_cartesian_tensor():
    """Fischer & Tillmanns' Ueq (our tie) against (1/3) tr(A U* Aᵀ) with gemmi's
    orthogonalisation matrix A, for a triclinic cell."""
    cell = (5.1, 6.2, 7.3, 82.0, 97.0, 105.0)
    u = np.array([0.010, 0.014, 0.018, 0.002, 0.003, -0.001])
    A = np.array(gemmi.UnitCell(*cell).orth.mat.tolist())
    n = np.sqrt(np.diag(np.linalg.inv(metric_tensor(np.array(cell)))))
    cart = A @ np.diag(n) @ uij_tensor(u) @ np.diag(n) @ A.T
    assert ueq(u, cell) == pytest.approx(np.trace(cart) / 3, rel=1e-12)
    ph = Phase("t", cell, "P 1", [Atom("M", "Fe", (0.1, 0.2, 0.3), uij=tuple(u))])
    assert ph.group.valuesdict()["M.uiso"] == pytest.approx(np.trace(cart) / 3, rel=1e-10)
    # the constraint follows the angles: change alpha, Ueq follows the new cell
    ph.group["alpha"].value = 85.0
    ph.group.update()
    cell2 = np.array(cell)
    cell2[3] = 85.0
    assert ph.group.valuesdict()["M.uiso"] == pytest.approx(ueq(u, cell2), rel=1e-10)
    # orthorhombic: a linear tie, (U11 + U22 + U33)/3
    ph = Phase("o", (5, 6, 7, 90, 90, 90), "P 1", [Atom("M", "Fe", (0.1, 0.2, 0.3),
                                                        uij=tuple(u))])
    assert ph.group.valuesdict()["M.uiso"] == pytest.approx(u[:3].mean(), rel=1e-12)


def test_anisotropic_structure_factors_agree_with_gemmi(tmp_path):
    """gemmi's calculator, reading the CIF, turns each U^ij with the symmetry operations
    itself."""
    cif = tmp_path / "a.cif"
    cif.write_text(_monoclinic().to_cif())
    st = gemmi.read_small_structure(str(cif))
    st.change_occupancies_to_crystallographic()
    ph = Phase.from_cif(cif)
    assert ph.aniso == [0] and ph.atoms[0].uij == (0.010, 0.014, 0.018, 0.002, 0.003, -0.001)
    hkl, q, cell, dGs, atoms = _structure_factor_inputs(ph)
    from sciTie.diffraction._adp import phase_structure_factors
    F2 = phase_structure_factors(ph, hkl, q, atoms, np.array([ph.atoms[0].uij]),
                                 ph.scattering("xray", 1.54, anomalous=False), cell, dGs,
                                 False)[0]
    calc = gemmi.StructureFactorCalculatorX(st.cell)
    ref = np.array([abs(calc.calculate_sf_from_small_structure(st, [int(v) for v in h])) ** 2
                    for h in hkl])
    np.testing.assert_allclose(F2, ref, rtol=2e-5, atol=1e-6 * ref.max())
    # B form in the file: the same U
    text = cif.read_text().replace("aniso_U_", "aniso_B_")
    rows = text.splitlines()
    rows[-1] = "Pb " + " ".join(f"{B_PER_U * x:.10f}" for x in
                                (0.010, 0.014, 0.018, 0.002, 0.003, -0.001))
    cif_b = tmp_path / "b.cif"
    cif_b.write_text("\n".join(rows) + "\n")
    np.testing.assert_allclose(Phase.from_cif(cif_b).atoms[0].uij, ph.atoms[0].uij, rtol=1e-9)


def test_anisotropic_factor_along_an_axis_equals_the_isotropic_one():
    """A sphere (U^ij of Uiso) gives the isotropic |F|² for every reflection of a monoclinic
    cell; an orthorhombic atom with U11 = u scatters (h00) as an isotropic one with U = u."""
    ph = _monoclinic()
    hkl, q, cell, dGs, atoms = _structure_factor_inputs(ph)
    scat = ph.scattering("neutron", 1.6)
    from sciTie.diffraction._adp import phase_structure_factors
    iso = atoms.copy()
    iso[0, 3] = 0.013
    F_iso = ph.structure_factor2(hkl, q, iso, scat, grad=False)[0]
    F_an = phase_structure_factors(ph, hkl, q, atoms, iso_uij(0.013, cell)[None], scat, cell,
                                   dGs, False)[0]
    np.testing.assert_allclose(F_an, F_iso, rtol=1e-12)
    ortho = Phase("o", (5.0, 6.0, 7.0, 90, 90, 90), "P 1",
                  [Atom("M", "Fe", (0, 0, 0), uij=(0.02, 0.005, 0.009, 0, 0, 0))])
    hkl = np.array([[h, 0, 0] for h in range(1, 6)])
    cell = ortho.cell_values()
    q = (hkl[:, 0] / 5.0) ** 2
    scat = ortho.scattering("neutron", 1.6)
    F_an = phase_structure_factors(ortho, hkl, q, np.array([[0, 0, 0, 0.0, 1]]),
                                   np.array([[0.02, 0.005, 0.009, 0, 0, 0]]), scat, cell,
                                   np.zeros((6, 3, 3)), False)[0]
    F_iso = ortho.structure_factor2(hkl, q, np.array([[0, 0, 0, 0.02, 1]]), scat,
                                    grad=False)[0]
    np.testing.assert_allclose(F_an, F_iso, rtol=1e-12)
    b = scat["b"][0]
    np.testing.assert_allclose(F_an, (b * np.exp(-8 * np.pi ** 2 * 0.02 * q / 4)) ** 2,
                               rtol=1e-12)


def test_cif_round_trip_of_anisotropic_atoms(tmp_path):
    ph = _monoclinic()
    text = ph.to_cif()
    assert "_atom_site_aniso_U_11" in text
    path = tmp_path / "out.cif"
    path.write_text(text)
    back = Phase.from_cif(path)
    np.testing.assert_allclose(back.atoms[0].uij, ph.atoms[0].uij, atol=1e-6)
    assert back.atoms[1].uij is None
    # B form (adp='B'): B^ij = 8π² U^ij in the aniso loop, adp_type Bani / Biso; reads back
    text_b = ph.to_cif(adp="B")
    assert "_atom_site_aniso_B_11" in text_b and "_atom_site_aniso_U_11" not in text_b
    rows = text_b.splitlines()
    assert rows[-1].split()[1] == f"{B_PER_U * 0.010:.6f}"
    assert any(r.startswith("Pb ") and r.endswith(" Bani") for r in rows)
    assert any(r.startswith("O ") and r.endswith(" Biso") for r in rows)
    path_b = tmp_path / "out_b.cif"
    path_b.write_text(text_b)
    back_b = Phase.from_cif(path_b)
    np.testing.assert_allclose(back_b.atoms[0].uij, ph.atoms[0].uij, atol=1e-7)
    assert back_b.adp == "B" and back_b.atoms[1].uiso == pytest.approx(0.02, abs=1e-7)


def test_with_anisotropic_starts_from_uiso_and_keeps_the_pattern():
    """Turning isotropic atoms anisotropic at their Uiso changes no intensity; the new
    atoms' uiso slot is their Ueq (= the old Uiso)."""
    ph = synthetic_phase()
    aniso = ph.with_anisotropic()
    assert aniso.aniso == [0, 1]
    vals = aniso.group.valuesdict()
    assert vals["Ti.uiso"] == pytest.approx(ph.group.valuesdict()["Ti.uiso"], rel=1e-12)
    assert "Ti.U11" in aniso.group.free_names and "Ti.U22" not in aniso.group.free_names
    p1 = PowderPattern(_blank(), ph, _cw(), n_background=1)
    p2 = PowderPattern(_blank(), aniso, _cw(), n_background=1)
    np.testing.assert_allclose(p2.calc()[0], p1.calc()[0], rtol=1e-10)
    assert aniso.structure_names(["uiso"]) == aniso.structure_names(["uij"]) == [
        "Ti.U11", "Ti.U33", "Ti.U12", "O.U11", "O.U33", "O.U12"]
    with pytest.raises(ValidationError, match="no atoms"):
        ph.with_anisotropic(["Zr"])


# -- absorption ------------------------------------------------------------------------------------
def _cylinder_by_integration(muR, theta_deg, n=200):
    """Transmission of a unit disc bathed in a beam along x and seen at 2θ, by Gauss
    quadrature over the disc of exp(-μ (path in + path out))."""
    x, w = np.polynomial.legendre.leggauss(n)
    rho, wr = 0.5 * (x + 1), 0.25 * w * (x + 1)
    phi = 2 * np.pi * np.arange(2 * n) / (2 * n)
    R, P = np.meshgrid(rho, phi, indexing="ij")
    px, py = R * np.cos(P), R * np.sin(P)
    r2 = px ** 2 + py ** 2
    t2 = math.radians(2 * theta_deg)
    d_in = px
    d_out = px * math.cos(t2) + py * math.sin(t2)
    path = d_in + np.sqrt(d_in ** 2 + 1 - r2) - d_out + np.sqrt(d_out ** 2 + 1 - r2)
    return float((np.exp(-muR * path) * wr[:, None]).sum() * (2 * np.pi / (2 * n)) / np.pi)


@pytest.mark.parametrize("muR", [0.1, 0.5, 1.0, 2.0, 2.9, 3.1, 5.0, 10.0])
def test_cylinder_approximation_against_direct_integration(muR):
    """Lobanov & Alte da Veiga's approximation (GSAS-II's) is within 1.5 % of the exact
    transmission of a cylinder from 2θ = 10° to 170°."""
    for th in (5.0, 20.0, 45.0, 70.0, 85.0):
        exact = _cylinder_by_integration(muR, th)
        assert cylinder_transmission(muR, th)[0] == pytest.approx(exact, rel=0.015)


def test_cylinder_published_values_and_branch_step():
    """At 2θ = 0 the formula reduces to GSAS-II's Transmission() constants:
    exp(-16/(3π) μR + 0.04578 μR² + 0.02489 μR³ - 0.003045 μR⁴); the two branches of the
    approximation meet at μR = 3 within 2.7 % (the largest step at 2θ near 180°)."""
    for x in (0.3, 1.0, 2.5):
        ref = math.exp(-16 / (3 * math.pi) * x + 0.045780 * x ** 2 + 0.02489 * x ** 3
                       - 0.003045 * x ** 4)
        assert cylinder_transmission(x, 0.0)[0] == pytest.approx(ref, rel=1e-7)
    th = np.linspace(2, 88, 30)
    lo = cylinder_transmission(3.0, th)[0]
    hi = cylinder_transmission(3.0 + 1e-12, th)[0]
    assert np.max(np.abs(hi / lo - 1)) < 0.027


def test_absorption_derivatives_against_finite_differences():
    for x in (0.7, 4.0):
        _, dx, dth = cylinder_transmission(x, np.array([12.0, 40.0, 77.0]))
        h = 1e-6
        np.testing.assert_allclose(dx, (cylinder_transmission(x + h, [12, 40, 77])[0]
                                        - cylinder_transmission(x - h, [12, 40, 77])[0]) / (2 * h),
                                   rtol=1e-6)
        np.testing.assert_allclose(dth, (cylinder_transmission(x, [12 + h, 40 + h, 77 + h])[0]
                                         - cylinder_transmission(x, [12 - h, 40 - h, 77 - h])[0])
                                   / (2 * h), rtol=2e-5)
    _, dp, dq, dth = suortti_roughness(0.8, 0.3, np.array([15.0, 30.0, 60.0]))
    h = 1e-7
    th = np.array([15.0, 30.0, 60.0])
    np.testing.assert_allclose(dp, (suortti_roughness(0.8 + h, 0.3, th)[0]
                                    - suortti_roughness(0.8 - h, 0.3, th)[0]) / (2 * h),
                               rtol=1e-6)
    np.testing.assert_allclose(dq, (suortti_roughness(0.8, 0.3 + h, th)[0]
                                    - suortti_roughness(0.8, 0.3 - h, th)[0]) / (2 * h),
                               rtol=1e-6)
    h = 1e-4
    np.testing.assert_allclose(dth, (suortti_roughness(0.8, 0.3, th + h)[0]
                                     - suortti_roughness(0.8, 0.3, th - h)[0]) / (2 * h),
                               rtol=1e-6)


def test_suortti_by_hand():
    """S(θ) = [p + (1-p) e^(-q/sin θ)]/[p + (1-p) e^(-q)]: 1 at θ = 90°, and by hand at 30°."""
    assert suortti_roughness(0.8, 0.3, 90.0)[0] == pytest.approx(1.0, rel=1e-14)
    hand = (0.8 + 0.2 * math.exp(-0.6)) / (0.8 + 0.2 * math.exp(-0.3))
    assert suortti_roughness(0.8, 0.3, 30.0)[0] == pytest.approx(hand, rel=1e-14)
    assert hand == pytest.approx(0.95950, abs=1e-5)


# -- derivatives of whole patterns -----------------------------------------------------------------
def test_pattern_jacobian_with_every_correction_matches_finite_differences():
    """Monoclinic phase (anisotropic Pb on a general position), March-Dollase along [101],
    capillary absorption: the U^ij, po_ratio, muR, cell and zero columns."""
    pat = PowderPattern(_blank(20, 80, 0.05), _monoclinic(), _cw(geometry="debye-scherrer"),
                        n_background=1, tail_tolerance=0.0,
                        preferred_orientation={"mono": {"model": "march-dollase",
                                                        "axis": [1, 0, 1], "ratio": 0.8}},
                        absorption={"model": "cylinder", "muR": 1.2})
    done = _fd_columns(pat, pat.local_vector(), {"U11", "U22", "U33", "U12", "U13", "U23",
                                                 "po_ratio", "muR", "a", "c", "beta", "zero"})
    assert len(done) == 12


def test_pattern_jacobian_with_harmonics_and_roughness_matches_finite_differences():
    pat = PowderPattern(_blank(20, 80, 0.05), _monoclinic(), _cw(), n_background=1,
                        tail_tolerance=0.0,
                        preferred_orientation={"mono": {"model": "spherical-harmonics",
                                                        "order": 4, "coefficients": {
                                                            "sh2_1": 0.1, "sh4_2": -0.05}}},
                        absorption={"model": "suortti", "rough_p": 0.8, "rough_q": 0.3})
    done = _fd_columns(pat, pat.local_vector(), {"sh2_1", "sh2_3", "sh4_2", "sh4_5",
                                                 "rough_p", "rough_q", "a", "beta", "zero"})
    assert len(done) == 9


def test_time_of_flight_absorption_scales_with_the_wavelength():
    """TOF: μR(λ) = muR·λ at the bank angle, λ = 2 d sin θ; derivatives by differences."""
    t = np.arange(8000.0, 14000.0, 8.0)
    data = make_pattern(t, np.ones_like(t), np.ones_like(t), axis="tof")
    inst = TimeOfFlight(two_theta=144.8, difc=7476.9, alpha=0.8, beta0=0.04, sig1=60.0)
    pat = PowderPattern(data, synthetic_phase(), inst, n_background=1,
                        absorption={"model": "cylinder", "muR": 0.7})
    _fd_columns(pat, pat.local_vector(), {"muR", "difc", "a"})
    plain = PowderPattern(data, synthetic_phase(), inst, n_background=1)
    _, _, info = pat.evaluate(pat.local_vector(), grad=False, peaks=True)
    _, _, ref = plain.evaluate(plain.local_vector(), grad=False, peaks=True)
    d = 1 / np.sqrt(info["phases"]["TiO2"]["q"])
    lam = 2 * d * math.sin(math.radians(72.4))
    np.testing.assert_allclose(info["phases"]["TiO2"]["I"] / ref["phases"]["TiO2"]["I"],
                               cylinder_transmission(0.7 * lam, 72.4)[0], rtol=1e-12)


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    ({"preferred_orientation": {"TiO2": {"model": "rietveld"}}}, "model"),
    ({"preferred_orientation": {"TiO2": {"model": "march-dollase", "axis": [0, 0, 0]}}},
     "non-zero"),
    ({"preferred_orientation": {"TiO2": {"model": "march-dollase", "axis": [0, 0, 1],
                                         "ratio": -1}}}, "ratio"),
    ({"preferred_orientation": {"TiO2": {"model": "spherical-harmonics", "order": 5}}},
     "even"),
    ({"preferred_orientation": {"TiO2": {"model": "spherical-harmonics", "order": 4,
                                         "coefficients": {"sh4_9": 1.0}}}}, "sh4_9"),
    ({"preferred_orientation": {"CuO": {"model": "march-dollase", "axis": [0, 0, 1]}}},
     "unknown phases"),
    ({"preferred_orientation": {"TiO2": {"model": "march-dollase", "axis": [0, 0, 1],
                                         "order": 4}}}, "unknown keys"),
    ({"absorption": {"model": "cylinder", "muR": 1.0}}, "Debye-Scherrer"),
    ({"absorption": "lambert"}, "model"),
    ({"absorption": {"model": "suortti", "muR": 1.0}}, "unknown keys"),
])
def test_corrections_bad_input_names_the_problem(kw, match):
    with pytest.raises(ValidationError, match=match):
        PowderPattern(_blank(), synthetic_phase(), _cw(), n_background=1, **kw)


def test_bad_anisotropic_input_names_the_atom():
    with pytest.raises(ValidationError, match="'Pb'.*positive definite"):
        Phase("p", (5, 5, 5, 90, 90, 90), "P 1",
              [Atom("Pb", "Pb", (0, 0, 0), uij=(0.01, 0.01, 0.01, 0.02, 0, 0))])
    with pytest.raises(ValidationError, match="6 finite"):
        Phase("p", (5, 5, 5, 90, 90, 90), "P 1", [Atom("Pb", "Pb", (0, 0, 0), uij=(0.01,))])
    with pytest.raises(ValidationError, match="Bragg-Brentano"):
        PowderPattern(_blank(), synthetic_phase(), _cw(geometry="debye-scherrer"),
                      absorption={"model": "suortti"})


# -- refinements that recover the truth ------------------------------------------------------------
def _poisson_fit(make, truth: dict, refine_structure, refine_pattern, seed=5, scale=2e4):
    """Simulate a pattern with ``truth`` set, Poisson noise, and refine from the start."""
    pat = make()
    g = pat.group
    for name, value in truth.items():
        (pat.phases[0].group if name.startswith("@") else g)[name.lstrip("@")].value = value
    g["scale"].value = scale
    g["bkg"].value = [50.0]
    pat.phases[0].group.update()
    g.update()
    y, _ = pat.calc()
    counts = np.random.default_rng(seed).poisson(y).astype(float)
    data = make_pattern(pat.x, counts, np.maximum(counts, 1.0))
    fit = make(data)
    ref = JointRefinement(fit.phases, [fit])
    ref.initialize()
    ref.set_refined(structure=refine_structure, patterns={"*": ["scale", "bkg",
                                                                *refine_pattern]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref.fit()
    return ref.parameters(structure_prefix=True)


def test_refinement_recovers_march_dollase_ratio_and_harmonic_coefficients():
    def make(data=None, po=None):
        return PowderPattern(data if data is not None else _blank(20, 100, 0.04),
                             synthetic_phase(), _cw(), n_background=1,
                             preferred_orientation={"TiO2": po})
    md = {"model": "march-dollase", "axis": [0, 0, 1], "ratio": 1.0}
    P = _poisson_fit(lambda d=None: make(d, md), {"TiO2.po_ratio": 0.75}, [],
                     ["preferred_orientation"])
    r = P["pattern.TiO2.po_ratio"]
    assert abs(r["value"] - 0.75) < 3 * r["stderr"] and r["stderr"] < 0.01
    sh = {"model": "spherical-harmonics", "order": 4}
    P = _poisson_fit(lambda d=None: make(d, sh), {"TiO2.sh2_1": 0.25, "TiO2.sh4_1": -0.15},
                     [], ["preferred_orientation"])
    for n, true in (("sh2_1", 0.25), ("sh4_1", -0.15), ("sh4_2", 0.0)):
        c = P[f"pattern.TiO2.{n}"]
        assert abs(c["value"] - true) < 3 * c["stderr"] and c["stderr"] < 0.02, n


def test_refinement_recovers_uij_and_absorption():
    """Neutron capillary pattern of rutile with anisotropic O and μR = 1.5: the three free
    U^ij of O on m.2m, Ti's Uiso and μR come back within 3 esd; Ueq follows."""
    truth = {"@O.U11": 0.012, "@O.U33": 0.005, "@O.U12": 0.004, "muR": 1.5}

    def make(data=None):
        return PowderPattern(data if data is not None else _blank(10, 150, 0.05),
                             synthetic_phase().with_anisotropic(["O"]),
                             _cw("neutron", "debye-scherrer", U=4.0, V=-4.0, W=8.0, X=0.0),
                             n_background=1, absorption={"model": "cylinder", "muR": 1.0})
    P = _poisson_fit(make, truth, ["uiso"], ["absorption"], scale=3e4)
    for n, true in truth.items():
        key = f"TiO2.{n[1:]}" if n.startswith("@") else f"pattern.{n}"
        assert abs(P[key]["value"] - true) < 3 * P[key]["stderr"], (n, P[key])
    ueq_true = (2 * 0.012 + 0.005) / 3
    assert abs(P["TiO2.O.uiso"]["value"] - ueq_true) < 3 * P["TiO2.O.uiso"]["stderr"]


# -- recipes --------------------------------------------------------------------------------------
def test_recipe_refines_every_correction_and_lists_its_keys(tmp_path, capsys):
    """A neutron capillary pattern simulated with anisotropic O (from the CIF), anisotropic
    Ti (from ``anisotropic``), March-Dollase along [001] and μR: the recipe's stage items
    free them and the fit returns the truth within 3 esd."""
    import json

    from sciTie.cli import main
    from sciTie.diffraction import write_xye

    truth = synthetic_phase().with_anisotropic()
    for n, val in {"O.U11": 0.011, "O.U33": 0.005, "O.U12": 0.003, "Ti.U11": 0.007,
                   "Ti.U33": 0.004}.items():
        truth.group[n].value = val
    truth.group.update()
    inst = _cw("neutron", "debye-scherrer", U=4.0, V=-4.0, W=8.0, X=0.0)
    po = {"TiO2": {"model": "march-dollase", "axis": [0, 0, 1], "ratio": 0.85}}
    pat = PowderPattern(_blank(10, 150, 0.08), truth, inst, n_background=1,
                        preferred_orientation=po, absorption={"model": "cylinder", "muR": 0.9})
    pat.group["scale"].value = 3e4
    pat.group["bkg"].value = [40.0]
    y, _ = pat.calc()
    counts = np.random.default_rng(2).poisson(y).astype(float)
    write_xye(make_pattern(pat.x, counts, np.maximum(counts, 1.0)), tmp_path / "n.xye")
    start = synthetic_phase().with_anisotropic(["O"])     # the CIF carries O's U^ij only
    (tmp_path / "rutile.cif").write_text(start.to_cif())
    recipe = """kind = "rietveld"
name = "toolbox"
[[phases]]
cif = "rutile.cif"
anisotropic = ["Ti"]
[[patterns]]
name = "neutron"
file = "n.xye"
radiation = "neutron"
lam1 = 1.6
geometry = "debye-scherrer"
n_background = 1
profile = {U = 4.0, V = -4.0, W = 8.0, X = 0.0}
preferred_orientation = {TiO2 = {model = "march-dollase", axis = [0, 0, 1]}}
absorption = {model = "cylinder", muR = 0.5}
[[stages]]
pattern = ["scale", "bkg"]
[[stages]]
structure = ["uiso"]
pattern = ["scale", "bkg", "preferred_orientation", "absorption"]
"""
    (tmp_path / "fit.toml").write_text(recipe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["fit", str(tmp_path / "fit.toml"), "--json", str(tmp_path / "r.json")]) == 0
    P = json.loads((tmp_path / "r.json").read_text())["parameters"]
    printed = capsys.readouterr().out
    expect = {"O.U11": 0.011, "O.U33": 0.005, "O.U12": 0.003, "Ti.U11": 0.007,
              "Ti.U33": 0.004, "neutron.TiO2.po_ratio": 0.85, "neutron.muR": 0.9}
    for n, val in expect.items():
        assert abs(P[n]["value"] - val) < 3 * P[n]["stderr"], (n, P[n])
    assert abs(P["O.uiso"]["value"] - (2 * 0.011 + 0.005) / 3) < 3 * P["O.uiso"]["stderr"]
    cif = printed.split("data_TiO2")[1]
    assert "_atom_site_aniso_U_11" in cif and "Ti " in cif.split("_atom_site_aniso_U_23")[1]
    # every key is documented
    assert main(["recipe", "rietveld", "--keys"]) == 0
    keys = capsys.readouterr().out
    for k in ("phases.anisotropic", "patterns.preferred_orientation", "patterns.absorption"):
        assert k in keys
    # a correction the geometry cannot have is refused naming the pattern
    (tmp_path / "bad.toml").write_text(recipe.replace('"debye-scherrer"', '"bragg-brentano"'))
    assert main(["fit", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert "patterns[0]" in err and "Debye-Scherrer" in err
    (tmp_path / "bad2.toml").write_text(recipe.replace('anisotropic = ["Ti"]',
                                                       'anisotropic = ["Zr"]'))
    assert main(["fit", str(tmp_path / "bad2.toml")]) == 2
    assert "phases[0].anisotropic" in capsys.readouterr().err
    # a starting Uiso for an atom with U^ij in its CIF is refused (its Uiso is their Ueq);
    # '*' starts the isotropic atoms only, and Ti is made anisotropic from that start
    (tmp_path / "bad3.toml").write_text(recipe.replace('anisotropic = ["Ti"]',
                                                       'anisotropic = ["Ti"]\nbiso = {O = 1.0}'))
    assert main(["fit", str(tmp_path / "bad3.toml")]) == 2
    err = capsys.readouterr().err
    assert "phases[0].biso" in err and "'O'" in err and "anisotropic" in err
    from sciTie.diffraction.recipe import _build_phases
    from sciTie.recipes import load_recipe

    (tmp_path / "star.toml").write_text(recipe.replace('anisotropic = ["Ti"]',
                                                       'anisotropic = ["Ti"]\nuiso = {"*" = 0.02}'))
    ph = _build_phases(load_recipe(tmp_path / "star.toml"))[0]
    v = ph.group.valuesdict()
    assert ph.aniso == [0, 1] and v["Ti.U11"] == pytest.approx(0.02)
    assert v["O.U11"] == pytest.approx(start.group.valuesdict()["O.U11"])


def test_refinement_recovers_surface_roughness():
    """Bragg-Brentano X-ray data with Suortti's p = 0.6, q = 0.4 (started at 0.9, 0.1)."""
    def make(data=None):
        return PowderPattern(data if data is not None else _blank(15, 150, 0.04),
                             synthetic_phase(), _cw(), n_background=1,
                             absorption={"model": "suortti", "rough_p": 0.9, "rough_q": 0.1})
    P = _poisson_fit(make, {"rough_p": 0.6, "rough_q": 0.4}, [], ["absorption"], scale=5e4)
    for n, true in (("rough_p", 0.6), ("rough_q", 0.4)):
        c = P[f"pattern.{n}"]
        assert abs(c["value"] - true) < 3 * c["stderr"] and c["stderr"] < 0.01, n
