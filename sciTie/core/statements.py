"""Tie statements: ``"lhs = rhs"`` in the core's syntax, applied to a ParameterGroup.

A statement makes the slots named on the left follow the expression on the right::

    means[1] = means[0]                 equality (rows tie element by element)
    lambdas[1] = 2.5 * lambdas[0]       scaled
    means[1] = means[0] + delta         with a new free parameter ``delta``
    covars[1] = phi * means[1]          nonlinear (a constraint, linearised exactly into G)

An affine right-hand side of one slot (``a*x + b``, ``x/c``, ``-x`` ...) becomes a linear tie
(:meth:`ParameterGroup.tie`); anything else becomes a constraint
(:meth:`ParameterGroup.constrain`) for each element. When the left side selects several slots
(a row ``means[1]`` of shape ``(D,)``), every reference on the right that selects the same shape
is taken element by element and scalar references broadcast.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ValidationError
from .expressions import FUNCTIONS, Expression, ExpressionError

if TYPE_CHECKING:  # pragma: no cover
    from .group import ParameterGroup

__all__ = ["parse_statement", "apply_ties"]

_STATEMENT = re.compile(r"^(?P<lhs>[^=<>!]+?)\s*=(?!=)\s*(?P<rhs>.+)$", re.S)


def parse_statement(text: str) -> tuple[str, str]:
    """Split ``"lhs = rhs"``; a clear error for anything else."""
    if not isinstance(text, str):
        raise ValidationError(f"a tie statement must be a str like 'means[1] = means[0]', got "
                              f"{type(text).__name__}")
    m = _STATEMENT.match(text.strip())
    if m is None or "=" in m.group("rhs").replace("==", "").replace("<=", "").replace(">=", ""):
        raise ValidationError(f"tie statement {text!r} must have the form 'slot = expression' "
                              "with exactly one '=' (e.g. 'means[1] = means[0]' or "
                              "'lambdas[1] = 2.5 * lambdas[0]')")
    return m.group("lhs").strip(), m.group("rhs").strip()


def _affine(expr: Expression, node: ast.AST) -> tuple[str | None, float, float] | None:
    """``(reference, scale, offset)`` when ``node`` is ``scale * reference + offset``."""
    if isinstance(node, ast.Constant):
        return None, 0.0, float(node.value)
    if isinstance(node, ast.Name) and node.id in ("pi", "e"):
        return None, 0.0, float(np.pi if node.id == "pi" else np.e)
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        return expr._reference(node), 1.0, 0.0
    if isinstance(node, ast.UnaryOp):
        inner = _affine(expr, node.operand)
        if inner is None:
            return None
        ref, s, o = inner
        return (ref, -s, -o) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = _affine(expr, node.left), _affine(expr, node.right)
        if left is None or right is None:
            return None
        (rl, sl, ol), (rr, sr, orr) = left, right
        if isinstance(node.op, (ast.Add, ast.Sub)):
            sign = 1.0 if isinstance(node.op, ast.Add) else -1.0
            if rl is not None and rr is not None:
                return None
            return rl or rr, sl + sign * sr, ol + sign * orr
        if isinstance(node.op, ast.Mult):
            if rl is None:
                return rr, ol * sr, ol * orr
            if rr is None:
                return rl, sl * orr, ol * orr
            return None
        if isinstance(node.op, ast.Div) and rr is None and orr != 0.0:
            return rl, sl / orr, ol / orr
    return None


class _Indexer(ast.NodeTransformer):
    """Append an element index to every reference that selects the left side's shape."""

    def __init__(self, expr: Expression, group: "ParameterGroup", shape: tuple[int, ...],
                 nd: tuple[int, ...], statement: str, new_names: set[str]) -> None:
        self.expr, self.group, self.shape, self.nd = expr, group, shape, nd
        self.statement, self.new_names = statement, new_names

    def _visit_ref(self, node: ast.AST) -> ast.AST:
        ref = self.expr._reference(node)
        if ref is None or ref in self.new_names or ref in FUNCTIONS or ref in ("pi", "e"):
            return node
        shape = _selection_shape(self.group, ref, self.statement)
        if shape == ():
            return node
        if shape != self.shape:
            raise ValidationError(
                f"tie statement {self.statement!r}: {ref!r} selects shape {shape} but the left "
                f"side selects {self.shape}; use the same shape or one element")
        text = ref[:-1] + "," if ref.endswith("]") else ref + "["
        text += ",".join(str(i) for i in self.nd) + "]"
        return ast.parse(text, mode="eval").body

    visit_Name = _visit_ref
    visit_Attribute = _visit_ref
    visit_Subscript = _visit_ref


def _selection_shape(group: "ParameterGroup", name: str, statement: str) -> tuple[int, ...]:
    try:
        return tuple(group._select(name).shape)
    except (KeyError, ValueError) as exc:
        raise ValidationError(f"tie statement {statement!r}: {exc.args[0]}") from None


def _known(group: "ParameterGroup", name: str) -> bool:
    try:
        group._select(name)
    except (KeyError, ValueError, TypeError):
        return False
    return True


def apply_ties(group: "ParameterGroup", statements: str | Iterable[str], *,
               new_parameters: bool = False) -> list[str]:
    """Apply tie statements to ``group`` (see the module docstring); returns new parameters.

    Parameters
    ----------
    group : ParameterGroup
        The group whose slots the statements name.
    statements : str or iterable of str
        ``"lhs = rhs"`` statements.
    new_parameters : bool, optional
        Names on the right that are not slots of ``group`` become new free scalar parameters
        of ``group`` (True), or are an error (False, default). A new parameter starts at the
        least-squares value that reproduces the left side's current values.

    Returns
    -------
    list of str
        Names of the parameters created.
    """
    if isinstance(statements, str):
        items = [statements]
    elif isinstance(statements, Iterable) and not isinstance(statements, (bytes, Mapping)):
        items = list(statements)
    else:
        raise ValidationError(f"tie statements must be a str like 'means[1] = means[0]' or a "
                                f"list of them, got {statements!r} ({type(statements).__name__})")
    parsed = []
    created: list[str] = []
    for text in items:
        lhs, rhs = parse_statement(text)
        try:
            expr = Expression(rhs, context=f"tie statement {text!r}")
        except ExpressionError as exc:
            raise ValidationError(str(exc)) from None
        lhs_shape = _selection_shape(group, lhs, text)
        unknown = [n for n in expr.names if not _known(group, n)]
        for name in unknown:
            if not new_parameters:
                raise ValidationError(
                    f"tie statement {text!r} names {name!r}, which is not a parameter of "
                    f"group {group.name!r} (known: {', '.join(group.parameters)})")
            if not re.fullmatch(r"[A-Za-z]\w*", name):
                raise ValidationError(f"tie statement {text!r}: a new parameter must be a plain "
                                      f"name, got {name!r}")
            if name not in created:
                group.add(name, 1.0, description=f"introduced by the tie {text!r}")
                created.append(name)
        parsed.append((text, lhs, rhs, expr, lhs_shape))
    targets = {}  # current values of the left sides: starting values for new parameters
    vals = group._try_slot_values()
    for text, lhs, _, _, _ in parsed:
        if vals is not None:
            targets[text] = np.asarray(vals[np.asarray(group._compiled().select(lhs))], float)
    for text, lhs, rhs, expr, shape in parsed:
        _apply_one(group, text, lhs, rhs, expr, shape, set(created))
    if created and targets:
        _initialise(group, created, parsed, targets)
    return created


def _apply_one(group: "ParameterGroup", text: str, lhs: str, rhs: str, expr: Expression,
               shape: tuple[int, ...], new_names: set[str]) -> None:
    affine = _affine(expr, expr._body)
    if affine is not None and affine[0] is not None and affine[1] != 0.0:
        ref, scale, offset = affine
        ref_shape = _selection_shape(group, ref, text)
        if ref_shape in ((), shape):
            group.tie(lhs, to=ref, scale=scale, offset=offset)
            return
    if affine is not None and (affine[0] is None or affine[1] == 0.0):
        raise ValidationError(f"tie statement {text!r} sets {lhs!r} to a constant; fix the "
                              "parameter at that value instead (ParameterGroup.fix)")
    tree = ast.parse(rhs, mode="eval")
    for nd in np.ndindex(*shape):
        body = _Indexer(expr, group, shape, nd, text, new_names).visit(
            ast.parse(rhs, mode="eval")).body if shape else tree.body
        slot = lhs if not shape else _element(lhs, nd)
        text_rhs = re.sub(r"\[([-\d, ]+)\]", lambda m: "[" + m.group(1).replace(" ", "") + "]",
                          ast.unparse(body))
        group.constrain(slot, text_rhs)


def _element(selection: str, nd: tuple[int, ...]) -> str:
    """``means[1]`` + (2,) -> ``means[1,2]``; ``covars`` + (0, 1) -> ``covars[0,1]``."""
    idx = ",".join(str(i) for i in nd)
    return selection[:-1] + "," + idx + "]" if selection.endswith("]") else f"{selection}[{idx}]"


def _initialise(group: "ParameterGroup", created: list[str], parsed, targets) -> None:
    """Least-squares starting values of new parameters from the left sides' old values."""
    from scipy.optimize import least_squares

    c = group._compiled()
    cols = [int(c.free_column[c.select(n)]) for n in created]
    rows = np.concatenate([np.ravel(np.asarray(c.select(lhs))) for _, lhs, *_ in parsed])
    target = np.concatenate([np.ravel(targets[t]) for t, *_ in parsed])
    x0 = c.pack()

    def resid(p):
        x = x0.copy()
        x[cols] = p
        try:
            return c.evaluate(x)[rows] - target
        except (ValueError, ExpressionError):
            return np.full(rows.size, 1e150)

    try:
        sol = least_squares(resid, x0[cols], method="lm" if rows.size >= len(cols) else "trf")
        best = sol.x
    except (ValueError, ExpressionError):  # pragma: no cover - defensive
        return
    if np.all(np.isfinite(best)):
        x = x0.copy()
        x[cols] = best
        group.set_free(x)
