"""Small, bounded helpers to produce to and read from the real broker in tests (kafka-python)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    n = 0
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
            n += 1
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return n


def produce_paced(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]], per_second: float
) -> multiprocessing.process.BaseProcess:
    """Produce in the background at about `per_second`, in order, riding out a broker outage (a bank feed that
    retries); the worker is faster than a test can watch a backlog. Join the process to wait for the end.

    A process, not a thread: kafka-python leaks the sockets of refused connections while it retries, and in the
    test process the garbage collector would report them in whichever test runs next."""
    process = multiprocessing.get_context("spawn").Process(
        target=_produce_paced, args=(bootstrap, topic, messages, per_second), name=f"produce-{topic}", daemon=True
    )
    process.start()
    return process


def _produce_paced(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]], per_second: float) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        retries=1_000,
        retry_backoff_ms=200,
        max_in_flight_requests_per_connection=1,  # retries must not reorder the feed
        request_timeout_ms=30_000,
        delivery_timeout_ms=180_000,
        max_block_ms=120_000,
    )
    try:
        chunk = max(1, int(per_second // 10))
        for start in range(0, len(messages), chunk):
            for key, value in messages[start : start + chunk]:
                producer.send(topic, key=key, value=value)
            time.sleep(chunk / per_second)
        producer.flush(timeout=180)
    finally:
        producer.close(timeout=10)


def produce_json(bootstrap: str, topic: str, events: Iterable[dict], key_field: str) -> int:
    return produce(bootstrap, topic, ((str(e[key_field]).encode(), orjson.dumps(e)) for e in events))


@dataclass(frozen=True)
class Consumed:
    key: bytes | None
    value: bytes
    partition: int
    offset: int

    def json(self) -> dict:
        return orjson.loads(self.value)


def read_topic(bootstrap: str, topic: str, expect_at_least: int, timeout: float) -> list[Consumed]:
    """Read a topic from the beginning until `expect_at_least` messages arrived and the topic went quiet."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=500,
    )
    try:
        deadline = time.monotonic() + timeout
        wait_for(lambda: consumer.partitions_for_topic(topic) is not None, timeout, f"topic {topic} to exist")
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        out: list[Consumed] = []
        quiet_rounds = 0
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            got = [Consumed(r.key, r.value, r.partition, r.offset) for rs in batch.values() for r in rs]
            out.extend(got)
            quiet_rounds = 0 if got else quiet_rounds + 1
            if len(out) >= expect_at_least and quiet_rounds >= 2:
                return out
        raise AssertionError(f"read {len(out)} of at least {expect_at_least} messages from {topic} in {timeout}s")
    finally:
        consumer.close()


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages in a topic so far (sum of end offsets; the topics here are never compacted or trimmed)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def committed_size(bootstrap: str, group: str, topic: str) -> int:
    """The sum of a consumer group's committed offsets on a topic: how many of its messages the group is done
    with (compare with `topic_size`)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)
    finally:
        admin.close()
