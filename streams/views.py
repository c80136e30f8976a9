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
