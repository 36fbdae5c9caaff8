"""Where a worker's time goes under load, stage by stage (issue 32's "measure first").

Starts a broker and one worker (by default with the ``null`` backend: scoring costs nothing, so
what shows is the stream around the model), produces ``--n`` items onto ``news`` as fast as the
client can, and samples the worker child with py-spy (``--gil``: only the thread holding the GIL,
which is the time that bounds a Python worker) while it works them off. Each sample is put in
one stage by the innermost frame that names one (:data:`STAGES`, first match from the leaf up),
and the shares are printed with the items/s news -> news.scored over the same seconds. Last,
one JSON line.

    python bench/profile_worker.py --model riskpulse/shipped_model [--backend null] [--n 30000] [--seconds 30]

Needs py-spy (``pip install py-spy``; ptrace allowed for this user).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import headlines, host  # noqa: E402
from bench.bench_stream import Arrivals, items, send_all, warm_up  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402
from riskpulse.stream.local_broker import LocalBroker  # noqa: E402
from tests.helpers import Worker, worker_env  # noqa: E402

# (stage, a fragment of a frame "function (file:line)"), tried from the sample's leaf frame up
STAGES: list[tuple[str, str]] = [
    ("score: model", "models/scorer.py"),
    ("score: language", "models/language.py"),
    ("score: tickers", "stream/tickers.py"),
    ("decode/encode JSON", "json/"),
    ("validate (pydantic)", "pydantic"),
    ("table: RocksDB", "stores/rocksdb.py"),
    ("table: changelog and faust tables", "faust/tables/"),
    ("table: changelog and faust tables", "stream/runtime/state_writes.py"),
    ("sinks: store (SQLAlchemy)", "sqlalchemy"),
    ("sinks", "stream/stages/sinks.py"),
    ("count: core", "stream/core/"),
    ("count: stage", "stream/stages/count.py"),
    ("judge: detector", "alerts/detector.py"),
    ("judge: stage", "stream/stages/judge.py"),
    ("score: stage", "stream/stages/score.py"),
    ("score: stage", "stream/scoring.py"),
    ("produce (aiokafka producer)", "aiokafka/producer"),
    ("produce (faust)", "faust/transport/producer.py"),
    ("produce (faust)", "faust/topics.py"),
    ("produce (outputs)", "stream/runtime/outputs.py"),
    ("consume (aiokafka consumer)", "aiokafka/consumer"),
    ("consume (faust consumer)", "faust/transport/consumer.py"),
    ("consume (faust consumer)", "faust/transport/drivers/aiokafka.py"),
    ("faust streams and agents", "faust/streams.py"),
    ("faust streams and agents", "faust/agents/"),
    ("faust streams and agents", "faust/channels.py"),
    ("faust events and acks", "faust/events.py"),
    ("kafka wire (aiokafka client)", "aiokafka/"),
    ("gap reader (kafka-python)", "stream/runtime/broker_offsets.py"),
    ("riskpulse runtime (commits, watches)", "stream/runtime/"),
    ("event loop (asyncio)", "asyncio/"),
]


def stage_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for stage, fragment in STAGES:
            if fragment in frame:
                return stage
    return "other"


def main() -> None:
    s = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=s.model_dir)
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--backend", default="null")
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    ap.add_argument("--keep", type=Path, help="write the raw py-spy samples here")
    ap.add_argument("--keep-log", type=Path, help="copy the worker's log here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="riskpulse-profile-"))
    broker = LocalBroker(tmp / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    worker = None
    try:
        texts = headlines(args.data, args.n)
        env = worker_env(tmp, broker.bootstrap, args.model, "prof", BACKEND=args.backend, BATCH_MAX_SIZE=64,
                         BATCH_MAX_WAIT_MS=20)
        worker = Worker(env, tmp / "worker.log").start()
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, acks=1, batch_size=256 * 1024)
        arrivals = Arrivals(broker.bootstrap, "prof.news.scored")
        arrivals.start()
        warm_up(producer, arrivals, "prof.news", texts)

        batch = items(texts, "load", 1_780_001_000)
        feeder = threading.Thread(target=send_all, args=(producer, "prof.news", batch))
        feeder.start()
        time.sleep(2)  # a backlog first, so the worker never waits for input while sampled
        raw = tmp / "samples.raw"
        before = len(arrivals.seen)
        begin = time.time()
        child = worker.child_pid()
        subprocess.run([args.py_spy, "record", "--pid", str(child), "--duration", str(int(args.seconds)), "--gil",
                        "--rate", "100", "--nonblocking", "--format", "raw", "--output", str(raw)], check=True, capture_output=True)
        rate = (len(arrivals.seen) - before) / (time.time() - begin)
        feeder.join()
        arrivals.stop = True
        if args.keep:
            shutil.copy(raw, args.keep)

        shares: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            if line.strip():
                stack, count = line.rsplit(" ", 1)
                shares[stage_of(stack.split(";"))] += int(count)
        total = sum(shares.values()) or 1
        print(f"host: {host()}")
        print(f"backend {args.backend}: {rate:,.0f} items/s news -> news.scored while sampled ({args.seconds:.0f} s, "
              f"{total} samples holding the GIL)")
        for stage, n in shares.most_common():
            print(f"  {100 * n / total:5.1f}%  {stage}")
        print(json.dumps({"bench": "profile_worker", "backend": args.backend, "items_per_s": round(rate, 1),
                          "samples": total, "shares": {k: round(v / total, 4) for k, v in shares.most_common()},
                          "host": host()}))
    finally:
        if worker:
            worker.stop()
        if args.keep_log and (tmp / "worker.log").exists():
            shutil.copy(tmp / "worker.log", args.keep_log)
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
