"""The ``scitie`` command line: one registry of recipes, one parser.

::

    scitie --version
    scitie datasets                          # data that ship with sciTie or are found on disk
    scitie recipes                           # bundled recipes (every dataset's fit)
    scitie recipe NAME [--keys]              # print a recipe to start from (or its keys)
    scitie demo                              # every bundled demo recipe, small budgets
    scitie fit TARGET [--json PATH] [--out DIR] [--overwrite] [--quick] [--set KEY=VALUE]...
                      [kind options]

``TARGET`` is a recipe file (``my.toml``), a bundled recipe (``earthquakes``), or a model
kind (``hmm``, ``rietveld``, ``pinn``) for the quick form, whose options set recipe keys
(``scitie fit hmm --data rates.csv --column rate --states 2 --tie "covars[1] = covars[0]"``).
Every expected failure prints one line on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import SciTieError

__all__ = ["main", "build_parser"]


def _kinds(only: str | None = None):
    """The recipe kinds, each imported with its model (``only``: that kind alone)."""
    from .recipes import KINDS, get_kind

    out = {}
    for name in KINDS if only is None else (only,):
        try:
            out[name] = get_kind(name)
        except SciTieError:
            continue  # a kind whose model is not in this build
    return out


#: Options of ``scitie fit`` common to every kind that take a value.
_FIT_VALUE_OPTIONS = ("--json", "--out", "--set")


def _fit_target_kind(argv: Sequence[str]) -> tuple[str, str] | None:
    """The target of a ``scitie fit TARGET`` command line and its kind, read without
    importing any model; None where it is not that plain: another command, help asked, a
    kind's option before the target, or a target whose kind cannot be read.

    Importing every kind to build the parser costs seconds of CPU (torch, hmmlearn): a fit
    needs its own kind's options only.
    """
    from .recipes import KINDS, peek_kind

    if not argv or argv[0] != "fit":
        return None
    rest = list(argv[1:])
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok in ("-h", "--help"):
            return None
        if tok in _FIT_VALUE_OPTIONS:
            i += 2
            continue
        if tok in ("--overwrite", "--quick") or tok.split("=", 1)[0] in _FIT_VALUE_OPTIONS:
            i += 1
            continue
        if tok.startswith("-"):
            return None
        if any(t in ("-h", "--help") for t in rest[i + 1:]):
            return None
        kind = tok if tok in KINDS else peek_kind(tok)
        return None if kind is None else (tok, kind)
    return None


def _cmd_datasets(_: argparse.Namespace) -> int:
    from .datasets import REGISTRY

    width = max(len(n) for n in REGISTRY)
    for name in sorted(REGISTRY):
        e = REGISTRY[name]
        where = "bundled" if e.bundled else (
            f"external: <data_dir>/{e.external_folder} ($SCITIE_DATA_DIR or "
            "sciTie.set_config), else downloaded into the cache on first use")
        print(f"{name:<{width}}  {e.description}  [{where}]")
    return 0


def _cmd_recipes(_: argparse.Namespace) -> int:
    from .recipes import bundled_recipes

    items = bundled_recipes()
    width = max(len(n) for n in items)
    for name, text in items.items():
        print(f"{name:<{width}}  {text}")
    print("\n`scitie recipe NAME > my.toml` writes one to start from; `scitie fit my.toml` runs it.")
    return 0


def _cmd_recipe(args: argparse.Namespace) -> int:
    from .recipes import bundled_recipe_text, describe, get_kind

    if args.keys:
        kind = get_kind(args.name)
        print(f"# keys of a `kind = \"{args.name}\"` recipe ({kind.description})")
        print("kind = str (required); name = str (required); description = str; "
              "demo = bool; [quick] = overrides")
        print("\n".join(describe(kind.schema)))
        return 0
    sys.stdout.write(bundled_recipe_text(args.name))
    return 0


def _quick_text(kind: str, name: str) -> str:
    return f'kind = "{kind}"\nname = "{name}"\n'


def _recipe_from_target(target: str, overrides: list[str], quick: bool,
                        kind_values: dict[str, Any]):
    """The recipe a ``scitie fit`` target names (file, bundled name or kind quick form)."""
    from .recipes import KINDS, get_kind, load_recipe, parse_recipe, run_files

    sets = list(overrides) + [f"{k}={_toml_value(v)}" for k, v in kind_values.items()]
    if target not in KINDS:
        return load_recipe(target, overrides=sets, quick=quick)
    data = kind_values.get("data.file", target)
    stem = _safe_name(Path(str(data[0] if isinstance(data, list) else data)).stem or target)
    recipe = parse_recipe(_quick_text(target, stem), path=None, base=Path.cwd(),
                          overrides=sets, quick=quick)
    # the outputs are named after the data: never after one of the inputs' own names
    # (`--data rates.nc --out .` must not write rates.nc)
    taken = {p.name for p in run_files(recipe).inputs}
    name, n = stem, 1
    while taken & set(get_kind(target).outputs(replace(recipe, name=name))):
        name = f"{stem}_fit" + (f"{n}" if n > 1 else "")
        n += 1
    if name != stem:
        recipe = replace(recipe, name=name, text=_quick_text(target, name))
    return recipe


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name).lstrip("._-") or "fit"


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _kind_values(args: argparse.Namespace, kinds, only: str | None = None) -> dict[str, Any]:
    """Recipe keys set by kind options; ``only``: the options of that kind alone (a flag
    such as ``--mode`` may mean a different key in each kind)."""
    values = {}
    for name, kind in kinds.items():
        if only is not None and name != only:
            continue
        for opt in kind.options:
            dest = opt.flags[0].lstrip("-").replace("-", "_")
            value = getattr(args, dest, None)
            if value is not None and value is not False:
                values[opt.key] = value
    return values


def _output_targets(args: argparse.Namespace, kind, recipe) -> dict[str, list[Path]]:
    """``--json`` and ``--out`` files, checked before the fit: an empty or unwritable path,
    an existing file (without --overwrite), a file named twice, or an input of the run."""
    from .errors import ValidationError
    from .io import as_path, check_not_inputs, check_targets, same_file
    from .recipes import run_files

    files = run_files(recipe)
    # the run's own files (a checkpoint) are not outputs of --json/--out either
    protected = {**files.inputs, **files.writes}
    check_not_inputs(list(files.writes), files.inputs, what=", ".join(files.writes.values()))
    targets: dict[str, list[Path]] = {}
    if args.json is not None:
        targets["--json"] = check_targets([as_path(args.json, "--json")],
                                          overwrite=args.overwrite, what="--json",
                                          inputs=protected)
    if args.out is not None:
        out = as_path(args.out, "--out")
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"--out: {out} is a file; give a folder (it is created "
                                     "if missing)")
        targets["--out"] = check_targets([out / f for f in kind.outputs(recipe)],
                                         overwrite=args.overwrite, what="--out",
                                         inputs=protected)
    for j in targets.get("--json", []):
        for o in targets.get("--out", []):
            if same_file(j, o):
                raise ValidationError(f"--json {j} is also a file --out writes ({o}); choose "
                                      "another name")
    return targets


def _flag_vocabulary(kinds, kind_name: str, kind_values: dict[str, Any], quick_form: bool):
    """Recipe key -> the command-line flag that sets it (every flag of the kind in the quick
    form; in a recipe file, only the flags the user gave)."""
    out = {}
    for opt in kinds[kind_name].options if kind_name in kinds else ():
        if quick_form or opt.key in kind_values:
            out.setdefault(opt.key, opt.flags[0])
    return out


def _key_pattern(key: str) -> re.Pattern:
    """A recipe key as a whole word of a message (not ``data.files`` for ``data.file``)."""
    return re.compile(rf"(?<![\w.\[]){re.escape(key)}(?![\w\[])")


def _in_flags(exc: Exception, flags: dict[str, str], quick_form: bool) -> Exception:
    """``exc`` reworded for a command-line user: the recipe keys set by flags are named by
    their flags (``--states`` for ``model.n_components``; in a recipe file the first mention
    also gives the key: ``--states (model.n_components)``); same exception class."""
    from .errors import DataFormatError, RecipeError, location

    reason = getattr(exc, "reason", None) or str(exc)
    for key in sorted(flags, key=len, reverse=True):
        reason, n = _key_pattern(key).subn(flags[key], reason)
        if n and not quick_form:
            reason = reason.replace(flags[key], f"{flags[key]} ({key})", 1)
    if isinstance(exc, RecipeError):
        if quick_form:
            where = "" if exc.key in flags or not exc.key else f"[{exc.key}] "
        elif exc.key in flags:
            where = f"{exc.path}: "
        else:
            where = location(exc.path, exc.line, exc.key) + ": "
        return RecipeError(where + reason)
    if isinstance(exc, DataFormatError):
        return type(exc)(reason, path=exc.path, line=exc.line, key=flags.get(exc.key, exc.key))
    try:
        return type(exc)(reason)
    except TypeError:  # an exception class with other arguments: keep it as it is
        return exc


def _cmd_fit(args: argparse.Namespace, kinds) -> int:
    from .recipes import get_kind, peek_kind, run_recipe

    quick_form = args.target in kinds
    only = args.target if quick_form else peek_kind(args.target)
    kind_values = _kind_values(args, kinds, only)
    flags = _flag_vocabulary(kinds, only, kind_values, quick_form)
    try:
        recipe = _recipe_from_target(args.target, args.set or [], args.quick, kind_values)
        kind = get_kind(recipe.kind)
        # before the fit: a clash found afterwards would waste the run
        targets = _output_targets(args, kind, recipe)
    except SciTieError as exc:
        text = getattr(exc, "reason", None) or str(exc)
        if not any(_key_pattern(k).search(text) or getattr(exc, "key", None) == k
                   for k in flags):
            raise  # nothing in it the user set by a flag: as it is
        raise _in_flags(exc, flags, quick_form) from None
    summary = run_recipe(recipe)
    print(summary.report)
    print(f"\n{recipe.name} / {summary.model}: fit took {summary.seconds:.2f} s")
    if args.json is not None:
        print(f"wrote {summary.write_json(targets['--json'][0], overwrite=args.overwrite)}")
    if args.out is not None:
        from .io import check_targets
        from .recipes import run_files

        # the files the run made: checked again, now by their final names
        check_targets(summary.planned_files(args.out), overwrite=args.overwrite, what="--out",
                      inputs=run_files(recipe).inputs, probe=False)
        for p in summary.write(args.out, overwrite=args.overwrite):
            print(f"wrote {p}")
    return 0


def _cmd_demo(_: argparse.Namespace) -> int:
    import tomllib

    from .recipes import BUNDLED, load_recipe, run_recipe

    t0 = time.perf_counter()
    failures = 0
    for path in sorted(BUNDLED.glob("*.toml")):
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        if not doc.get("demo"):
            continue
        print(f"\n=== {path.stem}: {doc.get('description', '')}")
        try:
            summary = run_recipe(load_recipe(path.stem, quick=True))
        except Exception as exc:  # keep going: the demo reports every model
            failures += 1
            print(f"FAILED: {type(exc).__name__}: {exc}")
            continue
        print(summary.report)
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in summary.metrics.items() if not isinstance(v, dict))
        print(f"--> {summary.model}: {metrics} ({summary.seconds:.2f} s)")
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    return 1 if failures else 0


def build_parser(kinds=None) -> argparse.ArgumentParser:
    """The one parser: common commands plus every kind's shorthand options for ``fit``."""
    kinds = _kinds() if kinds is None else kinds
    parser = argparse.ArgumentParser(
        prog="scitie", description="sciTie: parameter tying for scientific models")
    parser.add_argument("--version", action="version", version=f"scitie {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list the datasets and where they come from")
    sub.add_parser("recipes", help="list the bundled recipes")
    rec = sub.add_parser("recipe", help="print a bundled recipe (a start for your own)")
    rec.add_argument("name", help="bundled recipe name, or a kind with --keys")
    rec.add_argument("--keys", action="store_true",
                     help="list every key a recipe of kind NAME accepts")
    sub.add_parser("demo", help="run every bundled demo recipe with small budgets")
    fit = sub.add_parser(
        "fit", help="fit a recipe file, a bundled recipe, or a kind's quick form",
        description="Fit TARGET: a recipe file (my.toml), a bundled recipe (see `scitie "
                    "recipes`), or a model kind (" + ", ".join(kinds) + ") configured by the "
                    "options below.")
    fit.add_argument("target", help="recipe file, bundled recipe name, or model kind")
    fit.add_argument("--json", metavar="PATH", help="write a JSON summary to PATH")
    fit.add_argument("--out", metavar="DIR", help="write netCDF results and figures to DIR")
    fit.add_argument("--overwrite", action="store_true",
                     help="allow replacing existing --json and --out files")
    fit.add_argument("--quick", action="store_true",
                     help="apply the recipe's [quick] settings (small budgets)")
    fit.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="set a recipe key, e.g. --set fit.restarts=4 (TOML value)")
    seen: dict[str, argparse.Action] = {}
    for name, kind in kinds.items():
        group = fit.add_argument_group(f"{name} options ({kind.description})")
        for opt in kind.options:
            if opt.flags[0] in seen:
                # one flag, declared by the first kind; each kind maps it to its own key
                seen[opt.flags[0]].help += f"; {name}: {opt.help} [{opt.key}]"
                continue
            kw: dict[str, Any] = {"help": f"{opt.help} [{opt.key}]"}
            if opt.action == "store_true":
                kw["action"] = "store_true"
                kw["default"] = None
            else:
                kw["type"] = opt.type
                if opt.action:
                    kw["action"] = opt.action
                if opt.nargs:
                    kw["nargs"] = opt.nargs
            seen[opt.flags[0]] = group.add_argument(*opt.flags, **kw)
    return parser


def _fit_kinds(argv: list[str]):
    """The kinds a plain ``scitie fit TARGET`` needs (its target's alone), or None: then
    every kind is imported (so that the parser, its help and its errors are the whole
    command line's)."""
    found = _fit_target_kind(argv)
    if found is None:
        return None
    target, kind = found
    kinds = _kinds(kind)
    if kind not in kinds:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args, extra = build_parser(kinds).parse_known_args(argv)
    except SystemExit:
        return None
    # an option of another kind, or the target read otherwise than above
    return kinds if not extra and args.command == "fit" and args.target == target else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 a reported error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    kinds = _fit_kinds(argv)
    if kinds is None:
        kinds = _kinds()
    args = build_parser(kinds).parse_args(argv)
    try:
        if args.command == "datasets":
            return _cmd_datasets(args)
        if args.command == "recipes":
            return _cmd_recipes(args)
        if args.command == "recipe":
            return _cmd_recipe(args)
        if args.command == "demo":
            return _cmd_demo(args)
        return _cmd_fit(args, kinds)
    except (SciTieError, ValueError, TypeError, OSError, RuntimeError) as exc:
        print(f"scitie: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("scitie: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
