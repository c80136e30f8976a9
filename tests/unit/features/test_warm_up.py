"""The worker warms the feature engine's kernels before it says it is ready (streams/worker.py): with a cold
numba cache, compiling them in the first batch held the first transactions after a start for seconds."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]

SCRIPT = """
import numba
from streams.features import digest, kernels
from streams.features.engine import FeatureEngine, warm_up
from streams.simulator import SimConfig, simulate

def compiled():
    found = {}
    for module in (kernels, digest):
        for name, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher):
                found[f"{module.__name__}.{name}"] = len(value.signatures)
    return found

warm_up()
before = compiled()
feed = simulate(SimConfig(customers=300, days=2, seed=5))
engine = FeatureEngine()
from streams.events import decode_call, decode_transaction
import orjson
for call in feed.calls:
    engine.add_call(decode_call(orjson.dumps(call)))
txns = [decode_transaction(orjson.dumps(t)) for t in feed.transactions]
for i in range(0, len(txns), 500):
    engine.process(txns[i:i + 500])
engine.prune_idle(every_ms=0)
after = compiled()
print(sorted(name for name in after if after[name] != before.get(name)))
"""


def test_deciding_after_the_warm_up_compiles_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert run.stdout.strip() == "[]", run.stdout  # kernels compiled in the batch instead of at the start
