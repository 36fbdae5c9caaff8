"""Real processes and real clients for the integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from kafka import KafkaProducer

from riskpulse.stream.local_broker import free_port
from riskpulse.stream.reader import reader

REPO = Path(__file__).resolve().parents[1]


def story_tag(i: int) -> str:
    """Two made-up words unique to ``i``: test headlines built from one template stay distinct
    stories (a number alone would not: a changed figure is a copy of the same story)."""
    def word(n: int) -> str:
        out = ""
        while True:
            n, r = divmod(n, 26)
            out += "abcdefghijklmnopqrstuvwxyz"[r]
            if n == 0:
                return "zq" + out
    return f"{word(i)} {word(i + 7919)}"


def produce(bootstrap: str, topic: str, values: list[bytes | dict[str, Any]], key: Callable[[Any], bytes] | None = None,
            partition: Callable[[Any], int] | None = None) -> None:
    """Send ``values`` and wait for the broker to take every one (a refused record fails the test)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        sent = []
        for v in values:
            raw = v if isinstance(v, bytes) else json.dumps(v).encode()
            sent.append(producer.send(topic, value=raw, key=key(v) if key else None,
                                      partition=partition(v) if partition else None))
        producer.flush()
        for future in sent:
            future.get(timeout=30)
    finally:
        producer.close()


def as_scorers_send(items: list[dict[str, Any]], partitions: int) -> list[tuple[int, dict[str, Any]]]:
    """Scored items (with ``_src``) as the worker's scorers put them on its internal topic: each
    on the counting partition of its story, then every partition told how far each news partition
    came (stream/stages/score.py, ``_report_progress``). Returns (partition, record) pairs in send order."""
    from riskpulse.stream.stages.partitioning import story_partition

    out: list[tuple[int, dict[str, Any]]] = []
    reached: dict[tuple[str, int], tuple[int, float]] = {}
    for item in items:
        out.append((story_partition(item["headline"], partitions), item))
        topic, news_partition, offset = item["_src"][:3]
        ts = datetime.fromisoformat(item["published_at"].replace("Z", "+00:00")).timestamp()
        last = reached.get((topic, news_partition), (offset, ts))
        reached[(topic, news_partition)] = (max(offset, last[0]), max(ts, last[1]))
    for (topic, news_partition), (offset, ts) in sorted(reached.items()):
        out += [(p, {"_progress": [topic, news_partition, offset, 0, ts]}) for p in range(partitions)]
    return out


def consume(bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 120.0,
            skip_garbage: bool = False) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning, at least up to its end at the time of the call, then
    until ``until(records)`` holds (checked after every fetched batch, so a topic that keeps
    growing does not hold the reader); fails with what it saw on timeout.

    ``skip_garbage``: leave out values that are not JSON objects (a test that wrote poison there itself).
    """
    from kafka import TopicPartition

    consumer = reader(bootstrap=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        while time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=500).values():
                for msg in msgs:
                    try:
                        rec = json.loads(msg.value)
                    except ValueError:
                        if skip_garbage:
                            continue
                        raise
                    if skip_garbage and not isinstance(rec, dict):
                        continue
                    rec["_key"] = msg.key.decode() if msg.key else None
                    rec["_partition"], rec["_offset"] = msg.partition, msg.offset
                    rec["_headers"] = {k: v.decode() for k, v in msg.headers or []}
                    rec["_timestamp"] = msg.timestamp  # ms
                    records.append(rec)
            caught_up = all(consumer.position(tp) >= end for tp, end in ends.items())
            if caught_up and until(records):
                return records
    finally:
        consumer.close()
    raise AssertionError(f"timed out after {timeout_s:.0f}s on {topic}: {len(records)} records, last {records[-3:]}")


class Worker:
    """A ``riskpulse worker`` subprocess with its own settings."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.port = int(env["RISKPULSE_WORKER_WEB_PORT"])
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> "Worker":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "worker", "--loglevel", "warn"],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                     start_new_session=True)
        return self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 120.0) -> "Worker":
        """Until /readyz says ready: model loaded, partitions assigned, not rebalancing."""
        assert self.proc is not None, "start the worker first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                    if json.loads(r.read()).get("ready"):
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def counter(self, name: str) -> float:
        """Sum of a Prometheus counter over its labels (0 if never incremented)."""
        return sum(float(line.split()[-1]) for line in self.metrics().splitlines()
                   if line.startswith((name + "{", name + " ")))

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def child_pid(self) -> int | None:
        """The supervised worker child (what production's supervisor restarts), if one is running."""
        if self.proc is None:
            return None
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid and fields[0] not in ("Z", "X"):
                return int(stat.parent.name)
        return None

    def kill_child(self) -> int:
        """kill -9 the worker child only; the supervisor restarts it on the same data directory."""
        pid = self.child_pid()
        assert pid is not None, "no worker child to kill"
        os.kill(pid, signal.SIGKILL)
        return pid

    def restarts(self) -> int:
        """Times the supervisor restarted its worker child (a record must never cause one)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text.count("worker exited; restarting")

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:]) if self.log_path.exists() else ""


def worker_env(tmp: Path, bootstrap: str, model_dir: Path, name: str, **extra: Any) -> dict[str, str]:
    env = {
        "RISKPULSE_HOME": str(tmp / "home"),
        "RISKPULSE_KAFKA_BOOTSTRAP": bootstrap,
        "RISKPULSE_MODEL_DIR": str(model_dir),
        "RISKPULSE_TOPIC_PREFIX": f"{name}.",
        "RISKPULSE_APP_ID": f"rp-{name}",
        "RISKPULSE_WORKER_WEB_PORT": str(free_port()),
        "RISKPULSE_STORE_URL": f"sqlite:///{tmp / 'store.db'}",
        "RISKPULSE_BACKEND": "onnx-fp32",
    }  # window, lateness, idle and stall times: the production defaults, so no test hides a bug
    env.update({f"RISKPULSE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


class WebhookReceiver:
    """A real HTTP receiver on 127.0.0.1 that behaves like an idempotent consumer of webhooks.

    ``answer`` picks the status for each request (e.g. 503 during an outage); every request is
    kept with its headers, and ``unique`` holds the first body seen per ``webhook-id``.
    """

    def __init__(self, answer: Callable[[dict[str, Any]], int] = lambda req: 200, delay_s: float = 0.0,
                 retry_after: str = "1") -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.answer = answer
        self.delay_s = delay_s
        self.retry_after = retry_after
        self.requests: list[dict[str, Any]] = []
        self.unique: dict[str, bytes] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                       "at": time.time()}
                with receiver.lock:
                    receiver.requests.append(req)
                    status = receiver.answer(req)
                    if 200 <= status < 300:
                        receiver.unique.setdefault(req["headers"].get("webhook-id", ""), body)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
