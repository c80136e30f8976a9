"""Tokenizer and recursive-descent parser for `when` expressions. Nothing here evaluates rule text.

Grammar (lowest precedence first):

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [ ("<"|"<="|">"|">="|"=="|"!=") sum
                      | ["not"] "in" "[" literal ("," literal)* "]"   (literal: 'STRING' | ["-"] NUMBER)
                      | "between" sum "and" sum ]
    sum        := product (("+"|"-") product)*
    product    := unary (("*"|"/") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | 'STRING' | "true" | "false" | FEATURE | "(" expr ")"

Limits (errors of kind `too_large` and `too_deep`, like any syntax error): the parser, the type checker and
the code generator recurse once or more per level of the tree, so an unbounded condition could exhaust
Python's recursion limit (1000 frames) and crash a worker's reload instead of being reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rules import ast

# The longest shipped condition is about 150 characters; 2,000 leaves room for a rule with a dozen clauses
# and a long 'in' list, and keeps a rule at most a few hundred kernel steps per payment.
MAX_EXPRESSION_CHARS = 2_000
# Levels of nesting: each '(', 'not' and unary '-', and each operator of a chain such as `a and b and c` (the
# tree of a chain is as deep as the chain is long). Measured without a limit: 130 nested parentheses crashed the
# parser (8 frames a level) and 400 chained `and`s the type checker (3 frames a level). At 50 the parser uses
# at most 400 frames and the checker 150, well inside the 1000 a worker has; the shipped rules need 5.
MAX_EXPRESSION_DEPTH = 50

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "true", "false"})
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>'[^'\n]*'|"[^"\n]*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    pos: int


class ParseError(Exception):
    """An expression is not well formed; `pos` is the offending character offset.

    `kind` is the rule error kind: `syntax`, or `too_large` / `too_deep` for a condition over the limits.
    """

    def __init__(self, message: str, pos: int, kind: str = "syntax") -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.kind = kind


TOO_DEEP = (
    f"the condition nests more than {MAX_EXPRESSION_DEPTH} levels deep (each '(', 'not' and unary '-', and each "
    "operator in a chain such as 'a and b and c', is a level); split it into several rules"
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            char = text[pos]
            if char in "'\"":
                raise ParseError(f"unterminated string starting with {char}", pos)
            if char == "=":
                raise ParseError("unexpected '='; use '==' to compare", pos)
            raise ParseError(f"unexpected character {char!r}", pos)
        kind = m.lastgroup
        assert kind is not None
        if kind != "space":
            value = m.group()
            if kind == "name" and value in KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, value, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def parse(text: str) -> ast.Node:
    """Parse one expression. Raises ParseError with the offset of the first problem."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ParseError(
            f"the condition is {len(text):,} characters long, the limit is {MAX_EXPRESSION_CHARS:,}; "
            "split it into several rules",
            0,
            "too_large",
        )
    if not text.strip():
        raise ParseError("expected an expression, found nothing", 0)
    parser = _Parser(tokenize(text))
    node = parser.expr()
    tail = parser.peek()
    if tail.kind != "end":
        raise ParseError(f"expected 'and', 'or' or the end of the expression, found {_describe(tail)}", tail.pos)
    deep = _too_deep(node)
    if deep is not None:
        raise ParseError(TOO_DEEP, deep.pos, "too_deep")
    return node


def _too_deep(root: ast.Node) -> ast.Node | None:
    """The first operator, in reading order, whose subtree is deeper than the limit (None when none is).

    Iterative, so a tree far too deep for the checker is measured without recursion. A leaf has height 0.
    """
    heights: dict[int, int] = {}
    over: list[ast.Node] = []
    stack: list[tuple[ast.Node, bool]] = [(root, False)]
    while stack:
        node, visited = stack.pop()
        children = _children(node)
        if not visited:
            stack.append((node, True))
            stack.extend((child, False) for child in children)
            continue
        height = 1 + max((heights[id(c)] for c in children), default=-1)
        heights[id(node)] = height
        if height == MAX_EXPRESSION_DEPTH + 1:
            over.append(node)
    return min(over, key=lambda n: n.pos) if over else None


def _children(node: ast.Node) -> tuple[ast.Node, ...]:
    match node:
        case ast.Neg(operand=o) | ast.Not(operand=o) | ast.InList(operand=o):
            return (o,)
        case ast.Arith(left=a, right=b) | ast.Compare(left=a, right=b) | ast.Logic(left=a, right=b):
            return (a, b)
        case ast.Between(operand=o, low=lo, high=hi):
            return (o, lo, hi)
    return ()


_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0  # '(', 'not' and unary '-' the parser is inside: each is a level of recursion

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_EXPRESSION_DEPTH:
            raise ParseError(TOO_DEEP, token.pos, "too_deep")

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def accept(self, text: str) -> Token | None:
        token = self.peek()
        if token.kind in ("keyword", "op") and token.text == text:
            self.i += 1
            return token
        return None

    def expect(self, text: str, context: str) -> Token:
        token = self.accept(text)
        if token is None:
            found = self.peek()
            raise ParseError(f"expected '{text}' {context}, found {_describe(found)}", found.pos)
        return token

    def expr(self) -> ast.Node:
        node = self.and_expr()
        while op := self.accept("or"):
            node = ast.Logic("or", node, self.and_expr(), op.pos)
        return node

    def and_expr(self) -> ast.Node:
        node = self.not_expr()
        while op := self.accept("and"):
            node = ast.Logic("and", node, self.not_expr(), op.pos)
        return node

    def not_expr(self) -> ast.Node:
        if op := self.accept("not"):
            self.enter(op)
            node = ast.Not(self.not_expr(), op.pos)
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> ast.Node:
        left = self.sum()
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARISONS:
            self.take()
            node: ast.Node = ast.Compare(token.text, left, self.sum(), token.pos)
            after = self.peek()
            if after.kind == "op" and after.text in _COMPARISONS:
                raise ParseError("comparisons cannot be chained; join them with 'and'", after.pos)
            return node
        if token.kind == "keyword" and token.text == "not":
            nxt = self.tokens[self.i + 1]
            if nxt.kind == "keyword" and nxt.text == "in":
                self.i += 2
                return ast.InList(left, self.literal_list(), True, token.pos)
            return left  # a bare 'not' here is the caller's problem (reported as a trailing token)
        if self.accept("in"):
            return ast.InList(left, self.literal_list(), False, token.pos)
        if self.accept("between"):
            low = self.sum()
            self.expect("and", "between the bounds of 'between'")
            return ast.Between(left, low, self.sum(), token.pos)
        return left

    def literal_list(self) -> tuple[ast.Num | ast.Str, ...]:
        self.expect("[", "to open the list after 'in'")
        items: list[ast.Num | ast.Str] = []
        if self.accept("]"):
            raise ParseError("an 'in' list needs at least one value", self.tokens[self.i - 1].pos)
        while True:
            minus = self.accept("-")
            token = self.take()
            if token.kind == "string" and minus is None:
                items.append(ast.Str(token.text[1:-1], token.pos))
            elif token.kind == "number":
                value = _number(token)
                items.append(ast.Num(-value, minus.pos) if minus else ast.Num(value, token.pos))
            else:
                raise ParseError(
                    f"expected a quoted value or a number in the list, found {_describe(token)}", token.pos
                )
            if self.accept("]"):
                return tuple(items)
            self.expect(",", "or ']' in the list")

    def sum(self) -> ast.Node:
        node = self.product()
        while (token := self.peek()).kind == "op" and token.text in ("+", "-"):
            self.take()
            node = ast.Arith(token.text, node, self.product(), token.pos)
        return node

    def product(self) -> ast.Node:
        node = self.unary()
        while (token := self.peek()).kind == "op" and token.text in ("*", "/"):
            self.take()
            node = ast.Arith(token.text, node, self.unary(), token.pos)
        return node

    def unary(self) -> ast.Node:
        if op := self.accept("-"):
            self.enter(op)
            node = ast.Neg(self.unary(), op.pos)
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> ast.Node:
        token = self.take()
        if token.kind == "number":
            return ast.Num(_number(token), token.pos)
        if token.kind == "string":
            return ast.Str(token.text[1:-1], token.pos)
        if token.kind == "name":
            return ast.Feature(token.text, token.pos)
        if token.kind == "keyword" and token.text in ("true", "false"):
            return ast.Bool(token.text == "true", token.pos)
        if token.kind == "op" and token.text == "(":
            self.enter(token)
            node = self.expr()
            self.expect(")", "to close the '('")
            self.depth -= 1
            return node
        raise ParseError(f"expected a feature, a number or '(', found {_describe(token)}", token.pos)


def _number(token: Token) -> float:
    return float(token.text.replace("_", ""))


def _describe(token: Token) -> str:
    return "the end of the expression" if token.kind == "end" else f"'{token.text}'"
