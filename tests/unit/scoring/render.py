"""Expression trees back to rule text with as few parentheses as the grammar allows (tests only).

Rendering minimally means the parser's precedence and associativity are tested, not sidestepped:
parse(render(tree)) must decide exactly as `tree` does.
"""

from __future__ import annotations

from rules import ast

# binding strength, as in rules/parser.py: or < and < not < comparison < sum < product < unary < primary
OR, AND, NOT, COMPARE, SUM, PRODUCT, UNARY, PRIMARY = range(1, 9)


def render(node: ast.Node) -> str:
    return _render(node)[0]


def _at(node: ast.Node, least: int) -> str:
    """The node's text, parenthesised when it binds more loosely than `least`."""
    text, level = _render(node)
    return text if level >= least else f"({text})"


def _render(node: ast.Node) -> tuple[str, int]:
    match node:
        case ast.Num(value=v):
            return (repr(v), UNARY) if v < 0 else (repr(v), PRIMARY)
        case ast.Str(value=v):
            return f"'{v}'", PRIMARY
        case ast.Bool(value=v):
            return ("true" if v else "false"), PRIMARY
        case ast.Feature(name=name):
            return name, PRIMARY
        case ast.Neg(operand=o):
            return f"- {_at(o, UNARY)}", UNARY
        case ast.Arith(op=op, left=a, right=b):
            level = SUM if op in "+-" else PRODUCT
            return f"{_at(a, level)} {op} {_at(b, level + 1)}", level
        case ast.Compare(op=op, left=a, right=b):
            return f"{_at(a, SUM)} {op} {_at(b, SUM)}", COMPARE
        case ast.InList(operand=o, items=items, negated=negated):
            values = ", ".join(render(i) for i in items)
            return f"{_at(o, SUM)} {'not in' if negated else 'in'} [{values}]", COMPARE
        case ast.Between(operand=o, low=lo, high=hi):
            return f"{_at(o, SUM)} between {_at(lo, SUM)} and {_at(hi, SUM)}", COMPARE
        case ast.Not(operand=o):
            return f"not {_at(o, NOT)}", NOT
        case ast.Logic(op=op, left=a, right=b):
            level = OR if op == "or" else AND
            return f"{_at(a, level)} {op} {_at(b, level + 1)}", level
    raise AssertionError(node)
