"""A named, bounded, possibly array-valued model parameter in lmfit's vocabulary."""
from __future__ import annotations

import keyword
from typing import Any

import numpy as np

from ..errors import ArgumentTypeError, ValidationError
from .expressions import RESERVED_NAMES, Expression

__all__ = ["Parameter", "check_name"]


def check_name(name: Any, what: str = "parameter name") -> str:
    """Validate an identifier used as a parameter or group name."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"{what} must be a str, got {type(name).__name__}")
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ValidationError(f"{what} {name!r} is not valid: use a Python identifier that does "
                              "not start with '_' and is not a keyword")
    if name in RESERVED_NAMES:
        raise ValidationError(f"{what} {name!r} is reserved for a constant or function in "
                              "constraint expressions; choose another name")
    return name


def _as_float_array(value: Any, what: str) -> np.ndarray:
    """``value`` as float64; strings, booleans, complex numbers and ragged lists refused."""
    if isinstance(value, (str, bytes)):
        raise ArgumentTypeError(f"{what} must be a number or an array of numbers, got {value!r}")
    try:
        raw = np.asarray(value)
    except ValueError:  # ragged nested sequences
        raise ArgumentTypeError(f"{what} must be a number or a rectangular array of numbers, "
                                f"got {type(value).__name__}") from None
    if raw.dtype.kind in "bUSVcMm":
        kind = {"b": "booleans", "c": "complex numbers"}.get(raw.dtype.kind, "text")
        raise ArgumentTypeError(f"{what} must be a number or an array of real numbers, got "
                                f"{kind} ({value!r})")
    try:
        arr = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{what} must be a number or an array of numbers, "
                                f"got {type(value).__name__}") from None
    return arr


def _as_vary(flag: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``vary`` as a bool array of ``shape``: only True/False (or arrays of them).

    ``vary="False"`` would be truthy; 0/1 or None are ambiguous: all are refused.
    """
    arr = np.asarray(flag) if not isinstance(flag, (str, bytes)) else None
    if arr is None or arr.dtype != np.bool_:
        raise ArgumentTypeError(f"{what}: vary must be True or False (or an array of them), "
                                f"got {flag!r} ({type(flag).__name__})")
    try:
        return np.broadcast_to(arr, shape).copy()
    except ValueError:
        raise ValidationError(f"{what}: min, max and vary must be scalars or have the value's "
                              f"shape {shape}; vary has shape {arr.shape}") from None


class Parameter:
    """One parameter: a scalar or an array of model slots sharing a name and bounds.

    Parameters
    ----------
    name : str
        Identifier; array elements are addressed as ``name[i]`` or ``name[i,j]``.
    value : float or array_like, optional
        Starting value (float64). May be omitted when ``expr`` is given.
    vary : bool or array_like of bool, default True
        Whether the parameter (or each element) is refined. An array allows fixing some
        elements of an array parameter.
    min, max : float or array_like, default -inf, +inf
        Bounds, broadcast to the value's shape.
    expr : str, optional
        Makes the (scalar) parameter dependent: its value is this expression of other
        parameters, like lmfit's ``expr``.
    unit, description : str
        Free text shown in reports.

    Attributes
    ----------
    stderr : float or ndarray or None
        Standard error, set on the fitted copy a fit returns.
    correl : dict or None
        Correlation with each other free parameter, set on the fitted copy.
    init_value : float or ndarray
        The value the parameter was created with.
    """

    def __init__(self, name: str, value: Any = None, *, vary: Any = True, min: Any = -np.inf,
                 max: Any = np.inf, expr: str | None = None, unit: str = "",
                 description: str = "") -> None:
        self.name = check_name(name)
        if expr is not None:
            Expression(expr, context=f"parameter {name!r}")  # validate now, resolve later
            if value is None:
                value = np.nan
        elif value is None:
            raise ValidationError(f"parameter {name!r}: give a value (or an expr)")
        val = _as_float_array(value, f"parameter {name!r} value")
        if expr is None and not np.all(np.isfinite(val)):
            raise ValidationError(f"parameter {name!r}: value must be finite, got {value!r}")
        if expr is not None and val.ndim != 0:
            raise ValidationError(f"parameter {name!r}: expr is for scalar parameters; constrain "
                                  "array elements one at a time with ParameterGroup.constrain")
        for what, text in (("unit", unit), ("description", description)):
            if not isinstance(text, str):
                raise ArgumentTypeError(f"parameter {name!r}: {what} must be a str, got "
                                        f"{text!r} ({type(text).__name__})")
        vary_arr = _as_vary(vary, val.shape, f"parameter {name!r}")
        try:
            lo = np.broadcast_to(_as_float_array(min, f"parameter {name!r} min"), val.shape).copy()
            hi = np.broadcast_to(_as_float_array(max, f"parameter {name!r} max"), val.shape).copy()
        except ValueError:
            raise ValidationError(f"parameter {name!r}: min, max and vary must be scalars or have "
                                  f"the value's shape {val.shape}") from None
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise ValidationError(f"parameter {name!r}: min and max must not be NaN")
        if np.any(lo > hi):
            raise ValidationError(f"parameter {name!r}: min ({min}) is greater than max ({max})")
        if expr is None and np.any((val < lo) | (val > hi)):
            raise ValidationError(f"parameter {name!r}: value {value} is outside its bounds "
                                  f"[{min}, {max}]")
        self._value = val
        self.min = lo if lo.ndim else float(lo)
        self.max = hi if hi.ndim else float(hi)
        self._vary = vary_arr
        self.expr = expr
        self.unit = unit
        self.description = description
        self.init_value = self.value
        self._owner = None  # the ParameterGroup it was added to
        self.stderr: float | np.ndarray | None = None
        self.correl: dict[str, float] | None = None

    # value and vary keep their array form inside; scalars are shown as floats
    @property
    def value(self) -> float | np.ndarray:
        return float(self._value) if self._value.ndim == 0 else self._value.copy()

    @value.setter
    def value(self, new: Any) -> None:
        arr = _as_float_array(new, f"parameter {self.name!r} value")
        if arr.shape != self._value.shape:
            raise ValidationError(f"parameter {self.name!r}: value must have shape "
                                  f"{self._value.shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValidationError(f"parameter {self.name!r}: value must be finite, got {new!r}")
        self._value = arr

    # bounds set after construction get the same checks as in __init__: min > max or a NaN
    # bound would otherwise reach the optimiser (or silently make every value infeasible)
    @property
    def min(self) -> float | np.ndarray:
        return self._min

    @min.setter
    def min(self, new: Any) -> None:
        self._min = self._bound(new, "min")

    @property
    def max(self) -> float | np.ndarray:
        return self._max

    @max.setter
    def max(self, new: Any) -> None:
        self._max = self._bound(new, "max")

    def _bound(self, new: Any, which: str) -> float | np.ndarray:
        try:
            arr = np.broadcast_to(_as_float_array(new, f"parameter {self.name!r} {which}"),
                                  self._value.shape).copy()
        except ValueError:
            raise ValidationError(f"parameter {self.name!r}: {which} must be a scalar or have "
                                  f"the value's shape {self._value.shape}") from None
        if np.any(np.isnan(arr)):
            raise ValidationError(f"parameter {self.name!r}: {which} must not be NaN")
        other = self.__dict__.get("_max" if which == "min" else "_min")
        if other is not None:
            lo, hi = (arr, other) if which == "min" else (other, arr)
            if np.any(np.asarray(lo) > np.asarray(hi)):
                raise ValidationError(f"parameter {self.name!r}: min ({lo}) would be greater "
                                      f"than max ({hi}); set the bounds so that min <= max")
        return arr if arr.ndim else float(arr)

    @property
    def vary(self) -> bool | np.ndarray:
        return bool(self._vary) if self._vary.ndim == 0 else self._vary.copy()

    @vary.setter
    def vary(self, flag: Any) -> None:
        self._vary = _as_vary(flag, self._value.shape, f"parameter {self.name!r}")

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def size(self) -> int:
        return int(self._value.size)

    def __repr__(self) -> str:
        v = self.value
        text = f"{v:.6g}" if isinstance(v, float) else f"array{self.shape}"
        extra = f", expr={self.expr!r}" if self.expr else ""
        if self.stderr is not None and isinstance(self.stderr, float):
            text += f" +/- {self.stderr:.3g}"
        return f"<Parameter {self.name!r} {text}{extra}>"
