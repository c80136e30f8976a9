"""Two workers share the partitions; one leaves in the middle of the run and comes back (two rebalances).

Faust 0.15 drops the pending acks of revoked partitions before it commits, so the new owner of a partition is
handed transactions that were already decided; it finds their decisions on `decisions` (streams/handoff.py)
and answers them byte for byte. Checked: every transaction decided, none decided two ways.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict

import orjson
import pytest

from streams.simulator import SimConfig, simulate
from tests.integration.conftest import Deployment
from tests.integration.kafka_io import produce, read_topic, topic_size, wait_for

pytestmark = pytest.mark.integration

# A rule that fires on every transaction and reports a value that depends on the payer's history: a worker
# that decided a re-delivered transaction again, without the state its first owner had, would write a
# different reason.
RULES = """
ruleset: {version: "rebalance-1", thresholds: {review: 10, hold: 20, block: 30}}
rules:
  - {id: history, description: d, score: 1, when: payer.txn_count_24h >= 0 and payer.amount_sum_24h >= 0}
"""


def test_a_worker_leaving_and_rejoining_loses_nothing_and_decides_nothing_twice(deployment: Deployment) -> None:
    feed = simulate(SimConfig(customers=2000, days=3, seed=31, fraud_rate=0.03))
    txns = feed.transactions
    rules = deployment.tmp / "rules.yaml"
    rules.write_text(RULES)
    common = {
        "INTERCEPTOR_CHECKPOINT_INTERVAL_S": "0.3",
        "INTERCEPTOR_BATCH_MAX": "500",
        "INTERCEPTOR_RULES_PATH": str(rules),
    }
    first = deployment.start_worker(INTERCEPTOR_DATA_DIR=str(deployment.tmp / "w1"), **common)
    second = deployment.start_worker(INTERCEPTOR_DATA_DIR=str(deployment.tmp / "w2"), **common)
    bootstrap = deployment.broker.bootstrap
    produce(bootstrap, deployment.topic("calls"), ((c["callee_phone"].encode(), orjson.dumps(c)) for c in feed.calls))
    time.sleep(2)
    produce(bootstrap, deployment.topic("transactions"), ((t["payer_account"].encode(), orjson.dumps(t)) for t in txns))

    # the second worker leaves while both are busy, and comes back a little later
    wait_for(lambda: topic_size(bootstrap, deployment.topic("decisions")) > len(txns) // 4, 120, "a quarter decided")
    second.stop(signal.SIGTERM)
    wait_for(lambda: topic_size(bootstrap, deployment.topic("decisions")) > len(txns) // 2, 120, "half decided")
    deployment.start_worker(INTERCEPTOR_DATA_DIR=str(deployment.tmp / "w2"), **common)

    records = [r.json() for r in read_topic(bootstrap, deployment.topic("decisions"), len(txns), 300)]
    by_txn: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["kind"] == "decision":
            by_txn[r["txn_id"]].append(r)
    assert set(by_txn) == {t["txn_id"] for t in txns}  # nothing lost
    differ = {k: v for k, v in by_txn.items() if len({(d["action"], d["score"], str(d["reasons"])) for d in v}) > 1}
    assert differ == {}, f"{len(differ)} transactions decided two ways, e.g. {next(iter(differ.items()))}"
    repeated = sum(len(v) - 1 for v in by_txn.values())
    print(f"{len(txns)} transactions, {repeated} decisions written again after the rebalances (all identical)")
    assert first.process.poll() is None  # the first worker stayed up through both rebalances
