"""sciTie's exceptions and warnings: one hierarchy for every model and the command line.

Every error sciTie raises on purpose derives from :class:`SciTieError`, and also from the
built-in class a Python user would expect (``ValueError`` for a bad value, ``FileExistsError``
for an output that is already there ...), so ``except ValueError`` keeps working. The command
line turns any of them into a one-line message and a non-zero exit; a traceback means a bug.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["SciTieError", "NotFittedError", "ValidationError", "ArgumentTypeError",
           "UnknownNameError", "DataFormatError", "DownloadError",
           "OutputExistsError", "OutputIsInputError", "CheckpointError", "RecipeError",
           "TrainingDivergedError",
           "FitWarning", "ConvergenceWarning", "IdentifiabilityWarning", "location",
           "not_fitted"]


class SciTieError(Exception):
    """Base class of every error sciTie raises deliberately."""


def _make_not_fitted_error() -> type:
    # scikit-learn is imported only when this class is first needed: ``import sciTie`` and the
    # command line's listing commands stay fast
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    class NotFittedError(SciTieError, SklearnNotFittedError):
        """A method that needs a fitted model was called before ``fit``.

        Also scikit-learn's :class:`~sklearn.exceptions.NotFittedError` (hence a
        ``ValueError`` and an ``AttributeError``), so scikit-learn tooling recognises it.
        """

    NotFittedError.__module__ = __name__
    NotFittedError.__qualname__ = "NotFittedError"
    return NotFittedError


_LAZY: dict[str, type] = {}


def __getattr__(name: str) -> type:
    if name == "NotFittedError":
        if name not in _LAZY:
            _LAZY[name] = _make_not_fitted_error()
        return _LAZY[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def not_fitted(estimator: object, what: str = "") -> Exception:
    """The :class:`NotFittedError` to raise for ``estimator`` (call ``fit`` first)."""
    cls = __getattr__("NotFittedError")
    name = type(estimator).__name__
    return cls(f"this {name} is not fitted yet; call fit() before {what or 'using it'}")


class ValidationError(SciTieError, ValueError):
    """An argument has a wrong value, shape or range; the message names the argument."""


class ArgumentTypeError(SciTieError, TypeError):
    """An argument has the wrong type (a string where numbers are expected ...)."""


class UnknownNameError(ValidationError, KeyError):
    """A parameter, slot, group or dataset name that does not exist (the message lists the
    known ones). Also a ``KeyError``, as a failed lookup by name is in Python."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


def location(path: str | os.PathLike | None, line: int | None = None,
             key: str | None = None) -> str:
    """``"file:line"`` / ``"file [key]"`` prefix for messages about a place in a file."""
    where = "" if path is None else os.fspath(path)
    if line is not None:
        where += f":{line}"
    if key:
        where += f" [{key}]"
    return where


class DataFormatError(SciTieError, ValueError):
    """A data or settings file that cannot be read as what it claims to be.

    Parameters
    ----------
    message : str
        What is wrong and what is expected.
    path : str or os.PathLike, optional
        The file.
    line : int, optional
        1-based line number, when the format has lines.
    key : str, optional
        The key or field (TOML key, netCDF variable, column name).

    The rendered message starts with ``file:line [key]:`` so that it names the place.
    """

    def __init__(self, message: str, *, path: Any = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.key = key
        self.reason = message
        where = location(path, line, key)
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self):  # keep the keyword arguments through pickling (dask, processes)
        return (_rebuild_data_error, (type(self), self.reason, self.path, self.line, self.key))


def _rebuild_data_error(cls, message, path, line, key):
    return cls(message, path=path, line=line, key=key)


class CheckpointError(DataFormatError):
    """A training checkpoint that is missing, corrupt, unsafe or from other settings."""


class RecipeError(DataFormatError):
    """A recipe (TOML) with an unknown key, a wrong type, a missing file or a bad tie."""


class OutputExistsError(SciTieError, FileExistsError):
    """An output file already exists and replacing it was not asked for (``overwrite``)."""


class DownloadError(SciTieError, OSError):
    """A dataset could not be downloaded (no network, a server error), or what arrived does
    not have the SHA-256 it must have; the message names the URL and the settings that point
    sciTie at a local copy instead."""


class OutputIsInputError(OutputExistsError):
    """An output target is one of the run's inputs (its data, recipe, CIF, instrument file,
    code or resumed checkpoint), by path or through a link: refused even with ``overwrite``."""


class TrainingDivergedError(SciTieError, RuntimeError):
    """The training loss of a network became NaN or infinite."""


class FitWarning(UserWarning):
    """A fit finished but its result deserves suspicion (read the message)."""


class ConvergenceWarning(FitWarning):
    """An optimiser stopped before its convergence criterion was met, or far from a fit."""


class IdentifiabilityWarning(FitWarning):
    """The information matrix is singular or not positive definite: some parameters are not
    determined by the data (standard errors of the named parameters are unreliable)."""
