"""`interceptor bench`: throughput, latency and the passthrough ratio against the real broker."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from streams.cli.brokers import kafka_settings

SMALL_BACKLOG = 50_000  # below it, the first and last batches weigh on the throughput figure


@click.command()
@click.option("--transactions", "n", type=int, default=100_000, show_default=True, help="Backlog size.")
@click.option("--rate", type=float, default=5000, show_default=True, help="Offered load for the latency run (tx/s).")
@click.option("--seconds", type=float, default=20, show_default=True, help="Length of the latency run.")
@click.option("--skip-throughput", is_flag=True, help="Only the latency run.")
def bench(n: int, rate: float, seconds: float, skip_throughput: bool) -> None:
    """Measure one worker process end to end on INTERCEPTOR_BROKER (start one with deploy/kafka/local-kafka)."""
    from rich.console import Console
    from rich.table import Table

    from streams import bench as b

    settings = kafka_settings()
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="interceptor-bench-"))
    table = Table("measure", "value", "target")
    if not skip_throughput:
        console.print(f"simulating {n:,} transactions ...")
        messages = b.feed(n)
        console.print("raw aiokafka passthrough ...")
        raw = b.passthrough_throughput(settings, messages)
        console.print("worker on the backlog ...")
        worker = b.worker_throughput(settings, messages, workdir)
        console.print("worker on the backlog, metrics off ...")
        bare = b.worker_throughput(settings, messages, workdir, metrics=False)
        table.add_row("worker throughput (tx/s)", f"{worker:,.0f}", ">= 50,000")
        table.add_row("worker throughput, metrics off (tx/s)", f"{bare:,.0f}", "")
        table.add_row("raw passthrough (tx/s)", f"{raw:,.0f}", "")
        table.add_row("worker / passthrough", f"{worker / raw:.2f}", ">= 0.5")
    console.print(f"worker at {rate:,.0f} tx/s for {seconds:.0f}s ...")
    latency = b.latency_at_rate(settings, rate, seconds, workdir)
    for name, value in latency.items():
        table.add_row(f"latency {name} at {rate:,.0f} tx/s (ms)", f"{value:,.1f}", "<= 20" if name == "p99" else "")
    console.print(table)
    if not skip_throughput and n < SMALL_BACKLOG:
        console.print(f"[yellow]a backlog of {n:,} is too small to measure throughput: use {SMALL_BACKLOG:,} or more")
    console.print(f"worker logs in {workdir}")
