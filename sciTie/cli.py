"""The ``scitie`` command line: ``--version``, ``datasets``, ``demo``, ``fit NAME``."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from . import __version__
from .datasets import REGISTRY, get_entry, resolve_callable
from .errors import SciTieError
from .io import check_targets


def _cmd_datasets(_: argparse.Namespace) -> int:
    width = max(len(n) for n in REGISTRY)
    for name in sorted(REGISTRY):
        e = REGISTRY[name]
        where = "bundled" if e.bundled else f"external: $SCITIE_DATA_DIR/{e.external_folder}"
        print(f"{name:<{width}}  {e.description}  [{where}]")
    return 0


def _run_fit(name: str, argv: Sequence[str]):
    entry = get_entry(name)
    if entry.fitter is None:
        raise ValueError(f"dataset {name!r} has no model to fit it")
    try:
        run = resolve_callable(entry.fitter)
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"the model for {name!r} ({entry.fitter}) is unavailable: {exc}") from exc
    return run(name, list(argv))


def _cmd_fit(args: argparse.Namespace, extra: list[str]) -> int:
    if args.json is not None:  # before the fit: a clash found afterwards wastes the run
        check_targets([args.json], overwrite=args.overwrite, what="--json")
    summary = _run_fit(args.name, extra)
    if args.out is not None:
        check_targets(summary.planned_files(args.out), overwrite=args.overwrite, what="--out")
    print(summary.report)
    print(f"\n{summary.dataset} / {summary.model}: fit took {summary.seconds:.2f} s")
    if args.json is not None:
        print(f"wrote {summary.write_json(args.json, overwrite=args.overwrite)}")
    if args.out is not None:
        for p in summary.write(args.out, overwrite=args.overwrite):
            print(f"wrote {p}")
    return 0


def _cmd_demo(_: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    failures = 0
    for name in sorted(REGISTRY):
        entry = REGISTRY[name]
        if entry.demo_argv is None or entry.fitter is None:
            continue
        print(f"\n=== {name}: {entry.description}")
        try:
            run = resolve_callable(entry.fitter)
        except (ImportError, AttributeError) as exc:
            print(f"(model not available in this build: {exc})")
            continue
        try:
            summary = run(name, list(entry.demo_argv))
        except Exception as exc:  # keep going: the demo reports every model
            failures += 1
            print(f"FAILED: {type(exc).__name__}: {exc}")
            continue
        print(summary.report)
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in summary.metrics.items())
        print(f"--> {summary.model}: {metrics} ({summary.seconds:.2f} s)")
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scitie", description="sciTie: parameter tying for scientific models")
    parser.add_argument("--version", action="version", version=f"scitie {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list the datasets and where they come from")
    sub.add_parser("demo", help="fit every available model on bundled data, small budgets")
    fit = sub.add_parser(
        "fit", help="fit one dataset; model-specific options (e.g. --beta) follow the name",
        description="Fit NAME with its model. Options not listed here go to the model "
                    "(try `scitie fit NAME --help-model`).")
    fit.add_argument("name", help="dataset name (see `scitie datasets`)")
    fit.add_argument("--json", metavar="PATH", help="write a JSON summary to PATH")
    fit.add_argument("--out", metavar="DIR", help="write netCDF results and PNG plots to DIR")
    fit.add_argument("--overwrite", action="store_true", help="allow replacing existing --json and --out files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "fit":
        parser.error(f"unrecognized arguments for '{args.command}': {' '.join(extra)}")
    try:
        if args.command == "datasets":
            return _cmd_datasets(args)
        if args.command == "demo":
            return _cmd_demo(args)
        return _cmd_fit(args, extra)
    except (SciTieError, ValueError, TypeError, OSError, RuntimeError) as exc:
        print(f"scitie: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
