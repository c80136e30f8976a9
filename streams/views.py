"""Human-readable views of reports for the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def print_report(report: dict, console: Console) -> None:
    actions = ", ".join(f"{a} {n}" for a, n in report["actions"].items())
    console.print(
        f"[bold]{report['transactions']}[/] transactions decided ({actions}); "
        f"{report['dead_letters']} dead letters; ruleset {report['ruleset']}"
    )
    if report["labelled"]:
        console.print(
            f"fraud: {report['fraud_transactions']} transactions, {report['fraud_amount']:,.2f} in amount; "
            f"intercepted (hold+block) {report['fraud_amount_intercepted']:,.2f} "
            f"= [bold]{_pct(report['fraud_amount_intercepted_share'])}[/]"
        )
        levels = Table("at or above", "flagged", "recall", "precision", "false-positive rate", "FP per 10k")
        for level, q in report["at_or_above"].items():
            levels.add_row(
                level,
                str(q["flagged"]),
                _pct(q["recall"]),
                _pct(q["precision"]),
                _pct(q["false_positive_rate"]),
                str(q["false_positives_per_10k"]),
            )
        console.print(levels)
    holds = report.get("holds")
    if holds and holds["opened"]:
        outcomes = ", ".join(f"{k} {n}" for k, n in holds["outcomes"].items()) or "none closed"
        console.print(f"holds: {holds['opened']} opened; {outcomes}")
        if report["labelled"]:
            console.print(
                f"  fraud held {holds['fraud_amount_held']:,.2f}: blocked after the call "
                f"{holds['fraud_amount_blocked_after_hold']:,.2f} "
                f"([bold]{_pct(holds['fraud_held_amount_saved_share'])}[/] saved by holds), released "
                f"{holds['fraud_amount_released_after_hold']:,.2f}; honest customers held {holds['legit_held']}, "
                f"blocked after the call {holds['legit_blocked_after_hold']}"
            )
            console.print(
                f"fraud amount finally stopped (blocked at once or after a hold): {report['fraud_amount_stopped']:,.2f}"
                f" = [bold]{_pct(report['fraud_amount_stopped_share'])}[/]"
            )
    for title, rules in (("rules", report["rules"]), ("shadow rules", report["shadow_rules"])):
        if not rules:
            continue
        table = Table(title, "hits", "fraud hits", "legit hits", "precision", "recall", "fraud amount")
        for rule, q in rules.items():
            table.add_row(
                rule,
                str(q["hits"]),
                str(q["fraud_hits"]),
                str(q["legit_hits"]),
                _pct(q["precision"]),
                _pct(q["recall"]),
                f"{q['fraud_amount']:,.2f}",
            )
        console.print(table)
