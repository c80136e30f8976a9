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


def require_topic(settings: Settings, name: str) -> str:
    """The full name of contract topic `name`; ClickException when it does not exist (no `interceptor topics
    create` yet, or another INTERCEPTOR_TOPIC_PREFIX): reading it would silently find nothing."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    topic = settings.topic(name)
    if topic not in existing:
        raise click.ClickException(
            f"there is no topic {topic} on {settings.broker}: create the contract's topics with `interceptor topics "
            f"create`, or check INTERCEPTOR_TOPIC_PREFIX (now {settings.topic_prefix!r})"
        )
    return topic


def ensure_contract_topics(settings: Settings) -> None:
    """Before producing: create the contract's missing topics (their partition counts, not the broker's default
    for a topic made on first use) and say which. An account allowed to produce but not to list or create
    topics produces anyway, with a warning."""
    from kafka.errors import KafkaError

    from streams.topics import ensure_topics

    try:
        created = ensure_topics(settings)
    except KafkaError as exc:
        click.echo(f"warning: could not check or create the contract's topics ({exc}); producing anyway", err=True)
        return
    if created:
        click.echo(f"created topics {', '.join(created)}", err=True)
