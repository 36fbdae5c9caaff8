"""A stage's state writes, a flush at a time, to the table's changelog and then to RocksDB.

faust writes a table key by key: each ``table[key] = value`` is a RocksDB put, a changelog
record through ``Topic.send_soon`` (a pending and a future message in faust's producer buffer,
the key and value serialised a second time, sensors, a callback), and, when the broker
acknowledges it, a second RocksDB put of the changelog offset. Worse, faust's consumer stops
handing over records while that buffer holds more than 100 messages ("producer buffer full",
``Producer.buffer.wait_until_ebb``), so a stage that writes a few keys per item throttled every
agent's input (seen under load: the sinks' input handed over nothing for seconds, which the
dropped-records check took for records faust had dropped; docs/benchmarks.md).

The stages flush their state a batch at a time (stream/core/state.py ``Overlay.flush``, the keys in
the order they must survive a crash in). Here a flush's changelog records are sent in that order
on the app's producer (aiokafka's own send, as the outputs are: stream/runtime/outputs.py), by one
task per table so the order holds even if the agent is stopped meanwhile; once the broker has
acknowledged them, they go into RocksDB as one ``WriteBatch`` per partition together with the
partition's persisted changelog offset (where faust's recovery starts reading), flushes in their
order. Until then the table's reads see them from memory. So the local database holds exactly
what the changelog holds up to its persisted offset, never a write the changelog lacks: faust
recovers a partition that comes back to this worker from that offset on, and a local write the
changelog never got (faust writes RocksDB first) would have stayed there, mixed with what
another worker wrote meanwhile. The bytes are those faust writes (the store's own key and value
codecs), so faust's recovery, standbys and rebalances read them as before.

One writer per changelog partition. faust revokes every partition at the start of a rebalance
but does not wait for the agents (``stream_wait_empty`` is off: stream/runtime/app.py), so a
batch begun before it went on writing state the partition's next owner may already have
recovered: its changelog records landed after that owner's, and a later recovery mixed the two
(seen once in CI, 2026-12-07: the three-worker test's trends never matched the backtest). A
flush now carries the rebalance count its batch began under (``App.rebalancing_count``, which
faust bumps, in the consumer's thread, before it revokes anything); a flush whose rebalance has
passed is not sent (records sent before it are in the changelog before the revocation ends: faust
flushes the producer then), and a write in such a batch raises :class:`Rebalanced`. The driver
abandons that batch: nothing of it is committed, and whoever holds its partitions now reads it
again from the group's commit, as faust has it read again after every rebalance anyway
(stream/core/continuity.py). :meth:`settle` waits for every flush so far: the driver calls it
before it releases a batch's input for commit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Iterable

from faust.stores import rocksdb as faust_rocksdb

from ..core.state import write_all
from .outputs import retrieve_failure

_ABSENT = object()
Write = tuple[int, bytes, bytes | None]  # changelog partition, key, value (None: deleted)


class Rebalanced(Exception):
    """A rebalance began after the batch writing this state did: the batch is abandoned and read
    again by whoever holds its partitions now (see the module's docstring)."""


def _fail(done: "asyncio.Future[None]", failure: BaseException) -> None:
    if done.done():
        return
    if isinstance(failure, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(failure)


@dataclass
class _Flush:
    seq: int
    epoch: int  # the rebalance count its batch began under
    writes: list[Write]
    done: "asyncio.Future[None]"
    acks: list["asyncio.Future[Any]"] = field(default_factory=list)  # one per record sent, a prefix of ``writes``


class StateWrites(MutableMapping):  # type: ignore[type-arg]
    """A faust table over RocksDB, read and written by its key's partition (the prefix,
    ``PartitionedStateTable``), its writes a flush at a time (:meth:`write_batch`)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._queue: deque[_Flush] = deque()  # written, not sent yet
        self._sent: deque[_Flush] = deque()  # sent, not in RocksDB yet (in flush order)
        self._pending: dict[int, dict[bytes, tuple[int, bytes | None]]] = {}  # partition -> key -> (flush, value)
        self._seq = 0
        self._begun: int | None = None  # the rebalance count the current batch began under
        self._wake: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._unsettled: list[asyncio.Future[None]] = []
        # a flush the broker refused: no later flush is sent (what the changelog holds stays a
        # prefix of the flush order, stream/core/state.py); the batch's settle raises, the worker restarts
        self._failed: BaseException | None = None

    @staticmethod
    def over(table: Any) -> Any:
        """``table`` written this way where it is a faust table (anything else, a test's dict, as it is)."""
        return StateWrites(table) if hasattr(table, "changelog_topic") else table

    def _epoch(self) -> int:
        return int(self.table.app.rebalancing_count)

    def begin(self) -> None:
        """A batch begins: its writes belong to the group's current generation. Flushes still
        unsettled belong to an abandoned batch: they fail on their own, not this batch's settle."""
        self._begun = self._epoch()
        self._unsettled = []

    def moved(self) -> bool:
        """A rebalance began since the current batch did: nothing more of it may be written."""
        return self._begun is not None and self._begun != self._epoch()

    # -- reads: what is not in RocksDB yet, then the key's partition's database ----------------

    def get(self, key: str, default: Any = None) -> Any:
        """faust's ``table.get`` of a missing key goes through ``__missing__`` and a KeyError, and
        its sensors; the stages read a key or two per item, most of them new."""
        store = self.table.data
        if not isinstance(store, faust_rocksdb.Store):
            return self.table.get(key, default)
        encoded = store._encode_key(key)  # noqa: SLF001
        partition = self.table.partition_for_key(key)
        pending = self._pending.get(partition)
        written = pending.get(encoded) if pending else None
        if written is not None:
            value = written[1]
        else:
            value = store._db_for_partition(partition).get(encoded)  # noqa: SLF001
            if value is not None:
                store._key_index[encoded] = partition  # noqa: SLF001 - as faust's Store._get keeps it
        if value is None:
            return default
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
        """Write ``items`` in order (a value of None deletes its key): seen by the next read at once,
        on the changelog as soon as the event loop runs the table's sender, in RocksDB once acknowledged.
        Raises :class:`Rebalanced` in a batch a rebalance has overtaken."""
        store = self.table.data
        if not isinstance(store, faust_rocksdb.Store):  # another store (memory://): faust's own way
            write_all(self.table, list(items))
            return
        if self.moved():
            raise Rebalanced(f"a rebalance began during this batch of table {self.table.name}")
        writes: list[Write] = [(self.table.partition_for_key(key), store._encode_key(key),  # noqa: SLF001
                                None if value is None else store._encode_value(value))  # noqa: SLF001
                               for key, value in items]
        if not writes:
            return
        self._seq += 1
        for partition, key, value in writes:
            self._pending.setdefault(partition, {})[key] = (self._seq, value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(retrieve_failure)  # a flush nobody settles: its batch abandoned
        epoch = self._epoch() if self._begun is None else self._begun
        self._queue.append(_Flush(self._seq, epoch, writes, done))
        self._unsettled.append(done)
        self._start_sender()

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
                flush = self._queue.popleft()
                self._sent.append(flush)
                for partition, key, value in flush.writes:
                    # checked before each record: the rebalance begins in the consumer's thread
                    if self._failed is not None or self._epoch() != flush.epoch:
                        break
                    try:
                        flush.acks.append(await producer.send(topic, key, value, partition, None, None))
                    except Exception as exc:  # noqa: BLE001 - the flush's settle raises it: the worker restarts
                        self._failed = exc
                        break
                asyncio.gather(*flush.acks, return_exceptions=True).add_done_callback(self._store_acknowledged)

    def _store_acknowledged(self, _: Any = None) -> None:
        """Flushes the broker has answered, in their order: what it acknowledged goes into RocksDB
        with each partition's persisted changelog offset, then the flush is settled."""
        while self._sent and all(ack.done() for ack in self._sent[0].acks):
            flush = self._sent.popleft()
            for ack in flush.acks:
                failure = asyncio.CancelledError() if ack.cancelled() else ack.exception()
                if failure is not None and self._failed is None:
                    self._failed = failure
            if self._failed is None:  # (after a failure the worker restarts and recovers from the changelog)
                try:  # stored even if nobody waits for the flush any more (its batch cancelled at a stop)
                    self._write_local(flush.writes[:len(flush.acks)], [ack.result() for ack in flush.acks])
                except Exception as exc:  # noqa: BLE001 - raised where the flush is settled, not in a callback
                    self._failed = exc
            self._forget(flush)
            if self._failed is not None:
                _fail(flush.done, self._failed)
            elif len(flush.acks) < len(flush.writes):
                _fail(flush.done, Rebalanced(f"a rebalance began before table {self.table.name}'s flush was sent"))
            elif not flush.done.done():  # (cancelled with the agent that awaited it)
                flush.done.set_result(None)

    def _write_local(self, writes: list[Write], acked: list[Any]) -> None:
        store = self.table.data
        batches: dict[int, Any] = {}
        last: dict[int, int] = {}
        for (partition, key, value), meta in zip(writes, acked):
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = (faust_rocksdb.rocksdict.WriteBatch(raw_mode=True) if store.use_rocksdict
                                              else faust_rocksdb.rocksdb.WriteBatch())
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            store._key_index[key] = partition  # noqa: SLF001 - as faust's Store._set keeps it
            last[partition] = max(meta.offset, last.get(partition, -1))
        for partition, batch in batches.items():
            # flushes are stored in their order, so each partition's offset only grows
            batch.put(store.offset_key, str(last[partition]).encode())  # as Store.set_persisted_offset
            store._db_for_partition(partition).write(batch)  # noqa: SLF001

    def _forget(self, flush: _Flush) -> None:
        """The flush's values are in RocksDB now, or never will be: reads no longer take them from memory
        (unless a later flush wrote the key again)."""
        for partition, key, _ in flush.writes:
            pending = self._pending.get(partition)
            if pending is not None and pending.get(key, (None,))[0] == flush.seq:
                del pending[key]

    async def settle(self) -> None:
        """Every flush so far acknowledged by the broker and in RocksDB (raises a send's failure, or
        :class:`Rebalanced`)."""
        unsettled, self._unsettled = self._unsettled, []
        if unsettled:
            await asyncio.gather(*unsettled)
