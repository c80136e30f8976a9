"""A real worker against the real broker: every valid transaction decided once, every broken one dead-lettered."""

import base64
from pathlib import Path

import orjson
import pytest

from streams.health import READY_LOG
from tests.integration.conftest import Deployment
from tests.integration.kafka_io import produce, read_topic
from tests.unit.test_events import BAD_TRANSACTIONS

pytestmark = pytest.mark.integration
BAD_DIR = Path(__file__).parents[1] / "unit" / "testdata" / "transactions"


def valid_transactions(n: int) -> list[dict]:
    return [
        {
            "txn_id": f"ok-{i}",
            "ts": 1_772_325_000_000 + i * 1000,
            "payer_account": f"P{i % 37}",
            "payee_account": f"Q{i % 11}",
            "amount": f"{100 + i}.50",
            "channel": "mobile",
        }
        for i in range(n)
    ]


def test_every_valid_transaction_gets_one_decision_and_every_broken_one_a_dead_letter(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.start_worker()
    good = valid_transactions(300)
    bad = {name: (BAD_DIR / f"{name}.bad.json").read_bytes() for name, _, _ in BAD_TRANSACTIONS}
    # interleave so broken messages sit between valid ones in the same partitions
    messages = [(t["payer_account"].encode(), orjson.dumps(t)) for t in good[:150]]
    messages += [(f"P{i}".encode(), raw) for i, raw in enumerate(bad.values())]
    messages += [(t["payer_account"].encode(), orjson.dumps(t)) for t in good[150:]]
    produce(deployment.broker.bootstrap, deployment.topic("transactions"), messages)

    decisions = read_topic(deployment.broker.bootstrap, deployment.topic("decisions"), len(good), timeout=120)
    dead = read_topic(deployment.broker.bootstrap, deployment.topic("dead-letters"), len(bad), timeout=60)

    decided = [d.json() for d in decisions]
    assert sorted(d["txn_id"] for d in decided) == sorted(t["txn_id"] for t in good)
    for record, d in zip(decisions, decided, strict=True):
        assert d["action"] in {"allow", "review", "hold", "block"}
        assert record.key == next(t for t in good if t["txn_id"] == d["txn_id"])["payer_account"].encode()

    exported = tmp_path / "dead.jsonl"
    env = {k: v for k, v in deployment.worker_env().items() if k.startswith("INTERCEPTOR_")}
    from click.testing import CliRunner

    from streams.cli.main import main

    result = CliRunner().invoke(main, ["dead-letters", "--out", str(exported), "--reason", "missing_field"], env=env)
    assert result.exit_code == 0, result.output
    missing = [
        raw for name, raw in bad.items() if next(c for n, c, _ in BAD_TRANSACTIONS if n == name) == "missing_field"
    ]
    assert sorted(exported.read_bytes().splitlines()) == sorted(missing)

    by_original = {base64.b64decode(d.json()["original_b64"]): d.json() for d in dead}
    assert len(dead) == len(bad)
    expected = {name: message for name, _, message in BAD_TRANSACTIONS}
    for name, raw in bad.items():
        letter = by_original[raw]
        assert letter["reason"].startswith(expected[name]), name
        assert letter["topic"] == deployment.topic("transactions")


def test_simulate_streams_the_feed_and_produce_replays_a_file(deployment: Deployment, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from streams.cli.main import main

    env = {k: v for k, v in deployment.worker_env().items() if k.startswith("INTERCEPTOR_")}
    runner = CliRunner()
    result = runner.invoke(
        main, ["simulate", "--customers", "60", "--days", "1", "--kafka", "--out", str(tmp_path)], env=env
    )
    assert result.exit_code == 0, result.output
    lines = {n: len((tmp_path / f"{n}.jsonl").read_bytes().splitlines()) for n in ("transactions", "calls", "labels")}
    for name, n in lines.items():
        assert len(read_topic(deployment.broker.bootstrap, deployment.topic(name), n, timeout=60)) == n
    again = runner.invoke(
        main, ["produce", str(tmp_path / "calls.jsonl"), "--topic", "calls", "--rate", "500"], env=env
    )
    assert again.exit_code == 0, again.output
    assert (
        len(read_topic(deployment.broker.bootstrap, deployment.topic("calls"), 2 * lines["calls"], timeout=60))
        == 2 * lines["calls"]
    )


def test_reading_a_topic_that_does_not_exist_says_so(deployment: Deployment, tmp_path: Path) -> None:
    """A wrong INTERCEPTOR_TOPIC_PREFIX (or no `topics create` yet) would read nothing and exit 0; producing
    creates the contract's topics with their partition counts instead of leaving it to the broker."""
    from click.testing import CliRunner
    from kafka import KafkaConsumer

    from streams.cli.main import main

    env = {k: v for k, v in deployment.worker_env().items() if k.startswith("INTERCEPTOR_")}
    runner = CliRunner()
    for topic, command in (
        ("decisions", ["tail", "decisions", "--idle-exit", "1"]),
        ("dead-letters", ["dead-letters", "--out", str(tmp_path / "x.jsonl")]),
    ):
        result = runner.invoke(main, command, env=env)
        assert result.exit_code == 1, result.output
        assert f"there is no topic {deployment.topic(topic)} on {deployment.broker.bootstrap}" in result.output
        assert "interceptor topics create" in result.output
    calls = tmp_path / "calls.jsonl"
    calls.write_bytes(orjson.dumps({"call_id": "c1", "callee_phone": "+8613800000001"}) + b"\n")
    result = runner.invoke(main, ["produce", str(calls), "--topic", "calls"], env=env)
    assert result.exit_code == 0, result.output
    assert f"created topics {deployment.topic('transactions')}, {deployment.topic('calls')}" in result.stderr
    consumer = KafkaConsumer(bootstrap_servers=deployment.broker.bootstrap)
    try:  # INTERCEPTOR_PARTITIONS (4), not the broker's default for a topic created on first use
        assert consumer.partitions_for_topic(deployment.topic("calls")) == {0, 1, 2, 3}
    finally:
        consumer.close()


def test_a_worker_does_not_start_on_topics_whose_partitions_do_not_fit(deployment: Deployment) -> None:
    # decisions with fewer partitions than transactions: a decision for partition 3 would have nowhere to go
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=deployment.broker.bootstrap)
    try:
        admin.create_topics([NewTopic(deployment.topic("decisions"), num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    worker = deployment.spawn_worker()  # it creates the other topics with 4 partitions
    assert worker.process.wait(120) != 0
    log = worker.log()
    assert f"{deployment.topic('decisions')} has 2 partitions, fewer than the 4 of" in log
    assert READY_LOG not in log
