"""Safe arithmetic expressions for constraints, evaluated with exact gradients.

An expression such as ``"2*a + sqrt(b) * structure.c"`` is parsed with :mod:`ast` and checked
against a whitelist (numbers, names, ``+ - * / **``, unary minus and a fixed set of math
functions). Nothing is ever passed to ``eval``: the tree is walked by :func:`_evaluate`, which
carries forward-mode derivatives, so a nonlinear constraint linearises exactly into the local
tie matrix.
"""
from __future__ import annotations

import ast
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ArgumentTypeError, ValidationError

__all__ = ["Expression", "ExpressionError", "RESERVED_NAMES", "FUNCTIONS"]

MAX_LENGTH = 2000
MAX_NODES = 400
MAX_CONSTANT_EXPONENT = 1024.0


class ExpressionError(ValidationError):
    """An expression that is malformed, unsafe, or cannot be evaluated."""


# name -> (function of values, function giving the partial derivatives)
_UNARY: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "sin": (math.sin, math.cos),
    "cos": (math.cos, lambda x: -math.sin(x)),
    "tan": (math.tan, lambda x: 1.0 / math.cos(x) ** 2),
    "exp": (math.exp, math.exp),
    "log": (math.log, lambda x: 1.0 / x),
    "log10": (math.log10, lambda x: 1.0 / (x * math.log(10.0))),
    "sqrt": (math.sqrt, lambda x: 0.5 / math.sqrt(x)),
    "abs": (abs, lambda x: math.copysign(1.0, x) if x != 0 else 0.0),
    "arcsin": (math.asin, lambda x: 1.0 / math.sqrt(1.0 - x * x)),
    "arccos": (math.acos, lambda x: -1.0 / math.sqrt(1.0 - x * x)),
    "arctan": (math.atan, lambda x: 1.0 / (1.0 + x * x)),
    "sinh": (math.sinh, math.cosh),
    "cosh": (math.cosh, math.sinh),
    "tanh": (math.tanh, lambda x: 1.0 - math.tanh(x) ** 2),
}
_BINARY = {"arctan2", "hypot", "min", "max"}
FUNCTIONS = frozenset(_UNARY) | _BINARY
_CONSTANTS = {"pi": math.pi, "e": math.e}
RESERVED_NAMES = frozenset(FUNCTIONS) | frozenset(_CONSTANTS)

_ALLOWED_HELP = ("allowed: numbers, parameter names (dotted for child groups, indexed like "
                 "mu[0,1]), + - * / **, unary minus, and the functions "
                 + ", ".join(sorted(FUNCTIONS)))


class Expression:
    """A parsed, validated constraint expression.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"a + 0.5*b"``.
    context : str
        What the expression belongs to (a slot name), used in error messages.

    Attributes
    ----------
    names : tuple of str
        The parameter/slot names it reads, in first-use order (``"mu[0,1]"``, ``"s.a"``).
    """

    def __init__(self, text: str, *, context: str = "expression") -> None:
        if not isinstance(text, str):
            raise ArgumentTypeError(f"{context}: expression must be a str, got "
                                    f"{type(text).__name__}")
        self.text = text.strip()
        self.context = context
        if not self.text:
            raise ExpressionError(f"{context}: expression is empty")
        if len(self.text) > MAX_LENGTH:
            raise ExpressionError(f"{context}: expression is {len(self.text)} characters long; "
                                  f"at most {MAX_LENGTH} are accepted")
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"{context}: cannot parse expression {self.text!r}: {exc.msg}") from None
        n_nodes = sum(1 for _ in ast.walk(tree))
        if n_nodes > MAX_NODES:
            raise ExpressionError(f"{context}: expression {self.text!r} has {n_nodes} syntax nodes; "
                                  f"at most {MAX_NODES} are accepted")
        names: list[str] = []
        self._body = self._check(tree.body, names)
        self.names: tuple[str, ...] = tuple(dict.fromkeys(names))

    # -- validation -------------------------------------------------------------------------
    def _fail(self, what: str) -> ExpressionError:
        return ExpressionError(f"{self.context}: {what} is not allowed in expression "
                               f"{self.text!r} ({_ALLOWED_HELP})")

    def _reference(self, node: ast.AST) -> str | None:
        """The slot name a Name / dotted Attribute / constant Subscript denotes, else None."""
        if isinstance(node, ast.Name):
            base = node.id
        elif isinstance(node, ast.Attribute):
            parent = self._reference(node.value)
            if parent is None or "[" in parent:
                return None
            base = f"{parent}.{node.attr}"
        elif isinstance(node, ast.Subscript):
            parent = self._reference(node.value)
            if parent is None or "[" in parent:
                return None
            elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            indices = [self._integer(e) for e in elements]
            if any(i is None for i in indices):
                return None
            return f"{parent}[{','.join(str(i) for i in indices)}]"
        else:
            return None
        if any(part.startswith("_") for part in base.split(".")):
            raise self._fail(f"the private name {base!r}")
        return base

    @staticmethod
    def _integer(node: ast.AST) -> int | None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
                and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int):
            return -node.operand.value
        return None

    def _constant_value(self, node: ast.AST) -> float | None:
        """Value of a constant sub-expression (numbers and unary signs only), else None."""
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            try:
                return float(node.value)
            except OverflowError:
                return math.inf
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self._constant_value(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        return None

    def _check(self, node: ast.AST, names: list[str]) -> ast.AST:
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise self._fail(f"the constant {node.value!r}")
            return node
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            ref = self._reference(node)
            if ref is None:
                raise self._fail(f"{type(node).__name__.lower()} access {ast.unparse(node)!r}")
            if isinstance(node, ast.Name) and node.id in _CONSTANTS:
                return node
            if ref in FUNCTIONS:
                raise self._fail(f"the function name {ref!r} used as a value")
            names.append(ref)
            return node
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
                raise self._fail(f"the operator {type(node.op).__name__}")
            if isinstance(node.op, ast.Pow):
                exponent = self._constant_value(node.right)
                if exponent is not None and abs(exponent) > MAX_CONSTANT_EXPONENT:
                    raise ExpressionError(
                        f"{self.context}: exponent {exponent:g} in {self.text!r} is too large "
                        f"(|exponent| <= {MAX_CONSTANT_EXPONENT:g})")
                if isinstance(node.right, ast.BinOp) and isinstance(node.right.op, ast.Pow):
                    inner = self._constant_value(node.right.left)
                    if inner is not None and abs(inner) > 1:
                        raise ExpressionError(
                            f"{self.context}: nested constant powers in {self.text!r} are not "
                            "accepted (they overflow); write the exponent out")
            self._check(node.left, names)
            self._check(node.right, names)
            return node
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self._fail(f"the operator {type(node.op).__name__}")
            self._check(node.operand, names)
            return node
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise self._fail(f"calling {ast.unparse(node.func)!r}")
            fname = node.func.id
            if fname not in FUNCTIONS:
                raise self._fail(f"the function {fname!r}")
            if node.keywords:
                raise self._fail(f"keyword arguments to {fname!r}")
            want = 2 if fname in _BINARY else 1
            if len(node.args) != want:
                raise ExpressionError(f"{self.context}: {fname}() takes {want} argument(s), "
                                      f"got {len(node.args)} in {self.text!r}")
            for arg in node.args:
                if isinstance(arg, ast.Starred):
                    raise self._fail("argument unpacking")
                self._check(arg, names)
            return node
        raise self._fail(f"the construct {type(node).__name__!r}")

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, values: Mapping[str, float] | Sequence[float]) -> float:
        """Value of the expression for the given values of :attr:`names`."""
        return self.evaluate_with_gradient(values)[0]

    def evaluate_with_gradient(
        self, values: Mapping[str, float] | Sequence[float]
    ) -> tuple[float, np.ndarray]:
        """Value and gradient with respect to :attr:`names` (exact, forward mode).

        ``values`` is a mapping from name to value, or a sequence in the order of
        :attr:`names`.
        """
        if isinstance(values, Mapping):
            try:
                vec = [float(values[n]) for n in self.names]
            except KeyError as exc:
                raise ExpressionError(f"{self.context}: no value for {exc.args[0]!r} "
                                      f"in {self.text!r}") from None
        else:
            vec = [float(v) for v in values]
            if len(vec) != len(self.names):
                raise ExpressionError(f"{self.context}: expected {len(self.names)} values, "
                                      f"got {len(vec)}")
        program = self.__dict__.get("_program")
        if program is None:  # compiled on first use, then kept
            index = {n: i for i, n in enumerate(self.names)}
            program = self._program = _compile(self, self._body, index, len(self.names))
        try:
            value, grad = program(vec)
        except (OverflowError, ZeroDivisionError, ValueError) as exc:
            if isinstance(exc, ExpressionError):
                raise
            raise ExpressionError(f"{self.context}: evaluating {self.text!r} failed "
                                  f"({exc}) at {dict(zip(self.names, vec))}") from None
        if not math.isfinite(value) or not np.all(np.isfinite(grad)):
            raise ExpressionError(f"{self.context}: {self.text!r} is not finite at "
                                  f"{dict(zip(self.names, vec))}")
        return value, grad

    def evaluate_with(self, values: Sequence[Any],
                      functions: Mapping[str, Callable[..., Any]]) -> Any:
        """Value of the expression for number-like objects, such as torch tensors.

        Walks the same validated tree as :meth:`evaluate`, using the arithmetic operators of
        the objects in ``values`` and ``functions[name]`` for each whitelisted function. No
        derivatives are carried: objects such as torch tensors bring their own (autograd).

        Parameters
        ----------
        values : sequence
            One object per entry of :attr:`names`, in that order.
        functions : mapping
            An implementation of every function in :data:`FUNCTIONS` that the expression
            calls. ``min`` and ``max`` must pick the first argument when the two are equal, so
            that derivatives agree with :meth:`evaluate_with_gradient`.

        Returns
        -------
        object
            What the operations return; a Python float when the expression reads no names.
        """
        if len(values) != len(self.names):
            raise ExpressionError(f"{self.context}: expected {len(self.names)} values, "
                                  f"got {len(values)}")
        missing = sorted(FUNCTIONS - set(functions))
        if missing:
            raise ExpressionError(f"{self.context}: no implementation given for the "
                                  f"function(s) {', '.join(missing)}")
        index = {n: i for i, n in enumerate(self.names)}
        return _apply(self, self._body, values, index, functions)

    def __getstate__(self) -> dict:
        # the compiled program is closures (not picklable); it is rebuilt on first use
        return {k: v for k, v in self.__dict__.items() if k != "_program"}

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def _apply(expr: Expression, node: ast.AST, values: Sequence[Any], index: dict[str, int],
           functions: Mapping[str, Callable[..., Any]]) -> Any:
    """Walk a validated tree with the operators of ``values`` (no derivatives carried)."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        return values[index[expr._reference(node)]]
    if isinstance(node, ast.UnaryOp):
        v = _apply(expr, node.operand, values, index, functions)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a = _apply(expr, node.left, values, index, functions)
        b = _apply(expr, node.right, values, index, functions)
        op = node.op
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            return a - b
        if isinstance(op, ast.Mult):
            return a * b
        both_numbers = isinstance(a, float) and isinstance(b, float)
        try:
            if isinstance(op, ast.Div):
                return a / b
            return math.pow(a, b) if both_numbers else a ** b  # no complex results
        except (ZeroDivisionError, ValueError, OverflowError) as exc:
            if not both_numbers:
                raise
            raise ExpressionError(f"{expr.context}: evaluating {expr.text!r} failed "
                                  f"({exc})") from None
    if isinstance(node, ast.Call):
        args = [_apply(expr, arg, values, index, functions) for arg in node.args]
        return functions[node.func.id](*args)
    raise ExpressionError(  # pragma: no cover - the tree was validated
        f"{expr.context}: unexpected node {type(node).__name__}")


def _compile(expr: Expression, node: ast.AST, index: dict[str, int],
             n: int) -> Callable[[list[float]], tuple[float, np.ndarray]]:
    """A validated tree as nested closures ``vec -> (value, gradient over expr.names)``.

    Built once per expression: a fit evaluates each tie thousands of times, and walking the
    tree (type tests, slot names rebuilt from the syntax) cost more than the arithmetic.
    The arithmetic is the same, operation for operation.
    """
    if isinstance(node, ast.Constant) or (isinstance(node, ast.Name)
                                          and node.id in _CONSTANTS):
        c = float(node.value) if isinstance(node, ast.Constant) else _CONSTANTS[node.id]
        return lambda vec: (c, np.zeros(n))
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        i = index[expr._reference(node)]
        unit = np.zeros(n)
        unit[i] = 1.0

        def leaf(vec):
            return vec[i], unit.copy()
        return leaf
    if isinstance(node, ast.UnaryOp):
        inner = _compile(expr, node.operand, index, n)
        if isinstance(node.op, ast.USub):
            def negate(vec):
                v, g = inner(vec)
                return -v, -g
            return negate
        return inner
    if isinstance(node, ast.BinOp):
        operands, rule = (node.left, node.right), _BINARY_RULES[type(node.op)]
    elif isinstance(node, ast.Call) and node.func.id in _UNARY:
        arg = _compile(expr, node.args[0], index, n)
        f, df = _UNARY[node.func.id]

        def unary(vec):
            x, gx = arg(vec)
            return f(x), gx * df(x)
        return unary
    elif isinstance(node, ast.Call):
        operands, rule = node.args, _BINARY_RULES[node.func.id]
    else:
        raise ExpressionError(f"{expr.context}: unexpected node "  # pragma: no cover
                              f"{type(node).__name__}")
    first, second = (_compile(expr, o, index, n) for o in operands)

    def binary(vec):
        return rule(*first(vec), *second(vec))
    return binary


# Value and gradient of each operation from its operands' ``(value, gradient)`` pairs.
def _add(a, ga, b, gb):
    return a + b, ga + gb


def _sub(a, ga, b, gb):
    return a - b, ga - gb


def _mul(a, ga, b, gb):
    return a * b, ga * b + gb * a


def _div(a, ga, b, gb):
    if b == 0.0:
        raise ZeroDivisionError("division by zero")
    return a / b, (ga * b - gb * a) / (b * b)


def _pow(a, ga, b, gb):
    # d(a^b) = b a^(b-1) da + a^b ln(a) db
    value = math.pow(a, b)
    if a == 0.0 and b < 1.0 and np.any(ga != 0.0):
        raise ValueError(f"the power {b:g} of a variable has no derivative at 0")
    grad = ga * (b * math.pow(a, b - 1.0)) if a != 0.0 or b >= 1.0 else ga * 0.0
    if np.any(gb != 0.0):
        if a <= 0.0:
            raise ValueError("a variable exponent needs a positive base")
        grad = grad + gb * value * math.log(a)
    return value, grad


def _arctan2(x, gx, y, gy):
    r2 = x * x + y * y
    if r2 == 0.0:
        raise ValueError("arctan2(0, 0) has no derivative")
    return math.atan2(x, y), (gx * y - gy * x) / r2


def _hypot(x, gx, y, gy):
    h = math.hypot(x, y)
    if h == 0.0:
        raise ValueError("hypot(0, 0) has no derivative")
    return h, (gx * x + gy * y) / h


def _min(x, gx, y, gy):
    return (x, gx) if x <= y else (y, gy)


def _max(x, gx, y, gy):
    return (x, gx) if x >= y else (y, gy)


_BINARY_RULES = {ast.Add: _add, ast.Sub: _sub, ast.Mult: _mul, ast.Div: _div, ast.Pow: _pow,
                 "arctan2": _arctan2, "hypot": _hypot, "min": _min, "max": _max}
