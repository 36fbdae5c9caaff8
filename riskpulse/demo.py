"""``riskpulse demo``: the whole system on embedded defaults, on one machine.

Starts the local Kafka broker, trains the quick model if none exists, starts a worker, replays
a sample hour of news (with a negative burst) at 60x, and prints the trends as windows close.
Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer

from .settings import get_settings

log = logging.getLogger(__name__)


def ensure_model(model_dir: Path, data_dir: Path) -> str:
    """The backend to use; trains and exports the quick recipe on first run."""
    from models.artifact import META_FILE, onnx_path

    if not (model_dir / META_FILE).exists():
        from models.data import load_splits
        from models.errors import ParityError
        from models.export import export
        from models.train import recipe_by_name, train

        print(f"no model in {model_dir}: training the quick recipe (a few minutes on 2 cores)...", flush=True)
        train(data_dir, model_dir, recipe_by_name("quick"))
        texts = [t for f in load_splits(data_dir).evals.values() for t in f.text.tolist()][:2000]
        try:
            export(model_dir, texts)
        except ParityError as exc:
            print(f"int8 export refused by its parity gate ({exc}); serving fp32 ONNX", flush=True)
    return "onnx" if onnx_path(model_dir, int8=True).exists() else "onnx-fp32"


def print_trends(bootstrap: str, topic: str, stop: threading.Event) -> None:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=500)
    while not stop.is_set():
        for msg in consumer:
            t = json.loads(msg.value)
            flag = "  <-- negative" if t["negative_share"] >= 0.5 and t["count"] >= 5 else ""
            print(f"trend {t['window_start'][11:16]} {t['key_type']:<6} {t['key']:<28} n={t['count']:<3} "
                  f"neg={t['negative_share']:.2f} mean={t['mean_score']:+.2f}{flag}", flush=True)
            if stop.is_set():
                break
    consumer.close()


def run_demo(speed: float = 60.0) -> int:
    from stream.local_broker import LocalBroker
    from stream.replay import replay
    from stream.sample_news import write
    from stream.topics import ensure_topics

    s = get_settings()
    port = int(s.kafka_bootstrap.rsplit(":", 1)[1])
    broker = LocalBroker(s.home / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka", port=port)
    started_broker = broker.pid() is None
    if started_broker:
        print(f"starting Kafka on {s.kafka_bootstrap} ...", flush=True)
        broker.start()
    backend = ensure_model(s.model_dir, s.data_dir)
    ensure_topics(s)
    env_backend = {"RISKPULSE_BACKEND": backend} if s.backend == "auto" else {}
    import os

    worker = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "worker"], env={**os.environ, **env_backend})
    stop = threading.Event()
    printer = threading.Thread(target=print_trends, args=(s.kafka_bootstrap, s.topic_prefix + "trends", stop), daemon=True)
    printer.start()
    try:
        sample = write(s.home / "sample-news.jsonl")
        print(f"worker metrics: http://127.0.0.1:{s.worker_web_port}/metrics  replaying {sample} at {speed:g}x ...", flush=True)
        time.sleep(5)
        replay(sample, s.kafka_bootstrap, speed, topic=s.topic_prefix + "news")
        print("replay done; trends keep arriving as windows close (Ctrl-C to stop)", flush=True)
        while worker.poll() is None:
            time.sleep(1)
        return worker.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if started_broker:
            broker.stop()
        print("stopped", flush=True)
