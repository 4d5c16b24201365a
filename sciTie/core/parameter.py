"""A named, bounded, possibly array-valued model parameter in lmfit's vocabulary."""
from __future__ import annotations

import keyword
from typing import Any

import numpy as np

from .expressions import RESERVED_NAMES, Expression

__all__ = ["Parameter", "check_name"]


def check_name(name: Any, what: str = "parameter name") -> str:
    """Validate an identifier used as a parameter or group name."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}")
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ValueError(f"{what} {name!r} is not valid: use a Python identifier that does not "
                         "start with '_' and is not a keyword")
    if name in RESERVED_NAMES:
        raise ValueError(f"{what} {name!r} is reserved for a constant or function in "
                         "constraint expressions; choose another name")
    return name


def _as_float_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{what} must be a number or an array of numbers, got {value!r}")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or an array of numbers, "
                        f"got {type(value).__name__}") from None
    return arr


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
            raise ValueError(f"parameter {name!r}: give a value (or an expr)")
        val = _as_float_array(value, f"parameter {name!r} value")
        if expr is None and not np.all(np.isfinite(val)):
            raise ValueError(f"parameter {name!r}: value must be finite, got {value!r}")
        if expr is not None and val.ndim != 0:
            raise ValueError(f"parameter {name!r}: expr is for scalar parameters; constrain "
                             "array elements one at a time with ParameterGroup.constrain")
        try:
            lo = np.broadcast_to(_as_float_array(min, f"parameter {name!r} min"), val.shape).copy()
            hi = np.broadcast_to(_as_float_array(max, f"parameter {name!r} max"), val.shape).copy()
            vary_arr = np.broadcast_to(np.asarray(vary, dtype=bool), val.shape).copy()
        except ValueError:
            raise ValueError(f"parameter {name!r}: min, max and vary must be scalars or have the "
                             f"value's shape {val.shape}") from None
        if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise ValueError(f"parameter {name!r}: min and max must not be NaN")
        if np.any(lo > hi):
            raise ValueError(f"parameter {name!r}: min ({min}) is greater than max ({max})")
        if expr is None and np.any((val < lo) | (val > hi)):
            raise ValueError(f"parameter {name!r}: value {value} is outside its bounds "
                             f"[{min}, {max}]")
        self._value = val
        self.min = lo if lo.ndim else float(lo)
        self.max = hi if hi.ndim else float(hi)
        self._vary = vary_arr
        self.expr = expr
        self.unit = str(unit)
        self.description = str(description)
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
            raise ValueError(f"parameter {self.name!r}: value must have shape "
                             f"{self._value.shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"parameter {self.name!r}: value must be finite, got {new!r}")
        self._value = arr

    @property
    def vary(self) -> bool | np.ndarray:
        return bool(self._vary) if self._vary.ndim == 0 else self._vary.copy()

    @vary.setter
    def vary(self, flag: Any) -> None:
        self._vary = np.broadcast_to(np.asarray(flag, dtype=bool), self._value.shape).copy()

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
