"""Metrics an operator reads: interception totals by action, rule and typology, never counted twice."""

from __future__ import annotations

from typing import ClassVar

import orjson
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics
from streams.outputs import RawRecord, Reason, Verdict
from streams.pipeline import Topics, TransactionPipeline


class ByAmount:
    version = "t"
    tags: ClassVar[dict[str, tuple[str, ...]]] = {"big": ("impersonation", "mule"), "huge": ("mule",)}

    def score(self, transactions, features):
        out = []
        for t in transactions:
            if t.amount >= 10_000:
                out.append(Verdict("block", 90, (Reason("big", 50, "m"), Reason("huge", 40, "m"))))
            elif t.amount >= 1_000:
                out.append(Verdict("hold", 50, (Reason("big", 50, "m"),)))
            else:
                out.append(Verdict("allow", 0))
        return out


def batch(pipeline: TransactionPipeline, metrics: Metrics, amounts: list[tuple[str, float]]) -> None:
    records = [
        RawRecord(
            orjson.dumps({"txn_id": i, "ts": 1_772_325_000_000, "payer_account": "A", "payee_account": "B", "amount": a}),
            "transactions", 0, n, 1_772_325_000_000,
        )
        for n, (i, a) in enumerate(amounts)
    ]  # fmt: skip
    out = pipeline.process(records, now_ms=1_772_325_000_050)
    metrics.observe_batch(out.transactions, out.verdicts, out.dead_letters, "transactions", out.received_ms,
                          1_772_325_000_050, 0.001, pipeline.scorer.tags)  # fmt: skip


def test_interception_totals_by_action_rule_and_typology_ignore_redelivery() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    pipeline = TransactionPipeline(ByAmount(), Topics())
    batch(pipeline, metrics, [("a", 500), ("b", 2_000), ("c", 20_000)])
    batch(pipeline, metrics, [("b", 2_000), ("c", 20_000)])  # re-delivered: same decisions, not counted again

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("interceptor_decisions_total", action="allow", channel="unknown") == 1
    assert value("interceptor_intercepted_transactions_total", action="hold", currency="CNY") == 1
    assert value("interceptor_intercepted_amount_total", action="block", currency="CNY") == 20_000
    assert value("interceptor_rule_intercepted_amount_total", rule="big", currency="CNY") == 22_000
    assert value("interceptor_rule_intercepted_transactions_total", rule="huge", action="block") == 1
    assert value("interceptor_typology_intercepted_amount_total", tag="mule", currency="CNY") == 22_000
    assert value("interceptor_typology_intercepted_transactions_total", tag="impersonation") == 2
    assert value("interceptor_rule_hits_total", rule="big", mode="active") == 2
    assert value("interceptor_decision_latency_seconds_count") == 3
    assert value("interceptor_decision_latency_seconds_bucket", le="0.05") == 3


def test_dead_letters_are_counted_by_reason_class() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    pipeline = TransactionPipeline(ByAmount(), Topics())
    out = pipeline.process([RawRecord(b"{", "transactions", 0, 0, 0), RawRecord(b"[]", "transactions", 0, 1, 0)], 0)
    metrics.observe_batch(out.transactions, out.verdicts, out.dead_letters, "transactions", out.received_ms, 0, 0.0)
    assert (
        registry.get_sample_value("interceptor_dead_letters_total", {"topic": "transactions", "reason": "invalid_json"})
        == 2
    )


def test_no_label_carries_an_account_phone_or_transaction_id() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    batch(TransactionPipeline(ByAmount(), Topics()), metrics, [("txn-secret", 20_000)])
    labels = {v for family in registry.collect() for s in family.samples for v in s.labels.values()}
    assert labels.isdisjoint({"txn-secret", "A", "B"})
    assert "CNY" in labels  # the labels were collected at all
