"""Errors, configuration, atomic writes and provenance: the pieces every model shares."""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sciTie
from sciTie import errors, io
from sciTie.provenance import provenance


# ---------------------------------------------------------------- errors
def test_not_fitted_error_is_also_sklearns():
    from sklearn.exceptions import NotFittedError as SkNotFitted

    exc = errors.not_fitted(object(), "predict")
    assert isinstance(exc, SkNotFitted) and isinstance(exc, errors.SciTieError)
    assert isinstance(exc, ValueError) and isinstance(exc, AttributeError)
    assert "call fit()" in str(exc)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and str(again) == str(exc)


def test_data_format_error_names_file_line_and_key_and_pickles():
    exc = errors.DataFormatError("intensity is NaN; expected a finite number", path="a.xye",
                                 line=12, key="intensity")
    assert str(exc).startswith("a.xye:12 [intensity]: ")
    assert isinstance(exc, ValueError)
    back = pickle.loads(pickle.dumps(exc))
    assert (back.path, back.line, back.key, str(back)) == ("a.xye", 12, "intensity", str(exc))
    assert issubclass(errors.RecipeError, errors.DataFormatError)
    assert issubclass(errors.CheckpointError, errors.DataFormatError)
    assert issubclass(errors.OutputExistsError, FileExistsError)


# ---------------------------------------------------------------- configuration
def test_config_precedence_explicit_then_environment_then_default(monkeypatch):
    monkeypatch.delenv("SCITIE_BUDGET", raising=False)
    monkeypatch.delenv("SCITIE_PINN_BUDGET", raising=False)
    assert sciTie.get_config()["budget"] == 1.0
    monkeypatch.setenv("SCITIE_PINN_BUDGET", "0.25")
    assert sciTie.get_config()["budget"] == 0.25
    with sciTie.config_context(budget=3):
        assert sciTie.get_config()["budget"] == 3.0
        with sciTie.config_context(hmm_threads=2):
            assert sciTie.get_config()["hmm_threads"] == 2
            assert sciTie.get_config()["budget"] == 3.0
        assert sciTie.get_config()["hmm_threads"] == 1
    assert sciTie.get_config()["budget"] == 0.25


def test_one_setting_is_what_the_whole_configuration_says(monkeypatch):
    from sciTie._config import get_setting

    monkeypatch.setenv("SCITIE_HMM_THREADS", "3")
    for ctx in ({}, {"hmm_threads": 2, "budget": 0.5}):
        with sciTie.config_context(**ctx):
            whole = sciTie.get_config()
            assert {name: get_setting(name) for name in whole} == whole
    assert get_setting("hmm_threads") == 3
    with pytest.raises(sciTie.errors.ValidationError, match="unknown setting 'hmm_thread'"):
        get_setting("hmm_thread")


def test_config_context_restores_after_an_error():
    before = sciTie.get_config()
    with pytest.raises(RuntimeError):
        with sciTie.config_context(progress=True):
            raise RuntimeError("boom")
    assert sciTie.get_config() == before


@pytest.mark.parametrize("kwargs, match", [
    ({"budget": 0}, "budget"), ({"budget": "x"}, "budget"), ({"budget": float("nan")}, "budget"),
    ({"n_threads": 0}, "n_threads"), ({"n_threads": 1.5}, "n_threads"),
    ({"hmm_threads": -1}, "hmm_threads"), ({"progress": "maybe"}, "progress"),
    ({"data_dir": 3}, "data_dir"), ({"budget": True}, "budget"),
])
def test_config_rejects_bad_values_naming_the_setting(kwargs, match):
    with pytest.raises(errors.ValidationError, match=match):
        with sciTie.config_context(**kwargs):
            pass


def test_config_rejects_unknown_settings_and_bad_environment(monkeypatch):
    with pytest.raises(errors.ValidationError, match="unknown setting 'budjet'"):
        with sciTie.config_context(budjet=2):
            pass
    monkeypatch.setenv("SCITIE_HMM_THREADS", "lots")
    with pytest.raises(errors.ValidationError, match="SCITIE_HMM_THREADS"):
        sciTie.get_config()


# ---------------------------------------------------------------- atomic writes
def test_write_refuses_existing_file_unless_overwrite(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("precious")
    with pytest.raises(errors.OutputExistsError, match="already exists"):
        io.write_json(target, {"a": 1})
    assert target.read_text() == "precious"
    io.write_json(target, {"a": np.float64(1.5), "b": float("nan"), "c": np.arange(2)},
                  overwrite=True)
    assert json.loads(target.read_text()) == {"a": 1.5, "b": None, "c": [0, 1]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_write_into_new_folder_and_refuse_folder_target(tmp_path):
    io.write_text(tmp_path / "a" / "b" / "c.txt", "x")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "x"
    with pytest.raises(IsADirectoryError, match="is a folder"):
        io.write_text(tmp_path / "a", "x", overwrite=True)
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        io.write_text(tmp_path / "f" / "x.txt", "x")


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "result.nc"
    xr.Dataset({"v": ("i", np.arange(3.0))}).to_netcdf(target)
    before = target.read_bytes()

    class Exploding:
        def to_netcdf(self, path):
            Path(path).write_bytes(b"half a file")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.write_netcdf(Exploding(), target, overwrite=True)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.nc"]


def test_no_overwrite_is_atomic_against_a_file_appearing_meanwhile(tmp_path):
    target = tmp_path / "x.txt"
    with pytest.raises(errors.OutputExistsError):
        with io.atomic_open(target) as fh:
            fh.write("mine")
            target.write_text("someone else's")  # appears while we write
    assert target.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_check_targets_reports_duplicates_and_bad_paths(tmp_path):
    with pytest.raises(errors.ValidationError, match="twice"):
        io.check_targets([tmp_path / "a", tmp_path / "a"])
    with pytest.raises(errors.ValidationError, match="path"):
        io.check_targets([3])
    with pytest.raises(errors.ValidationError, match="NUL"):
        io.check_targets(["a\x00b"])


def test_save_figure_atomic(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    out = io.save_figure(fig, tmp_path / "f.png")
    plt.close(fig)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(errors.OutputExistsError):
        io.save_figure(fig, tmp_path / "f.png")


# ---------------------------------------------------------------- provenance
def test_provenance_records_version_settings_seed_and_input_checksums(tmp_path):
    import hashlib

    data = tmp_path / "in.csv"
    data.write_bytes(b"t,rate\n0,1\n")
    attrs = provenance(model="M", settings={"n": np.int64(3), "path": data}, seed=7,
                       inputs=[data])
    assert attrs["sciTie_version"] == sciTie.__version__
    assert json.loads(attrs["settings"]) == {"n": 3, "path": str(data)}
    assert json.loads(attrs["random_seed"]) == 7
    (rec,) = json.loads(attrs["inputs"])
    assert rec["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert rec["name"] == "in.csv"
    ds = xr.Dataset(attrs=attrs)
    ds.to_netcdf(tmp_path / "p.nc")  # every attribute is netCDF-safe
    assert xr.open_dataset(tmp_path / "p.nc").attrs["model"] == "M"
