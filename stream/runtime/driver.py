"""How a stage runs as a faust agent: the one place that turns faust's event stream into the
batches stages are promised (stream/stages/ports.py), so no stage repeats, or can forget, it.

For each batch faust hands over:

- the batch is watched for stalls (``StallWatchdog``) and kept unacknowledged until processed:
  faust's ``take_events`` acknowledges a batch when the agent leaves it, however it leaves, and a
  worker stopping mid-batch then committed the unprocessed batch (seen: a worker that left its
  group mid-stream lost the item it was scoring). Every message holds one more reference from
  delivery (``HeldTopic`` in app.py), released here only when the batch is done, so a cancelled
  batch is read again by whoever holds the partition next (redelivery, which the stages absorb);
- what faust passed over is read on the worker's own client and put in place, so the stage sees
  each partition in offset order with no holes (passed_over.py), and the holes filled in are
  marked done for the commit only once the batch's effects are written (commits.py);
- the batch is released only once everything it caused is acknowledged (outputs.py, ``StagePort``),
  and only then do its offsets count as worked off for the heartbeat (delivered.py);
- a keyed stage is handed each partition's state: faust's table and its RocksDB store follow the
  current event, so one of that partition's events is made current first (in the agent's task
  only, ``make_current``: never the stream's, which faust's batching reads); the state
  is written a flush at a time (state_writes.py) and is on the changelog before the batch is released;
- a batch a rebalance overtakes (faust does not wait for the agents when it revokes partitions)
  writes no more state and is abandoned: released nowhere, it is read again from the group's
  commit by whoever holds its partitions now, and the stage forgets what it kept in memory of it.
"""

from __future__ import annotations

import logging
import weakref
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from faust.streams import _current_event

from .. import metrics
from ..core.state import Overlay, Prefixed
from ..stages.ports import Record, Stage
from .delivered import Delivered
from .passed_over import PassedOver
from .state_writes import Rebalanced, StateWrites
from .supervisor import exit_on_crash
from .watchdog import StallWatchdog

log = logging.getLogger(__name__)


def make_current(event: Any) -> None:
    """Make ``event`` the current event of the agent's own task, where faust's tables look for it
    (``faust.streams.current_event()``, a context variable), and nowhere else.

    faust's ``Stream._set_current_event`` also sets the stream's ``current_event`` attribute, which
    ``take_events`` reads from its background task after a batch is handed over: a record that
    arrived while the agent worked on a batch cut by time waits there, and is added to the next
    batch as whatever event the attribute holds once the agent is done, the last event the agent
    made current. The record was lost (its offset a hole the worker read again on its own client,
    once or twice a second under load) and the stale event came twice. Upstream: none found;
    ``take_events`` is faust-streaming/faust#392. tests/stream/test_driver.py reproduces it."""
    _current_event.set(weakref.ref(event))


def as_records(events: list[Any]) -> list[Record]:
    """faust's events (or those read on the worker's own client) as the records a stage reads."""
    return [Record(e.message.topic, e.message.partition, e.message.offset, e.message.timestamp, e.value)
            for e in events]


def by_partition(events: list[Any]) -> dict[int, list[Any]]:
    """A batch's events per partition, each in the order delivered."""
    groups: dict[int, list[Any]] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


class StageDriver:
    def __init__(self, stage: Stage, passed_over: PassedOver, watchdog: StallWatchdog, table: Any = None,
                 delivered: Delivered | None = None) -> None:
        if (stage.keyed or stage.stateful) and table is None:
            raise ValueError(f"stage {stage.name} keeps state: it needs its table")
        self.stage, self.passed_over, self.watchdog = stage, passed_over, watchdog
        self.delivered = Delivered() if delivered is None else delivered  # what the heartbeat may claim
        self.table = StateWrites.over(table)  # a flush at a time: to the changelog, then RocksDB

    @asynccontextmanager
    async def _processing(self, events: list[Any]) -> AsyncIterator[list[Any]]:
        """One batch: watched, held until processed; yields the list that collects the filled-in holes."""
        with self.watchdog.batch(self.stage.name):
            done: list[Any] = []
            if isinstance(self.table, StateWrites):
                self.table.begin()
            yield done  # no finally: a batch that did not finish keeps its references and its holes unmarked
            if isinstance(self.table, StateWrites):
                await self.table.settle()  # the batch's state is on the changelog
            await self.stage.out.settle()  # everything the batch caused is acknowledged by the broker
            await self.passed_over.mark_done(done)
            self.delivered.released(events)
            for event in events:
                event.message.decref()

    async def _chunks(self, events: list[Any], filled: list[Any]) -> AsyncIterator[list[Record]]:
        stage = self.stage
        async for chunk in self.passed_over.complete(events, stage.batch, filled):
            self._still_current()
            self.watchdog.begin(stage.name)  # each chunk is progress: a large filled-in gap is not a blocked agent
            if stage.watched:
                self.watchdog.note(chunk)
            yield as_records(chunk)

    async def run(self, stream: Any) -> None:
        """The agent's body."""
        stage = self.stage
        await stage.start()
        async for events in stream.take_events(stage.batch, within=stage.within_s):
            # only a stage with state is ever overtaken (its writes refused): no bookkeeping for the others
            before = self.passed_over.positions(events) if isinstance(self.table, StateWrites) else {}
            try:
                await self._batch(events)
            except Rebalanced as overtaken:
                stage.abandon()
                self.passed_over.abandoned(before)
                log.info("batch abandoned: %s; whoever holds its partitions now reads it again", overtaken,
                         extra={"stage": stage.name, "records": len(events)})
                metrics.BATCHES_ABANDONED.labels(stage.name).inc()
            stage.end_batch()

    async def _batch(self, events: list[Any]) -> None:
        stage = self.stage
        async with self._processing(events) as filled:
            if not stage.keyed:
                if stage.stateful:
                    self._give_state(events)
                async for records in self._chunks(events, filled):
                    await stage.process(records)
            else:
                for partition, group in by_partition(events).items():
                    make_current(group[-1])  # the table follows the current event
                    await stage.open(partition, Overlay(Prefixed(self.table, partition)))
                    async for records in self._chunks(group, filled):
                        await stage.process(records)
                    self._still_current()  # (a judge publishes its closes here)
                    await stage.close(partition)

    def _still_current(self) -> None:
        """A batch a rebalance overtook stops at the next chunk (its state writes would be refused anyway)."""
        if isinstance(self.table, StateWrites) and self.table.moved():
            raise Rebalanced(f"a rebalance began during a batch of stage {self.stage.name}")

    def _give_state(self, events: list[Any]) -> None:
        """A stateful stage reads each partition's state when it needs it, within the batch."""
        last = {e.message.partition: e for e in events}

        def state_of(partition: int) -> Overlay:
            make_current(last[partition])  # the table follows the current event
            return Overlay(Prefixed(self.table, partition))
        self.stage.state_of = state_of  # type: ignore[method-assign]

    def agent(self) -> Any:
        """The body as faust wants an agent: a function of the stream, named after the stage, that
        ends the worker (for its supervisor to restart) if the stage raises."""
        async def body(stream: Any) -> None:
            await self.run(stream)
        body.__name__ = body.__qualname__ = self.stage.name
        return exit_on_crash(body)
