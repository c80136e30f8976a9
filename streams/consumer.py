"""Reads `transactions` and `verifications` in the worker's consumer group, one fetch = one batch.

Faust's agent stream delivers one event at a time through queues and futures: on the project's 2-core machine
a no-op `take_events` agent tops out near 6,000 events/s (BENCHMARKS.md), a tenth of what the broker hands
out. This consumer asks aiokafka for whole fetches instead and gives each to the pipeline as one batch.

Offsets are tracked per partition as "processed up to" and committed only by `commit`, which the worker calls
after the batch's output is delivered and (with checkpoints) after the state holding it is saved: delivery is
at-least-once. On a rebalance the consumer first lets the batch in hand finish, then runs `on_revoke` (the
worker delivers, checkpoints and commits there), so the next owner of a partition starts right after the
last transaction this worker decided. Kafka calls every member's revoke before any member's assign.

Both topics are keyed by payer account with the same number of partitions; the range assignor gives
partition N of both to the same worker (round robin would not, with more than one worker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from streams.outputs import RawRecord

log = logging.getLogger(__name__)

OnRevoke = Callable[[set[TopicPartition]], Awaitable[None]]
OnAssign = Callable[[set[TopicPartition]], None]


class BatchConsumer:
    def __init__(
        self,
        topics: Iterable[str],
        group_id: str,
        client_config: dict[str, object],
        max_records: int,
        on_revoke: OnRevoke,
        session_timeout_s: float = 60.0,
        on_assign: OnAssign | None = None,
    ) -> None:
        self.topics = list(topics)
        self.max_records = max_records
        self.processed: dict[TopicPartition, int] = {}  # next offset to read, per partition, once processed
        self.committed: dict[TopicPartition, int] = {}
        self.batch_lock = asyncio.Lock()  # held while a batch is processed; a rebalance waits for it
        self.generation = 0  # rebalances so far: a batch fetched before one is stale (see `next_batch`)
        self._on_revoke = on_revoke
        self._on_assign = on_assign
        self._config = dict(
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=int(session_timeout_s * 1000),
            heartbeat_interval_ms=max(1000, int(session_timeout_s * 1000) // 10),
            max_partition_fetch_bytes=4 * 1_048_576,
            **client_config,
        )

    async def start(self) -> None:
        # aiokafka clients belong to the running event loop: created here, not in __init__
        self._consumer = AIOKafkaConsumer(**self._config)  # type: ignore[arg-type]
        await self._consumer.start()
        self._consumer.subscribe(self.topics, listener=_Listener(self))

    async def stop(self) -> None:
        if hasattr(self, "_consumer"):
            await self._consumer.stop()

    async def next_batch(self, timeout_s: float) -> tuple[int, list[RawRecord]]:
        """The generation and the records of one fetch: transactions before verifications (a verification
        answers an earlier decision), each partition in offset order. Empty when nothing came in `timeout_s`.

        Process the records only if `generation` is unchanged once `batch_lock` is held; else `rewind` them: the
        partitions that moved are read by their new owner from the offsets committed at the revoke."""
        generation = self.generation
        fetched = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=self.max_records)
        order = {topic: i for i, topic in enumerate(self.topics)}
        records: list[RawRecord] = []
        new = tuple.__new__  # RawRecord(...) without the named tuple's Python-level __new__: one per message
        for tp in sorted(fetched, key=lambda tp: (order.get(tp.topic, len(order)), tp.partition)):
            topic, partition = tp.topic, tp.partition
            records.extend(
                new(RawRecord, (m.value, topic, partition, m.offset, m.timestamp, m.key)) for m in fetched[tp]
            )
        return generation, records

    def rewind(self, records: list[RawRecord]) -> None:
        """Records fetched but not processed (a rebalance came in between): read them again from the first one,
        on the partitions still assigned (aiokafka may already have fetched them for the new assignment)."""
        assigned = self._consumer.assignment()
        first: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        for tp, offset in first.items():
            if tp in assigned:
                self._consumer.seek(tp, offset)

    def mark_processed(self, records: Iterable[RawRecord]) -> None:
        ends: dict[tuple[str, int], int] = {}  # (topic, partition) -> the offset after the last record
        for r in records:
            if r.offset >= ends.get((r.topic, r.partition), 0):
                ends[r.topic, r.partition] = r.offset + 1
        for (topic, partition), end in ends.items():
            tp = TopicPartition(topic, partition)
            if end > self.processed.get(tp, -1):
                self.processed[tp] = end

    async def commit(self, processed: dict[TopicPartition, int] | None = None) -> int:
        """Commit the processed offsets (or those of an earlier moment, `processed`) of the partitions still
        assigned, never moving one back; returns how many partitions moved."""
        assigned = self._consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in (self.processed if processed is None else processed).items()
            if tp in assigned and offset > self.committed.get(tp, -1)
        }
        if not offsets:
            return 0
        await self._consumer.commit(offsets)
        self.committed.update(offsets)
        return len(offsets)

    async def committed_offsets(self, topic: str, partitions: list[int], timeout_s: float = 10.0) -> dict[int, int]:
        """The group's committed offsets of these partitions of `topic`, whichever member committed them;
        partitions never committed are left out. Raises when the consumer has not started or the group's
        coordinator does not answer."""
        if not hasattr(self, "_consumer"):
            raise RuntimeError("the consumer has not started")
        tps = [TopicPartition(topic, p) for p in partitions]
        found = await asyncio.wait_for(asyncio.gather(*(self._consumer.committed(tp) for tp in tps)), timeout_s)
        return {p: offset for p, offset in zip(partitions, found, strict=True) if offset is not None}

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment())

    async def lag(self) -> dict[TopicPartition, int]:
        """Records not yet read, per assigned partition whose end is known (it is not right after a rebalance)."""
        lags = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await self._consumer.position(tp)
            except Exception as exc:  # revoked meanwhile: a metric must never stop the worker
                log.debug("lag of %s unknown: %r", tp, exc)
                continue
            lags[tp] = max(0, highwater - position)
        return lags

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.processed.pop(tp, None)
            self.committed.pop(tp, None)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, consumer: BatchConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return
        async with self.consumer.batch_lock:  # the batch in hand is decided and sent first
            self.consumer.generation += 1
            await self.consumer._on_revoke(set(revoked))
            self.consumer.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned partitions: %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)))
        if self.consumer._on_assign is not None:
            async with self.consumer.batch_lock:
                self.consumer._on_assign(set(assigned))
