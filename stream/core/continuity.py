"""Records a consumer passed over, seen from the offsets it delivers, and read again.

`news` is neither compacted nor written transactionally by riskpulse's producers, so while a
worker holds a partition, the offsets it is handed run on without holes from where it started:
a record may come again (a seek back to the last commit redelivers it, and the aggregator skips
what it already counted), but none may be passed over.

faust-streaming does pass over records. Its consumer drops every record below a "read offset"
it keeps per partition; a record in flight when a rebalance stops the flow still sets that read
offset, so when the partition comes back (a worker joined and left), the records from the
committed offset up to the stale read offset are dropped silently. faust then never commits past
them either (it only commits from the committed offset on), so the items would be lost until
the next restart. Seen here: a worker joining and leaving mid-stream lost about ten items, with
nothing logged. Related upstream reports: faust-streaming/faust#216, #221.

This module decides, per partition, from plain offsets:

- where the first record after an assignment must start: at the group's committed offset (a
  partition this worker kept starts where it left off);
- that a later offset is a gap, and what to do, from the broker's answers: **re-read** it from
  the first record still there (seek back; records already fetched past it are dropped until
  the re-read reaches it, so the aggregator still sees each partition in offset order), count
  what retention deleted as **lost** (an operator can replay it), and pass over offsets that hold
  no record (a third party's transaction markers).

The re-read must begin at exactly that record: faust has been seen handing over a record from
before the seek a second time, so anything else is treated as stale until then. A re-read that
never begins (its records deleted meanwhile) is given up after a timeout and counted as lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REREAD_TIMEOUT_S = 60.0  # a re-read that has not started by then is given up and counted as lost


@dataclass(frozen=True)
class Gap:
    partition: int
    first_missing: int
    next_seen: int

    @property
    def size(self) -> int:
        return self.next_seen - self.first_missing


@dataclass(frozen=True)
class Plan:
    """What to do about a gap: re-read from ``reread_from`` (None: nothing to re-read), and how many
    records before that are gone for good (``lost``, from ``gap.first_missing`` on)."""

    gap: Gap
    reread_from: int | None
    lost: int


STALE = "stale"  # a record fetched before a re-read began: dropped, it will come again in order


@dataclass
class OffsetContinuity:
    """Per input partition this worker holds, the next offset it expects."""

    expected: dict[int, int] = field(default_factory=dict)
    fresh: set[int] = field(default_factory=set)  # assigned, no record seen since
    rereading: dict[int, tuple[int, float]] = field(default_factory=dict)  # partition -> (first record to re-read, since)
    tried: set[tuple[int, int]] = field(default_factory=set)  # (partition, offset) re-reads already asked for

    def assigned(self, partitions: set[int]) -> None:
        """A new assignment (every rebalance sends the whole one): a partition that stayed keeps
        its expectation, one that left forgets it (another worker moved it on meanwhile), and each
        one's next record is judged against the committed offset if nothing else is known."""
        for partition in set(self.expected) - set(partitions):
            del self.expected[partition]
        for partition in set(self.rereading) - set(partitions):
            del self.rereading[partition]
        self.tried = {(p, o) for p, o in self.tried if p in partitions}
        self.fresh = set(partitions)

    def check(self, partition: int, offset: int, committed: int | None, now: float) -> Gap | str | None:
        """Judge one delivered record: None (process it), :data:`STALE` (drop it: a re-read of
        earlier offsets is under way and will deliver it again), or the :class:`Gap` before it
        (pass it to :meth:`plan`).

        ``committed``: the group's committed offset for the partition (the next record it must
        read), used for the first record after an assignment of a partition this worker did not
        hold; None where there is none."""
        if partition in self.rereading:
            start, since = self.rereading[partition]
            if offset == start:  # the re-read began, where it should: nothing lost
                del self.rereading[partition]
                self.tried.discard((partition, start))
            elif offset > start:
                if now - since < REREAD_TIMEOUT_S:
                    return STALE  # fetched before the seek (faust may even hand one over twice)
                del self.rereading[partition]  # never began (deleted meanwhile): judged as a gap below
        if partition in self.fresh:
            self.fresh.discard(partition)
            if partition not in self.expected and committed is not None and committed >= 0:
                self.expected[partition] = committed
        return self.seen(partition, offset)

    def seen(self, partition: int, offset: int) -> Gap | None:
        """The gap before ``offset``, if records were passed over; redeliveries are not gaps."""
        expected = self.expected.get(partition)
        if expected is None or offset + 1 > expected:
            self.expected[partition] = offset + 1
        if expected is not None and offset > expected:
            return Gap(partition, expected, offset)
        return None

    def plan(self, gap: Gap, log_start: int | None, first_record: int | None, now: float) -> Plan:
        """What to do about ``gap``, from the broker's answers: ``log_start``, the partition's first
        retained offset, and ``first_record``, the offset of the first record at or after the first
        missing one that still exists (None where unknown).

        Offsets before the log start were deleted: lost. Offsets that hold no record (a third
        party's transaction markers) are not lost. The rest is re-read from ``first_record``, once
        per position: a re-read that did not begin (the records went meanwhile) makes the whole
        gap count as lost the next time it is seen."""
        key = (gap.partition, gap.first_missing)
        if key in self.tried:
            self.tried.discard(key)
            return Plan(gap, None, gap.size)
        deleted = 0 if log_start is None else max(0, min(log_start, gap.next_seen) - gap.first_missing)
        start = first_record if first_record is not None else gap.first_missing + deleted
        if start >= gap.next_seen:
            return Plan(gap, None, deleted)
        self.tried.add((gap.partition, start))  # a gap seen again from there: the re-read failed
        self.rereading[gap.partition] = (start, now)
        self.expected[gap.partition] = start
        return Plan(gap, start, deleted)
