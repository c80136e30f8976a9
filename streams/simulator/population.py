"""Simulated bank customers and their honest activity, including the honest look-alikes of fraud.

Everything is drawn from one `random.Random(seed)`, so a seed reproduces the same feed. Customers live by the
bank's wall clock (`SimConfig.zone`, streams/simulator/clock.py): shop hours, night shifts, a thief at night.

What the bank knows, as a bank would: the opening date of an account is sent (`payer_account_opened`,
`payee_account_opened`) exactly when the account is one of the bank's own (its customers, the merchants it
serves, the mule accounts opened with it); accounts at other banks come without one, honest or not
(`Feed.on_us`). Honest young accounts exist in realistic numbers: new customers, people who just moved,
students.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

import orjson

from streams.features.localtime import DEFAULT_TZ
from streams.simulator.clock import BankClock

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
MINUTE_MS = 60_000


@dataclass
class SimConfig:
    customers: int = 5000
    days: int = 7
    seed: int = 1
    start: dt.date = dt.date(2026, 3, 1)  # the first day on the bank's wall clock (in +08:00: from 2026-02-28T16:00Z)
    zone: tzinfo = DEFAULT_TZ  # the bank's time zone: its customers' daily rhythm follows its wall clock
    fraud_rate: float = 0.01  # share of customers who become victims during the period
    typology_mix: dict[str, float] = field(
        default_factory=lambda: {"impersonation": 0.5, "investment": 0.2, "account_takeover": 0.15, "mule_chain": 0.15}
    )
    split_limit: float = 50_000.0
    lookalikes: bool = True
    merchants: int = 60
    on_us_payees: float = 0.3  # share of a customer's payees that are customers of the same bank
    new_customers: float = 0.05  # share of customers whose account is under 90 days old (new, just moved)
    investment_platforms: int = 3  # accounts an investment-scam ring has its victims pay (shared by victims)

    @property
    def clock(self) -> BankClock:
        return BankClock(self.zone, self.start)

    @property
    def start_ms(self) -> int:
        """Where the feed's period starts: local midnight starting its first day (epoch ms)."""
        return self.clock.at(0, 0)

    @property
    def end_ms(self) -> int:
        """Where the feed's period ends: local midnight ending its last day (epoch ms)."""
        return self.clock.at(self.days, 0)


@dataclass
class Customer:
    account: str
    phone: str
    device: str
    scale: float  # typical transfer amount
    balance: float
    opened: str  # ISO date
    payees: list[str]
    night_worker: bool = False
    student: bool = False


class Feed:
    """Collects events; `emit_*` keep the contract's shape so the files can be replayed or produced as they are."""

    def __init__(self) -> None:
        self.transactions: list[dict] = []
        self.calls: list[dict] = []
        self.labels: list[dict] = []
        self.truth: dict[str, str] = {}  # txn_id -> typology, for fraud only
        self.on_us: dict[str, str] = {}  # the bank's own accounts -> opening date (ISO): the only ones it knows
        self._n = 0

    def write(self, folder: Path) -> None:
        """transactions.jsonl, calls.jsonl and labels.jsonl in `folder`, as `interceptor backtest` reads them."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, events in (("transactions", self.transactions), ("calls", self.calls), ("labels", self.labels)):
            (folder / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))

    def transfer(
        self,
        ts: int,
        payer: Customer | str,
        payee: str,
        amount: float,
        *,
        device: str | None = None,
        channel: str = "mobile",
        typology: str | None = None,
        role: str = "victim",
    ) -> dict:
        """A transfer; the opening dates of the bank's own accounts go with it, other banks' stay unknown.
        A fraud transfer is labelled with its payer's role: `victim` (the person scammed) or `mule`."""
        self._n += 1
        txn = {
            "txn_id": f"t{self._n:08d}",
            "ts": ts,
            "payer_account": payer.account if isinstance(payer, Customer) else payer,
            "payee_account": payee,
            "amount": f"{max(amount, 1.0):.2f}",
            "currency": "CNY",
            "channel": channel,
        }
        if isinstance(payer, Customer):
            txn |= {"payer_phone": payer.phone, "device_id": device or payer.device}
        if txn["payer_account"] in self.on_us:
            txn["payer_account_opened"] = self.on_us[txn["payer_account"]]
        if payee in self.on_us:
            txn["payee_account_opened"] = self.on_us[payee]
        self.transactions.append(txn)
        if typology:
            self.truth[txn["txn_id"]] = typology
            self.labels.append({"txn_id": txn["txn_id"], "verdict": "fraud", "role": role, "typology": typology})
        return txn

    def call(self, started: int, callee: Customer, caller: str, risk: str, duration_s: float) -> None:
        self._n += 1
        self.calls.append(
            {
                "call_id": f"c{self._n:08d}",
                "callee_phone": callee.phone,
                "caller_number": caller,
                "started_at": started,
                "duration_s": round(duration_s, 1),
                "caller_risk": risk,
            }
        )


def make_customers(cfg: SimConfig, rng: random.Random, merchants: list[str]) -> list[Customer]:
    clock = cfg.clock
    people = []
    for i in range(cfg.customers):
        years = rng.uniform(0.5, 15)
        student = cfg.lookalikes and rng.random() < 0.03
        young = cfg.lookalikes and rng.random() < cfg.new_customers  # a new customer, or one who just moved here
        opened_days = rng.randint(2, 20) if student else rng.randint(1, 90) if young else int(years * 365)
        opened = clock.date(-opened_days)
        payees = [_payee(cfg, rng, i) for _ in range(rng.randint(2, 6))]
        payees += rng.sample(merchants, 3)
        scale = math.exp(rng.gauss(math.log(300), 0.9))
        people.append(
            Customer(
                account=_account("6222", i),
                phone=f"+86138{i:08d}",
                device=f"dev-{i:06d}",
                scale=scale,
                balance=scale * rng.uniform(40, 400),
                opened=opened,
                payees=payees,
                night_worker=cfg.lookalikes and rng.random() < 0.03,
                student=student,
            )
        )
    return people


def honest_activity(
    cfg: SimConfig, rng: random.Random, people: list[Customer], merchants: list[str], feed: Feed
) -> None:
    clock = cfg.clock
    for day in range(cfg.days):
        for c in people:
            for _ in range(_poisson(rng, 1.4)):
                ts = clock.at(day, _local_time(rng, c.night_worker))
                if rng.random() < 0.5:
                    feed.transfer(ts, c, rng.choice(c.payees[-3:]), c.scale * rng.uniform(0.05, 0.5), channel="pos")
                elif rng.random() < 0.92:
                    feed.transfer(ts, c, rng.choice(c.payees), c.scale * math.exp(rng.gauss(0, 0.6)))
                else:  # an ordinary new payee (a new shop, a friend)
                    payee = _payee(cfg, rng, int(c.account[4:]))
                    c.payees.append(payee)
                    feed.transfer(ts, c, payee, c.scale * math.exp(rng.gauss(0, 0.5)), channel="online")
            if rng.random() < 0.02:  # an ordinary call from abroad or a virtual number (delivery, bank, spam)
                risk = rng.choice(["overseas", "virtual", "normal"])
                started = clock.at(day, _local_time(rng, False))
                feed.call(started, c, f"+{rng.randrange(10**10)}", risk, rng.uniform(20, 300))
    if cfg.lookalikes:
        _lookalikes(cfg, rng, people, merchants, feed)


def _lookalikes(cfg: SimConfig, rng: random.Random, people: list[Customer], merchants: list[str], feed: Feed) -> None:
    n = len(people)
    clock = cfg.clock
    span = cfg.end_ms - cfg.start_ms  # days * DAY_MS, but for a change of daylight saving time
    # relatives abroad call, then the customer sends money home (to a known payee, sometimes a new one)
    for c in rng.sample(people, max(1, n // 100)):
        ts = cfg.start_ms + rng.randrange(span)
        feed.call(ts - 20 * MINUTE_MS, c, f"+852{rng.randrange(10**8)}", "overseas", rng.uniform(300, 1500))
        payee = rng.choice(c.payees) if rng.random() < 0.7 else _account("6217", rng.randrange(10**10))
        feed.transfer(ts, c, payee, rng.uniform(3000, 30000))
    # large one-off payments to new payees: deposits, tuition, a car (a quarter to another customer of the bank)
    for c in rng.sample(people, max(1, n // 80)):
        ts = cfg.start_ms + rng.randrange(span)
        payee = rng.choice(people).account if rng.random() < 0.25 else _account("6228", rng.randrange(10**10))
        feed.transfer(ts, c, payee, rng.uniform(20000, 300000), channel="online")
    # students with new accounts topped up by two or three relatives (some send a term's rent: thousands); some
    # relatives bank here too, and for them it is a first payment far above their usual
    for c in (p for p in people if p.student):
        ts = cfg.start_ms + rng.randrange(span)
        for k in range(rng.randint(2, 3)):
            amount = rng.uniform(3000, 10000) if rng.random() < 0.3 else rng.uniform(300, 3000)
            relative = (
                rng.choice(people) if rng.random() < cfg.on_us_payees else _account("6225", rng.randrange(10**10))
            )
            feed.transfer(ts + k * rng.randrange(HOUR_MS), relative, c.account, amount, channel="online")
    # people who just moved here bring their money from their old bank (a young account receiving thousands)
    recent = clock.date(-90)
    for c in people:
        if c.opened > recent and not c.student and rng.random() < 0.5:
            ts = cfg.start_ms + rng.randrange(span)
            old_bank = _account("6226", rng.randrange(10**10))
            feed.transfer(ts, old_bank, c.account, rng.uniform(3000, 40000), channel="online")
    # rent at the start of the month: landlords paid thousands by one to four tenants within two days
    for c in rng.sample(people, max(1, n // 100)):
        for _ in range(rng.randint(1, 4)):
            tenant = rng.choice(people) if rng.random() < 0.3 else _account("6217", rng.randrange(10**10))
            ts = cfg.start_ms + rng.randrange(clock.at(min(cfg.days, 2), 0) - cfg.start_ms)
            feed.transfer(ts, tenant, c.account, rng.uniform(1500, 9000), channel="online")
    # a collection among friends or family (a wedding gift, a shared trip, a flat deposit split): three to six
    # people each send one person a few thousand within a few hours, most of them paying that person first time
    for c in rng.sample(people, max(1, n // 250)):
        ts = cfg.start_ms + rng.randrange(span)
        for _ in range(rng.randint(3, 6)):
            giver = rng.choice(people) if rng.random() < 0.4 else _account("6225", rng.randrange(10**10))
            amount = math.exp(rng.gauss(math.log(2500), 0.6))
            feed.transfer(ts + rng.randrange(3 * HOUR_MS), giver, c.account, amount, channel="mobile")
    # popular payees collecting thousands from many customers across the week, each customer paying them for the
    # first time (a letting agency's deposits, a training centre's course fees, a club's yearly dues): the honest
    # look-alike of an investment platform. Most are established business accounts; a few are at this bank, and
    # a fifth of those were opened in the last three months
    for k in range(max(1, n // 1500)):
        agency = _account("6250", k)
        if rng.random() < 0.3:
            days = rng.randint(10, 80) if rng.random() < 0.2 else rng.randint(365, 4000)
            feed.on_us[agency] = clock.date(-days)
        for c in rng.sample(people, min(n, rng.randint(5, 15))):
            ts = clock.at(rng.randrange(cfg.days), _local_time(rng, False))
            feed.transfer(ts, c, agency, rng.uniform(2000, 10000), channel="online")
    # small shops paid by many distinct people (already in honest activity via merchants); shops pay suppliers
    for m in merchants:
        for day in range(cfg.days):
            ts = clock.at(day, 20 * HOUR_MS)
            feed.transfer(ts, m, _account("6260", rng.randrange(1000)), rng.uniform(2000, 8000), channel="online")


def _payee(cfg: SimConfig, rng: random.Random, me: int) -> str:
    """A person a customer pays: another customer of the bank (on-us) or an account at another bank."""
    if cfg.customers > 1 and rng.random() < cfg.on_us_payees:
        other = rng.randrange(cfg.customers - 1)
        return _account("6222", other + (other >= me))
    return _account("6217", rng.randrange(10**10))


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, threshold = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p < threshold:
            return k
        k += 1


def _local_time(rng: random.Random, night_worker: bool) -> int:
    """Milliseconds after local midnight, for a local hour drawn from a daily rhythm."""
    hour = (
        rng.choice([0, 1, 2, 3, 4, 5, 22, 23])
        if night_worker
        else rng.choice([8, 9, 10, 11, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 20, 21, 22])
    )
    return hour * HOUR_MS + rng.randrange(HOUR_MS)


def _account(prefix: str, n: int) -> str:
    return f"{prefix}{n:012d}"
