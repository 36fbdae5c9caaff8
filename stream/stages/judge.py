"""Judging: the windows topic -> each closed window's counters merged from every counting
partition -> once all of them are closed through it, its trends and the detector's alerts.

Partitioned by key shard, so all of a key's counts meet; the state (counters of windows not yet
judged, detector baselines) lives in a table partitioned like the input (stream/core/merge.py).
"""

from __future__ import annotations

import asyncio

from riskpulse.alerts.detector import Detector
from riskpulse.records import TOPIC_TRENDS, Alert, Trend
from riskpulse.settings import Settings

from .. import metrics
from ..core.merge import WindowMerge
from ..core.messages import ClosedThrough, WindowClosed, WindowFix, WindowPart, decode_judging, dumps
from ..core.state import Overlay
from .count import aggregator_config, event_timestamp
from .partitioning import trend_partition
from .ports import Outputs, Record, Stage, record_headers, send_alert, send_dead_letter


class Judge(Stage):
    name = "judge"
    keyed = True

    def __init__(self, settings: Settings, out: Outputs, detector: Detector) -> None:
        self.settings, self.out, self.detector = settings, out, detector
        self.partitions = settings.kafka_partitions
        self.key_ttl_s = aggregator_config(settings).key_ttl_s
        self._judges: dict[int, WindowMerge] = {}  # per partition of this stage the worker holds
        self._merge: WindowMerge | None = None

    async def open(self, partition: int, state: Overlay) -> None:
        merge = self._judges.get(partition)
        if merge is None or not merge.is_current(state):  # first batch, or written by another worker since
            merge = self._judges[partition] = WindowMerge(
                state, self.settings.window_s, self.settings.lateness_s, self.partitions, self.detector,
                key_ttl_s=self.key_ttl_s, on_detector_error=lambda key, exc: metrics.DETECTOR_ERRORS.inc(),
                correction_horizon_s=self.settings.correction_horizon_s)
        merge.state = state
        self._merge = merge

    async def process(self, records: list[Record]) -> None:
        merge = self._merge
        assert merge is not None, "open() comes first"
        for record in records:
            try:
                with merge.state.savepoint():
                    message = decode_judging(record.value)
                    if isinstance(message, WindowPart):
                        merge.part(message.source, message.start, message.shard, message.counters)
                    elif isinstance(message, WindowClosed):
                        merge.window(message.start, message.source, message.shards)
                    elif isinstance(message, ClosedThrough):
                        merge.closed_through(message.source, message.through)
                    elif isinstance(message, WindowFix):
                        outcome = merge.fix(message.source, message.start, message.shard, message.at, message.fix)
                        if outcome == "too_old":
                            metrics.CORRECTIONS_TOO_OLD.inc()
            except Exception as exc:  # noqa: BLE001 - a record's fault: dead-letter it, keep judging
                await send_dead_letter(self.out, record, f"{type(exc).__name__}: {exc}", "judge")

    async def close(self, partition: int) -> None:
        """Judge every window all counting partitions have closed: publish, wait for the broker's ack, then commit."""
        merge = self._merge
        assert merge is not None
        if merge.corrected:  # trends of windows judged already, corrected: upserts downstream absorb them
            await self._publish(merge.corrected, [])
            metrics.ITEMS_OUT.labels("trends").inc(len(merge.corrected))
            merge.corrected = []
        while (close := merge.next_close()) is not None:
            await self._publish(close.trends, close.alerts)
            metrics.ITEMS_OUT.labels("trends").inc(len(close.trends))
            merge.commit(close)
        merge.end_batch()
        merge.state.flush()
        self._merge = None

    def abandon(self) -> None:
        self._judges.clear()
        self._merge = None

    def end_batch(self) -> None:
        if self._judges:
            metrics.WATERMARK.set(max(0.0, min(m.closed for m in self._judges.values())))

    async def _publish(self, trends: list[Trend], alerts: list[Alert]) -> None:
        pending = []
        for trend in trends:
            pending.append(await self.out.send(
                TOPIC_TRENDS, dumps(trend.to_json()),
                key=f"{trend.key_type}|{trend.key}|{int(trend.window_start.timestamp())}".encode(),
                partition=trend_partition(trend.key_type, trend.key, self.partitions),
                headers=record_headers(TOPIC_TRENDS),
                timestamp=event_timestamp(self.settings, trend.window_end.timestamp())))
        for alert in alerts:
            pending.append(await send_alert(self.out, alert, event_timestamp(self.settings, alert.window_end.timestamp())))
        await asyncio.gather(*pending)  # acknowledged by the broker (acks=all): only now is the window closed


