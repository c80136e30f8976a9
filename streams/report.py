"""The human backtest report: an HTML page with the key figures, per-typology and per-rule tables, and the
fraud-amount-intercepted vs false-positive curve as a PNG next to it (matplotlib)."""

from __future__ import annotations

import html
from pathlib import Path

from streams.views import pct


def plot_curve(curve: list[tuple[float, float, float]], path: Path, current_fp: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    if curve:
        ax.plot([100 * c[2] for c in curve], [100 * c[1] for c in curve], color="#c0392b", lw=2,
                label="lowering the score threshold")  # fmt: skip
    if current_fp is not None:
        ax.axvline(100 * current_fp, color="#7f8c8d", ls="--", lw=1, label="held or blocked today")
    ax.axvline(0.1, color="#27ae60", ls=":", lw=1, label="target: at most 0.1% of honest payments")
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(0, 100)
    ax.set_xlabel("honest payments at or above the threshold (%)")
    ax.set_ylabel("fraud amount at or above the threshold (%)")
    ax.set_ylim(0, 101)
    ax.set_title("Fraud money caught vs honest customers bothered")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(report: dict, curve: list[tuple[float, float, float]], path: Path) -> None:
    png = path.with_suffix(".png")
    plot_curve(curve, png, report.get("legit_intercepted_share"))
    key = [
        ["transactions", f"{report['transactions']:,}"],
        ["fraud amount intercepted (hold + block)", pct(report["fraud_amount_intercepted_share"])],
        [
            "victims stopped at their first fraudulent transfer",
            pct(report.get("victims_stopped_at_first_transfer_share")),
        ],
        ["honest payments held or blocked", pct(report.get("legit_intercepted_share"), 3)],  # the target: 0.1 %
        ["alerts per day (review, hold, block)", str(report.get("alerts_per_day"))],
        ["ruleset", report.get("ruleset", "")],
    ]
    levels = [[lvl, q["flagged"], pct(q["recall"]), pct(q["precision"]), pct(q["false_positive_rate"]),
               q["false_positives_per_10k"]] for lvl, q in report["at_or_above"].items()]  # fmt: skip
    typologies = [[name, t["fraud_transactions"], f"{t['fraud_amount']:,.0f}", pct(t["intercepted_amount_share"])]
                  for name, t in report.get("typologies", {}).items()]  # fmt: skip
    holds = report.get("holds") or {"opened": 0, "outcomes": {}}
    hold_rows = [[outcome.replace("/", " — "), n] for outcome, n in holds["outcomes"].items()]
    if holds["opened"] and report.get("labelled"):
        hold_rows += [
            ["fraud money held", f"{holds['fraud_amount_held']:,.0f}"],
            ["… blocked after the call (saved by holds)", f"{holds['fraud_amount_blocked_after_hold']:,.0f}"],
            ["… released", f"{holds['fraud_amount_released_after_hold']:,.0f}"],
            ["honest customers held", holds["legit_held"]],
            ["honest customers blocked after the call", holds["legit_blocked_after_hold"]],
            ["fraud amount finally stopped (at once or after a hold)", pct(report.get("fraud_amount_stopped_share"))],
        ]
    every_rule = {**report["rules"], **{f"{k} (shadow)": v for k, v in report["shadow_rules"].items()}}
    rules = [[rule, q["hits"], q["fraud_hits"], q["legit_hits"], pct(q["precision"]), pct(q["recall"])]
             for rule, q in every_rule.items()]  # fmt: skip
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Backtest report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style>
</head><body><h1>Backtest report</h1>
{_table(["figure", "value"], key)}
<img src="{html.escape(png.name)}" alt="fraud amount intercepted against honest payments bothered">
<h2>At or above each action</h2>
{_table(["action", "flagged", "recall", "precision", "false-positive rate", "FP per 10k"], levels)}
<h2>Holds ({holds["opened"]} opened)</h2>
<p>How holds closed: a verification (the bank's call) released or blocked them, or they expired and the
ruleset's default applied. Without verifications every hold expires.</p>
{_table(["outcome", "holds or amount"], hold_rows)}
<h2>By typology</h2>
{_table(["typology", "fraud transactions", "fraud amount", "amount intercepted"], typologies)}
<h2>By rule</h2>
{_table(["rule", "hits", "fraud hits", "legit hits", "precision", "recall"], rules)}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
