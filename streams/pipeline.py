"""One batch of raw transaction records in, the messages to produce out. No Kafka, no Faust here.

decode -> de-duplicate by txn_id -> features (state) -> score the batch in one kernel call -> encode.
The Faust agent and `interceptor backtest` both call `TransactionPipeline.process`, so streaming and replay
share one code path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from streams.dedup import DecisionLog, Remembered
from streams.errors import EventError
from streams.events import Transaction, decode_transaction
from streams.features.engine import FeatureEngine
from streams.outputs import RawRecord, Verdict, encode_dead_letter, encode_decision


class Scorer(Protocol):
    """Turns a batch of valid transactions and their feature rows into one verdict each, in order."""

    @property
    def version(self) -> str: ...

    def score(self, transactions: Sequence[Transaction], features: np.ndarray) -> list[Verdict]: ...


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class BatchOutcome:
    messages: list[OutMessage] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)  # newly decided ones only
    verdicts: list[Verdict] = field(default_factory=list)
    received_ms: list[int] = field(default_factory=list)  # Kafka timestamp of each newly decided transaction
    features: np.ndarray | None = None
    dead_letters: list[EventError] = field(default_factory=list)
    redelivered: int = 0  # transactions answered from the decision log


@dataclass(frozen=True, slots=True)
class Topics:
    decisions: str = "decisions"
    alerts: str = "alerts"
    dead_letters: str = "dead-letters"


def fingerprint_of(txn: Transaction) -> int:
    """A content digest that is the same in every process (Python's hash() of text is not)."""
    return int.from_bytes(hashlib.blake2b(repr(txn).encode(), digest_size=8).digest(), "big")


class TransactionPipeline:
    def __init__(
        self,
        scorer: Scorer,
        topics: Topics = Topics(),
        engine: FeatureEngine | None = None,
        decision_log: DecisionLog | None = None,
    ) -> None:
        self.scorer = scorer
        self.topics = topics
        self.engine = engine or FeatureEngine()
        self.decision_log = decision_log or DecisionLog()

    def process(self, records: Sequence[RawRecord], now_ms: int) -> BatchOutcome:
        out = BatchOutcome()
        pending: dict[str, int] = {}  # txn_id -> fingerprint, for duplicates inside this batch
        in_order: list[Transaction] = []  # every valid transaction once, in arrival order, for the state
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
                out.dead_letters.append(error)
                out.messages.append(
                    OutMessage(self.topics.dead_letters, record.key, encode_dead_letter(record, error, now_ms))
                )
                continue
            if seen is not None:
                self._repeat(txn, seen, out)
                in_order.append(txn)  # the state may not hold it yet (restored log, lost state); it dedups
            elif txn.txn_id in pending:
                out.redelivered += 1  # the same transaction twice in one batch: decided once below
            else:
                pending[txn.txn_id] = fingerprint
                out.transactions.append(txn)
                out.received_ms.append(record.timestamp_ms)
                in_order.append(txn)
        if in_order:
            rows = self.engine.process(in_order)  # the engine records each txn_id once
            if out.transactions:
                new = {t.txn_id for t in out.transactions}
                out.features = np.ascontiguousarray(rows[[t.txn_id in new for t in in_order]])
                self._decide(out, pending, now_ms)
        return out

    def _repeat(self, txn: Transaction, seen: Remembered, out: BatchOutcome) -> None:
        key = txn.payer_account.encode()
        out.messages.append(OutMessage(self.topics.decisions, key, seen.decision))
        if seen.alerted:
            out.messages.append(OutMessage(self.topics.alerts, key, seen.decision))
        out.redelivered += 1

    def _decide(self, out: BatchOutcome, fingerprints: dict[str, int], now_ms: int) -> None:
        assert out.features is not None
        out.verdicts = self.scorer.score(out.transactions, out.features)
        version = self.scorer.version
        for txn, verdict, received_ms in zip(out.transactions, out.verdicts, out.received_ms, strict=True):
            key = txn.payer_account.encode()
            value = encode_decision(txn, verdict, version, received_ms, now_ms)
            alerted = verdict.action != "allow"
            out.messages.append(OutMessage(self.topics.decisions, key, value))
            if alerted:
                out.messages.append(OutMessage(self.topics.alerts, key, value))
            self.decision_log.put(txn.txn_id, Remembered(fingerprints[txn.txn_id], value, alerted))
