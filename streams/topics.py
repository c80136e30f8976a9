"""Create the contract's topics before the worker starts, so partition counts are ours, not auto-created."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

log = logging.getLogger(__name__)

CONTRACT_TOPICS = ("transactions", "calls", "labels", "verifications", "decisions", "alerts", "dead-letters")


def ensure_topics(settings: Settings, replication_factor: int = -1) -> list[str]:
    """Create missing contract topics with `settings.partitions` partitions; returns the ones created. The
    replication factor is the cluster's `default.replication.factor` (-1): 1 gave a bank's three-broker
    cluster `decisions` with a single replica."""
    admin = KafkaAdminClient(client_id=f"{settings.app_id}-admin", **settings.kafka_client_config())
    try:
        existing = set(admin.list_topics())
        wanted = [settings.topic(name) for name in CONTRACT_TOPICS]
        missing = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=replication_factor)
            for name in wanted
            if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker created them first
        created = [t.name for t in missing]
        if created:
            log.info("created topics %s", ", ".join(created))
        return created
    finally:
        admin.close()
