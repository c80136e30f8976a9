"""End-to-end benchmark against a real broker: worker throughput on a backlog, a raw aiokafka
consume->produce passthrough on the same backlog (the ceiling), and decision latency at a fixed offered load.

Each measurement gets fresh topics (a unique prefix), so runs never see each other's data.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from streams.events import parse_time
from streams.health import READY_LOG
from streams.kafka_security import aiokafka_config
from streams.settings import Settings
from streams.simulator import SimConfig, simulate
from streams.topics import ensure_topics


@dataclass
class BenchResult:
    transactions: int
    worker_tx_per_s: float
    passthrough_tx_per_s: float
    latency_rate: float
    latency_ms: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.worker_tx_per_s / self.passthrough_tx_per_s


def feed(n: int) -> list[tuple[bytes, bytes]]:
    customers = max(100, n // 10)
    transactions = simulate(SimConfig(customers=customers, days=7, seed=3)).transactions
    while len(transactions) < n:  # top up with the same feed shifted a week later
        transactions += [{**t, "txn_id": f"{t['txn_id']}-{len(transactions)}", "ts": t["ts"] + 7 * 86_400_000}
                         for t in transactions[: n - len(transactions)]]  # fmt: skip
    return [(t["payer_account"].encode(), orjson.dumps(t)) for t in transactions[:n]]


def _settings(base: Settings, tag: str) -> Settings:
    env = {**os.environ, "INTERCEPTOR_TOPIC_PREFIX": f"bench-{tag}.", "INTERCEPTOR_APP_ID": f"bench-{tag}"}
    return Settings.from_env(env | {"INTERCEPTOR_BROKER": base.broker, "INTERCEPTOR_PARTITIONS": str(base.partitions)})


def _preload(settings: Settings, messages: list[tuple[bytes, bytes]]) -> None:
    ensure_topics(settings)
    producer = KafkaProducer(acks=1, linger_ms=20, batch_size=256 * 1024, **settings.kafka_client_config())
    for key, value in messages:
        producer.send(settings.topic("transactions"), key=key, value=value)
    producer.flush()
    producer.close()


def _start_worker(settings: Settings, log: Path, metrics: bool = True) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NUMBA_NUM_THREADS": "1",
        "INTERCEPTOR_BROKER": settings.broker,
        "INTERCEPTOR_TOPIC_PREFIX": settings.topic_prefix,
        "INTERCEPTOR_APP_ID": settings.app_id,
        "INTERCEPTOR_PARTITIONS": str(settings.partitions),
        "INTERCEPTOR_METRICS_PORT": "0",
        "INTERCEPTOR_LOG_LEVEL": "info",
        "INTERCEPTOR_METRICS_ENABLED": "true" if metrics else "false",
    }
    return subprocess.Popen([sys.executable, "-m", "streams.cli.main", "worker"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip


def _count_until(settings: Settings, topic: str, n: int, timeout: float) -> list[tuple[int, bytes]]:
    """Read `topic` until n messages arrived; returns (kafka timestamp ms, value) of each."""
    consumer = KafkaConsumer(settings.topic(topic), auto_offset_reset="earliest", enable_auto_commit=False,
                             fetch_max_bytes=64 * 1024 * 1024, **settings.kafka_client_config())  # fmt: skip
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=50_000).values():
                got += [(r.timestamp, r.value) for r in records]
    finally:
        consumer.close()
    if len(got) < n:
        raise RuntimeError(f"only {len(got)} of {n} messages on {settings.topic(topic)} after {timeout:.0f}s")
    return got


def _wait_until_holds(settings: Settings, topic: str, n: int, timeout: float) -> None:
    """Wait until `topic` holds n messages, asking the broker for its end offsets only: reading every decision
    while the worker makes them took a core's share from the worker and the broker on a 2-core machine."""
    consumer = KafkaConsumer(**settings.kafka_client_config())
    partitions = [TopicPartition(settings.topic(topic), p) for p in range(settings.partitions)]
    deadline = time.monotonic() + timeout
    try:
        while (held := sum(consumer.end_offsets(partitions).values())) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {held} of {n} messages on {settings.topic(topic)} after {timeout:.0f}s")
            time.sleep(0.2)
    finally:
        consumer.close()


def worker_throughput(
    base: Settings, messages: list[tuple[bytes, bytes]], workdir: Path, metrics: bool = True
) -> float:
    """Backlog first, then start the worker: decisions per second from its first to its last decision."""
    settings = _settings(base, uuid.uuid4().hex[:8])
    _preload(settings, messages)
    worker = _start_worker(settings, workdir / f"bench-worker-metrics-{metrics}.log", metrics)
    try:
        _wait_until_holds(settings, "decisions", len(messages), timeout=600)
    finally:
        worker.terminate()
        worker.wait(30)
    decided = _count_until(settings, "decisions", len(messages), timeout=60)
    stamps = sorted(ts for ts, _ in decided)
    return len(decided) / max((stamps[-1] - stamps[0]) / 1000, 1e-3)


async def _passthrough(settings: Settings, n: int) -> float:
    client = aiokafka_config(settings)  # the worker's connection: SASL and TLS included
    consumer = AIOKafkaConsumer(settings.topic("transactions"), group_id=f"{settings.app_id}-raw",
                                auto_offset_reset="earliest", **client)  # type: ignore[arg-type]  # fmt: skip
    producer = AIOKafkaProducer(acks=-1, linger_ms=1, **client)  # type: ignore[arg-type]
    await consumer.start()
    await producer.start()
    done, first = 0, None
    try:
        while done < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                first = first or time.perf_counter()
                for r in records:
                    await producer.send(settings.topic("decisions"), r.value, key=r.key)
                done += len(records)
        await producer.flush()
        return n / (time.perf_counter() - (first or time.perf_counter()))
    finally:
        await consumer.stop()
        await producer.stop()


def passthrough_throughput(base: Settings, messages: list[tuple[bytes, bytes]]) -> float:
    """The ceiling: consume the same backlog and produce every message unchanged with aiokafka."""
    settings = _settings(base, uuid.uuid4().hex[:8])
    _preload(settings, messages)
    return asyncio.run(_passthrough(settings, len(messages)))


def latency_at_rate(base: Settings, rate: float, seconds: float, workdir: Path) -> dict[str, float]:
    """Offer `rate` transactions/s to a running worker; percentiles of event-to-decision latency (ms)."""
    settings = _settings(base, uuid.uuid4().hex[:8])
    ensure_topics(settings)
    _stamp_on_arrival(settings, "decisions")
    worker = _start_worker(settings, workdir / "bench-latency-worker.log")
    try:
        messages = feed(int(rate * seconds))
        _wait_ready(workdir / "bench-latency-worker.log", worker)
        asyncio.run(_offer(settings, messages, rate))
        decided = _count_until(settings, "decisions", len(messages), timeout=300)
    finally:
        worker.terminate()
        worker.wait(30)
    decided.sort(key=lambda message: message[0])  # the consumer returns them partition by partition
    latencies = sorted(_event_to_decision_ms(ts, v) for ts, v in decided[len(decided) // 10 :])  # skip warm-up
    q = statistics.quantiles(latencies, n=100)
    return {"p50": q[49], "p95": q[94], "p99": q[98], "max": latencies[-1]}


def _stamp_on_arrival(settings: Settings, topic: str) -> None:
    """Have the broker stamp `topic`'s records when it appends them (LogAppendTime): a decision's timestamp is
    then the moment it is on Kafka, for consumers to read."""
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        config = {"message.timestamp.type": "LogAppendTime"}
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic(topic), configs=config)])
    finally:
        admin.close()


def _event_to_decision_ms(appended_ms: int, decision: bytes) -> int:
    """From the transaction's Kafka timestamp to its decision's arrival on `decisions`. The record's own
    `latency_ms` ends where the worker took up the batch (docs/events.md), so its batch work, the hand-over to
    the producer and the write are added from the broker's stamp; the transaction's timestamp is `decided_at`
    minus `latency_ms`."""
    record = orjson.loads(decision)
    taken_up_ms = parse_time(record["decided_at"], "decided_at")
    return appended_ms - (taken_up_ms - record["latency_ms"])


async def _offer(settings: Settings, messages: list[tuple[bytes, bytes]], rate: float, tick_s: float = 0.002) -> None:
    """Produce `messages` at `rate` per second, the ones due in each `tick_s` together (a bank's feed is many
    clients' small bursts). The latency measured is the worker's only if the load generator keeps time: a
    kafka-python producer sending one message at a time from a sleeping loop fell behind its own schedule on
    this 2-core machine and held records in its sender thread, which added 20-100 ms to the p99 (BENCHMARKS.md)."""
    producer = AIOKafkaProducer(acks=1, linger_ms=0, **aiokafka_config(settings))  # type: ignore[arg-type]
    await producer.start()
    try:
        per_tick = max(1, round(rate * tick_s))
        start = time.monotonic()
        for first in range(0, len(messages), per_tick):
            delay = start + first / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            for key, value in messages[first : first + per_tick]:
                await producer.send(settings.topic("transactions"), value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def _wait_ready(log: Path, worker: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited:\n{log.read_text()[-3000:]}")
        if READY_LOG in log.read_text(errors="replace"):  # deciding: restored, caught up, assigned
            return
        time.sleep(0.2)
    raise RuntimeError("worker not ready in time")
