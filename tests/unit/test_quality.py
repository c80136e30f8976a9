"""The default ruleset's detection quality on a small simulated feed, pinned: a rule change that halves
recall (or doubles the honest customers bothered) fails here. Figures and seeds: docs/quality.md."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from streams.backtest import load_calls, load_truth, replay, transaction_context
from streams.cli.main import main
from streams.pipeline import TransactionPipeline
from streams.quality import measure
from streams.scorer import load_scorer
from streams.simulator import SimConfig, simulate

PINNED = SimConfig(customers=1500, days=4, seed=5, fraud_rate=0.04)


@pytest.fixture(scope="module")
def feed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("feed")
    feed = simulate(PINNED)
    feed.write(d)
    return d


def test_simulation_is_reproducible_by_seed() -> None:
    a, b = simulate(SimConfig(customers=200, days=2, seed=9)), simulate(SimConfig(customers=200, days=2, seed=9))
    assert a.transactions == b.transactions and a.calls == b.calls and a.labels == b.labels
    assert simulate(SimConfig(customers=200, days=2, seed=10)).transactions != a.transactions


def test_default_ruleset_quality_does_not_regress(feed_dir: Path) -> None:
    pipeline = TransactionPipeline(load_scorer(None))
    assert load_calls(pipeline, feed_dir / "calls.jsonl") == []
    decisions: list[dict] = []
    replay(pipeline, feed_dir / "transactions.jsonl", 1000, lambda r: decisions.append(orjson.loads(r)))
    truth = load_truth(feed_dir / "labels.jsonl")
    report = measure(
        decisions, {k: t.verdict for k, t in truth.items()}, transaction_context(feed_dir / "transactions.jsonl", truth)
    ).report()
    # measured 2026-11-29 (ruleset telecom-default-2026.11.7, with the week-long payee memory; simulator with shared
    # investment platforms, collection accounts used across days, agencies and clubs collecting from many
    # customers): review recall 0.877, fraud amount intercepted 0.955, victims stopped at their first transfer
    # 0.791 (0.758 with 2026.11.6), honest payments held or blocked
    # 0.00194 (17 of 8,759: this feed packs 4 % fraud and a week's look-alikes into 4 days), impersonation amount
    # 1.0. Floors sit a quarter below the measurements, so halving recall (or losing a typology's main rule)
    # fails; the honest ceiling sits half again above, about nine more honest holds.
    assert report["at_or_above"]["review"]["recall"] >= 0.65
    assert report["fraud_amount_intercepted_share"] >= 0.71
    assert report["victims_stopped_at_first_transfer_share"] >= 0.59
    assert report["legit_intercepted_share"] <= 0.0030
    assert report["typologies"]["impersonation"]["intercepted_amount_share"] >= 0.75


def test_backtest_writes_the_report_json_html_and_plot(feed_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["backtest", "--transactions", str(feed_dir / "transactions.jsonl"), "--calls", str(feed_dir / "calls.jsonl"),
         "--labels", str(feed_dir / "labels.jsonl"), "--out", str(tmp_path / "d.jsonl"),
         "--report", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"), "--call-centre"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["victims"] > 0 and set(report["typologies"]) >= {"impersonation", "mule_chain"}
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")
    page = (tmp_path / "r.html").read_text()
    assert "victims stopped at their first fraudulent transfer" in page
    # the simulated call centre closed holds: victims reported scams, honest customers confirmed
    holds = report["holds"]
    assert holds["outcomes"].get("block/fraud_reported", 0) > 0 and holds["outcomes"].get("release/confirmed", 0) > 0
    assert holds["closed"] == holds["opened"] and "saved by holds" in page and "block — fraud_reported" in page
    printed = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "holds:" in printed and "saved by holds" in printed


def test_call_centre_needs_labels(feed_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["backtest", "--transactions", str(feed_dir / "transactions.jsonl"), "--out", str(tmp_path / "d.jsonl"),
         "--call-centre"],
    )  # fmt: skip
    assert result.exit_code == 2 and "give --labels too" in result.output


def test_simulate_cli_writes_three_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--customers", "100", "--days", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"transactions.jsonl", "calls.jsonl", "labels.jsonl"}
    bad = CliRunner().invoke(main, ["simulate", "--mix", "romance=1", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown typologies ['romance']" in bad.output
