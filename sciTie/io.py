"""Writing files safely: one way for every output sciTie produces.

Every file (JSON, netCDF, PNG, CIF, xye, checkpoints, recipes) is written the same way:

1. the targets are checked before any work starts (:func:`check_targets`): an existing file
   is refused unless ``overwrite=True``, a folder where a file should go is refused always,
   a folder that cannot be written is reported with the path the user gave, and a target
   that is one of the run's inputs (by path, by symbolic link, by hard link) is refused even
   with ``overwrite=True``: replacing means "replace my earlier results", never "replace my
   data";
2. the content goes to a temporary file in the same folder, is flushed and ``fsync``-ed;
3. the temporary file takes the target's name in one step: ``os.replace`` when replacing was
   asked for, a hard link (which fails if the name appeared meanwhile) otherwise.

A write that fails halfway leaves the previous file intact and no temporary file behind.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

from .errors import ArgumentTypeError, OutputExistsError, OutputIsInputError, ValidationError

__all__ = ["check_targets", "check_not_inputs", "atomic_path", "atomic_open", "write_text",
           "write_bytes", "write_json", "write_netcdf", "save_figure", "file_sha256", "as_path",
           "same_file"]


def as_path(path: Any, what: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path`; a clear error for anything that is not a path."""
    if isinstance(path, (bytes, bytearray)):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise ValidationError(f"{what} must be a file path (str or os.PathLike), got "
                              f"{type(path).__name__}")
    text = os.fspath(path)
    if not text or "\x00" in text:
        raise ValidationError(f"{what} must be a non-empty path without NUL characters, "
                              f"got {text!r}")
    return Path(text).expanduser()


def _identity(path: Path) -> tuple[str, str, tuple[int, int] | None]:
    """The ways two names can be one file: normalised path, resolved path, device and inode."""
    plain = os.path.normcase(os.path.abspath(path))
    real = os.path.normcase(os.path.realpath(path))
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, a dangling link, a name the OS refuses
        inode = None
    else:
        inode = (st.st_dev, st.st_ino)
    return plain, real, inode


def _same(ia: tuple, ib: tuple) -> bool:
    return ia[0] == ib[0] or ia[1] == ib[1] or (ia[2] is not None and ia[2] == ib[2])


def same_file(a: Any, b: Any) -> bool:
    """Whether paths ``a`` and ``b`` name one file: equal after ``.``/``..`` and symbolic
    links are resolved, or (both existing) the same device and inode (a hard link)."""
    return _same(_identity(as_path(a)), _identity(as_path(b)))


def _inside(path: Path, folder: Path) -> bool:
    """Whether existing file ``path`` lies inside ``folder`` (both resolved)."""
    try:
        return os.path.commonpath([os.path.realpath(path), os.path.realpath(folder)]) \
            == os.path.realpath(folder)
    except ValueError:  # different drives
        return False


def _labelled(inputs: Any, what: str) -> list[tuple[Path, str | None]]:
    if inputs is None:
        return []
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        return [(as_path(p, f"{what} input"), None if label is None else str(label))
                for p, label in inputs.items()]
    if not isinstance(inputs, Iterable):
        raise ArgumentTypeError(f"{what}: inputs must be file paths (a list, or a dict of path "
                                f"-> label), got {type(inputs).__name__}")
    return [(as_path(p, f"{what} input"), None) for p in inputs]


def _shown(path: Path) -> str:
    """``path`` as a message shows it: relative to the working folder when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def check_not_inputs(targets: Iterable[Any], inputs: Any, *, what: str = "output") -> None:
    """Refuse any target that is one of ``inputs``, whatever ``overwrite`` says.

    Parameters
    ----------
    targets : iterable of path-like
        Files that will be written.
    inputs : iterable of path-like, or mapping of path-like to a label
        The files (and folders) the run reads: data, recipe, CIF, instrument files, a user's
        code, the checkpoint it resumes. A label (``"data.file"``) names the input's role in
        the message. A folder stands for every file in it: an existing target inside it is
        refused.
    what : str, optional
        Name of the targets in messages (``"--json"``).

    Raises
    ------
    OutputIsInputError
        A target is an input: the same path once ``.``, ``..`` and symbolic links are
        resolved, or the same file through a hard link.
    """
    known = _labelled(inputs, what)
    if not known:
        return
    if isinstance(targets, (str, bytes, os.PathLike)):
        targets = [targets]
    ids = [(p, label, _identity(p), p.is_dir()) for p, label in known]
    for t in (as_path(x, what) for x in targets):
        it = _identity(t)
        for p, label, ip, is_dir in ids:
            same = _same(it, ip)
            if same or (is_dir and (t.exists() or t.is_symlink()) and _inside(t, p)):
                role = f" ({label})" if label else ""
                if not same:
                    where = f"inside {_shown(p)}, an input folder of this run{role}"
                else:
                    alias = "" if os.path.abspath(p) == os.path.abspath(t) else \
                        f": {_shown(p)}, by {'a link' if it[2] == ip[2] else 'another name'}"
                    where = f"an input of this run{role}{alias}"
                how = "--overwrite" if what.startswith("--") else "overwrite=True"
                raise OutputIsInputError(
                    f"{what}: {t} is {where}; sciTie never writes over what a run reads, not "
                    f"even with {how}: choose another name or folder")


def _named(exc: OSError, message: str) -> OSError:
    """``exc`` (same class and errno) with a message naming the user's path."""
    new = type(exc)(message)
    new.errno = exc.errno
    return new


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder`` (or the ancestor that would hold it): the only
    test of writability that also holds for root, read-only mounts and odd file systems."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    fd, name = tempfile.mkstemp(prefix=".scitie-probe.", dir=folder)
    os.close(fd)
    os.unlink(name)


def check_targets(paths: Iterable[Any], *, overwrite: bool = False,
                  what: str = "output", inputs: Any = None, probe: bool = True) -> list[Path]:
    """Check output targets before the work that produces them starts.

    Parameters
    ----------
    paths : iterable of path-like
        Files that will be written.
    overwrite : bool, optional
        Allow replacing existing files (never the run's inputs).
    what : str, optional
        Name used in messages (``"--json"``, ``"checkpoint"`` ...). A name starting with
        ``--`` is a command-line option: messages then speak of ``--overwrite``.
    inputs : iterable of path-like, or mapping of path-like to a label, optional
        The files the run reads; see :func:`check_not_inputs`.
    probe : bool, optional
        Create and remove a file in each target's folder, so that a folder that cannot be
        written is reported now rather than after the work.

    Returns
    -------
    list of Path
        The targets.

    Raises
    ------
    OutputExistsError
        A target exists and ``overwrite`` is False.
    OutputIsInputError
        A target is one of ``inputs``.
    IsADirectoryError
        A target is a folder.
    NotADirectoryError
        A target's parent exists but is a file.
    PermissionError, OSError
        A target's folder cannot be written (the message names the target).
    ValidationError
        A target appears twice (also through a link).
    """
    if not isinstance(overwrite, (bool,)) and type(overwrite).__name__ != "bool_":
        # overwrite="no" is truthy: accepting it would replace the user's file
        raise ArgumentTypeError(f"{what}: overwrite must be True or False, got {overwrite!r} "
                                f"({type(overwrite).__name__})")
    if paths is None:
        raise ValidationError(f"{what}: give the output file(s), got None")
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]  # one path, not an iterable of its characters
    targets = [as_path(p, what) for p in paths]
    seen: list[tuple[Path, tuple]] = []
    for t in targets:
        it = _identity(t)
        for other, io_ in seen:
            if _same(it, io_):
                same = f"{t}" if str(t) == str(other) else f"{t} (the same file as {other})"
                raise ValidationError(f"{what}: {same} is named twice as an output")
        seen.append((t, it))
        if t.is_dir():
            raise IsADirectoryError(f"{what}: {t} is a folder; give a file name")
        parent = t.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"{what}: cannot create {t}: {parent} is a file, not a folder")
    check_not_inputs(targets, inputs, what=what)
    clashes = [t for t in targets if t.exists() or t.is_symlink()]
    if clashes and not overwrite:
        names = ", ".join(str(c) for c in clashes)
        how = "--overwrite" if what.startswith("--") else \
            "overwrite=True, --overwrite on the command line"
        raise OutputExistsError(f"{what}: {names} already exist{'s' if len(clashes) == 1 else ''}; "
                                f"choose another name or allow replacing it ({how})")
    if probe:
        for folder in dict.fromkeys(t.parent for t in targets):
            try:
                _probe(folder)
            except OSError as exc:
                names = ", ".join(str(t) for t in targets if t.parent == folder)
                raise _named(exc, f"{what}: cannot write {names}: {exc.strerror or exc} "
                             "(checked before any work)") from None
    return targets


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, target: Path, overwrite: bool) -> None:
    """Give ``tmp`` the name ``target`` in one step."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails with FileExistsError if the name appeared meanwhile
    except FileExistsError:
        raise OutputExistsError(f"{target} already exists (it appeared while it was being "
                                "written); nothing was replaced") from None
    except OSError:  # file systems without hard links: check, then rename
        if target.exists():
            raise OutputExistsError(f"{target} already exists; nothing was replaced") from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: Any, *, overwrite: bool = False, what: str = "output",
                suffix: str | None = None, inputs: Any = None) -> Iterator[Path]:
    """A temporary path to write to; it becomes ``path`` when the block ends without error.

    For writers that want a file name (``Dataset.to_netcdf``, ``Figure.savefig``,
    ``torch.save``). The temporary file lives in the target's folder (created if needed) and
    keeps the target's suffix, so format detection by extension still works.

    Parameters
    ----------
    path : path-like
        The final file.
    overwrite : bool, optional
        Replace an existing file.
    what : str, optional
        Name used in messages.
    suffix : str, optional
        Suffix of the temporary file (default: the target's).
    inputs : optional
        Files the result was made from, never replaced (see :func:`check_not_inputs`).

    Yields
    ------
    Path
        Where to write.
    """
    (target,) = check_targets([path], overwrite=overwrite, what=what, inputs=inputs,
                              probe=False)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # ".<name>.<random>.part<suffix>": hidden, marked as partial, and still ending in the
        # target's suffix so that writers choosing a format by extension (savefig) keep working
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.",
                                    suffix=".part" + (target.suffix if suffix is None
                                                      else suffix), dir=target.parent)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise _named(exc, f"{what}: cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists():
            raise OSError(f"the writer did not create {target}")
        with open(tmp, "rb+") as fh:  # the writer may not have synced: do it here
            os.fsync(fh.fileno())
        _commit(tmp, target, overwrite)
        _fsync_dir(target.parent)
    except OSError as exc:
        if isinstance(exc, OutputExistsError) or f"cannot write {target}" in str(exc):
            raise
        # the message names the file the user asked for, never the hidden temporary one
        reason = exc.strerror or str(exc).replace(str(tmp), str(target))
        raise _named(exc, f"{what}: cannot write {target}: {reason}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: Any, mode: str = "w", *, overwrite: bool = False, what: str = "output",
                encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it becomes ``path`` when the block ends without error.

    Parameters
    ----------
    path : path-like
        The final file.
    mode : {"w", "wb"}, optional
        Text or binary.
    overwrite : bool, optional
        Replace an existing file.
    what : str, optional
        Name used in messages.
    encoding : str, optional
        Text encoding (text mode only).
    """
    if mode not in ("w", "wb"):
        raise ValidationError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, overwrite=overwrite, what=what) as tmp:
        with open(tmp, mode, **({"encoding": encoding} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path: Any, data: bytes, *, overwrite: bool = False, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ArgumentTypeError(f"{what}: data for {path} must be bytes, got "
                                f"{type(data).__name__}")
    with atomic_open(path, "wb", overwrite=overwrite, what=what) as fh:
        fh.write(data)
    return as_path(path)


def write_text(path: Any, text: str, *, overwrite: bool = False, what: str = "output") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    if not isinstance(text, str):
        raise ArgumentTypeError(f"{what}: text for {path} must be a str, got "
                                f"{type(text).__name__}")
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite, what=what)


def _jsonable(value: Any, _open: tuple[int, ...] = ()) -> Any:
    """Plain-Python version of ``value``; non-finite floats become None (JSON has no NaN)."""
    import math

    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)):
        if id(value) in _open:
            raise ValidationError("the object to write as JSON contains itself (a circular "
                                  "reference)")
        inner = _open + (id(value),)
        if isinstance(value, dict):
            return {str(k): _jsonable(v, inner) for k, v in value.items()}
        return [_jsonable(v, inner) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(path: Any, obj: Any, *, overwrite: bool = False, what: str = "output") -> Path:
    """Write ``obj`` as indented JSON (NaN/inf as null, numpy as plain Python) atomically."""
    try:
        text = json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n"
    except TypeError as exc:  # an object json cannot represent (a set, a model ...)
        raise ArgumentTypeError(f"{what}: cannot write {path} as JSON: {exc}; give numbers, "
                                "strings, lists and dicts") from None
    return write_text(path, text, overwrite=overwrite, what=what)


def write_netcdf(dataset: Any, path: Any, *, overwrite: bool = False,
                 what: str = "output") -> Path:
    """Write an :class:`xarray.Dataset` to netCDF atomically; returns the path."""
    if not callable(getattr(dataset, "to_netcdf", None)):
        raise ArgumentTypeError(f"{what}: {path} needs an xarray.Dataset, got "
                                f"{type(dataset).__name__}")
    with atomic_path(path, overwrite=overwrite, what=what,
                     inputs=_provenance_inputs(dataset)) as tmp:
        dataset.to_netcdf(tmp)
    return as_path(path)


def _provenance_inputs(dataset: Any) -> list[str]:
    """The input files a result's provenance names (``attrs["inputs"]``, see
    :func:`sciTie.provenance.provenance`): a result is never written over its own data."""
    try:
        record = json.loads(dataset.attrs.get("inputs", "[]"))
        return [e["path"] for e in record if isinstance(e, dict) and e.get("path")]
    except (AttributeError, TypeError, ValueError):  # no provenance, or not sciTie's
        return []


def save_figure(figure: Any, path: Any, *, overwrite: bool = False, what: str = "output",
                **savefig_kwargs: Any) -> Path:
    """Save a matplotlib figure atomically (format from the suffix, PNG by default)."""
    target = as_path(path, what)
    if not callable(getattr(figure, "savefig", None)):
        raise ArgumentTypeError(f"{what}: {target} needs a matplotlib Figure, got "
                                f"{type(figure).__name__}")
    fmt = savefig_kwargs.pop("format", None) or (target.suffix.lstrip(".").lower() or "png")
    canvas = getattr(figure, "canvas", None)
    supported = canvas.get_supported_filetypes() if canvas is not None else None
    if supported and fmt not in supported:
        raise ValidationError(f"{what}: cannot save a figure as {fmt!r} ({target}); use one of "
                              f"{', '.join(sorted(supported))}")
    with atomic_path(target, overwrite=overwrite, what=what) as tmp:
        figure.savefig(tmp, format=fmt, **savefig_kwargs)
    return target


def file_sha256(path: Any, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (provenance of inputs)."""
    h = hashlib.sha256()
    with open(as_path(path), "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
