"""The topic plan as plain code: what a cluster needs to match riskpulse's topics."""

from __future__ import annotations

import pytest

from riskpulse.settings import Settings
from riskpulse.stream.topic_plan import Existing, compare, desired, render


def test_the_plan_names_every_topic_a_worker_uses_with_prefix_and_app_id() -> None:
    specs = desired(Settings(topic_prefix="stg.", app_id="rp", kafka_partitions=6, kafka_replication=3))
    names = [s.name for s in specs]
    assert names == ["stg.news", "stg.news.scored", "stg.trends", "stg.alerts", "stg.news.dlq",
                     "stg.rp-scored-by-story", "stg.rp-windows",
                     "rp-count-changelog", "rp-judge-changelog", "rp-score-changelog"]  # faust names changelogs after the app id alone
    by_name = {s.name: s for s in specs}
    assert by_name["stg.alerts"].configs == {"cleanup.policy": "compact"}
    assert {s.partitions for s in specs} == {6}  # every stage scales with the partitions, internal ones too
    assert by_name["rp-judge-changelog"].configs == {"cleanup.policy": "compact"}
    assert all(s.replication == 3 for s in specs)
    assert [s.internal for s in specs] == [False] * 5 + [True] * 5


def test_existing_topics_are_ok_altered_or_in_conflict_and_operator_overrides_are_kept() -> None:
    specs = desired(Settings())
    existing = {"news": Existing(4, 1, {"retention.ms": "1"}), "news.scored": Existing(2, 1, {}),
                "alerts": Existing(4, 1, {"cleanup.policy": "delete", "retention.ms": "5"}),
                "trends": Existing(4, 3, {})}
    steps = {s.spec.name: s for s in compare(specs, existing)}
    assert steps["news"].action == "ok"  # an override riskpulse does not care about is the operator's
    assert steps["news.scored"].action == "conflict" and "KAFKA_PARTITIONS=2" in steps["news.scored"].detail
    assert steps["alerts"].action == "alter"
    assert steps["alerts"].configs == {"cleanup.policy": "compact", "retention.ms": "5"}  # sent whole: kept
    assert steps["trends"].action == "ok" and "replication 3" in steps["trends"].detail
    assert steps["news.dlq"].action == "create" and steps["riskpulse-windows"].detail.startswith("4 partitions,")
    text = render(list(steps.values()))
    assert "conflict news.scored" in text and "keyed by alert id" in text


class _LaggingAdmin:
    """A broker whose metadata shows new topics a few requests late, the last one leaderless first."""

    def __init__(self, names: list[str], lag: int) -> None:
        self.names, self.calls, self.lag = names, 0, lag

    def list_topics(self) -> list[str]:
        self.calls += 1
        return self.names[: max(0, self.calls - self.lag)]

    def describe_topics(self, names: list[str]) -> list[dict]:
        leader = 0 if self.calls > self.lag + len(self.names) else -1
        return [{"topic": n, "error_code": 0, "partitions": [{"partition": 0, "leader": 0 if n != self.names[-1] else leader}]}
                for n in names]


def test_apply_returns_only_once_the_brokers_serve_what_it_created() -> None:
    from riskpulse.stream.topic_plan import TopicsNotServed, _wait_until_served

    admin = _LaggingAdmin(["a", "b", "c"], lag=3)
    _wait_until_served(admin, ["a", "b", "c"], timeout_s=30)
    assert admin.calls > 3 + 3  # listed late, then the last one waited for its leader
    with pytest.raises(TopicsNotServed, match="do not serve them after 0 s"):
        _wait_until_served(_LaggingAdmin(["a"], lag=10**6), ["a"], timeout_s=0)
