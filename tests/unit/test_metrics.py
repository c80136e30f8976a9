"""Metrics an operator reads: interception totals by action, rule and typology, never counted twice."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from rules.ruleset import default_ruleset_path, load_ruleset
from streams.metrics import LATENCY_BUCKETS, Metrics, observe_many
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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=50))
def test_a_batch_of_latencies_shows_in_the_histogram_as_one_by_one_observations(values: list[float]) -> None:
    # values right on bucket bounds included: an observation equal to a bound belongs to that bucket
    values = [*values, LATENCY_BUCKETS[len(values) % len(LATENCY_BUCKETS)]]
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    expected = Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=one_by_one)
    for v in values:
        expected.observe(v)
    observe_many(Histogram("h", "h", buckets=LATENCY_BUCKETS, registry=batched), np.array(values))
    for bound in (*LATENCY_BUCKETS, float("inf")):
        le = "+Inf" if bound == float("inf") else str(bound)
        assert batched.get_sample_value("h_bucket", {"le": le}) == one_by_one.get_sample_value("h_bucket", {"le": le})
    assert batched.get_sample_value("h_count") == len(values)
    assert batched.get_sample_value("h_sum") == pytest.approx(one_by_one.get_sample_value("h_sum"))


def test_a_loaded_rulesets_rules_have_their_series_from_the_start() -> None:
    # increase() cannot see the first increment of a series that did not exist before it: without the series at
    # 0, a rule's first feedback would never reach the precision panel
    ruleset = load_ruleset(default_ruleset_path())
    metrics = Metrics(CollectorRegistry())
    metrics.ruleset_loaded(ruleset)
    registry = metrics.registry

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    active = [r.id for r in ruleset.rules if not r.shadow]
    shadow = [r.id for r in ruleset.rules if r.shadow]
    assert active and shadow
    for rule in active:
        for verdict in ("fraud", "legit"):
            for source in ("label", "verification"):
                assert value("interceptor_rule_feedback_total", rule=rule, verdict=verdict, source=source) == 0
        assert value("interceptor_rule_hits_total", rule=rule, mode="active") == 0
        assert value("interceptor_rule_intercepted_transactions_total", rule=rule, action="hold") == 0
    for rule in shadow:
        assert value("interceptor_rule_hits_total", rule=rule, mode="shadow") == 0
        assert value("interceptor_rule_feedback_total", rule=rule, verdict="fraud", source="label") is None
    assert value("interceptor_ruleset_info", version=ruleset.version, rules=str(len(ruleset.rules)),
                 source=ruleset.source) == 1  # fmt: skip


def test_decision_counts_exist_at_zero_before_the_first_decision() -> None:
    # a burst decided between two scrapes would otherwise be born at its final value, and its rate would be 0
    registry = Metrics(CollectorRegistry()).registry
    for action in ("allow", "review", "hold", "block"):
        for channel in ("mobile", "online", "pos", "unknown"):
            assert registry.get_sample_value("interceptor_decisions_total", {"action": action, "channel": channel}) == 0
