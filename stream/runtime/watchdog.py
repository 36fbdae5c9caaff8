"""Detects partitions that have unread data but make no progress.

faust-streaming can leave a partition unfetched after a rebalance (upstream issue #629); the
worker then looks healthy while one partition's news waits forever. The watchdog notices and
the worker exits so its supervisor starts a fresh one; processing is idempotent, so a restart
costs time, never correctness.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator


class StallWatchdog:
    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.progress: dict[tuple[str, int], tuple[int, float]] = {}  # (topic, partition) -> (offset, when)
        self.busy: dict[str, float] = {}  # agent -> since when it is inside one batch
        self.held: set[tuple[str, int]] = set()  # the partitions of the last assignment

    def begin(self, agent: str, now: float | None = None) -> None:
        """``agent`` took a batch: it must finish it (its output sent) within ``stall_s``."""
        self.busy[agent] = time.time() if now is None else now

    def end(self, agent: str) -> None:
        self.busy.pop(agent, None)

    @contextmanager
    def batch(self, agent: str) -> Iterator[None]:
        """The span of one batch of ``agent`` (ended however it ends: done, raised or cancelled)."""
        self.begin(agent)
        try:
            yield
        finally:
            self.end(agent)

    def blocked(self, now: float) -> list[str]:
        """Agents inside one batch for longer than twice ``stall_s``: blocked on output, not waiting for input.

        Twice: a short broker outage (a rolling restart) legitimately holds output for a while, and
        the worker should ride it out rather than restart.

        Seen after a kill -9: the restarted worker's aggregate agent waited on a full producer
        buffer forever while its input was fully fetched, so no input-side check could see it.
        Read from this process's own state: nothing here asks the consumer thread.
        """
        return sorted(agent for agent, since in self.busy.items() if now - since > 2 * self.stall_s)

    def note(self, events: Iterable[Any], now: float | None = None) -> None:
        """Offsets the agents processed."""
        now = time.time() if now is None else now
        for event in events:
            self.advance((event.message.topic, event.message.partition), event.message.offset, now)

    def advance(self, key: tuple[str, int], offset: int, now: float) -> None:
        """A processed offset: progress."""
        if key not in self.progress or self.progress[key][0] < offset:
            self.progress[key] = (offset, now)

    def start_from(self, key: tuple[str, int], committed: int, now: float) -> None:
        """The group's committed offset for a partition: processing reached it, here or at the
        partition's previous owner. Where this worker has processed less (nothing yet since the
        partition came, or another worker moved it on meanwhile), it counts as progress from there.

        Never behind what this worker processed: judged from the committed offset alone, a worker
        that had processed past its last commit looked stalled once it caught up (seen: a worker
        restarted for a stall it did not have, right after a rebalance).
        """
        if key not in self.progress or self.progress[key][0] < committed - 1:
            self.progress[key] = (committed - 1, now)

    def assigned(self, keys: set[tuple[str, int]]) -> None:
        """A new assignment. A partition this worker did not hold just before may have been moved
        on, or left behind, by another member meanwhile: what this worker processed of it in an
        earlier ownership no longer says where it stands, and is forgotten (it starts again from
        the committed offset, :meth:`start_from`). These offsets judge movement only: what the
        heartbeat claims comes from delivered.py, which counts an offset once its outputs are sent."""
        self.progress = {key: value for key, value in self.progress.items() if key in keys and key in self.held}
        self.held = set(keys)

    def settle(self, now: float) -> None:
        """A rebalance or a table recovery ended: judge progress from now on, from the same offsets."""
        self.progress = {key: (offset, now) for key, (offset, _) in self.progress.items()}

    def stuck(self, highwaters: dict[tuple[str, int], int | None], now: float) -> list[tuple[str, int]]:
        """Partitions with records past the last processed offset and no progress for ``stall_s``.

        The caller also gives each partition's fetch position to :meth:`start_from`, so a
        partition that was never processed since the last rebalance is judged too.
        """
        out = []
        for key, highwater in highwaters.items():
            seen = self.progress.get(key)
            if seen is None or highwater is None:
                continue
            offset, when = seen
            if highwater - 1 > offset and now - when > self.stall_s:
                out.append(key)
        return out


class GroupWatch:
    """Partitions of the whole consumer group that have records waiting and a committed offset
    that does not move, whoever owns them.

    Each worker's :class:`StallWatchdog` judges the partitions assigned to it. A partition the
    group's assignment left to nobody, or whose owner cannot judge itself, is seen by none of them
    (a three-worker run once waited five minutes on such a partition, every worker healthy). The
    group's committed offsets, read on the watchdog's own client, show it from any member.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.seen: dict[tuple[str, int], tuple[int, float]] = {}  # key -> (committed, since when unchanged)

    def settle(self, now: float) -> None:
        """This worker was rebalancing or recovering: the group's partitions are judged afresh from now."""
        self.seen = {key: (committed, now) for key, (committed, _) in self.seen.items()}

    def stalled(self, committed: dict[tuple[str, int], int], ends: dict[tuple[str, int], int],
                now: float) -> list[tuple[str, int]]:
        """Partitions behind their end whose committed offset has not moved for ``limit_s``.

        ``committed``: the group's next offset to read per partition (-1: never committed)."""
        out = []
        for key, end in ends.items():
            offset = committed.get(key)
            if offset is None:
                continue
            before = self.seen.get(key)
            if before is None or before[0] != offset or end <= max(offset, 0):
                self.seen[key] = (offset, now)  # progress, or nothing waiting
            elif now - before[1] > self.limit_s:
                out.append(key)
        return sorted(out)


class CommitWatch:
    """This worker's partitions whose commit does not catch up with what was processed: faust's
    commit bookkeeping stuck on an offset it never saw acknowledged (seen: a partition's commit
    held at 284 of 618 for a minute after every record was processed), or crawling (seen: a
    commit moving one offset a second, 400 behind, stream/core/commits.py). Processing goes on;
    the commit's position is what a restart would re-read from. Said once per episode, with
    faust's bookkeeping, so its cause can be read from the log."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        # key -> (last offset processed when the episode's clock started, when): the commit must pass it
        self.since: dict[tuple[str, int], tuple[int, float]] = {}
        self.said: set[tuple[str, int]] = set()

    def settle(self) -> None:
        """A rebalance: faust's bookkeeping starts again from the group's commit."""
        self.since.clear()
        self.said.clear()

    def stuck(self, committed: dict[tuple[str, int], int | None], processed: dict[tuple[str, int], int],
              now: float) -> list[tuple[str, int]]:
        """Partitions newly found behind: whose commit has not, within ``limit_s``, passed the
        records processed when that time began. ``committed`` is the next offset to read,
        ``processed`` the last offset processed (in order, holes filled)."""
        out = []
        for key, done in processed.items():
            commit = committed.get(key)
            if commit is None or done < commit:  # nothing processed past the commit: nothing to commit
                self.since.pop(key, None)
                self.said.discard(key)
                continue
            before = self.since.get(key)
            if before is None or commit > before[0]:  # caught up with what was processed then: a new clock
                self.since[key] = (done, now)
                self.said.discard(key)
            elif now - before[1] >= self.limit_s and key not in self.said:
                self.said.add(key)
                out.append(key)
        return sorted(out)


def _awaited_frames(awaitable: Any) -> list[Any]:
    """Frames of a coroutine chain, outermost first, following what each one awaits."""
    frames = []
    seen = 0
    while awaitable is not None and seen < 64:
        seen += 1
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None) \
            or getattr(awaitable, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None) \
            or getattr(awaitable, "gi_yieldfrom", None)
    return frames


def task_stacks(frames: int = 4) -> list[str]:
    """Where each pending asyncio task of this process waits (its innermost ``frames`` frames, down
    the chain of awaits): logged when the worker exits for a stall, so the log says what it was
    stuck on."""
    out = []
    for task in asyncio.all_tasks():
        chain = _awaited_frames(task.get_coro())[-frames:]
        where = " <- ".join(f"{f.f_code.co_name}@{f.f_code.co_filename.rsplit('/', 1)[-1]}:{f.f_lineno}"
                            for f in reversed(chain))
        out.append(where or f"{task.get_name()}: not started")
    return sorted(out)


class RecoveryWatch:
    """A table recovery that reads nothing: its changelog partitions keep the same records left to
    read for ``limit_s`` (faust's recovery waits on events for a partition that its fetcher never
    delivers, "No event received for active tp ... since recovery start", seen after a member was
    killed; faust-streaming#155 reads alike). The recovering worker restarts itself; before, it sat
    until a peer's group watch (three times as long) restarted that peer instead."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._last: dict[Any, int] | None = None
        self._since = 0.0
        self._generation: int | None = None

    def reset(self) -> None:
        self._last = None

    def generation(self, rebalances: int) -> None:
        """The app's rebalance count: a recovery is judged afresh after every rebalance that begins."""
        if rebalances != self._generation:
            self._generation = rebalances
            self.reset()

    def stuck(self, remaining: dict[Any, int], now: float) -> list[Any]:
        """The changelog partitions with records left and no progress since ``limit_s`` ago."""
        left = {tp: n for tp, n in remaining.items() if n > 0}
        if left != self._last:
            self._last, self._since = left, now
            return []
        return sorted(left, key=str) if left and now - self._since >= self.limit_s else []

