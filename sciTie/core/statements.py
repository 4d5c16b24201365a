"""Tie statements: ``"lhs = rhs"`` in the core's syntax, applied to a ParameterGroup.

A statement makes the slots named on the left follow the expression on the right::

    means[1] = means[0]                 equality (rows tie element by element)
    lambdas[1] = 2.5 * lambdas[0]       scaled
    means[0] = 0                        fixed at a constant (every element of a row)
    means[1] = means[0] + delta         with a new free parameter ``delta``
    covars[1] = phi * means[1]          nonlinear (a constraint, linearised exactly into G)

An affine right-hand side of one slot (``a*x + b``, ``x/c``, ``-x`` ...) becomes a linear tie
(:meth:`ParameterGroup.tie`), a constant fixes the slots at that value
(:meth:`ParameterGroup.fix_at`); anything else becomes a constraint
(:meth:`ParameterGroup.constrain`) for each element. Statements are applied through the group's
public methods only, all or nothing (:meth:`ParameterGroup.apply_ties` wraps them in one edit). When the left side selects several slots
(a row ``means[1]`` of shape ``(D,)``), every reference on the right that selects the same shape
is taken element by element and scalar references broadcast.
"""
from __future__ import annotations

import ast
import difflib
import keyword
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..errors import UnknownNameError, ValidationError
from .expressions import FUNCTIONS, Expression, ExpressionError

__all__ = ["parse_statement", "apply_ties", "syntax_hint"]

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

    def __init__(self, expr: Expression, group: Any, shape: tuple[int, ...],
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


def _selection_shape(group: Any, name: str, statement: str) -> tuple[int, ...]:
    try:
        return group.selection_shape(name)
    except (KeyError, ValueError) as exc:
        raise ValidationError(f"tie statement {statement!r}: {exc.args[0]}") from None


#: Names that read as non-finite numbers: never new parameters.
_NOT_NAMES = frozenset({"nan", "inf", "infinity"})


def _base_name(name: str) -> str:
    return name.split("[", 1)[0].strip()


def _known(group: Any, name: str, statement: str) -> bool:
    """Whether ``name`` selects slots of ``group``; a known parameter with a bad index (or
    a name one letter away from a parameter) is an error, never a new parameter."""
    try:
        group.selection_shape(name)
    except UnknownNameError:
        if "[" in name:
            base = _base_name(name)
            close = difflib.get_close_matches(base, list(group), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else \
                f" (parameters: {', '.join(group)})"
            raise ValidationError(f"tie statement {statement!r}: {base!r} is not a parameter "
                                  f"of group {group.name!r}{hint}") from None
        return False
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationError(f"tie statement {statement!r}: {exc.args[0]}") from None
    return True


def syntax_hint(text: str, names: Iterable[str]) -> str:
    """A hint for a statement Python cannot parse: a keyword used as a parameter name
    (``lambda`` for ``lambdas``); ``names`` are the parameters the statement may name."""
    try:  # a statement Python reads (a lambda, a comprehension) is refused elsewhere
        ast.parse(text)
        return ""
    except SyntaxError:
        pass
    for word in re.findall(r"[A-Za-z_]\w*", text):
        if keyword.iskeyword(word):
            close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
            if close:
                return (f"{word!r} is a Python keyword and cannot name a parameter; did you "
                        f"mean {close[0]!r}?")
            return f"{word!r} is a Python keyword and cannot name a parameter"
    return ""


def apply_ties(group: Any, statements: str | Iterable[str], *,
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
            hint = syntax_hint(text, group)
            raise ValidationError(f"tie statement {text!r}: {hint}" if hint else str(exc)) \
                from None
        if not _known(group, lhs, text):
            close = difflib.get_close_matches(_base_name(lhs), list(group), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValidationError(
                f"tie statement {text!r}: the left side {lhs!r} is not a slot of group "
                f"{group.name!r} (parameters: {', '.join(group)}){hint}"
                + (f" ({syntax_hint(lhs, group)})" if syntax_hint(lhs, group) else ""))
        lhs_shape = _selection_shape(group, lhs, text)
        unknown = [n for n in expr.names if not _known(group, n, text)]
        for name in unknown:
            if not new_parameters:
                raise ValidationError(
                    f"tie statement {text!r} names {name!r}, which is not a parameter of "
                    f"group {group.name!r} (known: {', '.join(group.parameters)})")
            if name.lower() in _NOT_NAMES:
                raise ValidationError(f"tie statement {text!r}: {name!r} is not a number sciTie "
                                      "accepts (values and coefficients must be finite) nor a "
                                      "parameter name")
            if not re.fullmatch(r"[A-Za-z]\w*", name):
                raise ValidationError(f"tie statement {text!r}: a new parameter must be a plain "
                                      f"name, got {name!r}")
            if name not in created:
                group.add(name, 1.0, description=f"introduced by the tie {text!r}")
                created.append(name)
        parsed.append((text, lhs, rhs, expr, lhs_shape))
    targets = {}  # current values of the left sides: starting values for new parameters
    try:
        tie_map = group.tie_map()
        vals = tie_map.evaluate()
    except ValueError:  # names only a parent group resolves: no starting values here
        tie_map = vals = None
    for text, lhs, _, _, _ in parsed:
        if vals is not None:
            targets[text] = np.asarray(vals[np.asarray(tie_map.select(lhs))], float)
    for text, lhs, rhs, expr, shape in parsed:
        _apply_one(group, text, lhs, rhs, expr, shape, set(created))
    if created and targets:
        _initialise(group, created, parsed, targets)
    return created


def _apply_one(group: Any, text: str, lhs: str, rhs: str, expr: Expression,
               shape: tuple[int, ...], new_names: set[str]) -> None:
    affine = _affine(expr, expr._body)
    if affine is not None and affine[0] is not None and affine[1] != 0.0:
        ref, scale, offset = affine
        ref_shape = _selection_shape(group, ref, text)
        if ref_shape in ((), shape):
            group.tie(lhs, to=ref, scale=scale, offset=offset)
            return
    if affine is not None and (affine[0] is None or affine[1] == 0.0):
        try:
            group.fix_at(lhs, affine[2])
        except ValidationError as exc:
            raise ValidationError(f"tie statement {text!r}: {exc}") from None
        return
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


def _initialise(group: Any, created: list[str], parsed, targets) -> None:
    """Least-squares starting values of new parameters from the left sides' old values."""
    from scipy.optimize import least_squares

    c = group.tie_map()
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
