"""The simulator's realism as casework describes it: scam accounts collect from many victims over days, and
honest payees collecting from many people exist too. Figures it produces: docs/quality.md."""

from __future__ import annotations

import collections

from streams.simulator import SimConfig, simulate
from streams.simulator.population import DAY_MS


def _fraud(feed, typology: str) -> list[dict]:
    return [t for t in feed.transactions if feed.truth.get(t["txn_id"]) == typology]


def _victim_txns(feed) -> set[str]:
    return {label["txn_id"] for label in feed.labels if label.get("role") == "victim"}


def test_investment_victims_share_a_few_platform_accounts() -> None:
    cfg = SimConfig(customers=2000, days=7, seed=3, fraud_rate=0.02, typology_mix={"investment": 1.0})
    feed = simulate(cfg)
    victims = _victim_txns(feed)
    payers_of = collections.defaultdict(set)
    for t in _fraud(feed, "investment"):
        if t["txn_id"] in victims:
            payers_of[t["payee_account"]].add(t["payer_account"])
    assert len(payers_of) == cfg.investment_platforms
    assert min(len(p) for p in payers_of.values()) >= 2  # 40 victims, three platforms: each paid by several
    one = simulate(SimConfig(customers=500, days=7, seed=3, fraud_rate=0.02, typology_mix={"investment": 1.0},
                             investment_platforms=1))  # fmt: skip
    assert len({t["payee_account"] for t in _fraud(one, "investment") if t["txn_id"] in _victim_txns(one)}) == 1


def test_collection_accounts_receive_from_strangers_on_several_days_and_pass_it_on() -> None:
    cfg = SimConfig(customers=2000, days=7, seed=4, fraud_rate=0.01, typology_mix={"mule_chain": 1.0})
    feed = simulate(cfg)
    victims = _victim_txns(feed)
    days_of = collections.defaultdict(set)
    forwards = collections.Counter()
    for t in _fraud(feed, "mule_chain"):
        if t["txn_id"] in victims:
            days_of[t["payee_account"]].add((t["ts"] - cfg.start_ms) // DAY_MS)
        else:
            forwards[t["payer_account"]] += 1
    assert any(len(days) >= 2 for days in days_of.values())
    # each day's 'task' ends with the recruit passing the money on
    assert all(forwards[recruit] == len(days) for recruit, days in days_of.items())


def test_honest_payees_collect_thousands_from_many_first_time_payers() -> None:
    feed = simulate(SimConfig(customers=3000, days=7, seed=5))
    payers_of = collections.defaultdict(set)
    for t in feed.transactions:
        if t["payee_account"].startswith("6250"):  # letting agencies, training centres, clubs
            assert t["txn_id"] not in feed.truth and float(t["amount"]) >= 2000
            payers_of[t["payee_account"]].add(t["payer_account"])
    assert len(payers_of) == 2 and all(len(p) >= 5 for p in payers_of.values())
