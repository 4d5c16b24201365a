"""Bad input to sciTie.diffraction and the ``rietveld`` recipe kind (issue 12, phase 3).

As in ``test_bad_inputs.py``: every case asserts the exception type and that the message names
the argument (or the file and line, or the recipe file and key) at fault. Files are tiny and
generated here; the real-data cases skip when the data folder is absent.
"""
from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from bad_input_cases import PRM, cases, check, rietveld_recipe, small_pattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciTie.diffraction import (Atom, ConstantWavelength, JointRefinement, PatternSpec, Phase,
                                PowderPattern, SequentialRefinement, SeriesRecipe, SeriesTie,
                                TimeOfFlight, make_pattern, pattern_statistics, read_gsas_std,
                                read_instrument, read_xye, refine_one, specs_from_dataset,
                                weight_fractions, write_gsas_std, write_xye)
from sciTie.diffraction.data import _SYN_INSTRUMENT, synthetic_phase
from sciTie.errors import (ArgumentTypeError, DataFormatError, FitWarning, OutputExistsError,
                           RecipeError, UnknownNameError, ValidationError)


# ================================================================== data files, by hand
XYE = "# 2theta I esd\n10.0 5 1\n10.1 6 1\n10.2 7 1\n"
STD = ("title\nBANK 1 5 1 CONST 1000.0 10.0 0 0 STD\n"
       + "".join(f"  {v:6d}" for v in (1, 2, 3, 4, 5)) + "\n")
ESD = ("title\nBANK 1 3 1 CONST 1000.0 10.0 0 0 ESD\n"
       + "".join(f"{v:8.1f}{e:8.2f}" for v, e in ((1, 1), (2, 1), (3, 1))) + "\n")
FXYE = "title\nBANK 1 3 3 CONST 1000.0 10.0 0 0 FXYE\n1000 5 1\n1010 6 1\n1020 7 1\n"

# (reader, file name, content, line, fragment)
FILE_CASES = [
    (read_xye, "a.xye", XYE.replace("10.1 6", "10.1 nan"), 3, "intensity is nan"),
    (read_xye, "a.xye", XYE.replace("10.1 6", "10.1 inf"), 3, "intensity is inf"),
    (read_xye, "a.xye", XYE.replace("10.1 6", "10.1 -inf"), 3, "intensity is -inf"),
    (read_xye, "a.xye", XYE.replace("10.1 6", "nan 6"), 3, "2theta is nan"),
    (read_xye, "a.xye", XYE.replace("10.1 6 1", "10.1 6 nan"), 3, "esd must be > 0"),
    (read_xye, "a.xye", XYE.replace("10.1 6 1", "10.1 6 -1"), 3, "esd must be > 0"),
    (read_xye, "a.xye", XYE.replace("10.1 6 1", "10.1 6 0"), 3, "esd must be > 0"),
    (read_xye, "a.xye", XYE.replace("10.2", "10.05"), 4, "does not increase"),
    (read_xye, "a.xye", XYE.replace("10.1", "10.0"), 3, "does not increase"),
    (read_xye, "a.xye", XYE.replace("10.0 5", "-1.0 5"), 2, "outside [0, 180)"),
    (read_xye, "a.xye", XYE.replace("10.2 7", "190.0 7"), 4, "outside [0, 180)"),
    (read_xye, "a.xye", "10 5 1 2\n", 1, "expected 2 or 3 columns"),
    (read_xye, "a.xye", "10\n", 1, "expected 2 or 3 columns"),
    (read_xye, "a.xye", "10 5 1\n10.1 5\n", 2, "expected 3 columns"),
    (read_xye, "a.xye", "10 5\n10.1 x\n", 2, "non-numeric"),
    (read_xye, "a.xye", "", None, "no data lines"),
    (read_xye, "a.xye", "# only a comment\n! and another\n", None, "no data lines"),
    (read_xye, "a.xye", "\x00\x01\x02garbage\n", 1, "non-numeric"),
    (read_xye, "a.xye", "10 5 1\n10.1\x00 5 1\n", 2, "non-numeric"),
    (read_gsas_std, "a.std", STD.replace("     3", "   nan"), 3, "intensity is nan"),
    (read_gsas_std, "a.std", STD.replace("     3", "   inf"), 3, "intensity is inf"),
    (read_gsas_std, "a.std", STD[:40], 2, "file ends after 0 data records"),
    (read_gsas_std, "a.std", STD.replace("BANK 1 5 1", "BANK 1 0 1"), 2, "NCHAN and NREC"),
    (read_gsas_std, "a.std", STD.replace("BANK 1 5 1", "BANK 1 x 1"), 2, "NCHAN/NREC"),
    (read_gsas_std, "a.std", STD.replace("BANK 1 5 1", "BANK 1 99999999999 1"), 3,
     "NCHAN=99999999999"),
    (read_gsas_std, "a.std", STD.replace("CONST", "LOG6"), 2, "only CONST"),
    (read_gsas_std, "a.std", STD.replace("10.0 0 0", "-10.0 0 0"), 2, "step must be > 0"),
    (read_gsas_std, "a.std", STD.replace("10.0 0 0", "nan 0 0"), 2, "finite numbers"),
    (read_gsas_std, "a.std", STD.replace("1000.0", "inf"), 2, "finite numbers"),
    (read_gsas_std, "a.std", STD.replace("1000.0", "-1000.0"), 3, "outside [0, 180)"),
    (read_gsas_std, "a.std", STD.replace("1000.0", "17990.0"), 3, "outside [0, 180)"),
    (read_gsas_std, "a.std", STD.replace("       3", " 0     3"), 3, "detector count"),
    (read_gsas_std, "a.std", STD.replace("     3", "   abc"), 3, "non-numeric field"),
    (read_gsas_std, "a.std", STD.replace("BANK 1 5 1 CONST 1000.0 10.0 0 0 STD", "BANK 1"), 2,
     "2 fields"),
    (read_gsas_std, "a.std", "", None, "file is empty"),
    (read_gsas_std, "a.std", "title\n", 2, "no 'BANK"),
    (read_gsas_std, "a.std", "title\n1 2 3\n4 5 6\n7 8 9\n", 2, "no 'BANK"),
    (read_gsas_std, "a.esd", ESD.replace("     2.0    1.00", "     2.0   -1.00"), 3,
     "esd must be > 0"),
    (read_gsas_std, "a.esd", ESD.replace("     2.0    1.00", "     2.0     nan"), 3,
     "esd must be > 0"),
    (read_gsas_std, "a.esd", ESD.replace("     2.0    1.00", "     nan    1.00"), 3,
     "intensity is nan"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6", "990 6"), 4, "does not increase"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6", "1000 6"), 4, "does not increase"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6", "1010 nan"), 4, "intensity is nan"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6 1", "1010 6 nan"), 4, "esd must be > 0"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6 1", "1010 6 -2"), 4, "esd must be > 0"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6 1", "1010 6"), 4, "expected 3 columns"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6 1", "1010"), 4, "2 or 3 columns"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6 1", "1010 6 1 9 9"), 4, "got 5"),
    (read_gsas_std, "a.fxye", FXYE.replace("1010 6 1", "1010 six 1"), 4, "non-numeric"),
    (read_gsas_std, "a.fxye", FXYE.replace("BANK 1 3 3", "BANK 1 0 3"), 2, "NCHAN and NREC"),
    (read_gsas_std, "a.fxye", FXYE.replace("BANK 1 3 3", "BANK 1 -2 3"), 2, "NCHAN and NREC"),
    (read_gsas_std, "a.fxye", FXYE[:-10], 5, "file ends after 2 points"),
    (read_instrument, "a.prm", PRM.replace("1.540500", "     nan"), 5, "finite numbers"),
    (read_instrument, "a.prm", PRM.replace("1.540500", "-1.54050"), 5, "lambda1 must be > 0"),
    (read_instrument, "a.prm", PRM.replace("1.544300", "-1.54430"), 5, "lambda2 must be >= 0"),
    (read_instrument, "a.prm", PRM.replace("       0.0 ", "       inf "), 5, "finite numbers"),
    (read_instrument, "a.prm", PRM.replace("       0.7", "       5.0"), 5, "polarisation"),
    (read_instrument, "a.prm", PRM.replace("1.540500", "   1.5x0"), 5, "non-numeric"),
    (read_instrument, "a.prm", PRM.replace("2.000000E+00", "         nan", 1), 7,
     "profile coefficients must be finite"),
    (read_instrument, "a.prm", PRM.replace("2.000000E+00", "        abcd", 1), 7,
     "non-numeric profile coefficient"),
    (read_instrument, "a.prm", PRM.replace("PRCF1     3", "PRCF1     7"), 6,
     "profile type 7 is not supported"),
    (read_instrument, "a.prm", PRM.replace("PRCF1     3", "PRCF1     x"), 6, "bad profile type"),
    (read_instrument, "a.prm", "", None, "no 'INS  1 ICONS'"),
    (read_instrument, "a.prm", "\x00\xff junk\n", None, "no 'INS  1 ICONS'"),
]


@pytest.mark.parametrize("reader, name, content, line, fragment", cases(FILE_CASES))
def test_readers_name_file_and_line(tmp_path, reader, name, content, line, fragment):
    path = tmp_path / name
    path.write_text(content, encoding="latin-1")
    err = check(lambda: reader(path), DataFormatError, fragment)
    assert err.path == str(path) and err.line == line
    assert str(err).startswith(f"{path}:{line}" if line else str(path))


@pytest.mark.parametrize("reader", [read_xye, read_gsas_std, read_instrument, Phase.from_cif])
def test_readers_say_which_file_is_missing_or_a_folder(tmp_path, reader):
    check(lambda: reader(tmp_path / "nowhere.dat"), FileNotFoundError, "nowhere.dat")
    (tmp_path / "afolder").mkdir()
    check(lambda: reader(tmp_path / "afolder"), IsADirectoryError, "afolder")


@pytest.mark.parametrize("reader", [read_xye, read_gsas_std, read_instrument, Phase.from_cif])
@pytest.mark.parametrize("path", [3, None, "", "a\x00b"])
def test_readers_refuse_what_is_not_a_path(reader, path):
    check(lambda: reader(path), ValidationError, "path")


def test_good_files_still_read(tmp_path):
    """The hand-written files above are valid before they are broken (the cases can fail)."""
    for name, text, reader in (("a.xye", XYE, read_xye), ("a.std", STD, read_gsas_std),
                               ("a.esd", ESD, read_gsas_std), ("a.fxye", FXYE, read_gsas_std)):
        (tmp_path / name).write_text(text)
        pat = reader(tmp_path / name)
        assert np.all(np.diff(pat["two_theta"].values) > 0) and pat.size >= 3
    (tmp_path / "a.prm").write_text(PRM)
    prm = read_instrument(tmp_path / "a.prm")
    assert (prm.lam1, prm.lam2, prm.polarization, prm.U) == (1.5405, 1.5443, 0.7, 2.0)


@pytest.mark.parametrize("bank, exc, fragment", [("1", ArgumentTypeError, "bank"),
                                                 (0, ValidationError, "bank"),
                                                 (1.5, ValidationError, "bank"),
                                                 (True, ArgumentTypeError, "bank"),
                                                 (2, DataFormatError, "bank 2")])
def test_prm_bank_argument(tmp_path, bank, exc, fragment):
    (tmp_path / "a.prm").write_text(PRM)
    check(lambda: read_instrument(tmp_path / "a.prm", bank=bank), exc, fragment)


# ---------------------------------------------------------------- generated malformed files
def _pattern_ok(pat):
    tth = pat["two_theta"].values
    return (np.all(np.isfinite(tth)) and np.all(np.isfinite(pat.values))
            and np.all(pat["variance"].values > 0) and np.all(np.diff(tth) > 0)
            and np.all((tth >= 0) & (tth < 180)))


_num = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32).map(lambda v: f"{v:g}"),
                 st.integers(-5, 200).map(str), st.sampled_from(["", "x", "nan", "-0", "1e400"]))
_line = st.lists(_num, min_size=0, max_size=4).map(" ".join)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_line, max_size=8), junk=st.binary(max_size=10))
def test_xye_reader_on_generated_malformed_files(tmp_path, lines, junk):
    """Any file: a valid pattern, or a DataFormatError naming the file (never anything else)."""
    path = tmp_path / "gen.xye"
    path.write_bytes("\n".join(lines).encode() + junk)
    try:
        pat = read_xye(path)
    except DataFormatError as exc:
        assert exc.path == str(path) and str(exc).startswith(str(path))
        return
    assert _pattern_ok(pat)


_GOOD_FILES = {"std": STD, "esd": ESD, "fxye": FXYE}


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(_GOOD_FILES)), cut=st.integers(0, 200),
       insert=st.text(alphabet="0123456789 .-naifBANK\n\x00", max_size=12),
       at=st.integers(0, 200))
def test_gsas_reader_on_generated_malformed_files(tmp_path, kind, cut, insert, at):
    good = _GOOD_FILES[kind]
    text = good[:cut] if cut < len(good) else good
    text = text[:at] + insert + text[at:]
    path = tmp_path / f"gen.{kind}"
    path.write_text(text)
    try:
        pat = read_gsas_std(path)
    except DataFormatError as exc:
        assert exc.path == str(path)
        return
    assert _pattern_ok(pat)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(PRM)), insert=st.text(alphabet="0123456789 .-naeE+x\n", max_size=8),
       at=st.integers(0, len(PRM)))
def test_prm_reader_on_generated_malformed_files(tmp_path, cut, insert, at):
    text = PRM[:cut]
    text = text[:at] + insert + text[at:]
    path = tmp_path / "gen.prm"
    path.write_text(text)
    try:
        prm = read_instrument(path)
    except DataFormatError as exc:
        assert exc.path == str(path)
        return
    assert prm.lam1 > 0 and prm.lam2 >= 0 and 0 <= prm.polarization <= 1
    assert all(math.isfinite(v) for v in prm.start_values().values())


_CIF = synthetic_phase().to_cif()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(_CIF)), insert=st.text(alphabet="0123456789 .-?'_\n", max_size=8),
       at=st.integers(0, len(_CIF)))
def test_cif_reader_on_generated_malformed_files(tmp_path, cut, insert, at):
    text = _CIF[:cut]
    text = text[:at] + insert + text[at:]
    path = tmp_path / "gen.cif"
    path.write_text(text)
    try:
        ph = Phase.from_cif(path)
    except DataFormatError as exc:
        assert exc.path == str(path)
        return
    vals = ph.group.valuesdict()
    occ = [vals[f"{a.name}.occ"] for a in ph.atoms]
    assert all(0 <= o <= 1 for o in occ) and np.all(np.isfinite(vals.array))


# ================================================================== CIF values
def _cif_line(text, start):
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


CIF_CASES = [
    ({"O 0.304780 0.304780 0.000000 0.008000 1.000000": "O 0.304780 0.304780 0.000000 0.008000 "
      "1.500000"}, "O O", "occupancy 1.5"),
    ({"O 0.304780 0.304780 0.000000 0.008000 1.000000": "O 0.304780 0.304780 0.000000 0.008000 "
      "-0.500000"}, "O O", "occupancy -0.5"),
    ({"O O 0.304780": "O O ?"}, "O O", "fractional coordinates"),
    ({"O O 0.304780": "O O abc"}, "O O", "fractional coordinates"),
    ({"O O 0.304780": "O Qq 0.304780"}, "O Qq", "unknown element 'Qq'"),
    ({"_cell_length_c  2.958700": "_cell_length_c  -2.958700"}, "_cell_", "a, b, c > 0"),
]


@pytest.mark.parametrize("replace, start, fragment", cases(CIF_CASES))
def test_cif_values_name_file_and_line(tmp_path, replace, start, fragment):
    text = _CIF
    for old, new in replace.items():
        assert old in text  # the case really changes the file
        text = text.replace(old, new)
    path = tmp_path / "c.cif"
    path.write_text(text)
    err = check(lambda: Phase.from_cif(path), DataFormatError, fragment)
    assert err.path == str(path) and err.line == _cif_line(text, start)


def test_impossible_cell_in_a_cif_names_the_file(tmp_path):
    text = _CIF.replace("P 42/m n m", "P 1").replace("_space_group_IT_number  136", "")
    text = text.split("loop_\n_space_group_symop")[0] + "loop_\n_atom_site_label" \
        + text.split("loop_\n_atom_site_label")[1]
    for tag in ("alpha", "beta", "gamma"):
        text = text.replace(f"_cell_angle_{tag}  90.000000", f"_cell_angle_{tag}  150.0")
    path = tmp_path / "tri.cif"
    path.write_text(text)
    err = check(lambda: Phase.from_cif(path), DataFormatError, "geometrically impossible")
    assert err.path == str(path) and err.line is not None


def test_negative_uiso_in_a_cif_is_replaced_with_a_warning(tmp_path):
    text = _CIF.replace("0.008000 1.000000", "-0.004000 1.000000")
    path = tmp_path / "neg.cif"
    path.write_text(text)
    with pytest.warns(UserWarning, match=rf"neg.cif:{_cif_line(text, 'O O')}: .*U_iso -0.004"):
        ph = Phase.from_cif(path)
    assert ph.group.valuesdict()["O.uiso"] == 0.01


@pytest.mark.parametrize("kw, exc, fragment", [
    ({"block": 1.5}, ArgumentTypeError, "block"),
    ({"block": True}, ArgumentTypeError, "block"),
    ({"block": "nope"}, DataFormatError, "no data block 'nope'"),
    ({"block": 7}, DataFormatError, "no data block 7"),
    ({"name": ""}, ValidationError, "name"),
    ({"name": 3}, ValidationError, "name"),
])
def test_cif_reader_arguments(tmp_path, kw, exc, fragment):
    path = tmp_path / "ok.cif"
    path.write_text(_CIF)
    check(lambda: Phase.from_cif(path, **kw), exc, fragment)


# ================================================================== crystal phases
def _atoms(**kw):
    return [Atom("Ti", "Ti", (0.0, 0.0, 0.0), **kw)]


def _phase(cell=(5, 5, 5, 90, 90, 90), sg="P 1", atoms=None, name="p"):
    return Phase(name, cell, sg, _atoms() if atoms is None else atoms)


PHASE_CASES = [
    (lambda: _phase(cell=(5, 5, 5, 150, 150, 150)), ValidationError, "geometrically impossible"),
    (lambda: _phase(cell=(5, 5, 5, 120, 120, 120)), ValidationError, "geometrically impossible"),
    (lambda: _phase(cell=(5, 5, 5, 30, 30, 100)), ValidationError, "geometrically impossible"),
    (lambda: _phase(cell=(5, 5, 5, 90, 90, 180)), ValidationError, "0 < angles < 180"),
    (lambda: _phase(cell=(5, 5, 5, 0, 90, 90)), ValidationError, "0 < angles < 180"),
    (lambda: _phase(cell=(-5, 5, 5, 90, 90, 90)), ValidationError, "a, b, c > 0"),
    (lambda: _phase(cell=(0, 5, 5, 90, 90, 90)), ValidationError, "a, b, c > 0"),
    (lambda: _phase(cell=(np.nan, 5, 5, 90, 90, 90)), ValidationError, "cell[0]"),
    (lambda: _phase(cell=(5, np.inf, 5, 90, 90, 90)), ValidationError, "cell[1]"),
    (lambda: _phase(cell=("5", 5, 5, 90, 90, 90)), ArgumentTypeError, "cell"),
    (lambda: _phase(cell="5 5 5 90 90 90"), ArgumentTypeError, "cell"),
    (lambda: _phase(cell=(5, 5, 5, 90, 90)), ValidationError, "6 numbers"),
    (lambda: _phase(cell=np.ones((2, 6))), ArgumentTypeError, "cell"),
    (lambda: _phase(sg="Q 9"), ValidationError, "unknown space group 'Q 9'"),
    (lambda: _phase(sg=999), ValidationError, "unknown space group 999"),
    (lambda: _phase(sg=None), ArgumentTypeError, "spacegroup"),
    (lambda: _phase(sg=1.5), ArgumentTypeError, "spacegroup"),
    (lambda: _phase(name=""), ValidationError, "name"),
    (lambda: _phase(name=3), ValidationError, "name"),
    (lambda: _phase(atoms=[]), ValidationError, "at least one atom"),
    (lambda: _phase(atoms=None or 3), ArgumentTypeError, "atoms must be a list"),
    (lambda: _phase(atoms=[{"label": "Ti"}]), ArgumentTypeError, "atoms[0]"),
    (lambda: _phase(atoms=[Atom("X", "Xx", (0, 0, 0))]), ValidationError,
     "unknown element 'Xx'"),
    (lambda: _phase(atoms=[Atom("X", "", (0, 0, 0))]), ValidationError, "unknown element ''"),
    (lambda: _phase(atoms=[Atom("X", 22, (0, 0, 0))]), ValidationError, "unknown element 22"),
    (lambda: _phase(atoms=[Atom(3, "Ti", (0, 0, 0))]), ArgumentTypeError, "label"),
    (lambda: _phase(atoms=[Atom("", "Ti", (0, 0, 0))]), ArgumentTypeError, "label"),
    (lambda: _phase(atoms=[Atom("Ti", "Ti", (0, 0))]), ValidationError, "xyz must be 3"),
    (lambda: _phase(atoms=[Atom("Ti", "Ti", "000")]), ValidationError, "xyz must be 3"),
    (lambda: _phase(atoms=[Atom("Ti", "Ti", (np.nan, 0, 0))]), ValidationError,
     "atom 'Ti' xyz[0]"),
    (lambda: _phase(atoms=[Atom("Ti", "Ti", (0, "0", 0))]), ArgumentTypeError,
     "atom 'Ti' xyz[1]"),
    (lambda: _phase(atoms=_atoms(occ=1.5)), ValidationError, "atom 'Ti' occ must be <= 1"),
    (lambda: _phase(atoms=_atoms(occ=-0.1)), ValidationError, "atom 'Ti' occ must be >= 0"),
    (lambda: _phase(atoms=_atoms(occ=np.nan)), ValidationError, "atom 'Ti' occ"),
    (lambda: _phase(atoms=_atoms(uiso=-0.01)), ValidationError, "atom 'Ti' uiso must be >= 0"),
    (lambda: _phase(atoms=_atoms(uiso="0.01")), ArgumentTypeError, "atom 'Ti' uiso"),
    (lambda: _phase(atoms=_atoms(uiso=np.inf)), ValidationError, "atom 'Ti' uiso"),
    (lambda: synthetic_phase().reflections(0.0), ValidationError, "dmin must be > 0"),
    (lambda: synthetic_phase().reflections(-1.0), ValidationError, "dmin must be > 0"),
    (lambda: synthetic_phase().reflections(np.nan), ValidationError, "dmin"),
    (lambda: synthetic_phase().reflections("1"), ArgumentTypeError, "dmin"),
    (lambda: synthetic_phase().scattering("xray", 0.0), ValidationError, "wavelength"),
    (lambda: synthetic_phase().scattering("xray", -1.5), ValidationError, "wavelength"),
    (lambda: synthetic_phase().scattering("xray", np.nan), ValidationError, "wavelength"),
    (lambda: synthetic_phase().scattering("xray", "1.5"), ArgumentTypeError, "wavelength"),
    (lambda: synthetic_phase().scattering("electron", 1.5), ValidationError, "radiation"),
    (lambda: synthetic_phase().scattering("xray", 1.5, table={"Qq": {"fp": 1.0}}),
     ValidationError, "'Qq' is not an element"),
    (lambda: synthetic_phase().scattering("xray", 1.5, table={"O": {"b": 5.8}}),
     ValidationError, "belong to neutron"),
    (lambda: synthetic_phase().scattering("xray", 1.5, table={"O": {"f0": [1, 2]}}),
     ValidationError, "9 finite numbers"),
    (lambda: synthetic_phase().scattering("xray", 1.5, table={"O": {"fp": np.nan}}),
     ValidationError, "scattering['O']['fp']"),
    (lambda: synthetic_phase().to_cif(stderr={"a": "x"}), ArgumentTypeError, "stderr['a']"),
    (lambda: synthetic_phase().to_cif(stderr=[1]), ArgumentTypeError, "stderr"),
]


@pytest.mark.parametrize("call, exc, fragment", cases(PHASE_CASES))
def test_phase_bad_inputs(call, exc, fragment):
    check(call, exc, fragment)


@pytest.mark.parametrize("angles", [(150, 150, 150), (120, 120, 120), (30, 30, 100),
                                    (100, 100, 170)])
def test_refused_cells_really_have_no_volume(angles):
    """Independent of the metric tensor: V²/(abc)² = 1 - Σcos² + 2Πcos must be <= 0."""
    c = np.cos(np.radians(angles))
    assert 1 - np.sum(c ** 2) + 2 * np.prod(c) <= 1e-12
    check(lambda: _phase(cell=(5, 5, 5, *angles)), ValidationError, "geometrically impossible")


def test_possible_oblique_cell_is_accepted():
    """A valid triclinic cell (angles near the limit) still builds: the check is not too tight."""
    c = np.cos(np.radians((100, 100, 150)))
    assert 1 - np.sum(c ** 2) + 2 * np.prod(c) > 0
    assert _phase(cell=(5, 5, 5, 100, 100, 150)).group.n_free > 0


@pytest.mark.parametrize("cell, sg, held", [
    ((5, 6, 7, 90, 90, 90), "P m -3 m", (5, 5, 5, 90, 90, 90)),
    ((5, 5, 7, 90, 90, 91), "P 4/m m m", (5, 5, 7, 90, 90, 90)),
    ((3, 3.2, 5, 90, 90, 119), "P 63/m m c", (3, 3, 5, 90, 90, 120)),
])
def test_cell_changed_by_the_crystal_system_warns(cell, sg, held):
    """The lattice ties used to replace a cell that lacks the space group's symmetry silently."""
    with pytest.warns(UserWarning, match=r"does not have the symmetry"):
        ph = _phase(cell=cell, sg=sg)
    np.testing.assert_allclose(ph.cell_values(), held)


def test_consistent_cell_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _phase(cell=(5, 6, 7, 90, 90, 90), sg="P m m m")
        synthetic_phase()


@pytest.mark.parametrize("label", ["a", "b", "c", "alpha", "beta", "gamma"])
def test_atom_labelled_like_a_cell_parameter_gets_its_own_group(label):
    """An atom labelled 'a' used to clash with the cell parameter a ('already has a member')."""
    ph = _phase(atoms=[Atom(label, "O", (0.1, 0.2, 0.3))])
    names = ph.group.slot_names
    assert names[:6] == ["a", "b", "c", "alpha", "beta", "gamma"]
    atom = ph.atoms[0].name
    assert atom != label and f"{atom}.x" in names and ph.atoms[0].label == label


# ================================================================== powder patterns
@pytest.fixture(scope="module")
def small():
    """A tiny TiO2 pattern: 20-60 degrees, calculated at the truth with Poisson noise."""
    return small_pattern()


_INSTRUMENT_KEYS = {f.name for f in dataclasses.fields(ConstantWavelength)}


def _instrument(small, **kw):
    return ConstantWavelength(**{"radiation": "xray", **small["inst"], **small["prof"], **kw})


def _pattern(small, phase=None, **kw):
    inst = {k: kw.pop(k) for k in list(kw) if k in _INSTRUMENT_KEYS}
    opts = {"n_background": 2, **kw}
    return PowderPattern(small["data"], phase or synthetic_phase(), _instrument(small, **inst),
                         **opts)


PATTERN_CASES = [
    ({"lam1": 0.0}, ValidationError, "lam1 (wavelength, Å) must be > 0"),
    ({"lam1": -1.5}, ValidationError, "lam1"),
    ({"lam1": np.nan}, ValidationError, "lam1"),
    ({"lam1": np.inf}, ValidationError, "lam1"),
    ({"lam1": "1.54"}, ArgumentTypeError, "lam1"),
    ({"lam1": None}, ArgumentTypeError, "lam1"),
    ({"lam1": 100.0}, ValidationError, "no reflection of TiO2 lies inside fit_range"),
    ({"lam2": -1.0}, ValidationError, "lam2"),
    ({"lam2": np.nan}, ValidationError, "lam2"),
    ({"ratio": -0.5}, ValidationError, "ratio"),
    ({"ratio": np.nan}, ValidationError, "ratio"),
    ({"polarization": 2.0}, ValidationError, "polarization must be <= 1"),
    ({"polarization": -0.1}, ValidationError, "polarization"),
    ({"polarization": np.nan}, ValidationError, "polarization"),
    ({"radius": 0.0}, ValidationError, "radius"),
    ({"radius": np.nan}, ValidationError, "radius"),
    ({"radius": "250"}, ArgumentTypeError, "radius"),
    ({"n_background": -1}, ValidationError, "n_background"),
    ({"n_background": 2.5}, ValidationError, "n_background"),
    ({"n_background": "3"}, ArgumentTypeError, "n_background"),
    ({"n_background": True}, ArgumentTypeError, "n_background"),
    ({"n_background": 10 ** 6}, ValidationError, "n_background must be at most 100"),
    ({"tail_tolerance": 0.5}, ValidationError, "tail_tolerance"),
    ({"tail_tolerance": -1e-3}, ValidationError, "tail_tolerance"),
    ({"tail_tolerance": "0.001"}, ArgumentTypeError, "tail_tolerance"),
    ({"fcj_points": 0}, ValidationError, "fcj_points"),
    ({"fcj_points": 2.5}, ValidationError, "fcj_points"),
    ({"fcj_points": 10 ** 6}, ValidationError, "fcj_points"),
    ({"refine_zero": "False"}, ArgumentTypeError, "refine_zero"),
    ({"cell_correction": "no"}, ArgumentTypeError, "cell_correction"),
    ({"refine_displacement": 1}, ArgumentTypeError, "refine_displacement"),
    ({"anomalous": "False"}, ArgumentTypeError, "anomalous"),
    ({"refine_profile": "UVW"}, ArgumentTypeError, "refine_profile"),
    ({"refine_profile": ["Q"]}, ValidationError, "refine_profile: unknown parameters ['Q']"),
    ({"refine_profile_late": ["size", "bogus"]}, ValidationError, "refine_profile_late"),
    ({"radiation": "Xray"}, ValidationError, "radiation"),
    ({"geometry": "bb"}, ValidationError, "geometry"),
    ({"name": "a b"}, ValidationError, "'a b'"),
    ({"name": 3}, ArgumentTypeError, "name"),
    ({"fit_range": (1, 2, 3)}, ValidationError, "fit_range must be two numbers"),
    ({"fit_range": "20-50"}, ValidationError, "fit_range must be two numbers"),
    ({"fit_range": (np.nan, 50)}, ValidationError, "fit_range[0]"),
    ({"fit_range": (50, 30)}, ValidationError, "0 < lo < hi < 180"),
    ({"fit_range": (0, 50)}, ValidationError, "0 < lo < hi < 180"),
    ({"fit_range": (30, 190)}, ValidationError, "0 < lo < hi < 180"),
    ({"fit_range": (100, 120)}, ValidationError, "leave 0 points"),
    ({"fit_range": (21.0, 21.3)}, ValidationError, "leave 7 points; need at least 10"),
    ({"fit_range": (20.0, 22.0)}, ValidationError, "no reflection of TiO2"),
    ({"exclude": [(1,)]}, ValidationError, "exclude[0] must be two numbers"),
    ({"exclude": (30, 40)}, ValidationError, "exclude[0] must be two numbers"),
    ({"exclude": [(40, 30)]}, ValidationError, "exclude[0] must be (lo, hi) with lo < hi"),
    ({"exclude": [(np.nan, 30)]}, ValidationError, "exclude[0][0]"),
    ({"exclude": "30-40"}, ArgumentTypeError, "exclude"),
    ({"exclude": [(0, 179)]}, ValidationError, "leave 0 points"),
    ({"U": np.nan}, ValidationError, "ConstantWavelength.U"),
    ({"U": "3"}, ArgumentTypeError, "ConstantWavelength.U"),
    ({"SL": -0.01}, ValidationError, "SL and HL must be >= 0"),
    ({"instrument_": 1}, TypeError, "instrument_"),
    ({"phase_values": {"Nope": {"size": 1.0}}}, UnknownNameError, "unknown phases ['Nope']"),
    ({"phase_values": {"TiO2": {"sizes": 1.0}}}, ValidationError, "unknown keys ['sizes']"),
    ({"phase_values": {"TiO2": {"size": np.nan}}}, ValidationError, "['size']"),
    ({"phase_values": {"TiO2": {"fraction": "x"}}}, ArgumentTypeError, "['fraction']"),
    ({"phase_values": {"TiO2": {"size": 0.0}}}, ValidationError, "'size'"),
    ({"phase_values": {"TiO2": 3}}, ArgumentTypeError, "phase_values['TiO2']"),
    ({"phase_values": [1]}, ArgumentTypeError, "phase_values must be a dict"),
    ({"strain_axis": {"TiO2": (0, 0, 0)}}, ValidationError, "strain_axis['TiO2']"),
    ({"strain_axis": {"TiO2": "abc"}}, ValidationError, "strain_axis['TiO2']"),
    ({"strain_axis": {"Nope": (1, 0, 0)}}, ValidationError, "unknown phase 'Nope'"),
    ({"strain_axis": [1]}, ArgumentTypeError, "strain_axis must be a dict"),
    ({"background_peaks": [(30.0, 1.0)]}, ValidationError, "background_peaks[0]"),
    ({"background_peaks": [(30.0, np.nan, 1.0, 0.0)]}, ValidationError, "background_peaks[0]"),
    ({"background_peaks": [(30.0, 1.0, -1.0, 0.0)]}, ValidationError, "sigma2 >= 0"),
    ({"background_peaks": [{"area": 1.0}]}, ValidationError, "at least 'pos'"),
    ({"background_peaks": ["abcd"]}, ValidationError, "background_peaks[0]"),
    ({"background_peaks": 3}, ArgumentTypeError, "background_peaks must be a list"),
    ({"scattering": {"Cu": {"fp": 1.0}}}, ValidationError, "elements ['Cu'] are in no phase"),
    ({"scattering": {"O": {"b": 5.8}}}, ValidationError, "belong to neutron"),
]


@pytest.mark.parametrize("kw, exc, fragment", cases(PATTERN_CASES))
def test_powder_pattern_bad_inputs(small, kw, exc, fragment):
    check(lambda: _pattern(small, **kw), exc, fragment)


@pytest.mark.parametrize("data, phases, exc, fragment", [
    (np.ones(10), None, ValidationError, "data must be an xarray.DataArray"),
    ("pattern.xye", None, ValidationError, "data must be an xarray.DataArray"),
    (None, [], ValidationError, "non-empty sequence of Phase"),
    (None, 3, ArgumentTypeError, "phases must be a Phase"),
    (None, "TiO2", ArgumentTypeError, "phases must be a Phase"),
    (None, [3], ValidationError, "phases must be a Phase"),
])
def test_powder_pattern_data_and_phases(small, data, phases, exc, fragment):
    d = small["data"] if data is None else data
    p = synthetic_phase() if phases is None else phases
    check(lambda: PowderPattern(d, p, _instrument(small)), exc, fragment)


def test_the_instrument_argument(small):
    check(lambda: PowderPattern(small["data"], synthetic_phase(), {"lam1": 1.54}),
          ArgumentTypeError, "instrument must be a peak profile")
    check(lambda: _instrument(small).replace(u=3.0), UnknownNameError, "unknown keys ['u']")
    tof = TimeOfFlight(two_theta=144.8, difc=7476.9)
    check(lambda: PowderPattern(small["data"], synthetic_phase(), tof), ValidationError,
          "'tof' and 'variance' coordinates")
    check(lambda: TimeOfFlight(two_theta=144.8, difc=-1.0), ValidationError, "difc must be > 0")
    check(lambda: TimeOfFlight(two_theta=190.0, difc=7000.0), ValidationError, "two_theta")


def test_from_files_arguments(tmp_path, small):
    write_xye(small["data"], tmp_path / "p.xye")
    (tmp_path / "a.prm").write_text(PRM)
    ph = synthetic_phase()
    check(lambda: PowderPattern.from_files(tmp_path / "p.xye", None, ph), ValidationError,
          "path")
    check(lambda: PowderPattern.from_files(tmp_path / "nope.xye", tmp_path / "a.prm", ph),
          FileNotFoundError, "nope.xye")
    check(lambda: PowderPattern.from_files(tmp_path / "p.xye", tmp_path / "nope.prm", ph),
          FileNotFoundError, "nope.prm")
    check(lambda: PowderPattern.from_files(tmp_path / "p.xye", tmp_path / "a.prm", ph,
                                           bogus=1.0), TypeError, "bogus")
    pat = PowderPattern.from_files(tmp_path / "p.xye", tmp_path / "a.prm", ph, n_background=2)
    assert pat.group["lam1"].value == 1.5405 and pat.group["U"].value == 2.0


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d.assign_coords(variance=("two_theta", -d["variance"].values)), "variance"),
    (lambda d: d.copy(data=np.where(np.arange(d.size) == 5, np.nan, d.values)), "finite"),
    (lambda d: d.assign_coords(two_theta=d["two_theta"].values[::-1]), "strictly increasing"),
])
def test_hand_built_data_get_the_reader_checks(small, change, fragment):
    """A DataArray built without make_pattern (negative variances, NaN, 2θ reversed) used to
    reach the fit as NaN weights."""
    check(lambda: PowderPattern(change(small["data"]), synthetic_phase(), _instrument(small)),
          ValidationError, fragment)


def test_phases_with_equal_names_are_refused(small):
    check(lambda: _pattern(small, phase=[synthetic_phase(), synthetic_phase()]), ValidationError,
          "names must be unique")


def test_range_without_reflections_is_refused_before_any_fit(small):
    """The issue's example: a range holding no reflection used to fail inside a reshape."""
    err = check(lambda: _pattern(small, fit_range=(20.0, 22.0)), ValidationError, "no reflection")
    # the message's claim, checked independently: the first TiO2 peak (110, d = a/√2) lies
    # above 22 degrees at this wavelength
    a = synthetic_phase().cell_values()[0]
    first = 2 * np.degrees(np.arcsin(small["inst"]["lam1"] / (2 * a / np.sqrt(2))))
    assert first > 22.0 and f"{first:.4g}" in str(err)


def test_evaluate_checks_the_local_vector(small):
    pat = _pattern(small)
    check(lambda: pat.evaluate(np.ones(3)), ValidationError, f"shape ({pat.n_local},)")
    v = pat.local_vector()
    v[0] = np.nan
    check(lambda: pat.evaluate(v), ValidationError, "TiO2.a")
    check(lambda: pat.calc(values=3), ArgumentTypeError, "values")
    check(lambda: pat.calc(values=pat.phase.group.valuesdict()), UnknownNameError, "TiO2.a")


def test_calc_honours_the_values_it_is_given(small):
    """``calc(values)`` used to ignore ``values`` and use the groups' current values."""
    ph = synthetic_phase()
    pat = _pattern(small, phase=ph)
    ref = JointRefinement(ph, [pat])
    before = ref.group.valuesdict()
    y0 = pat.calc()[0]
    pat.group["scale"].value = 3.0 * pat.group["scale"].value
    np.testing.assert_allclose(pat.calc(before)[0], y0, rtol=1e-12)
    bkg = pat.background_basis @ np.asarray(pat.group["bkg"].value)
    np.testing.assert_allclose(pat.calc()[0] - bkg, 3.0 * (y0 - bkg), rtol=1e-10)


# ================================================================== joint refinement
@pytest.fixture
def joint(small):
    ph = synthetic_phase()
    return JointRefinement(ph, [_pattern(small, phase=ph, name="xray")])


JOINT_CASES = [
    (lambda r: r.set_params(max_nfev=0).fit(), ValidationError, "max_nfev"),
    (lambda r: r.set_params(max_nfev=2.5).fit(), ValidationError, "max_nfev"),
    (lambda r: r.set_params(max_nfev="10").fit(), ArgumentTypeError, "max_nfev"),
    (lambda r: r.set_params(max_nfev=True).fit(), ArgumentTypeError, "max_nfev"),
    (lambda r: r.set_params(ftol=np.nan).fit(), ValidationError, "ftol"),
    (lambda r: r.set_params(xtol=-1.0).fit(), ValidationError, "xtol"),
    (lambda r: r.set_params(gtol="x").fit(), ArgumentTypeError, "gtol"),
    (lambda r: r.set_params(method="bogus").fit(), ValidationError, "method"),
    (lambda r: r.set_refined(structure=["nope"]), UnknownNameError, "'nope'"),
    (lambda r: r.set_refined(structure="cell"), ArgumentTypeError, "structure must be a list"),
    (lambda r: r.set_refined(structure={"Nope": ["cell"]}), UnknownNameError, "['Nope']"),
    (lambda r: r.set_refined(structure={"TiO2": "cell"}), ArgumentTypeError, "structure['TiO2']"),
    (lambda r: r.set_refined(structure=[3]), ArgumentTypeError, "items must be str"),
    (lambda r: r.set_refined(patterns={"xray": ["bkgg"]}), UnknownNameError, "'bkgg'"),
    (lambda r: r.set_refined(patterns={"nope": ["scale"]}), UnknownNameError,
     "no pattern named 'nope'"),
    (lambda r: r.set_refined(patterns=["scale"]), ArgumentTypeError, "patterns must be a dict"),
    (lambda r: r.set_refined(patterns={"*": "scale"}), ArgumentTypeError, "patterns['*']"),
    (lambda r: r.refine_stages([]), ValidationError, "non-empty list"),
    (lambda r: r.refine_stages("cell"), ValidationError, "stages must be"),
    (lambda r: r.refine_stages(["x"]), ValidationError, "stages[0] must be"),
    (lambda r: r.refine_stages([("x", {"bogus": ["cell"]})]), UnknownNameError,
     "stages[0]: unknown keys ['bogus']"),
    (lambda r: r.refine_stages([("x", {"pattern": "scale"})]), ArgumentTypeError,
     "stages[0]['pattern']"),
    (lambda r: r.refine_stages([("x", {"structure": ["nope"]})]), UnknownNameError, "'nope'"),
    (lambda r: r.refine_stages(verbose="yes"), ArgumentTypeError, "verbose"),
    (lambda r: r.set_params(max_nfev=-1).refine_stages(), ValidationError, "max_nfev"),
    (lambda r: r.pattern("nope"), UnknownNameError, "no pattern named 'nope'"),
    (lambda r: r.phase_named("nope"), UnknownNameError, "no phase named 'nope'"),
    (lambda r: r.to_cif("nope"), UnknownNameError, "no phase named 'nope'"),
    (lambda r: r.plot(pattern="nope"), UnknownNameError, "no pattern named 'nope'"),
    (lambda r: r.constrain_fractions(total=np.nan), ValidationError, "total"),
    (lambda r: r.constrain_fractions(total=0.0), ValidationError, "total"),
    (lambda r: r.constrain_fractions(total="1"), ArgumentTypeError, "total"),
    (lambda r: r.constrain_fractions(patterns=["nope"]), UnknownNameError, "'nope'"),
    (lambda r: r.group.apply_ties(["xray.nope = TiO2.a"]), ValidationError, "'xray.nope'"),
    (lambda r: r.group.fix("xray.nope"), UnknownNameError, "'xray.nope'"),
    (lambda r: setattr(r.group["xray"]["scale"], "min", np.nan), ValidationError, "min"),
    (lambda r: setattr(r.group["xray"]["TiO2"]["fraction"], "max", -1.0), ValidationError,
     "'fraction': min (0.0) would be greater than max (-1.0)"),
    (lambda r: (setattr(r.group["xray"]["U"], "max", 5.0),
                setattr(r.group["xray"]["U"], "min", 6.0)), ValidationError,
     "would be greater than max"),
    (lambda r: r.report(), Exception, "not fitted"),
    (lambda r: r.calculate("nope"), UnknownNameError, "no pattern named 'nope'"),
    (lambda r: r.plot(hkl="yes"), ArgumentTypeError, "hkl"),
    (lambda r: r.plot(hkl=-1), ValidationError, "hkl"),
    (lambda r: r.plot(sqrt="no"), ArgumentTypeError, "sqrt"),
    (lambda r: r.plot(ax=3), ArgumentTypeError, "ax must be a matplotlib Axes"),
    (lambda r: r.plot(magnify=("a", 2.0)), ArgumentTypeError, "magnify two_theta"),
    (lambda r: r.plot(magnify=(30.0, 0.0)), ValidationError, "magnify factor"),
    (lambda r: r.plot(magnify=30.0), ValidationError, "magnify must be"),
    (lambda r: r.write_cif(None), ValidationError, "CIF must be a file path"),
    (lambda r: weight_fractions(r.group, 3), ArgumentTypeError, "pattern must be"),
    (lambda r: weight_fractions(3, r.patterns[0]), ArgumentTypeError, "group must be"),
    (lambda r: weight_fractions(r.group, r.patterns[0], covariance="x"), ArgumentTypeError,
     "covariance"),
    (lambda r: weight_fractions(r.group, r.patterns[0], covariance=np.eye(2)), ValidationError,
     "covariance must have shape"),
]


@pytest.mark.parametrize("call, exc, fragment", cases(JOINT_CASES))
def test_joint_refinement_bad_inputs(joint, call, exc, fragment):
    check(lambda: call(joint), exc, fragment)


@pytest.mark.parametrize("kw, exc, fragment", [
    ({"weights": {"nope": 2.0}}, UnknownNameError, "weights: unknown patterns ['nope']"),
    ({"weights": {"xray": -1.0}}, ValidationError, "weights['xray'] must be > 0"),
    ({"weights": {"xray": 0.0}}, ValidationError, "weights['xray']"),
    ({"weights": {"xray": np.nan}}, ValidationError, "weights['xray']"),
    ({"weights": {"xray": "2"}}, ArgumentTypeError, "weights['xray']"),
    ({"weights": [1.0]}, ArgumentTypeError, "weights must be a dict"),
])
def test_joint_refinement_weights(small, kw, exc, fragment):
    ph = synthetic_phase()
    pat = _pattern(small, phase=ph, name="xray")
    check(lambda: JointRefinement(ph, [pat], **kw).fit(), exc, fragment)


@pytest.mark.parametrize("patterns, exc, fragment", [
    (None, ArgumentTypeError, "patterns must be a PowderPattern"),
    ([], ValidationError, "at least one PowderPattern"),
    ([3], ValidationError, "PowderPattern objects"),
    ("xray", ArgumentTypeError, "patterns must be a PowderPattern"),
])
def test_joint_refinement_patterns(patterns, exc, fragment):
    check(lambda: JointRefinement(synthetic_phase(), patterns).fit(), exc, fragment)


def test_refused_set_refined_leaves_the_refined_set_as_it_was(joint):
    joint.set_refined(structure=["cell"], patterns={"*": ["scale", "bkg"]})
    before = joint.group.free_names
    with pytest.raises(UnknownNameError, match="'bkgg'"):
        joint.set_refined(structure=["cell", "uiso"], patterns={"*": ["scale", "bkgg"]})
    assert joint.group.free_names == before


def test_false_minimum_warns_and_the_claim_holds(small):
    """A refinement stuck in a false minimum (cell 4 % off, only scale and background free)
    must not report success silently: a FitWarning names the pattern and its wRp."""
    truth = synthetic_phase().cell_values()
    ph = synthetic_phase({"a": truth[0] * 1.04, "c": truth[2] * 1.04})
    ref = JointRefinement(ph, [_pattern(small, phase=ph, name="xray")])
    ref.initialize()
    ref.set_refined(patterns={"*": ["scale", "bkg"]})
    with pytest.warns(FitWarning, match=r"pattern 'xray': wRp \d+\.\d+ % is far above"):
        ref.set_params(max_nfev=50).fit()
    # the warning's claim, recomputed from the residuals: GOF far above 1
    p = ref.patterns[0]
    y, _ = p.calc()
    gof = np.sqrt(np.sum(((p.obs - y) / p.sigma) ** 2) / p.obs.size)
    assert gof > JointRefinement.GOF_WARNING


def test_refinement_out_of_evaluations_warns(small):
    from sciTie.errors import ConvergenceWarning

    truth = synthetic_phase().cell_values()
    ph = synthetic_phase({"a": truth[0] * 1.002})
    ref = JointRefinement(ph, [_pattern(small, phase=ph, name="xray")])
    ref.initialize()
    ref.set_refined(structure=["cell"], patterns={"*": ["scale", "bkg"]})
    with pytest.warns(FitWarning) as record:  # also the wRp warning: far from the minimum
        ref.set_params(max_nfev=1).fit()
    assert any(isinstance(w.message, ConvergenceWarning) and "max_nfev=1" in str(w.message)
               for w in record)
    assert not ref.result_.success


def test_good_fit_does_not_warn(small):
    """The same refinement from the true cell: no FitWarning (the check is not a blanket one)."""
    ph = synthetic_phase()
    ref = JointRefinement(ph, [_pattern(small, phase=ph, name="xray")])
    ref.initialize()
    ref.set_refined(patterns={"*": ["scale", "bkg"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        ref.set_params(max_nfev=50).fit()
    assert ref.statistics_["xray"]["gof"] < 2.0


@pytest.mark.parametrize("args, exc, fragment", [
    (([1.0, 2.0], [1.0], [1.0, 1.0]), ValidationError, "calc must have shape"),
    (([1.0, 2.0], [1.0, 2.0], [0.0, 1.0]), ValidationError, "sigma must be > 0"),
    (([1.0, np.nan], [1.0, 2.0], [1.0, 1.0]), ValidationError, "obs"),
    (("12", [1.0, 2.0], [1.0, 1.0]), ArgumentTypeError, "obs"),
])
def test_pattern_statistics_arguments(args, exc, fragment):
    check(lambda: pattern_statistics(*args), exc, fragment)


# ================================================================== series
def _spec(label="s0", temperature=10.0, n=None):
    tth = np.arange(20.0, 60.0, 0.04)
    y = np.full(tth.size if n is None else n, 10.0)
    return PatternSpec(label, temperature, tth, y, np.ones_like(y))


def _series_recipe(**kw):
    opts = {"phases": [synthetic_phase()], "stages": [("s", ("cell",), ("scale", "bkg"))], **kw}
    return SeriesRecipe(**opts)


SERIES_CASES = [
    (lambda: SequentialRefinement([], _series_recipe()).fit(), ValidationError, "non-empty"),
    (lambda: SequentialRefinement([_spec(), _spec()], _series_recipe()).fit(), ValidationError,
     "labels must be unique"),
    (lambda: SequentialRefinement([_spec(temperature=np.nan)], _series_recipe()).fit(),
     ValidationError, "finite temperature"),
    (lambda: SequentialRefinement([_spec(temperature="hot")], _series_recipe()).fit(),
     ValidationError, "finite temperature"),
    (lambda: SequentialRefinement([_spec(label=3)], _series_recipe()).fit(), ValidationError,
     "str label"),
    (lambda: SequentialRefinement([1, 2], _series_recipe()).fit(), ValidationError, "PatternSpec"),
    (lambda: SequentialRefinement([_spec()], 3).fit(), ValidationError, "SeriesRecipe"),
    (lambda: SequentialRefinement([_spec()], _series_recipe(), mode="x").fit(), ValidationError,
     "mode"),
    (lambda: SequentialRefinement([_spec()], _series_recipe(), n_jobs=0).fit(), ValidationError,
     "n_jobs"),
    (lambda: SequentialRefinement([_spec()], _series_recipe(), tie_test="no").fit(),
     ValidationError, "tie_test"),
    (lambda: SequentialRefinement([_spec()], _series_recipe()).sequence(), Exception,
     "not fitted"),
    (lambda: _spec(n=10).data(), ValidationError, "equal length"),
    (lambda: specs_from_dataset(3), ValidationError, "xarray.Dataset"),
    (lambda: refine_one(_spec(), 3), ValidationError, "SeriesRecipe"),
    (lambda: make_pattern("abc", [1.0], [1.0]), ArgumentTypeError, "two_theta"),
    (lambda: make_pattern([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], name=3), ArgumentTypeError,
     "name must be a str"),
    (lambda: make_pattern([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], attrs=[1]), ArgumentTypeError,
     "attrs must be a dict"),
    (lambda: make_pattern([1.0, 2.0], [1.0, 2.0], [1.0, -2.0]), ValidationError,
     "variance must be > 0"),
    (lambda: make_pattern([2.0, 1.0], [1.0, 2.0], [1.0, 2.0]), ValidationError,
     "strictly increasing"),
    (lambda: SeriesTie(3, "TiO2.a"), ValidationError, "SeriesTie slot"),
    (lambda: SeriesTie("TiO2.c", "TiO2.a", scale=np.nan), ValidationError, "SeriesTie scale"),
    (lambda: SeriesTie("TiO2.c", "TiO2.a", above="100"), ArgumentTypeError, "SeriesTie above"),
    (lambda: _series_recipe(phases=[]), ValidationError, "phases"),
    (lambda: _series_recipe(stages=[]), ValidationError, "stages"),
    (lambda: _series_recipe(stages=[("s", ("cell",))]), ValidationError, "each stage"),
    (lambda: _series_recipe(continue_stages=5), ValidationError, "continue_stages"),
    (lambda: _series_recipe(ties=["TiO2.c = TiO2.a"]), ValidationError, "SeriesTie objects"),
    (lambda: _series_recipe(pattern_options={"bogus": 1}), ValidationError,
     "unknown PowderPattern options ['bogus']"),
]


@pytest.mark.parametrize("call, exc, fragment", cases(SERIES_CASES))
def test_series_bad_inputs(call, exc, fragment):
    check(call, exc, fragment)


# ================================================================== writers
def test_writers_refuse_to_replace_and_keep_the_file(tmp_path, small):
    for writer, name in ((write_xye, "p.xye"), (write_gsas_std, "p.gsa")):
        target = tmp_path / name
        target.write_text("mine\n")
        check(lambda: writer(small["data"], target), OutputExistsError, name)
        assert target.read_text() == "mine\n"
        assert writer(small["data"], target, overwrite=True) == target
        assert target.read_text() != "mine\n"


def test_write_cif_refuses_to_replace(tmp_path, joint):
    target = tmp_path / "s.cif"
    target.write_text("mine\n")
    check(lambda: joint.write_cif(target), OutputExistsError, "s.cif")
    assert target.read_text() == "mine\n"


@pytest.mark.parametrize("writer", [write_xye, write_gsas_std])
def test_writers_check_the_pattern(tmp_path, small, writer):
    check(lambda: writer(np.ones(5), tmp_path / "x.out"), ArgumentTypeError, "pattern")
    bad = small["data"].copy()
    bad.values[3] = np.nan
    check(lambda: writer(bad, tmp_path / "x.out"), ValidationError, "NaN or infinite")
    assert not (tmp_path / "x.out").exists()


def test_gsas_std_refuses_intensities_wider_than_its_field(tmp_path, small):
    """A count above 999999 would run into the next 8-character field and read back wrong."""
    big = small["data"] * 1e4
    big["variance"] = small["data"]["variance"] * 1e8
    assert float(big.max()) > 999999
    check(lambda: write_gsas_std(big, tmp_path / "big.gsa"), ValidationError, "6 characters")
    assert not (tmp_path / "big.gsa").exists()


@pytest.mark.parametrize("write", ["xye", "gsas", "cif"])
def test_failed_replace_keeps_previous_output(tmp_path, small, joint, monkeypatch, write):
    target = tmp_path / f"out.{write}"
    target.write_text("previous\n")

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing)
    call = {"xye": lambda: write_xye(small["data"], target, overwrite=True),
            "gsas": lambda: write_gsas_std(small["data"], target, overwrite=True),
            "cif": lambda: joint.write_cif(target, overwrite=True)}[write]
    check(call, OSError, "No space left")
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_gsas_file_written_by_sciTie_reads_back(tmp_path, small):
    """The writers' output passes the stricter readers (round trip of counts and 2θ)."""
    path = write_gsas_std(small["data"], tmp_path / "rt.gsa")
    back = read_gsas_std(path)
    np.testing.assert_allclose(back["two_theta"].values, small["data"]["two_theta"].values,
                               atol=1e-4)
    np.testing.assert_allclose(back.values, np.rint(small["data"].values))
    back = read_xye(write_xye(small["data"], tmp_path / "rt.xye"))
    np.testing.assert_allclose(back.values, small["data"].values)


# ================================================================== recipes and the command line
_INST = _SYN_INSTRUMENT["xray"]
_RECIPE = rietveld_recipe()
_SERIES = '\n[series]\nfiles = ["x.xye"]\ntemperatures = [10.0]\n'


@pytest.fixture
def rfolder(tmp_path, monkeypatch, small):
    """A folder with a small pattern, its CIF, instrument files and user files; the cwd."""
    write_xye(small["data"], tmp_path / "x.xye")
    (tmp_path / "rutile.cif").write_text(_CIF)
    (tmp_path / "nosym.cif").write_text("data_x\n_cell_length_a 5\n")
    (tmp_path / "junk.xye").write_bytes(b"\x00\xff\x89PNG\n")
    (tmp_path / "nan.xye").write_text("20 1\n20.1 nan\n20.2 3\n")
    (tmp_path / "i.prm").write_text(PRM)
    (tmp_path / "badlam.prm").write_text(PRM.replace("1.540500", "-1.54050"))
    (tmp_path / "existing.json").write_text('{"mine": true}\n')
    (tmp_path / "adir").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "r_TiO2.cif").write_text("my own CIF\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def _in_pattern(extra):
    return _RECIPE.replace("n_background = 3", "n_background = 3\n" + extra)


def _line(text, start):
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


# (recipe text, extra argv, key the message names, fragment)
RECIPE_CASES = [
    (_RECIPE + "bogus = 1\n", [], "[stages.bogus]", "unknown key"),
    (_in_pattern("bogus = 1"), [], "[patterns.bogus]", "unknown key"),
    (_RECIPE.replace('cif = "rutile.cif"', 'cif = "rutile.cif"\nbogus = 1'), [],
     "[phases.bogus]", "unknown key"),
    (_RECIPE.replace("rutile.cif", "nope.cif"), [], "[phases[0].cif]", "nope.cif"),
    (_RECIPE.replace("x.xye", "nope.xye"), [], "[patterns[0].file]", "nope.xye"),
    (_in_pattern('instrument = "nope.prm"'), [], "[patterns[0].instrument]", "nope.prm"),
    (_in_pattern('instrument = "badlam.prm"'), [], "[patterns[0].instrument]",
     "badlam.prm:5: wavelength lambda1 must be > 0"),
    (_RECIPE.replace("rutile.cif", "nosym.cif"), [], "[phases[0].cif]",
     "nosym.cif: CIF has no space-group symmetry"),
    (_RECIPE.replace("rutile.cif", "adir"), [], "[phases[0].cif]", "adir"),
    (_RECIPE.replace("x.xye", "junk.xye"), [], "[patterns[0].file]", "junk.xye:1"),
    (_RECIPE.replace("x.xye", "nan.xye"), [], "[patterns[0].file]", "nan.xye:2"),
    (_RECIPE.replace(f'lam1 = {_INST["lam1"]}', 'lam1 = "1.5"'), [], "[patterns.lam1]",
     "must be a number"),
    (_RECIPE.replace(f'lam1 = {_INST["lam1"]}', "lam1 = 0.0"), [], "[patterns[0]]",
     "lam1 (wavelength, Å) must be > 0"),
    (_RECIPE.replace(f'lam1 = {_INST["lam1"]}', "lam1 = -1.0"), [], "[patterns.lam1]", ">= 0"),
    (_RECIPE.replace(f'lam1 = {_INST["lam1"]}', "lam1 = nan"), [], "[patterns.lam1]", "finite"),
    (_RECIPE.replace(f'lam1 = {_INST["lam1"]}', "lam1 = 100.0"), [], "[patterns[0]]",
     "no reflection of TiO2"),
    (_RECIPE.replace("n_background = 3", 'n_background = "3"'), [], "[patterns.n_background]",
     "integer"),
    (_RECIPE.replace("n_background = 3", "n_background = 100000"), [], "[patterns[0]]",
     "n_background must be at most 100"),
    (_in_pattern("fit_range = [1.0, 2.0, 3.0]"), [], "[patterns[0].fit_range]", "[lo, hi]"),
    (_in_pattern('fit_range = "20-50"'), [], "[patterns.fit_range]", "list of numbers"),
    (_in_pattern("fit_range = [20.0, 22.0]"), [], "[patterns[0]]", "no reflection"),
    (_in_pattern("fit_range = [50.0, 30.0]"), [], "[patterns[0]]", "0 < lo < hi < 180"),
    (_in_pattern("exclude = [[1.0]]"), [], "[patterns[0]]", "exclude[0]"),
    (_in_pattern("profile = {u = 3.0}"), [], "[patterns[0]]", "unknown keys ['u']"),
    (_in_pattern('profile = {U = "3"}'), [], "[patterns[0]]", "profile['U']"),
    (_in_pattern("phase_values = {Nope = {size = 1.0}}"), [], "[patterns[0]]",
     "unknown phases ['Nope']"),
    (_in_pattern("phase_values = {TiO2 = {sizes = 1.0}}"), [], "[patterns[0]]",
     "unknown keys ['sizes']"),
    (_in_pattern("phase_values = {TiO2 = 3}"), [], "[patterns[0]]", "phase_values['TiO2']"),
    (_in_pattern("strain_axis = {TiO2 = [0, 0]}"), [], "[patterns[0]]", "strain_axis['TiO2']"),
    (_in_pattern("scattering = {Qq = {fp = 1.0}}"), [], "[patterns[0]]", "'Qq'"),
    (_in_pattern("background_peaks = [[1.0, 2.0]]"), [], "[patterns[0]]", "background_peaks[0]"),
    (_in_pattern('refine_profile = ["Q"]'), [], "[patterns[0]]", "['Q']"),
    (_RECIPE.replace('radiation = "xray"', 'radiation = "electron"'), [],
     "[patterns.radiation]", "'electron'"),
    (_in_pattern('geometry = "bb"'), [], "[patterns.geometry]", "'bb'"),
    (_in_pattern('phases = ["Nope"]'), [], "[patterns[0].phases]", "['Nope']"),
    (_in_pattern("tail_tolerance = 0.7"), [], "[patterns.tail_tolerance]", "<= 0.5"),
    (_RECIPE.replace('name = "xray"', 'name = "x ray"'), [], "[patterns[0]]", "'x ray'"),
    (_RECIPE.replace('name = "xray"', 'name = "TiO2"'), [], "[patterns]",
     "differ from the phase names"),
    (_RECIPE + '[[patterns]]\nname = "xray"\nfile = "x.xye"\nradiation = "xray"\nlam1 = 1.5\n',
     [], "[patterns]", "unique"),
    (_RECIPE + '[[phases]]\ncif = "rutile.cif"\n', [], "[phases]", "two phases are named"),
    (_RECIPE.replace('cif = "rutile.cif"', 'cif = "rutile.cif"\nblock = "nope"'), [],
     "[phases[0].cif]", "no data block 'nope'"),
    (_RECIPE + '[model]\nties = ["xray.nope = TiO2.a"]\n', [], "[model.ties]", "'xray.nope'"),
    (_RECIPE + '[model]\nties = ["TiO2.c = TiO2.nope"]\n', [], "[model.ties]", "TiO2.nope"),
    (_RECIPE + '[model]\nties = ["xray.U == xray.V"]\n', [], "[model.ties]", "exactly one '='"),
    (_RECIPE + '[model]\nties = ["xray.U = __import__(\'os\')"]\n', [], "[model.ties]",
     "not allowed"),
    (_RECIPE + '[model]\nties = "xray.U = xray.V"\n', [], "[model.ties]", "list of strings"),
    (_RECIPE.replace('pattern = ["scale", "bkg"]', 'pattern = ["scale", "bkgg"]'), [],
     "[stages[0]]", "'bkgg'"),
    (_RECIPE.replace('pattern = ["scale", "bkg"]', 'structure = ["cells"]'), [],
     "[stages[0]]", "'cells'"),
    (_RECIPE.replace('pattern = ["scale", "bkg"]', 'label = "nothing"'), [], "[stages[0]]",
     "refines nothing"),
    (_RECIPE + '[[stages]]\npattern = ["scale", "xray.nope"]\n', [], "[stages[1]]",
     "'xray.nope'"),
    (_RECIPE.replace('pattern = ["scale", "bkg"]', 'patterns = ["scale"]'), [],
     "[stages.patterns]", "unknown key"),
    (_RECIPE + "[fit]\nmax_nfev = 0\n", [], "[fit.max_nfev]", ">= 1"),
    (_RECIPE + '[fit]\nmax_nfev = "10"\n', [], "[fit.max_nfev]", "integer"),
    (_RECIPE.replace('[[phases]]\ncif = "rutile.cif"\n', ""), [], "[phases]", "no phases"),
    (_RECIPE + '[data]\ndataset = "pbso4"\n', [], "[data.dataset]", "not both"),
    ('kind = "rietveld"\nname = "r"\n[data]\ndataset = "nope"\n', [], "[data.dataset]",
     "'nope'"),
    (_RECIPE + _SERIES.replace("[10.0]", "[1.0, 2.0]"), [], "[series.temperatures]",
     "2 values for 1 files"),
    (_RECIPE + _SERIES.replace("x.xye", "nope*.xye"), [], "[series.files]", "matches no file"),
    (_RECIPE + _SERIES.replace("[10.0]", "[nan]"), [], "[series.temperatures]", "finite"),
    (_RECIPE + _SERIES.replace("temperatures = [10.0]", ""), [], "[series.files]",
     "no '# Temp (K) ='"),
    (_RECIPE + _SERIES.replace('["x.xye"]', '["x.xye", "x.xye"]').replace("[10.0]",
                                                                        "[1.0, 2.0]"),
     [], "[series.files]", "more than once"),
    (_RECIPE + _SERIES + 'mode = "parametric"\n', [], "[series.laws]", "needs series.laws"),
    (_RECIPE + _SERIES + 'mode = "parametric"\nlaws = {"TiO2.nope" = "a0 + a1*T"}\n', [],
     "[series.laws]", "'TiO2.nope'"),
    (_RECIPE + _SERIES + 'mode = "parametric"\nlaws = {"TiO2.a" = "a0 + __import__(1)"}\n', [],
     "[series.laws]", "not allowed"),
    (_RECIPE + _SERIES + '[[series.ties]]\nslot = "TiO2.nope"\nto = "TiO2.a"\n', [],
     "[series.ties]", "'TiO2.nope'"),
    (_RECIPE + _SERIES.replace("x.xye", "nan.xye"), [], "[series.files]", "nan.xye:2"),
    (_RECIPE + _SERIES + '[[series.ties]]\nslot = "TiO2.b"\nto = "TiO2.c"\n', [],
     "[series.ties]", "TiO2.b"),
    (_RECIPE + _SERIES + '[[series.ties]]\nslot = "TiO2.c"\nto = "TiO2.c"\n', [],
     "[series.ties]", "cycle"),
    (_RECIPE, ["--json", "existing.json"], "--json", "existing.json already exists"),
    (_RECIPE, ["--json", "adir"], "--json", "adir is a folder"),
    (_RECIPE, ["--out", "x.xye"], "--out", "x.xye is a file"),
    (_RECIPE, ["--out", "out"], "--out", "r_TiO2.cif already exists"),
    (_RECIPE, ["--set", "patterns.bogus=1"], "--set patterns.bogus", "not a table"),
    (_RECIPE, ["--set", 'fit.max_nfev="x"'], "[fit.max_nfev]", "integer"),
]


def _run_cli(argv, capsys):
    from sciTie.cli import main

    rc = main(argv)
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("text, argv, key, fragment", cases(RECIPE_CASES))
def test_rietveld_recipe_errors_are_one_line_naming_file_and_key(rfolder, capsys, monkeypatch,
                                                                  text, argv, key, fragment):
    """Exit code 2, one line on stderr naming the recipe file and key, before any fit."""
    from sciTie import recipes

    ran = []
    monkeypatch.setattr(recipes, "run_recipe", lambda r: ran.append(r))
    (rfolder / "bad.toml").write_text(text)
    rc, err = _run_cli(["fit", "bad.toml", *argv], capsys)
    assert rc == 2 and ran == []
    assert len(err) == 1 and err[0].startswith("scitie: error: "), err
    assert key in err[0] and fragment in err[0], err[0]
    if key.startswith("["):
        assert err[0].startswith("scitie: error: bad.toml")
    assert (rfolder / "existing.json").read_text() == '{"mine": true}\n'
    assert (rfolder / "out" / "r_TiO2.cif").read_text() == "my own CIF\n"


@pytest.mark.parametrize("text, start", [
    (_in_pattern("profile = {u = 3.0}"), "[[patterns]]"),
    (_RECIPE.replace("rutile.cif", "nope.cif"), "cif ="),
    (_RECIPE.replace('pattern = ["scale", "bkg"]', 'structure = ["cells"]'), "[[stages]]"),
    (_RECIPE + '[model]\nties = ["xray.nope = TiO2.a"]\n', "ties ="),
])
def test_rietveld_recipe_errors_name_the_line(rfolder, text, start):
    """The RecipeError carries the recipe's line of the key at fault."""
    from sciTie.recipes import load_recipe

    (rfolder / "bad.toml").write_text(text)
    with pytest.raises(RecipeError) as info:
        load_recipe(rfolder / "bad.toml")
    assert info.value.path.endswith("bad.toml") and info.value.line == _line(text, start)


def test_second_pattern_error_names_its_own_table(rfolder):
    """``patterns[1]`` is found by index: the line of the second [[patterns]] table."""
    from sciTie.recipes import load_recipe

    text = _RECIPE.replace('name = "xray"', 'name = "one"') \
        + '[[patterns]]\nname = "two"\nfile = "x.xye"\nprofile = {u = 1.0}\n'
    (rfolder / "two.toml").write_text(text)
    with pytest.raises(RecipeError, match=r"\[patterns\[1\]\]") as info:
        load_recipe(rfolder / "two.toml")
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line == "[[patterns]]"]
    assert info.value.line == lines[1]


# the quick form speaks in flags: a key its flag sets is named by the flag (--cif, not data.cif)
_XRAY = ["--radiation", "xray", "--wavelength", "1.5406"]
QUICK_CASES = [
    (["--cif", "nope.cif", "--pattern", "x.xye"], "--cif", "nope.cif"),
    (["--cif", "rutile.cif", "--pattern", "nope.xye"], "--pattern", "nope.xye"),
    (["--cif", "rutile.cif", "--pattern", "junk.xye", *_XRAY], "--pattern", "junk.xye:1"),
    (["--cif", "rutile.cif", "--pattern", "x.xye"], "--pattern",
     "give --instrument FILE.prm (a GSAS instrument file), or --radiation xray|neutron"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", "--radiation", "neutron"], "--pattern",
     "no wavelength: give --wavelength"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", *_XRAY, "--radiation", "xray"],
     "--radiation", "2 values for 1"),
    (["--cif", "nosym.cif", "--pattern", "x.xye"], "--cif", "nosym.cif"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", "--instrument", "i.prm", "--instrument",
      "i.prm"], "--instrument", "2 files for 1"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", "--instrument", "badlam.prm"],
     "--instrument", "badlam.prm:5"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", "--instrument", "nope.prm"],
     "--instrument", "nope.prm"),
    (["--pattern", "x.xye"], "[phases]", "no phases"),
    (["--cif", "rutile.cif"], "[patterns]", "no patterns"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", "--mode", "bogus"], "--mode",
     "'bogus'"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", *_XRAY, "--json", "existing.json"], "--json",
     "already exists"),
    (["--dataset", "nope"], "--dataset", "'nope'"),
    (["--dataset", "pbso4", "--set", 'model.ties=["xray.U = neutron.U"]'], "[model.ties]",
     "published protocol"),
    (["--dataset", "diffraction-synthetic", "--set", 'stages=[{pattern = ["scale"]}]'],
     "[stages]", "published protocol"),
    (["--dataset", "cucr2o4-seq", "--set", 'series.ties=[{slot = "a", to = "b"}]'],
     "[series.ties]", "published protocol"),
    (["--dataset", "cucr2o4-seq", "--set", "series.fit_range=[26.0, 4.5]"], "[series.fit_range]",
     "0 < lo < hi < 180"),
    (["--dataset", "cucr2o4-seq", "--set", "series.fit_range=[4.5]"], "[series.fit_range]",
     "[lo, hi]"),
    (["--cif", "rutile.cif", "--pattern", "x.xye", "--set", "fit.max_nfev=0"], "[fit.max_nfev]",
     ">= 1"),
]


@pytest.mark.parametrize("argv, key, fragment", cases(QUICK_CASES))
def test_rietveld_quick_form_errors(rfolder, capsys, monkeypatch, argv, key, fragment):
    from sciTie import recipes

    ran = []
    monkeypatch.setattr(recipes, "run_recipe", lambda r: ran.append(r))
    rc, err = _run_cli(["fit", "rietveld", *argv], capsys)
    assert rc == 2 and ran == []
    assert len(err) == 1 and err[0].startswith("scitie: error: "), err
    assert key in err[0] and fragment in err[0], err[0]


def test_valid_recipe_and_quick_form_reach_the_fit(rfolder, capsys, monkeypatch):
    """The cases above fail because of what they break: the unbroken forms pass every check."""
    from sciTie import recipes

    ran = []
    monkeypatch.setattr(recipes, "run_recipe", lambda r: ran.append(r) or (_ for _ in ()).throw(
        RuntimeError("stop here")))
    (rfolder / "ok.toml").write_text(_RECIPE)
    (rfolder / "okseries.toml").write_text(_RECIPE + _SERIES)
    assert _run_cli(["fit", "ok.toml"], capsys)[0] == 2
    assert _run_cli(["fit", "okseries.toml"], capsys)[0] == 2
    assert _run_cli(["fit", "rietveld", "--cif", "rutile.cif", "--pattern", "x.xye", *_XRAY],
                    capsys)[0] == 2
    assert len(ran) == 3


def test_rietveld_output_clash_is_refused_before_the_fit(rfolder, capsys, monkeypatch):
    """``--out`` naming a folder that holds one of the CIFs the fit would write: refused, and
    the user's CIF is untouched, before any work starts (also with --overwrite absent)."""
    from sciTie import recipes

    ran = []
    monkeypatch.setattr(recipes, "run_recipe", lambda r: ran.append(r))
    (rfolder / "ok.toml").write_text(_RECIPE)
    rc, err = _run_cli(["fit", "ok.toml", "--out", "out"], capsys)
    assert rc == 2 and ran == [] and "r_TiO2.cif" in err[0]
    assert (rfolder / "out" / "r_TiO2.cif").read_text() == "my own CIF\n"
    assert sorted(p.name for p in (rfolder / "out").iterdir()) == ["r_TiO2.cif"]


# ================================================================== real data
def _real(name):
    root = Path(os.environ.get("SCITIE_DATA_DIR", Path(__file__).resolve().parents[2]
                               / "shared" / "datasets"))
    folder = root / name
    if not folder.is_dir():
        pytest.skip(f"real dataset {name!r} not found under {root}: set SCITIE_DATA_DIR")
    return folder


def test_real_pbso4_files_broken_on_purpose(tmp_path):
    folder = _real("pbso4")
    lines = (folder / "PBSO4.XRA").read_text(errors="replace").splitlines()
    bank = next(i for i, line in enumerate(lines) if line.startswith("BANK"))
    assert read_gsas_std(folder / "PBSO4.XRA").size > 1000  # the real file reads
    cut = tmp_path / "cut.xra"
    cut.write_text("\n".join(lines[:bank + 20]) + "\n")
    err = check(lambda: read_gsas_std(cut), DataFormatError, "file ends after 19 data records")
    assert err.path == str(cut) and err.line == bank + 20   # the file's last line
    bad = list(lines)
    bad[bank + 5] = bad[bank + 5][:10] + "   nan" + bad[bank + 5][16:]
    nan = tmp_path / "nan.xra"
    nan.write_text("\n".join(bad) + "\n")
    err = check(lambda: read_gsas_std(nan), DataFormatError, "intensity is nan")
    assert err.line == bank + 6
    prm = (folder / "INST_XRY.PRM").read_text()
    line = next(i for i, t in enumerate(prm.splitlines(), 1) if "ICONS" in t)
    broken = tmp_path / "inst.prm"
    broken.write_text(prm.replace("1.540500", "     nan", 1))
    err = check(lambda: read_instrument(broken), DataFormatError, "finite numbers")
    assert err.line == line


def test_real_cucr2o4_fxye_out_of_order(tmp_path):
    folder = _real("cucr2o4_seq")
    src = folder / "OH_00.fxye"
    lines = src.read_text().splitlines()
    assert read_gsas_std(src).size > 1000
    first = next(i for i, line in enumerate(lines) if line.startswith("BANK")) + 1
    swapped = list(lines)
    swapped[first + 10], swapped[first + 11] = swapped[first + 11], swapped[first + 10]
    path = tmp_path / "swap.fxye"
    path.write_text("\n".join(swapped) + "\n")
    err = check(lambda: read_gsas_std(path), DataFormatError, "does not increase")
    assert err.line == first + 12


def test_real_cucr2o4_recipe_with_a_mistyped_stage_item(tmp_path, capsys, monkeypatch):
    folder = _real("cucr2o4_seq")
    from sciTie import recipes

    ran = []
    monkeypatch.setattr(recipes, "run_recipe", lambda r: ran.append(r))
    text = (f'kind = "rietveld"\nname = "mix"\n[[phases]]\ncif = "{folder}/CuCr2O4.cif"\n'
            f'[[phases]]\ncif = "{folder}/CuO.cif"\n[[patterns]]\nname = "xray"\n'
            f'file = "{folder}/OH_00.fxye"\ninstrument = "{folder}/OH_00.prm"\n'
            'fit_range = [4.5, 26.1]\n[[stages]]\npattern = ["scale", "bkg", "fractoin"]\n')
    (tmp_path / "mix.toml").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the CIF's negative Uiso
        rc, err = _run_cli(["fit", str(tmp_path / "mix.toml")], capsys)
    assert rc == 2 and ran == [] and len(err) == 1
    assert "mix.toml" in err[0] and "[stages[0]]" in err[0] and "'fractoin'" in err[0]
