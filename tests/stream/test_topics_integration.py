"""Topics as a contract, against the real broker: plan, apply, drift, conflicts, and workers that
may not create topics."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from riskpulse.settings import Settings
from riskpulse.records import TOPIC_ALERTS, TOPIC_NEWS, TOPIC_TRENDS
from riskpulse.stream.topic_plan import apply, describe, plan
from riskpulse.stream.topics import TopicsNotReady, ensure_topics

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def settings_for(kafka: Any, **extra: Any) -> Settings:
    tag = uuid.uuid4().hex[:6]
    return Settings(kafka_bootstrap=kafka.bootstrap, topic_prefix=f"t{tag}.", app_id=f"rp-{tag}", **extra)


def actions(steps: list[Any]) -> dict[str, str]:
    return {s.spec.name: s.action for s in steps}


def test_plan_then_apply_creates_every_topic_with_its_configs_and_a_second_plan_is_clean(kafka: Any) -> None:
    s = settings_for(kafka)
    first = plan(s)
    assert set(actions(first).values()) == {"create"} and len(first) == 10
    assert {f"{s.app_id}-count-changelog", f"{s.app_id}-judge-changelog", f"{s.app_id}-score-changelog", f"{s.topic_prefix}{s.app_id}-scored-by-story",
            f"{s.topic_prefix}{s.app_id}-windows"} <= set(actions(first))
    assert len(apply(s, first)) == 10
    assert set(actions(plan(s)).values()) == {"ok"}
    have = describe(s, [s.topic_prefix + TOPIC_ALERTS, s.topic_prefix + TOPIC_NEWS])
    assert have[s.topic_prefix + TOPIC_ALERTS].overrides["cleanup.policy"] == "compact"
    assert have[s.topic_prefix + TOPIC_NEWS].partitions == 4
    out = subprocess.run([sys.executable, "-m", "riskpulse.cli", "topics", "plan"], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={**os.environ, **env_of(s)})
    assert out.returncode == 0, out.stderr
    assert "keyed by alert id" in out.stdout and out.stdout.count("ok ") == 10


def env_of(s: Settings) -> dict[str, str]:
    return {"RISKPULSE_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "RISKPULSE_TOPIC_PREFIX": s.topic_prefix,
            "RISKPULSE_APP_ID": s.app_id, "RISKPULSE_KAFKA_CREATE_TOPICS": str(s.kafka_create_topics).lower()}


def test_a_config_that_drifted_is_set_back_keeping_the_operators_other_overrides(kafka: Any) -> None:
    s = settings_for(kafka)
    apply(s, plan(s))
    alerts, trends = s.topic_prefix + TOPIC_ALERTS, s.topic_prefix + TOPIC_TRENDS
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:  # someone turned compaction off on alerts and set a retention of their own
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, alerts,
                                            configs={"cleanup.policy": "delete", "retention.ms": "123456789"})])
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, trends, configs={"retention.ms": "987654321"})])
    finally:
        admin.close()
    steps = plan(s)
    assert actions(steps)[alerts] == "alter" and actions(steps)[trends] == "ok"  # extra overrides are the operator's
    assert "cleanup.policy=delete -> compact" in next(x.detail for x in steps if x.spec.name == alerts)
    assert ensure_topics(s) == []  # a worker starting reports the drift, changes nothing
    assert describe(s, [alerts])[alerts].overrides["cleanup.policy"] == "delete"
    apply(s, steps)
    assert describe(s, [alerts])[alerts].overrides == {"cleanup.policy": "compact", "retention.ms": "123456789"}
    assert set(actions(plan(s)).values()) == {"ok"}


def test_another_partition_count_is_a_conflict_that_stops_start_up_and_is_never_changed(kafka: Any) -> None:
    s = settings_for(kafka)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(s.topic_prefix + TOPIC_NEWS, 2, 1)])
    finally:
        admin.close()
    steps = plan(s)
    assert actions(steps)[s.topic_prefix + TOPIC_NEWS] == "conflict"
    with pytest.raises(TopicsNotReady, match="KAFKA_PARTITIONS=2"):
        ensure_topics(s)
    apply(s, steps)  # creates the others, leaves news alone
    assert describe(s, [s.topic_prefix + TOPIC_NEWS])[s.topic_prefix + TOPIC_NEWS].partitions == 2
    fixed = s.model_copy(update={"kafka_partitions": 2})
    assert actions(plan(fixed))[s.topic_prefix + TOPIC_NEWS] == "ok"


def test_with_creation_off_a_worker_creates_nothing_and_says_to_apply(kafka: Any) -> None:
    s = settings_for(kafka, kafka_create_topics=False)
    with pytest.raises(TopicsNotReady, match="riskpulse topics apply"):
        ensure_topics(s)
    out = subprocess.run([sys.executable, "-m", "riskpulse.cli", "worker"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, **env_of(s)})
    assert out.returncode == 2 and "riskpulse topics apply" in out.stderr, out.stderr
    assert describe(s, [x.spec.name for x in plan(s)]) == {}  # nothing was created
    apply(s, plan(s))  # an admin applies the plan once
    assert ensure_topics(s) == []
