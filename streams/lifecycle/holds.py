"""Timed holds: a `hold` decision delays settlement while the bank calls the customer.

A hold is open until a verification closes it (the customer confirms -> release; the customer reports fraud ->
block; an investigator decides either) or its deadline passes (the ruleset's `holds.on_expiry` applies).
Every close is one `HoldOutcome`, emitted once as a follow-up decision.

Two clocks, on purpose:
- The *deadline* runs on the pipeline's clock: the wall clock in the live worker (a customer gets 30 real
  minutes, whatever the feed's lag) and event time in a backtest (so a replay of history is reproducible).
- The feature `payer.open_holds` uses event time only: a hold covers [transfer ts, ts + minutes), cut short by
  a release at the verification's ts. So a transaction's features do not depend on when a timer ran, and
  streaming and backtest compute the same value.

>>> book = HoldBook()
>>> hold = book.open(Hold("t1", "payer", "payee", 900.0, "CNY", 0, 60_000, 60_000, ("r",), "release", "v1"))
>>> book.open_at("payer", 30_000)
1
>>> [o.cause for o in book.expire(60_000)]
['expired']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from streams.events import Verification

CLOSED_REMEMBERED = 100_000  # closed holds remembered, to tell a late verification from an unknown one


class Cause(StrEnum):
    CONFIRMED = "confirmed"  # the customer confirmed the payment
    FRAUD_REPORTED = "fraud_reported"  # the customer said they were being scammed
    INVESTIGATOR = "investigator"  # an investigator released or blocked it
    EXPIRED = "expired"  # nobody verified it before the deadline


class VerificationResult(StrEnum):
    APPLIED = "applied"  # it closed an open hold
    LATE = "late"  # the hold was already closed (expired, or verified before)
    UNKNOWN = "unknown"  # no hold with that txn_id on this worker


# outcome -> (follow-up action, cause, the customer's/investigator's verdict on the transfer)
_VERIFIED = {
    "confirmed": ("release", Cause.CONFIRMED, "legit"),
    "fraud_reported": ("block", Cause.FRAUD_REPORTED, "fraud"),
    "investigator_release": ("release", Cause.INVESTIGATOR, "legit"),
    "investigator_block": ("block", Cause.INVESTIGATOR, "fraud"),
}


@dataclass(slots=True)
class Hold:
    txn_id: str
    payer: str
    payee: str
    amount: float
    currency: str
    opened_ts_ms: int  # the transfer's event time
    window_end_ms: int  # event time: opened_ts_ms + the hold's minutes (for payer.open_holds)
    deadline_ms: int  # on the pipeline's clock: when the default applies
    rules: tuple[str, ...]  # active rules that fired on the transfer
    on_expiry: str  # release or block
    ruleset: str
    partition: int | None = None  # the transaction's partition: its follow-up goes to the same one


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    hold: Hold
    action: str  # release or block
    cause: Cause
    closed_ms: int  # on the pipeline's clock
    verification_id: str | None = None
    verdict: str | None = None  # fraud/legit as the customer or investigator said; None on expiry


@dataclass(slots=True)
class HoldBook:
    """Open holds by txn_id, plus the event-time spans that `payer.open_holds` counts."""

    holds: dict[str, Hold] = field(default_factory=dict)
    spans: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # payer -> txn_id -> [start, end)
    # txn_id -> action ("elsewhere": closed by another worker), newest last
    closed: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self.holds)

    def open(self, hold: Hold) -> Hold:
        self.holds[hold.txn_id] = hold
        self.spans.setdefault(hold.payer, {})[hold.txn_id] = [hold.opened_ts_ms, hold.window_end_ms]
        return hold

    def keep_partitions(self, owned: Collection[int]) -> int:
        """Forget, without an outcome, the open holds of partitions this worker does not own (any more): their
        owner reopened them from `decisions` and closes them; a second outcome from here could contradict it.
        Holds of unknown partition (older checkpoints) are kept. Returns how many were forgotten."""
        gone = [t for t, h in self.holds.items() if h.partition is not None and h.partition not in owned]
        for txn_id in gone:
            del self.holds[txn_id]
        return len(gone)

    def closed_elsewhere(self, txn_ids: Iterable[str]) -> int:
        """Holds whose outcome another worker wrote to `decisions`: closed here too, without an outcome of
        their own. Returns how many were open here."""
        closed = 0
        for txn_id in txn_ids:
            if self.holds.pop(txn_id, None) is not None:
                closed += 1
            self.closed.setdefault(txn_id, "elsewhere")  # one this worker closed keeps its action
            if len(self.closed) > CLOSED_REMEMBERED:
                self.closed.popitem(last=False)
        return closed

    def open_at(self, payer: str, ts_ms: int) -> int:
        """How many of the payer's holds cover event time `ts_ms`."""
        spans = self.spans.get(payer)
        if not spans:
            return 0
        return sum(1 for start, end in spans.values() if start <= ts_ms < end)

    def verify(self, verification: Verification, now_ms: int) -> tuple[VerificationResult, HoldOutcome | None]:
        hold = self.holds.get(verification.txn_id)
        if hold is None:
            known = verification.txn_id in self.closed
            return (VerificationResult.LATE if known else VerificationResult.UNKNOWN), None
        action, cause, verdict = _VERIFIED[verification.outcome]
        if action == "release":
            # the customer is free to pay new payees again from the moment they confirmed
            span = self.spans.get(hold.payer, {}).get(hold.txn_id)
            if span is not None:  # (None: already pruned, no window reaches it any more)
                span[1] = max(span[0], min(span[1], verification.ts_ms))
        return VerificationResult.APPLIED, self._close(
            HoldOutcome(hold, action, cause, now_ms, verification.verification_id, verdict)
        )

    def expire(self, now_ms: int) -> list[HoldOutcome]:
        """Close every hold whose deadline is at or before `now_ms`, oldest deadline first."""
        due = sorted((h for h in self.holds.values() if h.deadline_ms <= now_ms), key=lambda h: h.deadline_ms)
        return [self._close(HoldOutcome(h, h.on_expiry, Cause.EXPIRED, h.deadline_ms)) for h in due]

    def prune(self, before_ts_ms: int) -> None:
        """Forget spans that ended before `before_ts_ms` (event time): no window can reach them any more."""
        for payer in [p for p, spans in self.spans.items() if _drop_ended(spans, before_ts_ms)]:
            del self.spans[payer]

    def _close(self, outcome: HoldOutcome) -> HoldOutcome:
        del self.holds[outcome.hold.txn_id]
        self.closed[outcome.hold.txn_id] = outcome.action
        if len(self.closed) > CLOSED_REMEMBERED:
            self.closed.popitem(last=False)
        return outcome


def _drop_ended(spans: dict[str, list[int]], before_ts_ms: int) -> bool:
    """Drop the ended spans; True when none is left."""
    for txn_id in [t for t, (_, end) in spans.items() if end < before_ts_ms]:
        del spans[txn_id]
    return not spans
