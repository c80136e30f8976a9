"""Per-transaction time of the feature engine (`FeatureEngine.process`) on a simulated feed, with a breakdown.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_features.py [--customers 10000 --days 7 --batch 1000]
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_features.py --baseline /tmp/before
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_features.py --sweep 1000000

The feed is `simulate(SimConfig(customers, days, seed=3))`, decoded with `decode_transaction` and cut into
batches; the engine knows the feed's calls and labels beforehand, and 1 % of the payers have a hold span, so
the lookups do their real work. A repetition runs the whole feed through a fresh engine (the first one, which
loads the numba cache, is not counted); figures are medians over repetitions, in microseconds per transaction
(`time.perf_counter`).

Printed: the engine's total; its steps (building arrays, digests, numbering accounts, the kernel, the lookups);
and, for the per-id Python the engine no longer does (kept in this file only), the old way and the new way on
the same batches in the same run. With `--baseline DIR` (another checkout, e.g. `mkdir /tmp/before && git
archive HEAD | tar -x -C /tmp/before`), the total and steps of that checkout's engine as well, measured in
subprocesses that alternate with this checkout's, so both see the same machine load.

With `--sweep N`, instead: the time `FeatureEngine.prune_idle` takes over a state of N accounts (see
`run_sweep`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import numpy as np
import orjson
from alternate import alternate

from streams.events import Transaction, decode_call, decode_label, decode_transaction
from streams.features.engine import FeatureConfig, FeatureEngine
from streams.features.localtime import local_hours
from streams.simulator import SimConfig, simulate

Batches = list[list[Transaction]]
T_SWEEP = 1_772_325_000_000


def feed(customers: int, days: int, batch: int) -> tuple[Batches, list, list]:
    sim = simulate(SimConfig(customers=customers, days=days, seed=3))
    txns = [decode_transaction(orjson.dumps(t)) for t in sim.transactions]
    calls = [decode_call(orjson.dumps(c)) for c in sim.calls]
    labels = [decode_label(orjson.dumps(label)) for label in sim.labels]
    return [txns[i : i + batch] for i in range(0, len(txns), batch)], calls, labels


def fresh_engine(batches: Batches, calls: list, labels: list) -> FeatureEngine:
    engine = FeatureEngine()
    for call in calls:
        engine.add_call(call)
    now = batches[0][0].ts_ms
    for label in labels:
        engine.add_label(label, now)
    payers = sorted({t.payer_account for b in batches for t in b})
    for k, payer in enumerate(payers[::100]):  # a hold span for 1 % of the payers, over the whole feed
        engine.holds.spans[payer] = {f"hold-{k}": [now, now + 30 * 86_400_000]}
    return engine


def run_total(batches: Batches, calls: list, labels: list) -> float:
    engine = fresh_engine(batches, calls, labels)
    spent = 0.0
    for batch in batches:
        started = time.perf_counter()
        engine.process(batch)
        spent += time.perf_counter() - started
    return spent


def run_steps(batches: Batches, calls: list, labels: list) -> dict[str, float]:
    """Seconds per step of `process` over the feed (its steps called one by one, as `process` calls them)."""
    engine = fresh_engine(batches, calls, labels)
    if hasattr(engine.store, "index"):
        return _old_steps(engine, batches)
    spent = dict.fromkeys(("arrays", "digests", "numbering", "kernel", "lookups"), 0.0)
    from rules.features import REGISTRY

    for batch in batches:
        t0 = time.perf_counter()
        rows = np.full((len(batch), len(REGISTRY)), np.nan)
        columns = engine._columns(batch, rows)
        t1 = time.perf_counter()
        accounts, txns, devices = engine._digests(columns)
        t2 = time.perf_counter()
        numbers = engine.store.rows(accounts)
        t3 = time.perf_counter()
        engine._featurize(columns, rows, numbers, txns, devices)
        t4 = time.perf_counter()
        engine._lookups(columns, rows)
        t5 = time.perf_counter()
        for step, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            spent[step] += seconds
    return spent


def _old_steps(engine: FeatureEngine, batches: Batches) -> dict[str, float]:  # pragma: no cover - old engine
    """The same steps for the engine before issue #4 (a dict index, blake2b per id), for --baseline runs."""
    from rules.features import REGISTRY
    from streams.features import engine as module
    from streams.features.store import stable_hash

    spent = dict.fromkeys(("arrays", "digests", "numbering", "kernel", "lookups"), 0.0)
    c, store, config = module._COL, engine.store, engine.config
    for transactions in batches:
        n = len(transactions)
        t0 = time.perf_counter()
        rows = np.full((n, len(REGISTRY)), np.nan, dtype=np.float64)
        ts = np.array([t.ts_ms for t in transactions], np.int64)
        amount = np.array([t.amount for t in transactions], np.float64)
        rows[:, c["amount"]] = amount
        channels = [t.channel for t in transactions]
        if any(ch is not None for ch in channels):
            rows[:, c["channel"]] = [np.nan if ch is None else module._CHANNEL_CODE[ch] for ch in channels]
        hour = local_hours(ts, config.zone)
        rows[:, c["hour"]] = hour
        rows[:, c["night"]] = hour < config.night_end_hour
        payer_opened = np.array([engine._opened_ms(t.payer_account_opened) for t in transactions], np.int64)
        payee_opened = np.array([engine._opened_ms(t.payee_account_opened) for t in transactions], np.int64)
        t1 = time.perf_counter()
        devices = np.array(
            [module.NONE if t.device_id is None else stable_hash(t.device_id) for t in transactions], np.int64
        )
        txns = np.array([stable_hash(t.txn_id) for t in transactions], np.int64)
        t2 = time.perf_counter()
        payers = [t.payer_account for t in transactions]
        payees = [t.payee_account for t in transactions]
        numbers = store.numbers(payers + payees)
        t3 = time.perf_counter()
        store.make_room(n)
        module.featurize_and_record(
            rows, module._KERNEL_COLUMNS, ts, amount, numbers[:n], numbers[n:], devices, payer_opened,
            payee_opened, txns, store.acc_i, store.acc_mean, store.acc_inmax, store.tr_i, store.tr_amount,
            store.tr_free, store.kn_i, store.kn_largest, store.kn_free, store.counters, store.mark,
            config.dormant_days * module.DAY_MS, config.allowed_lateness_ms, module.MAX_KNOWN_PAYEES,
            module.MAX_KNOWN_DEVICES,
        )  # fmt: skip
        t4 = time.perf_counter()
        engine._lookups(transactions, payers, payees, rows)
        t5 = time.perf_counter()
        for step, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            spent[step] += seconds
    return spent


def blake2b_digest(text: str) -> int:
    """The id digest before issue #4 (kept here only, to compare)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True) | 1


def run_per_id(batches: Batches) -> dict[str, float]:
    """Seconds over the feed: digests of txn and device ids per id (blake2b) and per batch; numbering accounts
    through a Python dict and through the numba table."""
    from streams.features.digest import digests
    from streams.features.table import AccountTable

    spent = dict.fromkeys(("blake2b per id", "batch digests", "dict index", "table (digests + rows)"), 0.0)
    index: dict[str, int] = {}
    table = AccountTable()
    for batch in batches:
        t0 = time.perf_counter()
        np.array([blake2b_digest(t.txn_id) for t in batch], np.int64)
        np.array([blake2b_digest(t.device_id) for t in batch if t.device_id is not None], np.int64)
        t1 = time.perf_counter()
        digests([t.txn_id for t in batch])
        digests([t.device_id for t in batch if t.device_id is not None])
        t2 = time.perf_counter()
        accounts = [t.payer_account for t in batch] + [t.payee_account for t in batch]
        t3 = time.perf_counter()
        rows = [index.get(a, -1) for a in accounts]
        if -1 in rows:
            for k, a in enumerate(accounts):
                if rows[k] == -1:
                    rows[k] = index.setdefault(a, len(index))
        np.array(rows, np.int64)
        t4 = time.perf_counter()
        table.rows(digests(accounts))
        t5 = time.perf_counter()
        for step, seconds in zip(spent, (t1 - t0, t2 - t1, t4 - t3, t5 - t4), strict=True):
            spent[step] += seconds
    return spent


def run_sweep(accounts: int, repeats: int) -> None:
    """Seconds of `prune_idle` over `accounts` accounts. On day 0 every account pays two others; on day 200
    all but the first 1/400 of them pay again (to each other). Then the sweep runs three times: on day 200,
    when nobody has been idle for the expiry (the scan alone; the median of `repeats`); on day 401, when the
    1/400 idle since day 0 are forgotten (a day of a steady feed that loses accounts at the rate a 400-day
    expiry does); on day 601, when all are."""
    day, idle = 86_400_000, FeatureConfig().idle_expiry_days * 86_400_000
    engine = FeatureEngine()
    kept = accounts // 400

    def feed(start: int, first: int, count: int, per_account: int, tag: str) -> None:
        n = count * per_account
        for lo in range(0, n, 10_000):
            engine.process(
                [
                    Transaction(
                        f"{tag}{k}", start + k * (day // n), f"A{first + k % count}",
                        f"A{first + (k * 7919 + 1) % count}", 10.0 + k % 97, device_id=f"d{k % 3}",
                    )
                    for k in range(lo, min(n, lo + 10_000))
                ]
            )  # fmt: skip

    started = time.perf_counter()
    feed(T_SWEEP, 0, accounts, 2, "a")
    feed(T_SWEEP + 200 * day, kept, accounts - kept, 1, "b")
    print(f"state: {len(engine.store):,} accounts, {engine.store.nbytes() / 1e6:,.0f} MB of arrays "
          f"(built in {time.perf_counter() - started:.0f} s)")  # fmt: skip
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        engine.prune_idle(every_ms=0)
        times.append(time.perf_counter() - started)
    print(f"day 200, nobody idle:     {statistics.median(times) * 1e3:8.1f} ms (median of {repeats})")
    for when, label in ((T_SWEEP + 401 * day, "day 401, 1/400 idle:"), (T_SWEEP + 601 * day, "day 601, all idle:")):
        engine.process([Transaction(f"tick{when}", when, "X", "Y", 1.0)])
        before = len(engine.store)
        started = time.perf_counter()
        forgotten = engine.prune_idle(every_ms=0)
        spent = time.perf_counter() - started
        print(f"{label:26}{spent * 1e3:8.1f} ms, {forgotten:,} forgotten, "
              f"{before - len(engine.store):,} rows released")  # fmt: skip
    assert idle == 400 * day  # the figures above assume the default expiry


def measure(args: argparse.Namespace, engine: bool, per_id: bool) -> dict[str, list[float]]:
    """Microseconds per transaction of each measure, one value per repetition (the warm-up one dropped)."""
    batches, calls, labels = feed(args.customers, args.days, args.batch)
    n = sum(len(b) for b in batches)
    out: dict[str, list[float]] = {}
    for rep in range(args.repeats + 1):
        figures = {}
        if engine:
            figures["total"] = run_total(batches, calls, labels)
            figures.update(run_steps(batches, calls, labels))
        if per_id:
            figures.update(run_per_id(batches))
        if rep:
            for name, seconds in figures.items():
                out.setdefault(name, []).append(seconds / n * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions per measurement (after a warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: alternations of the two checkouts")
    parser.add_argument("--baseline", type=Path, help="another checkout whose engine to time alongside")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one subprocess's figures
    parser.add_argument("--sweep", type=int, metavar="ACCOUNTS", help="time prune_idle over this many accounts")
    args = parser.parse_args()
    if args.sweep:
        run_sweep(args.sweep, args.repeats)
        return
    if args.json:
        print(json.dumps(measure(args, engine=True, per_id=False)))
        return
    repetitions = args.repeats * (1 if args.baseline is None else args.rounds)
    print(f"feed: {args.customers:,} customers, {args.days} days, batches of {args.batch}; µs per transaction, "
          f"median of {repetitions} repetitions")  # fmt: skip
    if args.baseline is None:
        report({"this checkout": measure(args, engine=True, per_id=True)})
        return
    runs: dict[str, dict[str, list[float]]] = {"baseline": {}, "this checkout": {}}
    for name, figures in alternate(__file__, args.baseline, _passed(args), args.rounds):
        for measure_name, values in figures.items():
            runs[name].setdefault(measure_name, []).extend(values)
    runs["this checkout"].update(measure(args, engine=False, per_id=True))
    report(runs)


def _passed(args: argparse.Namespace) -> list[str]:
    return [f"--{name}={getattr(args, name)}" for name in ("customers", "days", "batch", "repeats")]


def report(runs: dict[str, dict[str, list[float]]]) -> None:
    names = list(dict.fromkeys(name for figures in runs.values() for name in figures))
    print(f"{'':24}" + "".join(f"{run:>16}" for run in runs))
    for name in names:
        cells = [f"{statistics.median(f[name]):16.2f}" if name in f else f"{'':16}" for f in runs.values()]
        print(f"{name:24}" + "".join(cells))


if __name__ == "__main__":
    main()
