"""The aggregate stage through a real broker and real workers, beside the core alone, in one run.

Aggregation is partitioned (by story to count, by key to judge: stream/agents.py), so its rate
should grow with the workers in the group. Scored items, routed as the scorers route them, are
produced straight onto the workers' internal topic (no model in the way: the score agents have
no input), and the rate at which the counting stage publishes them on news.scored (dedupe,
windows, the changelog and the outputs included; the judges run beside it) is measured for
each number of workers, on a namespace of its own, in one run, beside the same items through
the plain core in this process (bench_aggregate.py's loop). Prints a table and, last, one JSON line.

    python bench/bench_aggregate_broker.py --model DIR [--n 20000] [--workers 1,2]

The workers need a model to start (any exported one: the tests' tiny model will do). On a
machine with fewer cores than workers plus the broker, more workers share the same cores: the
figure then says what partitioning costs, not how far it scales.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_aggregate import TARGET, make_items, run_once  # noqa: E402
from bench.bench_model import host  # noqa: E402
from bench.bench_stream import Arrivals  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402
from riskpulse.stream.local_broker import LocalBroker  # noqa: E402
from tests.helpers import Worker, as_scorers_send, worker_env  # noqa: E402


def through_workers(broker: LocalBroker, tmp: Path, model: Path, items: list[Any], workers: int) -> dict[str, float]:
    """Items per second through ``workers`` workers of one group, on a namespace of their own."""
    name = f"benchagg{workers}"
    envs = [worker_env(tmp / f"{name}-{k}", broker.bootstrap, model, name) for k in range(workers)]
    running = []
    try:
        for k, env in enumerate(envs):
            running.append(Worker(env, tmp / f"{name}-{k}.log").start())
        for worker in running:  # every member ready after the last join: no rebalance during the run
            worker.wait_ready()
        internal = f"{name}.{envs[0]['RISKPULSE_APP_ID']}-scored-by-story"
        arrivals = Arrivals(broker.bootstrap, f"{name}.news.scored")
        arrivals.start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, acks=1, batch_size=256 * 1024)
        records = []
        for partition, offset, item in items:
            value = item.to_json()
            value["_src"] = [f"{name}.news", partition, offset, 0]
            records.append(value)
        sends = [(p, item.get("id", "progress").encode(), json.dumps(item, separators=(",", ":")).encode())
                 for p, item in as_scorers_send(records, Settings().kafka_partitions)]
        start = time.time()
        for partition, key, value in sends:
            producer.send(internal, key=key, value=value, partition=partition)
        producer.flush()
        produced_s = time.time() - start
        end = arrivals.wait_for({item.id for _, _, item in items}, 900)
        first = min(arrivals.seen.values())
        arrivals.stop = True
        return {"rate": len(items) / (end - start), "steady": len(items) / (end - first), "produce_s": produced_s}
    finally:
        for worker in running:
            worker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Settings().model_dir)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, in this order")
    args = ap.parse_args()

    items = make_items(args.n)
    core_rate, _ = run_once(items, 500)  # the plain core, same items, same batches

    tmp = Path(tempfile.mkdtemp(prefix="riskpulse-bench-agg-"))
    broker = LocalBroker(tmp / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    try:
        counts = [int(w) for w in args.workers.split(",")]
        rates = {w: through_workers(broker, tmp, args.model, items, w) for w in counts}
        print(f"host: {host()} ({os.cpu_count()} cores)")
        print(f"\n{'figure (items/s)':<58}{'value':>10}")
        print(f"{'aggregate stage, plain core in process':<58}{core_rate:>10,.0f}")
        for w, r in rates.items():
            print(f"{f'through the broker, {w} worker(s) (first send to last out)':<58}{r['rate']:>10,.0f}")
            print(f"{'  ratio to the core / to the 5,000 target':<58}{r['rate'] / core_rate:>5.2f}{r['rate'] / TARGET:>5.2f}")
        base = rates[counts[0]]["rate"]
        for w in counts[1:]:
            print(f"{f'ratio {w} worker(s) / {counts[0]}':<58}{rates[w]['rate'] / base:>10.2f}")
        print(json.dumps({"bench": "aggregate_broker", "host": host(), "cores": os.cpu_count(), "n": len(items),
                          "core_items_per_s": round(core_rate),
                          "workers": {str(w): {"items_per_s": round(r["rate"]), "steady_items_per_s": round(r["steady"]),
                                               "produce_s": round(r["produce_s"], 2)} for w, r in rates.items()},
                          "ratio_to_first": {str(w): round(rates[w]["rate"] / base, 3) for w in counts}}))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
