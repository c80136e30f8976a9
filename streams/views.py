"""Human-readable views of reports for the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

NONE = "–"  # a figure that cannot be computed: no labels, or nothing to divide by
NAME_MIN_WIDTH = 16  # below this a rule id folds into too many pieces: the table grows wider than the terminal


def pct(value: float | None, decimals: int = 2) -> str:
    """A share as a percentage, or NONE (the terminal summary and the HTML report)."""
    return NONE if value is None else f"{100 * value:.{decimals}f}%"


def _of(part: int | None, whole: int | None) -> str:
    return "" if part is None or whole is None else f" ({part:,} of {whole:,})"


def _table(headers: list[str], rows: list[list[str]], console: Console) -> Table:
    """A table that never cuts a name or a figure short, however narrow the terminal (CI logs, pipes): the figures
    keep their full width (headers break where they have a newline), the first column folds onto more lines; in a
    terminal too narrow even for that, the table is wider than the terminal."""
    table = Table()
    table.add_column(headers[0], overflow="fold")
    narrowest = min(max([len(row[0]) for row in rows] + [len(headers[0])]), NAME_MIN_WIDTH)
    for i, header in enumerate(headers[1:], start=1):
        widest = max([len(row[i]) for row in rows] + [len(line) for line in header.splitlines()])
        table.add_column(header, justify="right", no_wrap=True, min_width=widest)
        narrowest += widest
    narrowest += 3 * len(headers) + 1  # a space either side of each cell, and the borders
    if console.width < narrowest:
        table.width = narrowest
    for row in rows:
        table.add_row(*row)
    return table


def _headline(report: dict, console: Console) -> None:
    """The figures docs/quality.md is built on."""
    console.print(
        "victims stopped at their first fraudulent transfer: "
        f"[bold]{pct(report.get('victims_stopped_at_first_transfer_share'), 1)}[/]"
        f"{_of(report.get('victims_stopped_at_first_transfer'), report.get('victims'))}"
    )
    # the share is small (the target is at most 0.1 %): three decimals tell two rulesets apart
    console.print(
        f"honest payments held or blocked: [bold]{pct(report.get('legit_intercepted_share'), 3)}[/]"
        f"{_of(report.get('legit_intercepted'), report.get('legit_transactions'))}"
    )
    per_day = report.get("alerts_per_day")
    alerts = sum(n for action, n in report["actions"].items() if action != "allow")
    console.print(
        f"alerts per day (review, hold, block): [bold]{NONE if per_day is None else f'{per_day:,.1f}'}[/]"
        f" ({alerts:,} alerts)"
    )


def print_report(report: dict, console: Console) -> None:
    actions = ", ".join(f"{a} {n:,}" for a, n in report["actions"].items())
    console.print(
        f"[bold]{report['transactions']:,}[/] transactions decided ({actions}); "
        f"{report['dead_letters']:,} dead letters; ruleset {report['ruleset']}"
    )
    labelled = bool(report["labelled"])
    if labelled:
        console.print(
            f"fraud: {report['fraud_transactions']:,} transactions, {report['fraud_amount']:,.2f} in amount; "
            f"intercepted (hold+block) {report['fraud_amount_intercepted']:,.2f} "
            f"= [bold]{pct(report['fraud_amount_intercepted_share'])}[/]"
        )
        _headline(report, console)
        levels = [
            [
                level,
                f"{q['flagged']:,}",
                pct(q["recall"]),
                pct(q["precision"]),
                pct(q["false_positive_rate"], 3),
                NONE if q["false_positives_per_10k"] is None else f"{q['false_positives_per_10k']:.1f}",
            ]
            for level, q in report["at_or_above"].items()
        ]
        headers = ["at or above", "flagged", "recall", "precision", "false-positive\nrate", "FP per\n10k"]
        console.print(_table(headers, levels, console), crop=False)
    holds = report.get("holds")
    if holds and holds["opened"]:
        outcomes = ", ".join(f"{k} {n:,}" for k, n in holds["outcomes"].items()) or "none closed"
        console.print(f"holds: {holds['opened']:,} opened; {outcomes}")
        if labelled:
            console.print(
                f"  fraud held {holds['fraud_amount_held']:,.2f}: blocked after the call "
                f"{holds['fraud_amount_blocked_after_hold']:,.2f} "
                f"([bold]{pct(holds['fraud_held_amount_saved_share'])}[/] saved by holds), released "
                f"{holds['fraud_amount_released_after_hold']:,.2f}; honest customers held {holds['legit_held']:,}, "
                f"blocked after the call {holds['legit_blocked_after_hold']:,}"
            )
            console.print(
                f"fraud amount finally stopped (blocked at once or after a hold): {report['fraud_amount_stopped']:,.2f}"
                f" = [bold]{pct(report['fraud_amount_stopped_share'])}[/]"
            )
    for title, rules in (("rules", report["rules"]), ("shadow rules", report["shadow_rules"])):
        if not rules:
            continue
        rows = [
            [
                rule,
                f"{q['hits']:,}",
                # without labels every hit would count as a legitimate one: nothing is known either way
                f"{q['fraud_hits']:,}" if labelled else NONE,
                f"{q['legit_hits']:,}" if labelled else NONE,
                pct(q["precision"]) if labelled else NONE,
                pct(q["recall"]) if labelled else NONE,
                f"{q['fraud_amount']:,.2f}" if labelled else NONE,
            ]
            for rule, q in rules.items()
        ]
        headers = [title, "hits", "fraud\nhits", "legit\nhits", "precision", "recall", "fraud\namount"]
        console.print(_table(headers, rows, console), crop=False)
