"""The worker's watches over its own progress, run every few seconds: a partition with data and
no progress (faust-streaming#629, after a rebalance), an agent blocked inside a batch, a group
partition nobody commits past, a commit that does not follow processing, and a rebalance or
table recovery that never ends. The decisions are plain code (watchdog.py); this module gathers
what they judge and acts: an exit for the supervisor to restart the worker (state is idempotent),
or, for a lagging commit, a log line and a count.

Judged from this process's own records (processed offsets, faust's assignment and committed
offsets) and from offsets asked on a separate client: nothing here calls into faust's consumer
thread, so a wedged one is seen as what it is, a partition without progress. The diagnostics
read faust's and aiokafka's private state (both pinned: versions.py) and never fail the exit they explain.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from .. import metrics
from .broker_offsets import BrokerOffsets
from .fetch_state import partition_state
from .passed_over import PassedOver
from .supervisor import RESTART
from .watchdog import CommitWatch, GroupWatch, RecoveryWatch, StallWatchdog, task_stacks

log = logging.getLogger("riskpulse.stream.runtime")


class Watches:
    def __init__(self, app: Any, inputs: list[str], partitions: int, stall_s: float, watchdog: StallWatchdog,
                 passed_over: PassedOver, broker_offsets: BrokerOffsets) -> None:
        self.app, self.inputs, self.partitions, self.stall_s = app, inputs, partitions, stall_s
        self.watchdog, self.passed_over, self.broker_offsets = watchdog, passed_over, broker_offsets
        self.group_watch = GroupWatch(limit_s=3 * stall_s)  # owners judge their own within stall_s
        self.commit_watch = CommitWatch(limit_s=stall_s)
        self.recovery_watch = RecoveryWatch(limit_s=stall_s)
        self.ends: dict[tuple[str, int], int] = {}  # end offsets at the last check (broker's answer)
        # per input topic and partition, records the group has not committed (its commit, or the log
        # start where it never committed, against the end), at the last check; None: not known since
        # the last assignment. The counting stage's watermark reads the news topic's (stages/count.py)
        self.unclaimed: dict[str, dict[int, int]] | None = None
        self._settling_since: float | None = None

    async def check(self) -> None:
        app, watchdog, stall_s = self.app, self.watchdog, self.stall_s
        now = time.time()
        blocked = watchdog.blocked(now)
        if blocked:  # inside one batch for stall_s: waiting on output that never drains
            log.error("agents blocked inside a batch; exiting so the supervisor restarts the worker (state is idempotent)",
                      extra={"agents": blocked, "stall_s": stall_s, "tasks": task_stacks()})
            os._exit(RESTART)
        if app.rebalancing or app.consumer is None or app.tables.recovery.in_recovery:
            watchdog.settle(now)  # judge afresh once the group and the tables have settled
            self.group_watch.settle(now)
            self.commit_watch.settle()
            if self._settling_since is None:
                self._settling_since = now
            if now - self._settling_since > 4 * stall_s:  # a recovery that never ends (seen once)
                log.error("stuck rebalancing or recovering; exiting so the supervisor restarts the worker")
                os._exit(RESTART)
            recovery = app.tables.recovery
            # judged while faust recovers, which is inside its rebalance: ``app.rebalancing`` stays
            # set until the recovery ends (until 2026-12-07 this waited for the flag to clear, so
            # it never judged anything, and a recovery stuck for minutes waited for a peer's group
            # watch); judged afresh whenever another rebalance begins
            self.recovery_watch.generation(app.rebalancing_count)
            if recovery.in_recovery:
                try:
                    remaining = dict(recovery.active_remaining())  # faust's own bookkeeping (pinned: versions.py)
                except Exception:  # noqa: BLE001 - no judgement without it
                    remaining = {}
                idle = self.recovery_watch.stuck(remaining, now)
                if idle:
                    log.error("table recovery reads nothing; exiting so the supervisor restarts the worker "
                              "(state is idempotent)", extra={"changelogs": [f"{tp.topic}:{tp.partition}" for tp in idle],
                                                              "stall_s": stall_s})
                    os._exit(RESTART)
            return
        self._settling_since = None
        self.recovery_watch.reset()
        group_keys = [(topic, p) for topic in self.inputs for p in range(self.partitions)]
        tps = [tp for tp in app.assignor.assigned_actives() if tp.topic in self.inputs]  # faust's own record
        ends = await self.broker_offsets.end(group_keys)
        if ends is None:  # broker unreachable (or slow): nothing to judge until it answers
            watchdog.settle(now)
            self.group_watch.settle(now)
            return
        mine = {(tp.topic, tp.partition) for tp in tps}
        group_committed = await self._check_group(ends, mine, now)
        if group_committed is not None:
            await self._note_unclaimed(ends, group_committed)
        if not tps:
            return
        ends = {key: end for key, end in ends.items() if key in mine}  # below: this worker's own partitions
        # where processing stands at least: the committed offset, or for a group that never committed
        # one, the log start (consumer_auto_offset_reset="earliest")
        starts = {(tp.topic, tp.partition): self.passed_over.committed(tp) for tp in tps}
        if group_committed is not None:  # judged from what the broker holds: faust counts a failed commit as made
            self._check_commits(tps, {key: group_committed.get(key) for key in starts}, now)
        unknown = [key for key, offset in starts.items() if offset is None and key not in watchdog.progress]
        if unknown:
            starts.update(await self.broker_offsets.start(unknown) or {})
        for key, offset in starts.items():
            if offset is not None:
                watchdog.start_from(key, offset, now)
        for tp in tps:
            key = (tp.topic, tp.partition)
            if key in watchdog.progress and key in ends:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, ends[key] - watchdog.progress[key][0] - 1))
        self.ends = {key: end for key, end in ends.items() if end is not None}
        stuck = watchdog.stuck(ends, now)
        if stuck:
            log.error("partitions stalled; exiting so the supervisor restarts the worker (state is idempotent)",
                      extra={"stalled": stuck, "tasks": task_stacks(), "consumer": self._consumer_state(tps)})
            os._exit(RESTART)

    def assigned(self) -> None:
        """A new assignment: what the group had not committed is asked afresh (until then, not known)."""
        self.unclaimed = None

    async def _note_unclaimed(self, ends: dict[tuple[str, int], int],
                              committed: dict[tuple[str, int], int | None]) -> None:
        """What the group has not committed of each input partition (see :attr:`unclaimed`); a
        question the broker does not answer leaves the last answer standing."""
        never = [key for key, end in ends.items() if end is not None and committed.get(key) is None]
        starts = await self.broker_offsets.start(never) if never else {}
        if starts is None:
            return
        unclaimed: dict[str, dict[int, int]] = {}
        for (topic, partition), end in ends.items():
            at = committed.get((topic, partition))
            if at is None:
                at = starts.get((topic, partition))
            if end is not None and at is not None:
                unclaimed.setdefault(topic, {})[partition] = max(0, end - at)
        self.unclaimed = unclaimed

    def lag(self) -> int:
        """Records behind on this worker's partitions, at the last check."""
        progress = self.watchdog.progress
        return sum(max(0, end - progress[key][0] - 1) for key, end in self.ends.items() if key in progress)

    def stalling(self, now: float) -> list[str]:
        """Partitions with data waiting and no progress for half of STALL_S (at all of it the worker exits)."""
        return sorted(f"{topic}:{partition}" for topic, partition
                      in self.watchdog.stuck(dict(self.ends), now + self.stall_s / 2))

    def _check_commits(self, tps: list[Any], committed: dict[tuple[str, int], int | None], now: float) -> None:
        """Say so when the group's commit of a partition (as the broker holds it) does not catch up
        with records processed, with what faust's bookkeeping holds: processing goes on, but lag
        figures and a restart's re-read follow the commit."""
        processed = {key: self.watchdog.progress[key][0] for key in committed if key in self.watchdog.progress}
        for key in self.commit_watch.stuck(committed, processed, now):
            metrics.COMMIT_STUCK.labels(key[0], str(key[1])).inc()
            tp = next((tp for tp in tps if (tp.topic, tp.partition) == key), None)
            log.warning("the group's commit of a partition has not caught up in STALL_S with records processed "
                        "before (faust's commit bookkeeping); processing goes on, a restart would re-read from "
                        "the commit", extra={"partition": f"{key[0]}:{key[1]}", "committed": committed[key],
                                             "processed": processed[key], "faust": self._commit_state(tp)})

    async def _check_group(self, ends: dict[tuple[str, int], int], mine: set[tuple[str, int]],
                           now: float) -> dict[tuple[str, int], int | None] | None:
        """The group as a whole: a partition with records waiting that nobody commits past (its
        owner, if it has one, would have restarted itself within STALL_S). Leaving the group by
        restarting makes it rebalance, which hands every partition out again. Returns the group's
        committed offsets as the broker holds them (None where it never committed; None for all
        while the broker does not answer)."""
        committed = await self.broker_offsets.committed(self.app.conf.id, ends)
        if committed is None:
            self.group_watch.settle(now)
            return None
        orphaned = [key for key in self.group_watch.stalled(committed, ends, now) if key not in mine]
        if orphaned:
            log.error("partitions of the group make no progress and are not this worker's; exiting so the group "
                      "rebalances (state is idempotent)",
                      extra={"partitions": [f"{t}:{p}" for t, p in orphaned], "committed": {
                          f"{t}:{p}": committed.get((t, p)) for t, p in orphaned}, "ends": {
                          f"{t}:{p}": ends.get((t, p)) for t, p in orphaned}, "limit_s": self.group_watch.limit_s})
            os._exit(RESTART)
        return {key: offset if offset >= 0 else None for key, offset in committed.items()}

    # -- diagnostics: faust's and aiokafka's own state, for the log lines above ----------------

    def _fetcher_state(self, tp: Any) -> dict[str, Any]:
        """aiokafka's own state of ``tp`` (position, paused, status), read without calling into its thread."""
        try:
            state = partition_state(self.app.consumer._thread, tp)  # noqa: SLF001
            if state is None:
                return {"assigned": False}
            consumer = self.app.consumer
            return {"position": state._position, "paused": state._paused, "status": str(state._status),  # noqa: SLF001
                    "highwater": state.highwater, "active": tp in (consumer._active_partitions or ()),  # noqa: SLF001
                    "buffer_full": tp in consumer._buffered_partitions}  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the exit it explains
            return {"error": repr(exc)}

    def _commit_state(self, tp: Any) -> dict[str, Any]:
        """faust's commit bookkeeping of ``tp``."""
        consumer = self.app.consumer
        try:
            acked = sorted(consumer._acked.get(tp, []))  # noqa: SLF001
            return {"acked_head": acked[:10], "acked": len(acked),
                    "gaps": [(iv.begin, iv.end) for iv in sorted(consumer._gap.get(tp, []))][:10],  # noqa: SLF001
                    "unacked": sorted(m.offset for m in consumer._unacked_messages if m.tp == tp)[:10]}  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the check it explains
            return {"error": repr(exc)}

    def _consumer_state(self, tps: list[Any]) -> dict[str, Any]:
        """faust's own view of the stalled partitions."""
        app, watchdog, passed_over = self.app, self.watchdog, self.passed_over
        consumer = app.consumer
        try:
            return {"flow_active": app.flow_control.is_active(), "generation": app.consumer_generation_id,
                    "busy": dict(watchdog.busy), "expected": dict(passed_over.continuity.expected),
                    "fresh": sorted(passed_over.continuity.fresh), "dropped": dict(passed_over.dropped.since),
                    "paused": sorted(str(tp.partition) + tp.topic[-6:] for tp in consumer._paused_partitions),  # noqa: SLF001
                    "partitions": {f"{tp.topic[-6:]}-{tp.partition}": {
                        "read": consumer._read_offset.get(tp), "committed": consumer._committed_offset.get(tp),  # noqa: SLF001
                        "highwater": consumer.highwater(tp), "seen": watchdog.progress.get((tp.topic, tp.partition)),
                        "fetcher": self._fetcher_state(tp), **self._commit_state(tp)}
                        for tp in tps}}
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the exit it explains
            return {"error": repr(exc)}
