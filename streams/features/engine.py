"""Feature engine: turns a batch of transactions into feature rows (registry column order) and updates state.

Features are computed on event time: a window "in the last hour" of a transaction at time t holds the events
with t - 1h <= ts < t, whatever order they arrived in, as long as they are within the allowed lateness of the
newest event time seen (older state is pruned). A transaction that arrives again (same txn_id, at-least-once
delivery) does not change the state twice.

An account with no transfer in either direction for longer than `idle_expiry_days` (behind the newest event
time, this transaction's included) is forgotten: the next transaction that names it sees an account never seen
(no known payees or devices, no running mean, no opening date unless the transaction gives one, and so not
`payer.dormant_reactivated`). `prune_idle` frees such accounts' memory; when it runs changes no feature.

The per-account work runs in one numba call per batch (streams/features/kernels.py over the columnar state of
streams/features/store.py). The Python here works on whole columns: the batch is transposed, its account, txn
and device ids are hashed in one numba call (streams/features/digest.py) and the accounts numbered in another
(streams/features/table.py). Call features (a join with the few phones that had calls), the mule lists and
open holds are dictionary lookups, only for the accounts and phones of the batch that are in those tables, and
so is the week-long payee memory (`PayeeMemory`: accounts seen forwarding money, payees whose payers escalated).

>>> engine = FeatureEngine()
>>> rows = engine.process(transactions)          # doctest: +SKIP
>>> rows[:, REGISTRY.column("payee.new_for_payer")]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import NamedTuple, TypeVar

import numpy as np

from rules.features import CALLER_RISKS, CHANNELS, REGISTRY
from streams.events import Call, Label, Transaction
from streams.features.digest import digests
from streams.features.kernels import KERNEL_FEATURES, featurize_and_record
from streams.features.layout import DAY_MS, HOUR_MS, INFLOW_PERIOD_MS, INFLOW_PERIODS, NONE
from streams.features.localtime import DEFAULT_TZ, local_hours
from streams.features.store import AccountStore
from streams.lifecycle.holds import HoldBook

MINUTE_MS = 60_000
CALL_LOOKBACK_MS = 120 * MINUTE_MS  # the longest call window a feature reads (call.*_120m)
MAX_KNOWN_PAYEES = 256  # remembered payees per payer; beyond this the least recently paid is forgotten
MAX_KNOWN_DEVICES = 16
MEMORY_MS = 7 * DAY_MS  # how far back the payee memory (payee.*_7d) reaches
RISKY = frozenset(i for i, r in enumerate(CALLER_RISKS) if r != "normal")
_CHANNEL_CODE: dict[str | None, float] = {None: float("nan"), **{c: float(i) for i, c in enumerate(CHANNELS)}}
_V = TypeVar("_V")
_TXN_ID, _TS, _PAYER, _PAYEE, _AMOUNT, _CHANNEL, _PHONE, _DEVICE, _PAYER_OPENED, _PAYEE_OPENED = (
    Transaction._fields.index(name)
    for name in (
        "txn_id",
        "ts_ms",
        "payer_account",
        "payee_account",
        "amount",
        "channel",
        "payer_phone",
        "device_id",
        "payer_account_opened",
        "payee_account_opened",
    )
)
_COL = {name: REGISTRY.column(name) for name in REGISTRY.names}
_CALL_FLAGS = ("call.active", "call.within_30m", "call.within_120m", "call.risky_within_30m", "call.risky_within_120m")
_CALL_FLAG_COLUMNS = np.array([REGISTRY.column(name) for name in _CALL_FLAGS], np.int64)
_KERNEL_COLUMNS = np.array([REGISTRY.column(name) for name in KERNEL_FEATURES], np.int64)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    zone: tzinfo = DEFAULT_TZ  # the bank's time zone for `hour` and `night` (localtime.py)
    night_end_hour: int = 6  # night is 00:00 to this hour
    dormant_days: int = 30
    allowed_lateness_ms: int = HOUR_MS
    mule_list_days: int = 90  # how long a confirmed mule stays on the list
    mule_candidate_days: int = 30  # how long a payee a victim reported (or a blocked transfer paid) stays a candidate
    # An account idle this long is forgotten. Over a year, so that a yearly payment (insurance, tax, a fee)
    # still finds its payee and device known, and far above dormant_days, so that payer.dormant_reactivated
    # fires for accounts idle from a month to 13 months; it must exceed dormant_days and the 40 days the
    # largest-inflow periods reach back (checked below).
    idle_expiry_days: int = 400

    def __post_init__(self) -> None:
        floor = max(self.dormant_days, INFLOW_PERIODS * INFLOW_PERIOD_MS // DAY_MS)
        if self.idle_expiry_days <= floor:
            raise ValueError(
                f"idle_expiry_days must be above dormant_days ({self.dormant_days}) and the "
                f"{INFLOW_PERIODS * INFLOW_PERIOD_MS // DAY_MS} days payee.amount_ratio_to_largest_inflow_30d "
                f"reaches back (dormant accounts must be able to come back, and no inflow still read be lost); "
                f"got {self.idle_expiry_days}"
            )


@dataclass(slots=True)
class CallRecord:
    call_id: str
    started_ms: int
    ended_ms: int | None  # None while the call is going on
    risk: int  # index in CALLER_RISKS


@dataclass(slots=True)
class Phone:
    calls: dict[str, CallRecord] = field(default_factory=dict)


class PayeeMemory:
    """What earlier transfers showed of an account, for a week: the payee features `payee.forwarded_inflow_7d`
    and `payee.escalated_payers_7d`. The day-long windows of the account store forget a collection account
    between a recruit's daily tasks, and an investment platform between its victims, who come days apart.

    A transfer leaves a mark when its own features say so (it forwarded what its payer had just received; it
    escalated a stake), keyed by txn_id, so a re-delivered transaction marks once. A mark counts for the
    transactions after it, up to 7 days after (event time: ts < t <= ts + 7 days). Marks older than the week before the
    allowed lateness are dropped by `prune`, which changes no feature.

    >>> memory = PayeeMemory()
    >>> memory.forwarders["A"] = {"t1": 0}
    >>> memory.forwarded("A", 60_000)
    1
    """

    __slots__ = ("escalations", "forwarders")

    def __init__(self) -> None:
        self.forwarders: dict[str, dict[str, int]] = {}  # account -> txn_id of a forwarding outflow -> ts
        self.escalations: dict[str, dict[str, tuple[int, str]]] = {}  # payee -> txn_id -> (ts, payer)

    def __getstate__(self) -> tuple[dict, dict]:
        return self.forwarders, self.escalations

    def __setstate__(self, state: tuple[dict, dict]) -> None:
        self.forwarders, self.escalations = state

    def forwarded(self, account: str, t: int) -> int:
        marks = self.forwarders.get(account)
        return 0 if not marks else sum(1 for ts in marks.values() if t - MEMORY_MS <= ts < t)

    def escalated_payers(self, account: str, t: int) -> int:
        marks = self.escalations.get(account)
        return 0 if not marks else len({payer for ts, payer in marks.values() if t - MEMORY_MS <= ts < t})

    def prune(self, before_ms: int) -> None:
        """Drop the marks no transaction at or after `before_ms` can count."""
        for table in (self.forwarders, self.escalations):
            for account in list(table):
                marks = table[account]
                for txn_id in [i for i, m in marks.items() if (m if isinstance(m, int) else m[0]) < before_ms]:
                    del marks[txn_id]
                if not marks:
                    del table[account]


def forwards_inflow(row: np.ndarray) -> bool:
    """The transfer of this feature row passes on what its payer just received (a mark of PayeeMemory)."""
    c = _COL
    return bool(
        row[c["payee.new_for_payer"]] == 1.0
        and row[c["amount"]] >= 3000
        and row[c["payer.inflow_30m"]] >= 10_000
        and row[c["payer.forwarding_share_30m"]] >= 0.6
    )


def escalates(row: np.ndarray) -> bool:
    """The transfer of this feature row raises a recent stake with a payee that is no shop (a mark)."""
    c = _COL
    amount = row[c["amount"]]
    return bool(
        row[c["payee.days_since_first_paid"]] <= 14
        and 1.5 <= row[c["payee.amount_ratio_to_largest"]] <= 5
        and row[c["payee.distinct_payers_24h"]] < 10
        and (amount >= 10_000 or (amount >= 5000 and row[c["payer.amount_ratio_to_mean"]] >= 5))
    )


class FeatureEngine:
    _calls_pruned_at: int = NONE  # event time of the last call pruning (a class default: older checkpoints)
    _idle_pruned_at: int = NONE  # watermark of the last prune_idle sweep (likewise)

    def __init__(self, config: FeatureConfig = FeatureConfig()) -> None:
        self.config = config
        self.store = AccountStore()
        self.phones: dict[str, Phone] = {}
        self.mule_list: dict[str, int] = {}  # account -> listed until (epoch ms)
        self.mule_candidates: dict[str, int] = {}  # account -> reported until (epoch ms)
        self.holds = HoldBook()  # open holds, for payer.open_holds (streams/lifecycle/holds.py)
        self.memory = PayeeMemory()  # the week-long payee memory (payee.*_7d)
        self._opened: dict[date | None, int] = {None: NONE}  # opening date -> epoch ms (few distinct dates)

    def __setstate__(self, state: dict) -> None:
        # a checkpoint written before the payee memory existed restores without one: it starts empty
        self.__dict__.update(state)
        self.__dict__.setdefault("memory", PayeeMemory())

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
        # a label never shortens a listing: the same label applied again (a worker reads back what it published,
        # dated by the broker, or a restart publishes it again) leaves the longest
        if label.verdict == "fraud" and label.role == "mule":
            until = now_ms + self.config.mule_list_days * DAY_MS
            self.mule_list[label.account] = max(until, self.mule_list.get(label.account, until))
            return "listed"
        if label.verdict == "suspected" and label.role == "mule":
            until = now_ms + self.config.mule_candidate_days * DAY_MS
            self.mule_candidates[label.account] = max(until, self.mule_candidates.get(label.account, until))
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
        batch = self._columns(transactions, rows)
        account_digests, txn_digests, device_digests = self._digests(batch)
        accounts = self.store.rows(account_digests)
        self._featurize(batch, rows, accounts, txn_digests, device_digests)
        self._lookups(batch, rows)
        self._remember(batch, rows)
        return rows

    # The steps of `process`, apart so that benchmarks/bench_features.py can time each.

    def _columns(self, transactions: Sequence[Transaction], rows: np.ndarray) -> _Batch:
        """The batch as columns (Transaction is a named tuple: zip transposes it in C), and the features that
        need nothing but the transaction."""
        n = len(transactions)
        c = _COL
        fields = list(zip(*transactions, strict=True))
        ts = np.array(fields[_TS], np.int64)
        amount = np.array(fields[_AMOUNT], np.float64)
        rows[:, c["amount"]] = amount
        channels = fields[_CHANNEL]
        if channels.count(None) != n:
            rows[:, c["channel"]] = np.fromiter(map(_CHANNEL_CODE.__getitem__, channels), np.float64, n)
        hour = local_hours(ts, self.config.zone)
        rows[:, c["hour"]] = hour
        rows[:, c["night"]] = hour < self.config.night_end_hour
        return _Batch(
            fields[_TXN_ID],
            ts,
            fields[_PAYER],
            fields[_PAYEE],
            amount,
            fields[_PHONE],
            fields[_DEVICE],
            self._opened_ms(fields[_PAYER_OPENED]),
            self._opened_ms(fields[_PAYEE_OPENED]),
        )

    @staticmethod
    def _digests(batch: _Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Digests of the payers then the payees, of the txn ids, and of the device ids (NONE: no device)."""
        devices = batch.devices
        missing = devices.count(None)
        if missing == len(devices):
            device_digests = np.full(len(devices), NONE, np.int64)
        elif missing == 0:
            device_digests = digests(devices)
        else:
            device_digests = digests([d or "" for d in devices])
            device_digests[np.fromiter((d is None for d in devices), np.bool_, len(devices))] = NONE
        return digests(batch.payers + batch.payees), digests(batch.txn_ids), device_digests

    def _featurize(
        self, batch: _Batch, rows: np.ndarray, accounts: np.ndarray, txn_digests: np.ndarray, devices: np.ndarray
    ) -> None:
        """The per-account features and the state update: one numba call."""
        n = rows.shape[0]
        store = self.store
        store.make_room(n)
        featurize_and_record(
            rows,
            _KERNEL_COLUMNS,
            batch.ts,
            batch.amount,
            accounts[:n],
            accounts[n:],
            devices,
            batch.payer_opened,
            batch.payee_opened,
            txn_digests,
            store.table.keys,
            store.acc,
            store.inf,
            store.tr,
            store.kp,
            store.kd,
            store.counters,
            store.mark,
            self.config.dormant_days * DAY_MS,
            self.config.allowed_lateness_ms,
            self.config.idle_expiry_days * DAY_MS,
            MAX_KNOWN_PAYEES,
            MAX_KNOWN_DEVICES,
        )

    def _lookups(self, batch: _Batch, rows: np.ndarray) -> None:
        """Call features, mule lists and open holds: dictionary lookups, only for the rows that can have any."""
        c = _COL
        n = rows.shape[0]
        phones = batch.phones
        without_phone = phones.count(None)
        if without_phone != n:
            # a phone with no call known: every call flag is false (worst risk and duration stay missing)
            if without_phone == 0:
                rows[:, _CALL_FLAG_COLUMNS] = 0.0
            else:
                with_phone = np.fromiter((p is not None for p in phones), np.bool_, n)
                rows[np.ix_(with_phone, _CALL_FLAG_COLUMNS)] = 0.0
            for i, _ in _hits(phones, self.phones):
                call_features(self.phones, phones[i], int(batch.ts[i]), rows[i])
        payers, payees = set(batch.payers), set(batch.payees)
        for column, accounts, distinct, table in (
            ("payer.on_mule_list", batch.payers, payers, self.mule_list),
            ("payee.on_mule_list", batch.payees, payees, self.mule_list),
            ("payee.mule_candidate", batch.payees, payees, self.mule_candidates),
        ):
            rows[:, c[column]] = 0.0
            for i, until in _hits(accounts, table, distinct):
                if until > batch.ts[i]:
                    rows[i, c[column]] = 1.0
        rows[:, c["payer.open_holds"]] = 0.0
        spans = self.holds.spans  # spans outlive their holds (a closed hold's window still counts)
        for i, _ in _hits(batch.payers, spans, payers):
            rows[i, c["payer.open_holds"]] = self.holds.open_at(batch.payers[i], int(batch.ts[i]))

    def _remember(self, batch: _Batch, rows: np.ndarray) -> None:
        """The payee memory's features, then its marks, row by row in batch order (a transaction sees the marks
        of the ones before it): only the rows whose payee has marks or that leave one are visited."""
        c = _COL
        rows[:, c["payee.forwarded_inflow_7d"]] = 0.0
        rows[:, c["payee.escalated_payers_7d"]] = 0.0
        # vectorised pre-selection of the rows that can leave a mark (NaN compares false, as in the row checks)
        amount = rows[:, c["amount"]]
        with np.errstate(invalid="ignore"):
            maybe = (rows[:, c["payer.inflow_30m"]] >= 10_000) | (
                (rows[:, c["payee.days_since_first_paid"]] <= 14) & (amount >= 5000)
            )
        marking = {int(i) for i in np.flatnonzero(maybe)}
        memory = self.memory
        payees = batch.payees
        forwarders, escalations = memory.forwarders, memory.escalations
        may_mark = {batch.payers[i] for i in marking} | {payees[i] for i in marking}  # marked within the batch
        visit = sorted(
            marking | {i for i, p in enumerate(payees) if p in forwarders or p in escalations or p in may_mark}
        )
        for i in visit:
            t, payee = int(batch.ts[i]), payees[i]
            row = rows[i]
            row[c["payee.forwarded_inflow_7d"]] = memory.forwarded(payee, t)
            row[c["payee.escalated_payers_7d"]] = memory.escalated_payers(payee, t)
            if i not in marking:
                continue
            if forwards_inflow(row):
                memory.forwarders.setdefault(batch.payers[i], {}).setdefault(batch.txn_ids[i], t)
            if escalates(row):
                memory.escalations.setdefault(payee, {}).setdefault(batch.txn_ids[i], (t, batch.payers[i]))

    def prune_holds(self) -> None:
        """Forget hold spans no transaction within the allowed lateness can fall into."""
        self.holds.prune(self.watermark_ms - self.config.allowed_lateness_ms)

    def prune_calls(self) -> None:
        """Forget the calls no transaction within the allowed lateness can see (the longest call window is
        120 minutes), at most once per minute of event time: without it a running worker keeps every call it
        ever read. A call still going on after a day is taken as one whose end was never sent."""
        horizon = self.watermark_ms - self.config.allowed_lateness_ms - CALL_LOOKBACK_MS
        if horizon - self._calls_pruned_at < MINUTE_MS:
            return
        self._calls_pruned_at = horizon
        for number in list(self.phones):
            calls = self.phones[number].calls
            for call_id in [
                i
                for i, r in calls.items()
                if (r.ended_ms if r.ended_ms is not None else r.started_ms + DAY_MS) < horizon
            ]:
                del calls[call_id]
            if not calls:
                del self.phones[number]

    def prune_idle(self, every_ms: int = DAY_MS) -> int:
        """Free the memory of the accounts idle for longer than `idle_expiry_days` and drop the mule-list and
        candidate entries no transaction within the allowed lateness can see, at most once per `every_ms` of
        event time (0: now); returns how many accounts were forgotten. Changes no feature: a transaction naming
        an idle account treats it as new whether it was freed or not (streams/features/kernels.py)."""
        watermark = self.watermark_ms
        if watermark - self._idle_pruned_at < every_ms:
            return 0
        self._idle_pruned_at = watermark
        forgotten = self.store.expire_idle(watermark - self.config.idle_expiry_days * DAY_MS)
        ended = watermark - self.config.allowed_lateness_ms  # a listing counts for a transaction before `until`
        for table in (self.mule_list, self.mule_candidates):
            for account in [a for a, until in table.items() if until <= ended]:
                del table[account]
        self.memory.prune(ended - MEMORY_MS)
        return forgotten

    def _opened_ms(self, days: tuple[date | None, ...]) -> np.ndarray:
        """Opening dates as epoch ms (NONE: not given)."""
        if days.count(None) == len(days):
            return np.full(len(days), NONE, np.int64)
        opened = self._opened
        try:
            return np.fromiter(map(opened.__getitem__, days), np.int64, len(days))
        except KeyError:
            for day in {d for d in days if d not in opened}:
                opened[day] = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)  # type: ignore[union-attr]
            return np.fromiter(map(opened.__getitem__, days), np.int64, len(days))


class _Batch(NamedTuple):
    """A batch of transactions as columns."""

    txn_ids: tuple[str, ...]
    ts: np.ndarray
    payers: tuple[str, ...]
    payees: tuple[str, ...]
    amount: np.ndarray
    phones: tuple[str | None, ...]
    devices: tuple[str | None, ...]
    payer_opened: np.ndarray
    payee_opened: np.ndarray


def _hits(
    keys: tuple[str | None, ...], table: Mapping[str, _V], distinct: set[str | None] | None = None
) -> list[tuple[int, _V]]:
    """(position, value) of each key of the batch (`distinct`: the same keys as a set) that is in `table`.
    The intersection of a dict's keys and a set iterates over the smaller of the two."""
    if not table:
        return []
    present = table.keys() & (set(keys) if distinct is None else distinct)
    if not present:
        return []
    return [(i, table[k]) for i, k in enumerate(keys) if k in present]  # type: ignore[index]


def call_features(phones: dict[str, Phone], payer_phone: str, t: int, row: np.ndarray) -> None:
    """The call features of a transaction at `t` by the payer with this phone, written into `row`."""
    c = _COL
    phone = phones.get(payer_phone)
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


def warm_up() -> None:
    """Compile the engine's numba kernels, or load them from numba's cache, on a throwaway engine: the first
    batch a worker decides, and its first daily sweep, would otherwise wait for them. With a cold cache (a new
    image or install path) that was seconds of latency for the first transactions after a start."""
    engine = FeatureEngine()
    t0 = 1_772_294_400_000
    engine.add_call(Call("warm-up", "+860000", "+10000", t0, "flagged"))
    opened = date(2020, 1, 1)
    engine.process(
        [
            Transaction("warm-up-1", t0 + 1, "a", "b", 10.0, channel="mobile", payer_phone="+860000",
                        device_id="d", payer_account_opened=opened, payee_account_opened=opened),
            Transaction("warm-up-2", t0 + 2, "b", "c", 9.0),
        ]
    )  # fmt: skip
    engine.prune_idle(every_ms=0)
