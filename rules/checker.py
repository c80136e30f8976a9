"""Type checking of a parsed expression against the feature registry, before anything runs.

Types: number, bool, category (a registry feature with a fixed set of values) and string (a quoted literal,
only meaningful next to a category). Every problem is collected, not just the first.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from rules import ast
from rules.features import REGISTRY, Feature, FeatureRegistry, FeatureType

NUMBER, BOOL, STRING = "number", "bool", "string"


@dataclass(frozen=True, slots=True)
class TypeProblem:
    kind: str
    message: str
    pos: int
    suggestion: str | None = None


@dataclass(frozen=True, slots=True)
class Category:
    feature: Feature

    def __str__(self) -> str:
        return f"category '{self.feature.name}'"


Type = str | Category  # NUMBER, BOOL, STRING or a Category


def suggest(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


class Checker:
    def __init__(self, registry: FeatureRegistry = REGISTRY) -> None:
        self.registry = registry
        self.problems: list[TypeProblem] = []

    def check_condition(self, node: ast.Node) -> list[TypeProblem]:
        """Problems of a rule's `when`: it must be a well-typed boolean expression."""
        self.problems = []
        found = self.type_of(node)
        if found is not None and found != BOOL:
            self._add("not_boolean", f"'when' must be a true/false condition, found {_name(found)}", node)
        return self.problems

    def _add(self, kind: str, message: str, node: ast.Node, suggestion: str | None = None) -> None:
        self.problems.append(TypeProblem(kind, message, node.pos, suggestion))

    def type_of(self, node: ast.Node) -> Type | None:
        """The node's type, or None when it is already wrong (reported once, not again upstream)."""
        match node:
            case ast.Num():
                return NUMBER
            case ast.Bool():
                return BOOL
            case ast.Str():
                return STRING
            case ast.Feature(name=name):
                feature = self.registry.get(name)
                if feature is None:
                    hint = suggest(name, self.registry.names)
                    self._add("unknown_feature", f"unknown feature '{name}'", node, hint)
                    return None
                if feature.type is FeatureType.CATEGORY:
                    return Category(feature)
                return NUMBER if feature.type is FeatureType.NUMBER else BOOL
            case ast.Neg(operand=operand):
                return NUMBER if self._numeric(operand, "'-'") else None
            case ast.Arith(op=op, left=left, right=right):
                a, b = self._numeric(left, f"'{op}'"), self._numeric(right, f"'{op}'")
                return NUMBER if a and b else None
            case ast.Compare():
                return self._compare(node)
            case ast.InList():
                return self._in_list(node)
            case ast.Between(operand=operand, low=low, high=high):
                ok = all(self._numeric(n, "'between'") for n in (operand, low, high))
                return BOOL if ok else None
            case ast.Not(operand=operand):
                return BOOL if self._boolean(operand, "'not'") else None
            case ast.Logic(op=op, left=left, right=right):
                a, b = self._boolean(left, f"'{op}'"), self._boolean(right, f"'{op}'")
                return BOOL if a and b else None
        raise AssertionError(f"unhandled node {node!r}")

    def _numeric(self, node: ast.Node, where: str) -> bool:
        return self._expect(node, NUMBER, f"{where} needs a number")

    def _boolean(self, node: ast.Node, where: str) -> bool:
        return self._expect(node, BOOL, f"{where} needs a true/false condition")

    def _expect(self, node: ast.Node, wanted: str, need: str) -> bool:
        """True when `node` has type `wanted`; otherwise reports it (unless it was already wrong)."""
        found = self.type_of(node)
        if found is None:
            return False
        if found != wanted:
            self._add("type_mismatch", f"{need}, found {_name(found)}{_what(node)}", node)
            return False
        return True

    def _compare(self, node: ast.Compare) -> Type | None:
        a, b = self.type_of(node.left), self.type_of(node.right)
        if a is None or b is None:
            return None
        if isinstance(a, Category) or isinstance(b, Category):
            category, other_node, other = (a, node.right, b) if isinstance(a, Category) else (b, node.left, a)
            assert isinstance(category, Category)
            if node.op not in ("==", "!="):
                self._add(
                    "category_order",
                    f"'{node.op}' does not apply to {category}: its values have no order; use == != or 'in'",
                    node,
                )
                return None
            if other == STRING:
                assert isinstance(other_node, ast.Str)
                return BOOL if self._category_value(category, other_node) else None
            if isinstance(other, Category) and other.feature.categories == category.feature.categories:
                return BOOL
            self._add(
                "type_mismatch",
                f"cannot compare {category} with {_name(other)}; compare it with a quoted value "
                f"such as '{category.feature.categories[0]}'",
                other_node,
            )
            return None
        if STRING in (a, b):
            self._add("type_mismatch", "a quoted value can only be compared with a category feature", node)
            return None
        if a != b:
            self._add("type_mismatch", f"cannot compare {_name(a)} with {_name(b)}", node)
            return None
        if a == BOOL and node.op not in ("==", "!="):
            self._add("type_mismatch", f"'{node.op}' does not apply to true/false values", node)
            return None
        return BOOL

    def _in_list(self, node: ast.InList) -> Type | None:
        found = self.type_of(node.operand)
        if found is None:
            return None
        if isinstance(found, Category):
            ok = True
            for item in node.items:
                if isinstance(item, ast.Str):
                    ok = self._category_value(found, item) and ok
                else:
                    self._add("type_mismatch", f"{found} is compared with quoted values, found a number", item)
                    ok = False
            return BOOL if ok else None
        if found == NUMBER:
            bad = [item for item in node.items if not isinstance(item, ast.Num)]
            for item in bad:
                self._add("type_mismatch", "a number is compared with numbers, found a quoted value", item)
            return None if bad else BOOL
        self._add("type_mismatch", f"'in' needs a category or a number, found {_name(found)}", node.operand)
        return None

    def _category_value(self, category: Category, value: ast.Str) -> bool:
        values = category.feature.categories
        if value.value in values:
            return True
        self._add(
            "unknown_value",
            f"'{value.value}' is not a value of {category} (one of: {', '.join(values)})",
            value,
            suggest(value.value, values),
        )
        return False


def _name(t: Type) -> str:
    if isinstance(t, Category):
        return str(t)
    return {NUMBER: "a number", BOOL: "a true/false value", STRING: "a quoted value"}[t]


def _what(node: ast.Node) -> str:
    return f" '{node.name}'" if isinstance(node, ast.Feature) else ""
