"""kill -9 in the middle of a run, restart: nothing lost, nothing decided two ways, state as if uninterrupted."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest

from streams.backtest import load_calls, replay
from streams.pipeline import TransactionPipeline
from streams.scorer import load_scorer
from streams.settings import Settings
from streams.simulator import SimConfig, simulate
from streams.snapshot import checkpoint_path
from streams.snapshot import load as load_checkpoint
from streams.topics import ensure_topics
from tests.integration.conftest import Deployment
from tests.integration.kafka_io import produce, read_topic, topic_size, wait_for

pytestmark = pytest.mark.integration
COMPARED = ("action", "score", "reasons", "shadow", "ruleset")


def decisions_by_txn(deployment: Deployment, at_least: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in read_topic(deployment.broker.bootstrap, deployment.topic("decisions"), at_least, 120):
        d = r.json()
        out.setdefault(d["txn_id"], []).append({k: d[k] for k in COMPARED})
    return out


def test_kill_9_mid_run_loses_nothing_and_recovers_the_state(deployment: Deployment, tmp_path: Path) -> None:
    feed = simulate(SimConfig(customers=2500, days=7, seed=31))
    n = len(feed.transactions)
    files = {name: tmp_path / f"{name}.jsonl" for name in ("transactions", "calls")}
    files["transactions"].write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in feed.transactions))
    files["calls"].write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in feed.calls))

    # the uninterrupted run: the same pipeline over the file
    reference = TransactionPipeline(load_scorer(None))
    load_calls(reference, files["calls"])
    expected: dict[str, dict] = {}
    replay(
        reference, files["transactions"], 500, lambda r: expected.setdefault(orjson.loads(r)["txn_id"], orjson.loads(r))
    )

    env = {"INTERCEPTOR_PARTITIONS": "1", "INTERCEPTOR_CHECKPOINT_INTERVAL_S": "0.3", "INTERCEPTOR_BATCH_MAX": "200"}
    ensure_topics(Settings.from_env(deployment.worker_env(**env)))
    bootstrap = deployment.broker.bootstrap
    produce(bootstrap, deployment.topic("calls"), ((c["callee_phone"].encode(), orjson.dumps(c)) for c in feed.calls))
    first = deployment.start_worker(**env)
    produce(
        bootstrap,
        deployment.topic("transactions"),
        ((t["payer_account"].encode(), orjson.dumps(t)) for t in feed.transactions),
    )
    decisions = deployment.topic("decisions")
    wait_for(lambda: topic_size(bootstrap, decisions) >= n // 4, 120, "a quarter of the decisions", interval=0.05)
    first.stop(signal.SIGKILL)
    decided_before = len(decisions_by_txn(deployment, 1))
    assert decided_before < n, "the worker finished before it was killed; the test proves nothing"

    second = deployment.start_worker(**env)
    assert "state restored from the checkpoint" in second.log()
    wait_for(lambda: len(decisions_by_txn(deployment, 1)) == n, 180, "every transaction decided after the restart")
    second.stop()

    decided = decisions_by_txn(deployment, n)
    assert set(decided) == set(expected)
    two_ways = [t for t, copies in decided.items() if any(c != copies[0] for c in copies)]
    assert two_ways == []
    differ = [t for t, copies in decided.items() if copies[0] != {k: expected[t][k] for k in COMPARED}]
    assert differ == [], [(decided[t], {k: expected[t][k] for k in COMPARED}) for t in differ[:2]]

    state = load_checkpoint(checkpoint_path(str(deployment.tmp / "data"), deployment.app_id))
    assert state is not None
    for account, ref in reference.engine.accounts.items():
        got = state.engine.accounts[account]
        assert [t.txn_id for t in got.outflows] == [t.txn_id for t in ref.outflows], account
        assert [t.txn_id for t in got.inflows] == [t.txn_id for t in ref.inflows], account
        assert (got.out_count, got.known_payees, got.known_devices) == (
            ref.out_count,
            ref.known_payees,
            ref.known_devices,
        )
