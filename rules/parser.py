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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rules import ast

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
    """An expression is not well formed; `pos` is the offending character offset."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


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
    if not text.strip():
        raise ParseError("expected an expression, found nothing", 0)
    parser = _Parser(tokenize(text))
    node = parser.expr()
    tail = parser.peek()
    if tail.kind != "end":
        raise ParseError(f"expected 'and', 'or' or the end of the expression, found {_describe(tail)}", tail.pos)
    return node


_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

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
            return ast.Not(self.not_expr(), op.pos)
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
            return ast.Neg(self.unary(), op.pos)
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
            node = self.expr()
            self.expect(")", "to close the '('")
            return node
        raise ParseError(f"expected a feature, a number or '(', found {_describe(token)}", token.pos)


def _number(token: Token) -> float:
    return float(token.text.replace("_", ""))


def _describe(token: Token) -> str:
    return "the end of the expression" if token.kind == "end" else f"'{token.text}'"
