"""Time-of-flight patterns: the profile against direct convolution, exact derivatives, tails,
calibration and Lorentz factor, instrument and data files, and joint TOF + X-ray refinement."""
import math
import warnings

import numpy as np
import pytest
import scipy.special as sc
from diffraction_checks import fd_check
from scipy.integrate import quad

from sciTie.diffraction import (Atom, ConstantWavelength, JointRefinement, Phase, PowderPattern,
                                TimeOfFlight, lost_fraction, make_pattern, read_data,
                                read_gsas_std, read_instrument, tof_peak)
from sciTie.diffraction.data import synthetic_phase
from sciTie.diffraction.profiles.tof import exp_e1, pulse_tail_length
from sciTie.errors import DataFormatError, ValidationError


def _convolution(x, alpha, beta, fwhm, eta):
    """Back-to-back exponentials ⊗ unit-area pseudo-Voigt (textbook Gaussian and Lorentzian
    of FWHM ``fwhm``) by adaptive quadrature over the support of the exponentials."""
    N = alpha * beta / (alpha + beta)
    s2 = fwhm ** 2 / (8 * math.log(2))
    g = fwhm / 2

    def pv(t):
        return (eta * g / (math.pi * (t * t + g * g))
                + (1 - eta) * math.exp(-t * t / (2 * s2)) / math.sqrt(2 * math.pi * s2))
    pts = sorted({0.0, x})
    lo, hi = -60.0 / alpha, 60.0 / beta        # beyond, the exponentials are below e^-60
    edges = [lo] + [p for p in pts if lo < p < hi] + [hi]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        total += quad(lambda u: N * (math.exp(alpha * u) if u < 0 else math.exp(-beta * u))
                      * pv(x - u), a, b, limit=400, epsabs=1e-15, epsrel=1e-12)[0]
    return total


def test_exp_e1_matches_scipy_across_the_plane():
    zs = [complex(a, b) for a in (-700.0, -60.0, -39.0, -20.0, -7.0, -0.5, 0.2, 3.9, 4.1, 15.0,
                                  39.0, 41.0, 300.0) for b in (1e-4, 0.05, 1.0, 6.0, 30.0, 200.0)]
    for z in zs:
        ref = np.exp(z) * sc.exp1(z)
        assert abs(exp_e1(z) - ref) <= 1e-12 * abs(ref), z


@pytest.mark.parametrize("eta", [0.0, 0.35, 1.0])
def test_tof_peak_is_the_convolution_of_pulse_and_pseudo_voigt(eta):
    alpha, beta, fwhm = 0.6, 0.05, 20.0
    x = np.array([-120.0, -30.0, -5.0, 0.0, 7.0, 40.0, 150.0, 400.0])
    got = tof_peak(x, alpha, beta, fwhm, eta)[0]
    ref = np.array([_convolution(t, alpha, beta, fwhm, eta) for t in x])
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-13)


def test_tof_peak_has_unit_area_up_to_the_tails_it_leaves_out():
    alpha, beta, fwhm, eta = 0.6, 0.05, 20.0, 0.35
    lo, hi = -3000.0, 6000.0
    area = quad(lambda t: tof_peak(np.array([t]), alpha, beta, fwhm, eta)[0][0], lo, hi,
                points=[0.0], limit=2000, epsabs=1e-12)[0]
    # outside: the Lorentzian tails (the pulse has moved them by its mean, a few µs)
    outside = 0.5 * eta * (lost_fraction(-lo / fwhm, 1.0) + lost_fraction(hi / fwhm, 1.0))
    assert 1.0 - area == pytest.approx(outside, rel=0.02)


def test_tof_peak_derivatives_match_finite_differences():
    x = np.linspace(-200.0, 500.0, 141)
    args = [x, 0.8, 0.04, 25.0, 0.3]
    value, *derivs = tof_peak(*args)
    for k, d in enumerate(derivs):
        h = 1e-6 if k == 0 else 1e-6 * args[k]
        up, dn = list(args), list(args)
        up[k] = up[k] + h
        dn[k] = dn[k] - h
        fd = (tof_peak(*up)[0] - tof_peak(*dn)[0]) / (2 * h)
        assert np.abs(fd - d).max() < 1e-6 * np.abs(d).max(), k


def _tof_instrument(**kw):
    values = dict(two_theta=90.0, difc=5000.0, difa=-2.0, difb=3.0, zero=5.0, alpha=0.8,
                  beta0=0.03, beta1=0.01, betaq=0.002, sig0=5.0, sig1=30.0, sig2=2.0, sigq=1.0,
                  X=1.0, Y=0.5, Z=0.3)
    values.update(kw)
    return TimeOfFlight(**values)


def _tof_grid(lo=4000.0, hi=9000.0, step=4.0):
    t = np.arange(lo, hi, step)
    return make_pattern(t, np.ones_like(t), np.ones_like(t), axis="tof")


def test_tof_jacobian_matches_finite_differences_for_every_slot():
    """Every local column (cell, atoms, calibration, every width term, size, strain,
    background points and a background peak) against central differences."""
    inst = _tof_instrument(X=0.2, Y=0.1, Z=0.05)
    pat = PowderPattern(_tof_grid(5500.0, 7200.0, 6.0), synthetic_phase(), inst,
                        background_points=[2000.0, 6000.0, 13000.0],
                        background_peaks=[(7000.0, 5e4, 400.0, 20.0)], tail_tolerance=1e-2,
                        phase_values={"TiO2": {"size": 5.0, "mustrain": 100.0}})
    v = pat.local_vector()
    v[pat.layout.atoms[0]].reshape(-1, 5)[1, :3] = [0.31, 0.29, 0.02]
    v[pat.layout.columns()["scale"]] = 1e4
    v[pat.layout.bkg] = [10.0, 20.0, 5.0]
    checked = {n.split(".")[-1].split("[")[0]
               for n in fd_check(pat, v, pat.local_names(), 1e-5)}
    assert set(TimeOfFlight.params) <= checked
    assert {"a", "c", "x", "uiso", "occ", "scale", "size", "mustrain", "bkg", "pos", "area",
            "sigma2", "gamma", "D11", "D33"} <= checked


def _si(a=5.4315, uiso=0.0067):
    return Phase("Si", (a, a, a, 90, 90, 90), "F d -3 m:2",
                 [Atom("Si", "Si", (0.125, 0.125, 0.125), uiso=uiso)])


def test_positions_and_integrated_intensities_follow_calibration_and_lorentz_factor():
    """Each isolated Si peak sits at zero + difc d + difa d² + difb/d and holds
    scale · m · |F|² · sin θ · d⁴ / V² (GSAS-II's TOF Lorentz factor), computed here from
    the structure factors alone."""
    inst = _tof_instrument(X=0.0, Y=0.0, Z=0.0, beta0=0.1, beta1=0.0, betaq=0.0, sig1=10.0,
                           sig2=0.0, sigq=0.0, sig0=2.0)
    t = np.arange(4000.0, 16000.0, 1.0)
    pat = PowderPattern(make_pattern(t, np.ones_like(t), np.ones_like(t), axis="tof"), _si(),
                        inst, n_background=0, tail_tolerance=0.0)
    pat.group["scale"].value = 1e6
    y, _, info = pat.evaluate(pat.local_vector(), grad=False, peaks=True)
    ph = pat.phase
    d = 1 / np.sqrt(info["phases"]["Si"]["q"])
    pos = 5.0 + 5000.0 * d - 2.0 * d ** 2 + 3.0 / d
    np.testing.assert_allclose(info["phases"]["Si"]["pos"], pos, rtol=1e-12)
    q = info["phases"]["Si"]["q"]
    hkl, mult = info["phases"]["Si"]["hkl"], info["phases"]["Si"]["mult"]
    F2, _, _ = ph.structure_factor2(hkl, q, np.array([[0.125, 0.125, 0.125, 0.0067, 1.0]]),
                                    ph.scattering("neutron", 1.0), grad=False)
    expected = 1e6 * mult * F2 * math.sin(math.radians(45.0)) * d ** 4 / 5.4315 ** 6
    # the 111, 220 and 311 peaks are far apart: integrate each over ±150 µs
    for k in np.argsort(-d)[:3]:
        sel = np.abs(t - pos[k]) < 150.0
        assert np.trapezoid(y[sel], t[sel]) == pytest.approx(expected[k], rel=2e-3)


@pytest.mark.parametrize("tolerance", [1e-2, 1e-3])
def test_tof_peak_loses_less_than_the_tolerance(tolerance):
    """One reflection (primitive cubic, d = 2.5 Å; 110 lies below the reach of the range):
    the pattern's integral falls short of its intensity by less than the tolerance, and by
    about what the exact evaluation (no windows) leaves outside the data."""
    ph = Phase("Ni", (2.5, 2.5, 2.5, 90, 90, 90), "P m -3 m", [Atom("Ni", "Ni", (0, 0, 0))])
    inst = TimeOfFlight(two_theta=90.0, difc=5000.0, alpha=0.8, beta0=0.03, sig0=5.0,
                        sig1=30.0, sig2=2.0, Z=0.5)
    data = make_pattern(*(np.arange(10700.0, 14500.0, 0.5),) * 3, axis="tof")
    pat = PowderPattern(data, ph, inst, n_background=0, tail_tolerance=tolerance)
    y, _, info = pat.evaluate(pat.local_vector(), grad=False, peaks=True)
    assert len(info["refl_I"]) == 1 and info["refl_pos"][0] == pytest.approx(12500.0)
    pos, window = info["refl_pos"][0], pat.windows.w_rows[0]
    assert pat.x[0] < pos - window and pos + window < pat.x[-1]
    assert pat._rows(pat.local_vector(), False)["eta"][0] > 0.01     # a Lorentzian part
    lost = 1.0 - np.trapezoid(y, pat.x) / info["refl_I"][0]
    assert 0 <= lost < tolerance
    exact = PowderPattern(data, ph, inst, n_background=0, tail_tolerance=0.0)
    ye, _ = exact.evaluate(exact.local_vector(), grad=False)
    assert np.abs(y - ye).max() < tolerance * ye.max()


def test_pulse_tail_length_is_where_the_exponentials_keep_the_tolerance():
    a, b, tol = 0.5, 0.05, 1e-3
    D = pulse_tail_length(a, b, tol)
    assert max(b / (a + b) * np.exp(-a * D), a / (a + b) * np.exp(-b * D)) == \
        pytest.approx(tol)


INSTPRM = """#GSAS-II instrument parameter file; do not add/delete items!
Type:PNT
Bank:1.0
fltPath:22.2
2-theta:144.845
difC:7476.91
difA:-1.54
difB:0.0
Zero:-9.29
alpha:0.5971
beta-0:0.04221
beta-1:0.00946
beta-q:0.0
sig-0:4.2
sig-1:45.8
sig-2:1.1
sig-q:0.0
X:0.0
Y:0.0
Z:0.0
Azimuth:0.0
"""

TOF_PRM = """            123456789012345678901234567890123456789012345678901234567890
INS   BANK      1
INS   HTYPE   PNTR
INS  1 ICONS   7476.91     -1.54     -9.29
INS  1BNKPAR    2.2000   144.845    0.0000    0.0000    0.2000    1    1
INS  1PRCF1     3   21   0.00200
INS  1PRCF11   0.597100E+00   0.422100E-01   0.946000E-02   0.000000E+00
INS  1PRCF12   0.458000E+02   0.110000E+01   0.000000E+00   0.000000E+00
"""


def test_instrument_files_for_time_of_flight(tmp_path):
    (tmp_path / "si.instprm").write_text(INSTPRM)
    inst = read_instrument(tmp_path / "si.instprm")
    assert isinstance(inst, TimeOfFlight) and inst.source_file.endswith("si.instprm")
    assert (inst.difc, inst.difa, inst.zero, inst.two_theta) == (7476.91, -1.54, -9.29, 144.845)
    assert (inst.alpha, inst.beta0, inst.beta1, inst.sig0, inst.sig1, inst.sig2) == \
        (0.5971, 0.04221, 0.00946, 4.2, 45.8, 1.1)
    (tmp_path / "si.prm").write_text(TOF_PRM)
    gsas = read_instrument(tmp_path / "si.prm")
    assert isinstance(gsas, TimeOfFlight) and gsas.flight_path == 2.2
    for n in ("difc", "difa", "zero", "two_theta", "alpha", "beta0", "beta1", "sig1", "sig2"):
        assert getattr(gsas, n) == pytest.approx(getattr(inst, n)), n
    assert gsas.sig0 == 0.0       # as GSAS-II: sig-0 of a type-3 function starts at 0
    # a constant-wavelength .instprm is the other profile
    (tmp_path / "cw.instprm").write_text("Type:PXC\nLam1:1.5405\nLam2:1.5443\nI(L2)/I(L1):0.5\n"
                                         "Zero:0.01\nPolariz.:0.7\nU:2.0\nV:-2.0\nW:5.0\nX:1.0\n"
                                         "Y:3.0\nZ:0.0\nSH/L:0.002\n")
    cw = read_instrument(tmp_path / "cw.instprm")
    assert isinstance(cw, ConstantWavelength) and cw.geometry == "bragg-brentano"
    assert (cw.lam1, cw.lam2, cw.zero, cw.polarization, cw.SL, cw.HL) == \
        (1.5405, 1.5443, 0.01, 0.7, 0.001, 0.001)


@pytest.mark.parametrize("text, line, fragment", [
    (INSTPRM.replace("difC:7476.91\n", ""), None, "needs ['difC']"),
    (INSTPRM.replace("Type:PNT", "Type:PXX"), 2, "Type 'PXX'"),
    (INSTPRM.replace("alpha:0.5971", "alpha:abc"), 10, "alpha must be a number"),
    (INSTPRM.replace("difC:7476.91", "difC:-5"), None, "difc must be > 0"),
    (INSTPRM.replace("Zero:-9.29", "Zero -9.29"), 9, "expected 'name:value'"),
    ("#BANK 1: x\nType:PNT\n", None, "needs"),
    ("# nothing\n", None, "no 'name:value' lines"),
])
def test_bad_instprm_files_name_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "bad.instprm"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=fragment.replace("[", r"\[").replace("]", r"\]")) \
            as err:
        read_instrument(path)
    assert err.value.path == str(path) and err.value.line == line


def test_gsas_prm_tof_profile_types_and_errors(tmp_path):
    path = tmp_path / "t4.prm"
    path.write_text(TOF_PRM.replace("PRCF1     3", "PRCF1     4"))
    assert read_instrument(path).sig1 == 0.0       # type 4: the 4th PRCF11 field
    path.write_text(TOF_PRM.replace("PRCF1     3", "PRCF1     2"))
    with pytest.raises(DataFormatError, match="profile type 2 is not supported"):
        read_instrument(path)
    path.write_text(TOF_PRM.replace("INS  1BNKPAR", "INS  1XXXXXX"))
    with pytest.raises(DataFormatError, match="BNKPAR"):
        read_instrument(path)


def test_tof_data_files(tmp_path):
    """xye/xys columns on the TOF axis; GSAS SLOG banks (FXYE and STD)."""
    t = 3000.0 * 1.0005 ** np.arange(50)
    y = 100 + 10 * np.sin(np.arange(50))
    xys = tmp_path / "p.xys"
    xys.write_text("\n".join(f"{a:.6f} {b:.3f} {np.sqrt(b):.4f}" for a, b in zip(t, y)))
    pat = read_data(xys, axis="tof")
    assert pat.dims == ("tof",) and np.allclose(pat["tof"].values, t, rtol=1e-9)
    bank = f"BANK 1 50 50 SLOG {t[0]:.4f} {t[-1]:.4f} 0.0005 0"
    fxye = tmp_path / "p.gsa"
    fxye.write_text("title\n" + bank + " FXYE\n"
                    + "\n".join(f"{a:.6f} {b:.3f} {np.sqrt(b):.4f}" for a, b in zip(t, y)) + "\n")
    g = read_gsas_std(fxye)
    assert g.dims == ("tof",) and np.allclose(g["tof"].values, t, rtol=1e-9)
    std = tmp_path / "p.gss"
    recs = ["".join(f"  {int(v):6d}" for v in y[i:i + 10]) for i in range(0, 50, 10)]
    std.write_text("title\n" + bank + " STD\n" + "\n".join(recs) + "\n")
    s = read_gsas_std(std)
    np.testing.assert_allclose(s["tof"].values, t, rtol=1e-9)
    np.testing.assert_allclose(s.values, np.floor(y))
    with pytest.raises(DataFormatError, match="expected 2theta data"):
        read_data(fxye, axis="two_theta")
    with pytest.raises(DataFormatError, match="not positive"):
        xys.write_text("-5 1 1\n1 1 1\n")
        read_data(xys, axis="tof")


@pytest.mark.slow
def test_joint_tof_and_xray_refinement_recovers_the_structure():
    """Poisson patterns of rutile TiO2 from one structure, an X-ray (Cu Kα) and a
    time-of-flight neutron pattern; both refined from a structure 1 % off: the truth is
    recovered within 3 esd and the joint esds are smaller than each pattern's alone."""
    truth = {"a": 4.5937, "c": 2.9587, "O.x": 0.30478, "Ti.uiso": 0.0060, "O.uiso": 0.0080}
    rng = np.random.default_rng(7)
    xray_inst = ConstantWavelength(radiation="xray", lam1=1.5406, U=3.0, V=-2.0, W=4.0, X=3.0,
                                   Y=2.0)
    tof_inst = TimeOfFlight(two_theta=150.0, difc=9000.0, alpha=0.6, beta0=0.04,
                            beta1=0.008, sig0=4.0, sig1=40.0, sig2=1.0)
    grids = {"xray": make_pattern(*(np.arange(20.0, 100.0, 0.05),) * 3),
             "tof": _tof_grid(6000.0, 16000.0, 8.0)}
    insts = {"xray": xray_inst, "tof": tof_inst}
    data = {}
    for key in ("xray", "tof"):
        pat = PowderPattern(grids[key], synthetic_phase(truth), insts[key], name=key,
                            n_background=2)
        pat.group["scale"].value = {"xray": 5e4, "tof": 3e5}[key]
        pat.group["bkg"].value = [100.0, 5.0]
        y, _ = pat.calc()
        counts = rng.poisson(y).astype(float)
        data[key] = make_pattern(pat.x, counts, np.maximum(counts, 1.0), axis=pat.instrument.axis)

    def refine(keys):
        phase = synthetic_phase({"a": 4.62, "c": 2.945, "O.x": 0.30, "Ti.uiso": 0.009,
                                 "O.uiso": 0.011})
        pats = [PowderPattern(data[k], phase, insts[k], name=k, n_background=2) for k in keys]
        ref = JointRefinement(phase, pats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref.refine_stages([("scale", {"pattern": ("scale", "bkg")}),
                               ("cell", {"structure": ("cell",), "pattern": ("scale", "bkg")}),
                               ("atoms", {"structure": ("cell", "xyz", "uiso"),
                                          "pattern": ("scale", "bkg")})])
        return ref.parameters()

    joint = refine(["xray", "tof"])
    for name, value in truth.items():
        assert abs(joint[name]["value"] - value) < 3 * joint[name]["stderr"], name
    alone = refine(["tof"])
    assert joint["O.x"]["stderr"] < alone["O.x"]["stderr"]
    assert joint["Ti.uiso"]["stderr"] < alone["Ti.uiso"]["stderr"]


def test_tof_pattern_arguments():
    with pytest.raises(ValidationError, match="'tof' and 'variance' coordinates"):
        PowderPattern(make_pattern(*(np.arange(20.0, 30.0, 0.1),) * 3), synthetic_phase(),
                      _tof_instrument())
    with pytest.raises(ValidationError, match=r"fit_range must be \(tof lo, hi\)"):
        PowderPattern(_tof_grid(), synthetic_phase(), _tof_instrument(), fit_range=(-5, 100))
    with pytest.raises(ValidationError, match="n_background .* or background_points"):
        PowderPattern(_tof_grid(), synthetic_phase(), _tof_instrument(), n_background=3,
                      background_points=[1, 2])
    with pytest.raises(ValidationError, match="no reflection of TiO2.*TOF = "):
        PowderPattern(_tof_grid(20000.0, 21000.0, 5.0), synthetic_phase(), _tof_instrument())


@pytest.mark.slow
def test_si_tof_recipe_matches_easydiffraction(tmp_path, si_tof_dir, monkeypatch):
    """``scitie fit si-tof``: reduced χ² at or below EasyDiffraction's 3.19 and the cell
    within 3 esd of 5.4315 Å; with EasyDiffraction's free parameters alone 3.215 (the
    convention gap documented in sciTie.diffraction._si_tof)."""
    import json

    from sciTie.cli import main

    monkeypatch.setenv("SCITIE_DATA_DIR", str(si_tof_dir.parent))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["fit", "si-tof", "--json", str(tmp_path / "si.json")]) == 0
    d = json.loads((tmp_path / "si.json").read_text())
    m, p = d["metrics"], d["parameters"]
    assert m["reduced_chi2"] <= 3.19 and m["n_points"] == 5600 and m["n_free"] == 14
    assert m["reduced_chi2_easydiffraction_parameters"] == pytest.approx(3.215, abs=0.005)
    assert abs(p["a"]["value"] - 5.4315) < 3 * p["a"]["stderr"]
    assert 0.45 < 8 * np.pi ** 2 * p["Si.uiso"]["value"] < 0.6      # B_iso (Å²)


def test_si_tof_dataset_loads_with_its_instrument(si_tof_dir):
    """The registry entry and loader: 5600 points on the TOF axis, EasyDiffraction's
    instrument in attrs, the pattern built from them at EasyDiffraction's start."""
    from sciTie import datasets
    from sciTie.diffraction.data import SI_TOF_INSTRUMENT, load_si_tof, si_tof_refinement

    assert "si-tof" in datasets.list_datasets()
    ds = load_si_tof(si_tof_dir)
    assert ds["intensity"].dims == ("tof",) and ds.sizes["tof"] == 5600
    assert ds["tof"].values[[0, -1]].tolist() == [2000.0, 29995.0]
    assert ds.attrs["profile"] == "tof" and ds.attrs["difc"] == SI_TOF_INSTRUMENT["difc"]
    ref = si_tof_refinement(data=ds)
    pat = ref.patterns[0]
    assert isinstance(pat.instrument, TimeOfFlight) and pat.n_background == 7
    assert pat.group["bkg"].value.tolist() == [200.0] * 7
    assert pat.reflections_in_range()["Si"] > 100


@pytest.mark.parametrize("how", ["instprm", "values"])
def test_tof_recipe_from_files(tmp_path, how):
    """A ``rietveld`` recipe with a TOF pattern (xye on the TOF axis) and its instrument from
    an ``.instprm`` file or from ``instrument_type = "tof"`` and profile values: the cell of
    the Poisson data is recovered within 3 esd, through the command line."""
    import json

    from sciTie.cli import main
    from sciTie.diffraction import write_xye

    inst = TimeOfFlight(two_theta=144.845, difc=7476.91, difa=-1.54, zero=-9.29, alpha=0.5971,
                        beta0=0.04221, beta1=0.00946, sig0=4.2, sig1=45.8, sig2=1.1)
    pat = PowderPattern(_tof_grid(6000.0, 16000.0, 8.0), synthetic_phase(), inst,
                        n_background=2)
    pat.group["scale"].value = 2e5
    pat.group["bkg"].value = [50.0, 5.0]
    y, _ = pat.calc()
    counts = np.random.default_rng(3).poisson(y).astype(float)
    write_xye(make_pattern(pat.x, counts, np.maximum(counts, 1.0), axis="tof"),
              tmp_path / "t.xye")
    (tmp_path / "rutile.cif").write_text(synthetic_phase({"a": 4.60, "c": 2.955}).to_cif())
    if how == "instprm":
        (tmp_path / "t.instprm").write_text(INSTPRM)
        instrument = 'instrument = "t.instprm"'
    else:
        values = ", ".join(f"{k} = {getattr(inst, k)}" for k in
                           ("two_theta", "difc", "difa", "zero", "alpha", "beta0", "beta1",
                            "sig0", "sig1", "sig2"))
        instrument = f'instrument_type = "tof"\nprofile = {{{values}}}'
    (tmp_path / "fit.toml").write_text(
        'kind = "rietveld"\nname = "tof"\n[[phases]]\ncif = "rutile.cif"\n'
        f'[[patterns]]\nname = "bank"\nfile = "t.xye"\n{instrument}\nn_background = 2\n'
        '[[stages]]\npattern = ["scale", "bkg"]\n'
        '[[stages]]\nstructure = ["cell"]\npattern = ["scale", "bkg"]\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["fit", str(tmp_path / "fit.toml"), "--json", str(tmp_path / "r.json")]) \
            == 0
    p = json.loads((tmp_path / "r.json").read_text())["parameters"]
    for name, true in (("a", 4.5937), ("c", 2.9587)):
        assert abs(p[name]["value"] - true) < 3 * p[name]["stderr"], name
