"""A stage's state written a flush at a time (stream/runtime/state_writes.py), on a real faust table
and RocksDB store; the producer is a stand-in that records what it is given and acknowledges when
told (the changelog over a real broker: the kill -9 and rebalance tests of test_pipeline_integration.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest

from riskpulse.settings import Settings
from riskpulse.stream.core.state import Overlay, Prefixed
from riskpulse.stream.runtime.app import PartitionedStateTable
from riskpulse.stream.runtime.state_writes import Rebalanced, StateWrites


class Producer:
    """Keeps each record sent; ``ack()`` answers them in order with their offsets per partition."""

    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int, asyncio.Future[Any]]] = []
        self.refuse = refuse
        self._next: dict[int, int] = {}

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int, timestamp: Any,
                   headers: Any) -> asyncio.Future[Any]:
        if self.refuse:
            raise ConnectionError("broker away")
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, key, value, partition, ack))
        return ack

    def ack(self) -> None:
        for _, _, _, partition, ack in self.sent:
            if not ack.done():
                offset = self._next.get(partition, 0)
                self._next[partition] = offset + 1
                ack.set_result(SimpleNamespace(offset=offset))


def table_on(tmp_path: Path, producer: Producer) -> Any:
    app = faust.App("state-writes-test", store="rocksdb://", datadir=str(tmp_path), topic_partitions=4)
    table = app.tables.add(PartitionedStateTable(app, name="count", default=None, partitions=4, key_type=str))
    app._producer = producer  # noqa: SLF001 - faust's app builds its producer lazily from this attribute
    return table


def read(table: Any, key: str) -> Any:
    store = table.data
    value = store._db_for_partition(int(key.split("|")[0])).get(store._encode_key(key))  # noqa: SLF001
    return None if value is None else store._decode_value(value)  # noqa: SLF001


def flush_one(writes: StateWrites, partition: int, key: str, value: Any) -> None:
    """One stage's flush of one key (stream/core/state.py), as the stages write."""
    state = Overlay(Prefixed(writes, partition))
    state.set(key, value)
    state.flush()


def test_a_flush_is_read_at_once_sent_in_its_order_with_faust_bytes_and_in_rocksdb_once_acknowledged(
        tmp_path: Path) -> None:
    producer = Producer()
    table = table_on(tmp_path, producer)
    writes = StateWrites.over(table)
    assert isinstance(writes, StateWrites)

    async def run() -> None:
        zero = Overlay(Prefixed(writes, 0))
        zero.set("w|1", {"n": 1})
        zero.set("d|x", {"id": "x"}, early=True)
        zero.set("wm", {"seq": 1})
        zero.flush()
        flush_one(writes, 3, "wm", {"seq": 9})
        # the next read of the batch sees it at once; RocksDB holds only what the changelog holds
        assert read(table, "0|w|1") is None and read(table, "3|wm") is None
        assert Overlay(Prefixed(writes, 3)).get("wm") == {"seq": 9} and Overlay(Prefixed(writes, 0)).get("wm") == {"seq": 1}
        assert Overlay(Prefixed(writes, 1)).get("wm") is None and "3|wm" in writes and "1|wm" not in writes
        with pytest.raises(KeyError):
            writes["1|wm"]
        settled = asyncio.ensure_future(writes.settle())
        await asyncio.sleep(0.01)
        assert not settled.done()  # not acknowledged yet
        assert [(key, partition) for _, key, _, partition, _ in producer.sent] == [
            (table.data._encode_key(k), p) for k, p in (("0|d|x", 0), ("0|w|1", 0), ("0|wm", 0), ("3|wm", 3))]  # noqa: SLF001
        assert {topic for topic, *_ in producer.sent} == {table.changelog_topic.get_topic_name()}
        assert producer.sent[1][2] == table.data._encode_value({"n": 1})  # noqa: SLF001 - the bytes faust restores from
        producer.ack()
        await settled
        assert read(table, "0|w|1") == {"n": 1} and read(table, "3|wm") == {"seq": 9}
        # faust's recovery starts after the last offset each partition's flush reached
        assert table.data.persisted_offset(SimpleNamespace(partition=0)) == 2
        assert table.data.persisted_offset(SimpleNamespace(partition=3)) == 0
        # a delete: gone locally, a tombstone on the changelog; deleting what is not there writes nothing
        zero = Overlay(Prefixed(writes, 0))
        zero.delete("w|1")
        zero.delete("never")
        zero.flush()
        assert writes.get("0|w|1") is None and read(table, "0|w|1") == {"n": 1}
        await asyncio.sleep(0.01)  # the table's sender runs
        assert producer.sent[-1][1:4] == (table.data._encode_key("0|w|1"), None, 0)  # noqa: SLF001
        assert len(producer.sent) == 5
        producer.ack()
        await writes.settle()
        assert table.data.persisted_offset(SimpleNamespace(partition=0)) == 3 and read(table, "0|w|1") is None

    asyncio.run(run())


def test_flushes_acknowledged_out_of_order_reach_rocksdb_in_their_order(tmp_path: Path) -> None:
    """Two partitions' acknowledgements come back independently: a later flush acknowledged first
    waits for the earlier one, so RocksDB never holds a later value under an earlier one."""
    producer = Producer()
    table = table_on(tmp_path, producer)
    writes = StateWrites.over(table)

    async def run() -> None:
        both = Overlay(Prefixed(writes, 0))
        both.set("k", 1)
        both.flush()
        flush_one(writes, 0, "k", 2)
        settled = asyncio.ensure_future(writes.settle())
        await asyncio.sleep(0.01)
        first, second = producer.sent[0][4], producer.sent[1][4]
        second.set_result(SimpleNamespace(offset=1))
        await asyncio.sleep(0.01)
        assert read(table, "0|k") is None and writes.get("0|k") == 2  # the second waits for the first
        first.set_result(SimpleNamespace(offset=0))
        await settled
        assert read(table, "0|k") == 2 and writes.get("0|k") == 2
        assert table.data.persisted_offset(SimpleNamespace(partition=0)) == 1

    asyncio.run(run())


def test_a_flush_a_rebalance_overtook_is_not_sent_nor_stored_and_fails_its_batch(tmp_path: Path) -> None:
    """faust revokes every partition without waiting for the agents: a batch begun before the
    rebalance must write nothing its partition's next owner could miss. What it sent before is in
    the changelog (faust flushes the producer as it revokes) and in RocksDB; what it had not sent
    is neither, reads stop seeing it, and its next write raises."""
    producer = Producer()
    table = table_on(tmp_path, producer)
    writes = StateWrites.over(table)

    async def run() -> None:
        writes.begin()
        flush_one(writes, 1, "a", "sent before")
        await asyncio.sleep(0.01)  # handed to the producer
        flush_one(writes, 1, "a", "overtaken")
        flush_one(writes, 1, "b", "overtaken")
        table.app.rebalancing_count += 1  # faust's on_rebalance_start, before the sender ran again
        assert writes.moved()
        with pytest.raises(Rebalanced):
            flush_one(writes, 1, "c", "written after")
        producer.ack()
        with pytest.raises(Rebalanced):
            await writes.settle()
        assert [key for _, key, *_ in producer.sent] == [table.data._encode_key("1|a")]  # noqa: SLF001
        assert read(table, "1|a") == writes.get("1|a") == "sent before"
        assert writes.get("1|b") is None and read(table, "1|b") is None
        # the next batch belongs to the new generation
        writes.begin()
        flush_one(writes, 1, "b", "after")
        await asyncio.sleep(0.01)
        producer.ack()
        await writes.settle()
        assert read(table, "1|b") == "after"
        assert table.data.persisted_offset(SimpleNamespace(partition=1)) == 1

    asyncio.run(run())


def test_a_rebalance_in_the_middle_of_a_flush_leaves_its_sent_prefix_in_the_changelog_and_rocksdb(
        tmp_path: Path) -> None:
    """The changelog holds a prefix of the flush order (what a crash leaves, stream/core/state.py),
    and RocksDB holds the same prefix, so a partition this worker keeps reads what its changelog says."""
    producer = Producer()
    table = table_on(tmp_path, producer)
    writes = StateWrites.over(table)
    sends = producer.send

    async def rebalancing_after_first(*args: Any) -> Any:
        ack = await sends(*args)
        table.app.rebalancing_count += 1
        return ack

    async def run() -> None:
        writes.begin()
        producer.send = rebalancing_after_first  # type: ignore[method-assign]
        state = Overlay(Prefixed(writes, 2))
        state.set("x", 1)
        state.set("y", 2)
        state.flush()
        await asyncio.sleep(0.01)
        producer.ack()
        with pytest.raises(Rebalanced):
            await writes.settle()
        assert len(producer.sent) == 1
        assert read(table, "2|x") == writes.get("2|x") == 1 and writes.get("2|y") is None
        assert table.data.persisted_offset(SimpleNamespace(partition=2)) == 0

    asyncio.run(run())


def test_a_changelog_write_the_broker_refuses_fails_the_batch_that_settles_it(tmp_path: Path) -> None:
    """The worker restarts and the batch, never released, is read again (stream/runtime/driver.py)."""
    producer = Producer(refuse=True)
    table = table_on(tmp_path, producer)
    writes = StateWrites.over(table)

    async def run() -> None:
        flush_one(writes, 1, "wm", {"seq": 1})
        with pytest.raises(ConnectionError):
            await writes.settle()
        assert table.data.persisted_offset(SimpleNamespace(partition=1)) is None
        # the broker back: no later flush is sent after one was lost, or the changelog would hold
        # a later flush without the one before it (not a prefix of the flush order)
        producer.refuse = False
        flush_one(writes, 1, "wm", {"seq": 2})
        with pytest.raises(ConnectionError):
            await writes.settle()
        assert producer.sent == []

    asyncio.run(run())


def test_a_flush_the_broker_refuses_after_taking_it_stops_every_later_flush(tmp_path: Path) -> None:
    producer = Producer()
    table = table_on(tmp_path, producer)
    writes = StateWrites.over(table)

    async def run() -> None:
        flush_one(writes, 2, "w|1", {"n": 1})
        await asyncio.sleep(0.01)
        for *_, ack in producer.sent:
            ack.set_exception(TimeoutError("delivery timed out"))
        with pytest.raises(TimeoutError):
            await writes.settle()
        flush_one(writes, 2, "wm", {"seq": 2})
        with pytest.raises(TimeoutError):
            await writes.settle()
        assert len(producer.sent) == 1 and table.data.persisted_offset(SimpleNamespace(partition=2)) is None

    asyncio.run(run())


def test_anything_but_a_faust_table_is_written_as_it_is(tmp_path: Path) -> None:
    plain: dict[str, Any] = {}
    assert StateWrites.over(plain) is plain
    assert Settings(home=tmp_path).kafka_partitions >= 1


def test_the_driver_abandons_a_batch_a_rebalance_overtook_and_goes_on_with_the_next(tmp_path: Path) -> None:
    """The batch is not released for commit (its records keep their reference: whoever holds the
    partition now reads it again), the stage forgets what it kept in memory, and the agent goes on."""
    from riskpulse.stream.runtime.driver import StageDriver
    from riskpulse.stream.runtime.watchdog import StallWatchdog
    from riskpulse.stream.stages.ports import Record, Stage

    producer = Producer()
    table = table_on(tmp_path, producer)

    class Message:
        def __init__(self, offset: int) -> None:
            self.topic, self.partition, self.offset, self.timestamp, self.refs = "in", 0, offset, None, 1

        def decref(self) -> None:
            self.refs -= 1

    class Event:
        def __init__(self, offset: int) -> None:
            self.message, self.value = Message(offset), b"{}"

    first, second = [Event(0), Event(1)], [Event(0), Event(1), Event(2)]

    class Stream:
        async def take_events(self, n: int, within: float) -> Any:
            yield first
            yield second

    class PassedOver:
        async def complete(self, events: list[Any], chunk: int, done: list[Any]) -> Any:
            yield events

        async def mark_done(self, done: list[Any]) -> None:
            pass

        def positions(self, events: list[Any]) -> dict[Any, int | None]:
            return {("in", 0): events[0].message.offset}

        def abandoned(self, before: dict[Any, int | None]) -> None:
            reread.append(before)

    reread: list[dict[Any, int | None]] = []

    class Settled:
        async def settle(self) -> None:
            pass

    class Counting(Stage):
        name, keyed = "counting", True
        out = Settled()
        abandoned = 0

        async def open(self, partition: int, state: Overlay) -> None:
            self.state = state

        async def process(self, records: list[Record]) -> None:
            self.state.set("seen", [r.offset for r in records])
            self.state.flush()
            if len(records) == 2:  # the rebalance begins while the first batch is processed
                table.app.rebalancing_count += 1

        def abandon(self) -> None:
            self.abandoned += 1

    async def run() -> None:
        stage = Counting()
        driver = StageDriver(stage, PassedOver(), StallWatchdog(60.0), table)  # type: ignore[arg-type]
        ack = asyncio.get_running_loop().call_later(0.05, producer.ack)
        await driver.run(Stream())
        ack.cancel()
        assert stage.abandoned == 1 and reread == [{("in", 0): 0}]  # read again from where it began
        assert [e.message.refs for e in first] == [1, 1] and [e.message.refs for e in second] == [0, 0, 0]
        assert [key for _, key, *_ in producer.sent] == [table.data._encode_key("0|seen")]  # noqa: SLF001
        assert read(table, "0|seen") == [0, 1, 2]

    asyncio.run(run())


def test_a_flush_acknowledged_after_its_batch_was_cancelled_is_stored_quietly(tmp_path: Path) -> None:
    """SIGTERM cancels an agent inside a batch, and with it the settle that awaited the flush; the
    broker's acknowledgement then comes in after all: the flush goes into RocksDB (it is on the
    changelog) and nothing is raised in the event loop's callback (seen in CI: an InvalidStateError
    traceback in the stopped worker's log)."""
    producer = Producer()
    table = table_on(tmp_path, producer)
    writes = StateWrites.over(table)
    errors: list[dict[str, Any]] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        writes.begin()
        flush_one(writes, 0, "k", "v")
        settling = asyncio.ensure_future(writes.settle())
        await asyncio.sleep(0.01)
        settling.cancel()
        await asyncio.sleep(0)
        producer.ack()
        await asyncio.sleep(0.01)
        assert read(table, "0|k") == "v" and table.data.persisted_offset(SimpleNamespace(partition=0)) == 0

    asyncio.run(run())
    assert errors == []
