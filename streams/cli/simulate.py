"""`interceptor simulate`: a reproducible bank feed with telecom fraud and its honest look-alikes."""

from __future__ import annotations

import collections
import functools
from datetime import tzinfo
from pathlib import Path

import click
import orjson

from streams.cli.brokers import ensure_contract_topics, kafka_settings
from streams.cli.zone import timezone_option
from streams.settings import Settings

_ZONE_HELP = (
    "The simulated bank's time zone, an IANA name (Europe/London: its daylight saving time is followed) or an "
    "offset from UTC. The customers' daily rhythm (shop hours, night shifts, account takeovers at night) is on "
    "the bank's wall clock. The worker's INTERCEPTOR_TIMEZONE sets it too, unless --timezone is given, so the "
    "feed and the worker agree."
)


def _mix(value: str) -> dict[str, float]:
    try:
        pairs = [item.split("=") for item in value.split(",") if item]
        return {name.strip(): float(weight) for name, weight in pairs}
    except ValueError:
        raise click.BadParameter("use name=weight,name=weight (e.g. impersonation=0.5,investment=0.5)") from None


@click.command()
@click.option("--customers", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--fraud-rate",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Share of customers who become victims.",
)
@click.option(
    "--mix",
    default="impersonation=0.5,investment=0.2,account_takeover=0.15,mule_chain=0.15",
    show_default=True,
    help="Typology weights.",
)
@click.option("--split-limit", type=float, default=50_000, show_default=True, help="Limit scammers split under.")
@click.option("--lookalikes/--no-lookalikes", default=True, show_default=True, help="Honest look-alikes of fraud.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Write JSON-lines files here.")
@click.option("--kafka", is_flag=True, help="Produce to the topics of INTERCEPTOR_BROKER instead (labels too).")
@click.option(
    "--rate", type=float, default=0.0, help="With --kafka: transactions per second (0 = as fast as possible)."
)
@functools.partial(timezone_option, help=_ZONE_HELP)
def simulate(
    customers, days, seed, fraud_rate, mix, split_limit, lookalikes, out_dir, kafka, rate, zone: tzinfo
) -> None:
    """Generate transactions, calls and ground-truth labels, reproducible by --seed."""
    from rich.console import Console

    from streams.simulator import SimConfig
    from streams.simulator import simulate as run

    if not out_dir and not kafka:
        raise click.UsageError("give --out DIR or --kafka")
    settings = kafka_settings() if kafka else None  # before the simulation, which can take a while
    cfg = SimConfig(
        customers=customers,
        days=days,
        seed=seed,
        fraud_rate=fraud_rate,
        typology_mix=_mix(mix),
        split_limit=split_limit,
        lookalikes=lookalikes,
        zone=zone,
    )
    try:
        feed = run(cfg)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    streams = {"transactions": feed.transactions, "calls": feed.calls, "labels": feed.labels}
    if out_dir:
        feed.write(out_dir)
    if settings:
        _produce(settings, streams, rate)
    fraud = collections.Counter(feed.truth.values())
    amount = sum(float(t["amount"]) for t in feed.transactions if t["txn_id"] in feed.truth)
    Console(stderr=True).print(
        f"{len(feed.transactions):,} transactions ({sum(fraud.values()):,} fraudulent, {amount:,.0f} CNY: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(fraud.items()))}), {len(feed.calls):,} calls, "
        f"{len(feed.labels):,} labels; seed {seed}" + (f"; written to {out_dir}" if out_dir else "")
    )


def _produce(settings: Settings, streams: dict[str, list[dict]], rate: float) -> None:
    from kafka import KafkaProducer
    from rich.progress import Progress

    from streams.cli.io import message_key, send_paced

    ensure_contract_topics(settings)
    producer = KafkaProducer(acks="all", linger_ms=5, **settings.kafka_client_config())
    with Progress() as progress:
        # calls and labels first: the worker joins transactions with what it already knows
        for name in ("calls", "labels", "transactions"):
            values = [orjson.dumps(event) for event in streams[name]]
            task = progress.add_task(settings.topic(name), total=len(values))
            messages = ((message_key(name, v), v) for v in values)
            paced = rate if name == "transactions" else 0.0
            send_paced(producer, settings.topic(name), messages, paced, lambda task=task: progress.advance(task))
    producer.close()
