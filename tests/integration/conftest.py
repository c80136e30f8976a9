"""Integration fixtures: the real Apache Kafka broker (deploy/kafka/local-kafka) and real worker processes.

Each test gets its own topic prefix and consumer group, so tests never see each other's messages. Every wait
is bounded. Set INTERCEPTOR_TEST_BROKER=host:port to use a broker you already run instead of starting one.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from streams.health import READY_LOG
from tests.integration.kafka_io import Consumed, wait_for

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KAFKA = ROOT / "deploy" / "kafka" / "local-kafka"


# Ports for servers the tests start come from below the kernel's ephemeral range (32768 and up here): a port
# picked there can be taken by some client connection before the server binds it.
_PORTS = range(20_000, 32_000)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    for _ in range(200):
        port = random.choice(_PORTS)
        if _bindable(port):
            return port
    raise RuntimeError("no free port found")


def _free_port_pair() -> int:
    """A port p such that p and p+1 are free (broker and controller listeners)."""
    for _ in range(200):
        port = random.choice(_PORTS)
        if _bindable(port) and _bindable(port + 1):
            return port
    raise RuntimeError("no free pair of ports found")


@dataclass
class Broker:
    bootstrap: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, command: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(LOCAL_KAFKA), command],
            env={**os.environ, **self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"local-kafka {command} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    external = os.environ.get("INTERCEPTOR_TEST_BROKER")
    if external:
        yield Broker(external)
        return
    for attempt in range(2):  # a free port can be taken between choosing it and the broker binding it
        port = _free_port_pair()
        env = {"KAFKA_PORT": str(port), "KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("kafka"))}
        b = Broker(f"127.0.0.1:{port}", env)
        try:
            b.bootstrap = b.run("start").stdout.strip().splitlines()[-1]
            break
        except RuntimeError:
            b.run("stop")
            if attempt:
                raise
    try:
        yield b
    finally:
        b.run("stop")


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Deployment:
    """One test's world: a topic prefix and consumer group of its own on the shared broker."""

    broker: Broker
    prefix: str
    app_id: str
    tmp: Path
    workers: list[Worker] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def worker_env(self, **overrides: str) -> dict[str, str]:
        return {
            **os.environ,
            "NUMBA_NUM_THREADS": "1",
            "INTERCEPTOR_BROKER": self.broker.bootstrap,
            "INTERCEPTOR_TOPIC_PREFIX": self.prefix,
            "INTERCEPTOR_APP_ID": self.app_id,
            "INTERCEPTOR_PARTITIONS": "4",
            "INTERCEPTOR_METRICS_PORT": "0",
            "INTERCEPTOR_DATA_DIR": str(self.tmp / "data"),
            **overrides,
        }

    def spawn_worker(self, **overrides: str) -> Worker:
        """Start a worker process without waiting for it (start_worker waits until it is ready)."""
        n = len(self.workers)
        log_path = self.tmp / f"worker-{n}.log"
        env = self.worker_env(**overrides)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli.main", "worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log_path, env)
        self.workers.append(worker)
        return worker

    def start_worker(self, ready_timeout: float = 90, **overrides: str) -> Worker:
        worker = self.spawn_worker(**overrides)
        n, process = len(self.workers) - 1, worker.process
        # the interceptor logs READY_LOG once it decides (state restored, side inputs caught up), when /readyz
        # turns 200; Faust's own "Ready" comes earlier, before the consumer has joined the group
        wait_for(
            lambda: READY_LOG in worker.log() or process.poll() is not None,
            ready_timeout,
            f"worker {n} ready",
        )
        if process.poll() is not None:
            raise AssertionError(f"worker {n} exited with {process.returncode}:\n{worker.log()[-4000:]}")
        return worker


@pytest.fixture
def deployment(broker: Broker, tmp_path: Path) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:8]
    d = Deployment(broker, prefix=f"t{tag}.", app_id=f"interceptor-test-{tag}", tmp=tmp_path)
    try:
        yield d
    finally:
        for w in d.workers:
            w.stop()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA that never signed anything the broker shows (the TLS and mutual TLS tests)."""
    folder = tmp_path_factory.mktemp("other-ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=another CA",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return folder / "ca.pem"


# --- helpers for the fault tests (tests/integration/test_faults.py, test_recovery.py, test_sasl.py) ---


@contextmanager
def private_broker(data_dir: Path, **extra_env: str) -> Iterator[Broker]:
    """A broker of the test's own, on free ports, for tests that restart it or change its listeners (the
    session broker is shared by every other test). `extra_env` goes to local-kafka (e.g. KAFKA_SASL)."""
    broker: Broker | None = None
    for attempt in range(2):  # a free port can be taken between choosing it and the broker binding it
        port = _free_port_pair()
        env = {"KAFKA_PORT": str(port), "KAFKA_DATA_DIR": str(data_dir / f"kafka-{port}"), **extra_env}
        candidate = Broker(f"127.0.0.1:{port}", env)
        try:
            candidate.bootstrap = candidate.run("start").stdout.strip().splitlines()[-1]
            broker = candidate
            break
        except RuntimeError:
            candidate.run("stop")
            if attempt:
                raise
    assert broker is not None
    try:
        yield broker
    finally:
        broker.run("stop")


class TopicFollower:
    """Reads one topic from its beginning, a little at a time: each `poll()` returns only messages not seen
    before, so a test can wait on a growing topic without reading it all again. The topic must exist."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        partitions = self._consumer.partitions_for_topic(topic)
        if not partitions:
            self._consumer.close()
            raise AssertionError(f"topic {topic} does not exist")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        self._consumer.seek_to_beginning(*assigned)

    def poll(self, timeout_ms: int = 200) -> list[Consumed]:
        batch = self._consumer.poll(timeout_ms=timeout_ms, max_records=20_000)
        return [Consumed(r.key, r.value, r.partition, r.offset) for rs in batch.values() for r in rs]

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# What makes two decisions "the same decision" (decided_at and latency_ms differ between a first decision and
# one made again after a crash, by design).
DECISION_FIELDS = ("action", "score", "reasons", "shadow", "ruleset")


class DecisionRecords:
    """Every `kind: decision` record of a decisions topic so far, by txn_id (re-deliveries kept as copies)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.follower = TopicFollower(bootstrap, topic)
        self.by_txn: dict[str, list[dict]] = {}

    def poll(self) -> int:
        """Read what is new, until a poll brings nothing; returns how many distinct txn_ids have a decision."""
        while records := self.follower.poll():
            for record in records:
                decision = record.json()
                if decision.get("kind", "decision") == "decision":
                    self.by_txn.setdefault(decision["txn_id"], []).append(decision)
        return len(self.by_txn)

    def wait_for(self, count: int, timeout: float, what: str) -> None:
        wait_for(lambda: self.poll() >= count, timeout, f"{what} ({count} decided; {len(self.by_txn)} so far)", 0)

    def decided_two_ways(self) -> dict[str, list[dict]]:
        """txn_id -> its copies, for every txn_id whose copies are not all the same decision."""
        return {
            txn: copies
            for txn, copies in self.by_txn.items()
            if any(same_decision(c) != same_decision(copies[0]) for c in copies)
        }

    def close(self) -> None:
        self.follower.close()


def same_decision(decision: dict) -> dict:
    return {k: decision.get(k) for k in DECISION_FIELDS}


def intercepted_totals(decisions: Iterable[dict]) -> dict[tuple[str, str], tuple[int, float]]:
    """(action, currency) -> (count, amount) over held and blocked decisions."""
    totals: dict[tuple[str, str], tuple[int, float]] = {}
    for d in decisions:
        if d["action"] in ("hold", "block"):
            count, amount = totals.get((d["action"], d["currency"]), (0, 0.0))
            totals[(d["action"], d["currency"])] = (count + 1, amount + float(d["amount"]))
    return totals


def assert_counted_once(
    scrapes: list[dict[tuple[str, frozenset[tuple[str, str]]], float]], decided: list[dict]
) -> None:
    """The workers' /metrics (`scrapes`, summed) count exactly the decisions in `decided`: each decision, and the
    held or blocked ones' count and amount per action and currency."""
    assert sum(metric_sum(s, "interceptor_decisions_total") for s in scrapes) == len(decided)
    for (action, currency), (count, amount) in intercepted_totals(decided).items():
        labels = {"action": action, "currency": currency}
        counts = sum(metric_sum(s, "interceptor_intercepted_transactions_total", **labels) for s in scrapes)
        assert counts == count, labels
        amounts = sum(metric_sum(s, "interceptor_intercepted_amount_total", **labels) for s in scrapes)
        assert amounts == pytest.approx(amount), labels


def scrape_metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A worker's /metrics as {(sample name, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric_sum(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@dataclass
class ReferenceRun:
    """A simulated feed written to files, and the same pipeline run over them without Kafka: the uninterrupted
    run that fault tests compare the worker's decisions and state with."""

    files: dict[str, Path]
    pipeline: object  # streams.pipeline.TransactionPipeline, after the run
    expected: dict[str, dict]  # txn_id -> decision
    transactions: int
    dead_letters: int


def reference_run(feed: object, tmp_path: Path, batch_size: int, rules: Path | None = None) -> ReferenceRun:
    import orjson

    from streams.backtest import load_calls, replay
    from streams.pipeline import TransactionPipeline
    from streams.scorer import load_scorer

    files = {name: tmp_path / f"{name}.jsonl" for name in ("transactions", "calls")}
    files["transactions"].write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in feed.transactions))  # type: ignore[attr-defined]
    files["calls"].write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in feed.calls))  # type: ignore[attr-defined]
    pipeline = TransactionPipeline(load_scorer(rules))
    load_calls(pipeline, files["calls"])
    expected: dict[str, dict] = {}
    summary = replay(
        pipeline,
        files["transactions"],
        batch_size,
        lambda r: expected.setdefault(orjson.loads(r)["txn_id"], orjson.loads(r)),
    )
    return ReferenceRun(files, pipeline, expected, summary.transactions, summary.dead_letters)
