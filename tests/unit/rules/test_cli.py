"""`interceptor rules check|test|features` as a rule author (and a rule repo's CI) sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules.features import REGISTRY
from rules.ruleset import default_ruleset_path, load_ruleset
from streams.cli.main import main

TESTDATA = Path(__file__).parent / "testdata"


def run(*args: str):
    return CliRunner().invoke(main, ["rules", *args])


def test_check_accepts_the_default_ruleset() -> None:
    result = run("check")
    assert result.exit_code == 0
    ruleset = load_ruleset(default_ruleset_path())
    shadow = sum(1 for rule in ruleset.rules if rule.shadow)
    assert result.output.startswith(f"OK: {len(ruleset.rules)} rules ({shadow} shadow), version {ruleset.version}")


def test_check_reports_every_problem_with_its_place_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'ruleset: {version: "1", thresholds: {review: 1, hold: 2, block: 3}}\n'
        "rules:\n"
        "  - {id: a, description: d, when: amont > 1, score: 1}\n"
        "  - {id: b, description: d, when: night, score: 1, action: frezee}\n"
    )
    result = run("check", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:3:35: rule \"a\": unknown feature 'amont' (did you mean 'amount'?)" in result.output
    assert f"{bad}:4:60: rule \"b\": 'action' must be one of review, hold, block, found 'frezee'" in result.output
    assert "FAILED: 2 problem(s)" in result.output


def test_check_of_a_missing_path_is_a_usage_error() -> None:
    assert run("check", "/nonexistent/rules").exit_code == 2


def test_rules_test_passes_on_the_default_ruleset() -> None:
    result = run("test")
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("passed, 0 failed")


def test_failing_rule_test_says_what_was_expected_and_what_happened(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        'ruleset: {version: "1", thresholds: {review: 10, hold: 20, block: 30}}\n'
        "rules:\n  - {id: big, description: d, when: amount > 1000, score: 15}\n"
    )
    (tmp_path / "r.test.yaml").write_text(
        "tests:\n"
        "  - name: small payment\n    features: {amount: 5}\n    action: allow\n"
        "  - name: big payment held\n    features: {amount: 5000}\n    fired: [big]\n    action: hold\n"
    )
    result = run("test", str(tmp_path))
    assert result.exit_code == 1
    assert f"FAIL {tmp_path / 'r.test.yaml'}:5: big payment held" in result.output
    assert "expected action hold, got review" in result.output
    assert "(score 15; fired: big)" in result.output
    assert result.output.strip().endswith("1 passed, 1 failed")


def test_malformed_test_file_is_an_error_not_a_pass(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text('ruleset: {version: "1", thresholds: {review: 1, hold: 2, block: 3}}\nrules: []\n')
    (tmp_path / "r.test.yaml").write_text("tests:\n  - name: x\n    features: {amout: 5}\n")
    result = run("test", str(tmp_path))
    assert result.exit_code == 1
    assert "unknown feature 'amout'" in result.output


def test_features_lists_the_registry_in_every_format() -> None:
    as_json = json.loads(run("features", "--format", "json").output)
    assert [f["name"] for f in as_json] == list(REGISTRY.names)
    markdown = run("features", "--format", "markdown").output
    assert all(f"`{name}`" in markdown for name in REGISTRY.names)
    assert run("features").exit_code == 0


def test_malformed_expectations_are_errors_at_their_place(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text('ruleset: {version: "1", thresholds: {review: 1, hold: 2, block: 3}}\nrules: []\n')
    for body, message in [
        (
            "    action: hodl\n",
            "4:13: test 'x': 'action' must be one of allow, review, hold, block, found 'hodl' (did you mean 'hold'?)",
        ),
        ("    fired: big\n", "4:12: test 'x': 'fired' must be a list of rule ids, found 'big'"),
        ("    not_fired: [1]\n", "4:17: test 'x': 'not_fired' must be a list of rule ids, found '1'"),
    ]:
        (tmp_path / "r.test.yaml").write_text("tests:\n  - name: x\n    features: {amount: 5}\n" + body)
        result = run("test", str(tmp_path))
        assert result.exit_code == 1
        assert f"{tmp_path / 'r.test.yaml'}:{message}\n" in result.output


def test_check_of_a_directory_counts_rules_across_files(tmp_path: Path) -> None:
    (tmp_path / "header.yaml").write_text('ruleset: {version: "v9", thresholds: {review: 1, hold: 2, block: 3}}\n')
    (tmp_path / "a.yaml").write_text("rules:\n  - {id: a, description: d, when: night, score: 1}\n")
    (tmp_path / "b.yaml").write_text("rules:\n  - {id: b, description: d, when: amount > -5, score: 1, mode: shadow}\n")
    (tmp_path / "b.test.yaml").write_text("tests: []\n")
    result = run("check", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 2 rules (1 shadow), version v9")


def test_unknown_option_is_a_usage_error() -> None:
    assert run("features", "--format", "html").exit_code == 2
    assert run("check", "--nope").exit_code == 2


@pytest.mark.parametrize(
    ("rules", "what"),
    [
        ("rules: []\n", "no rules"),
        ("rules:\n  - {id: b, description: d, when: night, score: 1, mode: shadow}\n", "only shadow rules"),
    ],
)
def test_check_warns_that_a_ruleset_without_active_rules_allows_everything(
    tmp_path: Path, rules: str, what: str
) -> None:
    (tmp_path / "header.yaml").write_text('ruleset: {version: "v9", thresholds: {review: 1, hold: 2, block: 3}}\n')
    (tmp_path / "rules.yaml").write_text(rules)
    result = run("check", str(tmp_path))
    assert result.exit_code == 0, result.output  # valid: a bank may deploy the rules later
    assert f"warning: {what}: a worker with this ruleset allows every transaction" in result.stderr


def test_rule_tests_compute_histories_in_the_bank_s_time_zone(tmp_path: Path) -> None:
    """A transfer at 23:30 UTC in July is at night in London (00:30) and in the morning at the default +08:00."""
    (tmp_path / "header.yaml").write_text('ruleset: {version: "v9", thresholds: {review: 1, hold: 2, block: 3}}\n')
    (tmp_path / "rules.yaml").write_text("rules:\n  - {id: at_night, description: d, when: night, score: 1}\n")
    (tmp_path / "night.test.yaml").write_text(
        "tests:\n"
        "  - name: a transfer at 23:30 UTC\n"
        "    transactions:\n"
        "      - {txn_id: t1, ts: '2026-07-01T23:30:00Z', payer_account: A, payee_account: B, amount: '10.00'}\n"
        "    fired: [at_night]\n"
    )
    london = CliRunner().invoke(main, ["rules", "test", str(tmp_path)], env={"INTERCEPTOR_TIMEZONE": "Europe/London"})
    assert london.exit_code == 0, london.output
    assert "1 passed, 0 failed" in london.output
    default = run("test", str(tmp_path))
    assert default.exit_code == 1 and "expected rule 'at_night' to fire" in default.output
