"""Readers and writers for powder-diffraction data and GSAS instrument files.

Patterns are :class:`xarray.DataArray` objects with a ``two_theta`` coordinate (degrees) and
the variance of every point in a ``variance`` coordinate; provenance lives in ``attrs``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from .. import io as sio
from .._validation import check_array, check_int
from ..errors import ArgumentTypeError, DataFormatError, ValidationError

__all__ = ["read_gsas_std", "read_gsas_prm", "read_xye", "write_xye", "write_gsas_std",
           "make_pattern"]


def _check_pattern_arg(pattern, what: str) -> None:
    """``pattern`` is a DataArray as :func:`make_pattern` builds it, with finite values."""
    if not isinstance(pattern, xr.DataArray) or "two_theta" not in pattern.coords \
            or "variance" not in pattern.coords or pattern.ndim != 1:
        raise ArgumentTypeError(f"{what}: pattern must be a 1-D xarray.DataArray with "
                                "'two_theta' and 'variance' coordinates (see make_pattern), got "
                                f"{type(pattern).__name__}")
    for label, arr in (("two_theta", pattern["two_theta"].values), ("intensity", pattern.values),
                       ("variance", pattern["variance"].values)):
        if not np.all(np.isfinite(np.asarray(arr, dtype=float))):
            raise ValidationError(f"{what}: pattern {label} holds NaN or infinite values; a "
                                  "file would not read back")


def _fail(path, lineno, msg):
    raise DataFormatError(msg, path=path, line=lineno)


def _check_points(path, tth, y, var, lines) -> None:
    """Every point finite, 2θ in [0, 180) and strictly increasing, variance > 0: the first
    offending point is reported with its file and line (``lines[i]``: line of point ``i``)."""
    for what, arr in (("2theta", tth), ("intensity", y), ("esd/variance", var)):
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            _fail(path, int(lines[i]), f"point {i + 1}: {what} is {arr[i]}; every value must be "
                                       "a finite number")
    bad = (tth < 0) | (tth >= 180)
    if bad.any():
        i = int(np.argmax(bad))
        _fail(path, int(lines[i]), f"point {i + 1}: 2theta = {tth[i]:g} degrees is outside "
                                   "[0, 180); expected 2theta in degrees")
    if tth.size > 1:
        step = np.diff(tth)
        if np.any(step <= 0):
            i = int(np.argmax(step <= 0)) + 1
            _fail(path, int(lines[i]), f"point {i + 1}: 2theta = {tth[i]:g} does not increase "
                                       f"(previous point {tth[i - 1]:g}); 2theta must be "
                                       "strictly increasing")
    bad = var <= 0
    if bad.any():
        i = int(np.argmax(bad))
        _fail(path, int(lines[i]), f"point {i + 1}: variance {var[i]:g} must be > 0")


def make_pattern(two_theta, intensity, variance, *, name="pattern", attrs=None) -> xr.DataArray:
    """Build a pattern DataArray, checking shapes and that every variance is positive.

    Parameters
    ----------
    two_theta, intensity, variance : array_like
        1-D arrays of equal length; ``two_theta`` in degrees, strictly increasing.
    name : str
        Name of the DataArray.
    attrs : dict, optional
        Provenance stored in ``attrs``.

    Returns
    -------
    xarray.DataArray
        Intensities on dim ``two_theta`` with coordinate ``variance``.
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"name must be a str, got {type(name).__name__}")
    if attrs is not None and not isinstance(attrs, dict):
        raise ArgumentTypeError(f"attrs must be a dict, got {type(attrs).__name__}")
    tth, y, var = (check_array(v, n, finite=False, allow_empty=True)
                   for v, n in ((two_theta, "two_theta"), (intensity, "intensity"),
                                (variance, "variance")))
    if tth.ndim != 1 or y.shape != tth.shape or var.shape != tth.shape:
        raise ValidationError(
            f"two_theta, intensity and variance must be 1-D of equal length, got shapes "
            f"{tth.shape}, {y.shape}, {var.shape}")
    if not (np.all(np.isfinite(tth)) and np.all(np.isfinite(y)) and np.all(np.isfinite(var))):
        raise ValidationError("two_theta, intensity and variance must be finite")
    if tth.size > 1 and np.any(np.diff(tth) <= 0):
        raise ValidationError("two_theta must be strictly increasing")
    if np.any(var <= 0):
        i = int(np.argmax(var <= 0))
        raise ValidationError(f"variance must be > 0 everywhere; point {i} (2theta={tth[i]:g}) has "
                         f"{var[i]:g}")
    return xr.DataArray(y, dims=("two_theta",),
                        coords={"two_theta": tth, "variance": ("two_theta", var)},
                        name=name, attrs=dict(attrs or {}))


def read_gsas_std(path: str | os.PathLike, *, name: str | None = None) -> xr.DataArray:
    """Read a GSAS constant-wavelength data file (``.XRA``, ``.CWN``, ``.gsa``, ``.fxye``).

    Line 1 is a title; then a ``BANK`` line ``BANK 1 NCHAN NREC CONST start step 0 0 [STD]``
    with start and step in centidegrees; then records of ten 8-character fields, each a
    2-character detector count (blank = 1) and a 6-character intensity. The variance of a
    point is ``I / ncount`` (floored at ``1 / ncount`` so zero counts keep a finite weight).
    Only the first NCHAN points are used. ``ESD`` banks (value, esd pairs of 8 characters)
    and ``FXYE`` banks (one ``2θ(centideg) I esd`` line per point) are also accepted.

    Parameters
    ----------
    path : str or path-like
        The file.
    name : str, optional
        Name of the returned DataArray (default: the file stem).

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
    if btype not in ("CONST", "CONS"):
        _fail(path, bank_line, f"only CONST/CONS binning is supported, got {fields[4]!r}")
    if nchan <= 0 or nrec <= 0:
        _fail(path, bank_line, f"NCHAN and NREC must be positive, got {nchan}, {nrec}")
    if any(f.upper() in ("FXYE", "FXY") for f in fields[7:]):
        return _read_fxye(path, lines, bank_line, nchan, title, name)
    try:
        start = float(fields[5]) / 100.0
        step = float(fields[6]) / 100.0
    except ValueError:
        _fail(path, bank_line, f"start/step must be numbers, got {fields[5]!r} {fields[6]!r}")
    if not (math.isfinite(start) and math.isfinite(step)):
        _fail(path, bank_line, f"start/step must be finite numbers, got {fields[5]!r} "
                               f"{fields[6]!r}")
    if step <= 0:
        _fail(path, bank_line, f"step must be > 0, got {step * 100:g} centidegrees")
    fmt = "ESD" if "ESD" in (f.upper() for f in fields[7:]) else "STD"
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
    tth = start + step * np.arange(nchan)
    _check_points(path, tth, y, variance, bank_line + 1 + np.arange(nchan) // per_line)
    return make_pattern(tth, y, variance, name=name or path.stem,
                        attrs={"title": title, "source_file": str(path), "format": f"GSAS {fmt}",
                               "nchan": nchan, "n_detectors_max": float(ncount.max())})


def _read_fxye(path, lines, bank_line, nchan, title, name):
    """FXYE / FXY bank: one point per line, 2θ in centidegrees, intensity[, esd]."""
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
            _fail(path, i, f"expected 2theta intensity [esd] (2 or 3 columns), got "
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
    arr = np.asarray(rows)
    var = arr[:, 2] ** 2 if arr.shape[1] == 3 else np.maximum(arr[:, 1], 1.0)
    _check_points(path, arr[:, 0] / 100.0, arr[:, 1], var, where)
    return make_pattern(arr[:, 0] / 100.0, arr[:, 1], var, name=name or path.stem,
                        attrs={"title": title, "source_file": str(path), "format": "GSAS FXYE",
                               "nchan": nchan})


def write_gsas_std(pattern: xr.DataArray, path: str | os.PathLike, *,
                   overwrite: bool = False) -> Path:
    """Write a pattern as a GSAS STD file with integer counts and detector counts.

    The detector count of a point is ``round(I / variance)`` (1..99), so files written from
    :func:`read_gsas_std` round-trip. Intensities are rounded to integers.
    """
    path = sio.as_path(path, "GSAS data file")
    sio.check_targets([path], overwrite=overwrite, what="GSAS data file")
    _check_pattern_arg(pattern, "write_gsas_std")
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


def read_xye(path: str | os.PathLike, *, name: str | None = None) -> xr.DataArray:
    """Read a plain two- or three-column file: 2θ, intensity[, esd].

    Without an esd column the variance is ``max(I, 1)`` (counting statistics). Lines starting
    with ``#`` or ``!`` and blank lines are skipped.
    """
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
                    _fail(path, lineno, f"expected 2 or 3 columns (2theta, I[, esd]), got {ncol}")
            elif len(vals) != ncol:
                _fail(path, lineno, f"expected {ncol} columns like the first data line, got "
                                    f"{len(vals)}")
            if ncol == 3 and not vals[2] > 0:
                _fail(path, lineno, f"esd must be > 0 and finite, got {vals[2]:g}")
            rows.append(vals)
            where.append(lineno)
    if not rows:
        _fail(path, None, "no data lines found; expected lines of 2theta intensity [esd]")
    arr = np.asarray(rows)
    var = arr[:, 2] ** 2 if ncol == 3 else np.maximum(arr[:, 1], 1.0)
    _check_points(path, arr[:, 0], arr[:, 1], var, where)
    return make_pattern(arr[:, 0], arr[:, 1], var, name=name or path.stem,
                        attrs={"source_file": str(path), "format": f"xy{'e' if ncol == 3 else ''}"})


def write_xye(pattern: xr.DataArray, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write 2θ, intensity, esd columns (full precision) to ``path``."""
    sio.check_targets([path], overwrite=overwrite, what="xye file")
    _check_pattern_arg(pattern, "write_xye")
    arr = np.column_stack([pattern["two_theta"].values, pattern.values,
                           np.sqrt(pattern["variance"].values)])
    lines = ["# 2theta intensity esd"] + [" ".join(f"{v:.10g}" for v in row) for row in arr]
    return sio.write_text(path, "\n".join(lines) + "\n", overwrite=overwrite, what="xye file")


def read_gsas_prm(path: str | os.PathLike, bank: int = 1) -> dict:
    """Read a GSAS instrument-parameter (``.prm``/``.ins``) file for one bank.

    Returns a dict in the units of :class:`PowderPattern` instrument parameters: ``lam1``,
    ``lam2`` (Å; ``lam2 = 0`` for one wavelength), ``zero`` (degrees; the file holds
    centidegrees), ``polarization``, ``ratio`` (Kα2/Kα1), ``radiation`` (``"xray"`` or
    ``"neutron"`` from ``HTYPE``), ``profile_type`` and the profile coefficients
    ``U, V, W, P`` (centideg²), ``X, Y`` (centideg) and ``SL, HL``.
    """
    path = sio.as_path(path, "path")
    bank = check_int(bank, "bank", minimum=1, maximum=99)
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
    if "ICONS" not in found:
        _fail(path, None, f"no 'INS {bank:2d} ICONS' line (wavelengths) for bank {bank}")
    lineno, text = found["ICONS"]
    # fixed-width fields of 10 characters: lambda1, lambda2, zero, (unused), polarisation;
    # then IPOLA and the Kalpha2/Kalpha1 ratio. A field may be blank (11-BM files leave the
    # fourth one empty), so splitting on blanks would shift the polarisation.
    fields = [text[i * 10:(i + 1) * 10].strip() for i in range(5)] + text[50:].split()
    try:
        vals = [float(v) if v else None for v in fields]
    except ValueError:
        _fail(path, lineno, f"non-numeric value in ICONS line {text.strip()!r}")
    if len(vals) < 3 or any(v is None for v in vals[:3]):
        _fail(path, lineno, "ICONS needs at least lambda1 lambda2 zero")
    if any(v is not None and not math.isfinite(v) for v in vals):
        _fail(path, lineno, f"ICONS values must be finite numbers, got {text.strip()!r}")
    lam1, lam2, zero = vals[0], vals[1], vals[2]
    if lam1 <= 0:
        _fail(path, lineno, f"wavelength lambda1 must be > 0, got {lam1:g}")
    if lam2 < 0:
        _fail(path, lineno, f"wavelength lambda2 must be >= 0, got {lam2:g}")
    pol = vals[4] if len(vals) > 4 and vals[4] is not None else 0.5
    ratio = vals[6] if len(vals) > 6 and vals[6] is not None else 0.5
    if not 0 <= pol <= 1:
        _fail(path, lineno, f"polarisation (5th ICONS field) must be in [0, 1], got {pol:g}")
    if ratio < 0:
        _fail(path, lineno, f"Kalpha2/Kalpha1 ratio must be >= 0, got {ratio:g}")
    radiation = "neutron" if htype and htype.upper().startswith("PN") else "xray"
    out = {"lam1": lam1, "lam2": lam2, "zero": zero / 100.0, "polarization": pol,
           "ratio": ratio if lam2 > 0 else 0.0, "radiation": radiation, "source_file": str(path)}
    key1 = "PRCF1"
    if key1 in found:
        ln, t = found[key1]
        try:
            ptype = int(t.split()[0])
        except (ValueError, IndexError):
            _fail(path, ln, f"bad profile type in {t.strip()!r}")
        coefs: list[float] = []
        for sub in ("PRCF11", "PRCF12", "PRCF13"):
            if sub in found:
                ln2, t2 = found[sub]
                try:
                    coefs += [float(v) for v in t2.split()]
                except ValueError:
                    _fail(path, ln2, f"non-numeric profile coefficient in {t2.strip()!r}")
                if not all(math.isfinite(c) for c in coefs):
                    _fail(path, ln2, f"profile coefficients must be finite, got {t2.strip()!r}")
        coefs += [0.0] * (8 - len(coefs))
        out["profile_type"] = ptype
        if ptype in (2, 3, 4):
            out.update(U=coefs[0], V=coefs[1], W=coefs[2], P=coefs[3], X=coefs[4], Y=coefs[5],
                       SL=coefs[6], HL=coefs[7])
        elif ptype == 1:
            out.update(U=coefs[0], V=coefs[1], W=coefs[2], P=0.0, X=0.0, Y=0.0,
                       SL=0.0, HL=0.0)
        else:
            _fail(path, ln, f"profile type {ptype} is not supported (use 1, 2, 3 or 4)")
    return out
