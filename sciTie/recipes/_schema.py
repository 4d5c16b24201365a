"""A small schema language for recipe tables: every key known, typed and documented.

A schema is a :class:`Table` of :class:`Field` s (and nested tables). :func:`validate` walks a
parsed TOML document against it and raises :class:`~sciTie.errors.RecipeError` naming the
file, the dotted key, the line (found in the recipe text) and what is expected: unknown keys,
wrong types, values outside their choices or ranges, missing required keys.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import RecipeError

__all__ = ["Field", "Table", "ArrayOfTables", "validate", "line_of", "ROLES"]

_TYPE_NAMES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
               "path": "a file path (string)", "list[str]": "a list of strings",
               "list[int]": "a list of integers", "list[float]": "a list of numbers",
               "list[list[int]]": "a list of lists of integers", "int|list[int]":
               "an integer or a list of integers", "table": "a table", "any": "a value",
               "list[path]": "a list of file paths"}


#: what a key's value is to the files of a run (see :func:`sciTie.recipes.run_files`)
ROLES = ("input", "output", "dataset")


@dataclass
class Field:
    """One key: its type, default, allowed values and meaning (shown in errors and docs).

    ``role`` says what the value is to the run's files: ``"input"`` (a file or folder the run
    reads; glob patterns allowed), ``"output"`` (a file the run itself writes, such as a
    checkpoint), ``"dataset"`` (the name of a dataset whose files the run reads). Keys of
    type ``path`` and ``list[path]`` are inputs unless they say otherwise. No output of a run
    may be one of its inputs.
    """

    type: str
    doc: str = ""
    default: Any = None
    required: bool = False
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], str | None] | None = None
    role: str | None = None

    def __post_init__(self) -> None:
        if self.role is None and self.type in ("path", "list[path]"):
            self.role = "input"
        if self.role is not None and self.role not in ROLES:  # pragma: no cover - schema bug
            raise ValueError(f"unknown field role {self.role!r}; one of {ROLES}")


@dataclass
class Table:
    """A table of fields; ``open`` tables accept any key (values checked by the kind)."""

    fields: Mapping[str, "Field | Table | ArrayOfTables"] = field(default_factory=dict)
    doc: str = ""
    open: bool = False


@dataclass
class ArrayOfTables:
    """``[[name]]`` entries, each validated against ``item``."""

    item: Table
    doc: str = ""


def line_of(text: str | None, key: str) -> int | None:
    """Line (1-based) where dotted ``key`` is set in TOML ``text``, if it can be found."""
    if not text:
        return None
    parts = key.split(".")
    table: list[str] = []
    indexed: list[str] = []     # the same path with ``[k]`` on an array-of-tables entry
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if m:
            table = [p.strip().strip('"') for p in m.group(1).split(".")]
            indexed = list(table)
            if line.startswith("[["):
                name = ".".join(table)
                seen[name] = seen.get(name, -1) + 1
                indexed[-1] += f"[{seen[name]}]"
            if parts in (table, indexed):
                return n
            continue
        m = re.match(r'^("?)([A-Za-z0-9_\-.]+)\1\s*=', line)
        if m:
            for path in (indexed, table):
                here = path + m.group(2).split(".")
                if here == parts or (len(parts) > len(here) and parts[:len(here)] == here):
                    return n
    return None


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind in ("str", "path"):
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "table":
        return isinstance(value, dict)
    if kind.startswith("list[") and kind.endswith("]"):
        inner = kind[5:-1]
        return isinstance(value, list) and all(_type_ok(inner, v) for v in value)
    if kind == "int|list[int]":
        return _type_ok("int", value) or _type_ok("list[int]", value)
    raise ValueError(f"unknown schema type {kind!r}")  # pragma: no cover - schema bug


def _fail(message: str, *, path: Any, text: str | None, key: str) -> RecipeError:
    return RecipeError(message, path=path, line=line_of(text, key), key=key)


def _check_number(f: Field, value: Any, key: str, path: Any, text: str | None) -> None:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, list):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise _fail(f"{key} must be finite, got {v!r}", path=path, text=text, key=key)
        if f.minimum is not None and v < f.minimum:
            raise _fail(f"{key} must be >= {f.minimum:g}, got {v!r}", path=path, text=text,
                        key=key)
        if f.maximum is not None and v > f.maximum:
            raise _fail(f"{key} must be <= {f.maximum:g}, got {v!r}", path=path, text=text,
                        key=key)


def validate(doc: Mapping[str, Any], schema: Table, *, path: Any = None, text: str | None = None,
             prefix: str = "") -> dict[str, Any]:
    """Check ``doc`` against ``schema``; return it with defaults filled in.

    Raises
    ------
    RecipeError
        Naming the file, the key, its line and what is expected.
    """
    out: dict[str, Any] = {}
    for key, value in doc.items():
        dotted = f"{prefix}{key}"
        spec = schema.fields.get(key)
        if spec is None:
            if schema.open:
                out[key] = value
                continue
            known = ", ".join(sorted(schema.fields)) or "(none)"
            raise _fail(f"unknown key {dotted!r}; known keys here: {known}", path=path,
                        text=text, key=dotted)
        if isinstance(spec, Table):
            if not isinstance(value, dict):
                raise _fail(f"{dotted} must be a table ([{dotted}]), got {type(value).__name__}",
                            path=path, text=text, key=dotted)
            out[key] = validate(value, spec, path=path, text=text, prefix=dotted + ".")
            continue
        if isinstance(spec, ArrayOfTables):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise _fail(f"{dotted} must be an array of tables ([[{dotted}]])", path=path,
                            text=text, key=dotted)
            out[key] = [validate(v, spec.item, path=path, text=text, prefix=dotted + ".")
                        for v in value]
            continue
        if not _type_ok(spec.type, value):
            raise _fail(f"{dotted} must be {_TYPE_NAMES.get(spec.type, spec.type)}, got "
                        f"{value!r} ({type(value).__name__})", path=path, text=text, key=dotted)
        if spec.choices is not None and value not in spec.choices:
            raise _fail(f"{dotted} must be one of {', '.join(map(repr, spec.choices))}; got "
                        f"{value!r}", path=path, text=text, key=dotted)
        if spec.type in ("int", "float", "list[int]", "list[float]", "int|list[int]"):
            _check_number(spec, value, dotted, path, text)
        if spec.check is not None:
            problem = spec.check(value)
            if problem:
                raise _fail(f"{dotted}: {problem}", path=path, text=text, key=dotted)
        out[key] = value
    for key, spec in schema.fields.items():
        if key in out:
            continue
        dotted = f"{prefix}{key}"
        if isinstance(spec, Field):
            if spec.required:
                raise _fail(f"missing required key {dotted!r} ({spec.doc or spec.type})",
                            path=path, text=text, key=dotted)
            out[key] = spec.default
        elif isinstance(spec, Table):
            out[key] = _defaults(spec)  # an absent table: its required keys are not needed
        else:
            out[key] = []
    return out


def _defaults(schema: Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, spec in schema.fields.items():
        if isinstance(spec, Field):
            out[key] = spec.default
        elif isinstance(spec, Table):
            out[key] = _defaults(spec)
        else:
            out[key] = []
    return out


def describe(schema: Table, prefix: str = "") -> list[str]:
    """Lines documenting every key of ``schema`` (for ``scitie recipe --keys`` and docs)."""
    lines = []
    for key, spec in schema.fields.items():
        dotted = f"{prefix}{key}"
        if isinstance(spec, Table):
            lines.append(f"[{dotted}]  {spec.doc}".rstrip())
            lines += describe(spec, dotted + ".")
        elif isinstance(spec, ArrayOfTables):
            lines.append(f"[[{dotted}]]  {spec.doc}".rstrip())
            lines += describe(spec.item, dotted + ".")
        else:
            extra = " (required)" if spec.required else (
                f" (default {spec.default!r})" if spec.default is not None else "")
            choices = f"; one of {', '.join(map(repr, spec.choices))}" if spec.choices else ""
            lines.append(f"  {dotted} = {_TYPE_NAMES.get(spec.type, spec.type)}{extra}{choices}"
                         + (f": {spec.doc}" if spec.doc else ""))
    return lines
