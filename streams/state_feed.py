"""Every worker's feature state holds every partition's transactions: a partition's state needs no hand-over.

Transactions are keyed by payer and a worker decides only its own partitions. But a payee's fan-in and
pass-through count payers on every partition, and after a rebalance the new owner of a partition needs its
payers' history. So each worker also reads the partitions of `transactions` it does not own, with a group-less
consumer, and records them in its state (`TransactionPipeline.record_others`), but only up to the offset
their owner has committed. A committed transaction is decided, and is never handed to another worker to decide
again; so no transaction is both recorded by this feed and decided by this worker. Other workers' transactions
reach the state one commit later (their checkpoint interval, 10 s by default).

`positions` says, per partition, up to which offset the state holds its transactions: the feed's position for
the partitions others own, what the worker has processed for its own (`state_offsets`). A checkpoint saves them
with the state and a restart reads on from there; with no checkpoint the feed starts at the beginning of the
topic (its retention) and rebuilds the state. A worker that takes a partition over reads it up to the offset it
will decide from before it decides (`take_over`); one that gives a partition up feeds it on from where it
stopped deciding (`give_up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.outputs import RawRecord
from streams.side_inputs import wait_for_assignment

log = logging.getLogger(__name__)

Record = Callable[[list[RawRecord]], int]  # records a partition's run of transactions; returns how many
Committed = Callable[[list[int]], Awaitable[dict[int, int]]]  # the group's committed offsets of these partitions
FRONTIER_EVERY_S = 0.5
CATCH_UP_TIMEOUT_S = 60.0


class StateFeed:
    def __init__(
        self,
        topic: str,
        client_config: dict[str, object],
        record: Record,
        committed: Committed,
        positions: dict[int, int] | None = None,
    ) -> None:
        self.topic = topic
        self.record = record
        self.committed = committed
        self.positions: dict[int, int] = dict(positions or {})  # partition -> next offset the state lacks
        self.frontier: dict[int, int] = {}  # partition -> its owner's committed offset: read up to there
        self.owned: set[int] = set()  # partitions this worker decides: not read here
        self.recorded = 0  # transactions of other workers recorded so far
        self.ready = asyncio.Event()  # set once every partition is read up to the frontier seen at the start
        self._config = dict(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **client_config)
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: dict[int, TopicPartition] = {}

    # --- the worker's partitions -----------------------------------------------------------------------------

    def state_offsets(self, processed: dict[int, int]) -> dict[int, int]:
        """Per partition, the offset up to which the state holds its transactions, given what the worker has
        processed of its own partitions: what a checkpoint of the state saves."""
        return {**self.positions, **{p: offset for p, offset in processed.items() if p in self.owned}}

    async def take_over(self, partitions: Iterable[int]) -> None:
        """Partitions this worker is about to decide: record them up to their committed offset (where deciding
        starts), then stop reading them. Logged, not raised, after CATCH_UP_TIMEOUT_S."""
        new = sorted(set(partitions) - self.owned)
        if not new:
            return
        try:
            committed = await self.committed(new)
        except Exception as exc:  # the frontier stays as it was: decide with the state there is
            log.error("committed offsets of %s %s unknown (%s)", self.topic, new, exc)
            committed = {}
        for p, offset in committed.items():
            self.frontier[p] = max(self.frontier.get(p, 0), offset)
        await self._reach({p: committed[p] for p in new if p in committed}, CATCH_UP_TIMEOUT_S)
        self.owned.update(new)

    def give_up(self, partition: int, processed: int | None) -> None:
        """A partition taken away, after its last commit: the state holds it up to `processed` (None: up to
        where it was taken over); the feed reads it on from there."""
        self.owned.discard(partition)
        if processed is not None:
            self.positions[partition] = processed
            self.frontier[partition] = max(self.frontier.get(partition, 0), processed)
        tp = self._tps.get(partition)
        if self._consumer is not None and tp is not None:
            self._consumer.seek(tp, self.positions[partition])

    # --- reading ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the other workers' partitions up to their commits, forever."""
        # without a group, a subscribed consumer is assigned every partition of the topic
        consumer = self._consumer = AIOKafkaConsumer(self.topic, **self._config)  # type: ignore[arg-type]
        await consumer.start()
        try:
            tps = await wait_for_assignment(consumer, self.topic)
            first, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
            for tp in tps:
                self._tps[tp.partition] = tp
                saved = self.positions.get(tp.partition)
                if saved is not None and not first[tp] <= saved <= ends[tp]:
                    log.warning(
                        "state feed: %s[%d] holds offsets %d-%d, the checkpoint says %d; reading it from the start",
                        self.topic, tp.partition, first[tp], ends[tp], saved,
                    )  # fmt: skip
                    saved = None  # the topic was recreated, or its retention passed the checkpoint
                self.positions[tp.partition] = first[tp] if saved is None else saved
                consumer.seek(tp, self.positions[tp.partition])
            while not await self._refresh():
                await asyncio.sleep(FRONTIER_EVERY_S)
            goal, started = dict(self.frontier), time.perf_counter()
            refreshed = time.monotonic()
            while True:
                self._pause_where_done(consumer)
                fetched = await consumer.getmany(timeout_ms=100, max_records=10_000)
                for tp, messages in fetched.items():
                    self._record(consumer, tp, messages)
                if time.monotonic() - refreshed >= FRONTIER_EVERY_S:
                    await self._refresh()
                    refreshed = time.monotonic()
                if not self.ready.is_set() and self._reached(goal):
                    self.ready.set()
                    log.info(
                        "state feed: %s read up to the committed offsets in %.1fs (%d transactions recorded)",
                        self.topic,
                        time.perf_counter() - started,
                        self.recorded,
                    )
        finally:
            await consumer.stop()

    def _record(self, consumer: AIOKafkaConsumer, tp: TopicPartition, messages: list) -> None:  # type: ignore[type-arg]
        p = tp.partition
        if p in self.owned or not messages:
            return  # fetched before the partition was taken over
        start, limit = self.positions[p], self.frontier.get(p, 0)
        records = [
            RawRecord(m.value, tp.topic, p, m.offset, m.timestamp, m.key)
            for m in messages
            if start <= m.offset < limit  # older: fetched before a give_up moved the position on
        ]
        # recording and the position move together, with no await between: a checkpoint (a fork between two
        # awaits) saves a state and the positions it holds
        if records:
            self.recorded += self.record(records)
            self.positions[p] = records[-1].offset + 1
        if messages[-1].offset >= limit:  # read past the commit: read it again once it is committed
            consumer.seek(tp, self.positions[p])

    def _pause_where_done(self, consumer: AIOKafkaConsumer) -> None:
        done = [tp for p, tp in self._tps.items() if p in self.owned or self.positions[p] >= self.frontier.get(p, 0)]
        consumer.pause(*done)
        consumer.resume(*[tp for tp in self._tps.values() if tp not in done])

    async def _refresh(self) -> bool:
        """The committed offsets of the partitions others own; False when the group cannot say yet."""
        others = [p for p in self._tps if p not in self.owned]
        if not others:
            return True
        try:
            committed = await self.committed(others)
        except Exception as exc:  # the coordinator moved, the group is rebalancing: try again soon
            log.debug("committed offsets of %s unknown: %r", self.topic, exc)
            return False
        for p, offset in committed.items():
            self.frontier[p] = max(self.frontier.get(p, 0), offset)
        return True

    async def catch_up(self, timeout_s: float = CATCH_UP_TIMEOUT_S) -> None:
        """Record what the other workers have committed so far (a worker stopping: its last checkpoint then
        holds it). Logged, not raised, after `timeout_s`."""
        if self._consumer is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        await self._refresh()
        await self._reach({p: self.frontier.get(p, 0) for p in self._tps if p not in self.owned}, timeout_s)

    async def _reach(self, goal: dict[int, int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._reached(goal):
            if time.monotonic() > deadline:
                log.error("state feed: %s not read up to the committed offsets after %.0fs", self.topic, timeout_s)
                return
            await asyncio.sleep(0.005)

    def _reached(self, goal: dict[int, int]) -> bool:
        return all(self.positions.get(p, 0) >= offset for p, offset in goal.items())

    def lag(self) -> int:
        """Transactions other workers have committed that the state does not hold yet."""
        return sum(max(0, self.frontier.get(p, 0) - self.positions.get(p, 0)) for p in self._tps if p not in self.owned)
