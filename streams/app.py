"""The worker's runtime: a Faust app hosting the `Interceptor` service, built from `Settings` at run time.

Faust runs the process (logging, signals, the service tree, clean shutdown). The hot path does not go
through Faust's per-event agent stream: `BatchConsumer` (streams/consumer.py) hands whole fetches of
`transactions` and `verifications` to the pipeline, and `KafkaOutput` (streams/producer.py) sends what comes
back. Both topics are keyed by payer account with the same partition count, and the range assignor gives
partition N of both to one worker: the one that holds that payer's state and open holds.

Offsets are committed only after the output of the batches before them is delivered and, with checkpoints,
after the state holding those batches is saved; the same happens when a rebalance takes partitions away.
Delivery is at-least-once and a restart resumes from consistent state. A checkpoint stops the worker only
for a fork: a copy of the process writes it (streams/snapshot.py), and the commit after it runs in the
background, one checkpoint at a time, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable

import faust
import mode
from aiokafka import TopicPartition

from streams.consumer import BatchConsumer
from streams.errors import EventError
from streams.events import decode_call, decode_label
from streams.handoff import DecisionHandoff
from streams.health import BEAT_EVERY_S, READY_LOG, Health
from streams.kafka_security import aiokafka_config, faust_credentials
from streams.metrics import Metrics
from streams.outputs import RawRecord, encode_dead_letter
from streams.pipeline import BatchOutcome, OutMessage, Topics, TransactionPipeline
from streams.privacy import mask, redact
from streams.producer import KafkaOutput, Output
from streams.reload import ReloadResult, RulesetWatcher
from streams.settings import Settings
from streams.side_inputs import follow
from streams.snapshot import ForkedSave, checkpoint_path
from streams.state_feed import StateFeed

log = logging.getLogger(__name__)

CALLS_LOOKBACK_MS = 3 * 3_600_000  # the 120-minute call window plus lateness
LABELS_LOOKBACK_MS = 90 * 86_400_000  # how long a confirmed mule stays on the list
COMMIT_EVERY_S = 1.0  # without checkpoints: how often delivered output lets offsets be committed
LAG_EVERY_S = 5.0
HOLD_CLOCK_S = 1.0


class Interceptor(mode.Service):
    """Consumes, decides, produces; follows the side inputs; expires holds; reloads rules; checkpoints."""

    def __init__(
        self,
        settings: Settings,
        pipeline: TransactionPipeline,
        metrics: Metrics,
        watcher: RulesetWatcher | None = None,
        output: Output | None = None,
        consumer: BatchConsumer | None = None,
        state_positions: dict[int, int] | None = None,
        health: Health | None = None,
        **kwargs: object,
    ) -> None:
        self.settings = settings
        self.health = health or Health()
        self.pipeline = pipeline
        self.metrics = metrics
        self.watcher = watcher
        self.transactions_topic = settings.topic("transactions")
        pipeline.topics = Topics(
            decisions=settings.topic("decisions"),
            alerts=settings.topic("alerts"),
            dead_letters=settings.topic("dead-letters"),
            labels=settings.topic("labels"),
            verifications=settings.topic("verifications"),
        )
        self.client_config = aiokafka_config(settings)
        self.output: Output = output or KafkaOutput(self.client_config)
        self.consumer = consumer or BatchConsumer(
            [self.transactions_topic, settings.topic("verifications")],
            settings.app_id,
            self.client_config,
            settings.batch_max,
            self._on_revoke,
            settings.session_timeout_s,
            self._on_assign,
        )
        self.handoff = DecisionHandoff(
            settings.topic("decisions"),
            lambda: pipeline.decision_log,
            self.client_config,
            lambda: pipeline.engine.holds,
            self._longest_hold_ms,
        )
        self.state_feed = StateFeed(
            self.transactions_topic,
            self.client_config,
            pipeline.record_others,
            lambda partitions: self.consumer.committed_offsets(self.transactions_topic, partitions),
            state_positions,
        )
        self._state_feed_recorded = self.state_feed.recorded
        self._feed_saved = dict(self.state_feed.positions)  # the positions the newest checkpoint holds
        self.side_inputs_ready = {"calls": asyncio.Event(), "labels": asyncio.Event()}
        self.checkpoint_file = checkpoint_path(settings.data_dir, settings.app_id)
        self.started_ms = int(time.time() * 1000)
        self._last_save = time.monotonic()
        self._puts_saved = 0  # the decision log's count of remembered decisions at the last save
        self._puts_committed = 0  # and at the save the last commit covers
        self._changed = False  # state or offsets moved since the last save and commit
        self._rebalancing = False  # partitions revoked and not yet assigned again: holds wait (_on_assign)
        self._saving: ForkedSave | None = None  # the newest checkpoint's writer
        self._checkpointing: asyncio.Task[None] | None = None  # waits for it, then commits, in the background
        self._lag_reported: set[str] = set()  # the partitions whose consumer lag this worker exports
        self._failed_at: float | None = None  # time.monotonic() of the latest failed checkpoint, until one succeeds
        super().__init__(**kwargs)  # type: ignore[arg-type]

    # --- lifecycle -----------------------------------------------------------------------------------------

    async def on_start(self) -> None:
        if isinstance(self.output, KafkaOutput):
            await self.output.start()
        for kind, lookback_ms, apply in (
            ("calls", CALLS_LOOKBACK_MS, self.apply_call),
            ("labels", LABELS_LOOKBACK_MS, self.apply_label),
        ):
            self.add_future(self._follow(kind, lookback_ms, apply))
        self.add_future(self.state_feed.run())
        self.add_future(self._every(BEAT_EVERY_S, self._beat))
        self.add_future(self._every(HOLD_CLOCK_S, self.expire_holds))
        self.add_future(self._every(LAG_EVERY_S, self.report_lag))
        if self.watcher is not None:
            self.add_future(self._every(self.settings.rules_poll_s, self.reload_rules))
        self.add_future(self._consume())

    async def on_stop(self) -> None:
        self.health.ready = False
        self.metrics.ready.set(0)
        # the last checkpoint holds what other workers have committed so far: a restart has less to read
        await self.state_feed.catch_up(timeout_s=10.0)
        # the batch in hand finishes first; then its output is delivered and, with checkpoints, saved
        async with self.consumer.batch_lock:
            await self._save_and_commit(final=True)
        if self._checkpointing is not None:
            self._checkpointing.cancel()  # an older checkpoint: written already, its commit is covered

    async def on_shutdown(self) -> None:
        await self.handoff.stop()
        await self.consumer.stop()
        if isinstance(self.output, KafkaOutput):
            await self.output.stop()

    async def _beat(self) -> None:
        self.health.beat()

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while not self.should_stop:
            await self.sleep(seconds)
            if not self.should_stop:
                await job()

    # --- transactions and verifications ----------------------------------------------------------------

    async def _consume(self) -> None:
        await self.consumer.start()
        # score nothing before the call and mule-list state is rebuilt, and the other workers' transactions read
        await _wait_ready({**self.side_inputs_ready, "state feed": self.state_feed.ready})
        # what exists now (modules, Faust, the ruleset, the restored state) lives as long as the process: a full
        # garbage collection that walks it all paused decisions for ~50 ms
        gc.freeze()
        self.health.ready = True
        self.metrics.ready.set(1)
        log.info(READY_LOG)
        while not self.should_stop:
            generation, records = await self.consumer.next_batch(self.settings.batch_within_s)
            async with self.consumer.batch_lock:
                if self.should_stop:
                    return
                if records and generation != self.consumer.generation:  # a rebalance came in between
                    self.consumer.rewind(records)
                elif records:
                    await self.handle(records)
                    self.consumer.mark_processed(records)
                    self._changed = True
                await self._save_and_commit()

    async def handle(self, records: list[RawRecord]) -> None:
        # a partition new to this worker (transactions and verifications share partition numbers): learn its
        # decisions and open holds first, and record everything its previous owner decided
        taken = {r.partition for r in records} - self.handoff.known
        if taken:
            oldest: dict[int, int] = {}
            for r in records:
                oldest[r.partition] = min(oldest.get(r.partition, r.timestamp_ms), r.timestamp_ms)
            await self.handoff.take_over(oldest)
            await self.state_feed.take_over(taken)
        started = time.perf_counter()
        now_ms = int(time.time() * 1000)
        outcome = self.pipeline.process(records, now_ms=now_ms)
        await self.send(outcome)
        sent_ms = int(time.time() * 1000)  # the decisions are with the producer: the latency ends here
        metrics = self.metrics
        if self.settings.metrics_enabled:
            kinds = outcome.dead_letter_kinds
            metrics.observe_batch(
                outcome.transactions,
                outcome.verdicts,
                [e for e, kind in zip(outcome.dead_letters, kinds, strict=True) if kind == "transactions"],
                "transactions",
                outcome.received_ms,
                sent_ms,
                time.perf_counter() - started,
                getattr(self.pipeline.scorer, "tags", None),
            )
            for error, kind in zip(outcome.dead_letters, kinds, strict=True):
                if kind != "transactions":
                    metrics.dead_letters.labels(kind, error.reason_class).inc()
            if outcome.transactions:
                metrics.kernel_seconds.observe(getattr(self.pipeline.scorer, "kernel_seconds", 0.0))
        for error in outcome.dead_letters:
            log.warning("dead letter: %s", error)

    async def send(self, outcome: BatchOutcome) -> None:
        await self.output.send(outcome.messages)
        if self.settings.metrics_enabled:
            self.metrics.observe_lifecycle(outcome, len(self.pipeline.engine.holds))
        for closed in outcome.hold_outcomes:
            log.info(
                "hold on %s closed: %s (%s)", closed.hold.txn_id, closed.action, closed.cause
            )  # txn ids are not personal data; accounts are never logged in full

    # --- checkpoints, commits, rebalances -------------------------------------------------------------------

    async def _save_and_commit(self, final: bool = False) -> None:
        """Every checkpoint interval (or second, without checkpoints), and when `final`: save the state, wait
        for the output to be delivered, then commit what was processed. Call with `batch_lock` held.

        With checkpoints, a forked copy of the worker writes the checkpoint (`ForkedSave`), and waiting for it,
        delivering and committing run in the background (`_write_and_commit`), unless `final`: a rebalance or a
        stop waits for its checkpoint and commit. While one checkpoint is being written the next one is not
        started.

        What a restart re-delivers (everything since the last commit) must still be in the decision log, or it
        would be decided again, from a state that already holds it, and could get another decision; at 34,000
        tx/s a 10 s interval is 340,000 decisions. So a save is also due once half of the log is new since the
        last one, and once three quarters are uncommitted the save is waited for, as when `final`. Not while
        checkpoints fail (a full disk): each try forks the worker, and trying on every batch would only slow it;
        they are tried again once an interval after the failure."""
        interval = self.settings.checkpoint_interval_s or COMMIT_EVERY_S
        log = self.pipeline.decision_log
        now = time.monotonic()
        failing = self._failed_at is not None and now - self._failed_at < interval
        filling = not failing and log.puts - self._puts_saved >= log.capacity // 2
        due = now - self._last_save >= interval or filling
        if not failing and log.puts - self._puts_committed >= log.capacity * 3 // 4:
            final = True
        writing = self._checkpointing is not None and not self._checkpointing.done()
        if final and writing:
            self._changed = True  # a checkpoint still in the background: take one more, and wait for it
        # the state also changes when the feed records other workers' transactions
        changed = self._changed or self.state_feed.positions != self._feed_saved
        if not changed or (not final and not due):
            return
        if not self.settings.checkpoint_interval_s:
            self._last_save = time.monotonic()
            self._puts_saved = log.puts
            await self.output.delivered()
            await self.consumer.commit()
            self._puts_committed = self._puts_saved
            self._changed = False
            return
        if writing and not final:
            return
        loop = asyncio.get_running_loop()
        if self._saving is not None:  # a stop or rebalance while one is written: it lands first, in order
            with contextlib.suppress(OSError):  # its own task reports it
                await loop.run_in_executor(None, self._saving.wait)
        self._last_save = time.monotonic()
        self._puts_saved = log.puts
        started = time.perf_counter()
        try:
            saving = self._saving = ForkedSave(
                self.checkpoint_file, self.pipeline.engine, self.pipeline.decision_log, self._state_offsets()
            )
        except OSError as exc:  # no memory or processes left to fork
            self._checkpoint_failed(exc)
            return
        self._feed_saved = dict(self.state_feed.positions)
        self.metrics.checkpoint_pause_seconds.observe(time.perf_counter() - started)
        job = self._write_and_commit(
            saving, dict(self.consumer.processed), self.consumer.generation, started, final, log.puts
        )
        self._changed = False
        if final:
            await job
        else:
            self._checkpointing = asyncio.ensure_future(self._in_background(job))

    async def _in_background(self, job: Awaitable[None]) -> None:
        try:
            await job
        except Exception as exc:  # a delivery or commit error stops the worker, as in the consume loop
            await self.crash(exc)

    async def _write_and_commit(
        self,
        saving: ForkedSave,
        processed: dict[TopicPartition, int],
        generation: int,
        started: float,
        final: bool,
        puts: int,
    ) -> None:
        """Wait for a checkpoint taken when `processed` was processed (and the decision log had remembered `puts`
        decisions); then deliver and commit up to there."""
        try:
            await asyncio.get_running_loop().run_in_executor(None, saving.wait)
        except OSError as exc:
            self._checkpoint_failed(exc)
            return
        self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
        self._failed_at = None
        if final:  # the caller holds batch_lock
            await self.output.delivered()
            await self.consumer.commit(processed)
            self._puts_committed = max(self._puts_committed, puts)
            return
        async with self.consumer.batch_lock:  # commits never run into a batch or a rebalance
            if generation != self.consumer.generation:
                return  # partitions moved meanwhile: the revoke delivered and committed past this checkpoint
            await self.output.delivered()
            await self.consumer.commit(processed)
            self._puts_committed = max(self._puts_committed, puts)

    def _checkpoint_failed(self, exc: OSError) -> None:
        self._failed_at = time.monotonic()
        self.metrics.checkpoint_failures.inc()
        log.error(
            "checkpoint to %s failed (%s); decisions go on, offsets stay uncommitted until a checkpoint "
            "succeeds, so a restart re-processes from the last good one",
            self.checkpoint_file,
            exc,
        )
        self._changed = True  # try again at the next interval

    async def _on_revoke(self, revoked: set[TopicPartition]) -> None:
        """Partitions leave this worker: deliver and commit everything decided for them before anyone else
        reads them. Runs with `batch_lock` held."""
        # no hold expires until the new assignment says which partitions, and so which holds, stay here
        self._rebalancing = True
        await self._save_and_commit(final=True)
        partitions = [tp.partition for tp in revoked if tp.topic == self.transactions_topic]
        self.handoff.forget(partitions)
        for p in partitions:  # other workers decide them now: the feed records them from where this one stopped
            self.state_feed.give_up(p, self.consumer.processed.get(TopicPartition(self.transactions_topic, p)))

    def _on_assign(self, assigned: set[TopicPartition]) -> None:
        """The partitions this worker decides from now on (all of them: aiokafka's rebalances are eager). The
        open holds of the others, kept from before the rebalance or restored from a checkpoint, are for their
        new owners to close (they reopen them from `decisions`): an expiry here would be a second outcome."""
        owned = {tp.partition for tp in assigned if tp.topic == self.transactions_topic}
        dropped = self.pipeline.engine.holds.keep_partitions(owned)
        if dropped:
            log.info("%d open holds of partitions other workers own now are theirs to close", dropped)
            self._changed = True
        self._rebalancing = False

    def _state_offsets(self) -> dict[int, int]:
        topic = self.transactions_topic
        processed = {tp.partition: offset for tp, offset in self.consumer.processed.items() if tp.topic == topic}
        return self.state_feed.state_offsets(processed)

    def _longest_hold_ms(self) -> int:
        ruleset = getattr(self.pipeline.scorer, "ruleset", None)
        return 0 if ruleset is None else int(ruleset.longest_hold_minutes * 60_000)

    # --- timers ----------------------------------------------------------------------------------------------

    async def expire_holds(self) -> None:
        """Wall-clock deadlines: a hold nobody verified in time gets the ruleset's default."""
        async with self.consumer.batch_lock:
            if self._rebalancing:
                return
            outcome = self.pipeline.expire(int(time.time() * 1000))
            if outcome.messages:
                await self.send(outcome)
                self._changed = True

    async def report_lag(self) -> None:
        lag = await self.consumer.lag()
        lags = {str(tp.partition): n for tp, n in lag.items() if tp.topic == self.transactions_topic}
        # a partition this worker gave up in a rebalance: its new owner reports it; a frozen value here would
        # count its lag twice in the sum the lag alert watches
        for partition in self._lag_reported - lags.keys():
            self.metrics.consumer_lag.remove(partition)
        for partition, n in lags.items():
            self.metrics.consumer_lag.labels(partition).set(n)
        self._lag_reported = set(lags)
        self.metrics.state_feed_lag.set(self.state_feed.lag())
        recorded = self.state_feed.recorded
        self.metrics.state_feed_recorded.inc(recorded - self._state_feed_recorded)
        self._state_feed_recorded = recorded

    async def reload_rules(self) -> None:
        assert self.watcher is not None
        # compiling a big ruleset takes seconds: in a thread, so decisions go on meanwhile; the guard and the
        # swap run here, on the event loop, between two batches
        found = await asyncio.get_running_loop().run_in_executor(None, self.watcher.load_changed)
        if found is None:
            return
        result = found if isinstance(found, ReloadResult) else self.watcher.apply(found)
        self.metrics.ruleset_reloads.labels(result.label).inc()

    # --- side inputs -----------------------------------------------------------------------------------------

    async def _follow(self, kind: str, lookback_ms: int, apply: Callable[[RawRecord], None]) -> None:
        await follow(
            self.settings.topic(kind),
            lookback_ms,
            apply,
            self.dead_letter,
            self.client_config,
            self.side_inputs_ready[kind],
        )

    def apply_call(self, record: RawRecord) -> None:
        self.pipeline.engine.add_call(decode_call(record.value))  # type: ignore[arg-type]

    def apply_label(self, record: RawRecord) -> None:
        label = decode_label(record.value)  # type: ignore[arg-type]
        change = self.pipeline.engine.add_label(label, now_ms=record.timestamp_ms)
        if change is not None:
            self.metrics.mule_list_changes.labels(change).inc()
            log.info(
                "mule list: %s %s (verdict %s, source %s, reason %r)",
                change,
                mask(label.account),
                label.verdict,
                redact(label.source or "-"),  # free text: numbers and IPs that look personal are masked
                redact(label.reason or "")[:200],
            )
        # labels are re-read from 90 days back at every start: count feedback only once, when it is new
        if record.timestamp_ms >= self.started_ms:
            for rule, verdict in self.pipeline.label_feedback(label):
                self.metrics.rule_feedback.labels(rule, verdict, "label").inc()

    async def dead_letter(self, record: RawRecord, error: EventError) -> None:
        settings = self.settings
        self.metrics.dead_letters.labels(record.topic.removeprefix(settings.topic_prefix), error.reason_class).inc()
        log.warning("dead letter from %s: %s", record.topic, error)
        value = encode_dead_letter(record, error, int(time.time() * 1000))
        await self.output.send([OutMessage(settings.topic("dead-letters"), record.key, value)])


def build_app(
    settings: Settings,
    pipeline: TransactionPipeline,
    metrics: Metrics,
    watcher: RulesetWatcher | None = None,
    state_positions: dict[int, int] | None = None,
    health: Health | None = None,
) -> faust.App:
    """The Faust app that runs an `Interceptor` for these settings."""
    app = faust.App(
        settings.app_id,
        env={},  # Faust would read its own variables (PRODUCER_ACKS=1 ...) over these: INTERCEPTOR_* only
        broker=settings.faust_broker_url(),
        broker_credentials=faust_credentials(settings),
        store="memory://",  # no Faust tables: the feature state is ours (streams/features, streams/snapshot.py)
        datadir=settings.data_dir,
        web_enabled=False,
        autodiscover=False,
    )
    # Faust's own consumer would join the group with its own assignor, and its producer would sit idle
    app.producer_only = True
    app.boot_strategy.enable_kafka_producer = False
    interceptor = Interceptor(settings, pipeline, metrics, watcher, state_positions=state_positions, health=health)

    @app.task
    async def run_interceptor() -> None:
        await app.add_runtime_dependency(interceptor)  # started now, stopped (cleanly) with the app

    app.interceptor = interceptor  # type: ignore[attr-defined]
    return app


async def _wait_ready(events: dict[str, asyncio.Event], timeout: float = 60.0) -> None:
    for name, event in events.items():
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            log.error("side input %s not caught up after %.0fs; scoring without it", name, timeout)
