"""Per-transaction time of the worker's pipeline (`TransactionPipeline.process`) without Kafka.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pipeline.py [--transactions 100000 --batch 1000]
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pipeline.py --baseline /tmp/before

The feed is the one `interceptor bench` offers (`streams.bench.feed`), as raw records of four partitions:
decoding, de-duplication, features, scoring with the default ruleset, holds and encoding, everything the
worker does to a batch between the consumer and the producer. A repetition runs the whole feed through a
fresh pipeline, in batches; the first repetition (numba's cache, imports) is not counted. Figures are medians,
in microseconds per transaction. With `--baseline DIR` (another checkout, e.g. `mkdir /tmp/before && git
archive HEAD | tar -x -C /tmp/before`), that checkout's pipeline is timed too, in subprocesses alternating with
this checkout's, so both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from alternate import alternate

from streams.bench import feed
from streams.outputs import RawRecord
from streams.pipeline import TransactionPipeline
from streams.scorer import load_scorer

T0 = 1_772_330_400_000


def measure(transactions: int, batch: int, repeats: int) -> list[float]:
    """Microseconds per transaction, one value per counted repetition."""
    records = [
        RawRecord(value, "transactions", i % 4, i, T0 + i, key) for i, (key, value) in enumerate(feed(transactions))
    ]
    out = []
    for rep in range(repeats + 1):
        pipeline = TransactionPipeline(load_scorer(None))
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            pipeline.process(records[i : i + batch], now_ms=T0 + i)
        if rep:
            out.append((time.perf_counter() - started) / len(records) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per run (after a warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: alternations of the two checkouts")
    parser.add_argument("--baseline", type=Path, help="another checkout whose pipeline to time alongside")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one subprocess's figures
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.transactions, args.batch, args.repeats)))
        return
    if args.baseline is None:
        runs = {"this checkout": measure(args.transactions, args.batch, args.repeats)}
    else:
        runs = {"baseline": [], "this checkout": []}
        passed = [f"--transactions={args.transactions}", f"--batch={args.batch}", f"--repeats={args.repeats}"]
        for name, values in alternate(__file__, args.baseline, passed, args.rounds):
            runs[name].extend(values)
    print(f"{args.transactions:,} transactions in batches of {args.batch}; µs per transaction")
    for name, values in runs.items():
        print(f"{name:>14}: median {statistics.median(values):6.2f}  ({', '.join(f'{v:.2f}' for v in values)})")
    if args.baseline is not None:
        ratio = statistics.median(runs["this checkout"]) / statistics.median(runs["baseline"])
        print(f"{'ratio':>14}: {ratio:.2f} (this checkout / baseline)")


if __name__ == "__main__":
    main()
