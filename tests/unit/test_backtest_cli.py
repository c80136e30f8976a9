"""`interceptor backtest` as a new user sees it: mistakes get one clear line naming the file, line or option (no
traceback), and the summary carries the headline figures of docs/quality.md, uncut at 80 columns."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from streams.backtest import load_truth, read_truth
from streams.cli.main import main
from streams.errors import EventError
from streams.simulator import SimConfig, simulate

FEED = SimConfig(customers=400, days=2, seed=5, fraud_rate=0.04)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("feed")
    sim = simulate(FEED)
    sim.write(d)
    return d


def backtest(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["backtest", *args], env={"COLUMNS": "80", **(env or {})})


def run(feed: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return backtest(
        "--transactions", str(feed / "transactions.jsonl"), "--out", str(tmp_path / "d.jsonl"), *args, env=env
    )


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


# --- mistakes -----------------------------------------------------------------------------------------------


def test_an_invalid_ruleset_prints_each_problem_with_its_place_and_exits_1(feed: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'ruleset: {version: "1", thresholds: {review: 1, hold: 2, block: 3}}\n'
        "rules:\n"
        "  - {id: a, description: d, when: amont > 1, score: 1}\n"
        "  - {id: b, description: d, when: night, score: 1, action: frezee}\n"
    )
    result = run(feed, tmp_path, "--rules", str(bad))
    assert result.exit_code == 1
    assert_no_traceback(result)
    assert f"{bad}:3:35: rule \"a\": unknown feature 'amont' (did you mean 'amount'?)" in result.output
    assert f"{bad}:4:60: rule \"b\": 'action' must be one of review, hold, block, found 'frezee'" in result.output
    assert f"FAILED: 2 problem(s) in {bad}" in result.output
    assert not (tmp_path / "d.jsonl").exists()


def test_bad_label_lines_are_skipped_with_their_file_and_line(feed: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    good = (feed / "labels.jsonl").read_bytes()
    labels.write_bytes(b'{"account":"1","verdict":"maybe"}\nnot json\n' + good)
    result = run(feed, tmp_path, "--labels", str(labels))
    assert result.exit_code == 0, result.output
    assert_no_traceback(result)
    lines = result.output.splitlines()  # one line each, however long: to grep for in a log
    assert any(line.startswith(f"skipped label {labels}:1: field 'verdict': ") and "'maybe'" in line for line in lines)
    assert any(line.startswith(f"skipped label {labels}:2: message is not valid JSON") for line in lines)
    assert "victims stopped at their first fraudulent transfer" in result.output  # the good labels still count


@pytest.mark.parametrize("option", ["--out", "--report", "--html"])
def test_an_output_in_a_missing_directory_fails_before_the_replay(option: str, feed: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    missing = tmp_path / "nonexistent" / "dir"
    args = ["--transactions", str(feed / "transactions.jsonl"), "--out", str(out)]
    args += [option, str(missing / "file")] if option != "--out" else ["--out", str(missing / "d.jsonl")]
    result = backtest(*args)
    assert result.exit_code == 2
    assert_no_traceback(result)
    assert f"Invalid value for '{option}': directory '{missing}' does not exist" in result.output
    assert not out.exists()  # nothing was replayed


def test_an_output_under_a_file_is_refused(feed: Path, tmp_path: Path) -> None:
    under_a_file = feed / "transactions.jsonl" / "r.json"
    result = run(feed, tmp_path, "--report", str(under_a_file))
    assert result.exit_code == 2
    assert f"Invalid value for '--report': '{feed / 'transactions.jsonl'}' is not a directory" in result.output


def test_each_invalid_transaction_is_printed_with_its_line_up_to_20(feed: Path, tmp_path: Path) -> None:
    good = (feed / "transactions.jsonl").read_bytes().splitlines(keepends=True)
    bad = [b"not json\n"] + [b'{"txn_id": "t%d", "amount": "1"}\n' % i for i in range(24)]
    transactions = tmp_path / "transactions.jsonl"
    transactions.write_bytes(b"".join(good[:10] + bad + good[10:]))
    result = backtest("--transactions", str(transactions), "--out", str(tmp_path / "d.jsonl"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith(f"skipped transaction {transactions}:11: message is not valid JSON") for line in lines)
    assert any(line.startswith(f"skipped transaction {transactions}:12: field 'ts': ") for line in lines)
    assert any(line.startswith(f"skipped transaction {transactions}:30: field 'ts': ") for line in lines)  # the 20th
    assert f"{transactions}:31:" not in result.output
    assert "skipped 5 more invalid transactions (25 in all)" in lines
    printed = " ".join(result.output.split())
    assert f"{len(good):,} transactions decided" in printed and "25 dead letters" in printed


# --- the summary --------------------------------------------------------------------------------------------


def test_the_summary_gives_the_headline_figures_with_their_counts(feed: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    result = run(feed, tmp_path, "--calls", str(feed / "calls.jsonl"), "--labels", str(feed / "labels.jsonl"),
                 "--report", str(report_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = orjson.loads(report_path.read_bytes())
    printed = " ".join(result.output.split())
    victims = report["victims_stopped_at_first_transfer_share"]
    assert report["victims"] > 0
    assert (
        f"victims stopped at their first fraudulent transfer: {100 * victims:.1f}% "
        f"({report['victims_stopped_at_first_transfer']} of {report['victims']})"
    ) in printed
    honest = report["legit_intercepted_share"]
    assert 0 < report["legit_intercepted"] < report["legit_transactions"]
    assert honest == round(report["legit_intercepted"] / report["legit_transactions"], 6)
    # three decimals: docs/quality.md quotes 0.084 %
    assert (
        f"honest payments held or blocked: {100 * honest:.3f}% "
        f"({report['legit_intercepted']:,} of {report['legit_transactions']:,})"
    ) in printed
    assert f"alerts per day (review, hold, block): {report['alerts_per_day']:,.1f}" in printed


def rule_rows(output: str, title: str) -> dict[str, list[str]]:
    """The rows of a rule table as printed: the rule id put back together from its folded pieces -> its cells."""
    rows: dict[str, list[str]] = {}
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"┃ {title} +┃", line))
    current = ""
    for line in lines[start + 2 :]:
        if line.startswith("└"):
            break
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[1]:  # a new row: its hits are printed on its first line
            current = cells[0]
            rows[current] = cells[1:]
        else:
            rows[current + cells[0]] = rows.pop(current)
            current += cells[0]
    return rows


def test_rule_ids_and_figures_are_never_cut_at_80_columns(feed: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    result = run(feed, tmp_path, "--calls", str(feed / "calls.jsonl"), "--labels", str(feed / "labels.jsonl"),
                 "--report", str(report_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    report = orjson.loads(report_path.read_bytes())
    rows = rule_rows(result.output, "rules")
    assert set(rows) == set(report["rules"]) and any(len(rule) > 30 for rule in rows)
    for rule, q in report["rules"].items():
        assert rows[rule][0] == f"{q['hits']:,}" and rows[rule][-1] == f"{q['fraud_amount']:,.2f}"


def test_without_labels_nothing_is_claimed_about_fraud(feed: Path, tmp_path: Path) -> None:
    result = run(feed, tmp_path)
    assert result.exit_code == 0, result.output
    rows = rule_rows(result.output, "rules")
    assert rows
    for cells in rows.values():
        assert (
            cells[0].replace(",", "").isdigit() and cells[1:] == ["–"] * 5
        )  # not "0 fraud hits, every hit legit, 0.00 %"
    assert "0.00%" not in result.output and "victims stopped" not in result.output


def test_a_narrow_terminal_gets_a_wider_table_rather_than_cut_figures(feed: Path, tmp_path: Path) -> None:
    result = run(feed, tmp_path, env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert set(rule_rows(result.output, "rules"))  # the rule ids are there, folded


# --- the time zone ------------------------------------------------------------------------------------------


def test_a_bad_timezone_variable_is_named_as_the_variable(feed: Path, tmp_path: Path) -> None:
    result = run(feed, tmp_path, env={"INTERCEPTOR_TIMEZONE": "Mars/Base"})
    assert result.exit_code == 2
    assert_no_traceback(result)
    assert "Invalid value for environment variable INTERCEPTOR_TIMEZONE: unknown time zone 'Mars/Base'" in (
        result.output
    )
    assert "--timezone'" not in result.output


def test_a_bad_timezone_option_is_named_as_the_option(feed: Path, tmp_path: Path) -> None:
    result = run(feed, tmp_path, "--timezone", "Mars/Base", env={"INTERCEPTOR_TIMEZONE": "Europe/London"})
    assert result.exit_code == 2
    assert "Invalid value for '--timezone': unknown time zone 'Mars/Base'" in result.output
    assert "INTERCEPTOR_TIMEZONE'" not in result.output


def test_the_option_wins_over_the_variable(feed: Path, tmp_path: Path) -> None:
    result = run(feed, tmp_path, "--timezone", "+01:00", env={"INTERCEPTOR_TIMEZONE": "Mars/Base"})
    assert result.exit_code == 0, result.output


def test_help_names_the_timezone_variable() -> None:
    result = CliRunner().invoke(main, ["backtest", "--help"], env={"INTERCEPTOR_TIMEZONE": "Europe/London"})
    assert result.exit_code == 0
    assert "[env var: INTERCEPTOR_TIMEZONE; default: +08:00]" in " ".join(result.output.split())


def test_load_truth_names_the_first_bad_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b'{"txn_id":"t1","verdict":"fraud"}\n\n{"account":"1","verdict":"maybe"}\n')
    truth, errors = read_truth(labels)
    assert set(truth) == {"t1"} and len(errors) == 1 and errors[0].startswith(f"{labels}:3: field 'verdict': ")
    with pytest.raises(EventError, match=f"^{re.escape(str(labels))}:3: field 'verdict'") as raised:
        load_truth(labels)
    assert raised.value.reason_class == "invalid_field"
