"""The topics riskpulse uses, as a contract: what each must look like, compared with a cluster.

`riskpulse topics plan` prints the comparison; `riskpulse topics apply` creates what is missing
and sets topic configs that differ (keeping any other override an operator set). Partition
counts of existing topics are never changed: records are keyed, and more partitions would move
keys to other partitions and break per-key order (and the aggregator's per-partition event
time); a mismatch is reported with what to do instead. For clusters whose ACLs forbid creating
topics, run `apply` once with an admin's credentials and start workers with
``KAFKA_CREATE_TOPICS=false``: they then check the topics at start and create none.

The comparison is plain code (:func:`compare`); only :func:`describe` and :func:`apply` talk to
the cluster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from riskpulse.records import TOPIC_ALERTS, TOPIC_DLQ, TOPIC_NEWS, TOPIC_SCORED, TOPIC_TRENDS
from riskpulse.settings import Settings

from . import kafka_clients

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
ROLES = {
    TOPIC_NEWS: "input: news items, keyed by item id (producers: feeds, ingest, replay)",
    TOPIC_SCORED: "output: each item with its scores, keyed by item id",
    TOPIC_TRENDS: "output: one record per closed window and key (upserts), keyed key_type|key|window",
    TOPIC_ALERTS: "output: alerts, keyed by alert id; compacted, so the latest state of each alert stays",
    TOPIC_DLQ: "output: records that failed a stage, with the stage and reason; kept 30 days",
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    configs: dict[str, str] = field(default_factory=dict)
    role: str = ""
    internal: bool = False  # riskpulse's own: nothing outside the worker reads or writes it


@dataclass(frozen=True)
class Existing:
    partitions: int
    replication: int
    overrides: dict[str, str]  # topic-level configs set on the topic (not broker defaults)


Action = Literal["ok", "create", "alter", "conflict"]


@dataclass(frozen=True)
class Step:
    spec: TopicSpec
    action: Action
    detail: str = ""
    configs: dict[str, str] = field(default_factory=dict)  # for "alter": every override the topic must end with


def internal_topic_names(settings: Settings) -> tuple[str, str]:
    """The two topics between the worker's stages: nothing outside the worker reads or writes them."""
    base = f"{settings.topic_prefix}{settings.app_id}"
    return f"{base}-scored-by-story", f"{base}-windows"


# the stages' tables; changelog topics: <app id>-<table>-changelog
TABLES = ("count", "judge", "score")
STAGE_OF = {"count": "counting", "judge": "judging", "score": "scoring (revisions of each id)"}


def desired(settings: Settings) -> list[TopicSpec]:
    """Every topic a worker uses, with the partitions, replication and configs it needs."""
    p, r, prefix = settings.kafka_partitions, settings.kafka_replication, settings.topic_prefix
    configs = {TOPIC_ALERTS: {"cleanup.policy": "compact"}, TOPIC_DLQ: {"retention.ms": str(30 * DAY_MS)}}
    specs = [TopicSpec(prefix + name, p, r, configs.get(name, {}), ROLES[name])
             for name in (TOPIC_NEWS, TOPIC_SCORED, TOPIC_TRENDS, TOPIC_ALERTS, TOPIC_DLQ)]
    by_story, windows = internal_topic_names(settings)
    specs.append(TopicSpec(by_story, p, r, {}, "internal: scored items from the scorers to the counting stage, "
                                               "partitioned by story (dedupe key)", internal=True))
    specs.append(TopicSpec(windows, p, r, {}, "internal: closed windows' counters from the counting stage to the "
                                              "judging stage (trends, alerts), partitioned by key", internal=True))
    for table in TABLES:
        specs.append(TopicSpec(f"{settings.app_id}-{table}-changelog", p, r, {"cleanup.policy": "compact"},
                               f"internal: the {STAGE_OF[table]} stage's state (faust table changelog), restored at start",
                               internal=True))
    return specs


def compare(specs: list[TopicSpec], existing: dict[str, Existing]) -> list[Step]:
    """What it takes to make the cluster match ``specs``."""
    steps = []
    for spec in specs:
        have = existing.get(spec.name)
        if have is None:
            steps.append(Step(spec, "create", f"{spec.partitions} partition{'s' if spec.partitions != 1 else ''}, "
                                              f"replication {spec.replication}"))
            continue
        if have.partitions != spec.partitions:
            steps.append(Step(spec, "conflict",
                              f"has {have.partitions} partitions, riskpulse is set for {spec.partitions}: set "
                              f"KAFKA_PARTITIONS={have.partitions}, or use new topics (TOPIC_PREFIX) and replay; "
                              "partitions are never changed in place (keys would move and per-key order break)"))
            continue
        differs = {k: v for k, v in spec.configs.items() if have.overrides.get(k) != v}
        notes = []
        if have.replication != spec.replication:
            notes.append(f"replication {have.replication}, set for {spec.replication} (reassign partitions "
                         "with kafka-reassign-partitions to change it)")
        if differs:
            shown = ", ".join(f"{k}={have.overrides.get(k, '(broker default)')} -> {v}" for k, v in sorted(differs.items()))
            steps.append(Step(spec, "alter", "; ".join([shown] + notes), {**have.overrides, **spec.configs}))
        else:
            steps.append(Step(spec, "ok", "; ".join(notes)))
    return steps


def render(steps: list[Step]) -> str:
    """The plan as a user reads it: one line per topic, then what each topic is for."""
    width = max(len(s.spec.name) for s in steps)
    lines = [f"{s.action:<8} {s.spec.name:<{width}}  {s.detail}".rstrip() for s in steps]
    lines.append("")
    lines += [f"{s.spec.name:<{width}}  {s.spec.role}" for s in steps if s.spec.role]
    return "\n".join(lines)


def _entries(resource: Any) -> list[Any]:
    # DescribeConfigs v1+: (error_code, error_message, resource_type, resource_name, config_entries)
    return list(resource[4])


def describe(settings: Settings, names: list[str]) -> dict[str, Existing]:
    """The topics of ``names`` that exist, with their partitions, replication and overrides."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = kafka_clients.admin(settings, request_timeout_ms=15000)
    try:
        listed = set(admin.list_topics())
        present = [n for n in names if n in listed]
        if not present:
            return {}
        found: dict[str, Existing] = {}
        overrides: dict[str, dict[str, str]] = {n: {} for n in present}
        for response in admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in present]):
            for resource in response.resources:
                for entry in _entries(resource):
                    name, value, source = entry[0], entry[1], entry[3]
                    if source == 1 and value is not None:  # DYNAMIC_TOPIC_CONFIG: set on this topic
                        overrides[resource[3]][name] = value
        for topic in admin.describe_topics(present):
            partitions = topic["partitions"]
            replication = max((len(p["replicas"]) for p in partitions), default=0)
            found[topic["topic"]] = Existing(len(partitions), replication, overrides[topic["topic"]])
        return found
    finally:
        admin.close()


def plan(settings: Settings) -> list[Step]:
    specs = desired(settings)
    return compare(specs, describe(settings, [s.name for s in specs]))


def apply(settings: Settings, steps: list[Step]) -> list[Step]:
    """Create the missing topics and set the configs that differ; returns the steps it carried out."""
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = kafka_clients.admin(settings, request_timeout_ms=15000)
    done = []
    try:
        for step in steps:
            spec = step.spec
            if step.action == "create":
                try:
                    admin.create_topics([NewTopic(spec.name, spec.partitions, spec.replication,
                                                  topic_configs=dict(spec.configs))])
                except TopicAlreadyExistsError:
                    continue  # created meanwhile (a worker starting): the next plan shows its state
                done.append(step)
            elif step.action == "alter":
                # AlterConfigs replaces every override of the topic: send the ones it keeps too
                admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=step.configs)])
                done.append(step)
        altered = [s.spec.name for s in done if s.action == "alter"]
        if altered:
            log.info("topic configs set", extra={"topics": altered})
        _wait_until_served(admin, [s.spec.name for s in done if s.action == "create"])
        return done
    finally:
        admin.close()


VISIBLE_WITHIN_S = 30.0


def _wait_until_served(admin: Any, names: list[str], timeout_s: float = VISIBLE_WITHIN_S) -> None:
    """Until the broker's metadata lists ``names`` with a leader for every partition.

    CreateTopics returns once the controller has the topics; the brokers learn of them a moment
    later. A plan made in that moment (the worker starting right after `riskpulse topics apply`,
    or CI's creation-off test) saw them missing and refused to start. So apply returns only once
    they are served."""
    deadline = time.monotonic() + timeout_s
    waiting = set(names)
    while waiting:
        listed = set(admin.list_topics())
        ready = {t["topic"] for t in admin.describe_topics(sorted(waiting & listed))
                 if not t.get("error_code") and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])}
        waiting -= ready
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TopicsNotServed(f"created {', '.join(sorted(waiting))}, but the brokers do not serve them after "
                                  f"{timeout_s:.0f} s: check the cluster's controller and brokers, then run "
                                  "`riskpulse topics plan`")
        time.sleep(0.2)


class TopicsNotServed(RuntimeError):
    """Topics were created but the brokers' metadata does not show them in time."""
