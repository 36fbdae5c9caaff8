"""The worker's stages driven as plain code, without Kafka or faust: the real Count and Judge
classes, their real message encodings, through an in-memory output port, routed as the runtime
routes them (each record to the partition the stage chose)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from riskpulse.records import TOPIC_DLQ, TOPIC_SCORED, TOPIC_TRENDS
from riskpulse.settings import Settings
from riskpulse.stream.core.backtest import run_backtest
from riskpulse.stream.core.messages import Progress, Scored, Source
from riskpulse.stream.core.state import Overlay, Prefixed
from riskpulse.stream.runtime.versions import PINNED, UPGRADE_TESTS, UnsupportedRelease, check_pinned
from riskpulse.stream.stages.count import Count
from riskpulse.stream.stages.judge import Judge
from riskpulse.stream.stages.partitioning import story_partition
from riskpulse.stream.stages.ports import SCORED_BY_STORY, WINDOWS, Record, Stage

from .test_core import DETECTOR, T0, scored


class Memory:
    """An output port that keeps what was sent, each send acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None, timestamp: float | None = None) -> Any:
        self.sent.append({"topic": topic, "value": value, "key": key, "partition": partition, "headers": headers})
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def settle(self) -> None:
        """Every send was acknowledged when it was made."""

    def take(self, topic: str) -> list[dict[str, Any]]:
        out = [s for s in self.sent if s["topic"] == topic]
        self.sent = [s for s in self.sent if s["topic"] != topic]
        return out


def as_input(sent: list[dict[str, Any]], topic: str, partitions: int) -> dict[int, list[Record]]:
    """Sent records as the next stage reads them: per partition, with offsets in send order."""
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for s in sent:
        p = s["partition"]
        assert p is not None and 0 <= p < partitions, "every internal record names its partition"
        by_partition[p].append(Record(topic, p, len(by_partition[p]), None, s["value"]))
    return by_partition


async def run(stage: Any, inputs: dict[int, list[Record]], table: dict[str, Any]) -> None:
    """One batch per partition, as the runtime's driver runs a keyed stage."""
    for partition, records in sorted(inputs.items()):
        await stage.open(partition, Overlay(Prefixed(table, partition)))
        await stage.process(records)
        await stage.close(partition)
    stage.end_batch()


def test_count_and_judge_run_without_kafka_and_agree_with_the_backtest(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kafka_partitions=3)
    items = [scored(f"i{k}", T0 + 7 * k, ["negative", "neutral", "positive"][k % 3], ["Macro", "M&A"][k % 2],
                    tickers=[["AAPL"], ["TSLA", "XOM"], []][k % 3]) for k in range(90)]
    # what the scorers send: each item on its story's partition, then every partition hears
    # how far every news partition came (far past the last window: everything closes)
    sent = [{"partition": story_partition(item.headline, 3),
             "value": Scored(item, Source("news", k % 2, k // 2)).encode()} for k, item in enumerate(items)]
    sent += [{"partition": p, "value": Progress(Source("news", n, 45), T0 + 10_000).encode()}
             for n in range(3) for p in range(3)]

    async def pipeline() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        out = Memory()
        await run(Count(settings, out), as_input(sent, SCORED_BY_STORY, 3), {})
        published = out.take(TOPIC_SCORED)
        await run(Judge(settings, out, DETECTOR), as_input(out.take(WINDOWS), WINDOWS, 3), {})
        assert not out.take(TOPIC_DLQ)
        return published, out.take(TOPIC_TRENDS)

    published, trends = asyncio.run(pipeline())
    assert sorted(json.loads(p["value"])["id"] for p in published) == sorted(i.id for i in items)
    assert all(("riskpulse-schema", b"news.scored/v1") in p["headers"] for p in published)
    got = {(t["key_type"], t["key"], t["window_start"]): t["count"] for t in map(lambda r: json.loads(r["value"]), trends)}
    want = {(t.key_type, t.key, t.to_json()["window_start"]): t.count
            for t in run_backtest(items, DETECTOR, settings.window_s).trends}
    assert got == want and len(got) > 20


@pytest.mark.parametrize("stage_name", ["aggregate", "judge"])
def test_a_record_a_stage_cannot_read_is_dead_lettered_with_its_stage_and_the_batch_goes_on(
        tmp_path: Path, stage_name: str) -> None:
    settings = Settings(home=tmp_path, kafka_partitions=1)
    good = Scored(scored("ok", T0), Source("news", 0, 0)).encode()
    poison = [b"not json", b"[]", b'{"_progress": ["news", "0", 1]}', b'{"_part": [0, 1]}']

    async def batch() -> Memory:
        out = Memory()
        stage = Count(settings, out) if stage_name == "aggregate" else Judge(settings, out, DETECTOR)
        values = poison + ([good] if stage_name == "aggregate" else [])
        await run(stage, {0: [Record("in", 0, k, None, v) for k, v in enumerate(values)]}, {})
        return out

    out = asyncio.run(batch())
    letters = [json.loads(s["value"]) for s in out.take(TOPIC_DLQ)]
    assert [(d["stage"], d["source_offset"]) for d in letters] == [(stage_name, k) for k in range(len(poison))]
    if stage_name == "aggregate":
        assert [json.loads(s["value"])["id"] for s in out.take(TOPIC_SCORED)] == ["ok"]  # the good one went on


def test_the_runtime_refuses_faust_releases_its_repairs_were_not_tested_on() -> None:
    check_pinned(dict(PINNED))  # the pinned releases: nothing to say
    check_pinned()  # and they are what is installed
    with pytest.raises(UnsupportedRelease) as refused:
        check_pinned({**PINNED, "faust-streaming": "0.16.0"})
    message = str(refused.value)
    assert "faust-streaming 0.16.0 (want 0.15.3)" in message and all(test in message for test in UPGRADE_TESTS)


# -- the runtime's driver: a batch is released only once its outputs are acknowledged ---------

class _Message:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset, self.timestamp = "news", 0, offset, None
        self.refs = 1

    def decref(self) -> None:
        self.refs -= 1


class _Event:
    def __init__(self, offset: int) -> None:
        self.message, self.value = _Message(offset), b"{}"


class _Stream:
    def __init__(self, batch: list[_Event]) -> None:
        self.batch = batch

    async def take_events(self, n: int, within: float) -> Any:
        yield self.batch


class _PassedOver:
    """Hands the batch over as delivered (no holes) and records what was marked done."""

    def __init__(self) -> None:
        self.marked: list[Any] = []

    async def complete(self, events: list[Any], chunk: int, done: list[Any]) -> Any:
        done.append(("news", 0, events[-1].message.offset))
        yield events

    async def mark_done(self, done: list[Any]) -> None:
        self.marked += done

    def positions(self, events: list[Any]) -> dict[Any, int | None]:
        return {}

    def abandoned(self, before: dict[Any, int | None]) -> None:
        pass


class _Broker:
    """The app's topics as the port sees them: every send acknowledged, or refused for good."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse

    async def send(self, topic: str, value: bytes, **_: Any) -> Any:
        sent = asyncio.get_running_loop().create_future()
        if self.refuse:
            sent.set_exception(TimeoutError("delivery timed out: the broker was away too long"))
        else:
            sent.set_result(None)
        return sent


class _Echo(Stage):
    name = "echo"

    def __init__(self, out: Any) -> None:
        self.out = out

    async def process(self, records: list[Record]) -> None:
        for record in records:
            await self.out.send(TOPIC_SCORED, b"{}")  # not awaited here: the driver settles the batch


@pytest.mark.parametrize("refused", [False, True])
def test_a_batch_is_released_for_commit_only_once_the_broker_acknowledged_its_outputs(refused: bool) -> None:
    from riskpulse.stream.runtime.driver import StageDriver
    from riskpulse.stream.runtime.outputs import StagePort
    from riskpulse.stream.runtime.watchdog import StallWatchdog

    batch = [_Event(offset) for offset in range(3)]
    passed_over = _PassedOver()
    driver = StageDriver(_Echo(StagePort(_Broker(refuse=refused))), passed_over, StallWatchdog(60.0))  # type: ignore[arg-type]
    if refused:  # the agent raises (the worker restarts), the batch is held and its holes unmarked: read again
        with pytest.raises(TimeoutError):
            asyncio.run(driver.run(_Stream(batch)))
        assert [e.message.refs for e in batch] == [1, 1, 1] and passed_over.marked == []
    else:
        asyncio.run(driver.run(_Stream(batch)))
        assert [e.message.refs for e in batch] == [0, 0, 0] and passed_over.marked == [("news", 0, 2)]


class _HeldBroker:
    """Every send waits until the test lets the broker acknowledge it."""

    def __init__(self) -> None:
        self.sent: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, **_: Any) -> Any:
        self.sent.append(asyncio.get_running_loop().create_future())
        return self.sent[-1]

    def acknowledge(self) -> None:
        for sent in self.sent:
            sent.set_result(None)


class _Overtaken(Stage):
    """A stage a rebalance overtakes in the middle of its batch."""

    name = "overtaken"

    async def process(self, records: list[Record]) -> None:
        from riskpulse.stream.runtime.state_writes import Rebalanced

        raise Rebalanced("a rebalance began during the batch")


def test_the_heartbeat_claims_a_record_only_once_its_outputs_are_acknowledged_and_none_abandoned() -> None:
    """The heartbeat's "read to the end" lets a quiet news partition stop holding the counting
    partitions' watermark (stream/core/watermark.py), so it may claim only records whose items are
    already sent. It claimed the stall watchdog's offsets, which move when a chunk is handed to its
    stage and outlive a batch a rebalance overtook (read again from the committed offset): a
    partition looked done while its last items were not sent, and after the news went quiet they
    were counted late (stream/runtime/delivered.py)."""
    from riskpulse.stream.runtime.delivered import Delivered
    from riskpulse.stream.runtime.driver import StageDriver
    from riskpulse.stream.runtime.outputs import StagePort
    from riskpulse.stream.runtime.watchdog import StallWatchdog

    key = ("news", 0)
    broker, watchdog, delivered = _HeldBroker(), StallWatchdog(60.0), Delivered()
    driver = StageDriver(_Echo(StagePort(broker)), _PassedOver(), watchdog,  # type: ignore[arg-type]
                         delivered=delivered)

    async def scenario() -> None:
        running = asyncio.ensure_future(driver.run(_Stream([_Event(offset) for offset in range(3)])))
        while len(broker.sent) < 3:
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)  # the driver waits for the acknowledgements
        assert watchdog.progress[key][0] == 2  # the watchdog saw the chunk move: progress, not delivery
        assert delivered.position(key, committed=None) is None  # nothing may be claimed yet
        assert delivered.position(key, committed=1) == 0  # but what the group committed
        broker.acknowledge()
        await running
        assert delivered.position(key, committed=1) == 2

    asyncio.run(scenario())
    # a batch a rebalance overtook is abandoned, read again by whoever holds it: it claims nothing
    overtaken = StageDriver(_Overtaken(), _PassedOver(), watchdog, delivered=delivered)  # type: ignore[arg-type]
    asyncio.run(overtaken.run(_Stream([_Event(offset) for offset in range(3, 6)])))
    assert watchdog.progress[key][0] == 5 and delivered.position(key, committed=1) == 2
    # after an assignment faust reads every partition again from the group's commit: so does the claim
    delivered.assigned()
    assert delivered.position(key, committed=1) == 0 and delivered.position(key, committed=None) is None


class _Counting(Stage):
    """A stateful (not keyed) stage, as the scorer is: counts its records per partition."""

    name = "counting"
    stateful = True

    def __init__(self, out: Any) -> None:
        self.out = out

    async def process(self, records: list[Record]) -> None:
        for partition in sorted({r.partition for r in records}):
            state = self.state_of(partition)
            state.set("seen", (state.get("seen") or 0) + sum(r.partition == partition for r in records))
            state.flush()


def test_a_stateful_stage_reads_whole_batches_and_writes_each_partitions_state_under_its_own_event() -> None:
    """The scorer keeps its state per news partition yet scores batches across partitions: the
    driver makes an event of each partition current before the stage touches that partition's
    state (faust's store picks its database from the current event)."""
    from riskpulse.stream.runtime.driver import StageDriver
    from riskpulse.stream.runtime.outputs import StagePort
    from riskpulse.stream.runtime.watchdog import StallWatchdog

    batch = [_Event(offset) for offset in range(5)]
    for i, event in enumerate(batch):
        event.message.partition = i % 2
    from faust.streams import current_event

    current: list[int] = []

    class Table(dict):  # type: ignore[type-arg]
        def __setitem__(self, key: str, value: Any) -> None:
            current.append(current_event().message.partition)  # as faust's table finds it
            super().__setitem__(key, value)

    table = Table()
    stage = _Counting(StagePort(_Broker(refuse=False)))
    with pytest.raises(ValueError):
        StageDriver(stage, _PassedOver(), StallWatchdog(60.0))  # type: ignore[arg-type]
    driver = StageDriver(stage, _PassedOver(), StallWatchdog(60.0), table)  # type: ignore[arg-type]
    asyncio.run(driver.run(_Stream(batch)))
    assert table == {"0|seen": 3, "1|seen": 2} and current == [0, 1]


def test_a_flood_of_long_evidence_stays_under_kafkas_record_size_and_every_item_is_counted(tmp_path: Path) -> None:
    """128 negative items naming the same 256 tickers (all in one key shard), each with a 2,000-character
    link and a 300-character headline: before the window value's budget, one counting value was 4 MB,
    four times Kafka's 1 MB for a record, so its changelog write and the close sent to the judges
    failed, and the stage stopped on every restart. Now every value and every record stays under
    the budget, the evidence stops growing, and every item is counted."""
    from riskpulse.stream.core.aggregator import KEY_SHARDS, MAX_WINDOW_VALUE_BYTES
    from riskpulse.stream.core.shards import shard_of

    settings = Settings(home=tmp_path, kafka_partitions=3)
    tickers = [t for t in (f"T{k:018d}" for k in range(20_000)) if shard_of(f"ticker|{t}", KEY_SHARDS) == 0][:256]
    assert len(tickers) == 256
    items = [scored(f"{'x' * 180}{k:010d}", T0 + k * 0.1, tickers=[tickers[(k * 20 + j) % 256] for j in range(20)],
                    headline=" ".join(f"w{k}x{j}" for j in range(60))[:300]).model_copy(
                        update={"url": "https://example.com/" + "a" * 1_980}) for k in range(128)]
    sent = [{"partition": story_partition(item.headline, 3), "value": Scored(item, Source("news", 0, k)).encode()}
            for k, item in enumerate(items)]
    sent += [{"partition": p, "value": Progress(Source("news", n, 200), T0 + 10_000).encode()}
             for n in range(3) for p in range(3)]
    counting: dict[str, Any] = {}
    judging: dict[str, Any] = {}

    async def pipeline() -> list[dict[str, Any]]:
        out = Memory()
        await run(Count(settings, out), as_input(sent, SCORED_BY_STORY, 3), counting)
        windows_sent = out.take(WINDOWS)
        assert max(len(s["value"]) for s in windows_sent) < MAX_WINDOW_VALUE_BYTES
        await run(Judge(settings, out, DETECTOR), as_input(windows_sent, WINDOWS, 3), judging)
        assert not out.take(TOPIC_DLQ)
        return [json.loads(s["value"]) for s in out.take(TOPIC_TRENDS)]

    trends = asyncio.run(pipeline())
    for store in (counting, judging):
        assert max(len(json.dumps(v)) for v in store.values()) < MAX_WINDOW_VALUE_BYTES
    counts = {t["key"]: t["count"] for t in trends if t["key_type"] == "ticker"}
    assert counts == {t: 10 for t in tickers}  # 128 items x 20 tickers over 256: every item counted
    assert all(t["top_negative"] for t in trends if t["key_type"] == "ticker" and t["key"] == tickers[0])


@pytest.mark.parametrize("waiting", [40, 0])
def test_a_restored_counting_partition_waits_for_a_news_partition_whose_owner_recovers_past_the_grace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, waiting: int) -> None:
    """kill -9 of a worker: its counting partition restarts on another worker, which never heard of
    news partition 1, whose next owner is still recovering its scorer's table (no heartbeats
    meanwhile) two minutes later, while partition 0 flows on. The broker says 40 records of
    partition 1 wait unscored: the watermark must hold, so none of them is late when they come
    (``waiting=0``, where nothing waits, shows what went wrong before: past the grace the
    partition stopped holding, the windows closed, and its records came late)."""
    import riskpulse.stream.stages.count as count_module
    from riskpulse.stream.core.watermark import NEVER_HEARD_GRACE

    settings = Settings(home=tmp_path, kafka_partitions=2)  # production defaults otherwise (idle_s, lateness)
    wall = [float(T0 + 1_000)]
    monkeypatch.setattr(count_module.time, "time", lambda: wall[0])
    out = Memory()
    stage = Count(settings, out, unclaimed=lambda: {0: 0, 1: waiting})
    table: dict[str, Any] = {}

    async def batch(records: list[bytes]) -> None:
        await run(stage, {0: [Record(SCORED_BY_STORY, 0, k, None, value) for k, value in enumerate(records)]}, table)

    async def feed() -> None:
        recovery_s = 4 * NEVER_HEARD_GRACE * settings.idle_s  # far past the grace
        for second in range(int(recovery_s)):  # partition 0: an item and a heartbeat every second
            item = scored(f"p0-{second}", T0 + 10 * second, headline=f"partition zero item {second}")
            await batch([Scored(item, Source("news", 0, second)).encode(),
                         Progress(Source("news", 0, second, 0), heartbeat=True).encode()])
            wall[0] += 1.0
        closed_before.extend(out.take(WINDOWS))
        await batch([Scored(scored(f"p1-{k}", T0 + 5 * k, headline=f"partition one item {k}"),
                            Source("news", 1, k, 2 - k)).encode() for k in range(3)])  # its owner, at last

    closed_before: list[dict[str, Any]] = []
    with caplog.at_level("WARNING", logger="riskpulse.stream.stages"):
        asyncio.run(feed())
    late = [r for r in caplog.records if r.getMessage().startswith("late item")]
    assert len(out.take(TOPIC_SCORED)) == 4 * NEVER_HEARD_GRACE * settings.idle_s + 3
    if waiting:
        assert late == [] and closed_before == []  # held: nothing closed before partition 1 spoke
    else:
        assert len(late) == 3 and closed_before  # the hole this closes, provoked: every record of partition 1 late
