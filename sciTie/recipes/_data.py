"""Reading a user's tabular data (CSV, NPY, netCDF) with errors that name file and line."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataFormatError

__all__ = ["read_table", "lengths_from_labels", "FORMATS"]

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".npy": "npy", ".nc": "netcdf",
           ".nc4": "netcdf", ".cdf": "netcdf"}


def _format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataFormatError(f"cannot tell the format from the suffix {path.suffix!r}; set "
                              f"data.format to one of csv, npy, netcdf", path=path) from None


def _read_csv(path: Path, columns: Sequence[str], missing=()) -> dict[str, np.ndarray]:
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise DataFormatError(f"cannot open: {exc.strerror or exc}", path=path) from None
    with handle:
        try:
            lines = [(n, line) for n, line in enumerate(handle, 1)
                     if line.strip() and not line.lstrip().startswith("#")]
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  "expected a CSV table", path=path) from None
    if not lines:
        raise DataFormatError("no header and no data (empty or only comments)", path=path)
    sample = lines[0][1]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader([line for _, line in lines], delimiter=delimiter)
    rows = list(reader)
    header = [h.strip() for h in rows[0]]
    absent = [c for c in columns if c not in header]
    if absent:
        raise DataFormatError(f"no column {absent[0]!r}; the header (line {lines[0][0]}) has "
                              f"{', '.join(header)}", path=path, line=lines[0][0],
                              key=absent[0])
    if len(rows) < 2:
        raise DataFormatError("a header but no data rows", path=path, line=lines[0][0])
    out = {}
    for name in columns:
        j = header.index(name)
        values = np.empty(len(rows) - 1)
        for i, (row, (n, _)) in enumerate(zip(rows[1:], lines[1:])):
            if j >= len(row):
                raise DataFormatError(f"row has {len(row)} fields, the header {len(header)}",
                                      path=path, line=n, key=name)
            if name in missing and (not row[j].strip() or row[j].strip().lower() == "nan"):
                values[i] = np.nan  # an empty cell: a missing value
                continue
            try:
                v = float(row[j])
            except ValueError:
                raise DataFormatError(f"{row[j].strip()!r} is not a number", path=path, line=n,
                                      key=name) from None
            if not math.isfinite(v):
                raise DataFormatError(f"{row[j].strip()!r} is not finite (a fit needs finite "
                                      "values; remove or impute it)", path=path, line=n,
                                      key=name)
            values[i] = v
        out[name] = values
    return out


def _read_npy(path: Path, allow_nan: bool = False) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataFormatError(f"not a numeric .npy array ({exc}); object arrays are refused",
                              path=path) from None
    except Exception as exc:  # a corrupt header raises EOFError, SyntaxError, TokenError ...
        raise DataFormatError(f"cannot read as .npy: {type(exc).__name__}: {exc}",
                              path=path) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise DataFormatError(f"holds {getattr(arr, 'dtype', type(arr))}, expected numbers",
                              path=path)
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise DataFormatError(f"has shape {arr.shape}; expected (n_samples,) or "
                              "(n_samples, n_features)", path=path)
    arr = arr.astype(float).reshape(arr.shape[0], -1)
    bad = np.flatnonzero((np.isinf(arr) if allow_nan else ~np.isfinite(arr)).any(axis=1))
    if bad.size:
        raise DataFormatError(f"row {int(bad[0])} holds {'inf' if allow_nan else 'NaN or inf'}",
                              path=path)
    return arr


def _read_netcdf(path: Path, columns: Sequence[str], missing=()) -> dict[str, np.ndarray]:
    import xarray as xr

    try:
        ds = xr.open_dataset(path)
    except Exception as exc:  # netCDF/HDF5 raise many types for a broken file
        raise DataFormatError(f"cannot read as netCDF: {exc}", path=path) from None
    with ds:
        out = {}
        for name in columns:
            if name not in ds.variables:
                raise DataFormatError(f"no variable {name!r}; the file has "
                                      f"{', '.join(map(str, ds.variables))}", path=path, key=name)
            values = np.asarray(ds[name].values, dtype=float).ravel()
            bad = np.flatnonzero(np.isinf(values) if name in missing else ~np.isfinite(values))
            if bad.size:
                raise DataFormatError(f"element {int(bad[0])} is "
                                      f"{'inf' if name in missing else 'NaN or inf'}",
                                      path=path, key=name)
            out[name] = values
    return out


class _MissingColumns:
    """The columns where a missing value is allowed: named ones, all (True) or none."""

    def __init__(self, spec: Sequence[str] | bool) -> None:
        self.every = spec is True
        self.names = frozenset(() if isinstance(spec, bool) else spec)

    def __contains__(self, name: object) -> bool:
        return self.every or name in self.names


def read_table(path: str | Path, columns: Sequence[str], *, fmt: str | None = None,
               missing: Sequence[str] | bool = ()) -> dict[str, np.ndarray]:
    """Columns (CSV header names, netCDF variables) of a data file as float arrays.

    For ``.npy`` files ``columns`` may be empty (every column is returned as ``"0"``,
    ``"1"`` ...) or name the column indices. In the columns named by ``missing`` (True:
    every column) an empty CSV cell, ``NaN`` or a NaN in a binary file is a missing value
    (NaN in the result); everywhere else, and infinities anywhere, are refused.
    """
    path = Path(path)
    kind = _format(path, fmt)
    missing = _MissingColumns(missing)
    if kind == "csv":
        return _read_csv(path, columns, missing)
    if kind == "netcdf":
        return _read_netcdf(path, columns, missing)
    if kind == "npy":
        arr = _read_npy(path, allow_nan=True)
        names = list(columns) or [str(j) for j in range(arr.shape[1])]
        out = {}
        for name in names:
            if not name.isdigit() or int(name) >= arr.shape[1]:
                raise DataFormatError(f"column {name!r}: an .npy file has columns 0.."
                                      f"{arr.shape[1] - 1} (give their indices as strings)",
                                      path=path, key=name)
            values = arr[:, int(name)]
            bad = np.flatnonzero(np.isnan(values))
            if bad.size and name not in missing:
                raise DataFormatError(f"row {int(bad[0])} holds NaN", path=path, key=name)
            out[name] = values
        return out
    raise DataFormatError(f"unknown format {kind!r}; use csv, npy or netcdf", path=path)


def lengths_from_labels(labels: np.ndarray, *, path: str | Path | None = None,
                        key: str | None = None) -> np.ndarray:
    """Sequence lengths from a column of sequence labels (each sequence one contiguous run)."""
    labels = np.asarray(labels)
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.r_[0, change]
    seen = labels[starts]
    if len(np.unique(seen)) != len(seen):
        dup = next(v for i, v in enumerate(seen) if v in seen[:i])
        raise DataFormatError(f"sequence {dup:g} appears in two separate runs; rows of one "
                              "sequence must be contiguous", path=path, key=key)
    return np.diff(np.r_[starts, labels.size]).astype(np.int64)
