"""`interceptor`: the one command-line entry point."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from streams import __version__
from streams.cli.backtest import backtest
from streams.cli.io import produce, tail
from streams.cli.rules import rules
from streams.errors import SettingsError
from streams.settings import Settings


def _settings_help() -> str:
    rows = "\n".join(f"  {name} (default {default}): {doc}" for name, default, doc in Settings.documented())
    return f"Settings come from the environment:\n\n\b\n{rows}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="interceptor")
def main() -> None:
    """Fraud Interceptor: real-time telecom-fraud interception for bank payment feeds."""


@main.command(epilog=_settings_help())
def worker() -> None:
    """Run a stream worker: consume transactions, decide each, produce decisions."""
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # kernels are serial; scale with processes
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None

    from faust.worker import Worker
    from prometheus_client import CollectorRegistry, start_http_server

    from streams.app import build_app
    from streams.metrics import Metrics
    from streams.pipeline import TransactionPipeline
    from streams.scorer import load_scorer
    from streams.topics import ensure_topics

    ensure_topics(settings)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.up_since.set_to_current_time()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=registry)
    app = build_app(
        settings, TransactionPipeline(load_scorer(Path(settings.rules_path) if settings.rules_path else None)), metrics
    )
    Worker(app, loglevel=settings.log_level, redirect_stdouts=False).execute_from_commandline()


@main.group()
def topics() -> None:
    """Manage the contract's Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the contract's topics that are missing (INTERCEPTOR_PARTITIONS partitions each)."""
    from streams.topics import ensure_topics

    settings = Settings.from_env()
    created = ensure_topics(settings)
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


main.add_command(rules)
main.add_command(backtest)
main.add_command(produce)
main.add_command(tail)


if __name__ == "__main__":
    sys.exit(main())
