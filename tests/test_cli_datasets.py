"""The scitie command line and the dataset registry (model-independent parts)."""
import json
import shutil
import subprocess

import pytest
import xarray as xr

import sciTie
from sciTie import RunSummary, datasets
from sciTie.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert sciTie.__version__ in capsys.readouterr().out


def test_console_script_is_installed():
    exe = shutil.which("scitie")
    assert exe is not None, "the `scitie` console script is not on PATH (pip install -e .)"
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and sciTie.__version__ in proc.stdout


def test_datasets_listing(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in datasets.list_datasets():
        assert name in out
    assert "SCITIE_DATA_DIR" in out  # external data say where they are looked for


def test_every_dataset_has_a_bundled_recipe_and_every_recipe_validates():
    from sciTie.recipes import bundled_recipes, load_recipe

    recipes = bundled_recipes()
    assert set(datasets.list_datasets()) <= set(recipes)
    for name in recipes:
        recipe = load_recipe(name) if name != "pbso4" else None
        assert recipe is None or recipe.name == name


def test_unknown_dataset_is_a_clear_error(capsys):
    assert main(["fit", "no-such-data"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe or dataset 'no-such-data'" in err and "earthquakes" in err
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("no-such-data")
    with pytest.raises(TypeError, match="must be a str"):
        datasets.get_entry(3)


def test_external_dataset_missing_says_where_to_look(monkeypatch, tmp_path):
    monkeypatch.setenv("SCITIE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "_checkout_mirror", lambda: None)
    # bundled data need no data folder
    assert (datasets.data_dir("pbso4") / "PBSO4.XRA").is_file()
    with sciTie.config_context(offline=True, cache_dir=tmp_path / "cache"):
        with pytest.raises(OSError, match="SCITIE_DATA_DIR") as exc:
            datasets.data_dir("cucr2o4-seq")
        assert str(tmp_path / "cucr2o4_seq") in str(exc.value)
        assert "SeqTut.zip" in str(exc.value)          # the URL it would come from
        (tmp_path / "cucr2o4_seq").mkdir()
        for f in datasets.REMOTE["cucr2o4_seq"]:
            (tmp_path / "cucr2o4_seq" / f.name).write_text("")
        assert datasets.data_dir("cucr2o4-seq") == tmp_path / "cucr2o4_seq"
        assert datasets.data_dir("cucr2o4-seq", path=tmp_path) == tmp_path / "cucr2o4_seq"


def _summary():
    ds = xr.Dataset({"v": ("x", [1.0, 2.0])})
    return RunSummary(dataset="toy", model="m", seconds=0.5, metrics={"rel_l2": 0.1, "bad": float("nan")},
                      parameters={"a": {"value": 1.0, "stderr": 0.1}}, report="r",
                      datasets={"result": ds},
                      figures={"plot": lambda p: p.write_bytes(b"\x89PNG fake")})


def test_summary_json_and_files_are_never_overwritten(tmp_path):
    s = _summary()
    path = s.write_json(tmp_path / "s.json")
    data = json.loads(path.read_text())
    assert set(data) == {"dataset", "model", "seconds", "metrics", "parameters"}
    assert data["metrics"]["bad"] is None  # NaN is not JSON: written as null
    written = s.write(tmp_path / "out")
    assert sorted(p.name for p in written) == ["plot.png", "result.nc"]
    before = (tmp_path / "out" / "plot.png").read_bytes()
    (tmp_path / "out" / "plot.png").write_bytes(b"user's own file")
    with pytest.raises(FileExistsError, match="plot.png"):
        s.write(tmp_path / "out")
    assert (tmp_path / "out" / "plot.png").read_bytes() == b"user's own file"
    s.write(tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / "plot.png").read_bytes() == before
    assert xr.load_dataset(tmp_path / "out" / "result.nc")["v"].values.tolist() == [1.0, 2.0]


def test_a_fit_imports_its_own_kind_only():
    """`scitie fit TARGET` builds its parser from the target's kind alone (importing every
    model costs seconds of CPU: torch, hmmlearn); help, a flag of another kind or a target
    whose kind cannot be read still get the whole command line."""
    import sys

    from sciTie.cli import _fit_kinds

    code = ("import sys; from sciTie.cli import _fit_kinds; "
            "k = _fit_kinds(['fit', 'pbso4', '--json', 'x.json', '--quick']); "
            "print(sorted(k), 'torch' in sys.modules, 'hmmlearn' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["['rietveld']", "False", "False"]
    assert sorted(_fit_kinds(["fit", "hmm", "--states", "3"])) == ["hmm"]
    assert sorted(_fit_kinds(["fit", "--out=res", "cucr2o4-seq", "--mode", "parametric"])) \
        == ["rietveld"]
    for argv in (["fit", "pbso4", "--states", "3"],    # a flag of the hmm kind
                 ["fit", "--states", "3", "hmm"],      # a kind's flag before the target
                 ["fit", "pbso4", "--help"], ["fit", "-h"], ["fit", "no-such-recipe"],
                 ["datasets"], ["fit"], []):
        assert _fit_kinds(argv) is None, argv
