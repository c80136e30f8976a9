"""Plain-Python reference semantics of rule expressions (tests only): evaluates the AST directly.

Truth values are True / False / None (unknown). Any comparison or arithmetic with a missing value is
unknown; x / 0 is unknown; 'and' is false if either side is false, else unknown if either is unknown;
'or' is the dual; 'not unknown' is unknown. A rule fires only when its condition is True.
"""

from __future__ import annotations

import math

from rules import ast
from rules.features import REGISTRY, FeatureType

Value = float | bool | str | None


def evaluate(node: ast.Node, row: dict[str, float]) -> Value:
    match node:
        case ast.Num(value=v):
            return v
        case ast.Bool(value=v):
            return v
        case ast.Str(value=v):
            return v
        case ast.Feature(name=name):
            value = row.get(name, math.nan)
            if math.isnan(value):
                return None
            feature = REGISTRY.get(name)
            assert feature is not None
            if feature.type is FeatureType.BOOL:
                return value == 1.0
            if feature.type is FeatureType.CATEGORY:
                return feature.categories[int(value)]
            return value
        case ast.Neg(operand=o):
            v = evaluate(o, row)
            return None if v is None or _nan(v) else -v  # type: ignore[operator]
        case ast.Arith(op=op, left=a, right=b):
            x, y = evaluate(a, row), evaluate(b, row)
            if x is None or y is None or _nan(x) or _nan(y):
                return None
            if op == "/":
                return None if y == 0 else x / y  # type: ignore[operator]
            return {"+": x + y, "-": x - y, "*": x * y}[op]  # type: ignore[operator]
        case ast.Compare(op=op, left=a, right=b):
            x, y = evaluate(a, row), evaluate(b, row)
            if x is None or y is None or _nan(x) or _nan(y):
                return None
            return {
                "<": lambda: x < y,
                "<=": lambda: x <= y,
                ">": lambda: x > y,
                ">=": lambda: x >= y,
                "==": lambda: x == y,
                "!=": lambda: x != y,
            }[op]()  # type: ignore[operator]
        case ast.InList(operand=o, items=items, negated=negated):
            result = _or_all([evaluate(ast.Compare("==", o, item, 0), row) for item in items])
            return _not(result) if negated else result
        case ast.Between(operand=o, low=lo, high=hi):
            return _and(evaluate(ast.Compare(">=", o, lo, 0), row), evaluate(ast.Compare("<=", o, hi, 0), row))
        case ast.Not(operand=o):
            return _not(evaluate(o, row))
        case ast.Logic(op=op, left=a, right=b):
            x, y = evaluate(a, row), evaluate(b, row)
            return _and(x, y) if op == "and" else _or_all([x, y])
    raise AssertionError(node)


def _nan(v: Value) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _not(v: Value) -> Value:
    return None if v is None else not v


def _and(x: Value, y: Value) -> Value:
    if x is False or y is False:
        return False
    if x is None or y is None:
        return None
    return True


def _or_all(values: list[Value]) -> Value:
    if any(v is True for v in values):
        return True
    if any(v is None for v in values):
        return None
    return False


def score_row(rules: list[tuple[ast.Node, float, int, bool]], thresholds: tuple[float, float, float], row: dict):
    """(score, action, fired) for one row; rules are (condition, score, floor, shadow)."""
    fired = [evaluate(node, row) is True for node, _, _, _ in rules]
    total = sum(score for (_, score, _, shadow), f in zip(rules, fired, strict=True) if f and not shadow)
    floor = max([floor for (_, _, floor, shadow), f in zip(rules, fired, strict=True) if f and not shadow], default=0)
    action = sum(total >= t for t in thresholds)
    return total, max(action, floor), fired
