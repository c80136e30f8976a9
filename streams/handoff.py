"""Taking a partition over from another worker without deciding any transaction twice, two ways.

After a rebalance (a worker left, joined or crashed) Kafka re-delivers the transactions after the partition's
last committed offset: after a crash, everything since the last checkpoint (a clean hand-over commits first).
The worker that decided them has them in its decision log; the new owner does not. But every decision is on
`decisions`, in the same partition number as its transaction (streams/pipeline.py sends it there), keyed by
payer. So before the new owner decides the first batch of a partition it has not seen yet, it reads that
partition of `decisions` from when the re-delivered transactions were produced and puts those decisions in its
decision log: a re-delivered transaction gets the decision it already got, byte for byte.

Open holds move the same way: a hold decision carries the hold's terms, and one whose `hold_outcome` is not
in the partition is still open, so the new owner opens it again (same deadline). The feature state needs no
hand-over: every worker's state holds every partition's transactions (streams/state_feed.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.dedup import DecisionLog, Remembered
from streams.lifecycle.holds import Hold, HoldBook

log = logging.getLogger(__name__)

CLOCK_SKEW_MS = 60_000  # decisions are read from this long before the oldest re-delivered transaction


def remember(decision_log: DecisionLog, value: bytes, holds: dict[str, Hold | None] | None = None) -> bool:
    """Put one `decisions` record in the log (first decisions only); True when it was new to the log.

    With `holds`, also track the holds of the partition: a hold decision adds one, its outcome marks it closed
    (None) for good, even if the decision is written again later (a re-delivery), so the holds left after
    reading the partition are still open (the payer, the record's key, and its partition are filled in later)."""
    try:
        record = orjson.loads(value)
        txn_id, action = record["txn_id"], record["action"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return False
    kind = record.get("kind", "decision")
    if holds is not None:
        if kind == "hold_outcome":
            holds[txn_id] = None
        elif kind == "decision" and txn_id not in holds and isinstance(record.get("hold"), dict):
            hold = _hold_of(record, txn_id)
            if hold is not None:
                holds[txn_id] = hold
    if kind != "decision" or decision_log.get(txn_id) is not None:
        return False
    decision_log.put(txn_id, Remembered(None, value, action != "allow"))
    return True


def _hold_of(record: dict, txn_id: str) -> Hold | None:
    terms = record["hold"]
    try:
        return Hold(
            txn_id,
            "",
            str(terms["payee_account"]),
            float(record["amount"]),
            str(record["currency"]),
            int(terms["held_at"]),
            int(terms["until"]),
            int(terms["deadline"]),
            tuple(r["rule"] for r in record.get("reasons", [])),
            str(terms["on_expiry"]),
            str(record.get("ruleset", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None


class DecisionHandoff:
    """Reads the decisions of partitions this worker newly owns, once per assignment."""

    def __init__(
        self,
        topic: str,
        decision_log: Callable[[], DecisionLog],
        client_config: dict[str, object],
        holds: Callable[[], HoldBook] | None = None,
        hold_lookback_ms: Callable[[], int] = lambda: 0,
    ) -> None:
        self.topic = topic
        self.decision_log = decision_log  # callables: the worker may swap in a restored log and state
        self.holds = holds
        self.hold_lookback_ms = hold_lookback_ms  # the longest hold: a hold decided that long ago may be open
        self.client_config = client_config
        self.known: set[int] = set()  # partitions whose decisions are in the log
        self._consumer: AIOKafkaConsumer | None = None

    def forget(self, partitions: Iterable[int]) -> None:
        """Revoked partitions: if they come back, another worker may have decided more of them meanwhile."""
        self.known.difference_update(partitions)

    async def take_over(self, oldest_ms: dict[int, int]) -> int:
        """Learn the decisions of the new partitions in `oldest_ms` (partition -> Kafka timestamp of its oldest
        record in the batch at hand), up to the end of `decisions`, and reopen their open holds; returns how
        many decisions were learnt. Reads from the oldest record, or from as long ago as the longest hold."""
        horizon = int(time.time() * 1000) - self.hold_lookback_ms()
        new = {p: min(ts, horizon) for p, ts in oldest_ms.items() if p not in self.known}
        if not new:
            return 0
        started = time.perf_counter()
        try:
            learnt = await self._read(new)
        except Exception as exc:  # a missing topic or partition must not stop the worker: decide as before
            log.error("could not read %s for partitions %s (%s); deciding without it", self.topic, sorted(new), exc)
            learnt = 0
        self.known.update(new)
        log.info(
            "took over partitions %s: %d decisions of other workers read from %s in %.2fs",
            sorted(new),
            learnt,
            self.topic,
            time.perf_counter() - started,
        )
        return learnt

    async def _read(self, since: dict[int, int]) -> int:
        consumer = await self._started()
        tps = [TopicPartition(self.topic, p) for p in since]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        found = await consumer.offsets_for_times({tp: max(0, since[tp.partition] - CLOCK_SKEW_MS) for tp in tps})
        for tp in tps:
            start = found.get(tp)
            consumer.seek(tp, start.offset if start is not None else ends[tp])
        learnt = 0
        log_ = self.decision_log()
        pending: dict[str, Hold | None] = {}  # txn_id -> hold decided in these partitions (None: closed)
        owners: dict[str, tuple[str, int]] = {}  # txn_id -> payer (the record's key) and partition of those holds
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for messages in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for m in messages:
                    if m.value is None:
                        continue
                    before = len(pending)
                    learnt += remember(log_, m.value, pending)
                    if len(pending) > before and m.key is not None:
                        owners[orjson.loads(m.value)["txn_id"]] = (m.key.decode(), m.partition)
        reopened = self._reopen(pending, owners)
        if reopened:
            log.info("took over %d open holds from %s", reopened, self.topic)
        return learnt

    def _reopen(self, pending: dict[str, Hold | None], owners: dict[str, tuple[str, int]]) -> int:
        """Open the holds still open in the partitions read; each keeps its decision's partition, so its outcome
        goes there too (whatever partitioner the bank's producer used) and a later owner sees it closed. A hold
        this worker still had open (it owned the partition before) whose outcome another worker wrote meanwhile
        is closed here without one."""
        if self.holds is None:
            return 0
        book = self.holds()
        book.closed_elsewhere(txn_id for txn_id, hold in pending.items() if hold is None)
        reopened = 0
        for txn_id, hold in pending.items():
            if hold is None or txn_id in book.holds or txn_id in book.closed or txn_id not in owners:
                continue
            hold.payer, hold.partition = owners[txn_id]
            book.open(hold)
            reopened += 1
        return reopened

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self.client_config)  # type: ignore[arg-type]
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()  # close what start() opened before it failed
                raise
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
