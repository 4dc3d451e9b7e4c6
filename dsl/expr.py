"""``${...}`` expressions over a block's arguments, evaluated safely.

A block's layers may compute their arguments from the block's: ``"${planes * 4}"``,
``if: "${stride != 1 or downsample}"``. The text is parsed with Python's ``ast`` and
walked here; nothing is ever passed to ``eval``. Only these are accepted: numbers,
``true``/``false`` (and Python's ``True``/``False``), names of arguments, ``+ - * /
// %``, unary ``-``/``+``/``not``, comparisons (chains too), ``and``/``or`` and
parentheses. Anything else (a call, an attribute, a subscript, a string literal,
``**``) is an ``ExprError``, as is an unknown name or an operation on the wrong
types, so a spec can neither run code nor make a huge number (``**`` is out for that
reason: ``10 ** 10 ** 10`` would hang).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping
from types import MappingProxyType

from .errors import did_you_mean

WHOLE = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
MAX_LENGTH = 200

Value = int | float | bool | str


class ExprError(Exception):
    """An expression that cannot be evaluated; the caller locates it."""


_BINARY = MappingProxyType({
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
})
_COMPARE = MappingProxyType({
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge,
})
_CONSTANTS = MappingProxyType({"true": True, "false": False, "True": True, "False": False})
_WHAT = MappingProxyType({
    ast.Call: "a function call", ast.Attribute: "an attribute", ast.Subscript: "a subscript", ast.Pow: "'**'",
    ast.Lambda: "a lambda", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.IfExp: "'if'",
    ast.JoinedStr: "an f-string", ast.NamedExpr: "':='", ast.BitAnd: "'&'", ast.BitOr: "'|'", ast.BitXor: "'^'",
    ast.LShift: "'<<'", ast.RShift: "'>>'", ast.Invert: "'~'", ast.MatMult: "'@'", ast.In: "'in'",
    ast.NotIn: "'not in'", ast.Is: "'is'", ast.IsNot: "'is not'",
})
"""Node types refused, by how the message names them."""


def is_expression(value) -> bool:
    return isinstance(value, str) and "${" in value


def contains_expression(value) -> bool:
    """Whether ``value`` (a scalar, list or mapping of them) holds a ``${...}`` anywhere."""
    if isinstance(value, dict):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_expression(v) for v in value)
    return is_expression(value)


def evaluate(text: str, names: Mapping[str, Value]) -> Value:
    """The value of ``"${expr}"`` given the arguments in scope.

    Example:
        >>> evaluate("${planes * 4}", {"planes": 16})
        64
    """
    match = WHOLE.match(text.strip())
    if not match or "${" in match.group(1):
        raise ExprError(f"{text!r}: an expression is a whole value, written \"${{...}}\"")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    source = match.group(1).strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise ExprError(f"'{source}' is not a valid expression") from None
    return _eval(tree.body, names, source)


def _eval(node: ast.AST, names: Mapping[str, Value], source: str) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.Name):
        return _name(node.id, names)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _apply(_BINARY[type(node.op)], node.op, source, _eval(node.left, names, source),
                      _eval(node.right, names, source))
    if isinstance(node, ast.UnaryOp):
        return _unary(node, _eval(node.operand, names, source), source)
    if isinstance(node, ast.BoolOp):
        return _bool_op(node, names, source)
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        return _compare(node, names, source)
    raise ExprError(f"'{source}' uses {_describe(node)}; expressions allow numbers, argument names, "
                    "+ - * / // %, comparisons, and/or/not and parentheses")


def _describe(node: ast.AST) -> str:
    for part in ast.walk(node):
        for kind, words in _WHAT.items():
            if isinstance(part, kind) or isinstance(getattr(part, "op", None), kind):
                return words
        if isinstance(part, ast.Compare):
            for op in part.ops:
                if type(op) in _WHAT:
                    return _WHAT[type(op)]
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            return "a string literal"
    return f"'{type(node).__name__}'"


def _name(name: str, names: Mapping[str, Value]) -> Value:
    if name in names:
        return names[name]
    if name in _CONSTANTS:
        return _CONSTANTS[name]
    known = f"arguments here: {', '.join(names)}" if names else "no block arguments are in scope here"
    raise ExprError(f"unknown name '{name}' in expression{did_you_mean(name, names)}; {known}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _apply(fn, op: ast.AST, source: str, left, right) -> Value:
    if not (_is_number(left) and _is_number(right)):
        raise ExprError(f"'{source}': {_SYMBOL[type(op)]} takes numbers, got {left!r} and {right!r}")
    if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
        raise ExprError(f"'{source}' divides by zero")
    return fn(left, right)


_SYMBOL = MappingProxyType({ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
                            ast.Mod: "%", ast.USub: "-", ast.UAdd: "+", ast.Not: "not"})


def _unary(node: ast.UnaryOp, value: Value, source: str) -> Value:
    if isinstance(node.op, ast.Not):
        return not _truth(value, "not", source)
    if isinstance(node.op, (ast.USub, ast.UAdd)) and _is_number(value):
        return -value if isinstance(node.op, ast.USub) else value
    raise ExprError(f"'{source}': {_SYMBOL.get(type(node.op), _describe(node))} takes a number, got {value!r}")


def _truth(value: Value, what: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise ExprError(f"'{source}': {what} takes true or false, got {value!r}")
    return value


def _bool_op(node: ast.BoolOp, names: Mapping[str, Value], source: str) -> bool:
    word = "and" if isinstance(node.op, ast.And) else "or"
    for operand in node.values:  # short-circuits as Python does
        value = _truth(_eval(operand, names, source), word, source)
        if value != (word == "and"):
            return value
    return word == "and"


def _compare(node: ast.Compare, names: Mapping[str, Value], source: str) -> bool:
    left = _eval(node.left, names, source)
    for op, operand in zip(node.ops, node.comparators):
        right = _eval(operand, names, source)
        ordered = not isinstance(op, (ast.Eq, ast.NotEq))
        if ordered and not (_is_number(left) and _is_number(right)):
            raise ExprError(f"'{source}': ordering comparisons take numbers, got {left!r} and {right!r}")
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True


def substitute(value, names: Mapping[str, Value]):
    """``value`` with every ``${...}`` string (inside lists and mappings too) replaced by its value."""
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    return evaluate(value, names) if is_expression(value) else value
