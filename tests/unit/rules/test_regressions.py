"""Regression tests, each named after the bug it pins."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rules import load_ruleset
from rules.features import REGISTRY
from scoring.kernel import score_batch

HEADER = 'ruleset: {version: "1", thresholds: {review: 1, hold: 2, block: 3}}\nrules:\n'


def _fired(tmp_path: Path, when: str, amount: float) -> bool:
    path = tmp_path / "r.yaml"
    path.write_text(HEADER + f'  - {{id: r, description: d, score: 1, when: "{when}"}}\n')
    rows = np.full((1, len(REGISTRY)), np.nan)
    rows[0, REGISTRY.column("amount")] = amount
    return bool(score_batch(load_ruleset(path).program, rows).fired[0, 0])


def test_unary_minus_was_typed_as_a_truth_value_and_crashed_the_checker(tmp_path: Path) -> None:
    assert _fired(tmp_path, "amount > -5", 0.0)
    assert _fired(tmp_path, "-amount < -(2 * 3)", 7.0)


def test_negative_numbers_were_refused_in_in_lists(tmp_path: Path) -> None:
    assert _fired(tmp_path, "amount in [-1, 2]", -1.0)
    assert not _fired(tmp_path, "amount not in [-1, 2]", -1.0)
