"""Scoring: news -> validation and the event-time policy (failures to news.dlq) -> the model, in
micro-batches -> each item's revision -> the scored-by-story topic, each item on the counting
partition of its story (and a correction's retraction on its previous revision's).

Scoring is the expensive part; it scales with the partitions of ``news``. Its only state is the
revisions of each id per news partition (stream/core/revisions.py), in the score table.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

from riskpulse.records import TOPIC_NEWS, NewsItem
from riskpulse.settings import Settings

from .. import metrics
from ..core.event_time import EventTimePolicy, judge
from ..core.messages import Progress, Retract, Scored, Source
from ..core.progress import ProgressTeller
from ..core.revisions import Revision, Revisions
from ..core.validation import Invalid, parse_news
from ..isolation import score_isolated
from ..scoring import ScoringService
from .partitioning import story_partition
from .ports import SCORED_BY_STORY, Outputs, Record, Stage, send_dead_letter

# scored whenever a batch raises, to tell a poison item from a broken model (stream/isolation.py)
CANARY = NewsItem(id="canary", headline="Stocks rise as investors weigh earnings",
                  published_at=datetime(2026, 1, 1, tzinfo=timezone.utc))


def broker_time(record: Record, fallback: datetime) -> datetime:
    """The record's Kafka timestamp: stable across redelivery, unlike the time it is processed."""
    ts = record.timestamp
    try:
        return datetime.fromtimestamp(float(ts), timezone.utc) if ts else fallback
    except (OverflowError, OSError, ValueError):
        return fallback


class Score(Stage):
    """``behind(record)``: the records of its partition still to read after it (the runtime knows
    the fetcher's highwater); the counting stage's watermark treats a partition with a backlog as
    slow, not idle."""

    name = "score"
    stateful = True

    def __init__(self, settings: Settings, out: Outputs, behind: Callable[[Record], int]) -> None:
        self.settings, self.out, self.behind = settings, out, behind
        self.batch, self.within_s = settings.batch_max_size, settings.batch_max_wait_ms / 1000
        self.partitions = settings.kafka_partitions
        self.policy = EventTimePolicy(settings.max_clock_skew_s, settings.max_event_age_days * 86400.0,
                                      settings.clock_policy)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")  # the model runs off the event loop
        self.progress = ProgressTeller(settings.window_s, settings.lateness_s)  # which markers go now, which at the tick
        self.service: ScoringService | None = None

    async def start(self) -> None:
        if self.service is None:
            loop = asyncio.get_running_loop()
            self.service = await loop.run_in_executor(self._pool, ScoringService.from_settings, self.settings)

    async def process(self, records: list[Record]) -> None:
        """One micro-batch: validation and the event-time policy, then the model; failures to news.dlq."""
        assert self.service is not None, "start() loads the model"
        service = self.service
        now = datetime.now(timezone.utc)
        good: list[tuple[Record, NewsItem, Any]] = []
        for record in records:
            received = broker_time(record, now)
            parsed = parse_news(record.value, received)
            if isinstance(parsed, Invalid):
                await send_dead_letter(self.out, record, parsed.reason, "parse")
                continue
            assert parsed.published_at is not None  # completed by parse_news
            verdict = judge(parsed.published_at, received, now, self.policy)
            if verdict.refused:
                await send_dead_letter(self.out, record, verdict.refused, "event_time")
                continue
            good.append((record, parsed, verdict))
        metrics.ITEMS_IN.labels(TOPIC_NEWS).inc(len(records))
        if not good:
            await self._report_progress(records, {})
            return
        started = time.perf_counter()
        items = [item for _, item, _ in good]
        scored = await asyncio.get_running_loop().run_in_executor(
            self._pool, score_isolated, lambda batch: service.score_items(batch, now), items, CANARY)
        metrics.MODEL_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(good))
        sent_up_to: dict[int, float] = {}  # news partition -> latest event time of its items sent on
        ready = []
        for (record, _, verdict), result in zip(good, scored):
            if isinstance(result, Exception):
                await send_dead_letter(self.out, record, f"scoring failed: {result!r}", "score")
                continue
            if verdict.original is not None:
                metrics.CLOCK_ADJUSTED.inc()
                result = result.model_copy(update={"published_at": verdict.published_at,
                                                   "published_at_original": verdict.original})
            ready.append((record, result, story_partition(result.headline, self.partitions)))
        revisions = self._revisions(ready)
        for (record, result, partition), revision in zip(ready, revisions):
            result = result.model_copy(update={"revision": revision.number})
            source = Source(record.topic, record.partition, record.offset, self.behind(record))
            replaces = revision.replaces
            if replaces is not None and replaces["partition"] != partition and 0 <= replaces["partition"] < self.partitions:
                await self.out.send(SCORED_BY_STORY, Retract(result.id, replaces, source).encode(),
                                    key=result.id.encode(), partition=replaces["partition"])
            retract = replaces if replaces is not None and replaces["partition"] == partition else None
            await self.out.send(SCORED_BY_STORY, Scored(result, source, record.timestamp, retract).encode(),
                                key=result.id.encode(), partition=partition)
            ts = result.published_at.timestamp()
            sent_up_to[record.partition] = max(ts, sent_up_to.get(record.partition, ts))
        await self._report_progress(records, sent_up_to)

    def _revisions(self, ready: list[tuple[Record, Any, int]]) -> list[Revision]:
        """Each item's revision, from its news partition's state (written before anything is sent:
        a record read again gets the same answer)."""
        out: dict[int, Revision] = {}
        for news_partition in sorted({record.partition for record, _, _ in ready}):
            state = self.state_of(news_partition)
            revisions = Revisions(state, self.settings.dedupe_horizon_s)
            for i, (record, result, partition) in enumerate(ready):
                if record.partition == news_partition:
                    out[i] = revisions.observe(result, record.offset, partition)
            state.flush()
        return [out[i] for i in range(len(ready))]

    async def _report_progress(self, records: list[Record], sent_up_to: dict[int, float]) -> None:
        """After each batch, every partition of the counting stage hears how far each news partition
        in it has come: its last offset, the records still behind it, and the event time its items
        sent on reach (whichever counting partition they went to). A counting partition receives
        only its own stories; with this its clock follows all of news, as one aggregator's would
        (stream/core/watermark.py). A partition whose last records were dead-lettered still says it
        moved on: otherwise its last word ("more behind me") would hold the watermark for ever.
        A marker that passes no window's close waits for the tick (stream/core/progress.py,
        :meth:`pending_progress`)."""
        last: dict[int, Record] = {}
        for record in records:
            last[record.partition] = record
        for partition, record in last.items():
            marker = self.progress.after_batch(Progress(Source(record.topic, partition, record.offset,
                                                               self.behind(record)), sent_up_to.get(partition)))
            if marker is not None:
                encoded = marker.encode()
                for target in range(self.partitions):
                    await self.out.send(SCORED_BY_STORY, encoded, key=b"progress", partition=target)

    def pending_progress(self, reading: set[int]) -> list[bytes]:
        """The progress markers that waited for the tick, for the news partitions this worker still
        reads; the runtime sends each to every counting partition before its heartbeats."""
        return [marker.encode() for marker in self.progress.take_pending(reading)]
