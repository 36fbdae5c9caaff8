"""Event-time progress per source partition of ``news``, and the watermark it allows.

All partitions of ``news`` meet in each counting partition's input (items of its stories, and
every scorer's progress markers), where they interleave in whatever order the scoring agents
finish: one partition's items can arrive minutes of event time behind another's. A single "highest time seen" watermark then declares the slower partitions'
items late. As in Flink and Kafka Streams, the watermark is instead the minimum over partitions
of how far each has come, so an item is late only if it is late on its own partition.

A partition that sends nothing for ``idle_s`` (wall clock) stops holding the watermark back, as
does one never seen once ``idle_s`` has passed since start, but never while its last record
said more records were behind it in ``news``: a partition whose scorer is busy elsewhere, or
being rebalanced, is slow, not idle (silence alone misjudged that: with two workers, a scorer
working through one partition's 500-record fetch left another partition quiet for seconds and
its items were counted late), and never once its scorer has gone quiet: idleness is the scorer's
word, "I have read everything", and it holds only while the scorer keeps saying it (heartbeats
every second). A scorer that dies says nothing more, while records keep arriving on its
partition for the next owner; had its last "caught up" stood, the watermark would have run past
them and they would have been counted late (seen: a worker killed under load, its partitions'
next records late at the worker that took them over). A partition never heard from since this
clock started (a counting partition restored on another worker, say) holds for a grace; after it,
only while the broker does not say records of it wait unscored (:attr:`PartitionClock.unclaimed`,
the scorers' group's commit against the partition's end): its next owner may spend longer than
the grace recovering its scorer's table before it says a word. When every partition is idle, event
time moves on with the wall clock, so windows close while the news is quiet. The watermark
never passes the wall clock plus the allowed skew, and never goes back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

NEVER = -math.inf
NEVER_HEARD_GRACE = 6  # x idle_s: how long a partition nobody reports on holds the watermark after start
HEARTBEAT_S = 1.0  # how often each scorer says how far it has read (stream/runtime/worker.py, the tick)
# heartbeats missed in a row: the scorer is gone (or rebalancing), its word no longer stands. Far
# below IDLE_S: a scorer killed right after its last heartbeat must not let its partition turn
# idle before its word goes stale (at 5, a partition whose last heartbeat came after its last
# item was idle for up to a second after its scorer died, and at a 30x replay the watermark ran
# a minute of event time past the records waiting for the next owner: counted late)
STALE_HEARTBEATS = 2


@dataclass
class PartitionClock:
    idle_s: float
    max_skew_s: float
    started_wall: float
    progress: dict[int, float] = field(default_factory=dict)  # partition -> highest event time (persisted)
    last_seen_wall: dict[int, float] = field(default_factory=dict)  # partition -> wall time of its last item
    expected: set[int] = field(default_factory=set)  # partitions that hold the watermark until idle
    behind: dict[int, int] = field(default_factory=dict)  # partition -> records its last record said were behind it
    # with ``confirm``, silence makes a partition idle only once its scorer has confirmed, after its
    # last item, that it had read everything it had been fetched (a heartbeat): silence alone
    # cannot tell "nothing more" from "its scorer is busy elsewhere or not fetching yet"
    confirm: bool = False
    confirmed: set[int] = field(default_factory=set)
    # partition -> wall time of its scorer's last word (an item or a heartbeat) since this start
    last_heard_wall: dict[int, float] = field(default_factory=dict)
    # partition -> records the scorers' group has not committed yet, as the broker last said (None:
    # not known). Judges only partitions never heard from: see :meth:`_idle`
    unclaimed: dict[int, int] | None = None

    @classmethod
    def restore(cls, saved: dict[str, Any] | None, idle_s: float, max_skew_s: float, now_wall: float,
                expected: Iterable[int] = (), confirm: bool = False) -> "PartitionClock":
        progress = {int(p): float(ts) for p, ts in ((saved or {}).get("progress") or {}).items()}
        return cls(idle_s, max_skew_s, now_wall, progress, {}, set(expected) | set(progress), confirm=confirm)

    def saved(self) -> dict[str, Any]:
        return {"progress": {str(p): ts for p, ts in sorted(self.progress.items())}}

    def observe(self, partition: int, event_ts: float, now_wall: float, behind: int = 0) -> None:
        """An item of ``partition`` dated ``event_ts`` arrived (bounded by the clock: one bad date cannot run ahead).

        ``behind``: how many records of the partition were still unread when it was sent.
        """
        bounded = min(event_ts, now_wall + self.max_skew_s)
        if bounded > self.progress.get(partition, NEVER):
            self.progress[partition] = bounded
        self.last_seen_wall[partition] = now_wall
        self.behind[partition] = max(0, int(behind))
        self.expected.add(partition)
        self.last_heard_wall[partition] = now_wall
        self.confirmed.discard(partition)

    def heard(self, partition: int, now_wall: float, behind: int = 0) -> None:
        """Word from ``partition``'s scorer without an item (a heartbeat, or its records were
        dead-lettered): how many records it still has to read. Does not reset its silence."""
        self.behind[partition] = max(0, int(behind))
        self.expected.add(partition)
        self.last_heard_wall[partition] = now_wall
        if self.behind[partition] == 0:
            self.confirmed.add(partition)
        else:
            self.confirmed.discard(partition)

    def clamp_to(self, limit: float) -> list[int]:
        """Pull progress found beyond ``limit`` back to it (a repaired state); returns the partitions moved."""
        moved = [p for p, ts in self.progress.items() if ts > limit]
        for p in moved:
            self.progress[p] = limit
        return moved

    def _idle(self, partition: int, now_wall: float) -> bool:
        if self.behind.get(partition, 0) > 0:
            return False  # more records are on their way: slow, not idle
        if self.confirm:
            if partition not in self.last_heard_wall:
                # a partition that exists is heard from within seconds (heartbeats); one that is
                # not (configured but absent, or nobody scores it) stops holding after a grace, but
                # not while the broker says its records wait unscored: its owner may still be
                # recovering its table (no heartbeat meanwhile: stream/runtime/worker.py), longer
                # than any grace, and the watermark must not run past what it will send
                if now_wall - self.started_wall < NEVER_HEARD_GRACE * self.idle_s:
                    return False
                return not (self.unclaimed is not None and self.unclaimed.get(partition, 0) > 0)
            if partition not in self.confirmed:
                return False
            if now_wall - self.last_heard_wall[partition] > STALE_HEARTBEATS * HEARTBEAT_S:
                return False  # its scorer has gone quiet: its "caught up" no longer stands
        return now_wall - self.last_seen_wall.get(partition, self.started_wall) >= self.idle_s

    def watermark(self, now_wall: float) -> float:
        """The event time up to which every partition has delivered (see module docstring)."""
        active = [p for p in self.expected if not self._idle(p, now_wall)]
        if active:
            wm = min(self.progress.get(p, NEVER) for p in active)
        elif self.progress:
            last_wall = max(self.last_seen_wall.values(), default=self.started_wall)
            wm = max(self.progress.values()) + (now_wall - last_wall)
        else:
            wm = NEVER
        return min(wm, now_wall + self.max_skew_s)
