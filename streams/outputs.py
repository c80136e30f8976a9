"""Records the worker writes: decisions (and alerts) and dead letters, encoded as the contract says."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from streams.errors import EventError
from streams.events import Transaction, Verification
from streams.lifecycle.holds import Hold, HoldOutcome

ACTIONS = ("allow", "review", "hold", "block")  # index = severity, as the kernel returns it


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    score: float
    message: str
    features: dict[str, float | str | bool | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the scorer concluded about one transaction."""

    action: str
    score: float
    reasons: tuple[Reason, ...] = ()
    shadow: tuple[str, ...] = ()


class RawRecord(NamedTuple):
    """A message as read from Kafka, independent of the client library (a tuple: one per message, made far
    faster than a frozen dataclass)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int  # the record's Kafka timestamp (when the bank feed produced it)
    key: bytes | None = None


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_decision(
    txn: Transaction,
    verdict: Verdict,
    ruleset: str,
    received_ms: int,
    now_ms: int,
    hold: Hold | None = None,
    decided_at: str | None = None,
) -> bytes:
    """The `decisions` record. latency_ms runs from the record's Kafka timestamp to the decision; a hold
    decision carries the hold's terms, so a worker taking the partition over can keep it open. `decided_at`
    is `iso_utc(now_ms)`, which a batch formats once for all its decisions."""
    return orjson.dumps(
        {
            "kind": "decision",
            "txn_id": txn.txn_id,
            "action": verdict.action,
            "score": verdict.score,
            "reasons": [
                {"rule": r.rule, "score": r.score, "message": r.message, "features": r.features}
                for r in verdict.reasons
            ],
            "shadow": list(verdict.shadow),
            "ruleset": ruleset,
            "amount": txn.amount,
            "currency": txn.currency,
            "decided_at": decided_at or iso_utc(now_ms),
            "latency_ms": max(0, now_ms - received_ms),
            "hold": None
            if hold is None
            else {
                "deadline": hold.deadline_ms,
                "held_at": hold.opened_ts_ms,
                "until": hold.window_end_ms,
                "on_expiry": hold.on_expiry,
                "payee_account": hold.payee,
            },
        }
    )


def encode_decisions(
    transactions: Sequence[Transaction],
    verdicts: Sequence[Verdict],
    ruleset: str,
    received_ms: Sequence[int],
    now_ms: int,
    holds: Mapping[str, Hold],
) -> list[bytes]:
    """`encode_decision` for a batch decided at `now_ms`, byte for byte. A decision without reasons, shadow
    rules or a hold (nearly every one) is filled into a template made once per batch: a dict per decision,
    built and dumped, was an eighth of the worker's time."""
    dumps = orjson.dumps
    decided_at = iso_utc(now_ms)
    plain = (
        b'{"kind":"decision","txn_id":%b,"action":"%b","score":%b,"reasons":[],"shadow":[],"ruleset":'
        + dumps(ruleset).replace(b"%", b"%%")
        + b',"amount":%b,"currency":%b,"decided_at":'
        + dumps(decided_at)
        + b',"latency_ms":%d,"hold":null}'
    )
    out = []
    for txn, verdict, received in zip(transactions, verdicts, received_ms, strict=True):
        if verdict.reasons or verdict.shadow or txn.txn_id in holds:
            out.append(encode_decision(txn, verdict, ruleset, received, now_ms, holds.get(txn.txn_id), decided_at))
        else:
            out.append(
                plain
                % (
                    dumps(txn.txn_id),
                    verdict.action.encode(),
                    dumps(verdict.score),
                    dumps(txn.amount),
                    dumps(txn.currency),
                    max(0, now_ms - received),
                )
            )
    return out


def encode_hold_outcome(outcome: HoldOutcome) -> bytes:
    """The follow-up `decisions` record that closes a hold (kind `hold_outcome`); an expiry is dated at the
    deadline, so writing it again after a restart gives the same bytes."""
    hold = outcome.hold
    return orjson.dumps(
        {
            "kind": "hold_outcome",
            "txn_id": hold.txn_id,
            "action": outcome.action,
            "cause": str(outcome.cause),
            "verification_id": outcome.verification_id,
            "rules": list(hold.rules),
            "ruleset": hold.ruleset,
            "amount": hold.amount,
            "currency": hold.currency,
            "held_at": iso_utc(hold.opened_ts_ms),
            "deadline": iso_utc(hold.deadline_ms),
            "decided_at": iso_utc(outcome.closed_ms),
        }
    )


def encode_mule_report(outcome: HoldOutcome) -> bytes:
    """The `labels` record a fraud report on a hold produces: its payee becomes a mule candidate everywhere."""
    hold = outcome.hold
    how = "the customer reported fraud" if outcome.cause == "fraud_reported" else "an investigator blocked it"
    return orjson.dumps(
        {
            "account": hold.payee,
            "verdict": "suspected",
            "role": "mule",
            "source": "verification",
            "reason": f"received held transfer {hold.txn_id}; {how} (verification {outcome.verification_id})",
        }
    )


def encode_block_report(txn: Transaction, verdict: Verdict) -> bytes:
    """The `labels` record an outright block produces when the ruleset says so (`blocks: {report_payee: true}`):
    the payee of the blocked transfer becomes a mule candidate everywhere, as after a victim's report."""
    rules = ", ".join(r.rule for r in verdict.reasons)
    return orjson.dumps(
        {
            "account": txn.payee_account,
            "verdict": "suspected",
            "role": "mule",
            "source": "block",
            "reason": f"received blocked transfer {txn.txn_id} (rules: {rules})",
        }
    )


def encode_verification(verification: Verification) -> bytes:
    """A `verifications` record (the simulated call centre writes them; a bank's call centre does the same)."""
    return orjson.dumps(
        {
            "verification_id": verification.verification_id,
            "txn_id": verification.txn_id,
            "payer_account": verification.payer_account,
            "outcome": verification.outcome,
            "ts": verification.ts_ms,
            "reason": verification.reason,
        }
    )


def encode_dead_letter(record: RawRecord, error: EventError, now_ms: int) -> bytes:
    return orjson.dumps(
        {
            "original_b64": base64.b64encode(record.value or b"").decode("ascii"),
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": str(error),
            "reason_class": error.reason_class,
            "field": error.field,
            "failed_at": iso_utc(now_ms),
        }
    )
