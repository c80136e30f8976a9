"""Constant folding and code generation: a checked expression becomes a kernel program (scoring.program).

Folding follows the kernel's three-valued logic exactly (e.g. `false and x` is false, `true and x` is x),
so a folded rule decides the same as the unfolded one.
"""

from __future__ import annotations

import math

from rules import ast
from rules.features import REGISTRY, FeatureRegistry, FeatureType
from scoring.program import Op

_ARITH = {"+": Op.ADD, "-": Op.SUB, "*": Op.MUL, "/": Op.DIV}
_COMPARE = {"<": Op.LT, "<=": Op.LE, ">": Op.GT, ">=": Op.GE, "==": Op.EQ, "!=": Op.NE}


def fold(node: ast.Node) -> ast.Node:
    match node:
        case ast.Neg(operand=o, pos=pos):
            o = fold(o)
            return ast.Num(-o.value, pos) if isinstance(o, ast.Num) else ast.Neg(o, pos)
        case ast.Arith(op=op, left=a, right=b, pos=pos):
            a, b = fold(a), fold(b)
            if isinstance(a, ast.Num) and isinstance(b, ast.Num):
                return ast.Num(_arith(op, a.value, b.value), pos)
            return ast.Arith(op, a, b, pos)
        case ast.Compare(op=op, left=a, right=b, pos=pos):
            return ast.Compare(op, fold(a), fold(b), pos)
        case ast.Not(operand=o, pos=pos):
            o = fold(o)
            return ast.Bool(not o.value, pos) if isinstance(o, ast.Bool) else ast.Not(o, pos)
        case ast.Logic(op=op, left=a, right=b, pos=pos):
            a, b = fold(a), fold(b)
            absorbing = op == "or"  # true absorbs 'or', false absorbs 'and'
            for const, other in ((a, b), (b, a)):
                if isinstance(const, ast.Bool):
                    return const if const.value == absorbing else other
            return ast.Logic(op, a, b, pos)
        case ast.Between(operand=o, low=lo, high=hi, pos=pos):
            return ast.Between(fold(o), fold(lo), fold(hi), pos)
        case ast.InList(operand=o, items=items, negated=neg, pos=pos):
            return ast.InList(fold(o), items, neg, pos)
    return node


def _arith(op: str, a: float, b: float) -> float:
    if op == "/":
        return math.nan if b == 0 else a / b
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def generate(node: ast.Node, registry: FeatureRegistry = REGISTRY) -> list[tuple[Op, float]]:
    """Stack-machine code for a checked, folded rule condition: its top-level `and`s become conjuncts checked
    in order, each followed by REQUIRE (the rule stops at the first one that is not true), the last one left
    as the rule's value."""
    code: list[tuple[Op, float]] = []
    *first, last = _conjuncts(node)
    for conjunct in first:
        _emit(conjunct, code, registry, None)
        code.append((Op.REQUIRE, 0.0))
    _emit(last, code, registry, None)
    return code


def _conjuncts(node: ast.Node) -> list[ast.Node]:
    if isinstance(node, ast.Logic) and node.op == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _emit(node: ast.Node, code: list[tuple[Op, float]], registry: FeatureRegistry, peer: ast.Node | None) -> None:
    match node:
        case ast.Num(value=v):
            code.append((Op.CONST, v))
        case ast.Bool(value=v):
            code.append((Op.CONST, 1.0 if v else 0.0))
        case ast.Str(value=v):
            # a quoted value is the code of that value in the category it is compared with
            assert isinstance(peer, ast.Feature)
            feature = registry.get(peer.name)
            assert feature is not None
            code.append((Op.CONST, feature.encode(v)))
        case ast.Feature(name=name):
            code.append((Op.LOAD, float(registry.column(name))))
        case ast.Neg(operand=o):
            _emit(o, code, registry, None)
            code.append((Op.NEG, 0.0))
        case ast.Arith(op=op, left=a, right=b):
            _emit(a, code, registry, None)
            _emit(b, code, registry, None)
            code.append((_ARITH[op], 0.0))
        case ast.Compare(op=op, left=a, right=b):
            _emit(a, code, registry, b)
            _emit(b, code, registry, a)
            code.append((_COMPARE[op], 0.0))
        case ast.Not(operand=o):
            _emit(o, code, registry, None)
            code.append((Op.NOT, 0.0))
        case ast.Logic(op=op, left=a, right=b):
            _emit(a, code, registry, None)
            _emit(b, code, registry, None)
            code.append((Op.AND if op == "and" else Op.OR, 0.0))
        case ast.Between(operand=o, low=lo, high=hi):
            _emit(o, code, registry, None)
            _emit(lo, code, registry, None)
            code.append((Op.GE, 0.0))
            _emit(o, code, registry, None)
            _emit(hi, code, registry, None)
            code.append((Op.LE, 0.0))
            code.append((Op.AND, 0.0))
        case ast.InList(operand=o, items=items, negated=negated):
            for i, item in enumerate(items):
                _emit(o, code, registry, None)
                _emit(item, code, registry, o)
                code.append((Op.EQ, 0.0))
                if i:
                    code.append((Op.OR, 0.0))
            if negated:
                code.append((Op.NOT, 0.0))
        case _:
            raise AssertionError(f"unhandled node {node!r}")


def is_category(node: ast.Node, registry: FeatureRegistry = REGISTRY) -> bool:
    feature = registry.get(node.name) if isinstance(node, ast.Feature) else None
    return feature is not None and feature.type is FeatureType.CATEGORY
