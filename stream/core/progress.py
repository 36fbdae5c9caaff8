"""Which progress markers a scorer sends at once, and which wait for the worker's tick.

After each batch a scorer tells every counting partition how far each news partition in it has
come (stream/stages/score.py, :class:`~.messages.Progress`): that is how each counting
partition's clock follows all of ``news`` (stream/core/watermark.py). Sent after every batch, at
low load (a batch of one item) that was one marker per counting partition per item, each read
and counted there, each followed by that partition's state write and a closed-through note to
every judge: about 21 records per item at 30 items/s, against 9 at full load
(docs/benchmarks.md, "Latency").

A counting partition acts on a news partition's event time only where it crosses a window's
close: windows close, and items become late, at ``n * window_s + lateness_s``; between two such
points nothing it decides changes. So a marker goes out at once when its event time crosses one
since the last told for its news partition (or nothing was told yet); otherwise it waits, merged
with the later ones, for the worker's tick, at most :data:`~.watermark.HEARTBEAT_S` away, which
also says how far each partition is read. A marker that waits is lost with a crash as any
unsent one is: the counting partitions then hear of that partition from its next marker or
heartbeat, so windows close that much later, and nothing is counted differently.
"""

from __future__ import annotations

import math
from typing import Iterable

from .messages import Progress


def closes_more(before: float | None, after: float | None, window_s: int, lateness_s: int) -> bool:
    """Whether moving from ``before`` to ``after`` passes a window's close (``n * window_s +
    lateness_s``). ``before`` None: nothing was told yet, so anything is news."""
    if after is None or not math.isfinite(after):
        return False
    if before is None or not math.isfinite(before):
        return True
    return math.floor((after - lateness_s) / window_s) > math.floor((before - lateness_s) / window_s)


class ProgressTeller:
    """One scorer's progress markers, per news partition (see the module doc)."""

    def __init__(self, window_s: int, lateness_s: int) -> None:
        self.window_s, self.lateness_s = window_s, lateness_s
        self._told: dict[int, float | None] = {}  # news partition -> latest event time told (None: none yet)
        self._pending: dict[int, Progress] = {}

    def after_batch(self, marker: Progress) -> Progress | None:
        """The marker to send now (merged with any waiting for the same partition), or None: it waits for :meth:`take_pending`."""
        partition = marker.source.partition
        waiting = self._pending.pop(partition, None)
        event = marker.event_time
        if waiting is not None and waiting.event_time is not None:
            event = waiting.event_time if event is None else max(event, waiting.event_time)
        merged = Progress(marker.source, event)
        told = self._told.get(partition)
        if partition not in self._told or closes_more(told, event, self.window_s, self.lateness_s):
            self._tell(partition, event)
            return merged
        self._pending[partition] = merged
        return None

    def take_pending(self, reading: Iterable[int]) -> list[Progress]:
        """The markers waiting for news partitions this worker still reads (``reading``), to send now;
        those of partitions it no longer reads are dropped (their new reader tells its own)."""
        reading = set(reading)
        out = [m for p, m in sorted(self._pending.items()) if p in reading]
        self._pending.clear()
        for marker in out:
            self._tell(marker.source.partition, marker.event_time)
        return out

    def _tell(self, partition: int, event: float | None) -> None:
        told = self._told.get(partition)
        self._told[partition] = event if told is None else told if event is None else max(told, event)
