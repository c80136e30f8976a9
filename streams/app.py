"""The Faust app: topics and the transactions agent, built from `Settings` at run time (not import time).

The agent is thin on purpose: it turns Faust events into `RawRecord`s, hands the batch to the pipeline and
produces what comes back. Offsets are committed only after the batch's output is flushed (Faust flushes
the producer before each commit and `take_events` acks after the loop body), so delivery is at-least-once.
"""

from __future__ import annotations

import logging
import ssl
import time

import faust

from streams.metrics import Metrics
from streams.outputs import RawRecord
from streams.pipeline import Topics, TransactionPipeline
from streams.settings import Settings

log = logging.getLogger(__name__)


def build_app(settings: Settings, pipeline: TransactionPipeline, metrics: Metrics) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker_url(),
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        broker_credentials=_credentials(settings),
        producer_acks=-1,  # a decision is only "sent" once every in-sync replica has it
        producer_linger_ms=1,
    )
    transactions = app.topic(settings.topic("transactions"), key_type=bytes, value_type=bytes)
    producer_topics = Topics(
        decisions=settings.topic("decisions"),
        alerts=settings.topic("alerts"),
        dead_letters=settings.topic("dead-letters"),
    )
    pipeline.topics = producer_topics

    @app.agent(transactions, name="score-transactions")
    async def score_transactions(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
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
            started = time.perf_counter()
            now_ms = int(time.time() * 1000)
            outcome = pipeline.process(records, now_ms=now_ms)
            producer = app.producer
            for msg in outcome.messages:
                await producer.send(msg.topic, msg.key, msg.value, None, None, None)
            metrics.observe_batch(
                outcome.transactions,
                outcome.verdicts,
                outcome.dead_letters,
                "transactions",
                outcome.received_ms,
                now_ms,
                time.perf_counter() - started,
            )
            for error in outcome.dead_letters:
                log.warning("dead letter: %s", error)

    return app


def _credentials(settings: Settings) -> faust.auth.Credentials | None:
    if settings.sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=str(settings.sasl_password),
            mechanism=settings.sasl_mechanism,
            ssl_context=_ssl_context(settings) if settings.security_protocol == "SASL_SSL" else None,
        )
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    return None


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.ssl_cafile or None)
