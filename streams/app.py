"""The Faust app: topics and the transactions agent, built from `Settings` at run time (not import time).

The agent is thin on purpose: it turns Faust events into `RawRecord`s, hands the batch to the pipeline and
produces what comes back. It reads `transactions` and `verifications` together: both are keyed by payer
account with the same partition count, so Faust assigns partition N of both to one worker, the one that holds
that payer's state and open holds. Offsets are committed only after the batch's output is flushed (Faust flushes
the producer before each commit and `take_events` acks after the loop body) and the state is checkpointed,
so delivery is at-least-once and a restart resumes from consistent state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import faust

from streams.errors import EventError
from streams.events import decode_call, decode_label
from streams.handoff import DecisionHandoff
from streams.kafka_security import aiokafka_config, faust_credentials
from streams.metrics import Metrics
from streams.outputs import RawRecord, encode_dead_letter
from streams.pipeline import BatchOutcome, Topics, TransactionPipeline
from streams.privacy import mask, redact
from streams.reload import ReloadResult, RulesetWatcher
from streams.settings import Settings
from streams.side_inputs import follow
from streams.snapshot import checkpoint_path, save

log = logging.getLogger(__name__)

CALLS_LOOKBACK_MS = 3 * 3_600_000  # the 120-minute call window plus lateness
LABELS_LOOKBACK_MS = 90 * 86_400_000  # how long a confirmed mule stays on the list


def build_app(
    settings: Settings, pipeline: TransactionPipeline, metrics: Metrics, watcher: RulesetWatcher | None = None
) -> faust.App:
    app = faust.App(
        settings.app_id,
        env={},  # Faust would read its own variables (PRODUCER_ACKS=1 ...) over these: INTERCEPTOR_* only
        broker_session_timeout=settings.session_timeout_s,
        broker=settings.faust_broker_url(),
        store="memory://",  # no Faust tables: the feature state is ours (streams/features, streams/snapshot.py)
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        broker_credentials=faust_credentials(settings),
        producer_acks=-1,  # a decision is only "sent" once every in-sync replica has it
        producer_linger_ms=5,
        producer_max_batch_size=1_048_576,
        stream_buffer_maxsize=16_384,
        broker_max_poll_records=5_000,
        # with checkpoints, the agent commits right after each one (see streams/snapshot.py), so Faust's own
        # periodic commit must not run ahead of the newest checkpoint
        **(
            {"broker_commit_every": 1_000_000_000, "broker_commit_interval": 1e9}
            if settings.checkpoint_interval_s
            else {}
        ),
    )
    transactions_topic = settings.topic("transactions")
    inputs = app.topic(transactions_topic, settings.topic("verifications"), key_type=bytes, value_type=bytes)
    producer_topics = Topics(
        decisions=settings.topic("decisions"),
        alerts=settings.topic("alerts"),
        dead_letters=settings.topic("dead-letters"),
        labels=settings.topic("labels"),
        verifications=settings.topic("verifications"),
    )
    started_ms = int(time.time() * 1000)
    pipeline.topics = producer_topics

    side_inputs_ready = {"calls": asyncio.Event(), "labels": asyncio.Event()}

    checkpoint_file = checkpoint_path(settings.data_dir, settings.app_id)

    def take_checkpoint() -> bool:
        """Save the state; False when the disk refused (full, read-only): then nothing may be committed."""
        try:
            seconds = save(checkpoint_file, pipeline.engine, pipeline.decision_log)
        except OSError as exc:
            metrics.checkpoint_failures.inc()
            log.error(
                "checkpoint to %s failed (%s); decisions go on, offsets stay uncommitted until a checkpoint "
                "succeeds, so a restart re-processes from the last good one",
                checkpoint_file,
                exc,
            )
            return False
        metrics.checkpoint_seconds.observe(seconds)
        return True

    @app.agent(inputs, name="score-transactions")
    async def score_transactions(stream: faust.StreamT) -> None:
        waited = False
        last_checkpoint = time.monotonic()
        try:
            async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
                if not waited:  # score nothing before the call and mule-list state is rebuilt
                    await _wait_ready(side_inputs_ready)
                    waited = True
                await handle(events)
                if (
                    settings.checkpoint_interval_s
                    and time.monotonic() - last_checkpoint >= settings.checkpoint_interval_s
                ):
                    # This batch is not acked yet, so the commit below covers only earlier batches: the
                    # committed offsets stay behind the checkpoint, which already holds this batch.
                    if take_checkpoint():
                        await app.consumer.commit()
                    last_checkpoint = time.monotonic()
        finally:
            await handoff.stop()
            if settings.checkpoint_interval_s:
                take_checkpoint()  # before Faust's shutdown commit

    async def handle(events: list[faust.EventT]) -> None:
        records = [
            RawRecord(
                value=e.message.value,
                key=e.message.key,
                topic=e.message.topic,
                partition=e.message.partition,
                offset=e.message.offset,
                timestamp_ms=int(e.message.timestamp * 1000),
            )
            for e in events
        ]
        # a partition new to this worker (transactions and verifications share partition numbers): learn its
        # decisions and open holds first
        if {e.message.partition for e in events} - handoff.known:
            oldest: dict[int, int] = {}
            for r in records:
                oldest[r.partition] = min(oldest.get(r.partition, r.timestamp_ms), r.timestamp_ms)
            await handoff.take_over(oldest)
        started = time.perf_counter()
        now_ms = int(time.time() * 1000)
        outcome = pipeline.process(records, now_ms=now_ms)
        await send(outcome)
        if settings.metrics_enabled:
            kinds = outcome.dead_letter_kinds
            metrics.observe_batch(
                outcome.transactions,
                outcome.verdicts,
                [e for e, kind in zip(outcome.dead_letters, kinds, strict=True) if kind == "transactions"],
                "transactions",
                outcome.received_ms,
                now_ms,
                time.perf_counter() - started,
                getattr(pipeline.scorer, "tags", None),
            )
            for error, kind in zip(outcome.dead_letters, kinds, strict=True):
                if kind != "transactions":
                    metrics.dead_letters.labels(kind, error.reason_class).inc()
            if outcome.transactions:
                metrics.kernel_seconds.observe(getattr(pipeline.scorer, "kernel_seconds", 0.0))
        for error in outcome.dead_letters:
            log.warning("dead letter: %s", error)

    async def send(outcome: BatchOutcome) -> None:
        producer = app.producer
        for msg in outcome.messages:
            await producer.send(msg.topic, msg.key, msg.value, msg.partition, None, None)
        if settings.metrics_enabled:
            metrics.observe_lifecycle(outcome, len(pipeline.engine.holds))
        for closed in outcome.hold_outcomes:
            log.info(
                "hold on %s closed: %s (%s)", closed.hold.txn_id, closed.action, closed.cause
            )  # txn ids are not personal data; accounts are never logged in full

    @app.timer(1.0)
    async def expire_holds() -> None:
        """Wall-clock deadlines: a hold nobody verified in time gets the ruleset's default."""
        outcome = pipeline.expire(int(time.time() * 1000))
        if outcome.messages:
            await send(outcome)

    def apply_call(record: RawRecord) -> None:
        pipeline.engine.add_call(decode_call(record.value))  # type: ignore[arg-type]

    def apply_label(record: RawRecord) -> None:
        label = decode_label(record.value)  # type: ignore[arg-type]
        change = pipeline.engine.add_label(label, now_ms=record.timestamp_ms)
        if change is not None:
            metrics.mule_list_changes.labels(change).inc()
            log.info(
                "mule list: %s %s (verdict %s, source %s, reason %r)",
                change,
                mask(label.account),
                label.verdict,
                redact(label.source or "-"),  # free text: numbers and IPs that look personal are masked
                redact(label.reason or "")[:200],
            )
        # labels are re-read from 90 days back at every start: count feedback only once, when it is new
        if record.timestamp_ms >= started_ms:
            for rule, verdict in pipeline.label_feedback(label):
                metrics.rule_feedback.labels(rule, verdict, "label").inc()

    async def dead_letter(record: RawRecord, error: EventError) -> None:
        metrics.dead_letters.labels(record.topic.removeprefix(settings.topic_prefix), error.reason_class).inc()
        log.warning("dead letter from %s: %s", record.topic, error)
        value = encode_dead_letter(record, error, int(time.time() * 1000))
        await app.producer.send(producer_topics.dead_letters, record.key, value, None, None, None)

    side_input_config = aiokafka_config(settings)

    def longest_hold_ms() -> int:
        ruleset = getattr(pipeline.scorer, "ruleset", None)
        return 0 if ruleset is None else int(ruleset.longest_hold_minutes * 60_000)

    handoff = DecisionHandoff(
        settings.topic("decisions"),
        lambda: pipeline.decision_log,
        side_input_config,
        lambda: pipeline.engine.holds,
        longest_hold_ms,
    )

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: faust.App, revoked: set, **kwargs: object) -> None:
        if any(tp.topic == transactions_topic for tp in revoked):
            handoff.forget(tp.partition for tp in revoked if tp.topic == transactions_topic)

    def side_input_task(
        kind: str, lookback_ms: int, apply: Callable[[RawRecord], None]
    ) -> Callable[[], Awaitable[None]]:
        async def follow_side_input() -> None:
            await follow(
                settings.topic(kind),
                lookback_ms,
                apply,
                dead_letter,
                side_input_config,
                side_inputs_ready[kind],
            )

        follow_side_input.__name__ = f"follow_{kind}"
        return follow_side_input

    @app.timer(5.0)
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != transactions_topic:
                continue
            try:
                position = await consumer.position(tp)
                highwater = consumer.highwater(tp)
            except Exception as exc:  # revoked between assignment() and here: a metric must never stop the worker
                log.debug("lag of %s unknown: %r", tp, exc)
                continue
            # both are unknown for a moment after a rebalance assigned the partition (no fetch yet)
            if position is not None and highwater is not None:
                metrics.consumer_lag.labels(str(tp.partition)).set(max(0, highwater - position))

    if watcher is not None:

        @app.timer(settings.rules_poll_s)
        async def reload_rules() -> None:
            # compiling a big ruleset takes seconds: in a thread, so the agent keeps deciding meanwhile; the
            # guard and the swap run here, on the event loop, between two batches
            found = await asyncio.get_running_loop().run_in_executor(None, watcher.load_changed)
            if found is None:
                return
            result = found if isinstance(found, ReloadResult) else watcher.apply(found)
            metrics.ruleset_reloads.labels(result.label).inc()

    app.task(side_input_task("calls", CALLS_LOOKBACK_MS, apply_call))
    app.task(side_input_task("labels", LABELS_LOOKBACK_MS, apply_label))

    return app


async def _wait_ready(events: dict[str, asyncio.Event], timeout: float = 60.0) -> None:
    for name, event in events.items():
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            log.error("side input %s not caught up after %.0fs; scoring without it", name, timeout)
