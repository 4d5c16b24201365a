"""Readers and writers of sciTie.diffraction: round trips, the PbSO4 files, malformed input."""
import numpy as np
import pytest

from sciTie.diffraction import (ConstantWavelength, Phase, PowderPattern, make_pattern,
                                read_gsas_std, read_instrument, read_xye, write_gsas_std,
                                write_xye)

STD = """Test pattern
BANK 1 12 2 CONST 1000 5 0 0 STD
     100 2   200     300 3   330     400     500     600     700     800     900
    1000    1100
"""




def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_std_reader_counts_and_detectors(tmp_path):
    pat = read_gsas_std(_write(tmp_path, "t.std", STD))
    assert pat.sizes["two_theta"] == 12
    np.testing.assert_allclose(pat["two_theta"].values, 10.0 + 0.05 * np.arange(12))
    assert pat.values[1] == 200 and pat.values[3] == 330
    # variance = I / number of detectors (blank = 1)
    np.testing.assert_allclose(pat["variance"].values[:4], [100, 100, 300, 110])


def test_std_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    tth = 5 + 0.02 * np.arange(57)
    y = rng.integers(1, 90000, tth.size).astype(float)
    nc = rng.integers(1, 10, tth.size)
    pat = make_pattern(tth, y, y / nc, name="x")
    path = write_gsas_std(pat, tmp_path / "rt.gsa")
    back = read_gsas_std(path)
    np.testing.assert_allclose(back["two_theta"].values, tth, atol=1e-9)
    np.testing.assert_array_equal(back.values, y)
    np.testing.assert_allclose(back["variance"].values, y / nc)
    with pytest.raises(FileExistsError):
        write_gsas_std(pat, path)


def test_fxye_bank(tmp_path):
    text = "t\nBANK 1 3 3 CONS 1000.0 5.0 0 0 FXYE\n1000.0 10 2\n1005.0 20 4\n1010.0 30 5\n"
    pat = read_gsas_std(_write(tmp_path, "a.fxye", text))
    np.testing.assert_allclose(pat["two_theta"].values, [10.0, 10.05, 10.1])
    np.testing.assert_allclose(pat["variance"].values, [4, 16, 25])
    with pytest.raises(ValueError, match=r":4: esd must be > 0"):
        read_gsas_std(_write(tmp_path, "b.fxye", text.replace("20 4", "20 0")))
    with pytest.raises(ValueError, match=r"file ends after 2 points"):
        read_gsas_std(_write(tmp_path, "c.fxye", text.rsplit("1010", 1)[0]))


def test_xye_roundtrip(tmp_path):
    tth = np.linspace(10, 20, 11)
    pat = make_pattern(tth, tth ** 2, 0.5 + tth, name="x")
    back = read_xye(write_xye(pat, tmp_path / "a.xye"))
    np.testing.assert_allclose(back.values, pat.values)
    np.testing.assert_allclose(back["variance"].values, pat["variance"].values)
    two = read_xye(_write(tmp_path, "b.xy", "# c\n1 4\n2 9\n"))
    np.testing.assert_allclose(two["variance"].values, [4, 9])


@pytest.mark.parametrize("text, match", [
    ("title\n", "no 'BANK"),
    ("title\nBANK 1 12 2\n", "expected at least 7"),
    ("title\nBANK 1 x 2 CONST 1000 5 0 0\n", "integers"),
    ("title\nBANK 1 12 2 CONST 1000 5 0 0\n" + STD.splitlines()[2] + "\n", r":3: file ends"),
    ("title\nBANK 1 13 2 CONST 1000 5 0 0\n" + "\n".join(STD.splitlines()[2:]) + "\n",
     r":4: point 13 of NCHAN=13 is missing"),
    (STD.replace("     700", "    7a0"), r":3: non-numeric field"),
    ("title\nBANK 1 12 2 CONST 1000 0 0 0\n", "step must be > 0"),
    (STD.replace(" 2   200", "-1   200"), r":3: detector count must be >= 1"),
])
def test_std_malformed(tmp_path, text, match):
    path = _write(tmp_path, "bad.std", text)
    with pytest.raises(ValueError, match=match) as exc:
        read_gsas_std(path)
    assert str(path) in str(exc.value)


def test_xye_malformed(tmp_path):
    with pytest.raises(ValueError, match=r":2: esd must be > 0"):
        read_xye(_write(tmp_path, "z.xye", "1 2 1\n2 3 0\n"))
    with pytest.raises(ValueError, match=r":3: non-numeric"):
        read_xye(_write(tmp_path, "n.xye", "1 2\n2 3\n3 x\n"))
    with pytest.raises(ValueError, match=r":2: expected 2 columns"):
        read_xye(_write(tmp_path, "c.xye", "1 2\n2 3 4\n"))
    with pytest.raises(ValueError, match="variance must be > 0"):
        make_pattern([1, 2], [1, 1], [1, -1])


def test_prm_reader_and_bad_wavelength(tmp_path):
    text = ("INS   BANK      1\nINS   HTYPE   PXCR\n"
            "INS  1 ICONS  1.540500  1.544300       2.0         0       0.7    0       0.5\n"
            "INS  1PRCF1     3    8      0.01\n"
            "INS  1PRCF11   2.000000E+00  -2.000000E+00   5.000000E+00   0.100000E+00\n"
            "INS  1PRCF12   1.000000E+00   3.000000E+00   0.150000E-01   0.250000E-01\n")
    inst = read_instrument(_write(tmp_path, "x.prm", text))
    assert inst.kind == "cw" and inst.source_file.endswith("x.prm")
    assert inst.radiation == "xray" and inst.lam1 == 1.5405 and inst.lam2 == 1.5443
    assert inst.zero == pytest.approx(0.02) and inst.polarization == 0.7
    assert (inst.U, inst.V, inst.W, inst.P) == (2, -2, 5, 0.1)
    assert (inst.X, inst.Y, inst.SL, inst.HL) == (1, 3, 0.015, 0.025)
    # an 11-BM file: one wavelength, the fourth ICONS field left blank, polarisation 0.99
    sync = _write(tmp_path, "s.prm", "INS  1 ICONS 0.4132630    0.0000    0.0000               "
                                     "0.990    0     0.500   \n")
    inst = read_instrument(sync)
    assert inst.lam1 == 0.413263 and inst.lam2 == 0 and inst.polarization == 0.99
    bad = _write(tmp_path, "b.prm", text.replace("1.540500", "0.000000"))
    with pytest.raises(ValueError, match=r"b.prm:3: wavelength lambda1 must be > 0"):
        read_instrument(bad)


def test_cif_errors(tmp_path):
    base = ("data_t\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n"
            "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n{sym}"
            "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
            "_atom_site_fract_y\n_atom_site_fract_z\nNa1 {el} 0 0 0\n")
    nosym = _write(tmp_path, "nosym.cif", base.format(sym="", el="Na"))
    with pytest.raises(ValueError, match="no space-group symmetry") as exc:
        Phase.from_cif(nosym)
    assert "nosym.cif" in str(exc.value)
    bad = _write(tmp_path, "el.cif", base.format(sym="_symmetry_space_group_name_H-M 'F m -3 m'\n",
                                                 el="Qq"))
    with pytest.raises(ValueError, match=r"el.cif:15: atom site 1: unknown element 'Qq'"):
        Phase.from_cif(bad)
    ok = Phase.from_cif(_write(tmp_path, "ok.cif",
                               base.format(sym="_symmetry_space_group_name_H-M 'F m -3 m'\n",
                                           el="Na")))
    assert ok.group.free_names == ["a", "Na1.uiso"]     # cubic a=b=c, x,y,z fixed at 4a


def test_pattern_rejects_bad_wavelength():
    tth = np.linspace(10, 50, 100)
    pat = make_pattern(tth, np.ones_like(tth), np.ones_like(tth))
    from sciTie.diffraction.data import synthetic_phase
    with pytest.raises(ValueError, match="lam1"):
        ConstantWavelength(radiation="xray", lam1=0.0)
    with pytest.raises(ValueError, match="fit_range"):
        PowderPattern(pat, synthetic_phase(), ConstantWavelength(radiation="xray", lam1=1.54),
                      fit_range=(40, 20))


def test_pbso4_files(pbso4_dir):
    folder = pbso4_dir
    xra = read_gsas_std(folder / "PBSO4.XRA")
    cwn = read_gsas_std(folder / "PBSO4.CWN")
    assert xra.sizes["two_theta"] == 6001 and cwn.sizes["two_theta"] == 2919  # NCHAN honoured
    assert xra["two_theta"].values[[0, -1]].tolist() == [10.0, 160.0]
    assert cwn["two_theta"].values[-1] == pytest.approx(155.9)
    # D1A detector counts 1..10: sigma is not sqrt(I)
    ncount = cwn.values / cwn["variance"].values
    assert ncount.min() == pytest.approx(1) and ncount.max() == pytest.approx(10)
    assert read_instrument(folder / "inst_d1a.prm").radiation == "neutron"
