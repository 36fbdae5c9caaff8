"""Glue between the scoring agent and stream/core/continuity.py: news records faust passes over
are noticed, read again where the broker still holds them, and counted where it does not.

The decisions are plain code in core/continuity.py; this module asks the broker (on a client of
its own, stream/broker_offsets.py), seeks faust's consumer and reports (metrics, logs).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from . import metrics
from .app import app, news_topic, settings
from .broker_offsets import BrokerOffsets
from .core.continuity import Gap, OffsetContinuity, Plan

log = logging.getLogger(__name__)

# asked on a client of its own (the stall check uses it too: it must not lean on the consumer it judges)
broker_offsets = BrokerOffsets(settings.kafka_bootstrap)
continuity = OffsetContinuity()


@app.on_partitions_assigned.connect
async def _on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
    continuity.assigned({tp.partition for tp in assigned if tp.topic == news_topic.get_topic_name()})


def committed(tp: Any) -> int | None:
    """The group's committed offset for ``tp`` as faust loaded it at assignment (no broker call).

    faust keeps it on its consumer (``_committed_offset``, set by its seek to the committed
    offsets after each rebalance); faust-streaming is pinned in requirements.lock."""
    try:
        value = app.consumer._committed_offset.get(tp)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - no consumer, or faust changed: judge from delivered offsets only
        return None
    return int(value) if isinstance(value, int) else None


async def _plan(gap: Gap, tp: Any) -> Plan:
    """Ask the broker what is left of the gap: its log start, and its first record still held."""
    key = (tp.topic, tp.partition)
    starts = await broker_offsets.start([key])
    log_start = None if starts is None else starts.get(key)
    first = gap.first_missing if log_start is None else max(gap.first_missing, log_start)
    first_record = await broker_offsets.first_record(key, first) if first < gap.next_seen else None
    return continuity.plan(gap, log_start, first_record, time.monotonic())


restale: set[Any] = set()  # partitions whose re-read a stale record may have undone (see reassert_rereads)


async def reassert_rereads() -> None:
    """Seek again where stale records were delivered after the seek back: faust's fetch loop
    records the offset of every record it hands over as its "read offset" and drops anything
    below it, so stale records handed over after the seek would make it drop the re-read. The
    seek after the last stale record (once per batch) resets that; duplicates are redeliveries."""
    for tp in list(restale):
        restale.discard(tp)
        start = continuity.rereading.get(tp.partition)
        if start is not None:
            await app.consumer.seek(tp, start[0])


async def admit(event: Any) -> bool:
    """Whether to process a delivered news record. False for a record fetched past a gap that is
    being re-read (it comes again, in order), and for the one that revealed such a gap."""
    msg = event.message
    verdict = continuity.check(msg.partition, msg.offset, committed(msg.tp), time.monotonic())
    if verdict is None:
        return True
    if not isinstance(verdict, Gap):  # STALE: and it may have moved faust's read offset past the re-read
        restale.add(msg.tp)
        return False
    plan = await _plan(verdict, msg.tp)
    if plan.lost:
        last = verdict.first_missing + plan.lost - 1
        metrics.SKIPPED.labels(str(msg.partition)).inc(plan.lost)
        log.error("the consumer passed over records of news partition %d, offsets %d to %d, and they can no longer "
                  "be read (deleted by retention, or gone before a re-read began): they were not scored; replay them "
                  "from their source (riskpulse replay)",
                  msg.partition, verdict.first_missing, last,
                  extra={"partition": msg.partition, "first_missing": verdict.first_missing, "next_seen": last + 1})
    if plan.reread_from is None:
        return True
    metrics.REREAD.labels(str(msg.partition)).inc(verdict.next_seen - plan.reread_from)
    log.warning("the consumer passed over records of news partition %d, offsets %d to %d (faust-streaming after a "
                "rebalance): reading them again from %d", msg.partition, plan.reread_from, verdict.next_seen - 1,
                plan.reread_from, extra={"partition": msg.partition, "reread_from": plan.reread_from,
                                         "next_seen": verdict.next_seen})
    await app.consumer.seek(msg.tp, plan.reread_from)
    return False
