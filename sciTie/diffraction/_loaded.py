"""Patterns from a loader's Dataset: the intensity with its instrument stored in ``attrs``.

Shared by the bundled data sets (:mod:`.data`, :mod:`._si_tof`), below both.
"""
from __future__ import annotations

import xarray as xr

from ..errors import ValidationError
from ._pattern import PowderPattern
from .profiles import PeakProfile, get_profile

__all__ = ["pattern_dataset", "instrument_from_attrs", "pattern_from_dataset"]


def pattern_dataset(pattern: xr.DataArray, attrs: dict) -> xr.Dataset:
    """A loaded pattern as a Dataset: ``intensity`` on its axis (with units), the
    pattern's and the loader's ``attrs`` (the instrument)."""
    ds = xr.Dataset({"intensity": pattern.rename(None)})
    axis = pattern.dims[0]
    ds[axis].attrs["units"] = "degree" if axis == "two_theta" else "microsecond"
    ds.attrs.update({k: v for k, v in pattern.attrs.items() if isinstance(v, (str, int, float))})
    ds.attrs.update(attrs)
    return ds


def instrument_from_attrs(attrs: dict) -> PeakProfile:
    """The instrument a loader stored in a Dataset's ``attrs`` (see
    :meth:`PeakProfile.to_attrs`)."""
    if "profile" not in attrs:
        raise ValidationError("attrs: no 'profile' entry; expected a Dataset from one of "
                              "sciTie's loaders (its instrument in attrs)")
    return get_profile(str(attrs["profile"])).from_attrs(attrs)


def pattern_from_dataset(ds: xr.Dataset, phases, *, name: str,
                         instrument_values: dict | None = None, **kwargs) -> PowderPattern:
    """Build a :class:`PowderPattern` from a loader's Dataset (instrument from ``attrs``).

    ``phases`` is a :class:`Phase` or a list of them. ``instrument_values`` override the
    stored instrument's settings or starting values (``{"SL": 0.001}``); keyword arguments
    are passed on (fit_range, exclude, n_background, cell_correction, refine_profile ...).
    """
    if "intensity" not in ds or "variance" not in ds.coords:
        raise ValidationError(f"ds: expected a Dataset with 'intensity' and a 'variance' "
                              f"coordinate, got variables {list(ds.data_vars)}")
    instrument = instrument_from_attrs(ds.attrs).replace(**(instrument_values or {}))
    return PowderPattern(ds["intensity"], phases, instrument, name=name, **kwargs)


# -- PbSO4 -----------------------------------------------------------------------------------------
