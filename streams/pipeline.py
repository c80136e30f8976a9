"""One batch of raw transaction records in, the messages to produce out. No Kafka, no Faust here.

The Faust agent and `interceptor backtest` both call `TransactionPipeline.process`, so streaming and replay
share one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streams.errors import EventError
from streams.events import Transaction, decode_transaction
from streams.outputs import RawRecord, Verdict, encode_dead_letter, encode_decision


class Scorer(Protocol):
    """Turns a batch of valid transactions into one verdict each, in order."""

    @property
    def version(self) -> str: ...

    def score(self, transactions: Sequence[Transaction], now_ms: int) -> list[Verdict]: ...


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic: str
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class BatchOutcome:
    messages: list[OutMessage] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    received_ms: list[int] = field(default_factory=list)  # Kafka timestamp of each transaction
    dead_letters: list[EventError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Topics:
    decisions: str = "decisions"
    alerts: str = "alerts"
    dead_letters: str = "dead-letters"


class TransactionPipeline:
    def __init__(self, scorer: Scorer, topics: Topics = Topics()) -> None:
        self.scorer = scorer
        self.topics = topics

    def process(self, records: Sequence[RawRecord], now_ms: int) -> BatchOutcome:
        out = BatchOutcome()
        received = out.received_ms
        for record in records:
            try:
                txn = decode_transaction(record.value)  # type: ignore[arg-type]
            except EventError as error:
                out.dead_letters.append(error)
                out.messages.append(
                    OutMessage(self.topics.dead_letters, record.key, encode_dead_letter(record, error, now_ms))
                )
                continue
            out.transactions.append(txn)
            received.append(record.timestamp_ms)
        if not out.transactions:
            return out
        out.verdicts = self.scorer.score(out.transactions, now_ms)
        version = self.scorer.version
        for txn, verdict, received_ms in zip(out.transactions, out.verdicts, received, strict=True):
            key = txn.payer_account.encode()
            value = encode_decision(txn, verdict, version, received_ms, now_ms)
            out.messages.append(OutMessage(self.topics.decisions, key, value))
            if verdict.action != "allow":
                out.messages.append(OutMessage(self.topics.alerts, key, value))
        return out
