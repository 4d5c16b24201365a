"""Recipes of kind ``rietveld`` for data sciTie does not ship: files written by sciTie's own
writers, fitted through the command line, compared with the Python API."""
import json
import warnings

import numpy as np
import pytest

from sciTie.cli import main
from sciTie.diffraction import (ConstantWavelength, JointRefinement, PowderPattern,
                                SequentialRefinement, specs_from_dataset, write_xye)
from sciTie.diffraction.data import (_SYN_INSTRUMENT, load_synthetic, make_synthetic_series,
                                     synthetic_phase)

INST = _SYN_INSTRUMENT["xray"]
PATTERN = f"""
[[patterns]]
name = "xray"
file = "x.xye"
radiation = "xray"
lam1 = {INST["lam1"]}
lam2 = {INST["lam2"]}
ratio = {INST["ratio"]}
polarization = {INST["polarization"]}
geometry = "bragg-brentano"
radius = {INST["radius"]}
n_background = 3
profile = {{U = {INST["U"]}, V = {INST["V"]}, W = {INST["W"]}, X = {INST["X"]}, Y = {INST["Y"]}, SL = {INST["SL"]}, HL = {INST["HL"]}}}
"""
STAGES = """
[[stages]]
label = "scale"
pattern = ["scale", "bkg"]
[[stages]]
label = "cell"
structure = ["cell"]
pattern = ["scale", "bkg", "zero"]
[[stages]]
label = "atoms"
structure = ["cell", "xyz", "uiso"]
pattern = ["scale", "bkg", "zero"]
"""


@pytest.fixture
def files(tmp_path):
    """The synthetic X-ray pattern as xye and its (perturbed) structure as CIF."""
    write_xye(load_synthetic(0)["xray"]["intensity"], tmp_path / "x.xye")
    start = synthetic_phase({"a": 4.60, "c": 2.955, "O.x": 0.30})
    (tmp_path / "rutile.cif").write_text(start.to_cif())
    return tmp_path


def test_recipe_from_files_matches_the_python_api(files, tmp_path):
    text = 'kind = "rietveld"\nname = "rutile"\n[[phases]]\ncif = "rutile.cif"\n' \
           + PATTERN + STAGES
    (files / "fit.toml").write_text(text)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["fit", str(files / "fit.toml"), "--json", str(tmp_path / "r.json"),
                     "--out", str(out)]) == 0
    d = json.loads((tmp_path / "r.json").read_text())
    # the same fit through the Python API
    from sciTie.diffraction import Phase
    phase = Phase.from_cif(files / "rutile.cif")
    inst = ConstantWavelength(radiation="xray", geometry="bragg-brentano",
                              **{k: INST[k] for k in ("lam1", "lam2", "ratio", "polarization",
                                                      "radius", "U", "V", "W", "X", "Y", "SL",
                                                      "HL")})
    pat = PowderPattern.from_files(files / "x.xye", inst, phase, name="xray", n_background=3)
    ref = JointRefinement(phase, [pat])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref.refine_stages([("scale", {"pattern": ("scale", "bkg")}),
                           ("cell", {"structure": ("cell",), "pattern": ("zero",)}),
                           ("atoms", {"structure": ("xyz", "uiso")})])
    P = ref.parameters()
    for k in ("a", "c", "O.x", "Ti.uiso", "xray.zero"):
        assert d["parameters"][k]["value"] == pytest.approx(P[k]["value"], rel=1e-9)
        assert d["parameters"][k]["stderr"] == pytest.approx(P[k]["stderr"], rel=1e-6)
    assert {p.name for p in out.iterdir()} == {"rutile.nc", "rutile_xray.png",
                                               "rutile_TiO2.cif"}
    assert "_cell_length_a" in (out / "rutile_TiO2.cif").read_text()


def test_recipe_errors_name_the_key(files, capsys):
    bad = 'kind = "rietveld"\nname = "x"\n[[phases]]\ncif = "missing.cif"\n' + PATTERN
    (files / "bad.toml").write_text(bad)
    assert main(["fit", str(files / "bad.toml")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "phases[0].cif" in err and "missing.cif" in err
    both = 'kind = "rietveld"\nname = "x"\n[data]\ndataset = "pbso4"\n[[phases]]\ncif = "rutile.cif"\n'
    (files / "both.toml").write_text(both)
    assert main(["fit", str(files / "both.toml")]) == 2
    assert "either data.dataset or your own phases" in capsys.readouterr().err
    typo = 'kind = "rietveld"\nname = "x"\n[[phases]]\ncif = "rutile.cif"\n' + \
        PATTERN.replace("n_background", "n_backgrond")
    (files / "typo.toml").write_text(typo)
    assert main(["fit", str(files / "typo.toml")]) == 2
    assert "unknown key 'patterns.n_backgrond'" in capsys.readouterr().err


def test_series_recipe_from_files_matches_the_python_api(tmp_path):
    """Three synthetic patterns written as xye files with their temperatures in the recipe:
    the sequential refinement through the CLI equals SequentialRefinement."""
    ds = make_synthetic_series(3, seed=5)
    from sciTie.diffraction import make_pattern
    for k, label in enumerate(ds["pattern"].values):
        write_xye(make_pattern(ds["two_theta"].values, ds["intensity"].values[k],
                               ds["variance"].values[k]), tmp_path / f"{label}.xye")
    start = synthetic_phase({"a": 4.60, "c": 2.96, "O.x": 0.302})
    (tmp_path / "rutile.cif").write_text(start.to_cif())
    T = ", ".join(str(t) for t in ds["temperature"].values)
    text = ('kind = "rietveld"\nname = "series"\n[[phases]]\ncif = "rutile.cif"\n'
            + PATTERN.replace('file = "x.xye"\n', "").replace('name = "xray"', 'name = "pattern"')
            .replace(f'HL = {INST["HL"]}}}', f'HL = {INST["HL"]}, zero = {INST["zero"]}}}')
            + 'refine_zero = false\nrefine_displacement = true\n'
            + '[[stages]]\npattern = ["scale", "bkg"]\n'
            + '[[stages]]\nstructure = ["cell"]\npattern = ["scale", "bkg", "displacement"]\n'
            + '[[stages]]\nstructure = ["cell", "xyz"]\npattern = ["scale", "bkg", "displacement"]\n'
            + f'[series]\nfiles = ["S*.xye"]\ntemperatures = [{T}]\n')
    (tmp_path / "series.toml").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["fit", str(tmp_path / "series.toml"), "--json",
                     str(tmp_path / "s.json")]) == 0
    d = json.loads((tmp_path / "s.json").read_text())
    assert [e["temperature"] for e in d["sequence"]] == pytest.approx(list(ds["temperature"].values))
    from sciTie.diffraction.data import synthetic_series_recipe
    seq = SequentialRefinement(specs_from_dataset(ds), synthetic_series_recipe()).fit()
    S = seq.to_xarray()
    for k, e in enumerate(d["sequence"]):
        for name in ("TiO2.a", "TiO2.c", "pattern.shift"):
            v = float(S["value"].sel(param=name).values[k])
            s = float(S["stderr"].sel(param=name).values[k])
            assert e["parameters"][name]["value"] == pytest.approx(v, abs=1e-3 * s)
    assert np.all(np.array([e["gof"] for e in d["sequence"]]) < 1.1)


def test_shared_flag_means_the_key_of_the_recipes_kind(capsys):
    """``--mode`` is series.mode for a rietveld recipe (and model.mode for a pinn one)."""
    assert main(["fit", "cucr2o4-seq", "--mode", "sideways"]) == 2
    err = capsys.readouterr().err
    assert "series.mode" in err and "model.mode" not in err
