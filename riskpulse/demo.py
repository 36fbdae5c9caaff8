"""``riskpulse demo``: the whole system on embedded defaults, on one machine.

Starts the local Kafka broker, starts a worker with the shipped model (or RISKPULSE_MODEL_DIR's;
an empty one gets the quick recipe trained into it, where the labelled data is) and the
dashboard, replays a sample hour of news (with a negative burst on one ticker) at 60x, and
prints alerts as they fire. Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .settings import get_settings

log = logging.getLogger(__name__)


def check_model_or_data(model_dir: Path, data_dir: Path) -> None:
    """Before anything starts: the demo needs a trained model, or the labelled data to train one."""
    from riskpulse.models.artifact import META_FILE

    if (model_dir / META_FILE).exists() or (data_dir / "financial-phrasebank" / "all.csv").exists():
        return
    raise FileNotFoundError(
        f"no model in {model_dir} and no labelled data in {data_dir} to train one: point RISKPULSE_MODEL_DIR at a "
        "trained model folder, or RISKPULSE_DATA_DIR at the data sets (docs/model.md lists them); nothing was started")


def ensure_model(model_dir: Path, data_dir: Path) -> str:
    """The backend to use; trains and exports the quick recipe into an empty RISKPULSE_MODEL_DIR."""
    from riskpulse.models.artifact import META_FILE, onnx_path

    if not (model_dir / META_FILE).exists():
        from riskpulse.models.data import load_splits
        from riskpulse.models.errors import ParityError
        from riskpulse.models.export import export
        from riskpulse.models.train import recipe_by_name, train

        print(f"no model in {model_dir}: training the quick recipe (a few minutes on 2 cores)...", flush=True)
        train(data_dir, model_dir, recipe_by_name("quick"))
        texts = load_splits(data_dir).held_out_texts()[:2000]
        try:
            export(model_dir, texts)
        except ParityError as exc:
            print(f"int8 export refused by its parity gate ({exc}); serving fp32 ONNX", flush=True)
    from riskpulse.models.artifact import ModelMeta

    print(f"model {ModelMeta.read(model_dir).model_version} from {model_dir}", flush=True)
    return "onnx" if onnx_path(model_dir, int8=True).exists() else "onnx-fp32"


def print_alerts(bootstrap: str, topics: list[str], stop: threading.Event) -> None:
    """Alerts in full, trends as a one-line tally per closed window."""
    from riskpulse.stream.reader import reader

    consumer = reader(*topics, bootstrap=bootstrap, auto_offset_reset="latest", consumer_timeout_ms=500,
                      enable_auto_commit=False)  # no group: nothing to commit (kafka-python warns otherwise)
    windows: dict[str, int] = {}
    while not stop.is_set():
        for msg in consumer:
            rec = json.loads(msg.value)
            if msg.topic.endswith("alerts"):
                print(f"\nALERT {rec['status']}: {rec['summary']}", flush=True)
                for h in rec["top_headlines"][:5]:  # one headline per story, with how far it spread
                    copies = h.get("copies") or 1
                    spread = f"  [{copies} copies, {h.get('sources') or 1} sources]" if copies > 1 else ""
                    print(f"    {h['sentiment_score']:+.2f}  {h['headline']}{spread}", flush=True)
            else:
                start = rec["window_start"][11:16]
                if start not in windows:
                    windows[start] = 1
                    if start.endswith("9"):  # a line per ten minutes of event time
                        print(f"windows closed up to {start} (event time)", flush=True)
            if stop.is_set():
                break
    consumer.close()


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if json.loads(r.read()).get("ready"):
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("the worker did not become ready")


def _tail(path: Path, lines: int = 25) -> str:
    """The end of the worker's and dashboard's log, for a failure the console must explain."""
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


def _stop_on_terminate(signum: int, frame: object) -> None:
    """SIGTERM (``kill``, a service manager) or SIGHUP (the terminal closed) stop the demo as
    Ctrl-C does: everything it started, the broker included. By default they end Python at once,
    with no ``finally``, and left the broker running."""
    raise KeyboardInterrupt


def run_demo(speed: float = 60.0) -> int:
    from riskpulse.stream.local_broker import LocalBroker
    from riskpulse.stream.replay import replay
    from riskpulse.stream.sample_news import write
    from riskpulse.stream.topics import ensure_topics

    s = get_settings()
    check_model_or_data(s.model_dir, s.data_dir)
    port = int(s.kafka_bootstrap.rsplit(":", 1)[1])
    broker = LocalBroker(s.home / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka", port=port)
    started_broker = broker.pid() is None
    started: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_on_terminate)
    try:  # from here on, whatever fails, everything this demo started is stopped (the broker too)
        if started_broker:
            print(f"starting Kafka on {s.kafka_bootstrap} ...", flush=True)
            broker.start()
        backend = ensure_model(s.model_dir, s.data_dir)
        ensure_topics(s)
        env_backend = {"RISKPULSE_BACKEND": backend} if s.backend == "auto" else {}
        import os

        # the worker's and dashboard's own output (faust's banner, client chatter, every log line)
        # goes to one file: the console tells the demo's story, and says where the rest is
        log_path = s.home / "demo.log"
        log_file = open(log_path, "ab", buffering=0)  # noqa: SIM115 - held until the demo ends
        print(f"worker and dashboard log: {log_path}", flush=True)
        worker = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "worker"], env={**os.environ, **env_backend},
                                  stdout=log_file, stderr=subprocess.STDOUT)
        started.append(worker)
        dashboard = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "dashboard"], stdout=log_file,
                                     stderr=subprocess.STDOUT)
        started.insert(0, dashboard)
        printer = threading.Thread(target=print_alerts, daemon=True,
                                   args=(s.kafka_bootstrap, [s.topic_prefix + "alerts", s.topic_prefix + "trends"],
                                         stop))
        try:
            wait_ready(s.worker_web_port, worker)
        except RuntimeError:
            print(f"the worker did not become ready; the end of {log_path}:\n{_tail(log_path)}", flush=True)
            raise
        printer.start()
        sample = write(s.home / "sample-news.jsonl")
        print(f"\ndashboard: http://127.0.0.1:{s.dashboard_port}/  (user {s.dashboard_user}, password "
              f"{'from RISKPULSE_DASHBOARD_PASSWORD_HASH' if s.dashboard_password_hash else s.dashboard_password.get_secret_value()})\n"
              f"worker metrics: http://127.0.0.1:{s.worker_web_port}/metrics\n"
              f"replaying {sample} (one hour of news, a negative burst at minute 45) at {speed:g}x ...", flush=True)
        replay(sample, s.kafka_bootstrap, speed, topic=s.topic_prefix + "news", progress=False)
        print("\nreplay done; the last windows close within seconds. Ctrl-C stops everything.", flush=True)
        while worker.poll() is None and dashboard.poll() is None:
            time.sleep(1)
        print(f"the {'worker' if worker.poll() is not None else 'dashboard'} stopped; the end of {log_path}:\n"
              f"{_tail(log_path)}", flush=True)
        return worker.returncode or dashboard.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if started_broker and broker.pid() is not None:
            broker.stop()
        print("stopped", flush=True)
