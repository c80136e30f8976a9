"""The numba engine computes exactly what the plain-Python reference engine computes, and keeps the same state.

Random histories: a few accounts (so payers pay each other, themselves, and come back), event times that jump
forward by seconds to weeks and back (out of order, beyond the allowed lateness), re-delivered transactions,
devices and opening dates, split into random batches; an idle expiry of 45 days, so that accounts are forgotten,
and sweeps that free them after random batches. Every feature of every row must be equal, bit for bit (sums
run in the same order), and so must every account's state afterwards.
"""

from __future__ import annotations

import dataclasses
import itertools
import pickle
from datetime import date

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streams.features.engine as engine_module
import tests.unit.features.reference_state as reference_state
from rules.features import REGISTRY
from streams.events import Transaction
from streams.features.digest import digest
from streams.features.engine import FeatureConfig, FeatureEngine
from streams.features.layout import END, FREE, GONE, INF_FREE, INF_N, KD_NFREE, KP_NFREE, OUT_COUNT_MAX, TR_NFREE
from streams.features.localtime import parse_zone
from streams.features.store import AccountStore
from tests.unit.features.reference_engine import ReferenceEngine

T0 = 1_772_325_000_000
IDLE_DAYS = 45  # the lowest expiry allowed (above 30 dormant days and 40 days of inflow periods)
CONFIG = FeatureConfig(idle_expiry_days=IDLE_DAYS)
ACCOUNTS = ["A", "B", "C", "D", "E", "F"]
STEPS = [
    0,
    1,
    999,
    1000,
    60_000,
    29 * 60_000,
    31 * 60_000,
    3_600_000,
    6 * 3_600_000,
    86_400_000,
    10 * 86_400_000,
    31 * 86_400_000,
    IDLE_DAYS * 86_400_000,  # lands on the expiry horizon exactly
]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Transaction], list[int]]:
    n = draw(st.integers(1, 60))
    t = T0
    txns: list[Transaction] = []
    for i in range(n):
        if txns and draw(st.integers(0, 9)) == 0:  # a re-delivery of an earlier transaction
            txns.append(txns[draw(st.integers(0, len(txns) - 1))])
            continue
        step = draw(st.sampled_from(STEPS))
        t += -step if draw(st.integers(0, 4)) == 0 else step  # one in five goes back in time
        txns.append(
            Transaction(
                f"t{i}",
                t,
                draw(st.sampled_from(ACCOUNTS)),
                draw(st.sampled_from(ACCOUNTS)),
                draw(st.sampled_from([0.01, 1.0, 100.0, 333.33, 5_000.0, 49_999.0])),
                device_id=draw(st.sampled_from([None, "d1", "d2", "d3", "d4"])),
                payer_account_opened=draw(st.sampled_from([None, date(2020, 1, 1), date(2026, 2, 27)])),
                payee_account_opened=draw(st.sampled_from([None, date(2026, 2, 28)])),
            )
        )
    cuts = sorted(set(draw(st.lists(st.integers(1, len(txns)), max_size=5))))
    return txns, cuts


def batches(txns: list[Transaction], cuts: list[int]) -> list[list[Transaction]]:
    edges = [0, *cuts, len(txns)]
    return [txns[a:b] for a, b in itertools.pairwise(edges) if b > a]


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caps of 3 known payees and 2 devices, so random histories reach the least-recently-used eviction."""
    for module in (engine_module, reference_state):
        monkeypatch.setattr(module, "MAX_KNOWN_PAYEES", 3)
        monkeypatch.setattr(module, "MAX_KNOWN_DEVICES", 2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories(), st.booleans(), st.integers(0, 63), st.sampled_from(["+08:00", "-03:30", "Europe/London"]))
def test_rows_and_state_equal_the_reference(
    small_caps: None, history: tuple[list[Transaction], list[int]], reload: bool, sweeps: int, zone: str
) -> None:
    """With `reload`, the engine goes through a pickle (a checkpoint: the pools compacted) after each batch;
    bit k of `sweeps` frees idle accounts after batch k (the reference forgets them only when they come back).
    The bank's time zone is one with daylight saving time in a third of the examples (the histories cross its
    changes, in batches spanning them or not)."""
    txns, cuts = history
    config = dataclasses.replace(CONFIG, zone=parse_zone(zone))
    fast, reference = FeatureEngine(config), ReferenceEngine(config)
    for k, batch in enumerate(batches(txns, cuts)):
        got, want = fast.process(batch), reference.process(batch)
        if sweeps >> k & 1:
            fast.prune_idle(every_ms=0)
        if reload:
            fast = pickle.loads(pickle.dumps(fast))
        for name in REGISTRY.names:
            column = REGISTRY.column(name)
            assert np.array_equal(got[:, column], want[:, column], equal_nan=True), (
                name,
                got[:, column],
                want[:, column],
            )
    assert fast.watermark_ms == reference.watermark_ms
    fast.prune_idle(every_ms=0)
    reference.prune_idle()
    assert_every_slot_is_live_or_free(fast.store)
    assert sorted(fast.store.accounts()) == sorted(digest(a) for a in reference.accounts)
    for account, ref in reference.accounts.items():
        state = fast.store.account(account)
        assert state is not None
        assert state == fast.store.account(digest(account))
        assert state["outflows"] == [
            (e.ts_ms, e.amount, digest(e.other), digest(e.txn_id), e.new_payee) for e in ref.outflows
        ], account
        assert state["inflows"] == [(e.ts_ms, e.amount, digest(e.other), digest(e.txn_id), False) for e in ref.inflows]
        assert (state["out_count"], state["out_mean"]) == (ref.out_count, ref.out_mean)
        assert (state["last_out_ms"], state["last_activity_ms"]) == (ref.last_out_ms, ref.last_activity_ms)
        assert state["opened_ms"] == ref.opened_ms
        assert state["known_payees"] == {digest(p): v for p, v in ref.known_payees.items()}
        assert state["known_devices"] == {digest(d): ts for d, ts in ref.known_devices.items()}
        assert state["largest_inflows"] == ref.largest_inflows


def assert_every_slot_is_live_or_free(store: AccountStore) -> None:
    """No slot is lost or counted twice when accounts are forgotten: each pool's live entries (reachable from
    the accounts) and free ones add up to its size, and every account row left is live or still named."""
    n, acc, tr, kp, kd, c = store.table.n, store.acc, store.tr, store.kp, store.kd, store.counters
    payees, devices, inflows, named = 0, 0, 0, set()
    chains: dict[str, set[int]] = {"next_out": set(), "next_in": set()}
    for a in range(n):
        for head, link in (("out_head", "next_out"), ("in_head", "next_in")):
            s = int(acc[a][head])
            while s != END:
                chains[link].add(s)
                named.update((int(tr[s]["payer"]), int(tr[s]["payee"])))
                s = int(tr[s][link])
        for pool, head, count in ((kp, "known_head", "known_n"), (kd, "dev_head", "dev_n")):
            e, length = int(acc[a][head]), 0
            while e != END:
                length += 1
                if pool is kp:
                    named.add(int(kp[e]["key"]))
                e = int(pool[e]["next"])
            assert length == acc[a][count]
            payees, devices = (payees + length, devices) if pool is kp else (payees, devices + length)
        inflows += acc[a]["inflows"] != END
    transfers = chains["next_out"] | chains["next_in"]
    assert len(transfers) + c[TR_NFREE] == tr.shape[0]
    for s in transfers:  # a live transfer's link says which chains hold it
        assert tr[s]["next_out"] != FREE
        assert all((s in members) == (tr[s][link] != GONE) for link, members in chains.items())
    assert payees + c[KP_NFREE] == kp.shape[0]
    assert devices + c[KD_NFREE] == kd.shape[0]
    freed, j = 0, int(c[INF_FREE])
    while j != END:
        freed += 1
        j = int(store.inf[j]["period"][0])
    assert inflows + freed == c[INF_N]
    in_table = {a for a in range(n) if store.table.keys[a] & 1}
    assert len(in_table) == len(store)
    assert all(acc[a]["seen"] == 1 or a in named for a in in_table)
    assert all(store.table.find(int(store.table.keys[a])) == a for a in in_table)


def test_the_state_grows_past_its_first_arrays_and_survives_a_pickle() -> None:
    engine, reference = FeatureEngine(), ReferenceEngine()
    txns = [
        Transaction(f"t{i}", T0 + i * 1000, f"P{i % 3000}", f"Q{i % 70}", 10.0 + i % 97, device_id=f"d{i % 5}")
        for i in range(12_000)
    ]
    for start in range(0, len(txns), 4_000):
        engine.process(txns[start : start + 4_000])
        reference.process(txns[start : start + 4_000])
    engine = pickle.loads(pickle.dumps(engine))
    later = [Transaction(f"u{i}", T0 + 13_000_000 + i, f"P{i}", f"Q{i % 70}", 50.0) for i in range(500)]
    assert np.array_equal(engine.process(later), reference.process(later), equal_nan=True)
    assert len(engine.store) == len(reference.accounts)


def test_windows_longer_than_the_kernel_scratch_equal_the_reference() -> None:
    """A shop paid 700 times within the hour and paying on: windows of hundreds of transfers (the kernel's
    window scratch starts at 256 and grows, its distinct-count scratch at 512 transfers)."""
    txns = [Transaction(f"t{i}", T0 + i * 5_000, f"P{i % 400}", "SHOP", 10.0 + i % 13) for i in range(700)]
    txns += [Transaction(f"s{i}", T0 + 3_500_000 + i, "SHOP", f"S{i % 3}", 300.0) for i in range(300)]
    txns += [Transaction(f"u{i}", T0 + 3_600_000 + i, f"P{i}", "SHOP", 7.0) for i in range(50)]
    fast, reference = FeatureEngine(), ReferenceEngine()
    for start in range(0, len(txns), 300):
        batch = txns[start : start + 300]
        assert np.array_equal(fast.process(batch), reference.process(batch), equal_nan=True)


def test_distinct_counts_of_windows_larger_than_the_store_scratch_equal_the_reference() -> None:
    """A payee paid by 1,500 different payers within the hour, then by 300 of them again, and paying 700 payees
    twice: distinct-count windows of up to 1,800 transfers, far more than the store's scratch hash set holds
    (512 transfers: a larger one is made for the rest of the batch)."""
    txns = [Transaction(f"t{i}", T0 + i * 2_000, f"P{i}", "SHOP", 10.0) for i in range(1_500)]
    txns += [Transaction(f"u{i}", T0 + 3_000_000 + i, f"P{i * 5}", "SHOP", 20.0) for i in range(300)]
    txns += [Transaction(f"v{i}", T0 + 3_100_000 + i, "SHOP", f"S{i % 700}", 1.0) for i in range(1_400)]
    fast, reference = FeatureEngine(), ReferenceEngine()
    for start in range(0, len(txns), 700):
        batch = txns[start : start + 700]
        got = fast.process(batch)
        assert np.array_equal(got, reference.process(batch), equal_nan=True)
    assert got[-1, REGISTRY.column("payer.new_payees_24h")] == 700
    last = fast.process([Transaction("w", T0 + 3_200_000, "P7", "SHOP", 5.0)])  # 1,800 inflows in the hour
    assert last[0, REGISTRY.column("payee.distinct_payers_1h")] == 1_500
    assert last[0, REGISTRY.column("payee.distinct_payers_24h")] == 1_500


def test_the_outgoing_count_stops_at_its_limit_and_the_mean_still_moves() -> None:
    """An account's all-time outgoing count is 32 bits: at 2^31 - 1 it stays there (rather than wrapping to a
    negative count, which would lose payer.amount_ratio_to_mean), and the running mean goes on moving."""
    engine = FeatureEngine()
    engine.process([Transaction("t0", T0, "P", "Q", 100.0)])
    row = engine.store.table.find(digest("P"))
    engine.store.acc[row]["out_count"] = OUT_COUNT_MAX - 1
    amounts = [100.0, 100.0 + OUT_COUNT_MAX, 101.0]  # the second moves the mean by exactly 1
    rows = engine.process([Transaction(f"t{i}", T0 + i, "P", "Q", x) for i, x in enumerate(amounts, 1)])
    state = engine.store.account("P")
    assert state is not None and state["out_count"] == OUT_COUNT_MAX
    assert rows[:, REGISTRY.column("payer.amount_ratio_to_mean")].tolist() == [1.0, 1.0 + OUT_COUNT_MAX / 100, 1.0]
    assert state["out_mean"] == 101.0


def test_opening_dates_at_the_ends_of_the_calendar_equal_the_reference() -> None:
    """The account record keeps the opening date in days: the first and the last date Python has are exact."""
    txns = [
        Transaction(
            "t1", T0, "P", "Q", 1.0, payer_account_opened=date(1, 1, 1), payee_account_opened=date(9999, 12, 31)
        ),
        Transaction("t2", T0 + 1, "Q", "P", 1.0),
        Transaction("t3", T0 + 2, "P", "Q", 1.0),
    ]
    fast, reference = FeatureEngine(), ReferenceEngine()
    assert np.array_equal(fast.process(txns), reference.process(txns), equal_nan=True)
    assert fast.store.account("P")["opened_ms"] == reference.accounts["P"].opened_ms  # type: ignore[index]
    assert fast.store.account("Q")["opened_ms"] == reference.accounts["Q"].opened_ms  # type: ignore[index]
