"""Mistakes in rule test files (`*.test.yaml`): each fixture under testdata/test_files/ paired with every message
`interceptor rules test` prints for it, all in one run, at the mistake's line and column, never a traceback."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from rules.errors import RuleError, RuleTestError
from rules.testing import run_test_file
from streams.cli.main import main
from streams.errors import EventError
from streams.events import decode_transaction
from streams.features.history import featurize_history

TEST_FILES = Path(__file__).parent / "testdata" / "test_files"
RULES = "rules.yaml"
OK_HEADER = 'ruleset: {version: "1", thresholds: {review: 30, hold: 60, block: 100}}\n'
CASE_KEYS = "(allowed: name, features, transactions, calls, fired, not_fired, action)"
CHANNELS = "(one of: mobile, online, atm, counter, pos, third_party)"

# (fixture, every message in the order printed, with the fixture's own path removed)
EXPECTED = [
    (
        "typos",
        [
            ":3:16: test 'typo': unknown feature 'payee.new_for_payr' (did you mean 'payee.new_for_payer'?)",
            ":3:50: test 'typo': feature 'amount' is a number, found 'lots'",
            f":3:67: test 'typo': 'onlien' is not a value of category 'channel' {CHANNELS} (did you mean 'online'?)",
            ":4:13: test 'typo': 'fired' names rule 'risky_call_new_paye', which the ruleset does not have (did you mean 'risky_call_new_payee'?)",
            ":5:13: test 'typo': 'action' must be one of allow, review, hold, block, found 'freeze'",
            f":6:5: test 'typo': unknown key 'expect' {CASE_KEYS}",
        ],
    ),
    (
        "hidden_ruleset",
        [
            ":5:7: test 'both': give either 'features' or 'transactions', not both",
            ":6:10: 'ruleset' names 'rule.yaml', which does not exist (relative to the test file's folder) (did you mean 'rules.yaml'?)",
        ],
    ),
    (
        "file_keys",
        [
            ":1:1: unknown key 'rulset' (allowed: tests, ruleset) (did you mean 'ruleset'?)",
            ":1:1: a test file needs a 'tests:' list",
            ":2:1: unknown key 'test' (allowed: tests, ruleset) (did you mean 'tests'?)",
        ],
    ),
    (
        "cases",
        [
            ":2:5: a test must be a mapping with a 'name', found 'just a name'",
            ":3:5: a test needs a 'name'",
            ":4:5: test 'neither features nor a history': a test needs 'features' or 'transactions'",
            f":5:5: test 'neither features nor a history': unknown key 'fird' {CASE_KEYS} (did you mean 'fired'?)",
            ":7:37: test 'wrong types': feature 'payee.new_for_payer' is true/false, found 'yes'",
            ":7:55: test 'wrong types': feature 'amount' appears twice",
            f":7:75: test 'wrong types': '3' is not a value of category 'channel' {CHANNELS}",
            ":8:12: test 'wrong types': 'fired' must be a list of rule ids, found 'large_amount'",
            ":9:17: test 'wrong types': 'not_fired' must be a list of rule ids, found '1'",
            ":9:34: test 'wrong types': 'not_fired' names rule 'risky_call', which the ruleset does not have (did you mean 'risky_call_new_payee'?)",
            ":12:12: test 'calls without a history': 'calls' go with 'transactions'; 'features' do not use them",
            ":14:19: test 'an empty history': 'transactions' must be a list of one or more transactions, found an empty list",
        ],
    ),
    (
        "events",
        [
            ":4:136: test 'a virtual number misspelt, a channel too, and an amount in words': calls[0]: field 'caller_risk': expected one of flagged, normal, overseas, virtual, found 'virtul' (did you mean 'virtual'?)",
            ":6:119: test 'a virtual number misspelt, a channel too, and an amount in words': transactions[0]: field 'channel': expected one of atm, counter, mobile, online, pos, third_party, found 'onlien' (did you mean 'online'?)",
            ":11:17: test 'a virtual number misspelt, a channel too, and an amount in words': transactions[1]: field 'amount': expected a decimal string like '1250.00', found 'lots'",
            ":14:9: test 'a transaction without its id': transactions[0]: field 'txn_id': is required",
            ":15:9: test 'a transaction without its id': transactions[1] must map the event's fields to values, found 'not an event'",
        ],
    ),
    ("yaml", [":4:1: invalid YAML: expected ',' or '}', but got '<stream end>'"]),
]


def run(*args: str):
    return CliRunner().invoke(main, ["rules", "test", *args])


def test_every_fixture_is_in_the_table() -> None:
    fixtures = {p.name.removesuffix(".bad.test.yaml") for p in TEST_FILES.glob("*.bad.test.yaml")}
    assert fixtures == {name for name, _ in EXPECTED}


@pytest.mark.parametrize(("fixture", "messages"), EXPECTED, ids=[name for name, _ in EXPECTED])
def test_every_mistake_in_a_test_file_is_reported_at_once_at_its_place(fixture: str, messages: list[str]) -> None:
    path = TEST_FILES / f"{fixture}.bad.test.yaml"
    with pytest.raises(RuleTestError) as caught:
        run_test_file(path, featurize_history)
    assert str(caught.value).replace(str(path), "").splitlines() == messages


def test_the_fixtures_written_correctly_pass() -> None:
    results = run_test_file(TEST_FILES / "valid.test.yaml", featurize_history)
    assert [(r.line, r.failures) for r in results] == [(3, []), (7, []), (12, [])]


def test_six_mistakes_in_one_case_need_one_run_and_exit_1() -> None:
    path = TEST_FILES / "typos.bad.test.yaml"
    result = run(str(path))
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    expected = next(messages for name, messages in EXPECTED if name == "typos")
    assert f"ERROR {path}:\n" + "".join(f"{path}{m}\n" for m in expected) in result.output
    assert result.output.endswith("0 passed, 1 failed\n")


def test_bad_event_in_a_history_is_an_error_at_its_field_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        OK_HEADER + "rules:\n  - {id: big, description: d, when: amount > 5000, score: 60}\n"
    )
    txn = {"txn_id": "t1", "ts": "2026-03-01T10:12:00+08:00", "payer_account": "A1", "payee_account": "B1"}
    txn["amount"] = "-9000.00"
    with pytest.raises(EventError) as decoded:  # what the event contract says about it, word for word
        decode_transaction(orjson.dumps(txn))
    test_file = tmp_path / "r.test.yaml"
    test_file.write_text(
        "tests:\n"
        "  - name: refund\n"
        "    transactions:\n"
        f"      - {orjson.dumps(txn).decode()}\n"
        "    fired: [big]\n"
        "  - name: fine\n"
        "    features: {amount: 9000}\n"
        "    fired: [big]\n"
    )
    result = run(str(tmp_path))
    assert isinstance(result.exception, SystemExit), result.exception  # exited, did not crash
    assert result.exit_code == 1
    column = f"      - {orjson.dumps(txn).decode()}".index('"-9000.00"') + 1
    assert f"{test_file}:4:{column}: test 'refund': transactions[0]: {decoded.value}\n" in result.output
    assert "Traceback" not in result.output


def test_a_broken_ruleset_is_reported_with_the_test_files_own_mistakes(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(OK_HEADER + "rules:\n  - {id: big, description: d, when: amont > 1, score: 1}\n")
    (tmp_path / "r.test.yaml").write_text("tests:\n  - name: x\n    features: {amount: 5, nite: true}\n")
    result = run(str(tmp_path))
    assert result.exit_code == 1
    assert (
        f"{tmp_path / 'r.test.yaml'}:3:27: test 'x': unknown feature 'nite' (did you mean 'night'?)\n"
        f"{tmp_path / 'r.yaml'}:3:37: rule \"big\": unknown feature 'amont' (did you mean 'amount'?)\n"
    ) in result.output


def test_a_broken_ruleset_under_a_correct_test_file_is_still_a_rule_error(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(OK_HEADER + "rules:\n  - {id: big, description: d, when: amont > 1, score: 1}\n")
    (tmp_path / "r.test.yaml").write_text("tests:\n  - name: x\n    features: {amount: 5}\n    fired: [big]\n")
    with pytest.raises(RuleError, match="unknown feature 'amont'"):
        run_test_file(tmp_path / "r.test.yaml", featurize_history)


def test_histories_without_a_feature_engine_are_an_error_at_the_history(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(OK_HEADER + "rules: []\n")
    path = tmp_path / "r.test.yaml"
    path.write_text("tests:\n  - name: h\n    transactions: [{txn_id: t1}]\n")
    with pytest.raises(RuleTestError) as caught:
        run_test_file(path, None)
    assert str(caught.value) == f"{path}:3:19: test 'h': transaction histories need the streaming feature engine"
