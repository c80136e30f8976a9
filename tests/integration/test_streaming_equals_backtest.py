"""The worker on Kafka and `interceptor backtest` on the same files make the same decisions, txn by txn."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.backtest import load_calls, replay
from streams.pipeline import TransactionPipeline
from streams.scorer import load_scorer
from streams.simulator import SimConfig, simulate
from tests.integration.conftest import Deployment
from tests.integration.kafka_io import produce, read_topic

pytestmark = pytest.mark.integration
COMPARED = ("action", "score", "reasons", "shadow", "ruleset", "amount", "currency")


def test_streaming_and_backtest_decide_a_100k_feed_identically(deployment: Deployment, tmp_path: Path) -> None:
    feed = simulate(SimConfig(customers=10_100, days=7, seed=11))
    assert len(feed.transactions) >= 100_000
    files = {}
    for name, events in (("transactions", feed.transactions), ("calls", feed.calls)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))

    pipeline = TransactionPipeline(load_scorer(None))
    assert load_calls(pipeline, files["calls"]) == []
    replayed: dict[str, dict] = {}
    replay(
        pipeline, files["transactions"], 1000, lambda r: replayed.setdefault(orjson.loads(r)["txn_id"], orjson.loads(r))
    )

    bootstrap = deployment.broker.bootstrap
    # One partition: Kafka orders a partition, and the file's order is then the worker's order too.
    # (Across partitions, the arrival order of different accounts' transfers is not defined.)
    overrides = {"INTERCEPTOR_PARTITIONS": "1"}
    from streams.settings import Settings
    from streams.topics import ensure_topics

    ensure_topics(Settings.from_env(deployment.worker_env(**overrides)))
    produce(bootstrap, deployment.topic("calls"), ((c["callee_phone"].encode(), orjson.dumps(c)) for c in feed.calls))
    deployment.start_worker(**overrides)
    produce(
        bootstrap,
        deployment.topic("transactions"),
        ((t["payer_account"].encode(), orjson.dumps(t)) for t in feed.transactions),
    )
    streamed = {
        d["txn_id"]: d
        for d in (r.json() for r in read_topic(bootstrap, deployment.topic("decisions"), len(replayed), 300))
    }
    assert streamed.keys() == replayed.keys()
    different = [t for t in replayed if any(replayed[t][k] != streamed[t][k] for k in COMPARED)]
    assert different == [], f"{len(different)} decisions differ, e.g. {different[:3]}"
    assert sum(d["action"] != "allow" for d in streamed.values()) > 50  # the comparison covers real interceptions
