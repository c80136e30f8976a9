"""The bank-feed simulator: customers, merchants, honest look-alikes and telecom-fraud typologies."""

from __future__ import annotations

import random

from streams.simulator.population import Feed, SimConfig, _account, honest_activity, make_customers
from streams.simulator.typologies import TYPOLOGIES, MuleNetwork

__all__ = ["Feed", "SimConfig", "simulate"]


def simulate(cfg: SimConfig) -> Feed:
    """A reproducible feed: transactions, calls and labels sorted by event time."""
    unknown = set(cfg.typology_mix) - set(TYPOLOGIES)
    if unknown:
        raise ValueError(f"unknown typologies {sorted(unknown)}; known: {', '.join(TYPOLOGIES)}")
    rng = random.Random(cfg.seed)
    feed = Feed()
    merchants = [_account("6288", i) for i in range(cfg.merchants)]
    people = make_customers(cfg, rng, merchants)
    # the bank's own accounts: its customers and the merchants it serves (opening dates it knows)
    feed.on_us |= {p.account: p.opened for p in people}
    feed.on_us |= {m: cfg.clock.date(-rng.randint(365, 5000)) for m in merchants}
    honest_activity(cfg, rng, people, merchants, feed)
    mules = MuleNetwork(cfg, rng, feed)
    victims = rng.sample(people, int(len(people) * cfg.fraud_rate))
    names = list(cfg.typology_mix)
    weights = [cfg.typology_mix[n] for n in names]
    for victim in victims:
        TYPOLOGIES[rng.choices(names, weights)[0]](cfg, rng, victim, mules, feed)
    feed.transactions.sort(key=lambda t: t["ts"])
    feed.calls.sort(key=lambda c: c["started_at"])
    return feed
