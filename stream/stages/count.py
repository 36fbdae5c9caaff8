"""Counting: the scored-by-story topic -> dedupe -> news.scored, and event-time windows whose
counters go, once closed, to the judges (the windows topic, by key shard).

Partitioned by story, so every copy of a story meets its first sighting; the state of each
partition (windows, dedupe, watermark) lives in a table partitioned like the input
(stream/core/aggregator.py: counting is exact under redelivery).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Callable

from riskpulse.alerts.rules import SpreadRule
from riskpulse.records import TOPIC_SCORED
from riskpulse.settings import Settings

from .. import metrics
from ..core.aggregator import Aggregator, AggregatorConfig
from ..core.messages import (ClosedThrough, Progress, Retract, Tick, WindowClosed, WindowFix, WindowPart,
                             decode_counting, dumps)
from ..core.progress import closes_more
from ..core.spread import SpreadConfig
from ..core.state import Overlay
from .ports import WINDOWS, Outputs, Record, Stage, record_headers, send_alert, send_dead_letter

log = logging.getLogger("riskpulse.stream.stages")


def aggregator_config(settings: Settings, spread: SpreadRule | None = None) -> AggregatorConfig:
    return AggregatorConfig(
        window_s=settings.window_s, lateness_s=settings.lateness_s, idle_s=settings.idle_s,
        max_skew_s=settings.max_clock_skew_s, dedupe_horizon_s=settings.dedupe_horizon_s,
        key_ttl_s=settings.detector_key_ttl_days * 86400.0, confirm_idle=True,
        spread=SpreadConfig(spread.min_sources, spread.within_minutes * 60, spread.min_negative_share, spread.severity)
        if spread is not None and spread.enabled else None)


def event_timestamp(settings: Settings, when: float) -> float | None:
    """The Kafka timestamp of a published record: its event time where configured, else none
    (the producer's clock, the time it was published)."""
    return when if settings.kafka_event_time_timestamps else None


class Count(Stage):
    name = "aggregate"
    keyed = True

    def __init__(self, settings: Settings, out: Outputs, spread: SpreadRule | None = None,
                 unclaimed: Callable[[], dict[int, int] | None] = lambda: None) -> None:
        """``unclaimed()``: per news partition, the records the scorers' group has not committed,
        as the broker last said (None: not known); a news partition never heard from holds the
        watermark while it has some (stream/core/watermark.py)."""
        self.settings, self.out = settings, out
        self.unclaimed = unclaimed
        self.partitions = settings.kafka_partitions
        self.config = aggregator_config(settings, spread)
        self._counters: dict[int, Aggregator] = {}  # per partition of this stage the worker holds
        self._through_sent: dict[int, float] = {}  # partition -> closed-through last told the judges
        self._agg: Aggregator | None = None
        self._ticked = False

    async def open(self, partition: int, state: Overlay) -> None:
        agg = self._counters.get(partition)
        if agg is None or not agg.is_current(state):  # first batch, or written by another worker since
            agg = self._counters[partition] = Aggregator(state, self.config, None, time.time(),
                                                         partitions=range(self.partitions))
        agg.state = state
        agg.clock.unclaimed = self.unclaimed()
        self._agg, self._ticked = agg, False

    async def process(self, records: list[Record]) -> None:
        """Count one chunk; a tick means the judges hear from this partition even if nothing moved."""
        agg = self._agg
        assert agg is not None, "open() comes first"
        for record in records:
            try:
                with agg.state.savepoint():
                    message = decode_counting(record.value)
                    if isinstance(message, Tick):
                        self._ticked = True
                        continue
                    if isinstance(message, Progress):
                        src = message.source
                        agg.heard(src.partition, time.time(), src.behind, message.event_time)
                        continue
                    src = message.source
                    if isinstance(message, Retract):
                        agg.retract(message.id, message.replaced, src.partition, src.offset)
                        metrics.CORRECTIONS.inc()
                        continue
                    added = agg.add(message.item, src.partition, src.offset, time.time(), src.behind, message.retract)
            except Exception as exc:  # noqa: BLE001 - a record's fault: dead-letter it, keep counting
                await send_dead_letter(self.out, record, f"{type(exc).__name__}: {exc}", "aggregate")
                continue
            item = added.item
            await self.out.send(TOPIC_SCORED, dumps(item.to_json()), key=item.id.encode(),
                                headers=record_headers(TOPIC_SCORED, item.model_version),
                                timestamp=event_timestamp(self.settings, item.published_at.timestamp()))
            metrics.ITEMS_OUT.labels("news.scored").inc()
            if message.retract is not None:
                metrics.CORRECTIONS.inc()
            if added.status == "late":
                metrics.LATE.inc()
                log.warning("late item not counted in trends (published on news.scored)",
                            extra={"id": message.item.id, "published_at": str(message.item.published_at),
                                   "partition": src.partition, "offset": src.offset, "closed_through": agg.closed})
            if message.ingest_ts:
                metrics.E2E_SECONDS.observe(max(0.0, time.time() - message.ingest_ts))

    async def close(self, partition: int) -> None:
        agg = self._agg
        assert agg is not None
        await self._send_closed_windows(agg, partition)  # before the corrections of windows they close
        await self._send_fixes(agg, partition)
        await self._send_spread_alerts(agg)
        if agg.evidence_dropped:
            metrics.EVIDENCE_DROPPED.inc(agg.evidence_dropped)
            log.warning("items counted without evidence rows: their window's value reached its size budget "
                        "(a flood of distinct tickers with long headlines or links?)",
                        extra={"items": agg.evidence_dropped, "partition": partition})
            agg.evidence_dropped = 0
        through = agg.settle(time.time())
        agg.end_batch()
        agg.state.flush()
        # the judges act on it only where it passes a window's close (stream/core/progress.py):
        # told then, and with every tick, not after every batch (at low load a batch is one record)
        if self._ticked or closes_more(self._through_sent.get(partition), through, self.settings.window_s,
                                       self.settings.lateness_s):
            await self._send_through(partition, through)
        self._agg = None

    def abandon(self) -> None:
        self._counters.clear()
        self._through_sent.clear()
        self._agg = None

    async def _send_fixes(self, agg: Aggregator, source: int) -> None:
        """Corrections of windows closed here, each to the judging partition that owns its key
        shard; acknowledged before this batch's state is written (a crash re-sends them, and the
        judges know a repeat by its position on news)."""
        pending = [await self.out.send(WINDOWS, WindowFix(source, start, shard, at, fix).encode(),
                                       key=f"{start}|{shard}".encode(), partition=shard % self.partitions)
                   for start, shard, at, fix in agg.fixes]
        await asyncio.gather(*pending)
        agg.fixes = []

    async def _send_closed_windows(self, agg: Aggregator, source: int) -> None:
        """Each window the watermark passed: its counters, key shard by key shard, to the judging
        partition that owns the shard, and to every judging partition a note that it closed; only
        once the broker has acknowledged them all is the window closed here."""
        while (close := agg.next_close(time.time())) is not None:
            pending = []
            for shard, counters in close.parts.items():
                pending.append(await self.out.send(WINDOWS, WindowPart(source, close.start, shard, counters).encode(),
                                                   key=f"{close.start}|{shard}".encode(),
                                                   partition=shard % self.partitions))
            note = WindowClosed(source, close.start, tuple(sorted(close.parts))).encode()
            for target in range(self.partitions):
                pending.append(await self.out.send(WINDOWS, note, key=b"window", partition=target))
            await asyncio.gather(*pending)
            agg.commit(close)

    async def _send_spread_alerts(self, agg: Aggregator) -> None:
        """A negative story that reached its spread (or whose pick-up went quiet): its alert,
        marked sent once acknowledged."""
        due = agg.spread_alerts(time.time())
        pending = []
        for _, alert in due:
            pending.append(await send_alert(self.out, alert, event_timestamp(self.settings, alert.window_end.timestamp())))
        await asyncio.gather(*pending)
        for story_id, alert in due:
            agg.commit_spread(story_id, alert)

    async def _send_through(self, source: int, through: float) -> None:
        """Every judging partition hears how far counting partition ``source`` is closed through
        (after its windows' counters: one producer keeps them in order per partition)."""
        if not math.isfinite(through):
            return
        marker = ClosedThrough(source, through).encode()
        for target in range(self.partitions):
            await self.out.send(WINDOWS, marker, key=b"through", partition=target)
        self._through_sent[source] = through
