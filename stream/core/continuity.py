"""Records a consumer passed over, seen from the offsets it delivers.

`news` is neither compacted nor written transactionally by riskpulse's producers, so while a
worker keeps a partition, the offsets it is handed run on without holes: a record may come
again (a seek back to the last commit redelivers it, and the aggregator skips what it already
counted), but none may be passed over. faust-streaming has passed over records it had prefetched
when a rebalance let a worker keep its partitions (faust-streaming/faust#216, #221; seen here
after a crashed worker rejoined). Nothing else would notice: the items are simply never scored,
and their windows close without them. This makes it loud: the gap is counted and logged with
the partition and offsets, so an operator can replay them (`riskpulse replay` or a consumer-group
reset). Gaps from a third party's transactional producer (one offset per commit marker) are
counted too; the log line says how to tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Gap:
    partition: int
    first_missing: int
    next_seen: int

    @property
    def size(self) -> int:
        return self.next_seen - self.first_missing


@dataclass
class OffsetContinuity:
    """Per input partition this worker holds, the next offset it expects."""

    expected: dict[int, int] = field(default_factory=dict)

    def assigned(self, partitions: set[int]) -> None:
        """A new assignment (every rebalance sends the whole one): a partition that stayed keeps
        its expectation, one that left forgets it (another worker moved it on meanwhile)."""
        for partition in set(self.expected) - set(partitions):
            del self.expected[partition]

    def seen(self, partition: int, offset: int) -> Gap | None:
        """The gap before ``offset``, if records were passed over; redeliveries are not gaps."""
        expected = self.expected.get(partition)
        if expected is None or offset + 1 > expected:
            self.expected[partition] = offset + 1
        if expected is not None and offset > expected:
            return Gap(partition, expected, offset)
        return None
