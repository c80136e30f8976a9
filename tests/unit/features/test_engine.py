"""Each feature family on a crafted sequence, the way a rule author would reason about it."""

from __future__ import annotations

import pickle
from datetime import date

import numpy as np
import pytest

from rules.features import REGISTRY
from streams.events import Call, Label, Transaction
from streams.features.engine import FeatureEngine

T0 = 1_772_325_000_000  # 2026-03-01T00:30:00Z = 08:30 in UTC+8
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def txn(i: int, ts: int, payer: str = "P", payee: str = "Q", amount: float = 100.0, **kw) -> Transaction:
    return Transaction(f"t{i}", ts, payer, payee, amount, **kw)


def col(rows: np.ndarray, name: str) -> list[float]:
    return [None if np.isnan(v) else float(v) for v in rows[:, REGISTRY.column(name)]]


def test_payer_windows_count_the_hour_and_day_before_each_transfer() -> None:
    e = FeatureEngine()
    rows = e.process(
        [
            txn(1, T0, amount=100),
            txn(2, T0 + 30 * MIN, amount=200),
            txn(3, T0 + 2 * HOUR, amount=300),
            txn(4, T0 + 25 * HOUR, amount=400),
        ]
    )
    assert col(rows, "payer.txn_count_1h") == [0, 1, 0, 0]
    assert col(rows, "payer.txn_count_24h") == [0, 1, 2, 1]
    assert col(rows, "payer.amount_sum_24h") == [0, 100, 300, 300]
    assert col(rows, "payer.seconds_since_last_txn") == [None, 1800, 5400, 23 * 3600]
    assert col(rows, "payer.amount_ratio_to_mean") == [None, 2.0, 2.0, 2.0]


def test_out_of_order_events_are_placed_by_event_time() -> None:
    e = FeatureEngine()
    e.process([txn(1, T0 + 50 * MIN), txn(2, T0 + 55 * MIN)])
    late = e.process([txn(3, T0 + 10 * MIN)])  # arrives last, happened first
    assert col(late, "payer.txn_count_1h") == [0]  # the other two are after it
    after = e.process([txn(4, T0 + 60 * MIN)])
    assert col(after, "payer.txn_count_1h") == [3]


def test_redelivered_transaction_does_not_count_twice() -> None:
    e = FeatureEngine()
    first = txn(1, T0)
    e.process([first, txn(2, T0 + MIN)])
    e.process([first])  # at-least-once: the same txn_id again
    rows = e.process([txn(3, T0 + 2 * MIN)])
    assert col(rows, "payer.txn_count_1h") == [2]


def test_new_payee_new_device_and_distinct_new_payees() -> None:
    e = FeatureEngine()
    rows = e.process(
        [
            txn(1, T0, payee="Q1", device_id="d1"),
            txn(2, T0 + MIN, payee="Q1", device_id="d1"),
            txn(3, T0 + 2 * MIN, payee="Q2", device_id="d2"),
            txn(4, T0 + 3 * MIN, payee="Q3"),
        ]
    )
    assert col(rows, "payee.new_for_payer") == [1, 0, 1, 1]
    assert col(rows, "payer.new_device") == [1, 0, 1, None]
    assert col(rows, "payer.new_payees_24h") == [0, 1, 1, 2]


def test_hour_night_and_account_age_in_the_bank_time_zone() -> None:
    e = FeatureEngine()
    rows = e.process(
        [
            txn(1, T0, payer_account_opened=date(2026, 2, 28), payee_account_opened=date(2026, 2, 1)),
            txn(2, T0 + 17 * HOUR),  # 01:30 next day in UTC+8
        ]
    )
    assert col(rows, "hour") == [8, 1]
    assert col(rows, "night") == [0, 1]
    assert col(rows, "payer.account_age_days")[0] == pytest.approx(1 + 30 / 1440)
    assert col(rows, "payee.account_age_days")[1] == pytest.approx(28 + (30 + 17 * 60) / 1440)


def test_dormant_account_reactivated() -> None:
    e = FeatureEngine()
    rows = e.process([txn(1, T0), txn(2, T0 + 5 * DAY), txn(3, T0 + 40 * DAY)])
    assert col(rows, "payer.dormant_reactivated") == [0, 0, 1]


def test_mule_fan_in_then_fast_out() -> None:
    e = FeatureEngine()
    inflows = [txn(i, T0 + i * MIN, payer=f"V{i}", payee="M", amount=10_000) for i in range(5)]
    e.process(inflows)
    # the mule forwards 45,000 of the 50,000 within minutes
    e.process([txn(10, T0 + 6 * MIN, payer="M", payee="M2", amount=45_000)])
    rows = e.process([txn(11, T0 + 7 * MIN, payer="V9", payee="M", amount=10_000)])
    assert col(rows, "payee.distinct_payers_1h") == [5]
    assert col(rows, "payee.inflow_24h") == [50_000]
    assert col(rows, "payee.pass_through_30m") == [0.9]


def test_shop_paid_by_many_but_not_passing_money_on() -> None:
    e = FeatureEngine()
    e.process([txn(i, T0 + i * MIN, payer=f"C{i}", payee="SHOP", amount=30) for i in range(40)])
    e.process([txn(100, T0 + 3 * HOUR, payer="SHOP", payee="SUPPLIER", amount=900)])  # hours later
    rows = e.process([txn(101, T0 + 3 * HOUR + MIN, payer="C99", payee="SHOP", amount=30)])
    assert col(rows, "payee.distinct_payers_24h") == [40]
    assert col(rows, "payee.pass_through_30m") == [0.0]


def test_call_join_on_payer_phone() -> None:
    e = FeatureEngine()
    e.add_call(Call("c1", "+86130", "+852999", T0 - 10 * MIN, "flagged", duration_s=None))  # ongoing
    e.add_call(Call("c2", "+86131", "+86100", T0 - 100 * MIN, "overseas", duration_s=60))  # 99 min ago
    rows = e.process(
        [
            txn(1, T0, payer="A", payer_phone="+86130"),
            txn(2, T0, payer="B", payer_phone="+86131"),
            txn(3, T0, payer="C", payer_phone="+86132"),
            txn(4, T0, payer="D"),
        ]
    )
    assert col(rows, "call.active") == [1, 0, 0, None]
    assert col(rows, "call.risky_within_30m") == [1, 0, 0, None]
    assert col(rows, "call.risky_within_120m") == [1, 1, 0, None]
    assert col(rows, "call.worst_risk_30m") == [REGISTRY.get("call.worst_risk_30m").encode("flagged"), None, None, None]
    assert col(rows, "call.duration_s") == [600, 60, None, None]


def test_mule_list_from_labels_with_expiry() -> None:
    e = FeatureEngine()
    e.add_label(Label("fraud", account="M", role="mule"), now_ms=T0)
    rows = e.process([txn(1, T0 + DAY, payee="M"), txn(2, T0 + 91 * DAY, payee="M")])
    assert col(rows, "payee.on_mule_list") == [1, 0]


def test_money_passed_straight_on_by_the_payer() -> None:
    e = FeatureEngine()
    e.process(
        [txn(1, T0, payer="V1", payee="M", amount=8_000), txn(2, T0 + 2 * MIN, payer="V2", payee="M", amount=2_000)]
    )
    rows = e.process(
        [
            txn(3, T0 + 10 * MIN, payer="M", payee="N", amount=9_000),
            txn(4, T0 + 50 * MIN, payer="M", payee="N", amount=10),
        ]
    )
    assert col(rows, "payer.inflow_30m") == [10_000, 0]
    assert col(rows, "payer.forwarding_share_30m") == [0.9, None]


def test_calls_known_ahead_of_time_do_not_prune_the_windows() -> None:
    # The worker reads the calls topic on start, so it can know calls later than the transactions it replays.
    e = FeatureEngine()
    e.add_call(Call("late", "+86130", "+852", T0 + 6 * DAY, "normal", duration_s=60))
    e.process([txn(1, T0, payee="M", payer="A"), txn(2, T0 + MIN, payee="M", payer="B")])
    rows = e.process([txn(3, T0 + 2 * MIN, payee="M", payer="C")])
    assert col(rows, "payee.distinct_payers_1h") == [2]


def test_a_busy_shop_paying_a_supplier_is_not_pass_through() -> None:
    e = FeatureEngine()
    e.process([txn(i, T0 + i * MIN, payer=f"C{i}", payee="SHOP", amount=40) for i in range(200)])  # a steady stream
    e.process([txn(900, T0 + 190 * MIN, payer="SHOP", payee="SUPPLIER", amount=5_000)])
    rows = e.process([txn(901, T0 + 200 * MIN, payer="C901", payee="SHOP", amount=40)])
    assert col(rows, "payee.pass_through_30m")[0] < 0.2


def test_largest_inflow_of_the_payee_over_the_last_30_days() -> None:
    """An established account that never received more than 300 is suddenly paid 6,000 by a stranger."""
    e = FeatureEngine()
    rows = e.process(
        [
            txn(1, T0, payer="S1", payee="Q", amount=6_000),  # Q never seen: missing
            txn(2, T0 + HOUR, payer="F", payee="R", amount=300),  # R: a friend pays 300
            txn(3, T0 + 2 * HOUR, payer="G", payee="R", amount=200),
            txn(4, T0 + 3 * HOUR, payer="S2", payee="R", amount=6_000),  # 6,000 / 300 = 20
            txn(5, T0 + 4 * HOUR, payer="S3", payee="R", amount=3_000),  # the 6,000 is the largest now
            txn(6, T0 + 5 * HOUR, payer="R", payee="M", amount=8_000),  # R's outflows do not count for R
            txn(7, T0 + 6 * HOUR, payer="M", payee="R", amount=1_000),
        ]
    )
    assert col(rows, "payee.amount_ratio_to_largest_inflow_30d") == [None, None, 200 / 300, 20.0, 0.5, None, 1 / 6]
    # 45 days later the 6,000 has aged out (periods of 10 days: at least 30 days are kept, never more than 40)
    later = e.process([txn(8, T0 + 45 * DAY, payer="S4", payee="R", amount=600)])
    assert col(later, "payee.amount_ratio_to_largest_inflow_30d") == [None]
    again = e.process([txn(9, T0 + 45 * DAY + HOUR, payer="S5", payee="R", amount=1_200)])
    assert col(again, "payee.amount_ratio_to_largest_inflow_30d") == [2.0]


def test_a_running_worker_forgets_calls_no_transaction_can_see_any_more() -> None:
    engine = FeatureEngine()
    engine.add_call(Call("old", "+861", "+44", T0 - 6 * HOUR, "overseas", duration_s=600))
    engine.add_call(Call("recent", "+862", "+44", T0 - HOUR, "overseas", duration_s=600))
    engine.add_call(Call("never-ended", "+863", "+44", T0 - 2 * DAY, "flagged"))
    before = engine.process([txn(1, T0, payer="A", payer_phone="+862")])
    engine.prune_calls()
    assert set(engine.phones) == {"+862"}  # ended over 120 minutes + lateness ago, or open for days: gone
    after = engine.process([txn(2, T0 + 1, payer="B", payer_phone="+862")])
    within = REGISTRY.column("call.risky_within_120m")
    assert before[0, within] == after[0, within] == 1.0


def test_a_collection_account_that_forwarded_is_remembered_for_a_week() -> None:
    e = FeatureEngine()
    # a recruit's first task: two strangers pay R, and R passes 15,000 of the 16,000 on to a new account
    forward = txn(3, T0 + 10 * MIN, payer="R", payee="M", amount=15_000)
    e.process(
        [txn(1, T0, payer="S1", payee="R", amount=8_000), txn(2, T0 + 5 * MIN, payer="S2", payee="R", amount=8_000)]
    )
    rows = e.process([forward, txn(4, T0 + 11 * MIN, payer="S3", payee="R", amount=2_000)])
    assert col(rows, "payee.forwarded_inflow_7d") == [0, 1]  # the later one in the same batch sees the mark
    e.process([forward])  # at-least-once: the forward again marks nothing new
    # the next task, the next day and six days later; after a week R is forgotten
    rows = e.process(
        [
            txn(5, T0 + DAY, payer="S4", payee="R", amount=5_000),
            txn(6, T0 + 7 * DAY + 9 * MIN, payer="S5", payee="R", amount=5_000),
            txn(7, T0 + 7 * DAY + 10 * MIN + 1, payer="S6", payee="R", amount=5_000),
        ]
    )
    assert col(rows, "payee.forwarded_inflow_7d") == [1, 1, 0]
    assert col(rows, "payee.escalated_payers_7d") == [0, 0, 0]


def test_a_shop_paying_its_supplier_or_a_small_forward_leaves_no_mark() -> None:
    e = FeatureEngine()
    e.process([txn(i, T0 + i * MIN, payer=f"C{i}", payee="SHOP", amount=300) for i in range(40)])
    e.process([txn(100, T0 + 45 * MIN, payer="SHOP", payee="SUPPLIER", amount=5_000)])  # 12,000 in, under 60 %
    e.process(
        [txn(101, T0, payer="F", payee="K", amount=4_000), txn(102, T0 + MIN, payer="K", payee="N", amount=3_900)]
    )
    rows = e.process([txn(103, T0 + HOUR, payer="X", payee="SHOP"), txn(104, T0 + HOUR, payer="X", payee="K")])
    assert col(rows, "payee.forwarded_inflow_7d") == [0, 0]


def test_a_payee_whose_payers_escalate_is_remembered_for_a_week() -> None:
    e = FeatureEngine()
    e.process([txn(1, T0, payer="V1", payee="PLAT", amount=3_000)])
    # two days later V1 raises the stake four times: 12,000; a third victim pays PLAT for the first time
    rows = e.process(
        [
            txn(2, T0 + 2 * DAY, payer="V1", payee="PLAT", amount=12_000),
            txn(3, T0 + 3 * DAY, payer="V2", payee="PLAT", amount=4_000),
            txn(4, T0 + 3 * DAY + MIN, payer="V2", payee="PLAT", amount=8_000),  # 2x, but under 10,000: no mark
            txn(5, T0 + 4 * DAY, payer="V1", payee="PLAT", amount=30_000),  # V1 again: still one payer
            txn(6, T0 + 5 * DAY, payer="V3", payee="PLAT", amount=5_000),
            txn(7, T0 + 9 * DAY + 1, payer="V4", payee="PLAT", amount=5_000),  # V1's first mark is a week old
        ]
    )
    assert col(rows, "payee.escalated_payers_7d") == [0, 1, 1, 1, 1, 1]
    later = e.process([txn(8, T0 + 11 * DAY + 1, payer="V5", payee="PLAT", amount=5_000)])
    assert col(later, "payee.escalated_payers_7d") == [0]
    # a payment ten times the largest (a test payment, then the real one) is no escalation
    e.process(
        [txn(9, T0, payer="W", payee="SHOP2", amount=100), txn(10, T0 + HOUR, payer="W", payee="SHOP2", amount=20_000)]
    )
    rows = e.process([txn(11, T0 + 2 * HOUR, payer="Z", payee="SHOP2", amount=5_000)])
    assert col(rows, "payee.escalated_payers_7d") == [0]


def test_the_payee_memory_expires_and_survives_a_checkpoint() -> None:
    e = FeatureEngine()
    e.process([txn(1, T0, payer="S1", payee="R", amount=20_000), txn(2, T0 + MIN, payer="R", payee="M", amount=19_000)])
    restored = pickle.loads(pickle.dumps(e))
    rows = restored.process([txn(3, T0 + DAY, payer="S2", payee="R", amount=2_000)])
    assert col(rows, "payee.forwarded_inflow_7d") == [1]
    # a checkpoint written before the payee memory existed restores with an empty one
    old = FeatureEngine()
    del old.__dict__["memory"]
    assert pickle.loads(pickle.dumps(old)).memory.forwarders == {}
    # a sweep after more than a week (and the allowed lateness) frees the marks, and changes no feature
    restored.process([txn(4, T0 + 9 * DAY, payer="A", payee="B")])
    restored.prune_idle(every_ms=0)
    assert restored.memory.forwarders == {} and restored.memory.escalations == {}
