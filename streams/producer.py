"""Sends the pipeline's output messages (decisions, alerts, dead letters, ...) and says when they are delivered.

`send` only appends to the producer's batches and keeps the delivery futures; `delivered` waits for all of
them and raises if any failed after the producer's own retries. The worker commits offsets only after
`delivered` returned, so a decision is never committed past without being on `decisions`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

from streams.pipeline import OutMessage


class Output(Protocol):
    async def send(self, messages: Iterable[OutMessage]) -> None: ...

    async def delivered(self) -> None: ...


MAX_REQUEST_BYTES = 1_048_576
# a message this large goes through AIOKafkaProducer.send, which refuses one over MAX_REQUEST_BYTES by name: a
# record batch takes any first record, and the broker would refuse the whole batch later
SINGLE_SEND_BYTES = MAX_REQUEST_BYTES // 2


class KafkaOutput:
    def __init__(self, client_config: dict[str, object]) -> None:
        self.client_config = client_config
        # delivery futures of what was sent since the last `delivered`, appended to where it is, never copied and
        # put back: the consume loop and the side inputs' dead letters send concurrently, and a send can wait
        # (for a partition's previous batch to leave) while `delivered` takes the list
        self._pending: list[asyncio.Future[object]] = []

    async def start(self) -> None:
        # aiokafka clients belong to the running event loop: created here, not in __init__
        self._producer = AIOKafkaProducer(
            acks="all",  # a decision is only "sent" once every in-sync replica has it
            enable_idempotence=True,  # a retried request does not write a decision twice
            linger_ms=1,  # 5 ms added 2 ms to the median latency at 5,000 tx/s and no throughput (BENCHMARKS.md)
            max_batch_size=MAX_REQUEST_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
            **self.client_config,  # type: ignore[arg-type]
        )
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, messages: Iterable[OutMessage]) -> None:
        """Messages for a given partition (decisions, alerts, hold outcomes) go as one record batch per
        partition, with one delivery future per batch: `AIOKafkaProducer.send` per message, a coroutine and a
        future each, cost more than deciding the transaction (BENCHMARKS.md). A message without a partition
        (dead letters, mule reports: the producer's partitioner picks one by key), or a very large one, is sent
        on its own, after the open batches of its topic, so every partition receives its messages in the order
        given. Only its own topic's: submitting a batch waits until the partition's previous one has left."""
        # only what is still in flight is kept: `delivered` once gathered the 50,000 futures of a checkpoint
        # interval on the event loop, a 0.16 s pause
        self._pending = [f for f in self._pending if not _settled(f)]
        producer = self._producer
        batches: dict[tuple[str, int], BatchBuilder] = {}

        async def submit(tp: tuple[str, int]) -> None:
            self._pending.append(await producer.send_batch(batches.pop(tp), tp[0], partition=tp[1]))

        for m in messages:
            if m.partition is None or len(m.value) >= SINGLE_SEND_BYTES:
                for tp in [tp for tp in batches if tp[0] == m.topic]:
                    await submit(tp)
                self._pending.append(await producer.send(m.topic, m.value, key=m.key, partition=m.partition))
                continue
            tp = (m.topic, m.partition)
            batch = batches.get(tp)
            if batch is not None and batch.append(key=m.key, value=m.value, timestamp=None) is not None:
                continue
            if batch is not None:  # full: off it goes, and a new one
                await submit(tp)
            batch = batches[tp] = producer.create_batch()
            batch.append(key=m.key, value=m.value, timestamp=None)  # a new batch takes any first record
        for tp in list(batches):
            await submit(tp)

    async def delivered(self) -> None:
        """Wait until everything sent so far is acknowledged; raises the first delivery error."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


def _settled(future: asyncio.Future[object]) -> bool:
    """True when the send is acknowledged; raises its delivery error."""
    if not future.done():
        return False
    future.result()
    return True
