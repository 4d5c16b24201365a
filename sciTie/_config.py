"""Configuration in one place: :func:`set_config`, :func:`get_config`, :func:`config_context`.

Modelled on scikit-learn's. A setting is looked up in this order: a value set with
:func:`set_config` / :func:`config_context`, then its environment variable (read here and
nowhere else in sciTie, at lookup time, so a variable exported before a run is honoured),
then the built-in default.

=============  ======================  =====================================================
setting        environment variable    meaning
=============  ======================  =====================================================
data_dir       ``SCITIE_DATA_DIR``     folder holding the external datasets
                                       (``cucr2o4_seq/`` ...): an offline mirror
cache_dir      ``SCITIE_CACHE_DIR``    where downloaded datasets are kept (default: the
                                       user's cache folder, see :func:`default_cache_dir`)
offline        ``SCITIE_OFFLINE``      never download a dataset (true/false)
budget         ``SCITIE_BUDGET``       multiplier on training/iteration budgets of the
                                       recipes and the command line (PINN steps ...);
                                       ``SCITIE_PINN_BUDGET`` is read as well
n_threads      ``SCITIE_N_THREADS``    CPU threads a fit may use (torch during PINN
                                       training; restored afterwards). None: automatic
hmm_threads    ``SCITIE_HMM_THREADS``  threads over sequences in the compiled HMM E-step
                                       (1: serial, measured faster on 2 shared cores)
progress       ``SCITIE_PROGRESS``     show progress bars on long fits (true/false; default:
                                       whether standard error is a terminal)
=============  ======================  =====================================================
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ValidationError

__all__ = ["set_config", "get_config", "config_context", "default_cache_dir"]

_UNSET = object()


def _path_or_none(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ValidationError(f"{what} must be a folder path (str or os.PathLike) or None, got "
                              f"{type(value).__name__}")
    if not os.fspath(value).strip() or "\x00" in os.fspath(value):
        raise ValidationError(f"{what} must be a non-empty folder path (or None for no data "
                              f"folder), got {os.fspath(value)!r}")
    return os.fspath(Path(value).expanduser())


def _positive_float(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a positive number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out) or out <= 0:
        raise ValidationError(f"{what} must be a positive finite number, got {value!r}")
    return out


def _threads(value: Any, what: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a positive integer or None, got {value!r}") from None
    if isinstance(value, bool) or out < 1 or (not isinstance(value, str) and out != value):
        raise ValidationError(f"{what} must be a positive integer or None, got {value!r}")
    return out


def _positive_int(value: Any, what: str) -> int:
    out = _threads(value, what)
    return 1 if out is None else out


def _boolean(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValidationError(f"{what} must be true or false, got {value!r}")


def _stderr_is_terminal() -> bool:
    """Progress bars by default only where someone watches (not in pipes, logs or tests)."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def default_cache_dir() -> str:
    """The user's cache folder for sciTie, as each platform keeps them.

    Linux and other Unix: ``$XDG_CACHE_HOME/scitie`` (default ``~/.cache/scitie``); macOS:
    ``~/Library/Caches/scitie``; Windows: ``%LOCALAPPDATA%\\scitie\\Cache``. The
    ``cache_dir`` setting (``SCITIE_CACHE_DIR``) replaces it.
    """
    import sys

    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return str(Path(base) / "scitie" / "Cache")
    if sys.platform == "darwin":
        return str(Path.home() / "Library" / "Caches" / "scitie")
    base = os.environ.get("XDG_CACHE_HOME") or ""
    # the XDG specification ignores a relative path
    base = base if os.path.isabs(base) else str(Path.home() / ".cache")
    return str(Path(base) / "scitie")


# name -> (environment variables, default (a callable is called at lookup), checker)
_SETTINGS: dict[str, tuple[tuple[str, ...], Any, Callable[[Any, str], Any]]] = {
    "data_dir": (("SCITIE_DATA_DIR",), None, _path_or_none),
    "cache_dir": (("SCITIE_CACHE_DIR",), default_cache_dir, _path_or_none),
    "offline": (("SCITIE_OFFLINE",), False, _boolean),
    "budget": (("SCITIE_BUDGET", "SCITIE_PINN_BUDGET"), 1.0, _positive_float),
    "n_threads": (("SCITIE_N_THREADS",), None, _threads),
    "hmm_threads": (("SCITIE_HMM_THREADS",), 1, _positive_int),
    "progress": (("SCITIE_PROGRESS",), lambda: _stderr_is_terminal(), _boolean),
}

_explicit: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "scitie_config", default={})


def _lookup(name: str) -> Any:
    explicit = _explicit.get()
    envs, default, check = _SETTINGS[name]
    if name in explicit and not (explicit[name] is None and callable(default)):
        return explicit[name]
    for env in envs:
        raw = os.environ.get(env)
        if raw is not None and raw != "":
            return check(raw, f"environment variable {env}")
    if callable(default):
        return check(default(), name)
    return default


def get_setting(name: str) -> Any:
    """The current value of one setting (as :func:`get_config` gives it, without working out
    the others: the E-step asks for ``hmm_threads`` at every EM iteration)."""
    if name not in _SETTINGS:
        raise ValidationError(f"unknown setting {name!r}; known: {', '.join(_SETTINGS)}")
    return _lookup(name)


def get_config() -> dict[str, Any]:
    """The current value of every setting (explicit, else environment, else default).

    Returns
    -------
    dict
        ``{"data_dir": ..., "cache_dir": ..., "offline": ..., "budget": ...,
        "n_threads": ..., "hmm_threads": ..., "progress": ...}``.
    """
    return {name: _lookup(name) for name in _SETTINGS}


def _checked(settings: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in settings.items():
        if name not in _SETTINGS:
            raise ValidationError(f"unknown setting {name!r}; known: {', '.join(_SETTINGS)}")
        if value is _UNSET:
            continue
        out[name] = _SETTINGS[name][2](value, name)
    return out


def set_config(*, data_dir: Any = _UNSET, cache_dir: Any = _UNSET, offline: Any = _UNSET,
               budget: Any = _UNSET, n_threads: Any = _UNSET, hmm_threads: Any = _UNSET,
               progress: Any = _UNSET) -> None:
    """Set sciTie's settings for the rest of the program (or the current context).

    Parameters
    ----------
    data_dir : str or os.PathLike or None, optional
        Folder that contains the external datasets' folders (``cucr2o4_seq/`` ...): a local
        mirror, used before the download cache.
    cache_dir : str or os.PathLike or None, optional
        Folder where downloaded datasets are kept (None: ``$SCITIE_CACHE_DIR``, else the
        platform's user cache folder, :func:`default_cache_dir`).
    offline : bool, optional
        Never download: a dataset not found on this machine is an error naming its URL.
    budget : float, optional
        Positive multiplier on the training budgets of recipes and the command line.
    n_threads : int or None, optional
        CPU threads a fit may use; None picks automatically.
    hmm_threads : int, optional
        Threads over sequences in the HMM E-step (1 = serial).
    progress : bool, optional
        Show progress bars.

    Settings not passed keep their values. Wrong values raise
    :class:`~sciTie.errors.ValidationError` naming the setting.
    """
    new = dict(_explicit.get())
    new.update(_checked(dict(data_dir=data_dir, cache_dir=cache_dir, offline=offline,
                             budget=budget, n_threads=n_threads, hmm_threads=hmm_threads,
                             progress=progress)))
    _explicit.set(new)


@contextlib.contextmanager
def config_context(**settings: Any) -> Iterator[None]:
    """Temporarily change settings inside a ``with`` block (restored on exit, even on error).

    Parameters
    ----------
    **settings
        Any of the :func:`set_config` keywords.

    Examples
    --------
    >>> import sciTie
    >>> with sciTie.config_context(budget=0.5):
    ...     sciTie.get_config()["budget"]
    0.5
    """
    new = dict(_explicit.get())
    new.update(_checked(settings))
    token = _explicit.set(new)
    try:
        yield
    finally:
        _explicit.reset(token)
