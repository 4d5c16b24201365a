"""Argument checks shared by every public entry point.

Each helper returns the value in its canonical type or raises
:class:`~sciTie.errors.ArgumentTypeError` (wrong type) or
:class:`~sciTie.errors.ValidationError` (wrong value) with a message that names the argument,
says what was given and what is expected. They run before any heavy work, so that a bad
argument never reaches numpy, numba or torch.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

from .errors import ArgumentTypeError, UnknownNameError, ValidationError

__all__ = ["check_bool", "check_int", "check_float", "check_choice", "check_str",
           "check_random_state", "check_array", "check_memory", "physical_memory"]


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool; only ``True``/``False`` (also numpy's) are accepted.

    A string such as ``"False"`` is truthy in Python; accepting it would silently mean True.
    """
    if not _is_bool(value):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r} "
                                f"({type(value).__name__})")
    return bool(value)


def check_int(value: Any, name: str, *, minimum: int | None = None,
              maximum: int | None = None, allow_none: bool = False) -> int | None:
    """``value`` as an int in ``[minimum, maximum]``.

    Integral floats (``3.0``) are accepted; ``2.5``, ``True`` and strings are refused.
    """
    if value is None and allow_none:
        return None
    if _is_bool(value) or not isinstance(value, (numbers.Integral, float, np.floating)):
        raise ArgumentTypeError(f"{name} must be an integer{' or None' if allow_none else ''}, "
                                f"got {value!r} ({type(value).__name__})")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(float(value)) or float(value) != int(value):
            raise ValidationError(f"{name} must be a whole number, got {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValidationError(f"{name} must be at least {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise ValidationError(f"{name} must be at most {maximum}, got {out}")
    return out


def check_float(value: Any, name: str, *, minimum: float | None = None,
                maximum: float | None = None, low_open: bool = False, high_open: bool = False,
                finite: bool = True, allow_none: bool = False) -> float | None:
    """``value`` as a float in the interval given (``low_open``: excludes ``minimum``).

    Refuses bools, strings, NaN and (with ``finite``) infinities.
    """
    if value is None and allow_none:
        return None
    if _is_bool(value) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ArgumentTypeError(f"{name} must be a number{' or None' if allow_none else ''}, "
                                f"got {value!r} ({type(value).__name__})")
    out = float(value)
    if math.isnan(out) or (finite and math.isinf(out)):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (out < minimum or (low_open and out == minimum)):
        raise ValidationError(f"{name} must be {'>' if low_open else '>='} {minimum:g}, got "
                              f"{value!r}")
    if maximum is not None and (out > maximum or (high_open and out == maximum)):
        raise ValidationError(f"{name} must be {'<' if high_open else '<='} {maximum:g}, got "
                              f"{value!r}")
    return out


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared with ``==``, types must be hashable)."""
    options = list(choices)
    if not isinstance(value, (str, type(None))) or value not in options:
        shown = ", ".join(repr(c) for c in options)
        raise ValidationError(f"{name} must be one of {shown}; got {value!r}")
    return value


def check_mapping(value: Any, name: str, known: Iterable[str], *, what: str = "keys",
                  example: str = "{...}") -> dict:
    """``value`` as a dict (``{}`` for None) whose keys are all among ``known``.

    ``what`` names the keys in the message ("keys", "phases", "patterns"); ``example``
    shows the expected form.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArgumentTypeError(f"{name} must be a dict such as {example}, got "
                                f"{type(value).__name__}")
    options = list(known)
    unknown = [k for k in value if k not in options]
    if unknown:
        raise UnknownNameError(f"{name}: unknown {what} {unknown}; expected some of {options}")
    return value


def check_str(value: Any, name: str) -> str:
    """``value`` if it is a str."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a str, got {value!r} ({type(value).__name__})")
    return value


def check_random_state(value: Any, name: str = "random_state") -> Any:
    """``value`` if it can seed numpy: None, an int in [0, 2**32), a RandomState or Generator.

    Returned unchanged (the estimator converts it when it uses it).
    """
    if value is None or isinstance(value, (np.random.RandomState, np.random.Generator)):
        return value
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be None, an integer seed or a "
                                f"numpy.random.RandomState, got {value!r} "
                                f"({type(value).__name__})")
    if not 0 <= int(value) < 2**32:
        raise ValidationError(f"{name} must be a seed between 0 and 2**32 - 1, got {value}")
    return value


def check_array(value: Any, name: str, *, ndim: int | None = None,
                shape: tuple[int | None, ...] | None = None, finite: bool = True,
                allow_empty: bool = False, dtype: Any = np.float64) -> np.ndarray:
    """``value`` as a numeric array of ``dtype``, checked for shape and finiteness.

    Parameters
    ----------
    value : array_like
        The argument.
    name : str
        Its name in messages.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple, optional
        Required shape (``None`` entries match any length).
    finite : bool, optional
        Refuse NaN and infinities.
    allow_empty : bool, optional
        Accept arrays with no elements.
    dtype : numpy dtype, optional
        Target type (float64 by default).
    """
    if value is None:
        raise ArgumentTypeError(f"{name} must be an array of numbers, got None")
    if isinstance(value, (str, bytes)):
        raise ArgumentTypeError(f"{name} must be an array of numbers, got {value!r}")
    try:
        raw = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ValidationError(f"{name} must be a rectangular array of numbers ({exc})") from None
    if raw.dtype == object or raw.dtype.kind in "USVMmc":
        raise ArgumentTypeError(f"{name} must hold real numbers, got an array of dtype "
                                f"{raw.dtype}")
    arr = raw.astype(dtype, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValidationError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a
                                          for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValidationError(f"{name} must have shape {want}, got {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValidationError(f"{name} is empty; expected at least one value")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        where = tuple(int(i) for i in bad[0]) if arr.ndim else ()
        raise ValidationError(f"{name} must be finite; it holds {len(bad)} NaN or infinite "
                              f"value(s), the first at index {where}")
    return arr


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return None


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1000.0
    return f"{n:.3g} PB"  # pragma: no cover


def check_memory(nbytes: float, name: str, *, what: str = "", fraction: float = 0.5) -> None:
    """Refuse, before allocating, work that needs more than ``fraction`` of this machine's
    physical memory.

    Parameters
    ----------
    nbytes : float
        Estimated bytes the work holds at once.
    name : str
        The argument or setting that decides the size (named in the message).
    what : str, optional
        What is that large (``"a 40000 x 40000 transition matrix"``).
    fraction : float, optional
        Share of the physical memory one fit may take.
    """
    total = physical_memory()
    if total is None or nbytes <= fraction * total:
        return
    raise ValidationError(f"{name} asks for {what + ', ' if what else ''}about "
                          f"{_bytes(nbytes)} of memory; this machine has {_bytes(total)} in "
                          f"all. Choose a smaller {name}")
