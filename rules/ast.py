"""The expression tree of a rule's `when`. `pos` is the character offset in the expression text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Num:
    value: float
    pos: int


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    pos: int


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    pos: int


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Arith:
    op: str  # + - * /
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # < <= > >= == !=
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class InList:
    operand: Node
    items: tuple[Num | Str, ...]
    negated: bool
    pos: int


@dataclass(frozen=True, slots=True)
class Between:
    operand: Node
    low: Node
    high: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # and, or
    left: Node
    right: Node
    pos: int


Node = Num | Str | Bool | Feature | Neg | Arith | Compare | InList | Between | Not | Logic


def features_used(node: Node) -> list[str]:
    """Feature names the expression reads, in first-use order."""
    found: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Feature):
            if n.name not in found:
                found.append(n.name)
            return
        for child in _children(n):
            walk(child)

    walk(node)
    return found


def _children(n: Node) -> tuple[Node, ...]:
    match n:
        case Neg(operand=o) | Not(operand=o):
            return (o,)
        case Arith(left=a, right=b) | Compare(left=a, right=b) | Logic(left=a, right=b):
            return (a, b)
        case InList(operand=o, items=items):
            return (o, *items)
        case Between(operand=o, low=lo, high=hi):
            return (o, lo, hi)
    return ()
