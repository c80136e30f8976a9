"""kill -9 in the middle of a run, restart: nothing lost, nothing decided two ways, state as if uninterrupted."""

from __future__ import annotations

import signal
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from streams.pipeline import TransactionPipeline
from streams.settings import Settings
from streams.simulator import SimConfig, simulate
from streams.snapshot import Checkpoint, checkpoint_path
from streams.snapshot import load as load_checkpoint
from streams.topics import ensure_topics
from tests.integration.conftest import (
    DecisionRecords,
    Deployment,
    assert_counted_once,
    free_port,
    intercepted_totals,
    metric_sum,
    reference_run,
    same_decision,
    scrape_metrics,
)
from tests.integration.kafka_io import produce, wait_for

pytestmark = pytest.mark.integration


@dataclass
class KilledRun:
    n: int
    reference: TransactionPipeline
    expected: dict[str, dict]  # txn_id -> the uninterrupted run's decision
    decisions: DecisionRecords
    killed_at: float  # epoch seconds; the killed worker decided nothing after it
    final: Checkpoint  # the second worker's last checkpoint, written when it stopped
    second_worker_metrics: dict


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def decided_by_the_second_worker(run: KilledRun) -> list[dict]:
    """The decisions the restarted worker made itself, once per txn_id. A decision answered again (from a
    decision log) is the first one byte for byte, decided_at included; a decision made anew is dated after the
    kill."""
    out = []
    for copies in run.decisions.by_txn.values():
        fresh = [c for c in copies if _epoch(c["decided_at"]) > run.killed_at]
        if fresh:
            out.append(fresh[0])
    return out


def kill_9_mid_run(
    deployment: Deployment, tmp_path: Path, customers: int, env: dict[str, str], timeout: float
) -> KilledRun:
    """Simulate a feed, decide it with a worker killed with SIGKILL once half of it is decided, and a second
    worker that finishes it; alongside, the same pipeline over the files without Kafka (the uninterrupted run).

    The worker is faster than the test can watch it, so only 60 % of the feed is there before the kill: 30 %,
    then, once the worker has written its first checkpoint (one interval after it started; on a fast machine it
    could otherwise be killed before), 30 % more. The worker is killed in the middle of that backlog (or just
    after it), the rest arrives while it is down."""
    feed = simulate(SimConfig(customers=customers, days=7, seed=31))
    n = len(feed.transactions)
    ref = reference_run(feed, tmp_path, 500)
    reference, expected = ref.pipeline, ref.expected

    ensure_topics(Settings.from_env(deployment.worker_env(**env)))
    bootstrap = deployment.broker.bootstrap
    produce(bootstrap, deployment.topic("calls"), ((c["callee_phone"].encode(), orjson.dumps(c)) for c in feed.calls))
    first = deployment.start_worker(**env, INTERCEPTOR_METRICS_PORT=str(free_port()))
    messages = [(t["payer_account"].encode(), orjson.dumps(t)) for t in feed.transactions]
    data = Path(deployment.worker_env(**env)["INTERCEPTOR_DATA_DIR"])
    checkpoint = checkpoint_path(str(data), deployment.app_id)
    first_part, before_kill = int(n * 0.3), int(n * 0.6)
    produce(bootstrap, deployment.topic("transactions"), messages[:first_part])
    wait_for(checkpoint.exists, timeout, "the worker's first checkpoint")
    produce(bootstrap, deployment.topic("transactions"), messages[first_part:before_kill])
    decisions = DecisionRecords(bootstrap, deployment.topic("decisions"))
    decisions.wait_for(n // 2, timeout, "half of the decisions before the kill")
    first.stop(signal.SIGKILL)
    killed_at = time.time()
    produce(bootstrap, deployment.topic("transactions"), messages[before_kill:])

    metrics_port = free_port()
    second = deployment.start_worker(**env, INTERCEPTOR_METRICS_PORT=str(metrics_port))
    assert "state restored from the checkpoint" in second.log()
    for probe in ("/healthz", "/readyz"):  # what Kubernetes asks (deploy/k8s/worker.yaml)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}{probe}", timeout=10) as answer:
            assert answer.status == 200, probe
    started = scrape_metrics(metrics_port)  # and what Prometheus sees of the same
    assert metric_sum(started, "interceptor_ready") == 1
    assert metric_sum(started, "process_resident_memory_bytes") > 0
    decisions.wait_for(n, timeout, "every transaction decided after the restart")
    # its counter may trail the topic by a batch: a bounded wait here, the exact comparison later
    fresh = sum(1 for copies in decisions.by_txn.values() if any(_epoch(c["decided_at"]) > killed_at for c in copies))
    try:
        wait_for(
            lambda: metric_sum(scrape_metrics(metrics_port), "interceptor_decisions_total") >= fresh,
            30,
            "the restarted worker's decision counter",
        )
    except AssertionError:
        counted = metric_sum(scrape_metrics(metrics_port), "interceptor_decisions_total")
        raise AssertionError(
            f"the restarted worker decided {fresh} transactions itself but counted {counted}"
        ) from None
    second_worker_metrics = scrape_metrics(metrics_port)
    second.stop()
    decisions.poll()
    decisions.close()
    final = load_checkpoint(checkpoint)
    assert final is not None, "the restarted worker's last checkpoint cannot be read"
    return KilledRun(n, reference, expected, decisions, killed_at, final, second_worker_metrics)


def assert_nothing_lost_and_state_recovered(run: KilledRun) -> None:
    decided = run.decisions.by_txn
    assert set(decided) == set(run.expected), "transactions without a decision, or decisions of unknown ones"
    two_ways = run.decisions.decided_two_ways()
    assert two_ways == {}, f"{len(two_ways)} transactions decided two ways, e.g. {next(iter(two_ways.items()))}"
    differ = [t for t, copies in decided.items() if same_decision(copies[0]) != same_decision(run.expected[t])]
    assert differ == [], (
        f"{len(differ)} decisions differ from the uninterrupted run, e.g. "
        f"{same_decision(decided[differ[0]][0])} != {same_decision(run.expected[differ[0]])}"
    )

    # interception totals recounted from the decisions topic (once per txn_id) equal the uninterrupted run's
    recount = intercepted_totals(copies[0] for copies in decided.values())
    assert recount, "nothing was held or blocked: the interception totals compare nothing"
    uninterrupted = intercepted_totals(run.expected.values())
    assert {k: count for k, (count, _) in recount.items()} == {k: count for k, (count, _) in uninterrupted.items()}
    assert {k: amount for k, (_, amount) in recount.items()} == pytest.approx(
        {k: amount for k, (_, amount) in uninterrupted.items()}
    )

    # the restarted worker counts what it decided itself, each once, and not what it answered again (those were
    # counted by the worker that decided them)
    its_own = decided_by_the_second_worker(run)
    assert its_own, "the restarted worker decided nothing itself"
    assert_counted_once([run.second_worker_metrics], its_own)

    final, reference = run.final.engine.store, run.reference.engine.store
    assert set(final.accounts()) == set(reference.accounts()), "accounts missing from or added to the state"
    for account in reference.accounts():
        assert final.account(account) == reference.account(account), account


@pytest.mark.timeout(240)
def test_kill_9_mid_run_loses_nothing_and_recovers_the_state(deployment: Deployment, tmp_path: Path) -> None:
    """25k transactions, a checkpoint every 0.3 s; the default 60 s group session, so the restarted worker
    gets its partition only once the killed one's session has expired."""
    env = {"INTERCEPTOR_PARTITIONS": "1", "INTERCEPTOR_CHECKPOINT_INTERVAL_S": "0.3", "INTERCEPTOR_BATCH_MAX": "200"}
    run = kill_9_mid_run(deployment, tmp_path, customers=2500, env=env, timeout=150)
    assert run.n > 20_000
    assert_nothing_lost_and_state_recovered(run)


@pytest.mark.timeout(240)
def test_kill_9_in_a_100k_run_loses_nothing_and_recovers_the_state(deployment: Deployment, tmp_path: Path) -> None:
    """The issue's 100k-transaction run, with the default checkpoint interval (10 s). The group session
    is 10 s here (INTERCEPTOR_SESSION_TIMEOUT_S) instead of 60 s, so the
    restarted worker is not kept waiting for the killed one's session to expire."""
    env = {
        "INTERCEPTOR_PARTITIONS": "1",
        "INTERCEPTOR_BATCH_MAX": "500",
        "INTERCEPTOR_SESSION_TIMEOUT_S": "10",
    }
    run = kill_9_mid_run(deployment, tmp_path, customers=10_000, env=env, timeout=150)
    assert run.n >= 95_000
    assert_nothing_lost_and_state_recovered(run)


@pytest.mark.timeout(240)
def test_kill_9_with_more_uncommitted_than_the_decision_log_holds(deployment: Deployment, tmp_path: Path) -> None:
    """A worker deciding a backlog fast enough to fill its decision log within one checkpoint interval (here a
    3,000-decision log and a 10-minute interval): it checkpoints and commits by the log's fill as well, so what a
    restart re-delivers is still remembered and answered as first decided, never decided again differently."""
    env = {
        "INTERCEPTOR_PARTITIONS": "1",
        "INTERCEPTOR_BATCH_MAX": "200",
        "INTERCEPTOR_CHECKPOINT_INTERVAL_S": "600",
        "INTERCEPTOR_DECISION_LOG_SIZE": "3000",
        "INTERCEPTOR_SESSION_TIMEOUT_S": "10",
    }
    run = kill_9_mid_run(deployment, tmp_path, customers=2500, env=env, timeout=150)
    assert run.n > 20_000
    assert_nothing_lost_and_state_recovered(run)
