"""Side inputs every worker needs in full: `calls` (joined on the payer's phone) and `labels` (the mule list).

Transactions are partitioned by payer account, calls by phone and labels by account, so no partitioning
puts a transaction and its call on the same worker. Each worker therefore reads *all* partitions of these
two small topics with its own group-less consumer. On start it seeks back by time (the calls window, the
mule-list expiry), which rebuilds that state from the topics themselves: no changelog is needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.errors import EventError
from streams.outputs import RawRecord

log = logging.getLogger(__name__)

DeadLetterSink = Callable[[RawRecord, EventError], Awaitable[None]]
Apply = Callable[[RawRecord], None]  # decodes and applies one record; raises EventError for an invalid one


async def follow(
    topic: str,
    lookback_ms: int,
    apply: Apply,
    on_dead_letter: DeadLetterSink,
    client_config: dict[str, object],
    ready: asyncio.Event | None = None,
) -> None:
    """Read every partition of `topic` from `lookback_ms` ago, forever; set `ready` once caught up."""
    # Without a group, a subscribed consumer is assigned every partition of the topic.
    consumer = AIOKafkaConsumer(topic, group_id=None, enable_auto_commit=False, **client_config)  # type: ignore[arg-type]
    await consumer.start()
    try:
        tps = await wait_for_assignment(consumer, topic)
        # End offsets first: a message that arrives while we look up times then lies at or after the end
        # we seek to, so it is read, not skipped.
        ends = await consumer.end_offsets(tps)
        since = int(time.time() * 1000) - lookback_ms
        offsets = await consumer.offsets_for_times({tp: since for tp in tps})
        for tp in tps:
            found = offsets.get(tp)
            if found is None:
                consumer.seek(tp, ends[tp])
            else:
                consumer.seek(tp, found.offset)
        caught_up = ready is None
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, messages in batches.items():
                for m in messages:
                    record = RawRecord(m.value, tp.topic, tp.partition, m.offset, m.timestamp, m.key)
                    try:
                        apply(record)
                    except EventError as error:
                        await on_dead_letter(record, error)
            if not caught_up:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    caught_up = True
                    assert ready is not None
                    ready.set()
                    log.info("side input %s caught up", topic)
    finally:
        await consumer.stop()


async def wait_for_assignment(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, once a group-less consumer subscribed to it has been given them."""
    for _ in range(300):
        assigned = sorted(consumer.assignment())
        if assigned:
            return assigned
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no partitions of {topic} were assigned after 30s; does the topic exist?")
