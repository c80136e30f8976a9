"""Telecom-fraud typologies as they reach a bank: each victim's story, the mules' forwarding, and labels."""

from __future__ import annotations

import random

from streams.simulator.population import DAY_MS, HOUR_MS, MINUTE_MS, Customer, Feed, SimConfig, _account

RISKY = ("flagged", "overseas", "virtual")


class MuleNetwork:
    """First-level mules receive from victims and forward most of it within minutes to second-level mules.

    Some mule accounts were opened with this bank (so it knows their opening date: most of them recently, some
    bought or rented from long-standing customers); the rest are at other banks, and their age is unknown.

    An investment-scam ring runs a few 'platform' accounts, each collecting from many victims over days (in
    casework, a bank's customers who fall for the same platform pay the same few accounts); like first-level
    mules they are young or bought accounts, at this bank or another."""

    ON_US = 0.4  # share of first-level mule (and platform) accounts opened with this bank
    ESTABLISHED = 0.3  # share of those that are older accounts bought or rented from their owners

    def __init__(self, cfg: SimConfig, rng: random.Random, feed: Feed) -> None:
        self.cfg, self.rng, self.feed = cfg, rng, feed
        self.mules = [_account("6230", i) for i in range(max(3, int(cfg.customers * cfg.fraud_rate / 3)))]
        self.platforms = [_account("6232", i) for i in range(max(1, cfg.investment_platforms))]
        for m in [*self.mules, *self.platforms]:
            if rng.random() < self.ON_US:
                days = rng.randint(90, 2000) if rng.random() < self.ESTABLISHED else rng.randint(1, 25)
                feed.on_us[m] = cfg.clock.date(-days)
        for m in [*self.mules, *self.platforms]:
            feed.labels.append({"account": m, "verdict": "fraud", "role": "mule"})

    def platform(self) -> str:
        return self.rng.choice(self.platforms)

    def pick(self) -> str:
        return self.rng.choice(self.mules)

    def receive(self, mule: str, ts: int, amount: float) -> None:
        """The mule passes 85-95 % on within 3-25 minutes, to a second-level mule or a cash-out account. The bank
        sees that only when the mule account is its own: another bank's outflows are not in its feed."""
        rng = self.rng
        if mule in self.feed.on_us and rng.random() < 0.8:
            onward = _account("6231", rng.randrange(10**6))
            self.feed.transfer(
                ts + rng.randint(3, 25) * MINUTE_MS,
                mule,
                onward,
                amount * rng.uniform(0.85, 0.95),
                typology="mule_chain",
                role="mule",
            )


def impersonation(cfg: SimConfig, rng: random.Random, victim: Customer, mules: MuleNetwork, feed: Feed) -> None:
    """A call from a risky number; during it, one or more large transfers to a new (mule) account."""
    start = cfg.start_ms + rng.randrange(cfg.end_ms - cfg.start_ms - 2 * HOUR_MS)
    duration = rng.uniform(15, 90) * 60
    feed.call(start, victim, f"+{rng.randrange(10**11)}", rng.choice(RISKY), duration)
    mule = mules.pick()
    total = min(victim.balance, rng.uniform(20_000, 300_000))
    split = total > cfg.split_limit and rng.random() < 0.6
    parts = _split(total, cfg.split_limit, rng) if split else [total]
    ts = start + rng.randint(5, 12) * MINUTE_MS
    for amount in parts:
        feed.transfer(ts, victim, mule, amount, typology="impersonation")
        mules.receive(mule, ts, amount)
        ts += rng.randint(2, 8) * MINUTE_MS


def investment(cfg: SimConfig, rng: random.Random, victim: Customer, mules: MuleNetwork, feed: Feed) -> None:
    """No call: escalating transfers over days to one of the ring's few 'platform' accounts (it lets them win
    first), which other victims pay too."""
    payee = mules.platform()
    # victims join a platform at any time of its life (it runs for weeks): any day but the feed's last, between
    # 08:00 and 23:00 local; they pay again a day or two later, within three hours of that time of day
    clock, end = cfg.clock, cfg.end_ms
    day, wall = rng.randrange(max(1, cfg.days - 1)), rng.randrange(8 * HOUR_MS, 23 * HOUR_MS)
    ts = clock.at(day, wall)
    amount = rng.uniform(2_000, 8_000)
    while ts < end:
        feed.transfer(ts, victim, payee, amount, channel="online", typology="investment")
        mules.receive(payee, ts, amount)
        amount *= rng.uniform(1.8, 3.0)
        day, wall = day + rng.randint(1, 2), wall + rng.randrange(-3 * HOUR_MS, 3 * HOUR_MS)
        ts = clock.at(day, wall)


def account_takeover(cfg: SimConfig, rng: random.Random, victim: Customer, mules: MuleNetwork, feed: Feed) -> None:
    """A new device at night drains most of the balance to a new payee in one or two transfers."""
    night = cfg.clock.at(rng.randrange(cfg.days), rng.randint(1, 4) * HOUR_MS)  # 01:00 to 04:00 local
    device = f"dev-x{rng.randrange(10**6)}"
    mule = mules.pick()
    left = victim.balance * rng.uniform(0.8, 0.95)
    for k in range(rng.randint(1, 2)):
        amount = left if k else left * rng.uniform(0.5, 1.0)
        feed.transfer(
            night + k * 4 * MINUTE_MS,
            victim,
            mule,
            amount,
            device=device,
            typology="account_takeover",
        )
        mules.receive(mule, night + k * 4 * MINUTE_MS, amount)
        left -= amount
        if left < 100:
            break


def mule_recruit(cfg: SimConfig, rng: random.Random, victim: Customer, mules: MuleNetwork, feed: Feed) -> None:
    """A fake-job recruit is asked to 'process payments': strangers, scammed elsewhere, pay the recruit's account
    and the recruit forwards it on, one 'task' a day for one to three days (a collection account is used until
    it is frozen). The strangers are the victims; the recruit acts as a mule."""
    clock, day = cfg.clock, rng.randrange(cfg.days)
    for _ in range(rng.randint(1, 3)):
        if day >= cfg.days:
            break
        ts = clock.at(day, rng.randrange(DAY_MS - 2 * HOUR_MS))  # before 22:00 local
        received = 0.0
        for _ in range(rng.randint(2, 4)):
            ts += rng.randint(2, 15) * MINUTE_MS
            amount = rng.uniform(1_000, 15_000)
            stranger = _account("6240", rng.randrange(10**8))
            feed.transfer(ts, stranger, victim.account, amount, channel="online", typology="mule_chain")
            received += amount
        onward = ts + rng.randint(5, 20) * MINUTE_MS
        feed.transfer(onward, victim, mules.pick(), received * 0.9, typology="mule_chain", role="mule")
        day += rng.randint(1, 2)


TYPOLOGIES = {
    "impersonation": impersonation,
    "investment": investment,
    "account_takeover": account_takeover,
    "mule_chain": mule_recruit,
}


def _split(total: float, limit: float, rng: random.Random) -> list[float]:
    parts = []
    while total > limit:
        part = limit - rng.uniform(50, 1500)
        parts.append(part)
        total -= part
    return [*parts, total] if total > 500 else parts
