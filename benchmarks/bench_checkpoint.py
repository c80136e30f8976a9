"""Checkpoint size and recovery time for N tracked accounts (default 1,000,000).

    .venv/bin/python benchmarks/bench_checkpoint.py [--accounts 1000000]

N customers make two transfers each, from one device, in the 24 h window, to payees drawn from N/10 shops and
relatives (who are tracked accounts too): the state of a typical day. Reports the memory and checkpoint bytes
per tracked account, the write time and the load (recovery) time.

The memory is divided into what each tracked account costs (its record, its place in the account table, its
known payees and devices, an inflow record if it received money) and what each transfer held costs (the last
24 h plus the allowed lateness: that part grows with the day's volume, not with the accounts), each with its
record size and the share of the array that is spare capacity (free or not yet used slots: arrays grow by an
eighth). numba's compiled kernels and typing, loaded once per process, are measured apart, not per account.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from streams.dedup import DecisionLog, Remembered
from streams.events import Transaction
from streams.features.engine import FeatureEngine
from streams.features.layout import END, INF_FREE, INF_N, KD_NFREE, KP_NFREE, TR_NFREE
from streams.features.store import AccountStore
from streams.snapshot import ForkedSave, load, save


def build(n: int) -> FeatureEngine:
    engine = FeatureEngine()
    t0 = 1_772_294_400_000
    opened = date(2023, 9, 1)
    payees = max(1, n // 10)
    batch = []
    for k in range(2):
        for i in range(n):
            batch.append(
                Transaction(f"t{i}-{k}", t0 + k * 3_600_000 + i % 3_600_000, f"6222{i:012d}",
                            f"6217{(i * 7 + k) % payees:012d}", 120.0 + k, device_id=f"dev-{i}",
                            payer_account_opened=opened)
            )  # fmt: skip
            if len(batch) == 10_000:
                engine.process(batch)
                batch = []
    engine.process(batch)
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    args = parser.parse_args()
    tracemalloc.start()
    FeatureEngine().process([Transaction("warm-up", 1_772_294_400_000, "a", "b", 1.0)])  # loads the kernels
    gc.collect()  # what loading them left in reference cycles
    fixed = tracemalloc.get_traced_memory()[0]
    engine = build(args.accounts)
    gc.collect()
    memory = tracemalloc.get_traced_memory()[0] - fixed
    tracemalloc.stop()
    path = Path(tempfile.mkdtemp()) / "bench.checkpoint"
    written = save(path, engine, DecisionLog())
    size = path.stat().st_size
    started = time.perf_counter()
    restored = load(path)
    loaded = time.perf_counter() - started
    tracked = len(engine.store)
    assert restored is not None and len(restored.engine.store) == tracked
    store = engine.store
    print(f"accounts            {tracked:,} ({args.accounts:,} customers, {tracked - args.accounts:,} payees)")
    print(f"memory per account  {memory / tracked:,.0f} bytes (arrays {store.nbytes() / tracked:,.0f}, the rest Python "
          f"objects); numba's kernels, loaded once: {fixed / 1e6:,.1f} MB more ({(memory + fixed) / tracked:,.0f} "
          "per account with them)")  # fmt: skip
    report_arrays(store, tracked)
    print(f"checkpoint          {size / 1e6:,.1f} MB = {size / tracked:,.0f} bytes per account")
    print(f"write               {written:.1f} s")
    print(f"recovery (load)     {loaded:.1f} s")
    # what the worker itself waits for: the fork of the copy that writes the checkpoint (streams/snapshot.py),
    # with a full decision log next to the state
    decisions = DecisionLog()
    for i in range(decisions.capacity):
        decisions.put(f"t{i:09d}", Remembered(i, b'{"kind": "decision"}' * 20, i % 10 == 0))
    pauses, children = [], []
    for _ in range(3):
        started = time.perf_counter()
        saving = ForkedSave(path, engine, decisions)
        pauses.append(time.perf_counter() - started)
        saving.wait()
        children.append(time.perf_counter() - started)
    print(f"worker's pause      {statistics.median(pauses) * 1000:.1f} ms (fork; the copy writes the checkpoint with "
          f"{len(decisions):,} decisions in {statistics.median(children):.1f} s)")  # fmt: skip


def report_arrays(store: AccountStore, tracked: int) -> None:
    """The arrays' bytes per tracked account: those each account costs, then those each transfer held costs."""
    c = store.counters
    inflows, j = int(c[INF_N]), int(c[INF_FREE])
    while j != END:
        inflows -= 1
        j = int(store.inf[j]["period"][0])
    table = store.table
    transfers = store.tr.shape[0] - int(c[TR_NFREE])
    # name, bytes, record size, records in use
    per_account = [
        ("account records", store.acc.nbytes, store.acc.itemsize, tracked),
        ("account table", table.keys.nbytes + table.slots.nbytes, table.keys.itemsize, tracked),
        ("known payees", store.kp.nbytes, store.kp.itemsize, store.kp.shape[0] - int(c[KP_NFREE])),
        ("known devices", store.kd.nbytes, store.kd.itemsize, store.kd.shape[0] - int(c[KD_NFREE])),
        ("inflow records", store.inf.nbytes, store.inf.itemsize, inflows),
    ]
    total = sum(nbytes for _, nbytes, _, _ in per_account) + store.mark.nbytes
    print(f"  per tracked account   {total / tracked:5,.0f} bytes")
    for name, nbytes, itemsize, used in per_account:
        records = nbytes // itemsize if name != "account table" else table.keys.shape[0]
        detail = f"{itemsize} B each, {used / tracked:.2f} per account, {1 - used / records:.0%} spare"
        if name == "account table":
            detail = (f"{itemsize} B digest per row, {1 - used / records:.0%} spare rows; {table.slots.itemsize} B "
                      f"slots at {len(table) / table.slots.shape[0]:.0%} load")  # fmt: skip
        print(f"    {name:20}{nbytes / tracked:5,.0f}  ({detail})")
    print(f"    {'distinct scratch':20}{store.mark.nbytes / tracked:5,.0f}  ({store.mark.nbytes / 1e3:,.0f} KB in all)")
    print(f"  per transfer held     {store.tr.nbytes / transfers:5,.0f} bytes ({store.tr.itemsize} B each, "
          f"{1 - transfers / store.tr.shape[0]:.0%} spare): {transfers:,} held (the last 24 h + lateness), "
          f"{transfers / tracked:.2f} per account = {store.tr.nbytes / tracked:,.0f} bytes per account")  # fmt: skip


if __name__ == "__main__":
    main()
