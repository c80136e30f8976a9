"""Checkpoint size and recovery time for N tracked accounts (default 1,000,000).

    .venv/bin/python benchmarks/bench_checkpoint.py [--accounts 1000000]

N customers make two transfers each, from one device, in the 24 h window, to payees drawn from N/10 shops and
relatives (who are tracked accounts too): the state of a typical day. Reports the memory and checkpoint bytes
per tracked account (and how the arrays divide it), the write time and the load (recovery) time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from streams.dedup import DecisionLog, Remembered
from streams.events import Transaction
from streams.features.engine import FeatureEngine
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
    engine = build(args.accounts)
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    path = Path(tempfile.mkdtemp()) / "bench.checkpoint"
    written = save(path, engine, DecisionLog())
    size = path.stat().st_size
    started = time.perf_counter()
    restored = load(path)
    loaded = time.perf_counter() - started
    tracked = len(engine.store)
    assert restored is not None and len(restored.engine.store) == tracked
    print(f"accounts            {tracked:,} ({args.accounts:,} customers, {tracked - args.accounts:,} payees)")
    store = engine.store
    print(f"memory per account  {memory / tracked:,.0f} bytes (arrays {store.nbytes() / tracked:,.0f}, the rest "
          "Python objects, mostly modules loaded during the run)")  # fmt: skip
    parts = {
        "accounts": store.acc.nbytes + store.mark.nbytes,
        "inflow records": store.inf.nbytes,
        "account table": store.table.keys.nbytes + store.table.slots.nbytes,
        "transfers": store.tr.nbytes,
        "known payees": store.kp.nbytes,
        "known devices": store.kd.nbytes,
    }
    for name, nbytes in parts.items():
        print(f"  {name:18}{nbytes / tracked:,.0f} bytes")
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


if __name__ == "__main__":
    main()
