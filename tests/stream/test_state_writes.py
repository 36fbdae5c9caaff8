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
from riskpulse.stream.runtime.state_writes import StateWrites


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


def test_a_flush_is_in_rocksdb_at_once_and_on_the_changelog_in_its_order_with_faust_bytes(tmp_path: Path) -> None:
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
        # in RocksDB before anything is acknowledged: the next read of the batch sees it
        assert read(table, "0|w|1") == {"n": 1} and read(table, "3|wm") == {"seq": 9}
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
        # faust's recovery starts after the last offset each partition's flush reached
        assert table.data.persisted_offset(SimpleNamespace(partition=0)) == 2
        assert table.data.persisted_offset(SimpleNamespace(partition=3)) == 0
        # a delete: gone locally, a tombstone on the changelog; deleting what is not there writes nothing
        zero = Overlay(Prefixed(writes, 0))
        zero.delete("w|1")
        zero.delete("never")
        zero.flush()
        assert read(table, "0|w|1") is None
        await asyncio.sleep(0.01)  # the table's sender runs
        assert producer.sent[-1][1:4] == (table.data._encode_key("0|w|1"), None, 0)  # noqa: SLF001
        assert len(producer.sent) == 5
        producer.ack()
        await writes.settle()
        assert table.data.persisted_offset(SimpleNamespace(partition=0)) == 3

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
