"""Create the contract's topics before the worker starts, so partition counts are ours, not auto-created, and
check that the counts of existing ones fit together."""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.errors import TopicLayoutError
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


def check_partition_counts(settings: Settings) -> None:
    """Raise TopicLayoutError when existing topics cannot work together: a decision and its alert go to their
    transaction's partition number, so `decisions` and `alerts` need at least as many partitions as
    `transactions`; and a verification must reach the worker holding its payer's holds, which the range
    assignor ensures only when `verifications` has exactly as many."""
    names = {kind: settings.topic(kind) for kind in ("transactions", "verifications", "decisions", "alerts")}
    admin = KafkaAdminClient(client_id=f"{settings.app_id}-admin", **settings.kafka_client_config())
    try:
        counts = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(list(names.values()))}
    finally:
        admin.close()
    transactions, n = names["transactions"], counts[names["transactions"]]
    problems = []
    if counts[names["verifications"]] != n:
        problems.append(
            f"{names['verifications']} has {counts[names['verifications']]} partitions and {transactions} {n}: "
            "they need as many, so that a verification reaches the worker holding its payer's holds"
        )
    for kind in ("decisions", "alerts"):
        if counts[names[kind]] < n:
            problems.append(
                f"{names[kind]} has {counts[names[kind]]} partitions, fewer than the {n} of {transactions}: "
                "a decision goes to its transaction's partition number"
            )
    if problems:
        raise TopicLayoutError("; ".join(problems) + " (add partitions with kafka-topics.sh --alter --partitions)")
