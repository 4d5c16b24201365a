"""What a model run hands back to the command line: metrics, parameters, files to write."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["RunSummary"]


def _jsonable(value: Any) -> Any:
    """Plain-Python version of ``value``; non-finite floats become None (JSON has no NaN)."""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class RunSummary:
    """Result of ``scitie fit NAME``: everything the CLI prints or writes.

    Parameters
    ----------
    dataset, model : str
        What was fitted and with which model.
    seconds : float
        Wall time of the fit itself (not loading or plotting).
    metrics : dict
        Model-specific figures of merit (``rwp``, ``rel_l2``, ``log_likelihood`` ...).
    parameters : dict
        ``{name: {"value": v, "stderr": s}}``; stderr may be None.
    report : str
        Human-readable report printed by the CLI.
    datasets : dict of str to xarray.Dataset
        Written as ``<out>/<key>.nc`` by :meth:`write`.
    figures : dict of str to callable
        Each callable takes a path and writes a PNG there (kept lazy so plotting happens only
        with ``--out``).
    """

    dataset: str
    model: str
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: str = ""
    datasets: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Callable[[Path], None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable summary written by ``--json``."""
        return _jsonable({
            "dataset": self.dataset,
            "model": self.model,
            "seconds": float(self.seconds),
            "metrics": self.metrics,
            "parameters": self.parameters,
        })

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def planned_files(self, out_dir: str | Path) -> list[Path]:
        """The files :meth:`write` would create in ``out_dir``."""
        out = Path(out_dir)
        return [out / f"{k}.nc" for k in self.datasets] + [out / f"{k}.png" for k in self.figures]

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write netCDF results and PNG plots into ``out_dir``.

        Existing files are never replaced unless ``overwrite=True``: the check happens before
        anything is written, so a refused call leaves the folder untouched.
        """
        out = Path(out_dir)
        planned = self.planned_files(out)
        clashes = [p for p in planned if p.exists()]
        if clashes and not overwrite:
            raise FileExistsError(
                f"out_dir {str(out)!r} already holds {', '.join(p.name for p in clashes)}; "
                "choose another folder or pass overwrite=True (--overwrite)"
            )
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for key, ds in self.datasets.items():
            p = out / f"{key}.nc"
            ds.to_netcdf(p)
            written.append(p)
        for key, draw in self.figures.items():
            p = out / f"{key}.png"
            draw(p)
            written.append(p)
        return written
