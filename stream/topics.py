"""The topics at start-up: created where missing (the default), or only checked.

Every command that reads or writes Kafka calls :func:`ensure_topics` first, so wrong credentials
or a wrong bootstrap stop it there with a clear message. The contract itself (names, partitions,
replication, configs, what each topic is for) is stream/topic_plan.py; `riskpulse topics plan`
and `riskpulse topics apply` show and apply it by hand.
"""

from __future__ import annotations

import logging

from riskpulse.settings import Settings

from .topic_plan import apply, plan

log = logging.getLogger(__name__)


class TopicsNotReady(RuntimeError):
    """The cluster's topics do not match what riskpulse needs, and it may not (or must not) fix them."""


def ensure_topics(settings: Settings) -> list[str]:
    """Creates the missing topics (unless ``KAFKA_CREATE_TOPICS`` is off) and returns their names.

    Refuses to go on when a topic has another partition count than configured (the aggregator's
    per-partition event time and per-key order depend on it), or when topics are missing and
    creating them is off. Configs that differ are only reported: changing them is the operator's
    call (`riskpulse topics apply`)."""
    steps = plan(settings)
    conflicts = [s for s in steps if s.action == "conflict"]
    if conflicts:
        raise TopicsNotReady("; ".join(f"topic {s.spec.name} {s.detail}" for s in conflicts))
    missing = [s for s in steps if s.action == "create"]
    if missing and not settings.kafka_create_topics:
        raise TopicsNotReady(f"topics missing: {', '.join(s.spec.name for s in missing)}; KAFKA_CREATE_TOPICS is "
                             "off, so riskpulse creates none: run `riskpulse topics apply` with credentials allowed "
                             "to create topics (or turn KAFKA_CREATE_TOPICS on)")
    for step in steps:
        if step.action == "alter":
            log.warning("topic configs differ from riskpulse's plan; see `riskpulse topics plan`",
                        extra={"topic": step.spec.name, "differs": step.detail})
    created = [s.spec.name for s in apply(settings, missing)]
    if created:
        log.info("created topics", extra={"topics": created})
    return created
