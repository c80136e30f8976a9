"""Hypothesis strategies shared by the kernel tests: well-typed random expressions, rulesets and feature rows."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from rules import ast
from rules.features import REGISTRY, FeatureType

NUMBERS = [f.name for f in REGISTRY if f.type is FeatureType.NUMBER]
BOOLS = [f.name for f in REGISTRY if f.type is FeatureType.BOOL]
CATEGORIES = [f for f in REGISTRY if f.type is FeatureType.CATEGORY]
VALUES = st.sampled_from([0.0, 1.0, -1.0, 0.5, 3.0, 5000.0, 49999.99, 1e12, -7.25])


def numeric(depth: int) -> st.SearchStrategy[ast.Node]:
    leaf = st.one_of(VALUES.map(lambda v: ast.Num(v, 0)), st.sampled_from(NUMBERS).map(lambda n: ast.Feature(n, 0)))
    if depth == 0:
        return leaf
    sub = numeric(depth - 1)
    return st.one_of(
        leaf,
        sub.map(lambda n: ast.Neg(n, 0)),
        st.builds(lambda op, a, b: ast.Arith(op, a, b, 0), st.sampled_from("+-*/"), sub, sub),
    )


def category_test() -> st.SearchStrategy[ast.Node]:
    def build(feature, op, values, negated, use_list):
        f = ast.Feature(feature.name, 0)
        if use_list:
            return ast.InList(f, tuple(ast.Str(v, 0) for v in values), negated, 0)
        return ast.Compare(op, f, ast.Str(values[0], 0), 0)

    return st.sampled_from(CATEGORIES).flatmap(
        lambda feature: st.builds(
            build,
            st.just(feature),
            st.sampled_from(["==", "!="]),
            st.lists(st.sampled_from(feature.categories), min_size=1, max_size=3),
            st.booleans(),
            st.booleans(),
        )
    )


def boolean(depth: int) -> st.SearchStrategy[ast.Node]:
    num = numeric(1)
    leaf = st.one_of(
        st.booleans().map(lambda b: ast.Bool(b, 0)),
        st.sampled_from(BOOLS).map(lambda n: ast.Feature(n, 0)),
        st.builds(
            lambda op, a, b: ast.Compare(op, a, b, 0), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), num, num
        ),
        category_test(),
        st.builds(lambda a, lo, hi: ast.Between(a, lo, hi, 0), num, num, num),
        st.builds(
            lambda a, items, neg: ast.InList(a, tuple(ast.Num(v, 0) for v in items), neg, 0),
            num,
            st.lists(VALUES, min_size=1, max_size=3),
            st.booleans(),
        ),
    )
    if depth == 0:
        return leaf
    sub = boolean(depth - 1)
    return st.one_of(
        leaf,
        sub.map(lambda n: ast.Not(n, 0)),
        st.builds(lambda op, a, b: ast.Logic(op, a, b, 0), st.sampled_from(["and", "or"]), sub, sub),
    )


def feature_value(feature) -> st.SearchStrategy[float]:
    missing = st.just(math.nan)
    if feature.type is FeatureType.BOOL:
        return st.one_of(missing, st.sampled_from([0.0, 1.0]))
    if feature.type is FeatureType.CATEGORY:
        return st.one_of(missing, st.integers(0, len(feature.categories) - 1).map(float))
    return st.one_of(missing, VALUES, st.floats(-1e6, 1e6, allow_nan=False))


ROWS = st.lists(st.tuples(*[feature_value(f) for f in REGISTRY]), min_size=1, max_size=8)
SCORES = st.one_of(st.sampled_from([0.0, 10.0, 25.0, 40.0]), st.integers(0, 200).map(float))
RULES = st.lists(st.tuples(boolean(2), SCORES, st.integers(0, 3), st.booleans()), min_size=1, max_size=6)
# strictly rising review < hold < block, sometimes landing exactly on a sum of scores
THRESHOLDS = st.lists(st.integers(1, 150), min_size=3, max_size=3, unique=True).map(
    lambda t: tuple(float(x) for x in sorted(t))
)
