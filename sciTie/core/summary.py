"""What a model run hands back to the command line: metrics, parameters, files to write."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ValidationError
from ..io import _jsonable, atomic_path, check_targets, write_json, write_netcdf, write_text

__all__ = ["RunSummary"]


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
    extra : dict
        More JSON-ready entries for ``--json`` (e.g. a series' per-pattern ``sequence``); their
        keys must differ from the five above.
    texts : dict of str to str
        Text files written by :meth:`write` under their own names (``"name_phase.cif"``).
    """

    dataset: str
    model: str
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: str = ""
    datasets: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable summary written by ``--json``."""
        base = {
            "dataset": self.dataset,
            "model": self.model,
            "seconds": float(self.seconds),
            "metrics": self.metrics,
            "parameters": self.parameters,
        }
        clash = sorted(set(base) & set(self.extra))
        if clash:
            raise ValueError(f"RunSummary.extra may not redefine {clash}")
        return _jsonable({**base, **self.extra})

    def write_json(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically; never replaces a file
        unless ``overwrite``)."""
        return write_json(path, self.to_dict(), overwrite=overwrite, what="--json")

    def planned_files(self, out_dir: str | Path) -> list[Path]:
        """The files :meth:`write` would create in ``out_dir``."""
        out = Path(out_dir)
        for kind, keys in (("datasets", self.datasets), ("figures", self.figures),
                           ("texts", self.texts)):
            for k in keys:
                if not isinstance(k, str) or not k or k in (".", "..") or Path(k).name != k \
                        or "\x00" in k:
                    raise ValidationError(f"RunSummary {kind} key {k!r} must be a plain file "
                                          "name (no folders): it names a file in --out")
        return ([out / f"{k}.nc" for k in self.datasets] + [out / f"{k}.png" for k in self.figures]
                + [out / k for k in self.texts])

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write netCDF results and PNG plots into ``out_dir``.

        Existing files are never replaced unless ``overwrite=True``: the check happens before
        anything is written, so a refused call leaves the folder untouched.
        """
        out = Path(out_dir)
        check_targets(self.planned_files(out), overwrite=overwrite, what="--out")
        written = []
        for key, ds in self.datasets.items():
            written.append(write_netcdf(ds, out / f"{key}.nc", overwrite=overwrite))
        for key, draw in self.figures.items():
            with atomic_path(out / f"{key}.png", overwrite=overwrite) as tmp:
                draw(tmp)
            written.append(out / f"{key}.png")
        for key, text in self.texts.items():
            written.append(write_text(out / key, text, overwrite=overwrite, what="--out"))
        return written
