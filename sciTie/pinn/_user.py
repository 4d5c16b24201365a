"""Calling the functions a user writes (residual, initial condition, reference, solver terms).

Two rules, applied wherever such a function is called:

- an exception raised inside it becomes a :class:`~sciTie.errors.ValidationError` that names
  the function, the exception and the line of the user's code it came from (the command line
  prints it as one line, never a traceback);
- a function that has a parameter named ``parameters``, or one more positional parameter than
  the arrays it is given, receives the problem's coefficients (``linear(k, parameters)``,
  ``reference(x, t, parameters)``), so that a changed coefficient reaches it too.
"""
from __future__ import annotations

import inspect
import os
import traceback
from typing import Any, Callable, Mapping

from ..errors import SciTieError, ValidationError

__all__ = ["call_user", "takes_parameters", "bind_parameters", "with_parameters",
           "source_fingerprint"]

_LIBRARY_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in
                      (__import__("torch"), __import__("numpy"))) + (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)


def _where(exc: BaseException) -> str:
    """`` (file.py, line N, in fn)`` for the innermost frame outside torch, numpy and sciTie."""
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        if not os.path.abspath(fr.filename).startswith(_LIBRARY_DIRS):
            return f" ({os.path.basename(fr.filename)}, line {fr.lineno}, in {fr.name})"
    return ""


def call_user(fn: Callable[..., Any], what: str, *args: Any, hint: str = "",
              **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; an exception from inside it is reported as a sciTie error.

    Parameters
    ----------
    fn : callable
        The user's function.
    what : str
        How the message names it (``"problem.residual"``).
    hint : str, optional
        Appended to the message (what the function is expected to do).
    """
    try:
        return fn(*args, **kwargs)
    except SciTieError:
        raise
    except Exception as exc:  # the user's code failed: say which function, what and where
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValidationError(f"{what} raised {type(exc).__name__}"
                              f"{': ' + text if text else ''}{_where(exc)}"
                              f"{'; ' + hint if hint else ''}") from exc


def takes_parameters(fn: Callable[..., Any], n_args: int) -> str | None:
    """How ``fn`` receives the problem's coefficients after ``n_args`` arrays.

    Returns
    -------
    {"keyword", "positional", None}
        ``"keyword"`` when ``fn`` has a parameter named ``parameters``; ``"positional"`` when
        it takes more than ``n_args`` positional arguments; None otherwise (it does not see
        them).
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins such as numpy ufuncs: arrays only
        return None
    params = list(sig.parameters.values())
    if any(p.name == "parameters" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
           for p in params):
        return "keyword"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return "positional" if len(positional) > n_args else None


def bind_parameters(fn: Callable[..., Any], what: str, n_args: int,
                    parameters: Mapping[str, Any]) -> Callable[..., Any]:
    """``g(*args)`` calling ``fn(*args)`` through :func:`call_user`, with ``parameters``
    added when ``fn`` takes them after ``n_args`` arrays (decided once, here)."""
    if not callable(fn):
        raise ValidationError(f"{what} must be callable; got {type(fn).__name__}")
    how = takes_parameters(fn, n_args)
    params = dict(parameters)
    if how == "keyword":
        return lambda *args: call_user(fn, what, *args, parameters=params)
    if how == "positional":
        return lambda *args: call_user(fn, what, *args, params)
    return lambda *args: call_user(fn, what, *args)


def with_parameters(fn: Callable[..., Any], what: str, args: tuple[Any, ...],
                    parameters: Mapping[str, Any]) -> Any:
    """Call ``fn(*args)``, adding ``parameters`` when ``fn`` takes them (see the module rules)."""
    return bind_parameters(fn, what, len(args), parameters)(*args)


def source_fingerprint(fn: Any) -> str:
    """Text that changes when ``fn``'s code or captured constants change (for checkpoints).

    The source when it can be read, else the compiled code; plus the values of simple
    captured variables (numbers, text), which a closure may use as coefficients.
    """
    if fn is None:
        return "None"
    target = getattr(fn, "func", fn)  # functools.partial
    parts = [getattr(target, "__qualname__", type(target).__name__)]
    try:
        parts.append(inspect.getsource(target))
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        parts.append(repr((code.co_code, code.co_consts, code.co_names)) if code is not None
                     else repr(target))
    for cell in getattr(target, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, (int, float, str, bool, tuple)):
            parts.append(repr(value))
    if target is not fn:
        parts.append(repr(getattr(fn, "args", ())) + repr(getattr(fn, "keywords", {})))
    return "\n".join(parts)
