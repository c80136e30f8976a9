"""What the worker sends reaches each partition in the order the pipeline gave it, whether it goes as record
batches or one by one. The producer here is a stand-in that records what reaches each partition; the real
producer is exercised against a real broker in tests/integration."""

from __future__ import annotations

import asyncio

import pytest

from streams.pipeline import OutMessage
from streams.producer import KafkaOutput


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[bytes] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: int | None) -> object | None:
        if len(self.records) == self.capacity or len(value) > 100:
            return None
        self.records.append(value)
        return object()


class FakeProducer:
    """Delivers at once; keeps what each (topic, partition) received, in order, and how many sends it took."""

    def __init__(self, batch_capacity: int) -> None:
        self.batch_capacity = batch_capacity
        self.received: dict[tuple[str, int], list[bytes]] = {}
        self.sends = 0

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[object]:
        assert batch.records, "an empty batch was sent"
        self.received.setdefault((topic, partition), []).extend(batch.records)
        return self._delivered()

    async def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None):
        if len(value) > 100:
            raise ValueError("message too large")
        self.received.setdefault((topic, 0 if partition is None else partition), []).append(value)
        return self._delivered()

    def _delivered(self) -> asyncio.Future[object]:
        self.sends += 1
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def output_with(producer: FakeProducer) -> KafkaOutput:
    output = KafkaOutput({})
    output._producer = producer  # type: ignore[assignment]
    return output


def test_each_partition_receives_its_messages_in_order_in_few_sends() -> None:
    messages = [OutMessage("decisions", b"k", b"d%d" % i, i % 3) for i in range(30)]
    messages.insert(10, OutMessage("dead-letters", b"k", b"x1"))  # no partition: the partitioner's choice
    messages.insert(20, OutMessage("decisions", b"k", b"outcome", None))
    producer = FakeProducer(batch_capacity=4)

    async def run() -> None:
        output = output_with(producer)
        await output.send(messages)
        await output.delivered()

    asyncio.run(run())
    for p in range(3):
        # the stand-in partitioner puts a message without a partition on partition 0
        expected = [m.value for m in messages if m.topic == "decisions" and (m.partition or 0) == p]
        assert producer.received[("decisions", p)] == expected
    assert producer.received[("dead-letters", 0)] == [b"x1"]
    assert producer.sends < len(messages) / 2


def test_a_message_without_a_partition_comes_after_everything_given_before_it() -> None:
    messages = [
        OutMessage("decisions", b"k", b"first", 0),
        OutMessage("decisions", b"k", b"second", None),  # the stand-in partitioner puts it on partition 0
        OutMessage("decisions", b"k", b"third", 0),
    ]
    producer = FakeProducer(batch_capacity=100)
    asyncio.run(output_with(producer).send(messages))
    assert producer.received[("decisions", 0)] == [b"first", b"second", b"third"]


def test_a_message_too_large_for_a_batch_fails_as_a_single_send_does() -> None:
    producer = FakeProducer(batch_capacity=100)
    with pytest.raises(ValueError, match="too large"):
        asyncio.run(output_with(producer).send([OutMessage("decisions", b"k", b"y" * 200, 1)]))
