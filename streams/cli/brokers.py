"""The check every command that talks to Kafka runs first, as the worker does: a wrong listener, CA, client
certificate or password is one clear line and exit 1 at once, not a client retrying for 30 s and a traceback."""

from __future__ import annotations

import click

from streams.errors import BrokerConnectionError, SettingsError
from streams.settings import Settings


def kafka_settings() -> Settings:
    """Settings from the environment, checked against the brokers (`streams.kafka_security.check_connection`);
    raises ClickException naming the setting or the broker and the cause."""
    from streams.kafka_security import check_connection

    try:
        settings = Settings.from_env()
        check_connection(settings)
    except BrokerConnectionError as exc:
        raise click.ClickException(f"cannot use the Kafka brokers: {exc}") from None
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return settings
