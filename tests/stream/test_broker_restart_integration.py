"""A broker restart under load: the worker reconnects by itself and nothing is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from stream.local_broker import LocalBroker
from stream.records import TOPIC_NEWS, TOPIC_SCORED
from tests.helpers import Worker, consume, produce, worker_env
from tests.stream.test_pipeline_integration import news_items

pytestmark = pytest.mark.integration


def test_worker_survives_a_broker_restart_under_load(tmp_path: Path, tiny_model: Path) -> None:
    broker = LocalBroker(state_dir=tmp_path / "kafka", cache_dir=Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    worker = None
    try:
        env = worker_env(tmp_path / "w", broker.bootstrap, tiny_model, "restart")
        worker = Worker(env, tmp_path / "worker.log").start()
        items = news_items(3000, seed=5, span_s=3000)
        first, second = items[:1500], items[1500:]
        produce(broker.bootstrap, f"restart.{TOPIC_NEWS}", first, key=lambda v: v["id"].encode())
        consume(broker.bootstrap, f"restart.{TOPIC_SCORED}", lambda r: len(r) >= 200, timeout_s=120)
        broker.stop()  # mid-stream: the worker is still working through the first half
        threading.Event().wait(5)
        broker.start()  # same ports, same data
        produce(broker.bootstrap, f"restart.{TOPIC_NEWS}", second, key=lambda v: v["id"].encode())
        scored = consume(broker.bootstrap, f"restart.{TOPIC_SCORED}",
                         lambda r: {x["id"] for x in r} >= {i["id"] for i in items}, timeout_s=300)
        assert {x["id"] for x in scored} >= {i["id"] for i in items}
        assert worker.proc is not None and worker.proc.poll() is None, "the worker must not have died"
    finally:
        if worker:
            worker.stop()
        broker.stop()
