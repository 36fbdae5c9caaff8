"""The worker's Faust app is built from settings by a function (no broker needed to check its wiring)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from riskpulse.settings import Settings
from riskpulse.stream.agents import Pipeline, build_app
from riskpulse.stream.runtime.app import create_app


def test_the_app_is_built_from_settings_and_two_apps_share_nothing(tmp_path: Path) -> None:
    first = build_app(Settings(home=tmp_path / "a"))
    second = build_app(Settings(home=tmp_path / "b", topic_prefix="desk2.", app_id="desk2"))
    reads = {name.rsplit(".", 1)[-1]: agent.channel.get_topic_name() for name, agent in first.agents.items()}
    assert reads == {"score": "news", "aggregate": "riskpulse-scored-by-story", "judge": "riskpulse-windows",
                     "sink_scored": "news.scored", "sink_trends": "trends", "sink_alerts": "alerts"}
    assert {agent.channel.get_topic_name() for agent in second.agents.values()} == {
        "desk2.news", "desk2.desk2-scored-by-story", "desk2.desk2-windows", "desk2.news.scored", "desk2.trends",
        "desk2.alerts"}
    assert list(first.tables.keys()) == list(second.tables.keys()) == ["count", "judge", "score"]
    assert first.tables["count"] is not second.tables["count"]
    # every stage's table is partitioned like its input, so each scales with the workers
    assert {t.partitions for t in first.tables.values()} == {Settings().kafka_partitions}
    assert first.conf.id == "riskpulse" and second.conf.id == "desk2"


def test_the_web_port_serves_health_readiness_and_metrics_only(tmp_path: Path) -> None:
    app = build_app(Settings(home=tmp_path))
    assert sorted(app.web.views) == ["/healthz", "/metrics", "/readyz"]

    async def get(path: str) -> tuple[int, bytes]:
        response = await app.web.views[path].get(None)
        return response.status, response.body

    assert asyncio.run(get("/healthz")) == (200, b'{"status":"ok"}')
    status, body = asyncio.run(get("/readyz"))  # no model loaded, no partitions: not ready
    assert status == 503 and json.loads(body) == {"ready": False, "model_loaded": False, "assigned": False, "lag": 0,
                                                  "stalling": []}
    status, body = asyncio.run(get("/metrics"))
    assert status == 200 and b"riskpulse_items_in_total" in body


def test_readiness_reports_the_lag_and_a_partition_stalling_before_the_watchdog_acts(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    pipeline = Pipeline(create_app(settings), settings)
    pipeline.runtime.watches.ends = {("news", 0): 100, ("news", 1): 50}  # as the last stall check found them
    pipeline.runtime.watchdog.advance(("news", 0), 89, now=1000.0)  # 10 records behind, progress just now
    pipeline.runtime.watchdog.advance(("news", 1), 49, now=1000.0)  # caught up
    assert pipeline.health(1001.0) | {"ready": None} == {"ready": None, "model_loaded": False, "assigned": False,
                                                         "lag": 10, "stalling": []}
    later = 1000.0 + settings.stall_s / 2 + 1  # no progress for half of STALL_S with records waiting
    assert pipeline.health(later)["stalling"] == ["news:0"] and not pipeline.health(later)["ready"]
