"""One batch of raw records in, the messages to produce out. No Kafka, no Faust here.

Transactions: decode -> de-duplicate by txn_id -> features (state) -> score the batch in one kernel call ->
open holds -> encode. Verifications (same partitioning, same batch): close holds -> follow-up records.
The Faust agent and `interceptor backtest` both call `TransactionPipeline.process`, so streaming and replay
share one code path.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Literal, NamedTuple, Protocol

import numpy as np
import orjson

from rules.features import REGISTRY
from streams.canary import RecentTraffic
from streams.dedup import DecisionLog, Remembered
from streams.errors import EventError
from streams.events import Label, Transaction, decode_transaction, decode_verification
from streams.features.engine import FeatureEngine
from streams.lifecycle.holds import Hold, HoldOutcome
from streams.outputs import (
    RawRecord,
    Verdict,
    encode_block_report,
    encode_dead_letter,
    encode_decisions,
    encode_hold_outcome,
    encode_mule_report,
)

_OPEN_HOLDS = REGISTRY.column("payer.open_holds")
_CANDIDATE = REGISTRY.column("payee.mule_candidate")
DEFAULT_HOLD_TERMS = (30.0, "release")  # for scorers without a ruleset: minutes, action on expiry


class Scorer(Protocol):
    """Turns a batch of valid transactions and their feature rows into one verdict each, in order."""

    @property
    def version(self) -> str: ...

    def score(self, transactions: Sequence[Transaction], features: np.ndarray) -> list[Verdict]: ...


class OutMessage(NamedTuple):  # a tuple: one or two per transaction, made far faster than a frozen dataclass
    topic: str
    key: bytes | None
    value: bytes
    # decisions and alerts go to the partition number their transaction came from, whatever partitioner the
    # bank's producer used: a worker that takes a partition over finds its decisions in the same partition
    partition: int | None = None


@dataclass(slots=True)
class BatchOutcome:
    messages: list[OutMessage] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)  # newly decided ones only
    verdicts: list[Verdict] = field(default_factory=list)
    received_ms: list[int] = field(default_factory=list)  # Kafka timestamp of each newly decided transaction
    dead_letters: list[EventError] = field(default_factory=list)
    dead_letter_kinds: list[str] = field(default_factory=list)  # transactions or verifications, per dead letter
    redelivered: int = 0  # transactions answered from the decision log
    holds_opened: list[Hold] = field(default_factory=list)
    hold_outcomes: list[HoldOutcome] = field(default_factory=list)
    verifications: Counter[str] = field(default_factory=Counter)  # result (applied, late, unknown) -> count
    feedback: list[tuple[str, str]] = field(default_factory=list)  # (rule, fraud|legit) from verifications
    mule_reports: int = 0  # payees published as mule candidates: fraud reported on a hold, or a block


@dataclass(frozen=True, slots=True)
class Topics:
    decisions: str = "decisions"
    alerts: str = "alerts"
    dead_letters: str = "dead-letters"
    labels: str = "labels"  # where fraud reports on holds, and blocks, publish their payee as a mule candidate
    verifications: str = "verifications"  # input: records read from this topic are verifications


def fingerprint_of(txn: Transaction) -> int:
    """A digest of the transaction's decoded fields (so the same content written differently, "100" or 100.0,
    is the same transaction), the same in every process (Python's hash() of text is not)."""
    return int.from_bytes(hashlib.blake2b(orjson.dumps(tuple(txn)), digest_size=8).digest(), "big")


class TransactionPipeline:
    """`hold_clock` is what hold deadlines run on: "wall" (the live worker) or "event" (a backtest)."""

    def __init__(
        self,
        scorer: Scorer,
        topics: Topics = Topics(),
        engine: FeatureEngine | None = None,
        decision_log: DecisionLog | None = None,
        hold_clock: Literal["wall", "event"] = "wall",
    ) -> None:
        self.scorer = scorer
        self.topics = topics
        self.engine = engine if engine is not None else FeatureEngine()
        self.decision_log = decision_log if decision_log is not None else DecisionLog()  # an empty log is falsy
        self.hold_clock = hold_clock
        self.recent: RecentTraffic | None = None  # feature rows of recent transactions, for the reload guard

    def process(self, records: Sequence[RawRecord], now_ms: int) -> BatchOutcome:
        """Handle a batch in arrival order: runs of transactions are scored together, verifications one by one."""
        out = BatchOutcome()
        for is_verification, run in groupby(records, key=lambda r: r.topic == self.topics.verifications):
            if is_verification:
                self._verifications(list(run), out, now_ms)
            else:
                self._transactions(list(run), out, now_ms)
        self.engine.prune_holds()
        self._forget_expired()
        return out

    def _forget_expired(self) -> None:
        # each at most once a minute or a day of event time; none changes a feature
        self.engine.prune_calls()
        self.engine.prune_idle()

    def expire(self, now_ms: int) -> BatchOutcome:
        """Close the holds whose deadline has passed (`now_ms` on the hold clock); their follow-ups to produce."""
        out = BatchOutcome()
        self._expire(now_ms, out)
        return out

    def label_feedback(self, label: Label) -> list[tuple[str, str]]:
        """(rule, verdict) for each active rule that fired on a transaction this label says was fraud or legit,
        when this worker held or blocked it; empty otherwise."""
        if label.txn_id is None or label.verdict not in ("fraud", "legit"):
            return []
        seen = self.decision_log.get(label.txn_id)
        if seen is None or not seen.alerted:
            return []
        decision = orjson.loads(seen.decision)
        if decision["action"] not in ("hold", "block"):
            return []
        return [(reason["rule"], label.verdict) for reason in decision["reasons"]]

    # --- transactions ------------------------------------------------------------------------------------

    def _transactions(self, records: list[RawRecord], out: BatchOutcome, now_ms: int) -> None:
        pending: dict[str, int] = {}  # txn_id -> fingerprint, for duplicates inside this run
        in_order: list[Transaction] = []  # every valid transaction once, in arrival order, for the state
        new: list[Transaction] = []
        received: list[int] = []
        partitions: list[int] = []
        for record in records:
            try:
                txn = decode_transaction(record.value)  # type: ignore[arg-type]
                fingerprint = fingerprint_of(txn)
                seen = self.decision_log.get(txn.txn_id)
                earlier = seen.fingerprint if seen else pending.get(txn.txn_id)
                if earlier is not None and earlier != fingerprint:
                    raise EventError(
                        "txn_id",
                        f"{txn.txn_id!r} was already decided for a transaction with different content",
                        "duplicate_txn_id",
                    )
            except EventError as error:
                self._dead_letter(record, error, "transactions", out, now_ms)
                continue
            if seen is not None:
                self._repeat(txn, seen, out, record.partition)
                if seen.fingerprint is None:
                    # learnt from the decisions topic: decided by a worker whose state this one may not hold.
                    # The engine records it unless its chains still do; from now on it counts as recorded here
                    in_order.append(txn)
                    self.decision_log.put(txn.txn_id, Remembered(fingerprint, seen.decision, seen.alerted))
                # a decision made here was recorded with it, and the two are checkpointed together. The engine's
                # own check only reaches back as far as the transfers it keeps (a day): after a restart
                # re-reads a backlog, older transfers would count twice in running means and counts
            elif txn.txn_id in pending:
                out.redelivered += 1  # the same transaction twice in one batch: decided once below
            else:
                pending[txn.txn_id] = fingerprint
                new.append(txn)
                received.append(record.timestamp_ms)
                partitions.append(record.partition)
                in_order.append(txn)
        if not in_order:
            return
        rows = self.engine.process(in_order)  # the engine records each txn_id once
        if len(new) == len(in_order):  # nothing repeated: every row is a new transaction's
            self._decide(new, rows, received, partitions, pending, out, now_ms)
        elif new:
            fresh = {t.txn_id for t in new}
            features = np.ascontiguousarray(rows[[t.txn_id in fresh for t in in_order]])
            self._decide(new, features, received, partitions, pending, out, now_ms)

    def record_others(self, records: Sequence[RawRecord]) -> int:
        """Record in the feature state, in order, transactions of partitions other workers decide (read up to
        where they have committed, so each is decided and read once; streams/state_feed.py). Nothing is decided
        or sent; invalid records are skipped (their owner dead-letters them). Returns how many were recorded."""
        txns = []
        for record in records:
            try:
                txns.append(decode_transaction(record.value))  # type: ignore[arg-type]
            except EventError:
                continue
        if txns:
            self.engine.process(txns)
            self._forget_expired()  # a worker deciding nothing (more workers than partitions) sweeps here
        return len(txns)

    def _repeat(self, txn: Transaction, seen: Remembered, out: BatchOutcome, partition: int) -> None:
        key = txn.payer_account.encode()
        out.messages.append(OutMessage(self.topics.decisions, key, seen.decision, partition))
        if seen.alerted:
            out.messages.append(OutMessage(self.topics.alerts, key, seen.decision, partition))
        out.redelivered += 1

    def _decide(
        self,
        transactions: list[Transaction],
        features: np.ndarray,
        received: list[int],
        partitions: list[int],
        fingerprints: dict[str, int],
        out: BatchOutcome,
        now_ms: int,
    ) -> None:
        verdicts = self.scorer.score(transactions, features)
        opened = self._open_holds(transactions, features, verdicts, partitions, out, now_ms)
        if self.recent is not None:
            self.recent.add(features)
        values = encode_decisions(transactions, verdicts, self.scorer.version, received, now_ms, opened)
        alerted = [verdict.action != "allow" for verdict in verdicts]
        messages, decisions, alerts = out.messages, self.topics.decisions, self.topics.alerts
        new = tuple.__new__  # OutMessage(...) without the named tuple's Python-level __new__: one per decision
        for txn, value, partition, alert in zip(transactions, values, partitions, alerted, strict=True):
            key = txn.payer_account.encode()
            messages.append(new(OutMessage, (decisions, key, value, partition)))
            if alert:
                messages.append(OutMessage(alerts, key, value, partition))
        txn_ids = [txn.txn_id for txn in transactions]
        self.decision_log.put_many(txn_ids, map(fingerprints.__getitem__, txn_ids), values, alerted)
        out.transactions.extend(transactions)
        out.verdicts.extend(verdicts)
        out.received_ms.extend(received)

    def _open_holds(
        self,
        transactions: list[Transaction],
        features: np.ndarray,
        verdicts: list[Verdict],
        partitions: list[int],
        out: BatchOutcome,
        now_ms: int,
    ) -> dict[str, Hold]:
        """Open a hold for each `hold` verdict and, when the ruleset says so, report the payee of each `block`
        as a mule candidate, in batch order.

        The batch was featurized before any of its holds and blocks existed, so a later transfer of a payer held
        earlier in the same batch gets its `payer.open_holds` raised, a later transfer to a payee blocked earlier
        in it gets `payee.mule_candidate` set, and either is scored again: the result does not depend on where
        batch boundaries fall (streaming and backtest agree).
        """
        report_blocks = self._blocks_report_payee()
        opened: dict[str, list[Hold]] = {}
        for i, txn in enumerate(transactions):
            rescore = False
            earlier = opened.get(txn.payer_account)
            if earlier:
                extra = sum(1 for h in earlier if h.opened_ts_ms <= txn.ts_ms < h.window_end_ms)
                if extra:
                    features[i, _OPEN_HOLDS] += extra
                    rescore = True
            # a block earlier in this batch made the payee a candidate (in the engine, as the next batch sees it)
            candidate_until = self.engine.mule_candidates.get(txn.payee_account, 0) if report_blocks else 0
            if candidate_until > txn.ts_ms and features[i, _CANDIDATE] != 1.0:
                features[i, _CANDIDATE] = 1.0
                rescore = True
            if rescore:
                verdicts[i] = self.scorer.score(transactions[i : i + 1], features[i : i + 1])[0]
            if verdicts[i].action == "hold":
                hold = self.engine.holds.open(self._hold(txn, verdicts[i], now_ms, partitions[i]))
                opened.setdefault(txn.payer_account, []).append(hold)
                out.holds_opened.append(hold)
            elif verdicts[i].action == "block" and report_blocks:
                self._report_block(txn, verdicts[i], out)
        return {h.txn_id: h for h in out.holds_opened}

    def _blocks_report_payee(self) -> bool:
        ruleset = getattr(self.scorer, "ruleset", None)  # scorers without a ruleset report nothing
        return ruleset is not None and ruleset.blocks.report_payee

    def _report_block(self, txn: Transaction, verdict: Verdict, out: BatchOutcome) -> None:
        # dated at the transfer's event time, so a re-decided transfer (a restart before the checkpoint) gives
        # the same label and the same candidacy: publishing it twice is harmless
        report = encode_block_report(txn, verdict)
        out.messages.append(OutMessage(self.topics.labels, txn.payee_account.encode(), report))
        self.engine.add_label(Label("suspected", account=txn.payee_account, role="mule", source="block"), txn.ts_ms)
        out.mule_reports += 1

    def _hold(self, txn: Transaction, verdict: Verdict, now_ms: int, partition: int) -> Hold:
        rules = tuple(r.rule for r in verdict.reasons)
        terms = getattr(self.scorer, "hold_terms", None)
        minutes, on_expiry = terms(rules) if terms else DEFAULT_HOLD_TERMS
        length_ms = int(minutes * 60_000)
        start = now_ms if self.hold_clock == "wall" else txn.ts_ms
        return Hold(
            txn.txn_id,
            txn.payer_account,
            txn.payee_account,
            txn.amount,
            txn.currency,
            txn.ts_ms,
            txn.ts_ms + length_ms,
            start + length_ms,
            rules,
            on_expiry,
            self.scorer.version,
            partition,
        )

    # --- verifications and expiry ------------------------------------------------------------------------

    def _verifications(self, records: list[RawRecord], out: BatchOutcome, now_ms: int) -> None:
        for record in records:
            try:
                verification = decode_verification(record.value)  # type: ignore[arg-type]
            except EventError as error:
                self._dead_letter(record, error, "verifications", out, now_ms)
                continue
            clock = now_ms if self.hold_clock == "wall" else verification.ts_ms
            self._expire(clock, out)  # a deadline that passed before this answer wins over it
            result, outcome = self.engine.holds.verify(verification, clock)
            out.verifications[result] += 1
            if outcome is not None:
                self._closed(outcome, out, clock)

    def _expire(self, now_ms: int, out: BatchOutcome) -> None:
        for outcome in self.engine.holds.expire(now_ms):
            self._closed(outcome, out, now_ms)

    def _closed(self, outcome: HoldOutcome, out: BatchOutcome, now_ms: int) -> None:
        hold = outcome.hold
        out.hold_outcomes.append(outcome)
        record = encode_hold_outcome(outcome)
        out.messages.append(OutMessage(self.topics.decisions, hold.payer.encode(), record, hold.partition))
        if outcome.verdict is not None:
            out.feedback.extend((rule, outcome.verdict) for rule in hold.rules)
        if outcome.action == "block" and outcome.verdict == "fraud":
            # the payee received money a victim was talked into sending: every worker should know it
            report = encode_mule_report(outcome)
            out.messages.append(OutMessage(self.topics.labels, hold.payee.encode(), report))
            self.engine.add_label(Label("suspected", account=hold.payee, role="mule"), now_ms)
            out.mule_reports += 1

    def _dead_letter(self, record: RawRecord, error: EventError, kind: str, out: BatchOutcome, now_ms: int) -> None:
        out.dead_letters.append(error)
        out.dead_letter_kinds.append(kind)
        out.messages.append(OutMessage(self.topics.dead_letters, record.key, encode_dead_letter(record, error, now_ms)))
