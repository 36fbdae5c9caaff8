"""Records a consumer passed over, seen from the offsets it delivers, and filled in in order.

`news` is neither compacted nor written transactionally by riskpulse's producers, so while a
worker holds a partition, the offsets it is handed run on without holes from where it started:
a record may come again (a seek back to the last commit redelivers it, and the aggregator skips
what it already counted), but none may be passed over.

faust-streaming does pass over records. Its consumer drops every record below a "read offset"
it keeps per partition; a record in flight when a rebalance stops the flow still sets that read
offset, so when the partition comes back (a worker joined and left), the records from the
committed offset up to the stale read offset are dropped silently, and faust's commit, which
tolerates one missing offset at its head and treats jumps as gaps, then commits past them. Seen
here: a worker joining and leaving mid-stream lost about ten items, and a worker started after
another stopped mid-backlog was first handed the record seven past the committed offset, with
nothing logged. Related upstream reports: faust-streaming/faust#216, #221.

Seeking faust's consumer back to the missing records does not work reliably: records already
fetched past the gap are still handed over after the seek and move the read offset past it
again, so the re-read is dropped in turn (seen: a re-read that never began, and a worker whose
partitions made no progress until its stall check restarted it). The missing records are
instead read on a client of the worker's own and processed right where they belong, before the
record that revealed the gap, so each partition still reaches the aggregator in offset order.

This module decides, per partition, from plain offsets:

- where the first record after an assignment must start: at the group's committed offset (a
  partition this worker kept starts where it left off);
- that a later offset is a gap, and what to do about it from the broker's log start: **fill**
  it from the first offset still held (offsets there that hold no record, such as a third
  party's transaction markers, simply yield nothing), and count what retention deleted as
  **lost** (an operator can replay it);

and :func:`in_offset_order` walks a delivered batch with the gaps filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Hashable, Iterable, TypeVar

E = TypeVar("E")


@dataclass(frozen=True)
class Gap:
    partition: Hashable  # the worker keys partitions by (topic, partition): every input is checked
    first_missing: int
    next_seen: int

    @property
    def size(self) -> int:
        return self.next_seen - self.first_missing


@dataclass(frozen=True)
class Plan:
    """What to do about a gap: read ``[fill_from, gap.next_seen)`` from the broker and process it
    in place (None: nothing left to read), and how many offsets from ``gap.first_missing`` on are
    gone for good (``lost``: deleted before they could be read)."""

    gap: Gap
    fill_from: int | None
    lost: int


@dataclass
class OffsetContinuity:
    """Per input partition this worker holds, the next offset it expects."""

    expected: dict[Hashable, int] = field(default_factory=dict)
    fresh: set[Hashable] = field(default_factory=set)  # assigned, no record seen since
    lost_reported: dict[Hashable, int] = field(default_factory=dict)  # one past the last offset reported lost

    def assigned(self, partitions: set[Hashable]) -> None:
        """A new assignment (every rebalance sends the whole one): a partition that left forgets
        its expectation (another worker moved it on meanwhile), and each one's next record is
        judged against the group's committed offset (:meth:`check`)."""
        for partition in set(self.expected) - set(partitions):
            del self.expected[partition]
        self.fresh = set(partitions)

    def positions(self, partitions: Iterable[Hashable]) -> dict[Hashable, int | None]:
        """The next offset expected on each partition, before a batch: see :meth:`abandoned`."""
        return {partition: self.expected.get(partition) for partition in partitions}

    def abandoned(self, before: dict[Hashable, int | None]) -> None:
        """A batch was abandoned (a rebalance overtook it); ``before``: :meth:`positions` when it began.
        Nothing it judged was processed: each partition's next record is judged against the
        group's committed offset again, as after an assignment, and until one comes the worker
        expects the batch's first offset again (what :class:`DroppedAfterFetch` compares faust's
        read offset with), so what the batch held is read again here if the partition stayed."""
        for partition, offset in before.items():
            now = self.expected.get(partition)
            if now is None:
                continue  # moved away meanwhile (the assignment forgot it)
            if offset is None:
                del self.expected[partition]
            else:
                self.expected[partition] = min(offset, now)
        self.fresh |= set(before)

    def check(self, partition: Hashable, offset: int, committed: int | None) -> Gap | None:
        """Judge one delivered record: None (process it), or the :class:`Gap` before it (fill it
        in first, see :meth:`plan`).

        ``committed``: the group's committed offset for the partition (the next record it must
        read), or None where there is none. The first record after an assignment is judged
        against it even on a partition this worker kept: faust revokes every partition at a
        rebalance and forgets which offsets were processed since the last commit, so those
        records count for its commit only if they are handed over, or filled in, again. Judged
        from where this worker left off instead, a stale read offset that made faust drop them
        held the group's commit at that offset for good while everything after it was processed
        (seen: a worker started after another stopped mid-backlog, its commit stuck at 242 of 618).
        Without a committed offset, a kept partition goes on from where this worker left off."""
        if partition in self.fresh:
            self.fresh.discard(partition)
            if committed is not None and committed >= 0:
                self.expected[partition] = committed
        return self.seen(partition, offset)

    def seen(self, partition: Hashable, offset: int) -> Gap | None:
        """The gap before ``offset``, if records were passed over; redeliveries are not gaps."""
        expected = self.expected.get(partition)
        if expected is None or offset + 1 > expected:
            self.expected[partition] = offset + 1
        if expected is not None and offset > expected:
            return Gap(partition, expected, offset)
        return None

    def start_without_commit(self, partition: Hashable, log_start: int) -> int:
        """Where a partition the group never committed starts, for :meth:`check`: its log start
        (what the consumer resets to), or where this worker left off on it if that is earlier.

        A worker that kept the partition through a rebalance knows the records from where it left
        off up to the log start were never read here; deleted meanwhile, they are a gap to count,
        not a start to accept. Seen in a test loop (and the likely cause of one CI failure): a
        worker frozen past its session timeout before its first commit (a commit a second),
        retention meanwhile, and the twenty deleted records neither counted nor logged."""
        own = self.expected.get(partition)
        return log_start if own is None or log_start < 0 else min(own, log_start)

    def report_loss(self, plan: Plan) -> range:
        """The offsets ``plan`` finds lost that this worker has not reported yet.

        One loss is one fact, reported once: the same gap is judged again when the batch that
        revealed it is abandoned at a rebalance and read again from the group's commit before
        it (seen in a test loop: a worker evicted from its group reported twenty deleted records
        twice, half a second apart). Kept for the worker's life, whatever the assignment does."""
        first = plan.gap.first_missing
        end = first + plan.lost
        start = max(first, self.lost_reported.get(plan.gap.partition, first))
        if end <= start:
            return range(0)
        self.lost_reported[plan.gap.partition] = end
        return range(start, end)

    @staticmethod
    def plan(gap: Gap, log_start: int | None) -> Plan:
        """What to do about ``gap`` given the partition's first retained offset (None: unknown,
        read it all). Offsets before the log start were deleted: lost; the rest is filled in."""
        deleted = 0 if log_start is None else max(0, min(log_start, gap.next_seen) - gap.first_missing)
        start = gap.first_missing + deleted
        return Plan(gap, start if start < gap.next_seen else None, deleted)


async def in_offset_order(events: Iterable[E], continuity: OffsetContinuity,
                          where: Callable[[E], tuple[Hashable, int, int | None]],
                          fill: Callable[[Gap], AsyncIterator[list[E]]], chunk: int) -> AsyncIterator[list[E]]:
    """``events`` in delivery order, with what the consumer passed over before each one filled in
    just before it, in chunks of at most ``chunk`` (a large gap must not become one huge batch).

    ``where(event)``: its (partition, offset, committed offset of its partition or None);
    ``fill(gap)``: the records still held in the gap, page by page, in offset order."""
    out: list[E] = []
    for event in events:
        partition, offset, committed = where(event)
        gap = continuity.check(partition, offset, committed)
        if gap is not None:
            async for page in fill(gap):
                for filler in page:
                    out.append(filler)
                    if len(out) >= chunk:
                        yield out
                        out = []
        out.append(event)
        if len(out) >= chunk:
            yield out
            out = []
    if out:
        yield out


CATCH_UP_AFTER_S = 3.0  # a partition read past what was processed, quiet this long: the records were dropped


@dataclass
class DroppedAfterFetch:
    """Records faust fetched and then dropped with nothing after them to reveal the hole.

    faust skips (and acknowledges) records it had queued when a rebalance changes the consumer
    generation, and drops records below its read offset after a seek. When such records are the
    last of a partition for now, no later record arrives to show a gap (:meth:`OffsetContinuity.check`),
    and the partition sits with data nobody processes. Seen: a worker started after another was
    stopped mid-backlog went through three generations; faust's read offset and committed offset
    reached the end of both partitions (581, 617) while its scorer had processed up to about 210,
    until the stall check restarted the worker.

    Judged from faust's read offset (the last offset it handed over) against the next offset the
    worker expects, while the scorer is idle: unchanged for :data:`CATCH_UP_AFTER_S`, the records
    in between are not in flight but dropped, and the caller seeks the consumer back to them.

    The same holds with faust's read offset *behind* the next offset expected (the worker filled
    records in on its own client, or the group committed past what this consumer handed over) and
    records waiting: faust hands over nothing more while the scorer waits. Seen in CI's kill -9
    test: a restarted worker's news partitions at read offsets 102, 130 and 148, expected 112, 141
    and 159, highwaters near 290, and nothing delivered for 45 s until the stall check restarted
    the worker. The caller seeks the consumer to the next offset expected.
    """

    since: dict[Hashable, tuple[int, int, float]] = field(default_factory=dict)  # partition -> (read, expected, since)

    def dropped(self, partition: Hashable, read: int | None, expected: int | None, highwater: int | None,
                now: float, fetched: int | None = None) -> int | None:
        """The offset to read again from, once ``partition`` has been quiet with handed-over
        records unprocessed for long enough; None otherwise.

        ``read``: faust's read offset, the last offset it handed over, or after a seek the offset
        sought (so equal to ``expected`` can mean either: the partition's ``highwater`` says whether
        a record is there at all). ``fetched``: the Kafka client's position, the offset after the
        last record it gave faust (None: unknown). At or before ``expected``, the client has not
        yet given faust the records that wait, so none can have been dropped: they are not fetched
        yet. Seen under a burst on 2 cores: the sinks' topics waited 3-4 s for the fetcher behind
        the news backlog, and each wait was taken for a drop and sought back (news.scored, trends),
        which made faust drop what it had fetched and the worker read it again on its own client."""
        if (read is None or expected is None or highwater is None or highwater <= expected
                or (fetched is not None and fetched <= expected)):
            self.since.pop(partition, None)
            return None
        first = self.since.get(partition)
        if first is None or first[:2] != (read, expected):
            self.since[partition] = (read, expected, now)
            return None
        if now - first[2] < CATCH_UP_AFTER_S:
            return None
        del self.since[partition]
        return expected

    def busy(self) -> None:
        """The group is not settled: anything handed over may still be on its way to an agent."""
        self.since.clear()

    def forget(self, partition: Hashable) -> None:
        """The agent reading ``partition`` is working: what it was handed may still be on its way."""
        self.since.pop(partition, None)
