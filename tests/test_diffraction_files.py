"""Files from other programs: CIF1 and CIF2/DDLm structures, cell angles implied by the
crystal system, B and U both ways, FullProf/EasyDiffraction profile conventions, the quick
form without an instrument file, and ``--set`` on arrays of tables."""
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from sciTie import datasets
from sciTie.cli import main
from sciTie.diffraction import B_PER_U, Phase, make_pattern, read_instrument
from sciTie.diffraction.conventions import (fwhm, profile_from_easydiffraction,
                                            profile_from_fullprof, profile_to_easydiffraction,
                                            profile_to_fullprof,
                                            read_easydiffraction_instrument)
from sciTie.diffraction.data import make_synthetic
from sciTie.diffraction.recipe import _joint
from sciTie.diffraction._profile_estimate import estimate_profile
from sciTie.errors import DataFormatError, RecipeError, ValidationError
from sciTie.recipes import load_recipe
from sciTie.recipes._recipe import apply_overrides

DATA = Path(__file__).parent / "data"
CIF2 = DATA / "pbso4_easydiffraction.cif"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# -- CIF1 and CIF2 ------------------------------------------------------------------------------
def test_easydiffraction_cif2_reads_as_the_cif1_file():
    """The hand-written CIF2 (dotted tags, B_iso, no cell angles) and the GSAS-II CIF1 file of
    the same starting structure give the same phase."""
    one = Phase.from_cif(datasets.data_dir("pbso4") / "PbSO4-Wyckoff.cif")
    two = Phase.from_cif(CIF2)
    assert two.spacegroup.number == one.spacegroup.number == 62
    assert two.spacegroup.xhm() == one.spacegroup.xhm()
    np.testing.assert_allclose(two.cell_values(), one.cell_values())
    assert two.cell_values()[3:].tolist() == [90.0, 90.0, 90.0]      # filled in: orthorhombic
    assert [a.label for a in two.atoms] == [a.label for a in one.atoms]
    for a1, a2 in zip(one.atoms, two.atoms):
        assert a1.element == a2.element and np.allclose(a1.xyz, a2.xyz)
        # 0.7896 = 8π² · 0.01 to four digits: B read as B
        assert a2.uiso == pytest.approx(0.7896 / B_PER_U) and a2.uiso == pytest.approx(0.01,
                                                                                     rel=1e-4)
    assert two.adp == "B" and one.adp == "U"
    assert two.group.free_names == one.group.free_names
    assert list(two.multiplicity) == [4, 4, 4, 4, 8]


SI_CIF2 = """data_si
_cell.length_a   5.4315
_space_group.name_H-M_alt   "F d -3 m"
{code}
loop_
_atom_site.label
_atom_site.type_symbol
_atom_site.fract_x
_atom_site.fract_y
_atom_site.fract_z
_atom_site.occupancy
_atom_site.U_iso_or_equiv
_atom_site.B_iso_or_equiv
_atom_site.adp_type
Si Si 0.125 0.125 0.125 1.0 0.5 0.529 {adp}
"""


def test_coordinate_system_code_picks_the_origin_choice(tmp_path):
    si = Phase.from_cif(_write(tmp_path, "si.cif", SI_CIF2.format(
        code="_space_group.IT_coordinate_system_code  2", adp="Biso")))
    assert si.spacegroup.xhm() == "F d -3 m:2"
    assert si.cell_values().tolist() == [5.4315] * 3 + [90.0] * 3   # b, c, angles: cubic
    assert si.multiplicity[0] == 8 and si.group.free_names == ["a", "Si.uiso"]   # 8a
    assert si.atoms[0].uiso == pytest.approx(0.529 / B_PER_U)    # adp_type Biso: B wins
    # origin choice 1 (gemmi's default without the code): (1/8, 1/8, 1/8) is site 16c there
    one = Phase.from_cif(_write(tmp_path, "si1.cif", SI_CIF2.format(code="", adp="Uiso")))
    assert one.spacegroup.xhm() == "F d -3 m:1" and one.multiplicity[0] == 16
    assert one.atoms[0].uiso == 0.5 and one.adp == "U"


def test_debye_waller_factor_of_a_b_read_from_cif(tmp_path):
    """Independent check of B = 8π²U: for Si (one atom, neutrons: b constant) the intensity
    ratio of two reflections of one parity class is exp(-2 B (s₂² - s₁²)), s = 1/(2d)."""
    si = Phase.from_cif(_write(tmp_path, "si.cif", SI_CIF2.format(
        code="_space_group.IT_coordinate_system_code  2", adp="Biso")))
    B, a = 0.529, 5.4315
    hkl = np.array([[1, 1, 1], [3, 1, 1], [3, 3, 1]])
    q = (hkl ** 2).sum(1) / a ** 2                                   # 1/d²
    atoms = np.array([[*si.atoms[0].xyz, si.atoms[0].uiso, 1.0]])
    F2, _, _ = si.structure_factor2(hkl, q, atoms, si.scattering("neutron", 1.5), grad=False)
    s2 = q / 4
    expected = np.exp(-2 * B * (s2 - s2[0]))
    np.testing.assert_allclose(F2 / F2[0], expected, rtol=1e-12)


CELL_CASES = [
    # space group, tags given, expected cell
    ("P 63/m m c", {"length_a": 3.2, "length_c": 5.2}, [3.2, 3.2, 5.2, 90, 90, 120]),
    ("P 42/m n m", {"length_a": 4.59, "length_c": 2.96}, [4.59, 4.59, 2.96, 90, 90, 90]),
    ("R -3 m", {"length_a": 3.0, "length_c": 14.0}, [3.0, 3.0, 14.0, 90, 90, 120]),
    ("P 21/c", {"length_a": 5.0, "length_b": 6.0, "length_c": 7.0, "angle_beta": 101.0},
     [5.0, 6.0, 7.0, 90, 101.0, 90]),
]


@pytest.mark.parametrize("sg, given, cell", CELL_CASES)
def test_cell_parameters_fixed_by_the_system_are_filled_in(tmp_path, sg, given, cell):
    tags = "".join(f"_cell_{k} {v}\n" for k, v in given.items())
    text = (f"data_x\n{tags}_symmetry_space_group_name_H-M '{sg}'\nloop_\n_atom_site_label\n"
            "_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
            "_atom_site_fract_z\nO1 O 0.1 0.2 0.3\n")
    ph = Phase.from_cif(_write(tmp_path, "x.cif", text))
    np.testing.assert_allclose(ph.cell_values(), cell)


def test_rhombohedral_axes_need_only_a_and_alpha(tmp_path):
    text = ("data_x\n_cell.length_a 5.5\n_cell.angle_alpha 55.0\n"
            "_space_group.name_H-M_alt 'R -3 m'\n_space_group.IT_coordinate_system_code r\n"
            "loop_\n_atom_site.label\n_atom_site.fract_x\n_atom_site.fract_y\n"
            "_atom_site.fract_z\nBi1 0 0 0\n")
    ph = Phase.from_cif(_write(tmp_path, "r.cif", text))
    assert ph.spacegroup.xhm() == "R -3 m:R" and ph.atoms[0].element == "Bi"   # from the label
    np.testing.assert_allclose(ph.cell_values(), [5.5] * 3 + [55.0] * 3)


@pytest.mark.parametrize("dotted", [True, False])
def test_a_missing_cell_parameter_the_system_does_not_fix_is_named(tmp_path, dotted):
    sep = "." if dotted else "_"
    text = (f"data_x\n_cell{sep}length_a 5\n_cell{sep}length_b 6\n_cell{sep}length_c 7\n"
            f"_space_group{sep}name_H-M_alt 'P 21/c'\nloop_\n_atom_site{sep}label\n"
            f"_atom_site{sep}fract_x\n_atom_site{sep}fract_y\n_atom_site{sep}fract_z\nO1 0 0 0\n")
    with pytest.raises(DataFormatError, match=rf"no _cell\{sep}angle_beta, and the monoclinic "
                                              r"space group P 1 21/c 1 does not fix beta") as exc:
        Phase.from_cif(_write(tmp_path, "m.cif", text))
    assert exc.value.line == 2 and exc.value.path.endswith("m.cif")
    tri = text.replace("'P 21/c'", "'P -1'").replace(f"_cell{sep}length_c 7\n",
                                                       f"_cell{sep}length_c 7\n_cell{sep}angle_alpha 80\n"
                                                       f"_cell{sep}angle_beta 85\n")
    with pytest.raises(DataFormatError, match=rf"_cell\{sep}angle_gamma.*triclinic"):
        Phase.from_cif(_write(tmp_path, "t.cif", tri))


def test_cif_output_in_b_with_scaled_esds_reads_back(tmp_path):
    ph = Phase.from_cif(CIF2)
    text = ph.to_cif(stderr={"Pb.uiso": 2.0e-4, "a": 1e-4})
    assert "_atom_site_B_iso_or_equiv" in text and "_atom_site_U_iso" not in text  # as read
    pb = next(line for line in text.splitlines() if line.startswith("Pb "))
    # B = 8π² · 0.01 = 0.7896, esd 8π² · 2e-4 = 0.0158 -> two digits
    assert pb.split()[5] == "0.790(16)" and pb.endswith("Biso")
    assert "Uiso" in ph.to_cif(adp="U") and "_atom_site_U_iso_or_equiv" in ph.to_cif(adp="U")
    back = Phase.from_cif(_write(tmp_path, "b.cif", text))
    # the Pb value was written to the digits its esd allows
    assert back.adp == "B" and [a.uiso for a in back.atoms] == pytest.approx(
        [a.uiso for a in ph.atoms], rel=1e-3)
    with pytest.raises(ValidationError, match="'U' or 'B'"):
        ph.to_cif(adp="beq")


def test_atom_takes_uiso_or_biso():
    from sciTie.diffraction import Atom

    atom = Atom("Na", "Na", (0, 0, 0), biso=1.2)
    ph = Phase("x", (4, 4, 4, 90, 90, 90), "P m -3 m", [atom])
    assert ph.group.valuesdict()["Na.uiso"] == pytest.approx(1.2 / (8 * math.pi ** 2))
    assert atom.uiso == pytest.approx(1.2 / (8 * math.pi ** 2)) and atom.biso is None
    Phase("y", (4, 4, 4, 90, 90, 90), "P m -3 m", [atom])       # the atom can be read again
    with pytest.raises(ValidationError, match="give uiso or biso"):
        Phase("x", (4, 4, 4, 90, 90, 90), "P m -3 m",
              [Atom("Na", "Na", (0, 0, 0), uiso=0.01, biso=1.2)])


# -- profile conventions --------------------------------------------------------------------------
def _fullprof_fwhm(p, tt):
    """FullProf's TCH pseudo-Voigt (Npr = 7), written out from its manual: H_G² and H_L in
    degrees, the TCH fifth-order combination and mixing polynomial."""
    th = np.radians(tt / 2)
    hg = np.sqrt(p["U"] * np.tan(th) ** 2 + p["V"] * np.tan(th) + p["W"] + p["IG"] / np.cos(th) ** 2)
    hl = p["X"] * np.tan(th) + p["Y"] / np.cos(th)
    h = (hg ** 5 + 2.69269 * hg ** 4 * hl + 2.42843 * hg ** 3 * hl ** 2
         + 4.47163 * hg ** 2 * hl ** 3 + 0.07842 * hg * hl ** 4 + hl ** 5) ** 0.2
    r = hl / h
    return h, 1.36603 * r - 0.47719 * r ** 2 + 0.11116 * r ** 3


def test_fullprof_profile_gives_the_same_fwhm_at_every_angle():
    # the HRPT (PSI) values of EasyDiffraction's LBCO tutorial, plus IG and a Lorentzian X
    fp = {"U": 0.0859, "V": -0.1206, "W": 0.1225, "IG": 0.004, "X": 0.021, "Y": 0.083}
    tt = np.array([10.0, 30.0, 60.0, 90.0, 120.0, 150.0, 165.0])
    ours = fwhm(profile_from_fullprof(**fp), tt)
    theirs = _fullprof_fwhm(fp, tt)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)
    # pure Gaussian and pure Lorentzian limits: the 8 ln2 factor and the X <-> Y swap alone
    g = fwhm(profile_from_fullprof(W=0.04), [50.0])
    assert g[0][0] == pytest.approx(0.2, rel=1e-3) and g[1][0] < 1e-3
    lor = profile_from_fullprof(X=0.05)           # FullProf X: tan θ (strain-like)
    assert lor["Y"] == pytest.approx(5.0) and lor["X"] == 0.0
    back = profile_to_fullprof(profile_from_fullprof(**fp, zero=-0.03))
    assert back == pytest.approx({**fp, "zero": -0.03}, rel=1e-12)


def test_easydiffraction_names_and_experiment_file(tmp_path):
    params = {"_peak.broad_gauss_u": 0.0859, "_peak.broad_gauss_v": -0.1206,
              "_peak.broad_gauss_w": 0.1225, "_peak.broad_lorentz_x": 0.0,
              "_peak.broad_lorentz_y": 0.0830, "_instr.2theta_offset": 0.6264}
    prof = profile_from_easydiffraction(params)
    assert prof == pytest.approx(profile_from_fullprof(U=0.0859, V=-0.1206, W=0.1225, Y=0.083,
                                                       zero=0.6264))
    assert profile_to_easydiffraction({k: v for k, v in prof.items() if k != "P"}) \
        == pytest.approx(params)
    with pytest.raises(ValidationError, match="unknown EasyDiffraction profile key"):
        profile_from_easydiffraction({"_peak.broad_gauss_q": 1.0})
    expt = _write(tmp_path, "hrpt.cif", "data_hrpt\n_expt_type.beam_mode 'constant wavelength'\n"
                  "_expt_type.radiation_probe neutron\n_peak.asym_empir_2 -0.0177(19)\n"
                  + "".join(f"{k} {v}\n" for k, v in params.items())
                  + "_instr.wavelength 1.494\n")
    with pytest.warns(UserWarning, match="empirical asymmetry"):
        inst = read_easydiffraction_instrument(expt)
    assert inst.radiation == "neutron" and inst.lam1 == 1.494 and inst.lam2 == 0.0
    assert inst.W == pytest.approx(prof["W"]) and inst.zero == pytest.approx(0.6264)
    assert inst.source_file == str(expt)
    with pytest.warns(UserWarning, match="empirical asymmetry"):
        assert read_instrument(expt) == inst      # an instrument file like a .prm
    tof = _write(tmp_path, "tof.cif", "data_t\n_expt_type.beam_mode 'time-of-flight'\n")
    with pytest.raises(DataFormatError, match="only constant-wavelength"):
        read_easydiffraction_instrument(tof)


def test_profile_estimated_from_a_pattern_of_known_widths():
    """The synthetic neutron pattern is Gaussian with U, V, W = 250, -500, 400 centideg²:
    the widths measured on it match the true FWHM within 10 % over the pattern."""
    ds = make_synthetic(seed=1)["neutron"]
    pat = make_pattern(ds["two_theta"].values, ds["intensity"].values,
                       ds["intensity"]["variance"].values)
    est = estimate_profile(pat)
    assert est["n_peaks"] >= 5
    tt = np.array([30.0, 60.0, 90.0, 120.0])
    truth = fwhm({"U": 250.0, "V": -500.0, "W": 400.0}, tt)[0]
    np.testing.assert_allclose(fwhm(est, tt)[0], truth, rtol=0.1)
    with pytest.raises(ValidationError, match="no peak stands above the noise"):
        flat = np.full(200, 100.0)
        estimate_profile(make_pattern(np.linspace(10, 100, 200), flat, flat))


# -- the quick form without an instrument file ---------------------------------------------------
def test_quick_form_without_prm_reaches_the_fit_with_prm(tmp_path, capsys):
    """The D1A pattern of PbSO4 written as xye, the structure from the CIF2 file: fitted from
    ``--radiation neutron --wavelength 1.909`` (profile measured on the data) and from the
    GSAS .prm file, the staged refinements end at the same minimum."""
    from sciTie.diffraction import read_gsas_std, write_xye

    folder = datasets.data_dir("pbso4")
    write_xye(read_gsas_std(folder / "PBSO4.CWN"), tmp_path / "d1a.xye")
    common = ["fit", "rietveld", "--cif", str(CIF2), "--pattern", str(tmp_path / "d1a.xye")]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main([*common, "--radiation", "neutron", "--wavelength", "1.909",
                     "--json", str(tmp_path / "quick.json")]) == 0
        assert main([*common, "--instrument", str(folder / "inst_d1a.prm"),
                     "--json", str(tmp_path / "prm.json")]) == 0
    quick = json.loads((tmp_path / "quick.json").read_text())
    prm = json.loads((tmp_path / "prm.json").read_text())
    assert quick["metrics"]["rwp_total"] == pytest.approx(prm["metrics"]["rwp_total"], rel=1e-4)
    assert quick["metrics"]["rwp_total"] < 6.0
    for k in ("a", "Pb.x", "O3.y", "O1.biso", "pattern.U", "pattern.W"):
        assert quick["parameters"][k]["value"] == pytest.approx(prm["parameters"][k]["value"],
                                                                rel=1e-3, abs=1e-5)
    # published PbSO4 positions (GSAS-II joint refinement; the neutron cell is smaller)
    assert quick["parameters"]["Pb.x"]["value"] == pytest.approx(0.18754, abs=5e-4)
    assert quick["parameters"]["O3.z"]["value"] == pytest.approx(0.8093, abs=1e-3)
    assert "_atom_site_B_iso_or_equiv" in capsys.readouterr().out   # written as it was read


# -- recipes: --set on arrays of tables, no silent radiation, U or B -----------------------------
def test_set_reaches_into_arrays_of_tables():
    doc = {"patterns": [{"name": "x"}, {"name": "n", "fit_range": [1, 2]}],
           "data": {"pattern": ["a", "b"]}}
    out = apply_overrides(doc, ["patterns[1].fit_range=[10, 150]", 'data.pattern[0]="c.xye"',
                                "patterns[0].profile.U=2.5"])
    assert out["patterns"][1]["fit_range"] == [10, 150] and out["data"]["pattern"][0] == "c.xye"
    assert out["patterns"][0]["profile"] == {"U": 2.5} and doc["patterns"][0] == {"name": "x"}
    for bad, fragment in (("patterns[2].x=1", "has 2 entries"), ("patterns.x=1", "index it"),
                          ("data[0].x=1", "not an array"), ("patterns[0]=1", "whole table"),
                          ("p[x]=1", "not a dotted recipe key")):
        with pytest.raises(ValidationError, match=fragment):
            apply_overrides(doc, [bad])


RECIPE = f"""kind = "rietveld"
name = "pb"
[[phases]]
cif = "{CIF2.as_posix()}"
biso = {{"*" = 1.0, Pb = 1.5}}
uiso = {{S = 0.02}}
adp = "U"
[[patterns]]
name = "d1a"
file = "{(Path(datasets.__file__).parent / "data" / "pbso4" / "PBSO4.CWN").as_posix()}"
radiation = "neutron"
lam1 = 1.909
[model]
ties = ["pbso4.O2.biso = pbso4.O1.biso", "pbso4.O3.biso = 0.5 * pbso4.O1.biso + 0.2"]
[[stages]]
pattern = ["scale", "bkg"]
[[stages]]
structure = ["cell", "xyz", "biso"]
"""


def test_recipe_gives_uiso_or_biso_and_ties_between_b_values(tmp_path):
    path = _write(tmp_path, "pb.toml", RECIPE)
    rec = load_recipe(path, overrides=["patterns[0].fit_range=[20.0, 140.0]"])
    assert rec.settings["patterns"][0]["fit_range"] == [20.0, 140.0]
    ref = _joint(rec)
    v = ref.group.valuesdict()
    assert v["pbso4.Pb.uiso"] == pytest.approx(1.5 / B_PER_U)
    assert v["pbso4.S.uiso"] == pytest.approx(0.02)
    assert v["pbso4.O1.uiso"] == pytest.approx(1.0 / B_PER_U)
    # B(O3) = 0.5 B(O1) + 0.2  <=>  U(O3) = 0.5 U(O1) + 0.2/8π²
    assert v["pbso4.O3.uiso"] == pytest.approx(0.5 / B_PER_U + 0.2 / B_PER_U)
    ref.group["pbso4.O1.uiso"].value = 0.03
    v = ref.group.valuesdict()
    assert v["pbso4.O2.uiso"] == pytest.approx(0.03)
    assert v["pbso4.O3.uiso"] * B_PER_U == pytest.approx(0.5 * 0.03 * B_PER_U + 0.2)
    assert ref.phases[0].adp == "U" and ref.patterns[0].fit_range == (20.0, 140.0)
    assert rec.settings["stages"][1]["structure"] == ["cell", "xyz", "biso"]


@pytest.mark.parametrize("change, key, fragment", [
    ('biso = {"*" = 1.0, Pb = 1.5}', "phases[0].biso", "'Zz' is not an atom"),
    ("uiso = {S = 0.02}", "phases[0].biso", "in both uiso and biso"),
    ('radiation = "neutron"\n', "patterns[0]", "no instrument file and no radiation"),
])
def test_recipe_displacement_and_radiation_errors(tmp_path, change, key, fragment):
    text = RECIPE.replace(change, {'biso = {"*" = 1.0, Pb = 1.5}': "biso = {Zz = 1.0}",
                                   "uiso = {S = 0.02}": "uiso = {Pb = 0.02}",
                                   'radiation = "neutron"\n': ""}[change])
    with pytest.raises(RecipeError, match=fragment) as exc:
        load_recipe(_write(tmp_path, "bad.toml", text))
    assert exc.value.key == key
