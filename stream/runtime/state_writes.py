"""A stage's state writes, a flush at a time, straight to RocksDB and the table's changelog.

faust writes a table key by key: each ``table[key] = value`` is a RocksDB put, a changelog
record through ``Topic.send_soon`` (a pending and a future message in faust's producer buffer,
the key and value serialised a second time, sensors, a callback), and, when the broker
acknowledges it, a second RocksDB put of the changelog offset. Worse, faust's consumer stops
handing over records while that buffer holds more than 100 messages ("producer buffer full",
``Producer.buffer.wait_until_ebb``), so a stage that writes a few keys per item throttled every
agent's input (seen under load: the sinks' input handed over nothing for seconds, which the
dropped-records check took for records faust had dropped; docs/benchmarks.md).

The stages flush their state a batch at a time (stream/core/state.py ``Overlay.flush``, the keys in
the order they must survive a crash in); here a flush is one RocksDB ``WriteBatch`` per
partition, its changelog records are sent in the same order on the app's producer (aiokafka's own
send, as the outputs are: stream/runtime/outputs.py), by one task per table so the order holds
even if the agent is stopped meanwhile, and each partition's persisted changelog offset is written
once, when the flush is acknowledged. The bytes are those faust writes (the store's own key and
value codecs), so faust's recovery, standbys and rebalances read them as before. :meth:`settle`
waits for every flush so far: the driver calls it before it releases a batch's input for commit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, MutableMapping
from typing import Any, Iterable

from faust.stores import rocksdb as faust_rocksdb
from faust.types import TP

from ..core.state import write_all
from .outputs import retrieve_failure

_ABSENT = object()
Write = tuple[int, bytes, bytes | None]  # changelog partition, key, value (None: deleted)


def _fail(done: "asyncio.Future[None]", failure: BaseException) -> None:
    if done.done():
        return
    if isinstance(failure, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(failure)


class StateWrites(MutableMapping):  # type: ignore[type-arg]
    """A faust table over RocksDB, read and written by its key's partition (the prefix,
    ``PartitionedStateTable``), its writes a flush at a time (:meth:`write_batch`)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._queue: deque[tuple[list[Write], asyncio.Future[None]]] = deque()
        self._wake: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._unsettled: list[asyncio.Future[None]] = []
        self._persisted: dict[int, int] = {}  # changelog partition -> offset last written as persisted
        # a flush the broker refused: no later flush is sent (what the changelog holds stays a
        # prefix of the flush order, stream/core/state.py); the batch's settle raises, the worker restarts
        self._failed: BaseException | None = None

    @staticmethod
    def over(table: Any) -> Any:
        """``table`` written this way where it is a faust table (anything else, a test's dict, as it is)."""
        return StateWrites(table) if hasattr(table, "changelog_topic") else table

    # -- reads: straight from the key's partition's database too -------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """faust's ``table.get`` of a missing key goes through ``__missing__`` and a KeyError, and
        its sensors; the stages read a key or two per item, most of them new."""
        store = self.table.data
        if not isinstance(store, faust_rocksdb.Store):
            return self.table.get(key, default)
        encoded = store._encode_key(key)  # noqa: SLF001
        partition = self.table.partition_for_key(key)
        value = store._db_for_partition(partition).get(encoded)  # noqa: SLF001
        if value is None:
            return default
        store._key_index[encoded] = partition  # noqa: SLF001 - as faust's Store._get keeps it
        return store._decode_value(value)  # noqa: SLF001

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _ABSENT) is not _ABSENT

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a stage's state is not iterated")

    def __len__(self) -> int:
        raise TypeError("a stage's state is not counted")

    # -- writes --------------------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        self.write_batch([(key, value)])

    def __delitem__(self, key: str) -> None:
        self.write_batch([(key, None)])

    def write_batch(self, items: Iterable[tuple[str, Any]]) -> None:
        """Write ``items`` in order (a value of None deletes its key): in RocksDB now, so the next
        read sees them, and on the changelog as soon as the event loop runs the table's sender."""
        store = self.table.data
        if not isinstance(store, faust_rocksdb.Store):  # another store (memory://): faust's own way
            write_all(self.table, list(items))
            return
        writes: list[Write] = [(self.table.partition_for_key(key), store._encode_key(key),  # noqa: SLF001
                                None if value is None else store._encode_value(value))  # noqa: SLF001
                               for key, value in items]
        if not writes:
            return
        self._write_local(store, writes)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(retrieve_failure)  # a flush nobody settles: its batch abandoned at a stop
        self._queue.append((writes, done))
        self._unsettled.append(done)
        self._start_sender()

    @staticmethod
    def _write_local(store: Any, writes: list[Write]) -> None:
        batches: dict[int, Any] = {}
        for partition, key, value in writes:
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = (faust_rocksdb.rocksdict.WriteBatch(raw_mode=True) if store.use_rocksdict
                                              else faust_rocksdb.rocksdb.WriteBatch())
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            store._key_index[key] = partition  # noqa: SLF001 - as faust's Store._set keeps it
        for partition, batch in batches.items():
            store._db_for_partition(partition).write(batch)  # noqa: SLF001

    def _start_sender(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_forever(),
                                                                  name=f"state-writes-{self.table.name}")

    async def _send_forever(self) -> None:
        assert self._wake is not None
        producer = self.table.app.producer
        topic = self.table.changelog_topic.get_topic_name()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                writes, done = self._queue.popleft()
                if self._failed is not None:
                    _fail(done, self._failed)
                    continue
                try:
                    acks = [await producer.send(topic, key, value, partition, None, None)
                            for partition, key, value in writes]
                except Exception as exc:  # noqa: BLE001 - the flush's settle raises it: the worker restarts
                    self._failed = exc
                    _fail(done, exc)
                    continue
                asyncio.gather(*acks).add_done_callback(
                    lambda acked, writes=writes, done=done: self._acknowledged(topic, writes, acked, done))

    def _acknowledged(self, topic: str, writes: list[Write], acked: "asyncio.Future[list[Any]]",
                      done: asyncio.Future[None]) -> None:
        """The broker has every record of a flush (or refused one): each partition's persisted
        changelog offset (where faust's recovery starts reading), then the flush is settled."""
        if done.done():
            return
        failure = asyncio.CancelledError() if acked.cancelled() else acked.exception()
        if failure is not None:
            self._failed = failure
            _fail(done, failure)
            return
        last: dict[int, int] = {}
        for (partition, _, _), meta in zip(writes, acked.result()):
            last[partition] = max(meta.offset, last.get(partition, -1))
        store = self.table.data
        for partition, offset in last.items():
            if offset > self._persisted.get(partition, -1):  # flushes' acknowledgements may complete out of order
                self._persisted[partition] = offset
                store.set_persisted_offset(TP(topic, partition), offset)
        done.set_result(None)

    async def settle(self) -> None:
        """Every flush so far acknowledged by the broker (raises a send's failure)."""
        unsettled, self._unsettled = self._unsettled, []
        if unsettled:
            await asyncio.gather(*unsettled)
