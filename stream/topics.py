"""Create the five contract topics (idempotent), with the configured partitions and replication."""

from __future__ import annotations

import logging

from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from riskpulse.settings import Settings

from . import kafka_clients
from .records import TOPIC_DLQ, TOPICS

log = logging.getLogger(__name__)


def ensure_topics(settings: Settings) -> list[str]:
    """Returns the topics it created; existing topics are left as they are."""
    admin = kafka_clients.admin(settings, request_timeout_ms=15000)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(settings.topic_prefix + name, settings.kafka_partitions, settings.kafka_replication,
                           topic_configs={"retention.ms": str(30 * 86_400_000)} if name == TOPIC_DLQ else {})
                  for name in TOPICS if settings.topic_prefix + name not in existing]
        created = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics", extra={"topics": created})
        return created
    finally:
        admin.close()
