"""Datasets: bundled series, generated synthetic sets, and external data found on disk.

>>> from sciTie import datasets
>>> datasets.list_datasets()          # doctest: +SKIP
>>> ds = datasets.load("earthquakes")  # doctest: +SKIP
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable

from .._config import get_config
from ..errors import ArgumentTypeError, UnknownNameError, ValidationError
from ._registry import REGISTRY, DatasetEntry

__all__ = ["list_datasets", "load", "get_entry", "data_dir", "bundled_path", "resolve_callable",
           "DatasetEntry", "REGISTRY"]

ENV_VAR = "SCITIE_DATA_DIR"


def list_datasets() -> list[str]:
    """Names of every dataset sciTie knows, bundled and external."""
    return sorted(REGISTRY)


def get_entry(name: str) -> DatasetEntry:
    """The registry entry of ``name``; a ``ValueError`` lists the known names otherwise."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"dataset name must be a str, got {type(name).__name__}")
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}"
        ) from None


def resolve_callable(spec: str) -> Callable[..., Any]:
    """Import ``"module:function"`` and return the function."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def bundled_path(filename: str) -> Path:
    """Path of a data file shipped inside the package (``sciTie/datasets/data``)."""
    if not isinstance(filename, str) or not filename or Path(filename).name != filename \
            or filename in (".", ".."):
        raise ValidationError(f"bundled data file must be a plain file name, got {filename!r}")
    path = Path(__file__).resolve().parent / "data" / filename
    if not path.exists():
        raise FileNotFoundError(f"bundled data file {filename!r} is missing from {path.parent}")
    return path


def data_dir(name: str, path: str | os.PathLike | None = None) -> Path:
    """Folder holding the files of external dataset ``name``.

    Looks at ``path`` first, then ``<data_dir>/<folder>`` where ``data_dir`` is the setting
    of :func:`sciTie.set_config` (default ``$SCITIE_DATA_DIR``). The error says what is
    missing and how to point sciTie at it.
    """
    entry = get_entry(name)
    candidates: list[Path] = []
    if path is not None:
        p = Path(path)
        candidates += [p / entry.external_folder, p] if entry.external_folder else [p]
    configured = get_config()["data_dir"]
    if configured:
        candidates.append(Path(configured) / (entry.external_folder or name))
    for c in candidates:
        if c.is_dir():
            return c
    where = ", ".join(str(c) for c in candidates) or ("nowhere (no path=, no sciTie.set_config(data_dir=...) and no "
                                                 "$SCITIE_DATA_DIR)")
    raise FileNotFoundError(
        f"external dataset {name!r} not found; looked in {where}. Pass path=<folder holding "
        f"the {name} files> or set {ENV_VAR} to the folder that contains "
        f"'{entry.external_folder or name}/' (in the sciTie checkout: ../shared/datasets)."
    )


def load(name: str, **kwargs: Any) -> Any:
    """Load dataset ``name`` as xarray object(s) with provenance in ``attrs``.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    **kwargs
        Passed to the dataset's loader, e.g. ``path=`` for external data.
    """
    entry = get_entry(name)
    try:
        loader = resolve_callable(entry.loader)
    except (ImportError, AttributeError) as exc:  # model package not installed/built yet
        raise RuntimeError(f"dataset {name!r} needs {entry.loader}, which is unavailable: {exc}") from exc
    import inspect

    try:
        inspect.signature(loader).bind(**kwargs)
    except TypeError as exc:  # an option this loader does not have
        accepted = ", ".join(inspect.signature(loader).parameters) or "none"
        raise ArgumentTypeError(f"dataset {name!r}: {exc}; its loader accepts: {accepted}") from None
    return loader(**kwargs)
