"""Detection quality of a set of decisions against ground truth: both ways, because false positives cost
honest customers.

A transaction is fraud when a label with its txn_id says so; every other transaction counts as legitimate.
"Intercepted" means held or blocked. Hold outcomes (follow-up records) say what became of each hold: money
is finally *stopped* when it is blocked at once or blocked when its hold closes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.outputs import ACTIONS

SEVERITY = {a: i for i, a in enumerate(ACTIONS)}
INTERCEPTED = SEVERITY["hold"]


@dataclass
class RuleQuality:
    hits: int = 0
    fraud_hits: int = 0
    legit_hits: int = 0
    fraud_amount: float = 0.0

    def as_dict(self, fraud_total: int) -> dict[str, float | int | None]:
        return {
            "hits": self.hits,
            "fraud_hits": self.fraud_hits,
            "legit_hits": self.legit_hits,
            "precision": _ratio(self.fraud_hits, self.hits),
            "recall": _ratio(self.fraud_hits, fraud_total),
            "fraud_amount": round(self.fraud_amount, 2),
        }


@dataclass
class Quality:
    transactions: int = 0
    actions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    fraud: int = 0
    fraud_amount: float = 0.0
    fraud_flagged: list[int] = field(default_factory=lambda: [0] * len(ACTIONS))  # by lowest action reached
    legit_flagged: list[int] = field(default_factory=lambda: [0] * len(ACTIONS))
    fraud_amount_intercepted: float = 0.0
    rules: dict[str, RuleQuality] = field(default_factory=dict)
    shadow: dict[str, RuleQuality] = field(default_factory=dict)
    typologies: dict[str, list[float]] = field(default_factory=dict)  # typology -> [amount, intercepted, n, caught]
    first_transfer: dict[str, tuple[int, bool]] = field(default_factory=dict)  # victim -> (ts, intercepted)
    scores: list[tuple[float, bool, float]] = field(default_factory=list)  # (score, fraud, amount)
    alerts: int = 0
    span_ms: tuple[int, int] | None = None
    labelled: bool = False
    holds: HoldQuality = field(default_factory=lambda: HoldQuality())
    fraud_amount_blocked: float = 0.0  # blocked at the first decision

    def add_hold_outcome(self, record: dict, verdict: str | None) -> None:
        self.holds.add(record, verdict == "fraud")

    def add(self, decision: dict, verdict: str | None, context: TxnContext | None = None) -> None:
        self.transactions += 1
        action = SEVERITY[decision["action"]]
        self.actions[decision["action"]] += 1
        is_fraud = verdict == "fraud"
        amount = float(decision["amount"])
        if is_fraud:
            self.fraud += 1
            self.fraud_amount += amount
            self.fraud_flagged[action] += 1
            if action >= INTERCEPTED:
                self.fraud_amount_intercepted += amount
            if action == SEVERITY["block"]:
                self.fraud_amount_blocked += amount
        else:
            self.legit_flagged[action] += 1
        self.alerts += action >= SEVERITY["review"]
        self.scores.append((float(decision["score"]), is_fraud, amount))
        if context is not None:
            self._add_context(context, is_fraud, amount, action >= INTERCEPTED)
        for bucket, ids in ((self.rules, [r["rule"] for r in decision["reasons"]]), (self.shadow, decision["shadow"])):
            for rule in ids:
                stats = bucket.setdefault(rule, RuleQuality())
                stats.hits += 1
                stats.fraud_hits += is_fraud
                stats.legit_hits += not is_fraud
                stats.fraud_amount += amount if is_fraud else 0.0

    def _add_context(self, ctx: TxnContext, is_fraud: bool, amount: float, intercepted: bool) -> None:
        lo, hi = self.span_ms or (ctx.ts_ms, ctx.ts_ms)
        self.span_ms = (min(lo, ctx.ts_ms), max(hi, ctx.ts_ms))
        if not is_fraud:
            return
        t = self.typologies.setdefault(ctx.typology or "unknown", [0.0, 0.0, 0, 0])
        t[0] += amount
        t[1] += amount if intercepted else 0.0
        t[2] += 1
        t[3] += intercepted
        if ctx.victim:
            first = self.first_transfer.get(ctx.payer)
            if first is None or ctx.ts_ms < first[0]:
                self.first_transfer[ctx.payer] = (ctx.ts_ms, intercepted)

    def curve(self) -> list[tuple[float, float, float]]:
        """(score threshold, share of fraud amount at or above it, share of legit transactions at or above it)."""
        fraud_total = sum(a for _, f, a in self.scores if f) or 1.0
        legit_total = sum(1 for _, f, _ in self.scores if not f) or 1
        points = []
        fraud_amount = legit = 0.0
        for score, is_fraud, amount in sorted(self.scores, key=lambda x: -x[0]):
            if is_fraud:
                fraud_amount += amount
            else:
                legit += 1
            points.append((score, fraud_amount / fraud_total, legit / legit_total))
        return points

    def report(self) -> dict:
        legit = self.transactions - self.fraud
        levels = {}
        for level in ("review", "hold", "block"):
            at = SEVERITY[level]
            tp = sum(self.fraud_flagged[at:])
            fp = sum(self.legit_flagged[at:])
            levels[level] = {
                "flagged": tp + fp,
                "recall": _ratio(tp, self.fraud),
                "precision": _ratio(tp, tp + fp),
                "false_positive_rate": _ratio(fp, legit),
                "false_positives_per_10k": None if not legit else round(10_000 * fp / legit, 3),
            }
        return {
            "transactions": self.transactions,
            "actions": self.actions,
            "labelled": self.labelled,
            "fraud_transactions": self.fraud,
            "fraud_amount": round(self.fraud_amount, 2),
            "fraud_amount_intercepted": round(self.fraud_amount_intercepted, 2),
            "fraud_amount_intercepted_share": _ratio(self.fraud_amount_intercepted, self.fraud_amount),
            "at_or_above": levels,
            "victims": len(self.first_transfer),
            "victims_stopped_at_first_transfer": sum(hit for _, hit in self.first_transfer.values()),
            "victims_stopped_at_first_transfer_share": _ratio(
                sum(hit for _, hit in self.first_transfer.values()), len(self.first_transfer)
            ),
            "legit_intercepted_share": levels["hold"]["false_positive_rate"],
            "alerts_per_day": None if not self.span_ms else round(self.alerts / _days(self.span_ms), 2),
            "typologies": {
                name: {
                    "fraud_transactions": int(n),
                    "fraud_amount": round(amount, 2),
                    "intercepted_amount_share": _ratio(caught_amount, amount),
                    "intercepted_transactions": int(caught),
                }
                for name, (amount, caught_amount, n, caught) in sorted(self.typologies.items())
            },
            "holds": self.holds.report(self.actions["hold"]),
            "fraud_amount_stopped": round(self.fraud_amount_blocked + self.holds.fraud_amount_blocked, 2),
            "fraud_amount_stopped_share": _ratio(
                self.fraud_amount_blocked + self.holds.fraud_amount_blocked, self.fraud_amount
            ),
            "rules": {r: q.as_dict(self.fraud) for r, q in sorted(self.rules.items())},
            "shadow_rules": {r: q.as_dict(self.fraud) for r, q in sorted(self.shadow.items())},
        }


@dataclass
class HoldQuality:
    """What became of the holds: released or blocked, why, and whose money it was."""

    outcomes: dict[str, int] = field(default_factory=dict)  # "action/cause" -> count
    fraud_held: int = 0
    fraud_amount_held: float = 0.0
    fraud_amount_blocked: float = 0.0  # money saved by holds
    fraud_amount_released: float = 0.0  # a hold that let the scam through
    legit_held: int = 0
    legit_blocked: int = 0

    def add(self, record: dict, fraud: bool) -> None:
        key = f"{record['action']}/{record['cause']}"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
        amount = float(record["amount"])
        blocked = record["action"] == "block"
        if fraud:
            self.fraud_held += 1
            self.fraud_amount_held += amount
            if blocked:
                self.fraud_amount_blocked += amount
            else:
                self.fraud_amount_released += amount
        else:
            self.legit_held += 1
            self.legit_blocked += blocked

    def report(self, opened: int) -> dict:
        closed = sum(self.outcomes.values())
        return {
            "opened": opened,
            "closed": closed,
            "outcomes": dict(sorted(self.outcomes.items())),
            "fraud_held": self.fraud_held,
            "fraud_amount_held": round(self.fraud_amount_held, 2),
            "fraud_amount_blocked_after_hold": round(self.fraud_amount_blocked, 2),
            "fraud_amount_released_after_hold": round(self.fraud_amount_released, 2),
            "fraud_held_amount_saved_share": _ratio(self.fraud_amount_blocked, self.fraud_amount_held),
            "legit_held": self.legit_held,
            "legit_blocked_after_hold": self.legit_blocked,
        }


@dataclass(frozen=True, slots=True)
class TxnContext:
    """What the report needs about a transaction beyond its decision."""

    payer: str
    ts_ms: int
    victim: bool = False  # the payer is labelled a victim of this transaction
    typology: str | None = None


def measure(decisions: Iterable[dict], truth: dict[str, str], context: dict[str, TxnContext] | None = None) -> Quality:
    quality = Quality(labelled=bool(truth))
    context = context or {}
    for decision in decisions:
        if decision.get("kind") == "hold_outcome":
            quality.add_hold_outcome(decision, truth.get(decision["txn_id"]))
        else:
            quality.add(decision, truth.get(decision["txn_id"]), context.get(decision["txn_id"]))
    return quality


def _days(span: tuple[int, int]) -> float:
    return max(1.0, (span[1] - span[0]) / 86_400_000)


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else round(numerator / denominator, 6)
