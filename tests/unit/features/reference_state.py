"""Per-account and per-phone state the features are computed from.

An account keeps its recent outgoing and incoming transfers (the last 24 h plus the allowed lateness, sorted
by event time) and a small summary of its whole history. Both directions live on one object because the
fast-in/fast-out signal needs the same account's inflow and outflow together.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

MAX_KNOWN_PAYEES = 256  # remembered payees per payer; beyond this the least recently paid is forgotten
MAX_KNOWN_DEVICES = 16
INFLOW_PERIOD_MS = 10 * DAY_MS  # payee.amount_ratio_to_largest_inflow_30d: largest inflow per 10-day period,
INFLOW_PERIODS = 4  # kept for the last four periods


@dataclass(slots=True)
class Transfer:
    """One transfer as seen from one account: `other` is the payee (outflow) or the payer (inflow)."""

    ts_ms: int
    amount: float
    other: str
    txn_id: str
    new_payee: bool = False  # outflows only: the payee was new for this payer at the time


@dataclass(slots=True)
class Account:
    outflows: list[Transfer] = field(default_factory=list)  # sorted by ts_ms
    inflows: list[Transfer] = field(default_factory=list)  # sorted by ts_ms
    out_count: int = 0  # all-time outgoing transfers, for the running mean
    out_mean: float = 0.0
    last_out_ms: int | None = None  # latest outgoing event time ever seen
    last_activity_ms: int | None = None  # latest event time in either direction
    opened_ms: int | None = None
    # payee -> (first time paid, last time paid, largest amount paid): investment scams escalate to one payee
    known_payees: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    known_devices: dict[str, int] = field(default_factory=dict)  # device -> last time used
    # slot period % INFLOW_PERIODS -> (period, largest inflow in it); a newer period replaces an older one
    largest_inflows: list[tuple[int, float] | None] = field(default_factory=lambda: [None] * INFLOW_PERIODS)

    def idle_since_before(self, horizon_ms: int) -> bool:
        """No transfer in either direction at or after `horizon_ms` (an account with no activity at all, a payee
        re-created by a re-delivered transaction, holds nothing and counts as idle)."""
        return self.last_activity_ms is None or self.last_activity_ms < horizon_ms

    def has_transfer(self, txn_id: str, inflow: bool) -> bool:
        return any(t.txn_id == txn_id for t in (self.inflows if inflow else self.outflows))

    def add_outflow(self, transfer: Transfer) -> None:
        bisect.insort(self.outflows, transfer, key=_ts)
        self.out_count += 1
        self.out_mean += (transfer.amount - self.out_mean) / self.out_count
        self.last_out_ms = _latest(self.last_out_ms, transfer.ts_ms)
        self.last_activity_ms = _latest(self.last_activity_ms, transfer.ts_ms)
        known = self.known_payees.get(transfer.other)
        if known is None:
            self.known_payees[transfer.other] = (transfer.ts_ms, transfer.ts_ms, transfer.amount)
        else:
            first, last, largest = known
            self.known_payees[transfer.other] = (
                min(first, transfer.ts_ms),
                max(last, transfer.ts_ms),
                max(largest, transfer.amount),
            )
        if len(self.known_payees) > MAX_KNOWN_PAYEES:
            del self.known_payees[min(self.known_payees, key=lambda payee: self.known_payees[payee][1])]

    def add_inflow(self, transfer: Transfer) -> None:
        bisect.insort(self.inflows, transfer, key=_ts)
        self.last_activity_ms = _latest(self.last_activity_ms, transfer.ts_ms)
        period = transfer.ts_ms // INFLOW_PERIOD_MS
        slot = period % INFLOW_PERIODS
        kept = self.largest_inflows[slot]
        if kept is not None and kept[0] == period:
            self.largest_inflows[slot] = (period, max(kept[1], transfer.amount))
        elif kept is None or kept[0] < period:
            self.largest_inflows[slot] = (period, transfer.amount)

    def largest_inflow(self, ts_ms: int) -> float | None:
        """The largest inflow kept for the period of ts_ms and the three before it (30 to 40 days back, and
        inflows later than ts_ms in its own period count too); None when there is none."""
        period = ts_ms // INFLOW_PERIOD_MS
        amounts = [a for p, a in filter(None, self.largest_inflows) if period - INFLOW_PERIODS < p <= period]
        return max(amounts) if amounts else None

    def add_device(self, device: str, ts_ms: int) -> None:
        self.known_devices[device] = max(self.known_devices.get(device, 0), ts_ms)
        if len(self.known_devices) > MAX_KNOWN_DEVICES:
            del self.known_devices[min(self.known_devices, key=self.known_devices.__getitem__)]

    def prune(self, before_ms: int) -> None:
        """Forget transfers older than `before_ms` (they can no longer be in any window)."""
        for events in (self.outflows, self.inflows):
            cut = bisect.bisect_left(events, before_ms, key=_ts)
            if cut:
                del events[:cut]


def window(events: list[Transfer], start_ms: int, end_ms: int) -> list[Transfer]:
    """Transfers with start_ms <= ts < end_ms."""
    lo = bisect.bisect_left(events, start_ms, key=_ts)
    hi = bisect.bisect_left(events, end_ms, key=_ts)
    return events[lo:hi]


def _ts(t: Transfer) -> int:
    return t.ts_ms


def _latest(current: int | None, ts_ms: int) -> int:
    return ts_ms if current is None or ts_ms > current else current
