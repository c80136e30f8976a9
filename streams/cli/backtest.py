"""`interceptor backtest`: replay files through the worker's pipeline and report what it would have decided."""

from __future__ import annotations

import json
import os
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from streams.cli.zone import timezone_option
from streams.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUTPUT = click.Path(dir_okay=False, writable=True, path_type=Path)
SHOWN_INVALID = 20  # invalid transactions printed one by one; a feed of a million bad lines gets a count after these


def _skipped(console: Console, kind: str, where: str) -> None:
    # never wrapped by rich: "file:line: reason" stays one line to grep for in a log and to copy
    console.print(f"[yellow]skipped {kind}[/] {where}", highlight=False, soft_wrap=True)


def _output(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Fail before the replay, not after it, when an output cannot be written where it is asked for."""
    if value is None:
        return None
    folder = value.parent
    if not folder.exists():
        raise click.BadParameter(f"directory '{folder}' does not exist")
    if not folder.is_dir():
        raise click.BadParameter(f"'{folder}' is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"directory '{folder}' is not writable")
    return value


@click.command()
@click.option("--transactions", "transactions_path", type=_FILE, required=True, help="Transactions, JSON lines.")
@click.option("--calls", "calls_path", type=_FILE, help="Calls feed, JSON lines.")
@click.option("--labels", "labels_path", type=_FILE, help="Ground truth labels, JSON lines (for quality figures).")
@click.option(
    "--verifications",
    "verifications_path",
    type=_FILE,
    help="Verifications (the bank's calls to customers about held transfers), JSON lines.",
)
@click.option(
    "--call-centre/--no-call-centre",
    default=False,
    help="Simulate the bank calling the payer of every hold who is its customer (the feed gives the payer's "
    "account opening date), answering from --labels (see docs/lifecycle.md).",
)
@click.option("--rules", "rules_path", type=click.Path(exists=True, path_type=Path), help="Ruleset (default: shipped).")
@click.option(
    "--out", "out_path", type=_OUTPUT, callback=_output, required=True, help="Where to write the decisions, JSON lines."
)
@click.option("--report", "report_path", type=_OUTPUT, callback=_output, help="Write report JSON here.")
@click.option(
    "--html",
    "html_path",
    type=_OUTPUT,
    callback=_output,
    help="Write a human report (HTML, with the curve as PNG next to it).",
)
@click.option("--batch-size", type=int, default=Settings().batch_max, show_default=True, help="Transactions per batch.")
@timezone_option
def backtest(
    transactions_path: Path,
    calls_path: Path | None,
    labels_path: Path | None,
    verifications_path: Path | None,
    call_centre: bool,
    rules_path: Path | None,
    out_path: Path,
    report_path: Path | None,
    html_path: Path | None,
    batch_size: int,
    zone: tzinfo,
) -> None:
    """Replay history through the same features and kernel as the worker, without a broker."""
    from rich.console import Console
    from rich.progress import Progress

    from rules.errors import RuleError
    from rules.ruleset import default_ruleset_path
    from streams.backtest import (
        Truth,
        Verifications,
        bank_customers,
        load_calls,
        load_verifications,
        read_truth,
        replay,
        transaction_context,
    )
    from streams.cli.rules import refuse
    from streams.features.engine import FeatureConfig, FeatureEngine
    from streams.pipeline import TransactionPipeline
    from streams.quality import INTERCEPTED, measure
    from streams.scorer import load_scorer
    from streams.simulator.callcentre import CallCentre
    from streams.views import print_report

    if call_centre and not labels_path:
        raise click.UsageError("--call-centre answers from the ground truth: give --labels too")
    console = Console(stderr=True)
    try:
        scorer = load_scorer(rules_path)
    except RuleError as exc:  # as `interceptor rules check` prints it: every problem with its place
        refuse(exc, rules_path or default_ruleset_path())
    pipeline = TransactionPipeline(scorer, hold_clock="event", engine=FeatureEngine(FeatureConfig(zone=zone)))
    if calls_path:
        for error in load_calls(pipeline, calls_path):
            _skipped(console, "call", error)
    truth: dict[str, Truth] = {}
    if labels_path:
        truth, label_errors = read_truth(labels_path)
        for error in label_errors:
            _skipped(console, "label", error)
    verifications = Verifications(CallCentre() if call_centre else None, truth)
    if call_centre:
        # a bank calls only its own customers: the accounts the feed sends an opening date with
        verifications.customers = bank_customers(transactions_path)
        if not verifications.customers:
            console.print("[yellow]no account opening dates in the feed: the call centre calls nobody[/]")
    if verifications_path:
        for error in load_verifications(verifications_path, verifications):
            _skipped(console, "verification", error)
    with transactions_path.open("rb") as f:
        total = sum(1 for line in f if line.strip())
    decisions: list[dict] = []
    with out_path.open("wb") as out, Progress(console=console, transient=True) as progress:
        task = progress.add_task("replaying", total=total)

        def keep(record: bytes) -> None:
            out.write(record + b"\n")
            decisions.append(orjson.loads(record))

        invalid = 0

        def skipped(where: str) -> None:
            nonlocal invalid
            invalid += 1
            if invalid <= SHOWN_INVALID:
                _skipped(console, "transaction", where)

        summary = replay(
            pipeline, transactions_path, batch_size, keep, lambda n: progress.advance(task, n), verifications, skipped
        )
    if invalid > SHOWN_INVALID:
        console.print(f"[yellow]skipped {invalid - SHOWN_INVALID:,} more invalid transactions[/] ({invalid:,} in all)")
    verdicts = {txn_id: t.verdict for txn_id, t in truth.items()}
    quality = measure(decisions, verdicts, transaction_context(transactions_path, truth) if truth else None)
    report = quality.report()
    report["dead_letters"] = summary.dead_letters
    if truth:  # the counts behind legit_intercepted_share, for the console summary
        report["legit_transactions"] = quality.transactions - quality.fraud
        report["legit_intercepted"] = sum(quality.legit_flagged[INTERCEPTED:])
    report["ruleset"] = pipeline.scorer.version
    if call_centre and report.get("holds"):
        report["holds"]["payer_not_a_customer"] = verifications.not_called  # holds nobody was called about
    print_report(report, Console())
    if report_path:
        report_path.write_text(json.dumps(report, indent=2) + "\n")
    if html_path:
        from streams.report import write_html

        write_html(report, quality.curve(), html_path)
        console.print(f"report: {html_path} (curve: {html_path.with_suffix('.png')})")
