"""Checkpoint size and recovery time for N tracked accounts (default 1,000,000).

    .venv/bin/python benchmarks/bench_checkpoint.py [--accounts 1000000]

Each account gets the state of a typical customer: two transfers in the 24 h window, a few known payees and
one device. Reports the checkpoint's bytes per account, the write time and the load (recovery) time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

from streams.dedup import DecisionLog
from streams.features.engine import FeatureEngine
from streams.features.state import Account, Transfer
from streams.snapshot import load, save


def build(n: int) -> FeatureEngine:
    engine = FeatureEngine()
    t0 = 1_772_294_400_000
    for i in range(n):
        a = Account()
        for k in range(2):
            a.add_outflow(Transfer(t0 + k * 3_600_000, 120.0 + k, f"6217{(i * 7 + k) % 10**9:012d}", f"t{i}-{k}"))
        a.add_device(f"dev-{i}", t0)
        a.opened_ms = t0 - 900 * 86_400_000
        engine.accounts[f"6222{i:012d}"] = a
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
    assert restored is not None and len(restored.engine.accounts) == args.accounts
    print(f"accounts            {args.accounts:,}")
    print(f"memory per account  {memory / args.accounts:,.0f} bytes (Python objects)")
    print(f"checkpoint          {size / 1e6:,.1f} MB = {size / args.accounts:,.0f} bytes per account")
    print(f"write               {written:.1f} s")
    print(f"recovery (load)     {loaded:.1f} s")


if __name__ == "__main__":
    main()
