"""`interceptor`: the one command-line entry point."""

from __future__ import annotations

import os
import sys

import click

from streams import __version__
from streams.cli.backtest import backtest
from streams.cli.bench import bench
from streams.cli.brokers import kafka_settings
from streams.cli.callcentre import call_centre
from streams.cli.io import dead_letters, produce, tail
from streams.cli.rules import rules
from streams.cli.simulate import simulate
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

    from rules.errors import RuleError
    from streams.kafka_security import BrokerConnectionError
    from streams.worker import run_worker

    try:
        run_worker(settings)
    except RuleError as exc:
        raise click.ClickException(f"the ruleset is invalid, the worker did not start:\n{exc}") from None
    except BrokerConnectionError as exc:
        raise click.ClickException(f"cannot use the Kafka brokers, the worker did not start: {exc}") from None
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def topics() -> None:
    """Manage the contract's Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the contract's topics that are missing (INTERCEPTOR_PARTITIONS partitions each)."""
    from streams.topics import ensure_topics

    settings = kafka_settings()
    created = ensure_topics(settings)
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


main.add_command(rules)
main.add_command(backtest)
main.add_command(simulate)
main.add_command(bench)
main.add_command(produce)
main.add_command(tail)
main.add_command(dead_letters)
main.add_command(call_centre)


if __name__ == "__main__":
    sys.exit(main())
