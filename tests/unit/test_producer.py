"""What the worker sends reaches each partition in the order the pipeline gave it, whether it goes as record
batches or one by one, and every send's delivery is waited for. The producer here is a stand-in that records
what reaches each partition; the real producer is exercised against a real broker in tests/integration."""

from __future__ import annotations

import asyncio

import pytest

from streams.pipeline import OutMessage
from streams.producer import MAX_REQUEST_BYTES, SINGLE_SEND_BYTES, KafkaOutput


class FakeBatch:
    """Like aiokafka's BatchBuilder: full after `capacity` records, but it takes any first record."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[bytes] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: int | None) -> object | None:
        if self.records and len(self.records) == self.capacity:
            return None
        self.records.append(value)
        return object()


class FakeProducer:
    """Keeps what each (topic, partition) received, in order, and the batches each got. A send without a
    partition goes to partition 0. Deliveries to `failing` topics fail."""

    def __init__(self, batch_capacity: int = 100, failing: tuple[str, ...] = ()) -> None:
        self.batch_capacity = batch_capacity
        self.failing = failing
        self.received: dict[tuple[str, int], list[bytes]] = {}
        self.batches: dict[tuple[str, int], int] = {}

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[object]:
        await asyncio.sleep(0)  # aiokafka may wait here for the partition's previous batch to leave
        self.received.setdefault((topic, partition), []).extend(batch.records)
        self.batches[topic, partition] = self.batches.get((topic, partition), 0) + 1
        return self._delivery(topic)

    async def send(self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None):
        if len(value) > MAX_REQUEST_BYTES:
            raise ValueError("message too large")  # aiokafka: MessageSizeTooLargeError
        self.received.setdefault((topic, partition or 0), []).append(value)
        return self._delivery(topic)

    def _delivery(self, topic: str) -> asyncio.Future[object]:
        future = asyncio.get_running_loop().create_future()
        if topic in self.failing:
            future.set_exception(ConnectionError(f"{topic}: delivery failed"))
        else:
            future.set_result(None)
        return future


def output_with(producer: FakeProducer) -> KafkaOutput:
    output = KafkaOutput({})
    output._producer = producer  # type: ignore[assignment]
    return output


def send(producer: FakeProducer, messages: list[OutMessage]) -> None:
    async def run() -> None:
        output = output_with(producer)
        await output.send(messages)
        await output.delivered()

    asyncio.run(run())


def test_each_partition_receives_its_messages_in_order_in_batches() -> None:
    messages = [OutMessage("decisions", b"k", b"d%d" % i, i % 3) for i in range(30)]
    producer = FakeProducer(batch_capacity=4)
    send(producer, messages)
    for p in range(3):
        assert producer.received[("decisions", p)] == [m.value for m in messages if m.partition == p]
        assert producer.batches[("decisions", p)] == 3  # 10 decisions, 4 to a batch


def test_dead_letters_between_decisions_do_not_split_their_batches() -> None:
    # submitting a batch can wait for the partition's previous one to leave: a dead letter (no partition, another
    # topic) must not make each partition's decisions go as several batches
    messages = [OutMessage("decisions", b"k", b"d%d" % i, i % 3) for i in range(30)]
    messages[10:10] = [OutMessage("dead-letters", b"k", b"x1")]
    messages[20:20] = [OutMessage("dead-letters", b"k", b"x2")]
    producer = FakeProducer()
    send(producer, messages)
    assert producer.batches == {("decisions", 0): 1, ("decisions", 1): 1, ("decisions", 2): 1}
    assert producer.received[("dead-letters", 0)] == [b"x1", b"x2"]


@pytest.mark.parametrize("size", [10, SINGLE_SEND_BYTES])
def test_a_message_sent_on_its_own_comes_after_everything_given_before_it(size: int) -> None:
    # without a partition (a handed-over hold's outcome: the stand-in partitioner puts it on 0), or very large
    second = OutMessage("decisions", b"k", b"s" * size, None if size == 10 else 0)
    messages = [OutMessage("decisions", b"k", b"first", 0), second, OutMessage("decisions", b"k", b"third", 0)]
    producer = FakeProducer()
    send(producer, messages)
    assert producer.received[("decisions", 0)] == [b"first", second.value, b"third"]


def test_a_message_too_large_for_a_request_fails_as_a_single_send_does() -> None:
    with pytest.raises(ValueError, match="too large"):
        send(FakeProducer(), [OutMessage("decisions", b"k", b"y" * (MAX_REQUEST_BYTES + 1), 1)])


def test_a_failed_delivery_of_a_concurrent_send_is_not_lost() -> None:
    # the consume loop sends decisions while a side input sends a dead letter; `delivered` must see both
    producer = FakeProducer(failing=("dead-letters",))

    async def run() -> None:
        output = output_with(producer)
        decisions = [OutMessage("decisions", b"k", b"d%d" % i, i % 3) for i in range(9)]
        await asyncio.gather(output.send(decisions), output.send([OutMessage("dead-letters", b"k", b"x")]))
        await output.delivered()

    with pytest.raises(ConnectionError, match="dead-letters"):
        asyncio.run(run())
