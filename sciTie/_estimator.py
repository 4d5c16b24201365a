"""scikit-learn's parameter protocol for sciTie's own estimators.

``get_params``/``set_params`` read and write the constructor's arguments, stored as given
(scikit-learn's ``BaseEstimator`` semantics, nested ``start__mode`` names included), and
``__sklearn_clone__`` makes :func:`sklearn.base.clone` copy all of them in one deep copy, so
objects shared between arguments (a :class:`~sciTie.diffraction.Phase` inside the patterns
and in ``phases``) stay shared in the clone. The HMMs inherit hmmlearn's (scikit-learn's)
protocol instead; this one raises sciTie's error types.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any

from .errors import UnknownNameError

__all__ = ["EstimatorParams"]


class EstimatorParams:
    """Mixin: the constructor's arguments as the estimator's parameters."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments as given (scikit-learn convention).

        Parameters
        ----------
        deep : bool, optional
            Also the parameters of arguments that are estimators themselves, as
            ``<argument>__<parameter>``.

        Returns
        -------
        dict
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update({f"{name}__{k}": v for k, v in value.get_params().items()})
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Any:
        """Set constructor arguments (``start__mode`` for a nested estimator's); returns
        ``self``. Nothing is checked until :meth:`fit`, as in scikit-learn.

        Raises
        ------
        UnknownNameError
            For a name that is not an argument of the constructor.
        """
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise UnknownNameError(f"{type(self).__name__}: unknown parameter {name!r}; "
                                       f"parameters: {', '.join(valid)}")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub in nested.items():
            inner = getattr(self, name)
            if not hasattr(inner, "set_params"):
                raise UnknownNameError(f"{type(self).__name__}: {name!r} is not an estimator, "
                                       f"so {sorted(sub)} cannot be set on it")
            inner.set_params(**sub)
        return self

    def __sklearn_clone__(self) -> Any:
        """An unfitted copy with the same parameters (one deep copy of all of them)."""
        return type(self)(**copy.deepcopy(self.get_params(deep=False)))
