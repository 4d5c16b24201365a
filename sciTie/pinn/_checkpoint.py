"""Training checkpoints: a safe format, checksummed, validated on load, written atomically.

A checkpoint is a three-line text header (magic string, format version, the SHA-256 of the
rest) followed by a :func:`torch.save` payload holding only plain containers, numbers, strings
and tensors, read back with ``torch.load(..., weights_only=True)``: unpickling cannot construct
arbitrary objects, so a crafted file cannot run code, and nothing is unpickled before the
magic and the checksum match. A changed or damaged byte anywhere in the file is refused (the
zip container torch writes carries no checksum of the data). The content is then checked
(settings and the problem's fingerprint, structure, names and shapes) before anything is used;
every failure is a :class:`~sciTie.errors.CheckpointError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from io import BytesIO
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from .. import io
from ..errors import CheckpointError, OutputExistsError

__all__ = ["MAGIC", "VERSION", "encode", "save_checkpoint", "read_checkpoint",
           "prepare_checkpoint", "settings_key", "check_module_state"]

MAGIC = "sciTie.pinn.PeriodicPINN checkpoint"
VERSION = 4
STAGES = ("adam", "lbfgs", "lm", "done")


def settings_key(settings: dict[str, Any]) -> str:
    """The settings a checkpoint must match, as canonical JSON text."""
    return json.dumps(settings, sort_keys=True, default=repr)


def encode(state: dict[str, Any], *, magic: str = MAGIC, version: int = VERSION) -> bytes:
    """The file content for ``state``: a text header (magic, version, the SHA-256 of what
    follows) and the bytes of ``torch.save(state)``."""
    buffer = BytesIO()
    torch.save(state, buffer)
    body = buffer.getvalue()
    header = f"{magic}\nversion {version}\nsha256 {hashlib.sha256(body).hexdigest()}\n"
    return header.encode("ascii") + body


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (with magic, version and checksum) to ``path`` atomically.

    The file is replaced in one step (temporary file, fsync, rename): a crash never leaves a
    half-written checkpoint, and the previous one stays until the new one is complete.
    """
    io.write_bytes(path, encode(state), overwrite=True, what="checkpoint")


def _fail(path: Path, message: str) -> CheckpointError:
    return CheckpointError(message, path=path)


def _safe_load(source: Any) -> Any:
    with warnings.catch_warnings():  # torch warns about foreign pickle protocols: we refuse
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(source, map_location="cpu", weights_only=True)


_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError,
                AttributeError, KeyError, IndexError, zipfile.BadZipFile, UnicodeDecodeError,
                MemoryError)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; check its magic, version and checksum.

    Returns
    -------
    dict
        The training state (``settings``, ``window``, ``stage`` ... as saved).

    Raises
    ------
    CheckpointError
        Missing, unreadable, corrupt, changed (checksum) or unsafe file (one that would need
        code to unpickle), or not a sciTie PINN checkpoint of this version.
    """
    if not path.exists():
        raise _fail(path, "checkpoint file does not exist (resume=True needs the file a "
                          "previous fit wrote; fit(resume=False) starts afresh)")
    if not path.is_file():
        raise _fail(path, "checkpoint path is not a file")
    magic = MAGIC.encode("ascii") + b"\n"
    try:
        with open(path, "rb") as fh:  # the magic first: a large foreign file is not read
            if fh.read(len(magic)) != magic:
                raise _fail(path, "not a sciTie PeriodicPINN checkpoint (no sciTie magic "
                                  "string)")
            data = fh.read()
    except OSError as exc:
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None
    lines = [b"", *data.split(b"\n", 2)]
    if len(lines) < 4:
        raise _fail(path, "truncated checkpoint (no header)")
    if lines[1] != f"version {VERSION}".encode("ascii"):
        shown = lines[1].decode("ascii", "replace")[:40]
        raise _fail(path, f"checkpoint format {shown!r}; this sciTie reads version {VERSION}")
    body = lines[3]
    if lines[2] != f"sha256 {hashlib.sha256(body).hexdigest()}".encode("ascii"):
        raise _fail(path, "checksum mismatch: the file was changed or damaged after sciTie "
                          "wrote it; it cannot be resumed (start afresh with resume=False)")
    try:
        state = _safe_load(BytesIO(body))
    except _LOAD_ERRORS as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(path, "not a readable sciTie checkpoint (holding objects that a safe load "
                          f"refuses): {first}") from None
    if not isinstance(state, dict):
        raise _fail(path, "malformed checkpoint: the training state is not a dictionary")
    return state


def _difference(old_text: str, new_text: str) -> str:
    """The settings (and problem properties) in which two settings keys differ."""
    try:
        old, new = json.loads(old_text), json.loads(new_text)
    except ValueError:
        return "unreadable settings"
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k != "problem")
    p_old, p_new = old.get("problem"), new.get("problem")
    if isinstance(p_old, dict) and isinstance(p_new, dict):
        diff += [f"problem {k}" + (" source" if k in ("residual", "initial", "boundary")
                                   else "")
                 for k in sorted(set(p_old) | set(p_new)) if p_old.get(k) != p_new.get(k)]
    elif p_old != p_new:
        diff.append("problem")
    return ", ".join(diff) or "unknown"


def _check_structure(path: Path, state: dict[str, Any], n_windows: int) -> None:
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise _fail(path, f"malformed checkpoint: {what}")

    for key in ("settings", "window", "stage", "step", "networks", "tied", "optimizer",
                "generator", "batch", "history"):
        need(key in state, f"missing entry {key!r}")
    need(isinstance(state["settings"], str), "'settings' must be text")
    need(isinstance(state["window"], int) and 0 <= state["window"] < n_windows,
         f"window {state['window']!r} outside 0..{n_windows - 1}")
    need(state["stage"] in STAGES, f"stage {state['stage']!r} not one of {STAGES}")
    need(isinstance(state["step"], int) and state["step"] >= 0, "step must be an integer >= 0")
    nets = state["networks"]
    need(isinstance(nets, list) and 1 <= len(nets) <= n_windows
         and state["window"] + (state["stage"] != "adam" or state["step"] > 0) <= len(nets)
         <= state["window"] + 1,
         "network list does not match the recorded window")
    need(all(isinstance(n, dict) and all(isinstance(v, torch.Tensor) for v in n.values())
             for n in nets), "networks must be tensor dictionaries")
    need(isinstance(state["tied"], list) and all(isinstance(t, dict) for t in state["tied"]),
         "'tied' must be a list of parameter-group states")
    need(isinstance(state["generator"], torch.Tensor)
         and state["generator"].dtype == torch.uint8, "generator state must be a byte tensor")
    need(state["batch"] is None or (isinstance(state["batch"], dict) and all(
        isinstance(v, torch.Tensor) for v in state["batch"].values())),
        "'batch' must map names to tensors")
    need(isinstance(state["history"], list) and all(isinstance(h, dict)
                                                     for h in state["history"]),
         "'history' must be a list of records")


def check_module_state(path: Path, what: str, expected: dict[str, torch.Tensor],
                       found: dict[str, torch.Tensor]) -> None:
    """Refuse a stored module state whose names or shapes differ from a fresh module's."""
    if set(expected) != set(found):
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        raise _fail(path, f"{what} does not match this model (missing {missing}, "
                          f"unexpected {extra})")
    for k, v in expected.items():
        if tuple(found[k].shape) != tuple(v.shape):
            raise _fail(path, f"{what}: {k} has shape {tuple(found[k].shape)}, this model "
                              f"needs {tuple(v.shape)}")
        if not found[k].is_floating_point() and found[k].dtype != v.dtype:
            raise _fail(path, f"{what}: {k} has type {found[k].dtype}, expected {v.dtype}")
        if found[k].is_floating_point() and not bool(torch.isfinite(found[k]).all()):
            raise _fail(path, f"{what}: {k} holds non-finite values")


def prepare_checkpoint(path: Path | None, *, resume: bool, overwrite: bool, settings: str,
                       n_windows: int) -> dict[str, Any] | None:
    """Check the checkpoint target before training; return the state to resume from.

    Parameters
    ----------
    path : Path or None
        The checkpoint file (None: no checkpointing).
    resume : bool
        Continue from ``path`` (it must exist and match ``settings``).
    overwrite : bool
        Allow replacing a file at ``path`` that is not a checkpoint of this model.
    settings : str
        :func:`settings_key` of the model.
    n_windows : int
        Number of time windows of the model.

    Raises
    ------
    CheckpointError
        ``resume`` without a usable checkpoint of this model.
    OutputExistsError
        ``path`` holds something else and ``overwrite`` is False.
    """
    if path is None:
        if resume:
            raise CheckpointError("resume=True needs checkpoint= (the file to continue from)")
        return None
    io.check_targets([path], overwrite=True, what="checkpoint")  # folders, parent checks
    if resume:
        state = read_checkpoint(path)
        _check_structure(path, state, n_windows)
        if state["settings"] != settings:
            raise _fail(path, f"checkpoint was written with different settings "
                              f"({_difference(state['settings'], settings)}); cannot resume")
        return state
    if path.exists() and not overwrite:
        try:
            state = read_checkpoint(path)
            ours = state.get("settings") == settings
        except CheckpointError:
            ours = False
        if not ours:
            raise OutputExistsError(
                f"checkpoint: {path} already exists and is not a checkpoint of this model "
                "(same settings); refusing to replace it. Choose another file, or pass "
                "fit(overwrite=True) to replace it.")
    return None
