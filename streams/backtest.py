"""Replay JSON-lines files through the worker's own pipeline (no broker) and measure the decisions.

The replay uses `TransactionPipeline` exactly as the Faust agent does: same decoder, feature engine, kernel
and encoder, in batches of the same size. Calls are applied before the transactions: call features only look
at calls that started before the transaction, so knowing later calls changes nothing (as in the worker,
which catches up on the calls topic before it scores).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from streams.errors import EventError
from streams.events import decode_call, decode_label, decode_transaction, parse_time
from streams.outputs import RawRecord
from streams.pipeline import TransactionPipeline
from streams.quality import TxnContext


@dataclass
class Summary:
    transactions: int = 0
    dead_letters: int = 0


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


def load_truth(path: Path) -> dict[str, Truth]:
    """txn_id -> what the labels say of it (account-level labels do not label a transaction)."""
    truth = {}
    for _, line in read_lines(path):
        label = decode_label(line)
        if label.txn_id:
            typology = orjson.loads(line).get("typology")
            truth[label.txn_id] = Truth(label.verdict, label.role, typology if isinstance(typology, str) else None)
    return truth


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


def replay(
    pipeline: TransactionPipeline,
    path: Path,
    batch_size: int,
    on_decision: Callable[[bytes], None],
    on_progress: Callable[[int], None] = lambda n: None,
) -> Summary:
    """Run a transactions file through the pipeline; each decision record is handed to `on_decision`."""
    summary = Summary()
    for batch in _batches(read_lines(path), batch_size, str(path)):
        outcome = pipeline.process(batch, now_ms=batch[-1].timestamp_ms)
        summary.dead_letters += len(outcome.dead_letters)
        for message in outcome.messages:
            if message.topic == pipeline.topics.decisions:
                summary.transactions += 1
                on_decision(message.value)
        on_progress(len(batch))
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
