"""Provenance attributes: what a result file must say so that its run can be reproduced."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from typing import Any, Iterable, Mapping

from .errors import ArgumentTypeError
from .io import _jsonable, as_path, file_sha256

__all__ = ["provenance", "input_record"]


def input_record(paths: Iterable[Any]) -> list[dict[str, Any]]:
    """Name, absolute path, size and SHA-256 of each input file (missing files say so)."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]  # one file, not the characters of its name
    if not isinstance(paths, Iterable):
        raise ArgumentTypeError(f"inputs must be a file path or a list of them, got "
                                f"{type(paths).__name__}")
    out = []
    for p in paths:
        path = as_path(p, "input file")
        entry: dict[str, Any] = {"name": path.name, "path": os.path.abspath(path)}
        if path.is_file():
            entry["bytes"] = path.stat().st_size
            entry["sha256"] = file_sha256(path)
        else:
            entry["sha256"] = None
        out.append(entry)
    return out


def provenance(*, model: str, settings: Mapping[str, Any] | None = None,
               seed: Any = None, inputs: Iterable[Any] = (), recipe: str | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """netCDF-safe attributes recording how a result was made.

    Parameters
    ----------
    model : str
        The estimator or command (``"TiedPoissonHMM"``, ``"scitie fit pbso4"``).
    settings : mapping, optional
        The full settings (constructor arguments, options); stored as JSON text.
    seed : optional
        The random seed(s) used.
    inputs : iterable of path-like, optional
        Input files; their names and SHA-256 checksums are stored.
    recipe : str, optional
        The recipe text the run was made from.
    extra : mapping, optional
        More attributes (numbers or text).

    Returns
    -------
    dict
        Attributes with text and number values only (netCDF accepts them).
    """
    import numpy as np

    from . import __version__

    if not isinstance(model, str):
        raise ArgumentTypeError(f"model must be a str naming the estimator or command, got "
                                f"{type(model).__name__}")
    for name, value in (("settings", settings), ("extra", extra)):
        if value is not None and not isinstance(value, Mapping):
            raise ArgumentTypeError(f"{name} must be a mapping (dict) or None, got "
                                    f"{type(value).__name__}")

    attrs: dict[str, Any] = {
        "model": str(model),
        "sciTie_version": str(__version__),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "settings": json.dumps(_jsonable(dict(settings or {})), sort_keys=True, default=repr),
        "random_seed": json.dumps(_jsonable(seed), default=repr),
        "inputs": json.dumps(input_record(inputs)),
    }
    if recipe is not None:
        attrs["recipe"] = str(recipe)
    for key, value in (extra or {}).items():
        value = _jsonable(value)
        attrs[str(key)] = value if isinstance(value, (int, float, str)) else json.dumps(value)
    return attrs
