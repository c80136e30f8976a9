"""Replay JSON-lines files through the worker's own pipeline (no broker) and measure the decisions.

The replay uses `TransactionPipeline` exactly as the worker does: same decoder, feature engine, kernel
and encoder, in batches of the same size. Calls are applied before the transactions: call features only look
at calls that started before the transaction, so knowing later calls changes nothing (as in the worker,
which catches up on the calls topic before it scores).

Holds run on event time here: a hold opened by a transfer at time t expires at t + its minutes. Verifications
(from a file, or answered by the simulated call centre) are interleaved with the transactions by event time;
when the history ends, holds still open reach their deadline and their default applies.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from streams.errors import EventError
from streams.events import (
    Verification,
    decode_call,
    decode_label,
    decode_transaction,
    decode_verification,
    is_bank_customer,
    parse_time,
)
from streams.lifecycle.holds import Hold
from streams.outputs import RawRecord, encode_verification
from streams.pipeline import BatchOutcome, TransactionPipeline
from streams.quality import TxnContext
from streams.simulator.callcentre import CallCentre

END_OF_HISTORY_MS = 2**62


@dataclass
class Summary:
    transactions: int = 0
    dead_letters: int = 0
    holds_opened: int = 0
    verifications: int = 0


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield number, line.rstrip(b"\r\n")


def load_calls(pipeline: TransactionPipeline, path: Path) -> list[str]:
    """Apply a calls file to the engine; returns the errors of lines that failed (file:line: reason)."""
    errors = []
    for number, line in read_lines(path):
        try:
            pipeline.engine.add_call(decode_call(line))
        except EventError as error:
            errors.append(f"{path}:{number}: {error}")
    return errors


@dataclass(frozen=True, slots=True)
class Truth:
    verdict: str
    role: str | None = None
    typology: str | None = None  # an extra field the simulator writes; bank labels may carry it too


def read_truth(path: Path) -> tuple[dict[str, Truth], list[str]]:
    """txn_id -> what the labels say of it (account-level labels do not label a transaction), and the errors of
    lines that failed (file:line: reason), which label nothing."""
    truth, errors = _read_truth(path)
    return truth, [f"{where}: {error}" for where, error in errors]


def load_truth(path: Path) -> dict[str, Truth]:
    """`read_truth` for a labels file that must be valid: raises EventError naming the first bad line."""
    truth, errors = _read_truth(path)
    if errors:
        where, error = errors[0]
        raise EventError("", f"{where}: {error}", error.reason_class)
    return truth


def _read_truth(path: Path) -> tuple[dict[str, Truth], list[tuple[str, EventError]]]:
    truth = {}
    errors = []
    for number, line in read_lines(path):
        try:
            label = decode_label(line)
        except EventError as error:
            errors.append((f"{path}:{number}", error))
            continue
        if label.txn_id and label.verdict in ("fraud", "legit"):
            typology = orjson.loads(line).get("typology")
            truth[label.txn_id] = Truth(label.verdict, label.role, typology if isinstance(typology, str) else None)
    return truth, errors


def transaction_context(path: Path, truth: dict[str, Truth]) -> dict[str, TxnContext]:
    """Payer and event time of every parseable transaction, for victim- and typology-level figures."""
    context = {}
    for _, line in read_lines(path):
        try:
            txn = decode_transaction(line)
        except EventError:
            continue
        label = truth.get(txn.txn_id)
        context[txn.txn_id] = TxnContext(
            txn.payer_account,
            txn.ts_ms,
            victim=label is not None and label.verdict == "fraud" and label.role == "victim",
            typology=label.typology if label else None,
        )
    return context


def bank_customers(path: Path) -> set[str]:
    """The bank's own accounts as a transactions file shows them (`is_bank_customer`)."""
    customers = set()
    for _, line in read_lines(path):
        try:
            txn = decode_transaction(line)
        except EventError:
            continue
        if is_bank_customer(txn.payer_account_opened):
            customers.add(txn.payer_account)
        if is_bank_customer(txn.payee_account_opened):
            customers.add(txn.payee_account)
    return customers


@dataclass
class Verifications:
    """Verifications waiting for their event time: recorded ones from a file, and the call centre's answers.

    The call centre calls the payer of a hold only when the payer is one of the bank's `customers` (None: every
    payer is); a hold on another bank's customer's payment goes unanswered."""

    call_centre: CallCentre | None = None
    truth: dict[str, Truth] = field(default_factory=dict)
    customers: set[str] | None = None
    not_called: int = 0  # holds whose payer is not the bank's customer
    _queue: list[tuple[int, int, bytes]] = field(default_factory=list)  # (ts, sequence, record)

    def add(self, verification: Verification | bytes, ts_ms: int) -> None:
        value = verification if isinstance(verification, bytes) else encode_verification(verification)
        heapq.heappush(self._queue, (ts_ms, len(self._queue), value))

    def calls_about(self, holds: list[Hold]) -> None:
        if self.call_centre is None:
            return
        for hold in holds:
            label = self.truth.get(hold.txn_id)
            customer = self.customers is None or hold.payer in self.customers
            self.not_called += not customer
            answer = self.call_centre.answer(hold, label is not None and label.verdict == "fraud", customer)
            if answer is not None:
                self.add(answer, answer.ts_ms)

    def due(self, until_ms: int, topic: str) -> list[RawRecord]:
        records = []
        while self._queue and self._queue[0][0] <= until_ms:
            ts, sequence, value = heapq.heappop(self._queue)
            records.append(RawRecord(value, topic, 0, sequence, ts))
        return records


def load_verifications(path: Path, into: Verifications) -> list[str]:
    """Queue a verifications file; returns the errors of lines that failed (file:line: reason)."""
    errors = []
    for number, line in read_lines(path):
        try:
            into.add(line, decode_verification(line).ts_ms)
        except EventError as error:
            errors.append(f"{path}:{number}: {error}")
    return errors


def replay(
    pipeline: TransactionPipeline,
    path: Path,
    batch_size: int,
    on_decision: Callable[[bytes], None],
    on_progress: Callable[[int], None] = lambda n: None,
    verifications: Verifications | None = None,
    on_invalid: Callable[[str], None] = lambda where: None,
) -> Summary:
    """Run a transactions file through the pipeline; each `decisions` record (first decisions and hold
    outcomes) is handed to `on_decision`, and each transaction the worker would dead-letter to `on_invalid` as
    "file:line: reason". The pipeline should run holds on event time."""
    summary = Summary()
    pending = verifications or Verifications()
    topic = pipeline.topics.verifications

    def take(outcome: BatchOutcome) -> None:
        summary.dead_letters += len(outcome.dead_letters)
        summary.transactions += len(outcome.transactions) + outcome.redelivered
        summary.holds_opened += len(outcome.holds_opened)
        summary.verifications += sum(outcome.verifications.values())
        pending.calls_about(outcome.holds_opened)
        kinds = iter(outcome.dead_letter_kinds)  # one per dead-letter message, in the same order
        for message in outcome.messages:
            if message.topic == pipeline.topics.decisions:
                on_decision(message.value)
            elif message.topic == pipeline.topics.dead_letters and next(kinds, None) == "transactions":
                on_invalid(_where(message.value))

    def catch_up(until_ms: int) -> None:
        for record in pending.due(until_ms, topic):
            take(pipeline.process([record], now_ms=record.timestamp_ms))
        take(pipeline.expire(until_ms))

    for batch in _batches(read_lines(path), batch_size, str(path)):
        catch_up(min((r.timestamp_ms for r in batch if r.timestamp_ms), default=0))
        take(pipeline.process(batch, now_ms=batch[-1].timestamp_ms))
        on_progress(len(batch))
    catch_up(END_OF_HISTORY_MS)  # the history ends: answers still to come, then every deadline passes
    return summary


def _batches(lines: Iterable[tuple[int, bytes]], size: int, source: str) -> Iterator[list[RawRecord]]:
    batch: list[RawRecord] = []
    for number, line in lines:
        # the record timestamp stands in for "when Kafka got it": the event time when it parses
        batch.append(RawRecord(line, source, 0, number, _event_ms(line)))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _event_ms(line: bytes) -> int:
    try:
        obj = orjson.loads(line)
        return parse_time(obj.get("ts")) if isinstance(obj, dict) else 0
    except (orjson.JSONDecodeError, EventError):
        return 0


def _where(dead_letter: bytes) -> str:
    # a transaction's record names its file as the topic and its line number as the offset (`_batches`)
    record = orjson.loads(dead_letter)
    return f"{record['topic']}:{record['offset']}: {record['reason']}"
