"""The worker's Prometheus metrics: one object over an injected registry, base units, bounded labels.

No label ever carries an account, phone or txn id. Tests build `Metrics(CollectorRegistry())` and read
values with `registry.get_sample_value(...)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

from rules.ruleset import CompiledRuleset
from streams.errors import REASON_CLASSES, EventError
from streams.events import CHANNELS, Transaction
from streams.outputs import ACTIONS, Verdict
from streams.pipeline import BatchOutcome

# Fine below 10 ms, where a healthy worker lives; coarse above, where an operator only needs "too slow".
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
CHECKPOINT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
UNKNOWN_CHANNEL = "unknown"
INTERCEPTING = frozenset({"hold", "block"})
HOLD_OUTCOMES = (
    ("release", "confirmed"),
    ("release", "investigator"),
    ("release", "expired"),
    ("block", "fraud_reported"),
    ("block", "investigator"),
    ("block", "expired"),
)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.decisions = Counter(
            "interceptor_decisions",
            "Transactions decided, by action and channel.",
            ["action", "channel"],
            registry=registry,
        )
        self.intercepted = Counter(
            "interceptor_intercepted_transactions",
            "Transactions held or blocked, by action and currency.",
            ["action", "currency"],
            registry=registry,
        )
        self.intercepted_amount = Counter(
            "interceptor_intercepted_amount",
            "Amount held or blocked, by action and currency (in that currency's units).",
            ["action", "currency"],
            registry=registry,
        )
        self.rule_intercepted = Counter(
            "interceptor_rule_intercepted_transactions",
            "Held or blocked transactions each active rule fired on (a transaction counts for every rule that fired).",
            ["rule", "action"],
            registry=registry,
        )
        self.rule_intercepted_amount = Counter(
            "interceptor_rule_intercepted_amount",
            "Held or blocked amount each active rule fired on, by currency.",
            ["rule", "currency"],
            registry=registry,
        )
        self.tag_intercepted_amount = Counter(
            "interceptor_typology_intercepted_amount",
            "Held or blocked amount by typology tag of the fired rules (once per transaction and tag).",
            ["tag", "currency"],
            registry=registry,
        )
        self.tag_intercepted = Counter(
            "interceptor_typology_intercepted_transactions",
            "Held or blocked transactions by typology tag of the fired rules.",
            ["tag"],
            registry=registry,
        )
        self.kernel_seconds = Histogram(
            "interceptor_kernel_seconds",
            "Time of one scoring-kernel call over a batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "interceptor_checkpoint_seconds",
            "Time to take one state checkpoint, from reading the state to the file on disk.",
            buckets=CHECKPOINT_BUCKETS,
            registry=registry,
        )
        self.checkpoint_pause_seconds = Histogram(
            "interceptor_checkpoint_pause_seconds",
            "Time decisions stop for one checkpoint (the state read into bytes; the write runs in the background).",
            buckets=CHECKPOINT_BUCKETS,
            registry=registry,
        )
        self.checkpoint_failures = Counter(
            "interceptor_checkpoint_failures",
            "State checkpoints that could not be written (disk full, read-only); offsets are not committed then.",
            registry=registry,
        )
        self.state_feed_lag = Gauge(
            "interceptor_state_feed_lag",
            "Transactions other workers have decided and committed that this worker's feature state does not hold yet.",
            registry=registry,
        )
        self.state_feed_recorded = Counter(
            "interceptor_state_feed_recorded",
            "Transactions of other workers' partitions recorded in this worker's feature state.",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "interceptor_consumer_lag",
            "Messages in the transactions topic not yet read by this worker, by partition.",
            ["partition"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "interceptor_dead_letters",
            "Messages sent to dead-letters, by topic and reason class.",
            ["topic", "reason"],
            registry=registry,
        )
        self.decision_latency = Histogram(
            "interceptor_decision_latency_seconds",
            "From the transaction's Kafka timestamp to its decision handed to the producer (batch work included).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.processing_latency = Histogram(
            "interceptor_batch_processing_seconds",
            "Time the worker spends on one batch: decode, features, scoring, encoding.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "interceptor_batch_size",
            "Transactions per processed batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.rule_hits = Counter(
            "interceptor_rule_hits",
            "Rules that fired, by rule and mode (active or shadow).",
            ["rule", "mode"],
            registry=registry,
        )
        self.ruleset = Info("interceptor_ruleset", "The ruleset in force.", registry=registry)
        self.ruleset_reloads = Counter(
            "interceptor_ruleset_reloads",
            "Ruleset reload attempts by result (success, failure, refused by the reload guard).",
            ["result"],
            registry=registry,
        )
        self.holds_opened = Counter(
            "interceptor_holds_opened", "Holds opened (hold decisions), by currency.", ["currency"], registry=registry
        )
        self.holds_open = Gauge("interceptor_holds_open", "Holds waiting for verification now.", registry=registry)
        self.hold_outcomes = Counter(
            "interceptor_hold_outcomes",
            "Holds closed, by action (release, block) and cause (confirmed, fraud_reported, investigator, expired).",
            ["action", "cause"],
            registry=registry,
        )
        self.hold_outcome_amount = Counter(
            "interceptor_hold_outcome_amount",
            "Amount of closed holds, by action, cause and currency: blocked amounts are money kept from fraud.",
            ["action", "cause", "currency"],
            registry=registry,
        )
        self.verifications = Counter(
            "interceptor_verifications",
            "Verifications read, by result: applied (closed a hold), late (already closed), unknown (no such hold).",
            ["result"],
            registry=registry,
        )
        self.rule_feedback = Counter(
            "interceptor_rule_feedback",
            "Held or blocked transactions later found fraud or legit, per fired rule, by source (label, verification).",
            ["rule", "verdict", "source"],
            registry=registry,
        )
        self.mule_list_changes = Counter(
            "interceptor_mule_list_changes",
            "Changes to the mule lists from labels: listed, candidate, cleared.",
            ["change"],
            registry=registry,
        )
        self.up_since = Gauge(
            "interceptor_start_time_seconds", "Unix time the worker process started.", registry=registry
        )
        self.ready = Gauge(
            "interceptor_ready",
            "1 while the worker decides transactions (/readyz answers 200), else 0.",
            registry=registry,
        )
        ProcessCollector(registry=registry)  # process_resident_memory_bytes and the like, against the memory limit

        # Series that operators alert on exist from the start (at 0), so "no failures yet" is not "no data", and a
        # rate over a burst that came between two scrapes is not lost (a series' first sample has no increase)
        for action in ACTIONS:
            for channel in (*sorted(CHANNELS), UNKNOWN_CHANNEL):
                self.decisions.labels(action, channel)
        for result in ("success", "failure", "refused"):
            self.ruleset_reloads.labels(result)
        for reason in REASON_CLASSES:
            self.dead_letters.labels("transactions", reason)
        for action, cause in HOLD_OUTCOMES:
            self.hold_outcomes.labels(action, cause)
        for result in ("applied", "late", "unknown"):
            self.verifications.labels(result)
        for change in ("listed", "candidate", "cleared"):
            self.mule_list_changes.labels(change)

    def ruleset_loaded(self, ruleset: CompiledRuleset) -> None:
        """The ruleset in force, and its rules' series at 0. A counter series that first appears with its first
        increment shows no increase() for it: without this, a rule's first hit, interception or feedback was
        lost to the panels, and rule precision from feedback stayed empty until a second one came."""
        self.ruleset.info({"version": ruleset.version, "rules": str(len(ruleset.rules)), "source": ruleset.source})
        for rule in ruleset.rules:
            self.rule_hits.labels(rule.id, "shadow" if rule.shadow else "active")
            if rule.shadow:
                continue  # a shadow rule holds and blocks nothing, so it gets no feedback either
            for action in INTERCEPTING:
                self.rule_intercepted.labels(rule.id, action)
            for verdict in ("fraud", "legit"):
                for source in ("label", "verification"):
                    self.rule_feedback.labels(rule.id, verdict, source)

    def observe_batch(
        self,
        transactions: Sequence[Transaction],
        verdicts: Sequence[Verdict],
        dead: Sequence[EventError],
        topic: str,
        received_ms: Sequence[int],
        now_ms: int,
        seconds: float,
        tags: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        """Count one processed batch. Cheap: one label lookup per distinct (action, channel) pair."""
        counts: dict[tuple[str, str], int] = {}
        for txn, verdict in zip(transactions, verdicts, strict=True):
            key = (verdict.action, txn.channel or UNKNOWN_CHANNEL)
            counts[key] = counts.get(key, 0) + 1
        for (action, channel), n in counts.items():
            self.decisions.labels(action, channel).inc(n)
        hits: dict[tuple[str, str], int] = {}
        for verdict in verdicts:
            for reason in verdict.reasons:
                hits[(reason.rule, "active")] = hits.get((reason.rule, "active"), 0) + 1
            for rule in verdict.shadow:
                hits[(rule, "shadow")] = hits.get((rule, "shadow"), 0) + 1
        for (rule, mode), n in hits.items():
            self.rule_hits.labels(rule, mode).inc(n)
        for txn, verdict in zip(transactions, verdicts, strict=True):
            if verdict.action in INTERCEPTING:
                self._intercepted(txn, verdict, tags or {})
        for error in dead:
            self.dead_letters.labels(topic, error.reason_class).inc()
        if received_ms:
            observe_many(self.decision_latency, np.maximum(0, now_ms - np.asarray(received_ms, np.int64)) / 1000)
        if transactions or dead:
            self.batch_size.observe(len(transactions) + len(dead))
            self.processing_latency.observe(seconds)

    def observe_lifecycle(self, outcome: BatchOutcome, holds_open: int) -> None:
        """Count what a batch (or an expiry sweep) did to holds, verifications and rule feedback."""
        for hold in outcome.holds_opened:
            self.holds_opened.labels(hold.currency).inc()
        for closed in outcome.hold_outcomes:
            self.hold_outcomes.labels(closed.action, closed.cause).inc()
            self.hold_outcome_amount.labels(closed.action, closed.cause, closed.hold.currency).inc(closed.hold.amount)
        for result, n in outcome.verifications.items():
            self.verifications.labels(result).inc(n)
        for rule, verdict in outcome.feedback:
            self.rule_feedback.labels(rule, verdict, "verification").inc()
        self.holds_open.set(holds_open)

    def _intercepted(self, txn: Transaction, verdict: Verdict, tags: Mapping[str, tuple[str, ...]]) -> None:
        self.intercepted.labels(verdict.action, txn.currency).inc()
        self.intercepted_amount.labels(verdict.action, txn.currency).inc(txn.amount)
        seen_tags: set[str] = set()
        for reason in verdict.reasons:
            self.rule_intercepted.labels(reason.rule, verdict.action).inc()
            self.rule_intercepted_amount.labels(reason.rule, txn.currency).inc(txn.amount)
            seen_tags.update(tags.get(reason.rule, ()))
        for tag in seen_tags:
            self.tag_intercepted.labels(tag).inc()
            self.tag_intercepted_amount.labels(tag, txn.currency).inc(txn.amount)


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """`histogram.observe(v)` for every v of a batch, one counter step per bucket instead of one call per value.

    prometheus-client has no bulk observe, and one call per decision cost the worker a fifth of its throughput.
    This adds to the histogram's own bucket counters and sum, as `observe` does (an observation goes to the
    first bucket whose upper bound is >= it); tests/unit/test_metrics.py checks it against `observe`."""
    if len(values) == 0:
        return
    bounds = histogram._upper_bounds  # private: see the docstring
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for bucket, n in zip(histogram._buckets, counts.tolist(), strict=True):
        if n:
            bucket.inc(n)
    histogram._sum.inc(float(np.sum(values)))
