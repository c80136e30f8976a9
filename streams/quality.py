"""Detection quality of a set of decisions against ground truth: both ways, because false positives cost
honest customers.

A transaction is fraud when a label with its txn_id says so; every other transaction counts as legitimate.
"Intercepted" means held or blocked.
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
    labelled: bool = False

    def add(self, decision: dict, verdict: str | None) -> None:
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
        else:
            self.legit_flagged[action] += 1
        for bucket, ids in ((self.rules, [r["rule"] for r in decision["reasons"]]), (self.shadow, decision["shadow"])):
            for rule in ids:
                stats = bucket.setdefault(rule, RuleQuality())
                stats.hits += 1
                stats.fraud_hits += is_fraud
                stats.legit_hits += not is_fraud
                stats.fraud_amount += amount if is_fraud else 0.0

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
            "rules": {r: q.as_dict(self.fraud) for r, q in sorted(self.rules.items())},
            "shadow_rules": {r: q.as_dict(self.fraud) for r, q in sorted(self.shadow.items())},
        }


def measure(decisions: Iterable[dict], truth: dict[str, str]) -> Quality:
    quality = Quality(labelled=bool(truth))
    for decision in decisions:
        quality.add(decision, truth.get(decision["txn_id"]))
    return quality


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else round(numerator / denominator, 6)
