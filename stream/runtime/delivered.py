"""How far each partition's records have been worked off, outputs acknowledged: what a scorer's
heartbeat may claim.

The heartbeat (worker.py, ``tick``) tells every counting partition where its scorer stands on each
news partition it reads, and "nothing behind" from it lets that partition stop holding the
watermark once it has been quiet (stream/core/watermark.py): windows then close without it. So it
may claim only records whose items are already on their way to the counting partitions, ahead of
the heartbeat itself. The stall watchdog's offsets say something else: a partition is moving. They
advance when a chunk is handed to its stage, before its items are scored and sent, and they
outlive a rebalance after which faust reads every assigned partition again from its committed
offset (a batch that a rebalance overtook is abandoned, its items never sent, and read again).
Claimed from them, a partition could look read to its end while its last items were still to be
sent: once the news went quiet, its windows closed before those items came, and they were counted
late. That is the shape of the three-worker test's rare failures (the last minutes of event time
short, every item on news.scored) after a rebalance mid-stream.

Here an offset counts only once the batch that held it is released: every output it caused
acknowledged by the broker (driver.py). After each assignment, where a partition stands is its
committed offset again, until its records are worked off anew.
"""

from __future__ import annotations

from typing import Any, Iterable


class Delivered:
    def __init__(self) -> None:
        self._last: dict[tuple[str, int], int] = {}  # (topic, partition) -> last offset worked off

    def released(self, events: Iterable[Any]) -> None:
        """A batch's outputs are acknowledged: its offsets are worked off."""
        last = self._last
        for event in events:
            message = event.message
            key = (message.topic, message.partition)
            if last.get(key, -1) < message.offset:
                last[key] = message.offset

    def assigned(self) -> None:
        """A new assignment: faust reads every assigned partition again from its committed offset,
        so nothing worked off before it says where this worker stands now. (A batch released after
        it still counts: its outputs were sent, and the partition's next records come after them.)"""
        self._last.clear()

    def position(self, key: tuple[str, int], committed: int | None) -> int | None:
        """The last offset of ``key`` known worked off: by this worker since the assignment, or, as the
        group's committed offset says, before it. None where neither is known."""
        mine = self._last.get(key)
        before = committed - 1 if committed is not None else None
        if mine is None:
            return before
        return mine if before is None else max(mine, before)
