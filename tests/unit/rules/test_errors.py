"""Every mistake a rule author can make, each a fixture under testdata/, paired with the exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.errors import RuleError
from rules.ruleset import load_ruleset

TESTDATA = Path(__file__).parent / "testdata"

# (fixture, kind, message with the fixture's own path removed)
EXPECTED = [
    (
        "control_character",
        "yaml",
        ":3:32: invalid YAML: unacceptable character #x0007: special characters are not allowed",
    ),
    ("bad_action", "bad_action", ":9:13: rule \"big\": 'action' must be one of review, hold, block, found 'freeze'"),
    ("bad_id", "bad_id", ":5:9: rule \"Big-Rule\": 'id' must use a-z, 0-9 and _, found 'Big-Rule'"),
    (
        "bad_mode",
        "bad_mode",
        ":9:11: rule \"big\": 'mode' must be one of active, shadow, found 'shadwo' (did you mean 'shadow'?)",
    ),
    (
        "block_scalar_error",
        "syntax",
        ":9:34: rule \"block\": expected 'and', 'or' or the end of the expression, found 'm'",
    ),
    ("bool_arithmetic", "type_mismatch", ":7:11: rule \"arith\": '+' needs a number, found a true/false value 'night'"),
    (
        "category_order",
        "category_order",
        ":7:19: rule \"chan\": '>' does not apply to category 'channel': its values have no order; use == != or 'in'",
    ),
    ("chained_comparison", "syntax", ":7:22: rule \"chain\": comparisons cannot be chained; join them with 'and'"),
    ("duplicate_across_files", "duplicate_id", '/b.yaml:2:5: rule "a": duplicate id, first defined at /a.yaml:5'),
    ("duplicate_id", "duplicate_id", ':9:5: rule "big": duplicate id, first defined at :5'),
    ("missing_field", "missing_field", ":5:5: rule \"big\": missing required field 'when'"),
    ("missing_header", "missing_header", ":1:1: no 'ruleset:' header with version and thresholds in any file"),
    ("not_boolean", "not_boolean", ":7:18: rule \"arith\": 'when' must be a true/false condition, found a number"),
    (
        "threshold_order",
        "threshold_order",
        ":3:15: thresholds must rise 0 < review < hold < block, found review 60, hold 30, block 100",
    ),
    (
        "trailing_tokens",
        "syntax",
        ":7:23: rule \"trail\": expected 'and', 'or' or the end of the expression, found 'night'",
    ),
    ("two_headers", "two_headers", "/b.yaml:2:3: a second 'ruleset' header; the first is at /a.yaml:2"),
    (
        "type_mismatch",
        "type_mismatch",
        ":7:22: rule \"chan\": cannot compare category 'channel' with a number; compare it with a quoted value such as 'mobile'",
    ),
    (
        "unbalanced_parenthesis",
        "syntax",
        ":7:32: rule \"paren\": expected ')' to close the '(', found the end of the expression",
    ),
    (
        "unknown_category_value",
        "unknown_value",
        ":7:33: rule \"chan\": 'onlien' is not a value of category 'channel' (one of: mobile, online, atm, counter, pos, third_party) (did you mean 'online'?)",
    ),
    (
        "unknown_feature",
        "unknown_feature",
        ":7:26: rule \"big\": unknown feature 'payee.new_for_payr' (did you mean 'payee.new_for_payer'?)",
    ),
    (
        "unknown_key",
        "unknown_key",
        ":9:5: rule \"big\": unknown key 'scroe' (allowed: id, description, when, score, action, mode, tags, hold_minutes) (did you mean 'score'?)",
    ),
    ("wrong_field_type", "wrong_type", ":8:12: rule \"big\": 'score' must be a number, found 'lots'"),
    (
        "quoted_escapes",
        "unknown_value",
        ":6:36: rule \"chan\": 'mobiel' is not a value of category 'channel' (one of: mobile, online, atm, counter, pos, third_party) (did you mean 'mobile'?)",
    ),
    ("yaml_syntax", "yaml", ":4:6: invalid YAML: expected ',' or '}', but got ':'"),
]


def test_every_fixture_is_in_the_table() -> None:
    assert {p.name.split(".")[0] for p in TESTDATA.glob("*.bad*")} == {name for name, _, _ in EXPECTED}


@pytest.mark.parametrize("fixture", sorted({name for name, _, _ in EXPECTED}))
def test_bad_ruleset_is_rejected_with_every_message(fixture: str) -> None:
    path = next(TESTDATA.glob(f"{fixture}.bad*"))
    with pytest.raises(RuleError) as caught:
        load_ruleset(path)
    found = [(p.kind, str(p).replace(str(path), "")) for p in caught.value.problems]
    assert found == [(kind, message) for name, kind, message in EXPECTED if name == fixture]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        'ruleset: {version: "1", thresholds: {review: 1, hold: 2, block: 3}}\n'
        "rules:\n"
        "  - {id: a, description: d, when: amont > 1, score: 1}\n"
        "  - {id: b, description: d, when: night and, score: 1}\n"
        "  - {id: c, description: d, when: night, score: 1, mode: shadwo}\n"
    )
    with pytest.raises(RuleError) as caught:
        load_ruleset(rules)
    assert [p.rule for p in caught.value.problems] == ["a", "b", "c"]
    assert (
        str(caught.value).splitlines()[0]
        == f"{rules}:3:35: rule \"a\": unknown feature 'amont' (did you mean 'amount'?)"
    )


def test_a_missing_path_is_a_rule_error_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such file or directory"):
        load_ruleset(tmp_path / "nope")
