"""The files of a run: what a recipe reads and writes, found from its schema.

Every key of a recipe kind's schema says what its value is to the run's files (a
:class:`~sciTie.recipes.Field`'s ``role``), so one walk over the validated settings finds
them for every kind: data files, CIFs, instrument files, a user's code, the data folders of
named datasets, the recipe itself, and the files the run writes on its own (a checkpoint).
The command line gives them to :func:`sciTie.io.check_targets`, which refuses any output that
is one of them before any work starts.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ._schema import ArrayOfTables, Field, Table

__all__ = ["RunFiles", "run_files"]

_GLOB = set("*?[")


@dataclass
class RunFiles:
    """What a run reads (``inputs``) and writes by itself (``writes``): path -> recipe key."""

    inputs: dict[Path, str] = field(default_factory=dict)
    writes: dict[Path, str] = field(default_factory=dict)


def _fields(schema: Table, node: Any, prefix: str = "") -> Iterator[tuple[str, Field, Any]]:
    """(dotted key, field, value) of every field with a role that the settings set."""
    if not isinstance(node, dict):
        return
    for key, spec in schema.fields.items():
        value = node.get(key)
        dotted = f"{prefix}{key}"
        if isinstance(spec, Table):
            yield from _fields(spec, value, dotted + ".")
        elif isinstance(spec, ArrayOfTables):
            for i, item in enumerate(value or []):
                yield from _fields(spec.item, item, f"{dotted}[{i}].")
        elif spec.role is not None and value not in (None, "", []):
            yield dotted, spec, value


def _paths(recipe, key: str, value: Any) -> Iterator[tuple[Path, str]]:
    values = value if isinstance(value, list) else [value]
    for i, v in enumerate(values):
        if not isinstance(v, (str, os.PathLike)):
            continue
        label = key if len(values) == 1 else f"{key}[{i}]"
        p = Path(os.fspath(v)).expanduser()
        p = p if p.is_absolute() else recipe.base / p
        if _GLOB & set(os.fspath(v)):
            for match in sorted(glob.glob(os.fspath(p))):
                yield Path(match), label
        yield p, label


def _dataset_folders(name: str, recipe) -> list[Path]:
    """Where a named dataset's files are (bundled: the package's data folder)."""
    from .. import datasets

    try:
        entry = datasets.get_entry(name)
    except (LookupError, ValueError, TypeError):
        return []  # an unknown name is the kind's check to report
    if entry.bundled:
        return [Path(datasets.__file__).resolve().parent / "data"]
    path = recipe.get("data.path")
    if path:
        path = Path(os.fspath(path)).expanduser()
        path = path if path.is_absolute() else recipe.base / path
    try:
        return [datasets.data_dir(name, path)]
    except (OSError, ValueError):
        return []  # not found: the run reports it


def run_files(recipe) -> RunFiles:
    """The files a validated recipe's run reads and writes by itself.

    Parameters
    ----------
    recipe : Recipe

    Returns
    -------
    RunFiles
        ``inputs``: the recipe file, every path its keys name (glob patterns expanded; a
        folder stands for its files), the folders of the datasets it names; ``writes``: files
        the run writes besides ``--json``/``--out`` (a checkpoint).
    """
    from ._recipe import BUNDLED, get_kind

    out = RunFiles()
    if recipe.path is not None:
        out.inputs[Path(recipe.path)] = "the recipe"
    elif Path(recipe.base).resolve() == BUNDLED:
        out.inputs[BUNDLED] = "the bundled recipes"
    for key, spec, value in _fields(get_kind(recipe.kind).schema, recipe.settings):
        if spec.role == "dataset":
            for folder in _dataset_folders(str(value), recipe):
                out.inputs.setdefault(folder, f"{key} = {value!r}")
            continue
        target = out.inputs if spec.role == "input" else out.writes
        for p, label in _paths(recipe, key, value):
            target.setdefault(p, label)
    return out
