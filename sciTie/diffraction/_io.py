"""Readers and writers for powder-diffraction data and instrument files.

Patterns are :class:`xarray.DataArray` objects on one axis, ``two_theta`` (degrees) for
constant-wavelength data or ``tof`` (microseconds) for time-of-flight data, with the
variance of every point in a ``variance`` coordinate; provenance lives in ``attrs``.
Instrument files (GSAS ``.prm``, GSAS-II ``.instprm``) are parsed here into their records;
the peak profile of the instrument kind they describe maps the records onto its parameters
(:func:`read_instrument`).
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from .. import io as sio
from .._validation import check_array, check_int
from ..errors import ArgumentTypeError, DataFormatError, ValidationError

__all__ = ["read_gsas_std", "read_instrument", "read_xye", "read_data", "write_xye",
           "write_gsas_std", "make_pattern", "AXES"]

#: The axes a pattern can be on: name -> (its label in messages, its units).
AXES = {"two_theta": ("2theta", "degrees"), "tof": ("TOF", "microseconds")}


def _pattern_axis(pattern) -> str:
    """The axis coordinate of a pattern DataArray (``two_theta`` or ``tof``)."""
    for axis in AXES:
        if isinstance(pattern, xr.DataArray) and axis in pattern.coords:
            return axis
    return "two_theta"


def _check_pattern_arg(pattern, what: str) -> str:
    """``pattern`` is a DataArray as :func:`make_pattern` builds it, with finite values;
    returns its axis."""
    axis = _pattern_axis(pattern)
    if not isinstance(pattern, xr.DataArray) or axis not in pattern.coords \
            or "variance" not in pattern.coords or pattern.ndim != 1:
        raise ArgumentTypeError(f"{what}: pattern must be a 1-D xarray.DataArray with "
                                "'two_theta' (or 'tof') and 'variance' coordinates (see "
                                f"make_pattern), got {type(pattern).__name__}")
    for label, arr in ((axis, pattern[axis].values), ("intensity", pattern.values),
                       ("variance", pattern["variance"].values)):
        if not np.all(np.isfinite(np.asarray(arr, dtype=float))):
            raise ValidationError(f"{what}: pattern {label} holds NaN or infinite values; a "
                                  "file would not read back")
    return axis


def _fail(path, lineno, msg):
    raise DataFormatError(msg, path=path, line=lineno)


def _check_axis(axis: str) -> tuple[str, str]:
    if axis not in AXES:
        raise ValidationError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    return AXES[axis]


def _check_points(path, x, y, var, lines, axis: str = "two_theta") -> None:
    """Every point finite, the axis inside its domain (2θ in [0, 180), TOF > 0) and strictly
    increasing, variance > 0: the first offending point is reported with its file and line
    (``lines[i]``: line of point ``i``)."""
    label, units = _check_axis(axis)
    for what, arr in ((label, x), ("intensity", y), ("esd/variance", var)):
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            _fail(path, int(lines[i]), f"point {i + 1}: {what} is {arr[i]}; every value must be "
                                       "a finite number")
    bad = (x < 0) | (x >= 180) if axis == "two_theta" else x <= 0
    if bad.any():
        i = int(np.argmax(bad))
        domain = "outside [0, 180)" if axis == "two_theta" else "not positive"
        _fail(path, int(lines[i]), f"point {i + 1}: {label} = {x[i]:g} {units} is {domain}; "
                                   f"expected {label} in {units}")
    if x.size > 1:
        step = np.diff(x)
        if np.any(step <= 0):
            i = int(np.argmax(step <= 0)) + 1
            _fail(path, int(lines[i]), f"point {i + 1}: {label} = {x[i]:g} does not increase "
                                       f"(previous point {x[i - 1]:g}); {label} must be "
                                       "strictly increasing")
    bad = var <= 0
    if bad.any():
        i = int(np.argmax(bad))
        _fail(path, int(lines[i]), f"point {i + 1}: variance {var[i]:g} must be > 0")


def make_pattern(x, intensity, variance, *, name="pattern", attrs=None,
                 axis: str = "two_theta") -> xr.DataArray:
    """Build a pattern DataArray, checking shapes and that every variance is positive.

    Parameters
    ----------
    x, intensity, variance : array_like
        1-D arrays of equal length; ``x`` strictly increasing, on ``axis``.
    name : str
        Name of the DataArray.
    attrs : dict, optional
        Provenance stored in ``attrs``.
    axis : {'two_theta', 'tof'}
        The pattern's axis: 2θ in degrees, or time of flight in microseconds.

    Returns
    -------
    xarray.DataArray
        Intensities on dim ``axis`` with coordinate ``variance``.
    """
    label, _ = _check_axis(axis)
    if not isinstance(name, str):
        raise ArgumentTypeError(f"name must be a str, got {type(name).__name__}")
    if attrs is not None and not isinstance(attrs, dict):
        raise ArgumentTypeError(f"attrs must be a dict, got {type(attrs).__name__}")
    x, y, var = (check_array(v, n, finite=False, allow_empty=True)
                 for v, n in ((x, axis), (intensity, "intensity"), (variance, "variance")))
    if x.ndim != 1 or y.shape != x.shape or var.shape != x.shape:
        raise ValidationError(
            f"{axis}, intensity and variance must be 1-D of equal length, got shapes "
            f"{x.shape}, {y.shape}, {var.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(var))):
        raise ValidationError(f"{axis}, intensity and variance must be finite")
    if x.size > 1 and np.any(np.diff(x) <= 0):
        raise ValidationError(f"{axis} must be strictly increasing")
    if np.any(var <= 0):
        i = int(np.argmax(var <= 0))
        raise ValidationError(f"variance must be > 0 everywhere; point {i} ({label}={x[i]:g}) "
                              f"has {var[i]:g}")
    return xr.DataArray(y, dims=(axis,), coords={axis: x, "variance": (axis, var)},
                        name=name, attrs=dict(attrs or {}))


def read_data(path: str | os.PathLike, *, axis: str = "two_theta",
              name: str | None = None) -> xr.DataArray:
    """A pattern file on ``axis``: columns (``.xye``, ``.xys``, ``.xy``, ``.dat``, ``.txt``)
    through :func:`read_xye`, anything else as GSAS data through :func:`read_gsas_std`."""
    path = sio.as_path(path, "path")
    if path.suffix.lower() in (".xye", ".xys", ".xy", ".dat", ".txt"):
        return read_xye(path, name=name, axis=axis)
    return read_gsas_std(path, name=name, axis=axis)


def read_gsas_std(path: str | os.PathLike, *, name: str | None = None,
                  axis: str | None = None) -> xr.DataArray:
    """Read a GSAS data file (``.XRA``, ``.CWN``, ``.gsa``, ``.gss``, ``.fxye``).

    Line 1 is a title; then a ``BANK`` line ``BANK 1 NCHAN NREC BINTYP BCOEF1 BCOEF2 ...
    [STD|ESD|FXYE]``. Constant-wavelength banks (``CONST``) have start and step in
    centidegrees; time-of-flight banks (``SLOG``) start at BCOEF1 µs and grow by the factor
    ``1 + BCOEF3`` from point to point. Then records of ten 8-character fields, each a
    2-character detector count (blank = 1) and a 6-character intensity; the variance of a
    point is ``I / ncount`` (floored at ``1 / ncount`` so zero counts keep a finite weight).
    Only the first NCHAN points are used. ``ESD`` banks (value, esd pairs of 8 characters)
    and ``FXYE`` banks (one ``x I esd`` line per point; x in centidegrees for ``CONST``
    banks, in µs for ``SLOG`` banks) are also accepted.

    Parameters
    ----------
    path : str or path-like
        The file.
    name : str, optional
        Name of the returned DataArray (default: the file stem).
    axis : {'two_theta', 'tof'}, optional
        The axis expected (default: the one the bank's binning says).

    Returns
    -------
    xarray.DataArray
        See :func:`make_pattern`; ``attrs`` hold the title, file and detector counts.

    Raises
    ------
    ValueError
        Naming file and line for a bad header, non-numeric field or too few points.
    """
    path = sio.as_path(path, "path")
    with open(path, "r", errors="replace") as fh:
        lines = fh.read().splitlines()
    if not lines:
        _fail(path, None, "file is empty; expected a title line and a BANK line")
    title = lines[0].strip()
    bank_line = None
    for i, line in enumerate(lines[1:], start=2):
        if line.strip().upper().startswith("BANK"):
            bank_line = i
            break
        if line.strip() and not line.lstrip().startswith("#") and i > 3:
            break
    if bank_line is None:
        _fail(path, 2, "no 'BANK n NCHAN NREC CONST start step ...' header line found")
    fields = lines[bank_line - 1].split()
    if len(fields) < 7:
        _fail(path, bank_line, f"BANK line has {len(fields)} fields, expected at least 7: "
                               "BANK n NCHAN NREC CONST start step")
    try:
        nchan = int(fields[2])
        nrec = int(fields[3])
    except ValueError:
        _fail(path, bank_line, f"NCHAN/NREC must be integers, got {fields[2]!r} {fields[3]!r}")
    btype = fields[4].upper()
    if btype not in ("CONST", "CONS", "SLOG"):
        _fail(path, bank_line, f"only CONST/CONS (constant wavelength) and SLOG (time of "
                               f"flight) binning are supported, got {fields[4]!r}")
    file_axis = "tof" if btype == "SLOG" else "two_theta"
    if axis is not None and axis != file_axis:
        _check_axis(axis)
        _fail(path, bank_line, f"the bank holds {AXES[file_axis][0]} data ({btype} binning); "
                               f"expected {AXES[axis][0]} data for this instrument")
    axis = file_axis
    if nchan <= 0 or nrec <= 0:
        _fail(path, bank_line, f"NCHAN and NREC must be positive, got {nchan}, {nrec}")
    if any(f.upper() in ("FXYE", "FXY") for f in fields[7:]):
        return _read_fxye(path, lines, bank_line, nchan, title, name, axis)
    try:
        start, step = float(fields[5]), float(fields[6])
        if btype == "SLOG":
            step = float(fields[7])
        else:
            start, step = start / 100.0, step / 100.0
    except (ValueError, IndexError):
        _fail(path, bank_line, f"start/step must be numbers, got {fields[5:8]!r}")
    if not (math.isfinite(start) and math.isfinite(step)):
        _fail(path, bank_line, f"start/step must be finite numbers, got {fields[5:8]!r}")
    if step <= 0 or (btype == "SLOG" and start <= 0):
        _fail(path, bank_line, f"start and step must be > 0, got {fields[5:8]!r}")
    fmt = "ESD" if "ESD" in (f.upper() for f in fields[8 if btype == "SLOG" else 7:]) \
        else "STD"
    per_line = 5 if fmt == "ESD" else 10
    need = math.ceil(nchan / per_line)
    data_lines = lines[bank_line:]
    if len(data_lines) < need:
        _fail(path, bank_line + len(data_lines),
              f"file ends after {len(data_lines)} data records but NCHAN={nchan} needs {need}")
    y = np.empty(nchan)
    ncount = np.ones(nchan)
    esd = np.empty(nchan)
    k = 0
    for r in range(need):
        lineno = bank_line + 1 + r
        line = data_lines[r].rstrip("\n")
        for j in range(per_line):
            if k >= nchan:
                break
            field = line[j * 8 * (2 if fmt == "ESD" else 1):][:16 if fmt == "ESD" else 8]
            if not field.strip():
                _fail(path, lineno, f"point {k + 1} of NCHAN={nchan} is missing (record too "
                                    "short: wrong channel count or truncated file)")
            try:
                if fmt == "STD":
                    nc = field[:2].strip()
                    ncount[k] = float(nc) if nc else 1.0
                    y[k] = float(field[2:8])
                else:
                    y[k] = float(field[:8])
                    esd[k] = float(field[8:16])
            except ValueError:
                _fail(path, lineno, f"non-numeric field {field!r} for point {k + 1}")
            k += 1
    if fmt == "STD":
        if np.any(ncount <= 0):
            i = int(np.argmax(ncount <= 0))
            _fail(path, bank_line + 1 + i // per_line,
                  f"detector count must be >= 1, got {ncount[i]:g} for point {i + 1}")
        variance = np.maximum(y, 1.0) / ncount
    else:
        if np.any(~(esd > 0)):
            i = int(np.argmax(~(esd > 0)))
            _fail(path, bank_line + 1 + i // per_line,
                  f"esd must be > 0 and finite, got {esd[i]:g} for point {i + 1}")
        variance = esd ** 2
    x = (start * (1.0 + step) ** np.arange(nchan) if btype == "SLOG"
         else start + step * np.arange(nchan))
    _check_points(path, x, y, variance, bank_line + 1 + np.arange(nchan) // per_line, axis)
    return make_pattern(x, y, variance, name=name or path.stem, axis=axis,
                        attrs={"title": title, "source_file": str(path), "format": f"GSAS {fmt}",
                               "nchan": nchan, "n_detectors_max": float(ncount.max())})


def _fxye_block(lines, bank_line: int, nchan: int) -> np.ndarray | None:
    """The ``nchan`` points after the BANK line parsed in one go, or None when the block is
    anything but plain rows of 2 or 3 numbers with positive esds (the line-by-line reader
    then names the offending line)."""
    block = lines[bank_line:bank_line + nchan]
    if len(block) < nchan:
        return None
    text = "\n".join(block)
    if "#" in text or "bank" in text.lower():
        return None
    try:
        arr = np.loadtxt(io.StringIO(text), ndmin=2)
    except ValueError:
        return None
    if arr.shape[0] != nchan or arr.shape[1] not in (2, 3) \
            or (arr.shape[1] == 3 and not np.all(arr[:, 2] > 0)):
        return None
    return arr


def _read_fxye(path, lines, bank_line, nchan, title, name, axis):
    """FXYE / FXY bank: one point per line, x (2θ in centidegrees, TOF in µs), intensity[,
    esd]."""
    arr = _fxye_block(lines, bank_line, nchan)
    if arr is not None:
        where = bank_line + 1 + np.arange(nchan)
    else:
        arr, where = _fxye_lines(path, lines, bank_line, nchan, axis)
    var = arr[:, 2] ** 2 if arr.shape[1] == 3 else np.maximum(arr[:, 1], 1.0)
    x = arr[:, 0] / 100.0 if axis == "two_theta" else arr[:, 0]
    _check_points(path, x, arr[:, 1], var, where, axis)
    return make_pattern(x, arr[:, 1], var, name=name or path.stem, axis=axis,
                        attrs={"title": title, "source_file": str(path), "format": "GSAS FXYE",
                               "nchan": nchan})


def _fxye_lines(path, lines, bank_line, nchan, axis):
    """The points of an FXYE bank read line by line, failing with the line of a bad one."""
    rows = []
    where = []
    last = bank_line
    for i, line in enumerate(lines[bank_line:], start=bank_line + 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.upper().startswith("BANK") or len(rows) == nchan:
            break
        last = i
        try:
            vals = [float(v) for v in s.split()]
        except ValueError:
            _fail(path, i, f"non-numeric value in {s!r}")
        if len(vals) not in (2, 3):
            _fail(path, i, f"expected {AXES[axis][0]} intensity [esd] (2 or 3 columns), got "
                           f"{len(vals)} in {s!r}")
        if rows and len(vals) != len(rows[0]):
            _fail(path, i, f"expected {len(rows[0])} columns like line {where[0]}, got "
                           f"{len(vals)}")
        if len(vals) > 2 and not vals[2] > 0:
            _fail(path, i, f"esd must be > 0 and finite, got {vals[2]:g}")
        rows.append(vals)
        where.append(i)
    if len(rows) < nchan:
        _fail(path, last + 1, f"file ends after {len(rows)} points but NCHAN={nchan}")
    return np.asarray(rows), where


def write_gsas_std(pattern: xr.DataArray, path: str | os.PathLike, *,
                   overwrite: bool = False) -> Path:
    """Write a pattern as a GSAS STD file with integer counts and detector counts.

    The detector count of a point is ``round(I / variance)`` (1..99), so files written from
    :func:`read_gsas_std` round-trip. Intensities are rounded to integers.
    """
    path = sio.as_path(path, "GSAS data file")
    sio.check_targets([path], overwrite=overwrite, what="GSAS data file")
    if _check_pattern_arg(pattern, "write_gsas_std") != "two_theta":
        raise ValidationError("pattern: write_gsas_std writes constant-wavelength (2theta) "
                              "patterns; use write_xye for time of flight")
    tth = pattern["two_theta"].values
    y = np.rint(pattern.values).astype(int)
    var = pattern["variance"].values
    step = np.diff(tth).mean() if tth.size > 1 else 0.01
    if tth.size > 1 and not np.allclose(np.diff(tth), step, atol=1e-6):
        raise ValidationError("pattern: write_gsas_std needs a constant two_theta step")
    if y.size and (y.min() < -99999 or y.max() > 999999):
        # the STD format has 6 characters per intensity: a wider number would run into the
        # next field and the file would read back wrong
        raise ValidationError(f"pattern: intensities {y.min()}..{y.max()} do not fit the 6 "
                              "characters of a GSAS STD field (-99999..999999); rescale the "
                              "pattern or use write_xye")
    nc = np.clip(np.rint(np.maximum(y, 1) / var), 1, 99).astype(int)
    n = tth.size
    nrec = math.ceil(n / 10)
    out = [f"{pattern.attrs.get('title', pattern.name or 'sciTie pattern')[:80]}",
           f"BANK 1 {n} {nrec} CONST {tth[0] * 100:.4f} {step * 100:.4f} 0 0 STD"]
    for r in range(nrec):
        cells = []
        for k in range(r * 10, min(n, r * 10 + 10)):
            c = "  " if nc[k] == 1 else f"{nc[k]:2d}"
            cells.append(f"{c}{y[k]:6d}")
        out.append("".join(cells))
    return sio.write_text(path, "\n".join(out) + "\n", overwrite=overwrite,
                          what="GSAS data file")


def read_xye(path: str | os.PathLike, *, name: str | None = None,
             axis: str = "two_theta") -> xr.DataArray:
    """Read a plain two- or three-column file (xy, xye, xys): x, intensity[, esd].

    ``x`` is 2θ in degrees (``axis="two_theta"``) or the time of flight in µs
    (``axis="tof"``). Without an esd column the variance is ``max(I, 1)`` (counting
    statistics). Lines starting with ``#`` or ``!`` and blank lines are skipped.
    """
    label, _ = _check_axis(axis)
    path = sio.as_path(path, "path")
    rows = []
    where = []
    ncol = None
    with open(path, "r", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            s = line.strip()
            if not s or s[0] in "#!":
                continue
            parts = s.replace(",", " ").split()
            try:
                vals = [float(p) for p in parts]
            except ValueError:
                _fail(path, lineno, f"non-numeric value in {s!r}")
            if ncol is None:
                ncol = len(vals)
                if ncol not in (2, 3):
                    _fail(path, lineno, f"expected 2 or 3 columns ({label}, I[, esd]), got "
                                        f"{ncol}")
            elif len(vals) != ncol:
                _fail(path, lineno, f"expected {ncol} columns like the first data line, got "
                                    f"{len(vals)}")
            if ncol == 3 and not vals[2] > 0:
                _fail(path, lineno, f"esd must be > 0 and finite, got {vals[2]:g}")
            rows.append(vals)
            where.append(lineno)
    if not rows:
        _fail(path, None, f"no data lines found; expected lines of {label} intensity [esd]")
    arr = np.asarray(rows)
    var = arr[:, 2] ** 2 if ncol == 3 else np.maximum(arr[:, 1], 1.0)
    _check_points(path, arr[:, 0], arr[:, 1], var, where, axis)
    return make_pattern(arr[:, 0], arr[:, 1], var, name=name or path.stem, axis=axis,
                        attrs={"source_file": str(path), "format": f"xy{'e' if ncol == 3 else ''}"})


def write_xye(pattern: xr.DataArray, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write x (2θ or TOF), intensity, esd columns (full precision) to ``path``."""
    sio.check_targets([path], overwrite=overwrite, what="xye file")
    axis = _check_pattern_arg(pattern, "write_xye")
    arr = np.column_stack([pattern[axis].values, pattern.values,
                           np.sqrt(pattern["variance"].values)])
    lines = [f"# {AXES[axis][0]} intensity esd"] + [" ".join(f"{v:.10g}" for v in row)
                                                    for row in arr]
    return sio.write_text(path, "\n".join(lines) + "\n", overwrite=overwrite, what="xye file")


def _gsas_records(path: Path, bank: int) -> tuple[dict, str | None]:
    """The ``INS`` records of one bank of a GSAS instrument file, ``{key: (line, text)}``,
    and its ``HTYPE``."""
    found: dict[str, tuple[int, str]] = {}
    htype = None
    with open(path, "r", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.startswith("INS"):
                continue
            key = line[3:12]
            if "HTYPE" in key:
                htype = line[12:].split()[0] if line[12:].split() else None
                continue
            try:
                b = int(line[3:6])
            except ValueError:
                continue
            if b != bank:
                continue
            found[line[6:12].strip()] = (lineno, line[12:].rstrip("\n"))
    return found, htype


def _instprm_values(path: Path, bank: int) -> dict:
    """``{key: (line, value)}`` of a GSAS-II ``.instprm`` file (``key:value`` lines, ``;``
    joining several on one line, ``#BANK n`` headers for several banks)."""
    banks: dict[int, dict] = {}
    current = 1
    with open(path, "r", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            s = line.strip()
            if s.upper().startswith("#BANK"):
                try:
                    current = int(s[5:].split(":")[0].split()[0])
                except (ValueError, IndexError):
                    _fail(path, lineno, f"bad bank header {s!r}; expected '#BANK n: ...'")
                continue
            if not s or s.startswith("#"):
                continue
            for item in s.split(";"):
                if not item.strip():
                    continue
                key, sep, value = item.partition(":")
                if not sep:
                    _fail(path, lineno, f"expected 'name:value', got {item.strip()!r}")
                value = value.strip()
                try:
                    value = float(value)
                except ValueError:
                    pass
                banks.setdefault(current, {})[key.strip()] = (lineno, value)
    if not banks:
        _fail(path, None, "no 'name:value' lines found")
    if bank not in banks:
        _fail(path, None, f"no bank {bank}; the file holds banks {sorted(banks)}")
    return banks[bank]


def read_instrument(path: str | os.PathLike, bank: int = 1):
    """The instrument of one bank of a GSAS ``.prm``/``.ins`` or GSAS-II ``.instprm`` file,
    or of an EasyDiffraction experiment CIF.

    The instrument type in the file (GSAS ``HTYPE``, GSAS-II ``Type``: ``PXC``/``PNC``
    constant wavelength, ``PNT`` time of flight) chooses the peak profile, whose
    ``from_gsas``/``from_instprm`` maps the file's values onto its parameters. A ``.cif``
    file is read by :func:`~sciTie.diffraction.conventions.read_easydiffraction_instrument`
    (constant wavelength, one bank).

    Returns
    -------
    PeakProfile
        :class:`~sciTie.diffraction.ConstantWavelength` or
        :class:`~sciTie.diffraction.TimeOfFlight`; its ``source_file`` attribute names the
        file.
    """
    from .profiles import ConstantWavelength, TimeOfFlight

    path = sio.as_path(path, "path")
    bank = check_int(bank, "bank", minimum=1, maximum=99)
    if not path.exists():
        raise FileNotFoundError(f"instrument file {path} does not exist")
    if path.suffix.lower() == ".cif":
        from .conventions import read_easydiffraction_instrument

        return read_easydiffraction_instrument(path)
    if path.suffix.lower() == ".instprm":
        values = _instprm_values(path, bank)
        kind = str(values.get("Type", (None, ""))[1]).upper()
        if len(kind) < 3 or kind[2] not in "CT":
            _fail(path, values.get("Type", (None,))[0], f"Type {kind!r}: expected PXC, PNC "
                                                         "(constant wavelength) or PNT (time "
                                                         "of flight)")
        cls = TimeOfFlight if kind[2] == "T" else ConstantWavelength
        inst = cls.from_instprm(values, path)
    else:
        records, htype = _gsas_records(path, bank)
        if not records:
            _fail(path, None, f"no 'INS {bank:2d} ICONS' line (instrument constants) for bank "
                              f"{bank}")
        cls = TimeOfFlight if htype and htype.upper()[2:3] == "T" else ConstantWavelength
        inst = cls.from_gsas(records, htype, path)
    inst.source_file = str(path)
    return inst
