"""The aggregate stage through a real broker and a real worker, beside the core alone, in one run.

The worker aggregates in one member of its group (one internal partition), so this stage bounds
how far the pipeline scales out (DESIGN.md: >= 5,000 items/s, else partition it by key). Scored
items, as the scorer writes them, are produced straight onto the worker's internal topic (no
model in the way: the score agent has no input), and the rate at which the aggregate agent
publishes them on news.scored (dedupe, windows, the detector, the changelog and the outputs
included) is compared with the same items through the plain core in this process
(bench_aggregate.py's loop). Prints a table and, last, one JSON line.

    python bench/bench_aggregate_broker.py --model DIR [--n 20000]

The worker needs a model to start (any exported one: the tests' tiny model will do).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_aggregate import TARGET, make_items, run_once  # noqa: E402
from bench.bench_model import host  # noqa: E402
from bench.bench_stream import Arrivals  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402
from riskpulse.stream.local_broker import LocalBroker  # noqa: E402
from tests.helpers import Worker, worker_env  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Settings().model_dir)
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()

    items = make_items(args.n)
    core_rate, _ = run_once(items, 500)  # the plain core, same items, same batches

    tmp = Path(tempfile.mkdtemp(prefix="riskpulse-bench-agg-"))
    broker = LocalBroker(tmp / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    worker = None
    try:
        env = worker_env(tmp, broker.bootstrap, args.model, "benchagg", KAFKA_PARTITIONS=4)
        worker = Worker(env, tmp / "worker.log").start()
        internal = f"benchagg.{env['RISKPULSE_APP_ID']}-scored"
        arrivals = Arrivals(broker.bootstrap, "benchagg.news.scored")
        arrivals.start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, acks=1, batch_size=256 * 1024)
        payloads = []
        for partition, offset, item in items:
            value = item.to_json()
            value["_src"] = ["benchagg.news", partition, offset, 0]
            payloads.append((item.id.encode(), json.dumps(value, separators=(",", ":")).encode()))
        start = time.time()
        for key, value in payloads:
            producer.send(internal, key=key, value=value)
        producer.flush()
        produced_s = time.time() - start
        end = arrivals.wait_for({item.id for _, _, item in items}, 900)
        first = min(arrivals.seen.values())
        broker_rate = len(items) / (end - start)
        steady_rate = len(items) / (end - first)
        arrivals.stop = True
        print(f"host: {host()}")
        print(f"\n{'figure (items/s)':<58}{'value':>10}")
        print(f"{'aggregate stage, plain core in process':<58}{core_rate:>10,.0f}")
        print(f"{'aggregate stage through the broker (first send to last out)':<58}{broker_rate:>10,.0f}")
        print(f"{'  the same, from the first item out':<58}{steady_rate:>10,.0f}")
        print(f"{'ratio broker / core':<58}{broker_rate / core_rate:>10.2f}")
        print(f"{'ratio broker / 5,000 target':<58}{broker_rate / TARGET:>10.2f}")
        print(json.dumps({"bench": "aggregate_broker", "host": host(), "n": len(items), "core_items_per_s": round(core_rate),
                          "broker_items_per_s": round(broker_rate), "broker_steady_items_per_s": round(steady_rate),
                          "produce_s": round(produced_s, 2), "ratio_broker_to_core": round(broker_rate / core_rate, 3),
                          "ratio_to_target": round(broker_rate / TARGET, 3)}))
    finally:
        if worker:
            worker.stop()
        broker.stop()


if __name__ == "__main__":
    main()
