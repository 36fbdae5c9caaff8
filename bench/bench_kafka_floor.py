"""The floor under any worker on these cores: the records each item becomes, moved by aiokafka
alone, with no faust and no work done on them (issue 32: "measure where it stops and why").

One asyncio process, as a worker is: one consumer reading three stages' inputs, one producer
(acks=all, linger 5 ms, as the worker's), each batch's sends awaited before its offsets are
committed (as the worker settles a batch before releasing it). Per item, stage 1 reads the news
record and writes ``internal`` records to the next stage and ``changelog`` records; stage 2
reads those and writes the published record plus its own changelog records; stage 3 (the sink)
reads the published record. Nothing else: no decoding, no model, no state.

Each shape is moved three ways, or four: aiokafka alone; faust agents (``take_events`` batches
as the worker's driver takes them, each record sent by ``Topic.send``) in a child process; the
same agents sending straight to faust's producer (as the worker's output ports do since
2026-12-06); with ``--librdkafka``, confluent-kafka where it imports.

Two shapes side by side in one run, alternated ``--rounds`` times:

- ``today``: the records per item a worker writes and reads now (bench_stream.py prints them for
  a burst: ``--today-produce``, ``--today-consume``);
- ``lean``: the least a pipeline of this shape can do per item (news, one internal record, one
  published record, one state write per stage: 4 written, 3 read).

Prints items/s for each and, last, one JSON line.

    python bench/bench_kafka_floor.py [--n 20000] [--rounds 2] [--today-produce 8.6 --today-consume 4.4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka.admin import NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import host  # noqa: E402
from bench.cpu import cpu_seconds  # noqa: E402
from riskpulse.stream.kafka_clients import admin  # noqa: E402
from riskpulse.stream.local_broker import LocalBroker  # noqa: E402

PARTITIONS = 4
VALUE = b"x" * 600  # about a scored record's JSON


def draw(average: float, rng: random.Random) -> int:
    """A whole count averaging ``average`` (1.65 -> one or two, two 65 % of the time)."""
    return int(average) + (rng.random() < average - int(average))


TOPICS = ("news", "internal", "published", "changelog1", "changelog2")


def make_topics(bootstrap: str, prefix: str) -> dict[str, str]:
    """A run's own topics, by stage name."""
    names = {k: f"{prefix}.{k}" for k in TOPICS}
    adm = admin(bootstrap=bootstrap)
    adm.create_topics([NewTopic(t, PARTITIONS, 1) for t in names.values()])
    adm.close()
    return names


def emits(topic: str, key: bytes, internal: float, changelog: float, rng: random.Random) -> list[tuple[str, bytes, bytes]]:
    """What a stage writes, (topic, key, value), for one record it read: for a news record, the
    item's internal record, markers (read, and dropped, by stage 2) and stage 1's changelog
    records; for an item's internal record, the published record and stage 2's changelog
    records; for a marker, nothing. Every client's loop writes exactly this."""
    if topic == "news":
        return ([("internal", key, VALUE)] + [("internal", b"marker", b"m")] * (draw(internal, rng) - 1)
                + [("changelog1", key, VALUE[:200])] * draw(changelog, rng))
    if key == b"marker":
        return []
    return [("published", key, VALUE)] + [("changelog2", key, VALUE[:200])] * draw(changelog, rng)


async def write_backlog(bootstrap: str, topic: str, n: int) -> None:
    """``n`` news records waiting before anything is timed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, VALUE, key=str(i).encode(), partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


class Shape:
    """Records per item: written by stage 1 (internal, changelog), stage 2 (published incl., changelog);
    read: news, internal, published (the rest of ``consume`` is read as extra internal records)."""

    def __init__(self, name: str, produce: float, consume: float) -> None:
        if produce < 3 or consume < 3:
            raise SystemExit("a pipeline of this shape writes and reads at least 3 records per item")
        self.name, self.produce, self.consume = name, produce, consume
        self.internal = consume - 2  # records stage 2 reads per item (the item's own and markers)
        # what is left to write once internal and published are: split between the two stages' changelogs
        self.changelog = max(0.0, produce - self.internal - 1) / 2


async def run_shape(bootstrap: str, shape: Shape, n: int, round_no: int) -> float:
    prefix = f"floor-{shape.name}-{round_no}"
    names = make_topics(bootstrap, prefix)
    stage_of = {topic: stage for stage, topic in names.items()}
    rng = random.Random(round_no)
    await write_backlog(bootstrap, names["news"], n)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(names["news"], names["internal"], names["published"], bootstrap_servers=bootstrap,
                                group_id=prefix, auto_offset_reset="earliest", enable_auto_commit=False,
                                max_poll_records=500)
    await producer.start()
    await consumer.start()
    try:
        sunk, started = 0, time.perf_counter()
        while sunk < n:
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            pending = []
            for tp, records in batches.items():
                if stage_of[tp.topic] == "published":
                    sunk += len(records)
                    continue
                for r in records:
                    for stage, key, value in emits(stage_of[tp.topic], r.key, shape.internal, shape.changelog, rng):
                        pending.append(await producer.send(names[stage], value, key=key, partition=tp.partition))
            if pending:
                await asyncio.gather(*pending)  # a batch is released only once what it caused is acknowledged
            if batches:
                await consumer.commit()
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


def run_shape_librdkafka(bootstrap: str, shape: Shape, n: int, round_no: int) -> float:
    """The same loop on confluent-kafka (librdkafka: the wire, batching and acks in C threads): what
    the floor would be with a C client under the worker. Only where ``confluent_kafka`` imports."""
    from confluent_kafka import Consumer, Producer  # not a riskpulse dependency: ``--librdkafka`` only

    prefix = f"floor-c-{shape.name}-{round_no}"
    names = make_topics(bootstrap, prefix)
    stage_of = {topic: stage for stage, topic in names.items()}
    rng = random.Random(round_no)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(n):  # the backlog on this client too: its CPU is in the client's column, as aiokafka's is
        producer.produce(names["news"], VALUE, key=str(i).encode(), partition=i % PARTITIONS)
        producer.poll(0)
    producer.flush()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": prefix, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([names["news"], names["internal"], names["published"]])
    failed: list[object] = []

    def acked(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)
    sunk, started = 0, time.perf_counter()
    try:
        while sunk < n:
            records = consumer.consume(num_messages=500, timeout=0.1)
            for r in records:
                if r.error():
                    continue
                if stage_of[r.topic()] == "published":
                    sunk += 1
                    continue
                for stage, key, value in emits(stage_of[r.topic()], r.key(), shape.internal, shape.changelog, rng):
                    producer.produce(names[stage], value, key=key, partition=r.partition(), on_delivery=acked)
            if records:
                producer.flush()  # a batch is released only once what it caused is acknowledged
                if failed:
                    raise SystemExit(f"a send failed: {failed[0]}")
                consumer.commit(asynchronous=False)
        return n / (time.perf_counter() - started)
    finally:
        consumer.close()


def faust_child(bootstrap: str, prefix: str, n: int, internal: float, changelog: float, out: str,
                direct: bool = False) -> None:
    """The same loop as faust agents (a child process: faust's worker owns its process): batches
    by ``take_events`` as the worker's driver takes them, each record sent by ``Topic.send``, each
    batch's sends awaited before the next. Writes its figures to ``out`` (items/s and this
    process's CPU from the first item to the last: faust's worker takes over stdout) and exits."""
    import faust

    app = faust.App(f"{prefix}-app", broker=f"kafka://{bootstrap}", store="memory://", topic_partitions=PARTITIONS,
                    consumer_auto_offset_reset="earliest", producer_acks=-1, producer_linger_ms=5,
                    broker_commit_every=500, broker_commit_interval=1.0, stream_wait_empty=False, web_enabled=False)
    topics = {k: app.topic(f"{prefix}.{k}", key_type=bytes, value_type=bytes, key_serializer="raw",
                           value_serializer="raw", internal=False) for k in TOPICS}
    rng = random.Random(0)
    state = {"sunk": 0, "t0": 0.0, "cpu0": 0.0}

    async def send(name: str, key: bytes, value: bytes, partition: int) -> Any:
        """Through faust's Topic.send, or (``direct``) straight to faust's producer, that is aiokafka's."""
        if direct:
            return await app.producer.send(f"{prefix}.{name}", key, value, partition, None, None)
        return await topics[name].send(key=key, value=value, partition=partition)

    async def emit_all(stage: str, events: list[Any]) -> None:
        """What one batch causes, each batch's sends awaited before the next (as the worker settles)."""
        pending = []
        for e in events:
            for target, key, value in emits(stage, e.key, internal, changelog, rng):
                pending.append(await send(target, key, value, e.message.partition))
        await asyncio.gather(*pending)

    def quiet() -> None:
        """The client libraries' loggers at WARNING, as the worker sets them (riskpulse/logs.py):
        left as faust's worker leaves them here, aiokafka built a debug record for every send
        (12 % of this process's samples)."""
        for name in ("aiokafka", "kafka", "faust", "mode"):
            logging.getLogger(name).setLevel(logging.WARNING)

    @app.agent(topics["news"])
    async def stage1(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(500, within=0.02):
            if not state["t0"]:
                quiet()  # once faust's worker has set logging up
                state["t0"], state["cpu0"] = time.perf_counter(), sum(os.times()[:2])
            await emit_all("news", events)

    @app.agent(topics["internal"])
    async def stage2(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(500, within=0.02):
            await emit_all("internal", events)

    @app.agent(topics["published"])
    async def sink(stream):  # type: ignore[no-untyped-def]
        async for events in stream.take_events(500, within=0.02):
            state["sunk"] += len(events)
            if state["sunk"] >= n:
                took = time.perf_counter() - state["t0"]
                Path(out).write_text(json.dumps({"items_per_s": n / took,
                                                 "cpu_us_per_item": (sum(os.times()[:2]) - state["cpu0"]) / n * 1e6}))
                os._exit(0)

    faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


def run_shape_faust(bootstrap: str, shape: Shape, n: int, round_no: int, direct: bool = False) -> tuple[float, float]:
    """The shape through faust agents in a child process: (items/s, the child's CPU us per item)."""
    prefix = f"floor-f{'d' if direct else ''}-{shape.name}-{round_no}"
    asyncio.run(write_backlog(bootstrap, make_topics(bootstrap, prefix)["news"], n))
    with tempfile.TemporaryDirectory(prefix="floor-faust-") as cwd:  # faust writes its data dir in the cwd
        out = Path(cwd) / "figures.json"
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--faust-child", bootstrap, prefix, str(n),
                               str(shape.internal), str(shape.changelog), str(out), str(int(direct))], cwd=cwd,
                              capture_output=True, text=True, timeout=600)
        if not out.exists():
            raise SystemExit(f"the faust child gave no figure (rc {done.returncode}): {done.stderr[-2000:]}")
        figures = json.loads(out.read_text())
    return figures["items_per_s"], figures["cpu_us_per_item"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--faust-child":
        bootstrap, prefix, n, internal, changelog, out, direct = sys.argv[2:9]
        faust_child(bootstrap, prefix, int(n), float(internal), float(changelog), out, direct == "1")
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--today-produce", type=float, default=8.6, help="records written per item (bench_stream.py prints it)")
    ap.add_argument("--today-consume", type=float, default=4.4, help="records read per item (bench_stream.py prints it)")
    ap.add_argument("--librdkafka", action="store_true",
                    help="also run each shape on confluent-kafka (install it beside, e.g. pip install --target DIR "
                         "confluent-kafka and PYTHONPATH=DIR)")
    args = ap.parse_args()
    shapes = [Shape("today", args.today_produce, args.today_consume), Shape("lean", 4, 3)]
    tmp = Path(tempfile.mkdtemp(prefix="riskpulse-floor-"))
    broker = LocalBroker(tmp / "kafka", Path.home() / ".cache" / "riskpulse" / "kafka")
    broker.start()
    clients = ["aiokafka", "faust", "faust+direct-send"] + (["librdkafka"] if args.librdkafka else [])
    rates: dict[str, list[float]] = {f"{s.name}/{c}": [] for s in shapes for c in clients}
    # CPU seconds per item, of the broker and of this (client) process, over each timed run
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in rates}

    def timed(name: str, run: Callable[[], float]) -> None:
        b0, c0 = cpu_seconds(broker.process.pid), cpu_seconds(os.getpid())
        rates[name].append(run())  # the backlog is written first: its cost is in both columns, as it is in a worker's
        cpu[name].append(((cpu_seconds(broker.process.pid) - b0) / args.n * 1e6,
                          (cpu_seconds(os.getpid()) - c0) / args.n * 1e6))
    try:
        for round_no in range(args.rounds):
            for shape in shapes:
                timed(f"{shape.name}/aiokafka", lambda: asyncio.run(run_shape(broker.bootstrap, shape, args.n, round_no)))
                for client, direct in (("faust", False), ("faust+direct-send", True)):
                    b0 = cpu_seconds(broker.process.pid)
                    rate, child_cpu = run_shape_faust(broker.bootstrap, shape, args.n, round_no, direct)
                    rates[f"{shape.name}/{client}"].append(rate)
                    cpu[f"{shape.name}/{client}"].append(((cpu_seconds(broker.process.pid) - b0) / args.n * 1e6, child_cpu))
                if args.librdkafka:
                    timed(f"{shape.name}/librdkafka",
                          lambda: run_shape_librdkafka(broker.bootstrap, shape, args.n, round_no))
    finally:
        broker.stop()
    print(f"\n{'shape/client':<30}{'written/item':>14}{'read/item':>11}   items/s per round")
    for shape in shapes:
        for client in clients:
            name = f"{shape.name}/{client}"
            print(f"{name:<30}{shape.produce:>14.2f}{shape.consume:>11.2f}   " + ", ".join(f"{r:,.0f}" for r in rates[name])
                  + "   CPU us/item broker, client: " + ", ".join(f"{b:.0f}/{c:.0f}" for b, c in cpu[name]))
    best = {name: max(r) for name, r in rates.items()}
    ratios = {f"{a} over today/aiokafka": round(best[a] / best["today/aiokafka"], 2) for a in best if a != "today/aiokafka"}
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")
    print(json.dumps({"bench": "kafka_floor", "host": host(), "n": args.n, "partitions": PARTITIONS,
                      "shapes": {s.name: {"produce_per_item": s.produce, "consume_per_item": s.consume} for s in shapes},
                      "items_per_s": {k: [round(r) for r in v] for k, v in rates.items()},
                      "cpu_us_per_item_broker_client": {k: [[round(b), round(c)] for b, c in v] for k, v in cpu.items()},
                      "ratios": ratios}))


if __name__ == "__main__":
    main()
