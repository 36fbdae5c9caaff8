"""End-to-end throughput and latency through a real broker and a real Faust worker.

In one run on this machine: (1) model-only throughput of the same Scorer the worker uses
(same backend, batch size and headlines), (2) maximum end-to-end throughput news ->
news.scored, and news -> the store (the worker's own sink: its whole work on an item), with the
records the worker wrote and read per item meanwhile, (3) news -> news.scored latency
p50/p95/p99 at half of (2), started once the store has caught up (before 2026-12-06 it started
while the sink still worked off the burst, and measured that backlog: p99 3.2 s against 0.6 s
once caught up, null backend). Prints a table and, last, one JSON line with the figures and the
ratio (2)/(1).

CPU seconds per item beside the rates (bench/cpu.py): the model alone (this process), and the
worker (supervisor and child) plus the broker over the burst until the store holds it. On a
machine of C cores no worker can pass C / (worker + broker CPU per item); over the model-only
rate that is the ratio (2)/(1) can reach here at best, whatever the scheduling: it says
whether a ratio is lost to contention or to work, and how little CPU per item the stream
around the model must take for a ratio of 0.9.

    python bench/bench_stream.py --model ~/.riskpulse/model [--n 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import headlines, host  # noqa: E402
from bench.cpu import cpu_seconds, tree_cpu_seconds  # noqa: E402
from riskpulse.models.scorer import Scorer  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402
from riskpulse.stream.local_broker import LocalBroker  # noqa: E402
from riskpulse.stream.scoring import rows_per_call  # noqa: E402
from riskpulse.stream.reader import reader  # noqa: E402
from tests.helpers import Worker, worker_env  # noqa: E402


def items(texts: list[str], prefix: str, t0: float) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i}", "headline": t, "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i))}
            for i, t in enumerate(texts)]


def send_all(producer: KafkaProducer, topic: str, batch: list[dict[str, Any]]) -> None:
    for it in batch:
        producer.send(topic, json.dumps(it).encode())
    producer.flush()


def warm_up(producer: KafkaProducer, arrivals: "Arrivals", topic: str, texts: list[str]) -> None:
    """200 headlines through the worker and awaited: model loaded, partitions assigned, before anything is timed."""
    warm = items(texts[:200], "warm", 1_780_000_000)
    send_all(producer, topic, warm)
    arrivals.wait_for({i["id"] for i in warm}, 120)


def topic_ends(bootstrap: str) -> dict[str, int]:
    """Records on each topic so far (end offsets summed over partitions), changelogs included."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        out = {}
        for topic in consumer.topics():
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            out[topic] = sum(consumer.end_offsets(parts).values())
        return out
    finally:
        consumer.close()


def records_per_item(before: dict[str, int], after: dict[str, int], news: str, n: int) -> tuple[float, float]:
    """Records the worker wrote, and read, per item over a phase: everything written except the
    news it was given; read, every topic it consumes (news, the internal ones, its own outputs
    for the sinks). Ticks and progress markers in those seconds count: they are its load too."""
    delta = {t: after.get(t, 0) - before.get(t, 0) for t in after}
    written = sum(v for t, v in delta.items() if t != news)
    read = sum(v for t, v in delta.items() if not t.endswith(("-changelog", ".dlq")))
    return written / n, read / n


def wait_stored(db: Path, like: str, n: int, timeout_s: float) -> float:
    """When the worker's own sink has stored ``n`` items whose id is ``like``: the worker's work on
    an item ends there, not on news.scored (a burst leaves the sink behind the counting stage, and
    a latency figure taken while it catches up would measure that backlog)."""
    deadline = time.time() + timeout_s
    with sqlite3.connect(db, timeout=30) as conn:
        while time.time() < deadline:
            try:
                stored = conn.execute("select count(*) from scored_news where id like ?", (like,)).fetchone()[0]
            except sqlite3.OperationalError:  # not created yet, or locked a moment
                stored = 0
            if stored >= n:
                return time.time()
            time.sleep(0.05)
    raise SystemExit(f"timed out: the store holds {stored} of {n} items")


class Arrivals(threading.Thread):
    """Records the wall time each id reaches news.scored."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.seen: dict[str, float] = {}
        self.consumer = reader(topic, bootstrap=bootstrap, auto_offset_reset="latest",
                               enable_auto_commit=False, fetch_max_wait_ms=5)
        self.consumer.poll(timeout_ms=2000)  # join before anything is sent
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            for records in self.consumer.poll(timeout_ms=100).values():
                now = time.time()
                for r in records:
                    self.seen.setdefault(json.loads(r.value)["id"], now)

    def wait_for(self, ids: set[str], timeout_s: float) -> float:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if ids <= self.seen.keys():
                return max(self.seen[i] for i in ids)
            time.sleep(0.05)
        raise SystemExit(f"timed out: {len(ids - self.seen.keys())} of {len(ids)} items never reached news.scored")


def main() -> None:
    s = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=s.model_dir)
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="how long the idle worker and broker are timed")
    ap.add_argument("--settle-seconds", type=float, default=45.0,
                    help="wait after the warm-up, before anything is timed: the broker's JIT settles")
    ap.add_argument("--latencies-out", type=Path,
                    help="write each latency item's send time and latency (ms) here, to see when the slow ones came")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="riskpulse-bench-"))
    broker = LocalBroker(tmp / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    worker = None
    try:
        texts = headlines(args.data, args.n)
        # the same Scorer settings as the worker's (spinning included), so the ratio compares like with like
        scorer = Scorer(args.model, backend=args.backend, batch_size=args.batch, spin=s.ort_spin)  # type: ignore[arg-type]
        scorer.batch_size = rows_per_call(scorer.engine.name, args.batch)  # as the worker cuts its micro-batches
        scorer.score(texts[:64])
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(texts), args.batch):
            scorer.score(texts[i:i + args.batch])  # the worker's micro-batches, one after another
        model_only = len(texts) / (time.perf_counter() - t0)
        model_cpu = (time.process_time() - c0) / len(texts)  # all this process's threads: the model's
        del scorer

        env = worker_env(tmp, broker.bootstrap, args.model, "bench", BACKEND=args.backend, BATCH_MAX_SIZE=args.batch,
                         BATCH_MAX_WAIT_MS=20)
        worker = Worker(env, tmp / "worker.log").start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=2, acks=1)
        arrivals = Arrivals(broker.bootstrap, "bench.news.scored")
        arrivals.start()
        warm_up(producer, arrivals, "bench.news", texts)

        batch = items(texts, "max", 1_780_001_000)
        assert worker.proc is not None and broker.process is not None
        # a broker fresh from its first load compiles and collects for about 40 s (0.1-0.3 of a core
        # here, then ~0.08): time that belongs to no item, and that a broker in service has done
        time.sleep(args.settle_seconds)
        # what the two cost with nothing to do (ticks, heartbeats, long polls): part of every item's
        # CPU at a low rate, none of it per item
        worker_pid, broker_pid = worker.proc.pid, broker.process.pid

        def spent() -> tuple[float, float]:
            """CPU seconds so far: the worker (supervisor and child), the broker."""
            return tree_cpu_seconds(worker_pid), cpu_seconds(broker_pid)
        idle0, idle_t0 = spent(), time.time()
        time.sleep(args.idle_seconds)
        idle_s, idle1 = time.time() - idle_t0, spent()
        idle = ((idle1[0] - idle0[0]) / idle_s, (idle1[1] - idle0[1]) / idle_s)
        before = topic_ends(broker.bootstrap)
        cpu0 = spent()
        start = time.time()
        send_all(producer, "bench.news", batch)
        end = arrivals.wait_for({i["id"] for i in batch}, 600)
        e2e = len(batch) / (end - start)
        stored_end = wait_stored(tmp / "store.db", "max-%", len(batch), 600)
        e2e_stored = len(batch) / (stored_end - start)
        cpu1 = spent()
        worker_cpu, broker_cpu = ((cpu1[0] - cpu0[0]) / len(batch), (cpu1[1] - cpu0[1]) / len(batch))
        burst_s = stored_end - start
        cores = os.cpu_count() or 1
        bound = cores / (worker_cpu + broker_cpu)  # items/s were every core busy with this worker and its broker
        # the stream's CPU per item beyond the model that a ratio of 0.9 leaves room for, on these cores
        room_for_09 = cores / (0.9 * model_only) - model_cpu
        written, read = records_per_item(before, topic_ends(broker.bootstrap), "bench.news", len(batch))

        rate = e2e / 2
        n_lat = int(rate * args.latency_seconds)
        lat_items = items((texts * 3)[:n_lat], "lat", 1_780_010_000)
        sent: dict[str, float] = {}
        begin = time.time()
        for k, it in enumerate(lat_items):
            due = begin + k / rate
            while (now := time.time()) < due:
                time.sleep(min(0.002, due - now))
            sent[it["id"]] = time.time()
            producer.send("bench.news", json.dumps(it).encode())
            producer.flush()
        arrivals.wait_for(set(sent), 300)
        lat_ms = np.array([(arrivals.seen[i] - t) * 1000 for i, t in sent.items()])
        arrivals.stop = True
        p50, p95, p99 = (float(np.percentile(lat_ms, q)) for q in (50, 95, 99))
        if args.latencies_out:
            args.latencies_out.write_text("".join(f"{t - begin:.3f} {(arrivals.seen[i] - t) * 1000:.1f}\n"
                                                  for i, t in sent.items()))

        print(f"\n{'figure':<52}{'value':>12}")
        print(f"{'model-only throughput (headlines/s)':<52}{model_only:>12.1f}")
        print(f"{'end-to-end max throughput news->news.scored (/s)':<52}{e2e:>12.1f}")
        print(f"{'ratio end-to-end / model-only':<52}{e2e / model_only:>12.2f}")
        print(f"{'end-to-end max throughput news->the store (/s)':<52}{e2e_stored:>12.1f}")
        print(f"{'records per item over that, written / read':<52}{written:>6.2f} {read:>5.2f}")
        print(f"{'CPU ms per item: model alone':<52}{model_cpu * 1e3:>12.2f}")
        print(f"{'CPU ms per item over the burst: worker / broker':<52}{worker_cpu * 1e3:>6.2f} {broker_cpu * 1e3:>5.2f}")
        print(f"{'  of which idle (CPU s per s idle x burst s / items)':<52}"
              f"{idle[0] * burst_s / len(batch) * 1e3:>6.2f} {idle[1] * burst_s / len(batch) * 1e3:>5.2f}")
        print(f"{'end-to-end bound on %d cores (/s), over model-only' % cores:<52}{bound:>6.0f} {bound / model_only:>5.2f}")
        print(f"{'stream CPU ms per item beyond the model a 0.9 ratio allows':<52}{room_for_09 * 1e3:>12.2f}")
        print(f"{'latency at %.0f/s, p50 / p95 / p99 (ms)' % rate:<52}{p50:>6.0f} {p95:>5.0f} {p99:>5.0f}")
        print(json.dumps({"bench": "stream", "host": host(), "backend": args.backend, "batch": args.batch, "n": len(texts),
                          "model_only_s": model_only, "e2e_max_s": e2e, "ratio": e2e / model_only,
                          "e2e_stored_s": e2e_stored, "records_per_item": {"written": written, "read": read},
                          "cpu_ms_per_item": {"model_only": model_cpu * 1e3, "worker": worker_cpu * 1e3,
                                              "broker": broker_cpu * 1e3},
                          "idle_cpu_per_s": {"worker": idle[0], "broker": idle[1]}, "burst_s": burst_s,
                          "cores": cores, "e2e_bound_s": bound, "ratio_bound": bound / model_only,
                          "stream_cpu_ms_for_ratio_09": room_for_09 * 1e3,
                          "latency_rate_s": rate, "latency_n": len(lat_ms),
                          "latency_ms": {"p50": p50, "p95": p95, "p99": p99}}))
    finally:
        if worker:
            worker.stop()
        broker.stop()


if __name__ == "__main__":
    main()
