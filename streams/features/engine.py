"""Feature engine: turns a batch of transactions into feature rows (registry column order) and updates state.

Features are computed on event time: a window "in the last hour" of a transaction at time t holds the events
with t - 1h <= ts < t, whatever order they arrived in, as long as they are within the allowed lateness of the
newest event time seen (older state is pruned). A transaction that arrives again (same txn_id, at-least-once
delivery) does not change the state twice.

The per-account work runs in one numba call per batch (streams/features/kernels.py over the columnar state of
streams/features/store.py); the Python here only numbers accounts and hashes ids. Call features (a join with the
few phones that had calls), the mule lists and open holds are dictionary lookups over the batch.

>>> engine = FeatureEngine()
>>> rows = engine.process(transactions)          # doctest: +SKIP
>>> rows[:, REGISTRY.column("payee.new_for_payer")]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from rules.features import CALLER_RISKS, CHANNELS, REGISTRY
from streams.events import Call, Label, Transaction
from streams.features.kernels import DAY_MS, HOUR_MS, KERNEL_FEATURES, NONE, featurize_and_record
from streams.features.store import AccountStore, stable_hash
from streams.lifecycle.holds import HoldBook

MINUTE_MS = 60_000
MAX_KNOWN_PAYEES = 256  # remembered payees per payer; beyond this the least recently paid is forgotten
MAX_KNOWN_DEVICES = 16
RISKY = frozenset(i for i, r in enumerate(CALLER_RISKS) if r != "normal")
_CHANNEL_CODE = {c: float(i) for i, c in enumerate(CHANNELS)}
_COL = {name: REGISTRY.column(name) for name in REGISTRY.names}
_CALL_FLAGS = ("call.active", "call.within_30m", "call.within_120m", "call.risky_within_30m", "call.risky_within_120m")
_KERNEL_COLUMNS = np.array([REGISTRY.column(name) for name in KERNEL_FEATURES], np.int64)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    utc_offset_minutes: int = 480  # the bank's time zone for `hour` and `night` (default UTC+8)
    night_end_hour: int = 6  # night is 00:00 to this hour
    dormant_days: int = 30
    allowed_lateness_ms: int = HOUR_MS
    mule_list_days: int = 90  # how long a confirmed mule stays on the list
    mule_candidate_days: int = 30  # how long a payee a victim reported stays a candidate


@dataclass(slots=True)
class CallRecord:
    call_id: str
    started_ms: int
    ended_ms: int | None  # None while the call is going on
    risk: int  # index in CALLER_RISKS


@dataclass(slots=True)
class Phone:
    calls: dict[str, CallRecord] = field(default_factory=dict)


class FeatureEngine:
    def __init__(self, config: FeatureConfig = FeatureConfig()) -> None:
        self.config = config
        self.store = AccountStore()
        self.phones: dict[str, Phone] = {}
        self.mule_list: dict[str, int] = {}  # account -> listed until (epoch ms)
        self.mule_candidates: dict[str, int] = {}  # account -> reported until (epoch ms)
        self.holds = HoldBook()  # open holds, for payer.open_holds (streams/lifecycle/holds.py)
        self._opened: dict[date, int] = {}  # opening date -> epoch ms (few distinct dates)

    @property
    def watermark_ms(self) -> int:
        """Newest transaction event time seen (calls may lie in its future; they must not prune)."""
        return int(self.store.counters[0])

    # --- inputs other than transactions -----------------------------------------------------------------

    def add_call(self, call: Call) -> None:
        phone = self.phones.setdefault(call.callee_phone, Phone())
        ended = None if call.duration_s is None else call.started_ms + int(call.duration_s * 1000)
        phone.calls[call.call_id] = CallRecord(
            call.call_id, call.started_ms, ended, CALLER_RISKS.index(call.caller_risk)
        )

    def add_label(self, label: Label, now_ms: int) -> str | None:
        """Apply a label to the mule lists; returns the change made (for the audit log), or None."""
        if not label.account:
            return None
        if label.verdict == "fraud" and label.role == "mule":
            self.mule_list[label.account] = now_ms + self.config.mule_list_days * DAY_MS
            return "listed"
        if label.verdict == "suspected" and label.role == "mule":
            self.mule_candidates[label.account] = now_ms + self.config.mule_candidate_days * DAY_MS
            return "candidate"
        if label.verdict == "legit":
            listed = self.mule_list.pop(label.account, None)
            reported = self.mule_candidates.pop(label.account, None)
            return "cleared" if listed is not None or reported is not None else None
        return None

    # --- transactions --------------------------------------------------------------------------------------

    def process(self, transactions: Sequence[Transaction]) -> np.ndarray:
        """Feature rows for the batch, in order; each transaction sees the ones before it in the batch."""
        n = len(transactions)
        rows = np.full((n, len(REGISTRY)), np.nan, dtype=np.float64)
        if n == 0:
            return rows
        c = _COL
        ts = np.array([t.ts_ms for t in transactions], np.int64)
        amount = np.array([t.amount for t in transactions], np.float64)
        rows[:, c["amount"]] = amount
        channels = [t.channel for t in transactions]
        if any(ch is not None for ch in channels):
            rows[:, c["channel"]] = [np.nan if ch is None else _CHANNEL_CODE[ch] for ch in channels]
        hour = ((ts + self.config.utc_offset_minutes * MINUTE_MS) // HOUR_MS) % 24
        rows[:, c["hour"]] = hour
        rows[:, c["night"]] = hour < self.config.night_end_hour

        store = self.store
        payers = [t.payer_account for t in transactions]
        payees = [t.payee_account for t in transactions]
        numbers = store.numbers(payers + payees)
        store.make_room(n)
        featurize_and_record(
            rows,
            _KERNEL_COLUMNS,
            ts,
            amount,
            numbers[:n],
            numbers[n:],
            np.array([NONE if t.device_id is None else stable_hash(t.device_id) for t in transactions], np.int64),
            np.array([self._opened_ms(t.payer_account_opened) for t in transactions], np.int64),
            np.array([self._opened_ms(t.payee_account_opened) for t in transactions], np.int64),
            np.array([stable_hash(t.txn_id) for t in transactions], np.int64),
            store.acc_i,
            store.acc_mean,
            store.acc_inmax,
            store.tr_i,
            store.tr_amount,
            store.tr_free,
            store.kn_i,
            store.kn_largest,
            store.kn_free,
            store.counters,
            store.mark,
            self.config.dormant_days * DAY_MS,
            self.config.allowed_lateness_ms,
            MAX_KNOWN_PAYEES,
            MAX_KNOWN_DEVICES,
        )
        self._lookups(transactions, payers, payees, rows)
        return rows

    def _lookups(
        self, transactions: Sequence[Transaction], payers: list[str], payees: list[str], rows: np.ndarray
    ) -> None:
        """Call features, mule lists and open holds: dictionary lookups, for the rows that can have any."""
        c = _COL
        phones = self.phones
        with_phone = [i for i, txn in enumerate(transactions) if txn.payer_phone is not None]
        # a phone with no call known: every call flag is false (worst risk and duration stay missing)
        rows[with_phone, [[c[name]] for name in _CALL_FLAGS]] = 0.0
        for i in with_phone:
            if transactions[i].payer_phone in phones:
                self._call_features(transactions[i], rows[i])
        ts = [t.ts_ms for t in transactions]
        for column, accounts, table in (
            ("payer.on_mule_list", payers, self.mule_list),
            ("payee.on_mule_list", payees, self.mule_list),
            ("payee.mule_candidate", payees, self.mule_candidates),
        ):
            if table:
                until = [table.get(a) for a in accounts]
                rows[:, c[column]] = [u is not None and u > t for u, t in zip(until, ts, strict=True)]
            else:
                rows[:, c[column]] = 0.0
        holds = self.holds
        if holds.spans:  # spans outlive their holds (a closed hold's window still counts)
            rows[:, c["payer.open_holds"]] = [holds.open_at(a, t) for a, t in zip(payers, ts, strict=True)]
        else:
            rows[:, c["payer.open_holds"]] = 0.0

    def _call_features(self, txn: Transaction, row: np.ndarray) -> None:
        if txn.payer_phone is None:
            return  # no phone, no join: all call features stay missing
        c, t = _COL, txn.ts_ms
        phone = self.phones.get(txn.payer_phone)
        calls = [] if phone is None else [r for r in phone.calls.values() if r.started_ms <= t]
        active = [r for r in calls if r.ended_ms is None or r.ended_ms >= t]
        in_30 = [r for r in calls if r.ended_ms is None or r.ended_ms >= t - 30 * MINUTE_MS]
        in_120 = [r for r in calls if r.ended_ms is None or r.ended_ms >= t - 120 * MINUTE_MS]
        row[c["call.active"]] = float(bool(active))
        row[c["call.within_30m"]] = float(bool(in_30))
        row[c["call.within_120m"]] = float(bool(in_120))
        row[c["call.risky_within_30m"]] = float(any(r.risk in RISKY for r in in_30))
        row[c["call.risky_within_120m"]] = float(any(r.risk in RISKY for r in in_120))
        if in_30:
            row[c["call.worst_risk_30m"]] = max(r.risk for r in in_30)
        if in_120:
            row[c["call.worst_risk_120m"]] = max(r.risk for r in in_120)
            latest = max(in_120, key=lambda r: r.started_ms)
            end = t if latest.ended_ms is None or latest.ended_ms > t else latest.ended_ms
            row[c["call.duration_s"]] = (end - latest.started_ms) / 1000

    def prune_holds(self) -> None:
        """Forget hold spans no transaction within the allowed lateness can fall into."""
        self.holds.prune(self.watermark_ms - self.config.allowed_lateness_ms)

    def _opened_ms(self, day: date | None) -> int:
        if day is None:
            return NONE
        ms = self._opened.get(day)
        if ms is None:
            ms = self._opened[day] = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        return ms
