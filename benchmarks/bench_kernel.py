"""Scoring-kernel throughput: transactions/s for the default ruleset and a synthetic 500-rule ruleset.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_kernel.py [--repeats 7] [--seconds 0.5]

Feature rows are random but realistic (about a fifth missing, booleans 0/1, category codes), so the
three-valued logic takes all its paths. Reports the median of the repeats; one core, serial kernel.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from rules.features import REGISTRY, FeatureType
from rules.ruleset import default_ruleset_path, load_ruleset
from scoring.kernel import score_batch, warm_up
from scoring.program import Op, Program


def random_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.empty((n, len(REGISTRY)))
    for j, f in enumerate(REGISTRY):
        if f.type is FeatureType.BOOL:
            rows[:, j] = rng.integers(0, 2, n)
        elif f.type is FeatureType.CATEGORY:
            rows[:, j] = rng.integers(0, len(f.categories), n)
        else:
            rows[:, j] = rng.lognormal(6, 2, n)
    rows[rng.random(rows.shape) < 0.2] = np.nan
    return rows


def synthetic_program(n_rules: int, rng: np.random.Generator) -> Program:
    """Rules of the default ruleset's shape: three comparisons joined by 'and'."""
    numbers = [i for i, f in enumerate(REGISTRY) if f.type is FeatureType.NUMBER]
    rules = []
    for _ in range(n_rules):
        code: list[tuple[Op, float]] = []
        for k in range(3):
            code += [(Op.LOAD, float(rng.choice(numbers))), (Op.CONST, float(rng.lognormal(6, 2))), (Op.GT, 0.0)]
            if k:
                code.append((Op.AND, 0.0))
        rules.append(code)
    return Program.build(rules, [10.0] * n_rules, [0] * n_rules, [False] * n_rules, (30, 60, 100), len(REGISTRY))


def measure(program: Program, rows: np.ndarray, batch: int, seconds: float, repeats: int) -> float:
    batches = [np.ascontiguousarray(rows[i : i + batch]) for i in range(0, len(rows) - batch + 1, batch)]
    rates = []
    for _ in range(repeats):
        done = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for b in batches:
                score_batch(program, b)
            done += len(batches) * batch
        rates.append(done / elapsed)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    rows = random_rows(16_384, rng)
    programs = {
        "default": load_ruleset(default_ruleset_path()).program,
        "synthetic-500": synthetic_program(500, rng),
    }
    print(f"{'ruleset':<15}{'rules':>6}{'batch':>7}{'tx/s (median)':>16}")
    for name, program in programs.items():
        warm_up(program)
        for batch in (1, 64, 1024):
            rate = measure(program, rows, batch, args.seconds, args.repeats)
            print(f"{name:<15}{program.n_rules:>6}{batch:>7}{rate:>16,.0f}")


if __name__ == "__main__":
    main()
