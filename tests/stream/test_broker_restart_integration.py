"""A broker restart under load: the worker reconnects by itself and nothing is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from riskpulse.stream.local_broker import LocalBroker
from riskpulse.records import TOPIC_NEWS, TOPIC_SCORED
from tests.helpers import Worker, consume, produce, worker_env
from tests.stream.test_pipeline_integration import news_items

pytestmark = pytest.mark.integration


def test_worker_survives_a_broker_restart_under_load(tmp_path: Path, tiny_model: Path) -> None:
    broker = LocalBroker(state_dir=tmp_path / "kafka", cache_dir=Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    worker = None
    try:
        env = worker_env(tmp_path / "w", broker.bootstrap, tiny_model, "restart")
        worker = Worker(env, tmp_path / "worker.log")
        worker.start()  # assigned first: the finally stops it even if it never gets ready
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
        assert worker.restarts() == 0, "the worker child must have ridden out the outage, not been restarted"
    finally:
        if worker:
            worker.stop()
        broker.stop()


def test_sigterm_stops_a_worker_whose_broker_is_gone_within_the_bound(tmp_path: Path, tiny_model: Path) -> None:
    import os
    import signal
    import subprocess

    from riskpulse.stream.runtime.supervisor import STOP_TIMEOUT_S

    broker = LocalBroker(state_dir=tmp_path / "kafka", cache_dir=Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    worker = Worker(worker_env(tmp_path / "w", broker.bootstrap, tiny_model, "gone"), tmp_path / "worker.log")
    try:
        worker.start()
        produce(broker.bootstrap, f"gone.{TOPIC_NEWS}", news_items(50), key=lambda v: v["id"].encode())
        consume(broker.bootstrap, f"gone.{TOPIC_SCORED}", lambda r: len(r) >= 50, timeout_s=120)
    finally:
        broker.stop()
    threading.Event().wait(10)  # the worker is now retrying a broker that is not there
    assert worker.proc is not None
    os.kill(worker.proc.pid, signal.SIGTERM)  # what systemd or Kubernetes sends the supervisor
    try:
        worker.proc.wait(STOP_TIMEOUT_S + 20)
    except subprocess.TimeoutExpired:
        worker.kill()
        raise AssertionError(f"worker ignored SIGTERM for {STOP_TIMEOUT_S + 20:.0f} s:\n{worker.log_tail()}")
    size = worker.log_path.stat().st_size
    assert size < 200_000, f"{size} bytes of log in under a minute: repeated errors are not rate-limited"
