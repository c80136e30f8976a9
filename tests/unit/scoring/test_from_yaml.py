"""The whole path, YAML text to decision: random well-typed rules are written as a rule file, loaded with
`load_ruleset` (parse, type check, fold, codegen) and scored by the kernel; the answer must equal the
reference evaluator's on the original trees.
"""

from __future__ import annotations

import json
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import ast, load_ruleset
from rules.features import REGISTRY
from scoring.kernel import score_batch
from tests.unit.scoring.reference import score_row
from tests.unit.scoring.render import render
from tests.unit.scoring.strategies import ROWS, RULES, THRESHOLDS

FLOORS = (None, "review", "hold", "block")


def rule_file(rules, thresholds) -> str:
    review, hold, block = thresholds
    lines = [f'ruleset: {{version: "p", thresholds: {{review: {review}, hold: {hold}, block: {block}}}}}', "rules:"]
    for k, (node, score, floor, shadow) in enumerate(rules):
        lines += [f"  - id: r{k}", "    description: d", f"    when: {json.dumps(render(node))}", f"    score: {score}"]
        lines += [f"    action: {FLOORS[floor]}"] if floor else []
        lines += ["    mode: shadow"] if shadow else []
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(rules=RULES, rows=ROWS, thresholds=THRESHOLDS, split=st.booleans())
def test_rules_written_as_yaml_decide_as_the_reference(rules, rows, thresholds, split) -> None:
    with TemporaryDirectory() as tmp:
        text = rule_file(rules, thresholds)
        if split:  # header and rules in two files of a directory
            header, body = text.split("rules:\n")
            (Path(tmp) / "a.yaml").write_text(header)
            (Path(tmp) / "b.yaml").write_text("rules:\n" + body)
            ruleset = load_ruleset(tmp)
        else:
            (Path(tmp) / "r.yaml").write_text(text)
            ruleset = load_ruleset(Path(tmp) / "r.yaml")
    assert [r.features for r in ruleset.rules] == [tuple(ast.features_used(n)) for n, _, _, _ in rules]
    result = score_batch(ruleset.program, np.array(rows, dtype=np.float64))
    for i, row in enumerate(rows):
        score, action, fired = score_row(rules, thresholds, dict(zip(REGISTRY.names, row, strict=True)))
        assert result.fired[i].tolist() == fired
        assert result.score[i] == score
        assert result.action[i] == action
