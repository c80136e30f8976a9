"""The feature engine as it was in plain Python (one dict of objects per account), kept as the specification
the numba engine (streams/features) must match: tests/unit/features/test_columnar.py compares their feature
rows on random histories.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from rules.features import CHANNELS, REGISTRY
from streams.events import Transaction
from streams.features.engine import FeatureConfig, FeatureEngine, Phone, call_features
from streams.lifecycle.holds import HoldBook
from tests.unit.features.reference_state import DAY_MS, HOUR_MS, Account, Transfer, window

MINUTE_MS = 60_000
_CHANNEL_CODE = {c: float(i) for i, c in enumerate(CHANNELS)}
_COL = {name: REGISTRY.column(name) for name in REGISTRY.names}
DEFAULT_CONFIG = FeatureConfig()


class ReferenceEngine:
    def __init__(self, config: FeatureConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.accounts: dict[str, Account] = {}
        self.phones: dict[str, Phone] = {}
        self.mule_list: dict[str, int] = {}  # account -> listed until (epoch ms)
        self.mule_candidates: dict[str, int] = {}  # account -> reported until (epoch ms)
        self.holds = HoldBook()  # open holds, for payer.open_holds (streams/lifecycle/holds.py)
        # the week-long payee memory: account -> [(ts, txn_id)] of its forwarding outflows; payee -> [(ts, txn_id,
        # payer)] of the escalating transfers it received
        self.forwards: dict[str, list[tuple[int, str]]] = {}
        self.escalations: dict[str, list[tuple[int, str, str]]] = {}
        self.watermark_ms = 0  # newest transaction event time seen (calls may lie in its future; they must not prune)

    # --- inputs other than transactions -----------------------------------------------------------------

    # calls and labels are bookkept the same in both engines: this specification is about transactions
    add_call = FeatureEngine.add_call
    add_label = FeatureEngine.add_label

    def process(self, transactions: Sequence[Transaction]) -> np.ndarray:
        """Feature rows for the batch, in order; each transaction sees the ones before it in the batch."""
        rows = np.full((len(transactions), len(REGISTRY)), np.nan, dtype=np.float64)
        for i, txn in enumerate(transactions):
            self._features(txn, rows[i])
            self._memory(txn, rows[i])
            self._record(txn)
        return rows

    def _features(self, txn: Transaction, row: np.ndarray) -> None:
        t = txn.ts_ms
        c = _COL
        row[c["amount"]] = txn.amount
        if txn.channel is not None:
            row[c["channel"]] = _CHANNEL_CODE[txn.channel]
        local = datetime.fromtimestamp(t / 1000, tz=self.config.zone)
        row[c["hour"]] = local.hour
        row[c["night"]] = float(local.hour < self.config.night_end_hour)

        # an account idle for longer than the expiry is forgotten: this transaction sees it as never seen
        horizon = max(self.watermark_ms, t) - self.config.idle_expiry_days * DAY_MS
        for name in (txn.payer_account, txn.payee_account):
            account = self.accounts.get(name)
            if account is not None and account.idle_since_before(horizon):
                del self.accounts[name]
        payer = self.accounts.get(txn.payer_account)
        payee = self.accounts.get(txn.payee_account)
        self._payer_features(txn, payer, row)
        self._payee_features(txn, payer, payee, row)
        self._call_features(txn, row)
        row[c["payer.on_mule_list"]] = float(self._listed(txn.payer_account, t))
        row[c["payee.on_mule_list"]] = float(self._listed(txn.payee_account, t))
        until = self.mule_candidates.get(txn.payee_account)
        row[c["payee.mule_candidate"]] = float(until is not None and until > t)
        row[c["payer.open_holds"]] = self.holds.open_at(txn.payer_account, t)

    def _payer_features(self, txn: Transaction, payer: Account | None, row: np.ndarray) -> None:
        c, t = _COL, txn.ts_ms
        opened = _opened_ms(txn.payer_account_opened) or (payer.opened_ms if payer else None)
        if opened is not None:
            row[c["payer.account_age_days"]] = (t - opened) / DAY_MS
        if payer is None:
            for name in (
                "payer.txn_count_1h",
                "payer.txn_count_24h",
                "payer.amount_sum_1h",
                "payer.amount_sum_24h",
                "payer.new_payees_24h",
                "payer.dormant_reactivated",
                "payer.inflow_30m",
            ):
                row[c[name]] = 0.0
            row[c["payer.new_device"]] = np.nan if txn.device_id is None else 1.0
            return
        last_hour = window(payer.outflows, t - HOUR_MS, t)
        last_day = window(payer.outflows, t - DAY_MS, t)
        row[c["payer.txn_count_1h"]] = len(last_hour)
        row[c["payer.txn_count_24h"]] = len(last_day)
        row[c["payer.amount_sum_1h"]] = sum(e.amount for e in last_hour)
        row[c["payer.amount_sum_24h"]] = sum(e.amount for e in last_day)
        row[c["payer.new_payees_24h"]] = len({e.other for e in last_day if e.new_payee})
        if payer.out_count:
            row[c["payer.amount_ratio_to_mean"]] = txn.amount / payer.out_mean
        previous = last_day[-1].ts_ms if last_day else payer.last_out_ms
        if previous is not None and previous < t:
            row[c["payer.seconds_since_last_txn"]] = (t - previous) / 1000
        inflow = sum(e.amount for e in window(payer.inflows, t - 30 * MINUTE_MS, t))
        row[c["payer.inflow_30m"]] = inflow
        if inflow > 0:
            row[c["payer.forwarding_share_30m"]] = txn.amount / inflow
        last = payer.last_activity_ms
        row[c["payer.dormant_reactivated"]] = float(last is not None and t - last >= self.config.dormant_days * DAY_MS)
        if txn.device_id is not None:
            row[c["payer.new_device"]] = float(txn.device_id not in payer.known_devices)

    def _payee_features(self, txn: Transaction, payer: Account | None, payee: Account | None, row: np.ndarray) -> None:
        c, t = _COL, txn.ts_ms
        known = payer.known_payees.get(txn.payee_account) if payer is not None else None
        row[c["payee.new_for_payer"]] = float(known is None)
        if known is not None:
            first, _, largest = known
            row[c["payee.days_since_first_paid"]] = max(0, t - first) / DAY_MS
            row[c["payee.amount_ratio_to_largest"]] = txn.amount / largest
        opened = _opened_ms(txn.payee_account_opened) or (payee.opened_ms if payee else None)
        if opened is not None:
            row[c["payee.account_age_days"]] = (t - opened) / DAY_MS
        if payee is None:
            for name in ("payee.distinct_payers_1h", "payee.distinct_payers_24h", "payee.inflow_24h"):
                row[c[name]] = 0.0
            return
        largest_inflow = payee.largest_inflow(t)
        if largest_inflow:
            row[c["payee.amount_ratio_to_largest_inflow_30d"]] = txn.amount / largest_inflow
        in_day = window(payee.inflows, t - DAY_MS, t)
        row[c["payee.distinct_payers_1h"]] = len({e.other for e in in_day if e.ts_ms >= t - HOUR_MS})
        row[c["payee.distinct_payers_24h"]] = len({e.other for e in in_day})
        inflow = sum(e.amount for e in in_day)
        row[c["payee.inflow_24h"]] = inflow
        if inflow > 0:
            row[c["payee.pass_through_30m"]] = min(1.0, _passed_on(payee, in_day, t) / inflow)

    def _memory(self, txn: Transaction, row: np.ndarray) -> None:
        """payee.forwarded_inflow_7d and payee.escalated_payers_7d from the marks of earlier transactions, then
        this transaction's own marks (once per txn_id: a re-delivery marks nothing new)."""
        c, t = _COL, txn.ts_ms
        week = 7 * DAY_MS
        forwards = self.forwards.get(txn.payee_account, [])
        row[c["payee.forwarded_inflow_7d"]] = sum(1 for ts, _ in forwards if t - week <= ts < t)
        escalations = self.escalations.get(txn.payee_account, [])
        row[c["payee.escalated_payers_7d"]] = len({p for ts, _, p in escalations if t - week <= ts < t})
        new, amount = row[c["payee.new_for_payer"]] == 1, txn.amount
        inflow, share = row[c["payer.inflow_30m"]], row[c["payer.forwarding_share_30m"]]
        if new and amount >= 3000 and inflow >= 10_000 and share >= 0.6:
            marks = self.forwards.setdefault(txn.payer_account, [])
            if all(i != txn.txn_id for _, i in marks):
                marks.append((t, txn.txn_id))
        since, ratio = row[c["payee.days_since_first_paid"]], row[c["payee.amount_ratio_to_largest"]]
        usual, payers = row[c["payer.amount_ratio_to_mean"]], row[c["payee.distinct_payers_24h"]]
        if since <= 14 and 1.5 <= ratio <= 5 and payers < 10 and (amount >= 10_000 or (amount >= 5000 and usual >= 5)):
            received = self.escalations.setdefault(txn.payee_account, [])
            if all(i != txn.txn_id for _, i, _ in received):
                received.append((t, txn.txn_id, txn.payer_account))

    def _call_features(self, txn: Transaction, row: np.ndarray) -> None:
        if txn.payer_phone is not None:  # no phone, no join: all call features stay missing
            call_features(self.phones, txn.payer_phone, txn.ts_ms, row)

    def _listed(self, account: str, t: int) -> bool:
        until = self.mule_list.get(account)
        return until is not None and until > t

    def _record(self, txn: Transaction) -> None:
        t = txn.ts_ms
        payer = self.accounts.setdefault(txn.payer_account, Account())
        payee = self.accounts.setdefault(txn.payee_account, Account())
        if payer.has_transfer(txn.txn_id, inflow=False):
            return  # re-delivered: the state already holds it
        new_payee = txn.payee_account not in payer.known_payees
        payer.add_outflow(Transfer(t, txn.amount, txn.payee_account, txn.txn_id, new_payee))
        payee.add_inflow(Transfer(t, txn.amount, txn.payer_account, txn.txn_id))
        if txn.device_id is not None:
            payer.add_device(txn.device_id, t)
        for account, opened in ((payer, txn.payer_account_opened), (payee, txn.payee_account_opened)):
            if opened is not None:
                account.opened_ms = _opened_ms(opened)
        if t > self.watermark_ms:
            self.watermark_ms = t
        horizon = self.watermark_ms - DAY_MS - self.config.allowed_lateness_ms
        payer.prune(horizon)
        payee.prune(horizon)

    def prune_idle(self) -> None:
        """Forget every account idle for longer than the expiry (what the next transaction naming it would do)."""
        horizon = self.watermark_ms - self.config.idle_expiry_days * DAY_MS
        for name in [n for n, a in self.accounts.items() if a.idle_since_before(horizon)]:
            del self.accounts[name]

    def prune_holds(self) -> None:
        """Forget hold spans no transaction within the allowed lateness can fall into."""
        self.holds.prune(self.watermark_ms - self.config.allowed_lateness_ms)


def _passed_on(account: Account, inflows: list[Transfer], t: int) -> float:
    """Money the account sent on within 30 minutes of receiving it, over the inflow window.

    Each outflow counts at most as much as came in during the 30 minutes before it, so a busy shop paying a
    supplier out of a day's takings does not look like money passing straight through.
    """
    if not inflows:
        return 0.0
    sent = 0.0
    for out in window(account.outflows, inflows[0].ts_ms, t):
        received = sum(e.amount for e in window(inflows, out.ts_ms - 30 * MINUTE_MS, out.ts_ms + 1))
        sent += min(out.amount, received)
    return sent


def _opened_ms(day: object) -> int | None:
    if day is None:
        return None
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)  # type: ignore[attr-defined]
