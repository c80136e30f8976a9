"""The simulated bank's time zone (`interceptor simulate --timezone`, INTERCEPTOR_TIMEZONE): its customers live by
its wall clock, across changes of daylight saving time, and the default (+08:00) keeps the feed it always was."""

from __future__ import annotations

import datetime as dt
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from click.testing import CliRunner, Result

from streams.cli.main import main
from streams.features.localtime import DEFAULT_TZ, local_hours
from streams.simulator import SimConfig, simulate
from streams.simulator.clock import BankClock
from streams.simulator.population import DAY_MS, HOUR_MS

LONDON = ZoneInfo("Europe/London")
SPRING = dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC)  # London's clocks go forward, 01:00 GMT to 02:00 BST
AUTUMN = dt.datetime(2026, 10, 25, 1, tzinfo=dt.UTC)  # and back, 02:00 BST to 01:00 GMT
NIGHT_SHIFT = {22, 23, 0, 1, 2, 3, 4, 5}  # the local hours of a night-shift worker's payments
DAYTIME = set(range(8, 23))  # everyone else's
SMALL = ("--customers", "300", "--days", "2", "--seed", "5")


def run(out: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    # the variable unset unless a test sets it: a developer's own INTERCEPTOR_TIMEZONE must not leak in
    env = {"INTERCEPTOR_TIMEZONE": None, **(env or {})}
    return CliRunner().invoke(main, ["simulate", "--out", str(out), *args], env=env)


def simulated(out: Path, *args: str, env: dict[str, str | None] | None = None) -> dict[str, bytes]:
    result = run(out, *args, env=env)
    assert result.exit_code == 0, result.output
    return {name: (out / f"{name}.jsonl").read_bytes() for name in ("transactions", "calls", "labels")}


def transactions(files: dict[str, bytes]) -> list[dict]:
    return [orjson.loads(line) for line in files["transactions"].splitlines()]


def assert_lives_by(txns: list[dict], truth: dict[str, str], zone: tzinfo) -> None:
    """Shop payments (channel pos) follow each payer's rhythm, day or night shift, and account takeovers come
    between 01:00 and 05:00, all on the wall clock of `zone`."""
    pos = [t for t in txns if t["channel"] == "pos"]
    hours_of: dict[str, set[int]] = {}
    for t, hour in zip(pos, local_hours(np.array([t["ts"] for t in pos], np.int64), zone), strict=True):
        hours_of.setdefault(t["payer_account"], set()).add(int(hour))
    night_workers = [payer for payer, hours in hours_of.items() if hours & (NIGHT_SHIFT - DAYTIME)]
    assert night_workers  # the feed has some, or this checks nothing
    for payer, hours in hours_of.items():
        assert hours <= (NIGHT_SHIFT if payer in night_workers else DAYTIME), (payer, sorted(hours))
    takeovers = [t["ts"] for t in txns if truth.get(t["txn_id"]) == "account_takeover"]
    assert takeovers
    assert set(local_hours(np.array(takeovers, np.int64), zone).tolist()) <= {1, 2, 3, 4}


# --- the default is the feed it always was ------------------------------------------------------------------


def test_the_default_feed_is_the_feed_of_an_explicit_plus_eight(tmp_path: Path) -> None:
    default = simulated(tmp_path / "default", *SMALL)
    assert simulated(tmp_path / "explicit", *SMALL, "--timezone", "+08:00") == default
    # an IANA zone at +08:00 all year has the same wall clock, so the same feed
    assert simulated(tmp_path / "shanghai", *SMALL, "--timezone", "Asia/Shanghai") == default
    # and the zone matters: elsewhere, the same people live by another clock
    london = simulated(tmp_path / "london", *SMALL, "--timezone", "Europe/London")
    assert london["transactions"] != default["transactions"]


def test_the_default_config_is_the_plus_eight_bank() -> None:
    assert SimConfig().zone is DEFAULT_TZ
    assert SimConfig().start_ms == int(dt.datetime(2026, 3, 1, tzinfo=DEFAULT_TZ).timestamp() * 1000)
    cfg = SimConfig(customers=200, days=2, seed=9)
    explicit = SimConfig(customers=200, days=2, seed=9, zone=dt.timezone(dt.timedelta(hours=8)))
    assert simulate(cfg).transactions == simulate(explicit).transactions


# --- the option and the variable ----------------------------------------------------------------------------


def test_the_variable_sets_the_zone_unless_the_option_is_given(tmp_path: Path) -> None:
    london = simulated(tmp_path / "option", *SMALL, "--timezone", "Europe/London")
    assert simulated(tmp_path / "variable", *SMALL, env={"INTERCEPTOR_TIMEZONE": "Europe/London"}) == london
    default = simulated(tmp_path / "default", *SMALL)
    wins = simulated(tmp_path / "wins", *SMALL, "--timezone", "+08:00", env={"INTERCEPTOR_TIMEZONE": "Europe/London"})
    assert wins == default


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--timezone", "Mars/Base"), {}, "Invalid value for '--timezone': unknown time zone 'Mars/Base'"),
        ((), {"INTERCEPTOR_TIMEZONE": "+15:00"}, "Invalid value for environment variable INTERCEPTOR_TIMEZONE: "
         "offset '+15:00' is out of range"),
    ],
)  # fmt: skip
def test_a_bad_zone_is_one_line_naming_where_it_came_from(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run(tmp_path / "feed", *SMALL, *args, env=env)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "feed").exists()


def test_help_says_what_the_zone_does() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"], env={"INTERCEPTOR_TIMEZONE": None})
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "--timezone TEXT The simulated bank's time zone" in text
    assert "The customers' daily rhythm (shop hours, night shifts, account takeovers at night) is on the bank's" in (
        text
    )
    assert "[env var: INTERCEPTOR_TIMEZONE; default: +08:00]" in text


# --- the bank's wall clock ----------------------------------------------------------------------------------


def test_a_london_bank_lives_by_london_time_across_the_change_of_clocks(tmp_path: Path) -> None:
    # March 2026 in full: London's clocks go forward on the 29th
    args = ("--customers", "300", "--days", "31", "--seed", "5", "--fraud-rate", "0.1", "--mix", "account_takeover=1")
    files = simulated(tmp_path / "london", *args, "--timezone", "Europe/London")
    txns = transactions(files)
    truth = {label["txn_id"]: label["typology"] for label in map(orjson.loads, files["labels"].splitlines())
             if "txn_id" in label}  # fmt: skip
    change = int(SPRING.timestamp() * 1000)
    assert any(t["ts"] < change for t in txns) and any(t["ts"] >= change + DAY_MS for t in txns)
    assert_lives_by(txns, truth, LONDON)


@pytest.mark.parametrize("start", [dt.date(2026, 3, 27), dt.date(2026, 10, 23)])
def test_the_days_around_a_change_of_clocks_keep_their_rhythm(start: dt.date) -> None:
    cfg = SimConfig(customers=400, days=5, seed=6, start=start, zone=LONDON, fraud_rate=0.1,
                    typology_mix={"account_takeover": 1.0})  # fmt: skip
    feed = simulate(cfg)
    assert_lives_by(feed.transactions, feed.truth, LONDON)
    # the period runs from local midnight to local midnight, one of its days 23 or 25 hours long
    assert dt.datetime.fromtimestamp(cfg.start_ms / 1000, LONDON).replace(tzinfo=None) == dt.datetime.combine(
        start, dt.time()
    )
    assert cfg.end_ms - cfg.start_ms == 5 * DAY_MS + (-HOUR_MS if start.month == 3 else HOUR_MS)


def test_the_clock_keeps_local_times_across_the_changes() -> None:
    for change in (SPRING, AUTUMN):
        first = change.date() - dt.timedelta(days=2)
        clock = BankClock(LONDON, first)
        for day in range(5):
            for hour in (0, 1, 3, 12, 23):
                ts = clock.at(day, hour * HOUR_MS + 17 * 60_000)
                local = dt.datetime.fromtimestamp(ts / 1000, LONDON)
                if change is SPRING and (day, hour) == (2, 1):
                    assert (local.hour, local.minute) == (2, 17)  # 01:17 does not happen that day: read as GMT
                else:
                    assert (local.date(), local.hour, local.minute) == (first + dt.timedelta(days=day), hour, 17)
        assert clock.date(-1) == (first - dt.timedelta(days=1)).isoformat()
    # 01:30 happens twice when the clocks go back: the first, still in summer time (01:30 BST is 00:30 UTC)
    assert BankClock(LONDON, AUTUMN.date()).at(0, 90 * 60_000) == int(AUTUMN.timestamp() * 1000) - 30 * 60_000
    # a fixed offset is plain arithmetic, on any day
    plus8 = BankClock(DEFAULT_TZ, dt.date(2026, 3, 1))
    for day, wall in ((0, 5), (40, 0), (-3, 25 * HOUR_MS)):
        assert plus8.at(day, wall) == plus8.at(0, 0) + day * DAY_MS + wall
