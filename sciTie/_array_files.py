"""Rows of an array stored in a file (.npy, netCDF, zarr), read without loading the rest.

Used on Dask workers, which read their own part of a data set: the shape first (to plan the
partitions), then a range of rows. A netCDF file or zarr group holding several arrays must
name the one to read ``X``; a single array is read whatever its name.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import numpy as np

from .errors import DataFormatError

__all__ = ["ARRAY_SUFFIXES", "array_file_shape", "read_array_rows"]

_NETCDF = (".nc", ".nc4", ".cdf", ".netcdf")
#: File name endings this module reads.
ARRAY_SUFFIXES = (".npy", *_NETCDF, ".zarr")
#: Name of the array read from a file that holds several.
DEFAULT_VARIABLE = "X"
#: netCDF-C and HDF5 are not thread-safe, even for different files (two Dask worker threads
#: opening netCDF files at once crash the process): one netCDF access at a time per process.
_NETCDF_GUARD = threading.Lock()
#: CPython 3.11's ast module is not thread-safe (python/cpython#106905), and numpy parses a
#: .npy header with it: two Dask worker threads opening .npy files at once failed with
#: "AST constructor recursion depth mismatch" (seen in tests/test_hmm_distributed.py). The
#: headers are parsed one at a time; the reads that follow are not serialised.
_NPY_HEADER_GUARD = threading.Lock()


def _kind(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix in _NETCDF:
        return "netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise DataFormatError(f"cannot read arrays from {suffix or 'a file without suffix'!r} "
                          f"files; use one of {', '.join(ARRAY_SUFFIXES)}", path=path)


def _check_exists(path: str) -> None:
    if not os.path.exists(path):
        raise DataFormatError("no such file or directory (seen from the process reading it: "
                              "on a cluster, the workers must see the same path)", path=path)


def _pick(names: list[str], path: str, what: str) -> str:
    if DEFAULT_VARIABLE in names:
        return DEFAULT_VARIABLE
    if len(names) == 1:
        return names[0]
    raise DataFormatError(f"holds {len(names)} {what} ({', '.join(sorted(names)) or 'none'}); "
                          f"name the one to read {DEFAULT_VARIABLE!r}", path=path)


@contextlib.contextmanager
def _opened(path: str):
    """The selected array of a file (sliceable along its first axis), closed on exit."""
    kind = _kind(path)
    _check_exists(path)
    with _NETCDF_GUARD if kind == "netcdf" else contextlib.nullcontext():
        close = None
        try:
            try:
                if kind == "npy":
                    with _NPY_HEADER_GUARD:
                        array = np.load(path, mmap_mode="r", allow_pickle=False)
                elif kind == "netcdf":
                    import xarray as xr

                    ds = xr.open_dataset(path)
                    close = ds.close
                    array = ds[_pick(list(ds.data_vars), path, "variables")].variable
                else:
                    import zarr

                    node = zarr.open(path, mode="r")
                    if isinstance(node, zarr.Group):
                        node = node[_pick([name for name, _ in node.arrays()], path, "arrays")]
                    array = node
            except DataFormatError:
                raise
            except ImportError as err:
                raise DataFormatError(f"reading {kind} files needs {err.name}: pip install "
                                      f"{err.name}", path=path) from err
            except Exception as err:  # unreadable or corrupt: name the file
                raise DataFormatError(f"cannot read the {kind} array: {err}",
                                      path=path) from err
            if len(array.shape) not in (1, 2):
                raise DataFormatError(f"holds an array of shape {tuple(array.shape)}; expected "
                                      "(n_samples,) or (n_samples, n_features)", path=path)
            yield array
        finally:
            if close is not None:
                close()


def array_file_shape(path: str | os.PathLike) -> tuple[int, int]:
    """Shape ``(n_samples, n_features)`` of the array in a file (a 1-D array is one feature).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file, a netCDF file or a zarr store.

    Returns
    -------
    tuple of int
        Number of rows and of columns.

    Raises
    ------
    DataFormatError
        If the file does not exist, cannot be read or holds no suitable array.
    """
    with _opened(os.fspath(path)) as array:
        shape = tuple(int(n) for n in array.shape)
    return (shape[0], 1) if len(shape) == 1 else shape


def read_array_rows(path: str | os.PathLike, start: int = 0, stop: int | None = None
                    ) -> np.ndarray:
    """Rows ``start:stop`` of the array in a file, as a 2-D in-memory array.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file, a netCDF file or a zarr store.
    start, stop : int, optional
        Row range (default: all rows).

    Returns
    -------
    ndarray, shape (stop - start, n_features)
        The rows; a 1-D array is returned as one column.
    """
    with _opened(os.fspath(path)) as array:
        try:
            block = np.array(array[start:stop])
        except Exception as err:
            raise DataFormatError(f"cannot read rows {start}:{stop}: {err}",
                                  path=path) from err
    return block[:, None] if block.ndim == 1 else block
