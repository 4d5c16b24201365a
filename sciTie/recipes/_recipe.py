"""Recipes: a whole fit in one reviewable TOML file, run by ``scitie fit RECIPE.toml``.

A recipe names its model ``kind`` (``hmm``, ``rietveld``, ``pinn``), a ``name`` (the stem of
its output files), the data files, the ties (the core's own statements, as the Python API's
``ties=``), bounds, fixed values, stages and budgets. Relative paths resolve against the
recipe's folder. Each kind has a schema; a recipe is validated completely (unknown keys,
types, missing files, ties the model does not have) before any fitting starts.
"""
from __future__ import annotations

import copy
import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import RecipeError, ValidationError
from ._schema import Field, Table, validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Recipe", "RecipeKind", "Option", "KINDS", "load_recipe", "parse_recipe",
           "bundled_recipes", "bundled_recipe_text", "get_kind", "apply_overrides",
           "parse_value", "peek_kind", "BUNDLED"]

BUNDLED = Path(__file__).resolve().parent / "bundled"


@dataclass(frozen=True)
class Option:
    """A command-line option of a kind: a shorthand for setting one recipe key."""

    flags: tuple[str, ...]
    key: str
    type: Callable[[str], Any] = str
    nargs: str | None = None
    action: str | None = None  # "append" (a list) or "store_true"
    help: str = ""


@dataclass
class RecipeKind:
    """A model kind: its schema, command-line shorthands, planned outputs and runner.

    ``run(recipe) -> RunSummary``; ``outputs(recipe) -> list of file names`` written by
    ``--out`` (known before the fit, so clashes are refused before any work);
    ``check(recipe)`` validates what the schema cannot (files, ties) before fitting.
    """

    name: str
    schema: Table
    run: Callable[["Recipe"], Any]
    outputs: Callable[["Recipe"], list[str]]
    check: Callable[["Recipe"], None] | None = None
    options: tuple[Option, ...] = ()
    description: str = ""


#: kind name -> "module:attribute" of its RecipeKind (imported only when used)
KINDS: dict[str, str] = {
    "hmm": "sciTie.hmm.recipe:KIND",
    "rietveld": "sciTie.diffraction.recipe:KIND",
    "pinn": "sciTie.pinn.recipe:KIND",
}


def get_kind(name: str) -> RecipeKind:
    """The :class:`RecipeKind` called ``name``."""
    if name not in KINDS:
        raise ValidationError(f"unknown recipe kind {name!r}; known: {', '.join(KINDS)}")
    module, _, attr = KINDS[name].partition(":")
    try:
        kind = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"recipe kind {name!r} is not available in this build: {exc}") \
            from exc
    return kind


_HEADER = Table({
    "kind": Field("str", "model kind", required=True, choices=tuple(KINDS)),
    "name": Field("str", "stem of the output files", required=True,
                  check=lambda v: None if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", v)
                  else "use letters, digits, '_', '-' or '.' (it names output files)"),
    "description": Field("str", "one line shown in listings", default=""),
    "demo": Field("bool", "part of `scitie demo` (with its [quick] settings)", default=False),
    "quick": Field("table", "overrides applied by --quick and by the demo", default={}),
}, open=True)


@dataclass
class Recipe:
    """A validated recipe.

    Attributes
    ----------
    kind, name, description : str
    settings : dict
        The validated tables (defaults filled in).
    text : str
        The TOML text it was read from (stored in the outputs' provenance).
    path : Path or None
        The file (None for bundled or built recipes).
    base : Path
        Folder that relative paths resolve against.
    overrides : list of str
        ``KEY=VALUE`` overrides applied on top of the file.
    cache : dict
        What a kind's check read (the data), kept for its run so that files are read once.
    """

    kind: str
    name: str
    description: str
    settings: dict[str, Any]
    text: str
    path: Path | None
    base: Path
    overrides: list[str] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        """Setting by dotted key (``"model.n_components"``)."""
        node: Any = self.settings
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def resolve(self, value: str | os.PathLike, key: str, *, must_exist: bool = True) -> Path:
        """A path from the recipe, relative to its folder; a clear error when missing."""
        p = Path(os.fspath(value)).expanduser()
        if not p.is_absolute():
            p = self.base / p
        if must_exist and not p.exists():
            raise self.error(f"{key} names {str(value)!r}, which does not exist (looked for "
                             f"{p})", key)
        return p

    def error(self, message: str, key: str | None = None) -> RecipeError:
        """A :class:`RecipeError` at ``key`` of this recipe (file and line when known)."""
        from ._schema import line_of

        return RecipeError(message, path=self.path or f"<recipe {self.name}>",
                           line=line_of(self.text, key) if key else None, key=key)

    @property
    def source(self) -> str:
        """The recipe text with the overrides appended as comments (for provenance)."""
        extra = "".join(f"# override: {o}\n" for o in self.overrides)
        return self.text + ("\n" + extra if extra else "")


def parse_value(text: str) -> Any:
    """A TOML value from the command line: ``2``, ``0.5``, ``true``, ``"x"``, ``[1, 2]``;
    anything else is taken as a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


_KEY_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)(?:\[(\d+)\])?")


def apply_overrides(doc: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings set dotted keys of a parsed recipe (returns a new dict).

    A part of the key may index an array of tables (``patterns[0].fit_range=[10, 150]`` sets
    ``fit_range`` of the first ``[[patterns]]`` entry) or an element of a list
    (``data.pattern[1]="b.xye"``); the entry must exist.
    """
    out = copy.deepcopy(doc)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValidationError(f"--set expects KEY=VALUE (e.g. fit.restarts=4), got {item!r}")
        key, _, value = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        matches = [_KEY_PART.fullmatch(part) for part in parts]
        if not all(matches):
            raise ValidationError(f"--set: {key!r} is not a dotted recipe key (e.g. model.mode, "
                                  "or patterns[0].fit_range for an entry of [[patterns]])")
        node: Any = out
        for depth, m in enumerate(matches):
            name, index = m.group(1), m.group(2)
            last = depth == len(matches) - 1
            where = ".".join(parts[:depth + 1])
            if index is None:
                if last:
                    node[name] = parse_value(value.strip())
                    break
                nxt = node.setdefault(name, {})
                if not isinstance(nxt, dict):
                    raise ValidationError(f"--set {key}: {where!r} is not a table in this "
                                          "recipe" + (" (it is an array of tables: index it, "
                                                      f"e.g. {where}[0].key)"
                                                      if isinstance(nxt, list) else ""))
                node = nxt
                continue
            seq = node.get(name)
            if not isinstance(seq, list):
                raise ValidationError(
                    f"--set {key}: {name!r} is not an array or list in this recipe, so "
                    f"[{index}] selects nothing" + ("" if name in node else
                                                     f" (the recipe has no [[{name}]] entries)"))
            k = int(index)
            if k >= len(seq):
                raise ValidationError(f"--set {key}: {name!r} has {len(seq)} entr"
                                      f"{'y' if len(seq) == 1 else 'ies'}, so index {k} does "
                                      f"not exist (indices start at 0)")
            if last:
                if isinstance(seq[k], dict):
                    raise ValidationError(f"--set {key}: {where} is a whole table; set one of "
                                          f"its keys, e.g. {where}.name=...")
                seq[k] = parse_value(value.strip())
                break
            if not isinstance(seq[k], dict):
                raise ValidationError(f"--set {key}: {where} is a value, not a table")
            node = seq[k]
    return out


def _merge_quick(doc: dict[str, Any]) -> dict[str, Any]:
    quick = doc.get("quick") or {}
    flat: list[str] = []

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for k, v in node.items():
            if isinstance(v, Mapping):
                walk(f"{prefix}{k}.", v)
            else:
                flat.append((f"{prefix}{k}", v))

    walk("", quick)
    out = copy.deepcopy(doc)
    for key, value in flat:
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def parse_recipe(text: str, *, path: str | os.PathLike | None = None,
                 base: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                 quick: bool = False) -> Recipe:
    """Parse and validate recipe ``text`` (see :func:`load_recipe`)."""
    where = path if path is not None else "<recipe>"
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some editors save UTF-8
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise RecipeError(f"not valid TOML: {exc}", path=where,
                          line=int(m.group(1)) if m else None) from None
    doc = apply_overrides(doc, overrides)
    header = validate({k: doc[k] for k in _HEADER.fields if k in doc}, _HEADER, path=where,
                      text=text)
    if quick:
        doc = _merge_quick(doc)
    kind = get_kind(header["kind"])
    body = {k: v for k, v in doc.items() if k not in _HEADER.fields}
    settings = validate(body, kind.schema, path=where, text=text)
    recipe = Recipe(kind=header["kind"], name=header["name"], description=header["description"],
                    settings=settings, text=text, path=Path(path) if path is not None else None,
                    base=Path(base) if base is not None else (
                        Path(path).resolve().parent if path is not None else Path.cwd()),
                    overrides=list(overrides) + (["--quick"] if quick else []))
    if kind.check is not None:
        kind.check(recipe)
    return recipe


def _bundled_path(name: str) -> Path | None:
    p = BUNDLED / f"{name}.toml"
    return p if p.is_file() else None


def bundled_recipes() -> dict[str, str]:
    """Bundled recipe names and their one-line descriptions."""
    out = {}
    for p in sorted(BUNDLED.glob("*.toml")):
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
        out[p.stem] = str(doc.get("description", ""))
    return out


def bundled_recipe_text(name: str) -> str:
    """The TOML text of bundled recipe ``name`` (``scitie recipe NAME``)."""
    p = _bundled_path(name)
    if p is None:
        raise ValidationError(f"no bundled recipe {name!r}; bundled: "
                              f"{', '.join(bundled_recipes()) or '(none)'}")
    return p.read_text(encoding="utf-8")


def _read_text(path: Path) -> str:
    """A recipe file's text (UTF-8, with or without a byte-order mark)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecipeError(f"cannot read the recipe: {exc.strerror or exc}", path=path) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RecipeError("the recipe is UTF-16 text (it starts with a UTF-16 byte-order mark); "
                          "save it as UTF-8", path=path, line=1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise RecipeError(f"not UTF-8 text (byte {exc.start}: {exc.reason}); a recipe is a "
                          "UTF-8 TOML file", path=path, line=line) from None


def peek_kind(target: str | os.PathLike) -> str | None:
    """The ``kind`` a recipe file or bundled recipe declares, read without validating the
    recipe (None when it cannot be read: :func:`load_recipe` then says why)."""
    p = Path(os.fspath(target)).expanduser()
    path = p if p.is_file() else _bundled_path(os.fspath(target))
    if path is None:
        return None
    try:
        kind = tomllib.loads(_read_text(path)).get("kind")
    except (RecipeError, tomllib.TOMLDecodeError):
        return None
    return kind if isinstance(kind, str) and kind in KINDS else None


def load_recipe(target: str | os.PathLike, *, overrides: Sequence[str] = (),
                quick: bool = False) -> Recipe:
    """Read and validate a recipe: a ``.toml`` file, or the name of a bundled recipe.

    Parameters
    ----------
    target : str or path
        ``path/to/recipe.toml`` or a bundled recipe name (``earthquakes``).
    overrides : sequence of str
        ``KEY=VALUE`` settings applied on top (``--set`` on the command line).
    quick : bool
        Apply the recipe's ``[quick]`` table (small budgets, as in the demo).

    Returns
    -------
    Recipe

    Raises
    ------
    RecipeError
        Naming the file, key and line of anything wrong.
    """
    text_target = os.fspath(target)
    p = Path(text_target).expanduser()
    if p.suffix.lower() == ".toml" or p.is_file():
        if not p.is_file():
            raise RecipeError("recipe file not found" + (" (it is a folder)" if p.is_dir() else ""),
                              path=p)
        return parse_recipe(_read_text(p), path=p, overrides=overrides, quick=quick)
    bundled = _bundled_path(text_target)
    if bundled is None:
        raise ValidationError(
            f"unknown recipe or dataset {text_target!r}: not a .toml file and not a bundled "
            f"recipe; bundled: {', '.join(bundled_recipes())}")
    return parse_recipe(bundled.read_text(encoding="utf-8"), path=None, base=bundled.parent,
                        overrides=overrides, quick=quick)
