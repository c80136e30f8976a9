"""`interceptor produce` and `interceptor tail`: move JSON lines between files and the contract's topics."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from streams.cli.brokers import ensure_contract_topics, kafka_settings, require_topic
from streams.errors import REASON_CLASSES
from streams.privacy import redact

if TYPE_CHECKING:
    from kafka import KafkaProducer

KEY_FIELDS = {
    "transactions": "payer_account",
    "calls": "callee_phone",
    "labels": "account",
    "verifications": "payer_account",
}


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--topic", "topic_name", required=True, type=click.Choice(sorted(KEY_FIELDS)), help="Contract topic.")
@click.option("--rate", type=float, default=0.0, help="Messages per second (0 = as fast as possible).")
def produce(file: Path, topic_name: str, rate: float) -> None:
    """Send a JSON-lines FILE to a topic, keyed as the contract says (lines are sent as they are)."""
    from kafka import KafkaProducer
    from rich.progress import Progress

    settings = kafka_settings()
    ensure_contract_topics(settings)
    producer = KafkaProducer(acks="all", linger_ms=5, **settings.kafka_client_config())
    lines = [line for line in file.read_bytes().splitlines() if line.strip()]
    start = time.monotonic()
    with Progress(transient=True) as progress:
        task = progress.add_task(f"producing to {settings.topic(topic_name)}", total=len(lines))
        messages = ((message_key(topic_name, line), line) for line in lines)
        send_paced(producer, settings.topic(topic_name), messages, rate, lambda: progress.advance(task))
    producer.close()
    elapsed = time.monotonic() - start
    click.echo(f"sent {len(lines)} messages to {settings.topic(topic_name)} in {elapsed:.1f}s")


def message_key(topic_name: str, value: bytes) -> bytes | None:
    """The contract's key of a message (None for one that is not a JSON object: the worker dead-letters it)."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    key = (obj.get(KEY_FIELDS[topic_name]) or obj.get("txn_id")) if isinstance(obj, dict) else None
    return str(key).encode() if key else None


def send_paced(
    producer: KafkaProducer,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    rate: float,
    on_sent: Callable[[], object] = lambda: None,
) -> None:
    """Send (key, value) pairs at `rate` messages per second (0 = as fast as possible), then flush."""
    start = time.monotonic()
    for i, (key, value) in enumerate(messages):
        producer.send(topic, key=key, value=value)
        if rate > 0:
            delay = start + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        on_sent()
    producer.flush()


@click.command()
@click.argument("topic_name", type=click.Choice(["decisions", "alerts", "dead-letters"]))
@click.option("--from-beginning", is_flag=True, help="Start at the oldest message instead of the newest.")
@click.option("--max", "max_messages", type=int, default=0, help="Stop after this many messages (0 = never).")
@click.option("--idle-exit", type=float, default=0.0, help="Stop after this many idle seconds (0 = never).")
def tail(topic_name: str, from_beginning: bool, max_messages: int, idle_exit: float) -> None:
    """Print messages of an output topic as JSON lines."""
    from kafka import KafkaConsumer

    settings = kafka_settings()
    consumer = KafkaConsumer(
        require_topic(settings, topic_name),
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(idle_exit * 1000) if idle_exit else float("inf"),
        **settings.kafka_client_config(),
    )
    seen = 0
    try:
        for record in consumer:
            sys.stdout.write(record.value.decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
            seen += 1
            if max_messages and seen >= max_messages:
                break
    finally:
        consumer.close()


@click.command("dead-letters")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Write the original messages here, one per line, to fix and send again with `produce`.",
)
@click.option(
    "--reason",
    "reasons",
    multiple=True,
    type=click.Choice(REASON_CLASSES),
    help="Only these reason classes (repeatable).",
)
@click.option("--idle-exit", type=float, default=3.0, show_default=True, help="Stop after this many idle seconds.")
def dead_letters(out_path: Path, reasons: tuple[str, ...], idle_exit: float) -> None:
    """Export the original bytes of dead-lettered messages, with their reasons printed to stderr."""
    import base64

    from kafka import KafkaConsumer

    settings = kafka_settings()
    consumer = KafkaConsumer(
        require_topic(settings, "dead-letters"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(idle_exit * 1000),
        **settings.kafka_client_config(),
    )
    kept = 0
    with out_path.open("wb") as out:
        for record in consumer:
            letter = orjson.loads(record.value)
            if reasons and letter["reason_class"] not in reasons:
                continue
            out.write(base64.b64decode(letter["original_b64"]).replace(b"\n", b" ") + b"\n")
            # the reason is masked by the worker that wrote it; masked again for letters from older workers
            where = f"{letter['topic']}:{letter['partition']}:{letter['offset']}"
            click.echo(f"{where}: {redact(letter['reason'])}", err=True)
            kept += 1
    consumer.close()
    click.echo(f"exported {kept} messages to {out_path}", err=True)
