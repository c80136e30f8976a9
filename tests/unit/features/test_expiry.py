"""Idle accounts are forgotten (issue #4): what a rule author sees in the features and an operator in memory."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from rules.features import REGISTRY
from streams.dedup import DecisionLog
from streams.events import Label, Transaction
from streams.features.digest import digest
from streams.features.engine import FeatureConfig, FeatureEngine
from streams.snapshot import load, serialize, write

T0 = 1_772_325_000_000
MIN = 60_000
DAY = 24 * 60 * MIN
IDLE = FeatureConfig().idle_expiry_days * DAY


def txn(i: int, ts: int, payer: str = "P", payee: str = "Q", amount: float = 100.0, **kw) -> Transaction:
    return Transaction(f"t{i}", ts, payer, payee, amount, **kw)


def col(rows: np.ndarray, name: str) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in rows[:, REGISTRY.column(name)]]


def test_an_account_idle_longer_than_the_expiry_is_forgotten_and_comes_back_as_new() -> None:
    e = FeatureEngine()
    e.process(
        [
            txn(1, T0, device_id="d1", payer_account_opened=date(2020, 1, 1)),
            txn(2, T0 + MIN, device_id="d1", amount=300.0),
        ]
    )
    e.process([txn(3, T0 + IDLE + DAY, payer="X", payee="Y")])  # the feed goes on without P and Q
    assert len(e.store) == 4
    assert e.prune_idle() == 2
    assert len(e.store) == 2 and e.store.account("P") is None and e.store.account("Q") is None
    rows = e.process([txn(4, T0 + IDLE + DAY + MIN, device_id="d1")])
    assert col(rows, "payee.new_for_payer") == [1.0]
    assert col(rows, "payer.new_device") == [1.0]
    assert col(rows, "payer.dormant_reactivated") == [0.0]
    assert col(rows, "payer.account_age_days") == [None]  # its opening date went with it
    assert col(rows, "payer.amount_ratio_to_mean") == [None]
    assert col(rows, "payer.seconds_since_last_txn") == [None]


def test_a_forgotten_account_is_new_whether_or_not_a_sweep_freed_it() -> None:
    swept, lazy = FeatureEngine(), FeatureEngine()
    feed = [txn(1, T0, device_id="d1"), txn(2, T0 + IDLE + DAY, payer="X", payee="Y")]
    back = [txn(3, T0 + IDLE + DAY + MIN, device_id="d1")]
    swept.process(feed)
    swept.prune_idle()
    lazy.process(feed)
    assert np.array_equal(swept.process(back), lazy.process(back), equal_nan=True)
    assert swept.store.account("P") == lazy.store.account("P")


def test_an_account_idle_up_to_the_expiry_is_kept_and_reactivated() -> None:
    e = FeatureEngine()
    e.process([txn(1, T0, device_id="d1")])
    e.process([txn(2, T0 + IDLE, payer="X", payee="Y")])  # P's latest activity is exactly on the horizon
    assert e.prune_idle() == 0
    assert len(e.store) == 4 and e.store.account("P") is not None
    rows = e.process([txn(3, T0 + IDLE, device_id="d1")])
    assert col(rows, "payer.dormant_reactivated") == [1.0]
    assert col(rows, "payee.new_for_payer") == [0.0]
    assert col(rows, "payer.new_device") == [0.0]
    assert col(rows, "payee.days_since_first_paid") == [IDLE / DAY]


def test_dormant_reactivation_still_fires_after_a_month() -> None:
    e = FeatureEngine()
    rows = e.process([txn(1, T0), txn(2, T0 + 31 * DAY), txn(3, T0 + 31 * DAY + 200 * DAY)])
    e.prune_idle()
    rows = np.vstack([rows, e.process([txn(4, T0 + 231 * DAY + 300 * DAY)])])  # 300 days idle: still known
    assert col(rows, "payer.dormant_reactivated") == [0.0, 1.0, 1.0, 1.0]
    assert col(rows, "payee.new_for_payer") == [1.0, 0.0, 0.0, 0.0]


def test_the_rows_of_forgotten_accounts_are_reused() -> None:
    e = FeatureEngine()
    e.process([txn(i, T0 + i, payer=f"P{i}", payee=f"Q{i}") for i in range(3000)])
    rows_used, capacity = e.store.table.n, e.store.acc.shape[0]
    e.process([txn(9000, T0 + IDLE + DAY, payer="X", payee="Y")])
    assert e.prune_idle() == 6000
    e.process([txn(10_000 + i, T0 + IDLE + DAY + i, payer=f"R{i}", payee=f"S{i}") for i in range(3000)])
    assert len(e.store) == 6002
    assert e.store.table.n == rows_used + 2 and e.store.acc.shape[0] == capacity
    assert e.store.account("R2999") is not None and e.store.account("P0") is None


def test_a_payer_still_knows_a_payee_whose_account_was_forgotten() -> None:
    """Forgetting A does not make its payer C forget A (known payees are kept by digest, not by row)."""
    e = FeatureEngine()
    e.process([txn(1, T0, payer="C", payee="A", amount=500.0)])
    for k in range(1, 5):  # C stays active, A does not
        e.process([txn(1 + k, T0 + k * 100 * DAY + DAY, payer="C", payee="Z")])
    assert e.prune_idle() == 1  # A
    assert e.store.account("A") is None and len(e.store) == 2  # its row is released
    e.process([txn(8, T0 + 401 * DAY + DAY, payer="N", payee="M")])  # new accounts take released rows
    rows = e.process([txn(9, T0 + 401 * DAY + 2 * DAY, payer="C", payee="A", amount=1_000.0)])
    assert col(rows, "payee.new_for_payer") == [0.0]
    assert col(rows, "payee.amount_ratio_to_largest") == [2.0]
    assert col(rows, "payee.amount_ratio_to_largest_inflow_30d") == [None]  # A itself is new


def test_a_transfer_its_payee_still_holds_keeps_the_forgotten_payer_named() -> None:
    """B's inflow chain keeps A's transfer until B is touched again: A's row (and digest) stays, empty, until
    then, so that B's state still names A; the sweep that forgets B releases them all."""
    e = FeatureEngine()
    e.process([txn(1, T0, payer="A", payee="B"), txn(2, T0 + 60 * MIN, payer="C", payee="B")])
    e.process([txn(3, T0 + IDLE + 30 * MIN, payer="X", payee="Y")])  # A is idle, B and C (an hour later) not yet
    assert e.prune_idle(every_ms=0) == 1
    assert e.store.account("A") is None and len(e.store) == 5  # A's row is still named by B's chain
    b = e.store.account("B")
    assert b is not None and [(ts, other) for ts, _, other, _, _ in b["inflows"]] == [
        (T0, digest("A")),
        (T0 + 60 * MIN, digest("C")),
    ]
    e.process([txn(4, T0 + IDLE + 2 * 60 * MIN, payer="X", payee="Y")])
    assert e.prune_idle(every_ms=0) == 2  # B and C
    assert len(e.store) == 2  # X and Y


def test_a_checkpoint_after_a_sweep_goes_on_like_the_engine_it_was_taken_from(tmp_path: Path) -> None:
    e = FeatureEngine()
    e.process([txn(i, T0 + i * MIN, payer=f"P{i % 50}", payee=f"Q{i % 7}", device_id=f"d{i % 3}") for i in range(300)])
    e.process([txn(i, T0 + 200 * DAY + i * MIN, payer=f"P{i % 20}", payee=f"Q{i % 3}") for i in range(300, 400)])
    e.process([txn(999, T0 + IDLE + 10 * DAY, payer="P1", payee="Z")])
    assert e.prune_idle() > 0
    write(tmp_path / "w.checkpoint", serialize(e, DecisionLog()))
    restored = load(tmp_path / "w.checkpoint")
    assert restored is not None
    r = restored.engine
    assert len(r.store) == len(e.store)
    assert {a: r.store.account(a) for a in r.store.accounts()} == {a: e.store.account(a) for a in e.store.accounts()}
    later = [
        txn(2000 + i, T0 + IDLE + 11 * DAY + i * MIN, payer=f"P{i % 60}", payee=f"N{i % 9}", device_id="d1")
        for i in range(200)
    ]
    assert np.array_equal(r.process(later), e.process(later), equal_nan=True)
    assert r.store.table.n <= e.store.table.n  # new accounts took the released rows after the load too


def test_ended_mule_list_entries_are_dropped() -> None:
    e = FeatureEngine()
    e.add_label(Label("fraud", account="M1", role="mule"), now_ms=T0)  # listed for 90 days
    e.add_label(Label("suspected", account="M2", role="mule"), now_ms=T0)  # a candidate for 30 days
    e.add_label(Label("fraud", account="M3", role="mule"), now_ms=T0 + 60 * DAY)
    e.process([txn(1, T0 + 91 * DAY)])
    e.prune_idle()
    assert set(e.mule_list) == {"M3"} and e.mule_candidates == {}
    rows = e.process([txn(2, T0 + 91 * DAY, payee="M3"), txn(3, T0 + 91 * DAY, payee="M1")])
    assert col(rows, "payee.on_mule_list") == [1.0, 0.0]


def test_a_listing_that_ended_within_the_allowed_lateness_is_kept() -> None:
    e = FeatureEngine()
    e.add_label(Label("fraud", account="M", role="mule"), now_ms=T0)
    e.process([txn(1, T0 + 90 * DAY + MIN)])  # ended a minute ago: a transaction up to an hour late still sees it
    e.prune_idle()
    assert col(e.process([txn(2, T0 + 90 * DAY - MIN, payee="M")]), "payee.on_mule_list") == [1.0]


@pytest.mark.parametrize("config", [{"idle_expiry_days": 30}, {"idle_expiry_days": 40}, {"dormant_days": 500}])
def test_an_expiry_that_would_change_a_feature_is_refused(config: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="idle_expiry_days must be above dormant_days"):
        FeatureConfig(**config)
