"""One worker at a steady arrival rate: where an item's latency goes, hop by hop, what it costs
in CPU, and how many records the stream writes for it.

Starts a broker and one worker, warms it up, then sends ``--rate`` items/s onto ``news`` for
``--seconds``, one at a time, and reads back:

- latency per hop, from each record's own Kafka timestamp: news (the send) -> the scorer's
  record on the internal topic -> the counting stage's record on news.scored -> a reader;
- CPU of the worker (its child process), the broker and this script over the run, per item;
- records written to every topic over the whole run (warm-up included), changelogs by key kind,
  per item;
- the scorer's micro-batches: count, mean size, model seconds per item (the worker's metrics).

Last, one JSON line. Rates well below the worker's ceiling show the per-item overhead of a
stream that is mostly waiting (a batch of one item), the case the ceiling benchmarks never see.

    python bench/bench_hops.py --rate 30 [--backend null] [--seconds 15] [--set KEY=VALUE ...]
    python bench/bench_hops.py --rate 30 --revisions 69f68c8 HEAD [--rounds 2]   # before and after, alternated
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import headlines, host  # noqa: E402
from bench.bench_stream import Arrivals, items, warm_up  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402
from riskpulse.stream.local_broker import LocalBroker  # noqa: E402
from tests.helpers import Worker, worker_env  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_stamps(bootstrap: str, topic: str, key_of: Callable[[Any], str | None]) -> dict[str, float]:
    """The first Kafka timestamp of each timed item's record on ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(parts)
    out: dict[str, float] = {}
    for record in consumer:
        key = key_of(record)
        if key and key.startswith("lat-"):
            out.setdefault(key, record.timestamp / 1000)
        if all(consumer.position(p) >= ends[p] for p in parts):
            break
    consumer.close()
    return out


def records_written(bootstrap: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Records on every topic, and on each changelog by kind of key (digits and hashes folded)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    totals: dict[str, int] = {}
    kinds: dict[str, dict[str, int]] = {}
    for topic in sorted(consumer.topics()):
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        totals[topic] = sum(consumer.end_offsets(parts).values())
        if not topic.endswith("changelog"):
            continue
        reader = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        reader.assign(parts)
        reader.seek_to_beginning()
        ends = reader.end_offsets(parts)
        counted: collections.Counter[str] = collections.Counter()
        while not all(reader.position(p) >= ends[p] for p in parts):
            for records in reader.poll(timeout_ms=1000).values():
                for record in records:
                    counted[re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)?", "#", record.key.decode(errors="replace"))[:40]] += 1
        reader.close()
        kinds[topic] = dict(counted.most_common(12))
    consumer.close()
    return totals, kinds


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def main() -> None:
    s = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=30.0, help="items per second onto news")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--backend", default="null")
    ap.add_argument("--model", type=Path, default=Path(__file__).resolve().parents[1] / "riskpulse" / "shipped_model")
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a worker setting, e.g. --set MODEL_THREADS=1 (RISKPULSE_ is added)")
    ap.add_argument("--revisions", nargs=2, metavar=("A", "B"), help="run this at two git revisions, alternated")
    ap.add_argument("--rounds", type=int, default=2, help="with --revisions")
    args = ap.parse_args()
    if args.revisions:
        return compare(args)
    extra = dict(kv.split("=", 1) for kv in args.set)
    tmp = Path(tempfile.mkdtemp(prefix="bench-hops-"))
    broker = LocalBroker(tmp / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    worker = None
    try:
        texts = headlines(args.data, 4000)
        env = worker_env(tmp, broker.bootstrap, args.model, "bench", BACKEND=args.backend, BATCH_MAX_SIZE=64,
                         BATCH_MAX_WAIT_MS=20, **extra)  # as bench_stream.py runs it
        worker = Worker(env, tmp / "worker.log").start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=2, acks=1)
        arrivals = Arrivals(broker.bootstrap, "bench.news.scored")
        arrivals.start()
        warm_up(producer, arrivals, "bench.news", texts)
        time.sleep(3)
        before = worker.metrics()
        timed = items(texts[:int(args.rate * args.seconds)], "lat", 1_780_010_000)
        worker_pid = int(subprocess.check_output(["pgrep", "-f", "riskpulse.cli worker"]).split()[-1])
        broker_pid = int(subprocess.check_output(["pgrep", "-f", "kafka.Kafka"]).split()[0])
        cpu0 = (cpu_seconds(worker_pid), cpu_seconds(broker_pid), time.process_time(), time.time())
        sent: dict[str, float] = {}
        begin = time.time()
        for k, item in enumerate(timed):
            due = begin + k / args.rate
            while (now := time.time()) < due:
                time.sleep(min(0.002, due - now))
            sent[item["id"]] = time.time()
            producer.send("bench.news", json.dumps(item).encode())
            producer.flush()
        arrivals.wait_for(set(sent), 120)
        cpu1 = (cpu_seconds(worker_pid), cpu_seconds(broker_pid), time.process_time(), time.time())
        after = worker.metrics()
        elapsed = cpu1[3] - cpu0[3]
        cpu = {name: round((cpu1[i] - cpu0[i]) / elapsed, 3) for i, name in enumerate(("worker", "broker", "bench"))}
        internal = next(t for t in KafkaConsumer(bootstrap_servers=broker.bootstrap).topics() if "scored-by-story" in t)
        scorer_sent = first_stamps(broker.bootstrap, internal, lambda r: r.key.decode() if r.key else None)
        counted = first_stamps(broker.bootstrap, "bench.news.scored", lambda r: r.key.decode() if r.key else None)
        ids = [i for i in sent if i in scorer_sent and i in counted]
        hops = {"news -> scorer's send": [(scorer_sent[i] - sent[i]) * 1000 for i in ids],
                "scorer's send -> counting stage's send": [(counted[i] - scorer_sent[i]) * 1000 for i in ids],
                "counting stage's send -> a reader": [(arrivals.seen[i] - counted[i]) * 1000 for i in ids],
                "total": [(arrivals.seen[i] - sent[i]) * 1000 for i in ids]}
        pct = {name: {f"p{q}": round(float(np.percentile(v, q)), 1) for q in (50, 95, 99)} for name, v in hops.items()}
        totals, kinds = records_written(broker.bootstrap)
        n_items = len(sent) + 200  # and the warm-up
        batches = metric(after, "riskpulse_batch_size_count") - metric(before, "riskpulse_batch_size_count")
        batched = metric(after, "riskpulse_batch_size_sum") - metric(before, "riskpulse_batch_size_sum")
        model_s = metric(after, "riskpulse_model_seconds_sum") - metric(before, "riskpulse_model_seconds_sum")
        print(f"host: {host()}")
        print(f"{len(sent)} items at {args.rate}/s, backend {args.backend}, settings {extra or 'defaults'}")
        print(f"CPU over {elapsed:.1f} s, cores: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
              + f"; worker {1000 * cpu['worker'] * elapsed / len(sent):.2f} ms per item")
        print(f"scorer: {batches:.0f} micro-batches, {batched / max(batches, 1):.1f} items each, "
              f"{1000 * model_s / max(batched, 1):.2f} ms of scoring per item")
        for name, p in pct.items():
            print(f"  {name:<40} p50 {p['p50']:7.1f}  p95 {p['p95']:7.1f}  p99 {p['p99']:7.1f} ms")
        print(f"records written per item ({n_items} items, warm-up included): {sum(totals.values()) / n_items:.1f}")
        for topic, count in totals.items():
            print(f"  {topic:<45} {count:>7}  {count / n_items:5.2f}")
        print(json.dumps({"bench": "hops", "rate": args.rate, "seconds": args.seconds, "backend": args.backend,
                          "settings": extra, "items": len(sent), "cpu_cores": cpu,
                          "worker_ms_per_item": round(1000 * cpu["worker"] * elapsed / len(sent), 3),
                          "micro_batches": batches, "mean_batch": round(batched / max(batches, 1), 2),
                          "scoring_ms_per_item": round(1000 * model_s / max(batched, 1), 3), "latency_ms": pct,
                          "records_per_item": round(sum(totals.values()) / n_items, 2), "records": totals,
                          "changelog_keys": kinds, "host": host()}))
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()


def compare(args: argparse.Namespace) -> None:
    """This script at two revisions (each on its own code, bench/bench_stream_revisions.py's trees),
    alternated ``--rounds`` times; a table and one JSON line of every run."""
    import shutil

    from bench.bench_stream_revisions import revision_trees, run_bench

    passed = ["--rate", str(args.rate), "--seconds", str(args.seconds), "--backend", args.backend,
              "--data", str(Path(args.data).resolve()),
              *[f"--set={kv}" for kv in args.set]]
    runs: dict[str, list[dict[str, Any]]] = {rev: [] for rev in args.revisions}
    with revision_trees(list(args.revisions), prepare=lambda tree: shutil.copy(__file__, tree / "bench" / "bench_hops.py")) as trees:
        for _ in range(args.rounds):
            for rev, tree in trees.items():
                runs[rev].append(run_bench(tree, "bench_hops.py", *passed))
    print(f"{'revision':<12} {'worker ms/item':>15} {'records/item':>13} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for rev, done in runs.items():
        for r in done:
            t = r["latency_ms"]["total"]
            print(f"{rev:<12} {r['worker_ms_per_item']:>15.2f} {r['records_per_item']:>13.1f} {t['p50']:>8.0f} "
                  f"{t['p95']:>8.0f} {t['p99']:>8.0f}")
    print(json.dumps({"bench": "hops_revisions", "revisions": args.revisions, "rate": args.rate,
                      "backend": args.backend, "runs": runs}))


if __name__ == "__main__":
    main()
