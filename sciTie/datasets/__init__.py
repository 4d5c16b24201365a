"""Datasets: bundled files, generated synthetic sets, and external data downloaded on first
use (or read from a local mirror).

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
from ..errors import ArgumentTypeError, DownloadError, UnknownNameError, ValidationError
from ._registry import REGISTRY, REMOTE, DatasetEntry, RemoteFile

__all__ = ["list_datasets", "load", "get_entry", "data_dir", "bundled_path", "resolve_callable",
           "DatasetEntry", "RemoteFile", "REGISTRY", "REMOTE"]

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


def _checkout_mirror() -> Path | None:
    """``../shared/datasets`` beside a source checkout of sciTie (None when installed)."""
    root = Path(__file__).resolve().parents[2]
    mirror = root.parent / "shared" / "datasets"
    return mirror if (root / "pyproject.toml").is_file() and mirror.is_dir() else None


def _complete(folder: Path, files) -> bool:
    """``folder`` exists and has every file of the dataset (by name; a mirror is the user's
    own copy and is not re-hashed)."""
    return folder.is_dir() and all((folder / f.name).is_file() for f in files)


def data_dir(name: str, path: str | os.PathLike | None = None) -> Path:
    """Folder holding the files of dataset ``name``, downloading them on first use.

    Looks, in order, at ``path`` (a folder given by the caller), the files shipped inside
    the package (bundled datasets), ``<data_dir>/<folder>`` where ``data_dir`` is the
    setting of :func:`sciTie.set_config` (default ``$SCITIE_DATA_DIR``), ``../shared/datasets``
    beside a source checkout, and the download cache (the ``cache_dir`` setting, default the
    user's cache folder). A dataset listed in :data:`REMOTE` and found in none of them is
    downloaded into the cache from its public URL, each file checked against its SHA-256.

    Raises
    ------
    FileNotFoundError
        ``path`` was given and does not exist.
    DownloadError
        The dataset is nowhere on this machine and could not be downloaded (or the
        ``offline`` setting forbids it); the message names the URL and the settings that
        point sciTie at a local copy.
    """
    from ._fetch import fetch_files, missing_files

    entry = get_entry(name)
    folder = entry.external_folder or name
    files = REMOTE.get(folder, ())
    if path is not None:
        p = Path(path)
        for c in ([p / entry.external_folder, p] if entry.external_folder else [p]):
            if c.is_dir():
                return c
        raise FileNotFoundError(f"dataset {name!r}: path {str(p)!r} is not a folder (expected "
                                f"the folder holding the {name} files, or the one containing "
                                f"'{folder}/')")
    if entry.bundled and entry.external_folder:
        return _package_folder(entry.external_folder)
    looked: list[str] = []
    configured = get_config()["data_dir"]
    mirrors = ([Path(configured) / folder] if configured else []) + \
        ([m / folder] if (m := _checkout_mirror()) is not None else [])
    for c in mirrors:
        if _complete(c, files):
            return c
        looked.append(str(c) + (" (incomplete)" if c.is_dir() else ""))
    if not files:
        raise FileNotFoundError(
            f"external dataset {name!r} not found; looked in {', '.join(looked) or 'nowhere'}. "
            f"Pass path=<folder holding the {name} files> or set the data_dir setting "
            f"(sciTie.set_config(data_dir=...) or {ENV_VAR}) to the folder that contains "
            f"'{folder}/'.")
    cache = Path(get_config()["cache_dir"]) / "datasets" / folder
    if not missing_files(cache, files):
        return cache
    looked.append(str(cache))
    urls = sorted({f.urls[0] for f in files})
    advice = (f"Looked in {', '.join(looked)}. To work offline, put the files ("
              f"{', '.join(f.name for f in files[:3])}{' ...' if len(files) > 3 else ''}) in "
              f"<folder>/{folder}/ and set sciTie.set_config(data_dir=<folder>) or "
              f"{ENV_VAR}=<folder> (in a sciTie checkout: ../shared/datasets).")
    if get_config()["offline"]:
        raise DownloadError(f"dataset {name!r} is not on this machine and downloads are off "
                            f"(the offline setting, SCITIE_OFFLINE); it comes from "
                            f"{', '.join(urls)}. {advice}")
    try:
        return fetch_files(cache, files)
    except DownloadError as exc:
        raise DownloadError(f"dataset {name!r} is not on this machine and could not be "
                            f"downloaded: {exc}. {advice}") from None


def _package_folder(folder: str) -> Path:
    """A folder of data shipped inside the package (``sciTie/datasets/data/<folder>``)."""
    path = Path(__file__).resolve().parent / "data" / folder
    if not path.is_dir():
        raise FileNotFoundError(f"bundled data folder {folder!r} is missing from {path.parent} "
                                "(a broken installation: reinstall sciTie)")
    return path


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
