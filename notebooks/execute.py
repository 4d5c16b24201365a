"""Re-execute the notebooks and store them with their outputs.

The notebooks are kept with their outputs so that a reader sees the results without running
anything; CI re-executes them on a small budget (``tests/test_*_notebook.py``). After a change
that moves their numbers, refresh the stored outputs with::

    python notebooks/execute.py                    # every notebook, full budget
    python notebooks/execute.py periodic_pinn      # one of them

Each notebook runs in a fresh kernel with ``notebooks/`` as its working folder, this checkout
first on ``PYTHONPATH``, ``SCITIE_DATA_DIR`` pointing at ``../shared/datasets`` when that
folder exists (unless already set), and the Agg backend. The executed notebook replaces the
stored one atomically (a temporary file in the same folder, then ``os.replace``); a notebook
whose execution fails is left as it was.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _environment() -> None:
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    shared = ROOT.parent / "shared" / "datasets"
    if "SCITIE_DATA_DIR" not in os.environ and shared.is_dir():
        os.environ["SCITIE_DATA_DIR"] = str(shared)


def execute(path: Path, timeout: int) -> float:
    """Execute one notebook in place; return the seconds it took."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb = nbformat.from_dict(nbformat.validator.normalize(nb)[1])  # cell ids (nbformat 4.5)
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = time.perf_counter() - t0
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".ipynb", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="notebook names (default: all in notebooks/)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = ap.parse_args(argv)
    paths = ([HERE / (n if n.endswith(".ipynb") else f"{n}.ipynb") for n in args.names]
             or sorted(HERE.glob("*.ipynb")))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"execute.py: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    _environment()
    for path in paths:
        print(f"{path.name}: {execute(path, args.timeout):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
