"""Glue between the agents and stream/core/continuity.py: records faust passes over, on any
partition an agent reads (the inputs, and the outputs the sinks read back), are noticed, read on
a client of the worker's own and processed in place, and counted where the broker no longer
holds them.

The decisions are plain code in core/continuity.py; this module asks the broker (on a client of
its own, stream/runtime/broker_offsets.py), tells faust's commit bookkeeping that a filled-in hole is
done, and reports (metrics, logs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Collection, Iterable

from faust.types import TP

from .. import metrics
from .app import MAX_POLL_RECORDS
from .broker_offsets import BrokerOffsets
from ..core.continuity import DroppedAfterFetch, Gap, OffsetContinuity, in_offset_order
from .commits import mark_processed
from .fetch_state import partition_state

log = logging.getLogger(__name__)

PAGE = 500  # records read per request while filling a gap
FILL_DEADLINE_S = 120.0  # a broker that answers nothing for this long is an infrastructure fault


class BrokerUnavailable(RuntimeError):
    """Records faust passed over could not be read: the worker restarts (the batch is read again)."""


@dataclass(frozen=True)
class FilledMessage:
    """A record read on the worker's own client, shaped like the faust message the agents use."""

    topic: str
    partition: int
    offset: int
    timestamp: float | None  # seconds, as faust gives it
    key: bytes | None

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass(frozen=True)
class FilledEvent:
    message: FilledMessage
    value: bytes | None


def _event(record: Any) -> FilledEvent:
    ts = record.timestamp / 1000.0 if record.timestamp is not None and record.timestamp >= 0 else None
    return FilledEvent(FilledMessage(record.topic, record.partition, record.offset, ts, record.key), record.value)


def _name(gap: Gap) -> str:
    topic, partition = gap.partition  # type: ignore[misc]
    return f"{topic} partition {partition}"


async def _answer(ask: Any, what: str, gap: Gap) -> Any:
    """The broker's answer, asked again while it does not answer, up to :data:`FILL_DEADLINE_S`."""
    deadline = time.monotonic() + FILL_DEADLINE_S
    delay = 0.5
    while (answer := await ask()) is None:
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"the broker did not answer for {FILL_DEADLINE_S:.0f}s while reading {what} of "
                                    f"{_name(gap)} (offsets {gap.first_missing} to {gap.next_seen - 1}, passed over "
                                    "by the consumer); check the brokers")
        if delay == 0.5:
            log.warning("no answer from the broker while filling in records the consumer passed over; asking again",
                        extra={"partition": str(gap.partition), "first_missing": gap.first_missing, "what": what})
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    return answer


def delivery_may_wait(app: Any) -> bool:
    """Whether faust's consumer may be waiting to hand a record to an agent whose stream buffer is
    full. faust hands a fetch over record by record and, at a full buffer, waits for room before it
    hands over anything else, on any topic (faust-streaming/faust#53): every other partition's read
    offset stands still meanwhile, which is not a drop. A fetch holds at most ``MAX_POLL_RECORDS``
    records (app.py), so no buffer with room for that many can be the one it waits on. Seen under a
    news backlog: the sinks' input stood still for 3-4 s at a time behind a full news buffer, and
    the check sought it back twenty times a minute, reading each "hole" again."""
    for channel in app.topics:
        queue = getattr(channel, "_queue", None)  # faust's Channel builds its buffer on first use
        if queue is not None and queue.maxsize and queue.maxsize - queue.qsize() < MAX_POLL_RECORDS:
            return True
    return False


def fetch_position(consumer: Any, tp: Any) -> int | None:
    """aiokafka's position for ``tp`` in faust's consumer thread: the offset after the last record
    it gave faust (read without a call into that thread, as faust reads the highwater); None while
    it has none (just assigned, awaiting a reset) or the partition is not assigned there."""
    try:
        state = partition_state(consumer._thread, tp)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - not assigned (any more), or no consumer yet
        return None
    return state.position if state is not None and state.has_valid_position else None


class PassedOver:
    """One worker's bookkeeping of the partitions its agents read: which offsets it expects next,
    which holes it filled in, and the partitions whose last records faust dropped."""

    def __init__(self, app: Any, caught_up: Collection[str], broker_offsets: BrokerOffsets) -> None:
        self.app = app
        # the topics catch_up watches: those where no later record may come for a long while (news, the
        # sinks' topics; the internal topics carry a tick every second, which reveals any hole)
        self.caught_up = frozenset(caught_up)
        # asked on a client of its own (the stall check uses it too: it must not lean on the consumer it judges)
        self.broker_offsets = broker_offsets
        self.continuity = OffsetContinuity()  # keyed by (topic, partition): every topic an agent reads
        self.dropped = DroppedAfterFetch()
        self._asked: dict[tuple[str, int], int] = {}  # where each partition starts, asked of the broker since the assignment
        app.on_partitions_assigned.connect(self._on_assigned)

    async def _on_assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        self.continuity.assigned({(tp.topic, tp.partition) for tp in assigned})
        self._asked.clear()  # a new assignment: where each partition starts is asked afresh

    def positions(self, events: Iterable[Any]) -> dict[Any, int | None]:
        """Where the partitions of a batch stood before it (for :meth:`abandoned`)."""
        return self.continuity.positions({(e.message.topic, e.message.partition) for e in events})

    def abandoned(self, before: dict[Any, int | None]) -> None:
        """A batch was abandoned: whatever of it this worker still holds is read again from the
        group's commit (stream/core/continuity.py)."""
        self.continuity.abandoned(before)

    def committed(self, tp: Any) -> int | None:
        """The group's committed offset for ``tp`` as faust loaded it at assignment (no broker call).

        faust keeps it on its consumer (``_committed_offset``, set by its seek to the committed
        offsets after each rebalance); faust-streaming is pinned in pyproject.toml."""
        try:
            value = self.app.consumer._committed_offset.get(tp)  # noqa: SLF001
        except Exception:  # noqa: BLE001 - no consumer, or faust changed: judge from delivered offsets only
            return None
        return int(value) if isinstance(value, int) else None

    async def _fill(self, gap: Gap, done: list[tuple[TP, int, int]]) -> AsyncIterator[list[FilledEvent]]:
        """The records of ``gap`` the broker still holds, page by page; what it no longer holds is counted."""
        topic, partition = gap.partition  # type: ignore[misc]
        key = (topic, partition)
        labels = (topic, str(partition))
        starts = await _answer(lambda: self.broker_offsets.start([key]), "the log start", gap)
        plan = self.continuity.plan(gap, starts.get(key))
        lost = self.continuity.report_loss(plan)
        if lost:
            metrics.SKIPPED.labels(*labels).inc(len(lost))
            log.error("the consumer passed over records of %s, offsets %d to %d, and they can no longer be read "
                      "(deleted by retention): they were not processed; replay them from their source (riskpulse replay)",
                      _name(gap), lost.start, lost.stop - 1,
                      extra={"topic": topic, "partition": partition, "first_missing": lost.start,
                             "next_seen": lost.stop})
        done.append((TP(topic, partition), gap.first_missing, gap.next_seen - 1))
        if plan.fill_from is None:
            return
        # handled (counted in riskpulse_input_offsets_reread_total): routine after a rebalance, not a person's business
        log.info("the consumer passed over records of %s, offsets %d to %d (faust-streaming after a rebalance): "
                 "reading them on the worker's own client", _name(gap), plan.fill_from, gap.next_seen - 1,
                 extra={"topic": topic, "partition": partition, "fill_from": plan.fill_from, "next_seen": gap.next_seen})
        at = plan.fill_from
        while at < gap.next_seen:
            records = await _answer(lambda: self.broker_offsets.read(key, at, gap.next_seen, PAGE), "records", gap)
            if not records:
                return  # nothing more held before the record that revealed the gap (transaction markers)
            metrics.REREAD.labels(*labels).inc(len(records))
            yield [_event(r) for r in records]
            at = records[-1].offset + 1

    def _where(self, event: Any) -> tuple[tuple[str, int], int, int | None]:
        msg = event.message
        key = (msg.topic, msg.partition)
        known = self.committed(msg.tp)
        return key, msg.offset, known if known is not None else self._asked.get(key)

    async def _ask_committed(self, events: list[Any]) -> None:
        """Where a partition just assigned must start, for those faust has not loaded a committed
        offset for yet: asked of the broker (the group's commit; the log start where the group never
        committed). Without it the first record handed over defined the start, so a record faust
        skipped before it went unseen, was never processed, and held the group's commit there for
        good (seen once: a partition's commit stuck at the stopped worker's last while the next
        worker scored everything after it)."""
        keys = {(e.message.topic, e.message.partition) for e in events
                if (e.message.topic, e.message.partition) in self.continuity.fresh and self.committed(e.message.tp) is None}
        keys -= set(self._asked)
        if not keys:
            return
        found = await self.broker_offsets.committed(self.app.conf.id, keys, wait=True) or {}
        never = [key for key, offset in found.items() if offset < 0]
        starts = (await self.broker_offsets.start(never) or {}) if never else {}
        # never committed: the log start, or where this worker left off if earlier (start_without_commit)
        self._asked.update({key: self.continuity.start_without_commit(key, starts.get(key, -1)) if offset < 0 else offset
                            for key, offset in found.items()})

    async def complete(self, events: Iterable[Any], chunk: int, done: list[tuple[TP, int, int]]) -> AsyncIterator[list[Any]]:
        """The delivered batch with what faust passed over filled in before the record that revealed
        it, in chunks of at most ``chunk`` records. The holes filled in are added to ``done``: pass it
        to :func:`mark_done` once the batch's effects are written."""
        events = list(events)
        await self._ask_committed(events)
        async for out in in_offset_order(events, self.continuity, self._where, lambda gap: self._fill(gap, done), chunk):
            yield out

    async def mark_done(self, done: list[tuple[TP, int, int]]) -> None:
        """Tell faust's commit bookkeeping that filled-in offsets are processed (stream/runtime/commits.py).
        faust never acknowledged the records it passed over and would otherwise never commit past
        them; a batch left unfinished (the worker stopping) leaves them unmarked, so whoever holds
        the partition next reads them again."""
        consumer = self.app.consumer
        for tp, first, last in done:
            mark_processed(consumer, tp, first, last)

    async def catch_up(self, busy: Collection[str]) -> None:
        """Seek faust's consumer back to records it handed over and then dropped, with nothing after
        them to reveal the hole (core/continuity.py, :class:`DroppedAfterFetch`), on the topics named
        at construction. Called every second; acts on a topic only while the agent reading it is
        idle (``busy``: the topics whose agent is inside a batch) and the group settled, so no record
        fetched before the seek is still on its way to undo it. On the alerts topic such a record
        would otherwise wait for the next alert to be stored and its webhooks sent."""
        consumer = self.app.consumer
        if (consumer is None or self.app.rebalancing or not self.app.flow_control.is_active()
                or delivery_may_wait(self.app)):
            self.dropped.busy()
            return
        now = time.monotonic()
        try:
            tps = [tp for tp in consumer.assignment() if tp.topic in self.caught_up]
        except Exception:  # noqa: BLE001 - no assignment yet
            return
        for tp in tps:
            key = (tp.topic, tp.partition)
            if tp.topic in busy:
                self.dropped.forget(key)  # anything handed over may still be on its way to the agent
                continue
            expected = self.continuity.expected.get(key)
            try:
                read = consumer._read_offset.get(tp)  # noqa: SLF001 - faust-streaming is pinned
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - revoked meanwhile
                continue
            start = self.dropped.dropped(key, read, self.committed(tp) if expected is None else expected, highwater, now,
                                         fetched=fetch_position(consumer, tp))
            if start is None:
                continue
            if int(read) >= start:
                metrics.REREAD.labels(tp.topic, str(tp.partition)).inc(int(read) - start + 1)
                log.warning("the consumer dropped records of %s partition %d it had fetched, offsets %d to %d "
                            "(faust-streaming after a rebalance), and nothing after them came: reading them again "
                            "from %d", tp.topic, tp.partition, start, read, start,
                            extra={"topic": tp.topic, "partition": tp.partition, "reread_from": start,
                                   "read_offset": read})
            else:
                log.warning("the consumer hands over nothing of %s partition %d past offset %d while records wait "
                            "from %d (up to %s): seeking it there", tp.topic, tp.partition, read, start,
                            highwater - 1, extra={"topic": tp.topic, "partition": tp.partition, "reread_from": start,
                                                  "read_offset": read, "highwater": highwater})
            await consumer.seek(tp, start)
