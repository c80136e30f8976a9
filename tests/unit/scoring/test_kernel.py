"""The numba kernel against the plain-Python reference, on random rulesets and random batches."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings

from rules import ast
from rules.codegen import fold, generate
from rules.features import REGISTRY
from scoring.errors import ScoringError
from scoring.kernel import _score_rows, score_batch
from scoring.program import Op, Program
from tests.unit.scoring.reference import evaluate, score_row
from tests.unit.scoring.strategies import ROWS, RULES, THRESHOLDS, boolean


@settings(max_examples=300, deadline=None)
@given(rules=RULES, rows=ROWS, thresholds=THRESHOLDS)
def test_kernel_agrees_with_the_reference(rules, rows, thresholds) -> None:
    program = Program.build(
        rules=[generate(fold(node)) for node, _, _, _ in rules],
        scores=[s for _, s, _, _ in rules],
        floors=[f for _, _, f, _ in rules],
        shadow=[sh for _, _, _, sh in rules],
        thresholds=thresholds,
        n_features=len(REGISTRY),
    )
    features = np.array(rows, dtype=np.float64)
    result = score_batch(program, features)
    for i, row in enumerate(rows):
        named = dict(zip(REGISTRY.names, row, strict=True))
        score, action, fired = score_row(rules, thresholds, named)
        assert result.fired[i].tolist() == fired
        assert result.score[i] == score
        assert result.action[i] == action


@settings(max_examples=200, deadline=None)
@given(node=boolean(3), rows=ROWS)
def test_folding_never_changes_the_answer(node, rows) -> None:
    for row in rows:
        named = dict(zip(REGISTRY.names, row, strict=True))
        assert evaluate(fold(node), named) == evaluate(node, named)


def test_missing_values_never_fire_a_rule_even_under_not() -> None:
    amount = ast.Feature("amount", 0)
    cond = ast.Not(ast.Compare(">", amount, ast.Num(5, 0), 0), 0)
    program = Program.build([generate(cond)], [10.0], [0], [False], (5.0, 20.0, 30.0), len(REGISTRY))
    rows = np.full((2, len(REGISTRY)), np.nan)
    rows[1, REGISTRY.column("amount")] = 1.0
    result = score_batch(program, rows)
    assert result.fired[:, 0].tolist() == [False, True]
    assert result.action.tolist() == [0, 1]


def test_division_by_zero_is_unknown_not_a_crash() -> None:
    cond = ast.Compare(
        ">", ast.Arith("/", ast.Feature("amount", 0), ast.Feature("payer.amount_sum_1h", 0), 0), ast.Num(1, 0), 0
    )
    program = Program.build([generate(cond)], [10.0], [0], [False], (5.0, 20.0, 30.0), len(REGISTRY))
    rows = np.full((1, len(REGISTRY)), np.nan)
    rows[0, REGISTRY.column("amount")] = 5.0
    rows[0, REGISTRY.column("payer.amount_sum_1h")] = 0.0
    assert score_batch(program, rows).fired.tolist() == [[False]]


def test_shadow_rules_fire_but_never_change_the_action() -> None:
    program = Program.build(
        [[(Op.CONST, 1.0)], [(Op.CONST, 1.0)]], [10.0, 90.0], [0, 3], [False, True], (5.0, 20.0, 30.0), 1
    )
    result = score_batch(program, np.zeros((1, 1)))
    assert result.score.tolist() == [10.0]
    assert result.action.tolist() == [1]
    assert result.fired_active.tolist() == [[True, False]]
    assert result.fired_shadow.tolist() == [[False, True]]


def test_kernel_runs_inside_another_jitted_function() -> None:
    program = Program.build(
        [[(Op.LOAD, 0.0), (Op.CONST, 2.0), (Op.GT, 0.0)]], [50.0], [0], [False], (10.0, 40.0, 90.0), 1
    )

    @numba.njit
    def caller(features, p_ops, p_args, p_start, p_score, p_floor, p_shadow, p_thr, depth):
        n = features.shape[0]
        score = np.zeros(n)
        action = np.zeros(n, dtype=np.int8)
        fired = np.zeros((n, p_start.shape[0] - 1), dtype=np.bool_)
        _score_rows(features, p_ops, p_args, p_start, p_score, p_floor, p_shadow, p_thr, depth, score, action, fired)
        return action

    p = program
    action = caller(np.array([[1.0], [3.0]]), p.ops, p.args, p.rule_start, p.rule_score, p.rule_floor, p.rule_shadow,
                    p.thresholds, p.stack_depth)  # fmt: skip
    assert action.tolist() == [0, 2]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (np.zeros((2, 3), dtype=np.float32), "features must be a float64 numpy array, got float32"),
        ([[1.0, 2.0, 3.0]], "features must be a float64 numpy array, got list"),
        (np.zeros((2, 4)), r"features must have shape \(n, 3\), got \(2, 4\)"),
        (np.zeros(3), r"features must have shape \(n, 3\), got \(3,\)"),
        (np.asfortranarray(np.zeros((2, 3))), "C-contiguous"),
    ],
)
def test_wrapper_rejects_wrong_input_with_a_clear_sentence(features, message) -> None:
    program = Program.build([[(Op.CONST, 1.0)]], [1.0], [0], [False], (5.0, 20.0, 30.0), 3)
    with pytest.raises(ScoringError, match=message):
        score_batch(program, features)


def test_program_rejects_bad_code() -> None:
    with pytest.raises(ScoringError, match="stack underflow at AND"):
        Program.build([[(Op.CONST, 1.0), (Op.AND, 0.0)]], [1.0], [0], [False], (5.0, 20.0, 30.0), 1)
    with pytest.raises(ScoringError, match=r"LOAD of column 7 outside 0\.\.0"):
        Program.build([[(Op.LOAD, 7.0)]], [1.0], [0], [False], (5.0, 20.0, 30.0), 1)
    with pytest.raises(ScoringError, match="thresholds must rise"):
        Program.build([[(Op.CONST, 1.0)]], [1.0], [0], [False], (50.0, 20.0, 30.0), 1)


def test_a_new_ruleset_is_data_not_a_new_compilation() -> None:
    rows = np.zeros((4, 2))
    for threshold in (1.0, 2.0, 3.0):
        program = Program.build(
            [[(Op.LOAD, 1.0), (Op.CONST, threshold), (Op.LT, 0.0)]], [5.0], [0], [False], (1.0, 2.0, 3.0), 2
        )
        score_batch(program, rows)
    assert len(_score_rows.signatures) == 1
