"""The broker goes away in the middle of a run and comes back: the worker carries on by itself.

Each test has a broker of its own (the session broker is shared by the other tests), stops it with local-kafka
while a worker is deciding a feed that keeps coming (the producer retries through the outage, like a bank's), and starts it again on the same port and data dir a few seconds later.
Nobody touches the worker. Afterwards every transaction has a decision, none has two different ones, each is
the decision of an uninterrupted run, and the worker's Prometheus totals equal a recount of the decisions topic.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from streams.settings import Settings
from streams.simulator import SimConfig, simulate
from streams.topics import ensure_topics
from tests.integration.conftest import (
    DecisionRecords,
    Deployment,
    free_port,
    intercepted_totals,
    metric_sum,
    private_broker,
    reference_run,
    same_decision,
    scrape_metrics,
)
from tests.integration.kafka_io import produce, produce_paced, topic_size, wait_for

pytestmark = pytest.mark.integration

OUTAGE_S = 3.0  # how long the broker stays down, on top of the time it takes to stop and start
FEED_TX_PER_S = 1_000  # the bank feed's pace: the worker is still at work when the broker goes (and so is the feed)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("stop_signal", ["TERM", "KILL"])
def test_worker_carries_on_by_itself_after_the_broker_restarts(tmp_path: Path, stop_signal: str) -> None:
    feed = simulate(SimConfig(customers=2000, days=7, seed=47))
    n = len(feed.transactions)
    ref = reference_run(feed, tmp_path, 200)  # the uninterrupted run: the same pipeline over the files
    expected = ref.expected

    with private_broker(tmp_path) as broker:
        deployment = Deployment(broker, prefix="faults.", app_id="interceptor-faults", tmp=tmp_path)
        metrics_port = free_port()
        # one partition, so the order is the file's and the decisions must equal the reference run's
        env = {
            "INTERCEPTOR_PARTITIONS": "1",
            "INTERCEPTOR_CHECKPOINT_INTERVAL_S": "1",
            "INTERCEPTOR_BATCH_MAX": "200",
            "INTERCEPTOR_METRICS_PORT": str(metrics_port),
        }
        try:
            ensure_topics(Settings.from_env(deployment.worker_env(**env)))
            produce(
                broker.bootstrap,
                deployment.topic("calls"),
                ((c["callee_phone"].encode(), orjson.dumps(c)) for c in feed.calls),
            )
            worker = deployment.start_worker(**env)
            feeding = produce_paced(
                broker.bootstrap,
                deployment.topic("transactions"),
                [(t["payer_account"].encode(), orjson.dumps(t)) for t in feed.transactions],
                FEED_TX_PER_S,
            )
            decisions_topic = deployment.topic("decisions")
            wait_for(
                lambda: topic_size(broker.bootstrap, decisions_topic) >= n // 4,
                120,
                "a quarter of the decisions before the broker goes away",
                interval=0.05,
            )
            broker.run("stop", KAFKA_STOP_SIGNAL=stop_signal)
            time.sleep(OUTAGE_S)
            broker.run("start")
            back_at = time.time()
            assert worker.process.poll() is None, (
                f"the worker exited ({worker.process.returncode}) while the broker was down:\n{worker.log()[-3000:]}"
            )

            feeding.join(180)
            decisions = DecisionRecords(broker.bootstrap, decisions_topic)
            try:
                decisions.wait_for(n, 150, "every transaction decided after the broker came back")
            except AssertionError as error:
                alive = "running" if worker.process.poll() is None else f"exited with {worker.process.returncode}"
                raise AssertionError(f"{error}; the worker is {alive}; its log ends:\n{worker.log()[-3000:]}") from None
            # the decision counter may lag the topic by a batch: bounded wait, then exact comparisons
            wait_for(
                lambda: metric_sum(scrape_metrics(metrics_port), "interceptor_decisions_total") >= n,
                30,
                "the worker's decision counter to reach the number of transactions",
            )
            samples = scrape_metrics(metrics_port)
            decisions.poll()  # anything written since
            dead_letters = topic_size(broker.bootstrap, deployment.topic("dead-letters"))
            decisions.close()
        finally:
            for w in deployment.workers:
                w.stop()

    assert set(decisions.by_txn) == set(expected), "transactions without a decision, or decisions of unknown ones"
    # decisions made after the broker was back show that the worker carried on (the feed kept coming)
    after = [t for t, copies in decisions.by_txn.items() if _epoch(copies[-1]["decided_at"]) > back_at]
    assert after, "the worker had decided everything before the broker stopped; the test proves nothing"
    two_ways = decisions.decided_two_ways()
    assert two_ways == {}, f"{len(two_ways)} transactions decided two ways, e.g. {next(iter(two_ways.items()))}"
    differ = [t for t, copies in decisions.by_txn.items() if same_decision(copies[0]) != same_decision(expected[t])]
    assert differ == [], (
        f"{len(differ)} decisions differ from the uninterrupted run, e.g. "
        f"{same_decision(decisions.by_txn[differ[0]][0])} != {same_decision(expected[differ[0]])}"
    )
    assert dead_letters == ref.dead_letters, "the broker restart made dead letters"

    # the operator's numbers: each transaction counted once, however often Kafka delivered it
    assert metric_sum(samples, "interceptor_decisions_total") == n
    recount = intercepted_totals(copies[0] for copies in decisions.by_txn.values())
    assert recount, "nothing was held or blocked: the interception totals compare nothing"
    counted = {
        key: (
            metric_sum(samples, "interceptor_intercepted_transactions_total", action=key[0], currency=key[1]),
            metric_sum(samples, "interceptor_intercepted_amount_total", action=key[0], currency=key[1]),
        )
        for key in recount
    }
    assert {k: c for k, (c, _) in counted.items()} == {k: c for k, (c, _) in recount.items()}
    for key, (_, amount) in recount.items():
        assert counted[key][1] == pytest.approx(amount, rel=1e-9), key
    assert metric_sum(samples, "interceptor_intercepted_transactions_total") == sum(c for c, _ in recount.values())
