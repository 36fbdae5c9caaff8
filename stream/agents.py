"""Faust agents: thin glue that moves records through the plain code of stream/core.

Delivery is at-least-once end to end (Faust flushes the producer before committing offsets);
the aggregation core makes counting exact (stream/core/aggregator.py). A record that makes any
stage raise is dead-lettered to ``news.dlq`` with its stage, error and source position, and the
stream goes on; only infrastructure faults (model, store, broker) end the worker for a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable

import faust
from aiokafka.partitioner import murmur2

from riskpulse.alerts.delivery import Deliverer, RetryPolicy, enqueue_alert
from riskpulse.alerts.detector import Detector
from riskpulse.alerts.outbox import Outbox
from riskpulse.alerts.rules import Rules
from riskpulse.logs import take_over_handlers
from riskpulse.records import (SCHEMA_VERSION, TOPIC_ALERTS, TOPIC_DLQ, TOPIC_NEWS, TOPIC_SCORED, TOPIC_TRENDS, Alert,
                               NewsItem, ScoredNews)
from riskpulse.settings import Settings
from riskpulse.store.news import Store

from . import faust_commits, metrics
from .app import create_app, declare_topics, state_tables
from .broker_offsets import BrokerOffsets
from .core.aggregator import Aggregator, AggregatorConfig, WindowClose
from .core.dedupe import dedupe_key
from .core.detection import shard_of
from .core.event_time import EventTimePolicy, judge
from .core.merge import WindowMerge
from .core.state import Overlay, Prefixed
from .core.validation import Invalid, dead_letter, parse_news
from .isolation import score_isolated, write_isolated
from .passed_over import PassedOver
from .scoring import ScoringService
from .supervisor import RESTART, exit_on_crash
from .watchdog import CommitWatch, GroupWatch, StallWatchdog, task_stacks

log = logging.getLogger(__name__)

TICK = b'{"tick":1}'
CANARY = NewsItem(id="canary", headline="Stocks rise as investors weigh earnings", published_at=datetime(2026, 1, 1, tzinfo=timezone.utc))


def build_app(settings: Settings) -> faust.App:
    """The worker's Faust app with its topics, table, agents, timers and pages, from ``settings``.

    Nothing is built at import: a test, a benchmark or a second worker in one process gets its own."""
    app = create_app(settings)
    Pipeline(app, settings).register()
    return app


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_headers(topic: str, model_version: str | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers of every record riskpulse publishes: what it is, in which schema version
    (stream/schemas/<topic>.schema.json), and for scored items the model that scored them, so a
    subscriber can route or refuse a record without parsing its value."""
    headers = [("content-type", b"application/json"),
               ("riskpulse-schema", f"{topic}/v{SCHEMA_VERSION}".encode())]
    if model_version:
        headers.append(("riskpulse-model-version", model_version.encode()))
    return headers


def _broker_time(event: Any, fallback: datetime) -> datetime:
    """The record's Kafka timestamp: stable across redelivery, unlike the time it is processed."""
    ts = event.message.timestamp
    try:
        return datetime.fromtimestamp(float(ts), timezone.utc) if ts else fallback
    except (OverflowError, OSError, ValueError):
        return fallback


def _source(src: Any) -> tuple[int, int, int]:
    """(partition, offset, behind) from ``_src``/``_progress``: [topic, partition, offset(, behind(, event time))]."""
    if not (isinstance(src, list) and len(src) in (3, 4, 5) and all(isinstance(v, int) for v in src[1:4])):
        raise ValueError("no source position (_src: [topic, partition, offset, behind])")
    return src[1], src[2], (src[3] if len(src) >= 4 else 0)


def _json_object(value: bytes) -> dict[str, Any]:
    raw = json.loads(value)
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    return raw


def _decode_internal(value: bytes) -> tuple[ScoredNews | None, tuple[int, int, int], Any]:
    """A record from the scorers: a scored item (its ingest time third), or (item None) a news
    partition's progress marker (the event time its scorer has sent items up to third, or None)."""
    raw = _json_object(value)
    if "_progress" in raw:
        marker = raw["_progress"]
        src = _source(marker)
        ts = marker[4] if len(marker) == 5 else None
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
            raise ValueError(f"progress marker with a bad event time: {ts!r}")
        return None, src, ts
    src = _source(raw.pop("_src", None))
    ingest_ts = raw.pop("_ingest_ts", None)
    return ScoredNews.model_validate(raw), src, ingest_ts


def _ints(value: Any, n: int) -> list[int]:
    if not (isinstance(value, list) and len(value) == n and all(isinstance(v, int) and not isinstance(v, bool)
                                                                for v in value)):
        raise ValueError(f"expected a list of {n} integers, got {value!r:.100}")
    return value


def story_partition(headline: str, partitions: int) -> int:
    """The partition of the counting stage for an item: by story, so a re-published story meets
    its first sighting (the dedupe key), whichever news partition each came on."""
    return shard_of(dedupe_key(headline), partitions)


def trend_partition(key_type: str, key: str, partitions: int) -> int:
    """The partition of ``trends`` for every window of one key: the one Kafka's default partitioner
    gives the key ``key_type|key`` (murmur2), so a subscriber reads one key's windows in order on
    one partition, while the record key (with the window) keeps a compacted topic a table of windows."""
    return (murmur2(f"{key_type}|{key}".encode("utf-8", "surrogatepass")) & 0x7FFFFFFF) % partitions


def _by_partition(events: list[Any]) -> dict[int, list[Any]]:
    """A batch's events per partition, each in the order delivered."""
    groups: dict[int, list[Any]] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


class Pipeline:
    """What one worker's agents share: its settings, topics and table, the clients and threads
    they use off the event loop, and the stall watchdog that judges them. ``register`` puts the
    agents, timers and pages on the app; every method below is one of them or a step of one."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.topics = declare_topics(app, settings)
        self.partitions = settings.kafka_partitions  # of every topic: news, both internal ones, the outputs
        self.count_table, self.judge_table = state_tables(app, settings)
        self.watchdog = StallWatchdog(stall_s=settings.stall_s)
        self.group_watch = GroupWatch(limit_s=3 * settings.stall_s)  # owners judge their own within stall_s
        self.commit_watch = CommitWatch(limit_s=settings.stall_s)
        # asked on a client of its own (the stall check uses it too: it must not lean on the consumer it judges)
        self.broker_offsets = BrokerOffsets(settings.kafka_bootstrap)
        # the agent reading each topic where a dropped record may wait long for a later one to reveal it
        self._readers = {self.topics.news.get_topic_name(): "score", self.topics.scored.get_topic_name(): "sink_scored",
                         self.topics.trends.get_topic_name(): "sink_trends",
                         self.topics.alerts.get_topic_name(): "sink_alerts"}
        self.passed_over = PassedOver(app, set(self._readers), self.broker_offsets)
        # every agent accounts for each offset of what it reads (PassedOver.complete): the commits follow that
        faust_commits.install(app, {t.get_topic_name() for t in self.topics.read()})
        self.policy = EventTimePolicy(settings.max_clock_skew_s, settings.max_event_age_days * 86400.0,
                                      settings.clock_policy)
        self.rules = Rules.load(settings.alert_rules)  # validated by `riskpulse worker` before this process starts
        self.detector = Detector(self.rules, settings.window_s)
        self.agg_config = AggregatorConfig(
            window_s=settings.window_s, lateness_s=settings.lateness_s, idle_s=settings.idle_s,
            max_skew_s=settings.max_clock_skew_s, dedupe_horizon_s=settings.dedupe_horizon_s,
            key_ttl_s=settings.detector_key_ttl_days * 86400.0, confirm_idle=True)
        # blocking work runs off the event loop, one thread per resource
        self._model_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self._store_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._outbox_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._service: ScoringService | None = None
        self._store: Store | None = None
        self._outbox: Outbox | None = None
        self._said_cancelled = False
        self._settling_since: float | None = None
        self._ends: dict[tuple[str, int], int] = {}  # end offsets at the last stall check (broker's answer)
        self._counters: dict[int, Aggregator] = {}  # per partition of the counting stage this worker holds
        self._judges: dict[int, WindowMerge] = {}  # per partition of the judging stage
        self._through_sent: dict[int, float] = {}  # counting partition -> closed-through last told the judges

    def register(self) -> None:
        app, topics = self.app, self.topics
        app.agent(topics.news, name="riskpulse.stream.agents.score")(exit_on_crash(self.score))
        app.agent(topics.scored_internal, name="riskpulse.stream.agents.aggregate")(exit_on_crash(self.aggregate))
        app.agent(topics.windows_internal, name="riskpulse.stream.agents.judge")(exit_on_crash(self.judge))
        # news.scored -> store (upserts by id); trends -> store (upserts by key and window);
        # alerts -> store (one row per alert id) + webhook outbox (one row per route and message)
        self._sink_agent(topics.scored, "sink_scored", lambda: self._get_store().upsert_scored, 500, 1.0)
        self._sink_agent(topics.trends, "sink_trends", lambda: self._get_store().upsert_trends, 500, 1.0)
        self._sink_agent(topics.alerts, "sink_alerts", lambda: self._sink_alerts_blocking, 100, 0.5)
        app.task(self.deliver_webhooks)
        app.task(self.own_the_log_handlers)
        app.timer(interval=3600.0, name="retention")(self.retention)
        app.timer(interval=5.0, name="stall_check")(self.stall_check)
        app.timer(interval=1.0, name="tick")(self.tick)
        self._page("/healthz", self.healthz)
        self._page("/readyz", self.readyz)
        self._page("/metrics", self.metrics_page)

    def _page(self, path: str, handler: Callable[[Any, Any], Any]) -> None:
        """faust makes a page's handler its view's ``get`` method: a function, so it binds to the view."""
        async def page(web: Any, request: Any) -> Any:
            return await handler(web, request)
        page.__name__ = page.__qualname__ = handler.__name__
        page.__doc__ = handler.__doc__
        self.app.page(path)(page)

    # -- dead letters -----------------------------------------------------------------------

    async def _dead_letter(self, value: bytes | None, reason: str, stage: str, topic: str, partition: int,
                           offset: int) -> None:
        letter = dead_letter(value, reason, topic, partition, offset, datetime.now(timezone.utc), stage=stage)
        log.warning("news.dlq", extra={"stage": stage, "reason": reason[:300], "topic": topic, "partition": partition,
                                       "offset": offset})
        metrics.DLQ.labels(stage).inc()
        await self.topics.dlq.send(key=f"{topic}:{partition}:{offset}".encode(), value=_dumps(letter.to_json()),
                                   headers=record_headers(TOPIC_DLQ))

    async def _dead_letter_event(self, event: Any, reason: str, stage: str) -> None:
        msg = event.message
        await self._dead_letter(event.value, reason, stage, msg.topic, msg.partition, msg.offset)

    @asynccontextmanager
    async def _processing(self, agent: str, events: list[Any]) -> AsyncIterator[list[Any]]:
        """One batch of ``agent``: watched for stalls, kept unacknowledged until processed, and the
        holes faust passed over that were filled in (``PassedOver.complete``) marked done at the end.

        faust's take_events acknowledges a batch when the agent leaves it, however it leaves: a
        stopping worker cancels its agents mid-batch, and the consumer then commits the unprocessed
        batch, so the next owner of the partition starts after it. Seen: a worker that left its
        group mid-stream lost the item it was scoring. Every message holds one more reference from
        delivery (stream/app.py, ``HeldTopic``), released here only when the batch is done, so a
        cancelled batch stays unacknowledged: it is read again by whoever holds the partition next
        (redelivery, which the aggregator absorbs). Yields the list that collects the filled-in holes."""
        with self.watchdog.batch(agent):
            done: list[Any] = []
            yield done  # no finally: a batch that did not finish keeps its references and its holes unmarked
            await self.passed_over.mark_done(done)
            for event in events:
                event.message.decref()

    # -- scoring: news -> riskpulse-scored ----------------------------------------------------

    async def _scoring_service(self) -> ScoringService:
        if self._service is None:
            loop = asyncio.get_running_loop()
            self._service = await loop.run_in_executor(self._model_pool, ScoringService.from_settings, self.settings)
        return self._service

    async def score(self, stream: Any) -> None:
        """news -> validate, event-time policy (failures to news.dlq) -> micro-batch scoring -> riskpulse-scored."""
        service = await self._scoring_service()
        settings = self.settings
        async for events in stream.take_events(settings.batch_max_size, within=settings.batch_max_wait_ms / 1000):
            async with self._processing("score", events) as filled:
                async for chunk in self.passed_over.complete(events, settings.batch_max_size, filled):
                    self.watchdog.begin("score")  # each chunk is progress: a large filled-in gap is not a blocked agent
                    await self._score_batch(service, chunk)

    async def _score_batch(self, service: ScoringService, events: list[Any]) -> None:
        """One micro-batch: validation and the event-time policy, then the model; failures to news.dlq."""
        loop = asyncio.get_running_loop()
        now = datetime.now(timezone.utc)
        good: list[tuple[Any, NewsItem, Any]] = []
        for event in events:
            broker_time = _broker_time(event, now)
            parsed = parse_news(event.value, broker_time)
            if isinstance(parsed, Invalid):
                await self._dead_letter_event(event, parsed.reason, "parse")
                continue
            assert parsed.published_at is not None  # completed by parse_news
            verdict = judge(parsed.published_at, broker_time, now, self.policy)
            if verdict.refused:
                await self._dead_letter_event(event, verdict.refused, "event_time")
                continue
            good.append((event, parsed, verdict))
        metrics.ITEMS_IN.labels(TOPIC_NEWS).inc(len(events))
        self.watchdog.note(events)
        if not good:
            await self._report_progress(events, {})
            return
        started = time.perf_counter()
        items = [item for _, item, _ in good]
        scored = await loop.run_in_executor(self._model_pool, score_isolated,
                                            lambda batch: service.score_items(batch, now), items, CANARY)
        metrics.MODEL_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(good))
        sent_up_to: dict[int, float] = {}  # news partition -> latest event time of its items sent on
        for (event, _, verdict), record in zip(good, scored):
            if isinstance(record, Exception):
                await self._dead_letter_event(event, f"scoring failed: {record!r}", "score")
                continue
            if verdict.original is not None:
                metrics.CLOCK_ADJUSTED.inc()
                record = record.model_copy(update={"published_at": verdict.published_at,
                                                   "published_at_original": verdict.original})
            value = record.to_json()
            value["_src"] = [event.message.topic, event.message.partition, event.message.offset, self._behind(event)]
            value["_ingest_ts"] = event.message.timestamp  # broker time of the news record, for latency figures
            await self.topics.scored_internal.send(key=record.id.encode(), value=_dumps(value),
                                                   partition=story_partition(record.headline, self.partitions))
            ts = record.published_at.timestamp()
            sent_up_to[event.message.partition] = max(ts, sent_up_to.get(event.message.partition, ts))
        await self._report_progress(events, sent_up_to)

    def _event_time(self, when: datetime) -> float | None:
        """The Kafka timestamp of a published record: its event time where configured, else
        none (the producer's clock, the time it was published)."""
        return when.timestamp() if self.settings.kafka_event_time_timestamps else None

    def _behind(self, event: Any) -> int:
        """Records of the event's partition not yet read (the fetcher's last highwater; no broker call)."""
        try:
            highwater = self.app.consumer.highwater(event.message.tp)
        except Exception:  # noqa: BLE001 - revoked meanwhile, or not fetched yet: no claim either way
            return 0
        return max(0, int(highwater) - event.message.offset - 1) if highwater is not None else 0

    async def _report_progress(self, events: list[Any], sent_up_to: dict[int, float]) -> None:
        """After each batch, every partition of the counting stage hears how far each news partition
        in it has come: its last offset, the records still behind it, and the event time its items
        sent on reach (whichever counting partition they went to). A counting partition receives
        only its own stories; with this its clock follows all of news, as one aggregator's would
        (stream/core/watermark.py). A partition whose last records were dead-lettered still says it
        moved on: otherwise its last word ("more behind me") would hold the watermark for ever."""
        last: dict[int, Any] = {}
        for event in events:
            last[event.message.partition] = event
        for partition, event in last.items():
            marker = _dumps({"_progress": [event.message.topic, partition, event.message.offset, self._behind(event),
                                           sent_up_to.get(partition)]})
            for target in range(self.partitions):
                await self.topics.scored_internal.send(key=b"progress", value=marker, partition=target)

    # -- counting: scored-by-story -> news.scored, windows --------------------------------------

    def _stage(self, stream: Any, group: list[Any], table: Any, instances: dict[int, Any],
               make: Callable[[Overlay], Any]) -> Any:
        """The stage instance of ``group``'s partition over a fresh view of that partition's keys:
        kept across batches, built anew (from the table) when another worker wrote them since."""
        partition = group[-1].message.partition
        # faust's table and store follow the current event: make it one of this partition's
        stream._set_current_event(group[-1])  # noqa: SLF001
        state = Overlay(Prefixed(table, partition))
        instance = instances.get(partition)
        if instance is None or not instance.is_current(state):  # first batch, or written by another worker since
            instance = instances[partition] = make(state)
        instance.state = state
        return instance

    async def aggregate(self, stream: Any) -> None:
        """Per partition (stories): dedupe, publish news.scored, count into event-time windows, and
        send each closed window's counters to the judges, then how far the partition is closed through."""
        async for events in stream.take_events(500, within=0.02):
            async with self._processing("aggregate", events) as filled:
                for partition, group in _by_partition(events).items():
                    agg = self._stage(stream, group, self.count_table, self._counters, lambda state: Aggregator(
                        state, self.agg_config, None, time.time(), partitions=range(self.partitions)))
                    state = agg.state
                    ticked = False
                    async for chunk in self.passed_over.complete(group, 500, filled):  # what faust passed over, in place
                        self.watchdog.note(chunk)
                        ticked |= await self._aggregate_batch(agg, chunk)
                    await self._send_closed_windows(agg, partition)
                    through = agg.settle(time.time())
                    agg.end_batch()
                    state.flush()
                    if ticked or through != self._through_sent.get(partition):
                        await self._send_through(partition, through)

    async def _aggregate_batch(self, agg: Aggregator, events: list[Any]) -> bool:
        """Count one chunk; True if it held a tick (the judges then hear from this partition even if nothing moved)."""
        ticked = False
        for event in events:
            if event.value == TICK:
                ticked = True
                continue
            try:
                with agg.state.savepoint():
                    item, (partition, offset, behind), extra = _decode_internal(event.value)
                    if item is None:
                        agg.heard(partition, time.time(), behind, extra)
                        continue
                    added = agg.add(item, partition, offset, time.time(), behind)
            except Exception as exc:  # noqa: BLE001 - a record's fault: dead-letter it, keep counting
                await self._dead_letter_event(event, f"{type(exc).__name__}: {exc}", "aggregate")
                continue
            await self.topics.scored.send(key=added.item.id.encode(), value=_dumps(added.item.to_json()),
                                          headers=record_headers(TOPIC_SCORED, added.item.model_version),
                                          timestamp=self._event_time(added.item.published_at))
            metrics.ITEMS_OUT.labels("news.scored").inc()
            if added.status == "late":
                metrics.LATE.inc()
                log.warning("late item not counted in trends (published on news.scored)",
                            extra={"id": item.id, "published_at": str(item.published_at), "partition": partition,
                                   "offset": offset, "closed_through": agg.closed})
            if extra:
                metrics.E2E_SECONDS.observe(max(0.0, time.time() - extra))
        return ticked

    async def _send_closed_windows(self, agg: Aggregator, source: int) -> None:
        """Each window the watermark passed: its counters, key shard by key shard, to the judging
        partition that owns the shard, and to every judging partition a note that it closed; only
        once the broker has acknowledged them all is the window closed here."""
        while (close := agg.next_close(time.time())) is not None:
            pending = []
            windows = self.topics.windows_internal
            for shard, counters in close.parts.items():
                value = _dumps({"_part": [source, close.start, shard], **counters})
                pending.append(await windows.send(key=f"{close.start}|{shard}".encode(), value=value,
                                                  partition=shard % self.partitions))
            note = _dumps({"_window": [source, close.start]})
            for target in range(self.partitions):
                pending.append(await windows.send(key=b"window", value=note, partition=target))
            await asyncio.gather(*pending)
            agg.commit(close)

    async def _send_through(self, source: int, through: float) -> None:
        """Every judging partition hears how far counting partition ``source`` is closed through
        (after its windows' counters: one producer keeps them in order per partition)."""
        if not math.isfinite(through):
            return
        marker = _dumps({"_through": [source, through]})
        for target in range(self.partitions):
            await self.topics.windows_internal.send(key=b"through", value=marker, partition=target)
        self._through_sent[source] = through

    # -- judging: windows -> trends, alerts ----------------------------------------------------

    async def judge(self, stream: Any) -> None:
        """Per partition (keys): merge the counting partitions' counters of each closed window, and
        once every counting partition is closed through it, publish its trends and the detector's alerts."""
        async for events in stream.take_events(500, within=0.02):
            async with self._processing("judge", events) as filled:
                for partition, group in _by_partition(events).items():
                    merge = self._stage(stream, group, self.judge_table, self._judges, lambda state: WindowMerge(
                        state, self.settings.window_s, self.settings.lateness_s, self.partitions, self.detector,
                        key_ttl_s=self.agg_config.key_ttl_s,
                        on_detector_error=lambda key, exc: metrics.DETECTOR_ERRORS.inc()))
                    state = merge.state
                    async for chunk in self.passed_over.complete(group, 500, filled):
                        self.watchdog.note(chunk)
                        await self._judge_batch(merge, chunk)
                    await self._publish_verdicts(merge)
                    merge.end_batch()
                    state.flush()
            if self._judges:
                metrics.WATERMARK.set(max(0.0, min(m.closed for m in self._judges.values())))

    async def _judge_batch(self, merge: WindowMerge, events: list[Any]) -> None:
        for event in events:
            try:
                with merge.state.savepoint():
                    raw = _json_object(event.value)
                    if "_part" in raw:
                        source, start, shard = _ints(raw["_part"], 3)
                        if not isinstance(raw.get("keys"), dict) or not isinstance(raw.get("top", {}), dict):
                            raise ValueError("window counters without keys")
                        merge.part(source, start, shard, raw)
                    elif "_window" in raw:
                        merge.window(_ints(raw["_window"], 2)[1])
                    elif "_through" in raw:
                        marker = raw["_through"]
                        if not (isinstance(marker, list) and len(marker) == 2 and isinstance(marker[1], (int, float))):
                            raise ValueError("closed-through marker: expected [partition, time]")
                        merge.closed_through(_ints(marker[:1], 1)[0], float(marker[1]))
                    else:
                        raise ValueError("not a window record (_part, _window or _through)")
            except Exception as exc:  # noqa: BLE001 - a record's fault: dead-letter it, keep judging
                await self._dead_letter_event(event, f"{type(exc).__name__}: {exc}", "judge")

    async def _publish_verdicts(self, merge: WindowMerge) -> None:
        """Judge every window all counting partitions have closed: publish, wait for the broker's ack, then commit."""
        while (close := merge.next_close()) is not None:
            await self._publish(close)
            merge.commit(close)

    async def _publish(self, close: WindowClose) -> None:
        pending = []
        for trend in close.trends:
            key = f"{trend.key_type}|{trend.key}|{close.start}".encode()
            pending.append(await self.topics.trends.send(key=key, value=_dumps(trend.to_json()),
                                                         partition=trend_partition(trend.key_type, trend.key,
                                                                                   self.partitions),
                                                         headers=record_headers(TOPIC_TRENDS),
                                                         timestamp=self._event_time(trend.window_end)))
        for alert in close.alerts:
            pending.append(await self.topics.alerts.send(key=alert.id.encode(), value=_dumps(alert.to_json()),
                                                         headers=record_headers(TOPIC_ALERTS),
                                                         timestamp=self._event_time(alert.window_end)))
            metrics.ALERTS.labels(alert.severity, alert.status).inc()
            log.warning("alert", extra={"alert_id": alert.id, "status": alert.status, "severity": alert.severity,
                                        "summary": alert.summary})
        await asyncio.gather(*pending)  # acknowledged by the broker (acks=all): only now is the window closed
        metrics.ITEMS_OUT.labels("trends").inc(len(close.trends))

    # -- sinks: news.scored, trends, alerts -> the store (and the webhook outbox) ----------------

    def _get_store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.store_url, self.settings.store_migrate)
        return self._store

    def _get_outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(self._get_store().engine)
        return self._outbox

    async def _sink(self, stage: str, events: list[Any], write: Callable[[list[dict[str, Any]]], object]) -> None:
        """One implementation for every sink: decode, write the batch on the store's thread, and
        dead-letter exactly the records the store refuses (an unreachable store is retried, then restarts)."""
        decoded: list[tuple[Any, dict[str, Any]]] = []
        for event in events:
            try:
                record = json.loads(event.value)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            except (ValueError, TypeError, RecursionError) as exc:
                await self._dead_letter_event(event, f"not a record: {exc}", stage)
                continue
            decoded.append((event, record))
        if not decoded:
            return
        loop = asyncio.get_running_loop()
        failures = await loop.run_in_executor(self._store_pool, write_isolated, write, [r for _, r in decoded])
        for index, exc in failures:
            await self._dead_letter_event(decoded[index][0], f"{type(exc).__name__}: {str(exc)[:500]}", stage)

    def _sink_agent(self, topic: Any, stage: str, write: Callable[[], Callable[[list[dict[str, Any]]], object]],
                    batch: int, within_s: float) -> None:
        async def sink(stream: Any) -> None:
            async for events in stream.take_events(batch, within=within_s):
                async with self._processing(stage, events) as filled:
                    # what faust passed over, in place: a record it dropped would be missing from the
                    # store, and on the alerts topic a webhook would never be sent
                    async for chunk in self.passed_over.complete(events, batch, filled):
                        await self._sink(stage, chunk, write())
        sink.__name__ = sink.__qualname__ = stage
        self.app.agent(topic, name=f"riskpulse.stream.agents.{stage}")(exit_on_crash(sink))

    def _sink_alerts_blocking(self, records: list[dict[str, Any]]) -> None:
        """Store first, then the outbox: a delivery row exists only for a stored alert."""
        alerts = [Alert.model_validate(rec) for rec in records]  # a malformed record fails before anything is written
        self._get_store().upsert_alerts(records)
        for alert in alerts:
            enqueue_alert(self._get_outbox(), self.rules, alert, self.settings.dashboard_url)

    async def deliver_webhooks(self) -> None:
        """Drains the outbox beside the stream; a dead receiver costs this task timeouts, nothing else."""
        if not self.rules.routes:
            return
        loop = asyncio.get_running_loop()
        outbox = await loop.run_in_executor(self._outbox_pool, self._get_outbox)
        settings = self.settings
        policy = RetryPolicy(settings.webhook_retry_base_s, settings.webhook_retry_cap_s, settings.webhook_max_attempts)
        deliverer = Deliverer(outbox, self.rules, policy,
                              run_blocking=lambda fn, *a: loop.run_in_executor(self._outbox_pool, fn, *a))
        deliverer.on_result = lambda route, outcome: metrics.WEBHOOKS.labels(route, outcome).inc()
        await deliverer.run_forever()

    async def retention(self) -> None:
        """The store and the webhook outbox keep RETENTION_DAYS (pending webhook messages are kept)."""
        cutoff = datetime.now(timezone.utc) - timedelta(days=self.settings.retention_days)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._store_pool, self._get_store().purge, cutoff)
        await loop.run_in_executor(self._outbox_pool, self._get_outbox().purge, cutoff.timestamp())

    # -- the process: logs, stalls, heartbeats, web pages --------------------------------------

    async def own_the_log_handlers(self) -> None:
        """faust/mode install their own log handlers at start: our formatter (fields, JSON, redaction)
        and rate limit on them (see riskpulse.logs)."""
        take_over_handlers(self.settings.log_json)
        asyncio.get_running_loop().set_exception_handler(self._loop_exception)

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """faust's send callback raises on a send cancelled as the worker stops, one ERROR traceback
        per pending record at every deploy. Nothing is lost (the batch that sent it was never
        acknowledged and is read again by the next owner): say so once, quietly."""
        if isinstance(context.get("exception"), asyncio.CancelledError) and "_on_published" in str(context.get("handle")):
            if not self._said_cancelled:  # said once per process, counted always
                self._said_cancelled = True
                log.info("sends still pending at stop were cancelled; their input is read again by the next owner")
            metrics.SENDS_CANCELLED.inc()
            return
        loop.default_exception_handler(context)

    async def stall_check(self) -> None:
        """A partition that has data but makes no progress (faust-streaming#629, after a rebalance).

        Judged from this process's own records (processed offsets, faust's assignment and committed
        offsets) and end offsets asked on a separate client: nothing here calls into faust's
        consumer thread, so a wedged one is seen as what it is, a partition without progress."""
        app, watchdog, stall_s = self.app, self.watchdog, self.settings.stall_s
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
            return
        self._settling_since = None
        inputs = [t.get_topic_name() for t in (self.topics.news, self.topics.scored_internal, self.topics.windows_internal)]
        group_keys = [(topic, p) for topic in inputs for p in range(self.partitions)]
        tps = [tp for tp in app.assignor.assigned_actives() if tp.topic in inputs]  # faust's own record
        ends = await self.broker_offsets.end(group_keys)
        if ends is None:  # broker unreachable (or slow): nothing to judge until it answers
            watchdog.settle(now)
            self.group_watch.settle(now)
            return
        mine = {(tp.topic, tp.partition) for tp in tps}
        group_committed = await self._check_group(ends, mine, now)
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
        self._ends = {key: end for key, end in ends.items() if end is not None}
        stuck = watchdog.stuck(ends, now)
        if stuck:
            log.error("partitions stalled; exiting so the supervisor restarts the worker (state is idempotent)",
                      extra={"stalled": stuck, "tasks": task_stacks(), "consumer": self._consumer_state(tps)})
            os._exit(RESTART)

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

    def _fetcher_state(self, tp: Any) -> dict[str, Any]:
        """aiokafka's own state of ``tp`` (position, paused, status), read without calling into its
        thread: where a stalled partition's fetcher stands (private fields; both libraries are pinned)."""
        try:
            client = self.app.consumer._thread._consumer  # noqa: SLF001
            state = client._subscription.subscription.assignment.state_value(tp)  # noqa: SLF001
            if state is None:
                return {"assigned": False}
            consumer = self.app.consumer
            return {"position": state._position, "paused": state._paused, "status": str(state._status),  # noqa: SLF001
                    "highwater": state.highwater, "active": tp in (consumer._active_partitions or ()),  # noqa: SLF001
                    "buffer_full": tp in consumer._buffered_partitions}  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the exit it explains
            return {"error": repr(exc)}

    def _commit_state(self, tp: Any) -> dict[str, Any]:
        """faust's commit bookkeeping of ``tp`` for the log line (private fields; faust is pinned)."""
        consumer = self.app.consumer
        try:
            acked = sorted(consumer._acked.get(tp, []))  # noqa: SLF001
            return {"acked_head": acked[:10], "acked": len(acked),
                    "gaps": [(iv.begin, iv.end) for iv in sorted(consumer._gap.get(tp, []))][:10],  # noqa: SLF001
                    "unacked": sorted(m.offset for m in consumer._unacked_messages if m.tp == tp)[:10]}  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the check it explains
            return {"error": repr(exc)}

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

    def _consumer_state(self, tps: list[Any]) -> dict[str, Any]:
        """faust's own view of the stalled partitions, for the log line (private fields; faust is pinned)."""
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

    async def tick(self) -> None:
        """Heartbeats: for each news partition this worker scores, how many records it has yet to read
        (the fetcher's last highwater against what it processed; no broker call). A partition is idle
        for the watermark only once its scorer says it is caught up (stream/core/watermark.py). Every
        partition of the counting stage hears them. The tick itself lets the counting partitions
        close windows, and tell the judges so, while no news arrives."""
        app, scored_internal = self.app, self.topics.scored_internal
        consumer = app.consumer
        if consumer is not None and not app.rebalancing:
            try:
                assigned = [tp for tp in consumer.assignment() if tp.topic == self.topics.news.get_topic_name()]
            except Exception:  # noqa: BLE001 - no assignment yet
                assigned = []
            for tp in assigned:
                seen = self.watchdog.progress.get((tp.topic, tp.partition))
                try:
                    highwater = consumer.highwater(tp)
                except Exception:  # noqa: BLE001 - revoked meanwhile
                    continue
                # where this worker stands: its last processed offset, or before any, the committed one
                # (a partition with a backlog it has not started on is slow, not idle)
                committed = self.passed_over.committed(tp)
                last = max(seen[0] if seen else -1, committed - 1 if committed is not None else -1)
                if (seen is None and committed is None) or highwater is None:
                    continue  # nothing known yet: the partition keeps holding the watermark
                marker = _dumps({"_progress": [tp.topic, tp.partition, last, max(0, int(highwater) - last - 1)]})
                for target in range(self.partitions):
                    await scored_internal.send(key=b"progress", value=marker, partition=target)
            await self.passed_over.catch_up({topic for topic, agent in self._readers.items() if agent in self.watchdog.busy})
        for target in range(self.partitions):
            await scored_internal.send(key=b"tick", value=TICK, partition=target)

    async def healthz(self, web: Any, request: Any) -> Any:
        """Liveness: the event loop answers."""
        return web.json({"status": "ok"})

    def health(self, now: float) -> dict[str, Any]:
        """What readiness reports: model loaded, partitions assigned, the records behind on the
        partitions this worker holds (at the last stall check), and those stalling: data waiting
        and no progress for half of STALL_S (at all of it the worker exits for a restart)."""
        app = self.app
        try:
            assigned = bool(app.consumer.assignment()) if app.consumer else False
        except Exception:  # noqa: BLE001 - consumer not started yet: not ready (503), not an error (500)
            assigned = False
        progress = self.watchdog.progress
        lag = sum(max(0, end - progress[key][0] - 1) for key, end in self._ends.items() if key in progress)
        stalling = sorted(f"{topic}:{partition}" for topic, partition
                          in self.watchdog.stuck(dict(self._ends), now + self.settings.stall_s / 2))
        ready = self._service is not None and assigned and not app.rebalancing and not stalling
        return {"ready": ready, "model_loaded": self._service is not None, "assigned": assigned, "lag": lag,
                "stalling": stalling}

    async def readyz(self, web: Any, request: Any) -> Any:
        """Readiness: model loaded, partitions assigned, not rebalancing, no partition stalling."""
        health = self.health(time.time())
        return web.json(health, status=200 if health["ready"] else 503)

    async def metrics_page(self, web: Any, request: Any) -> Any:
        body, content_type = metrics.exposition()
        return web.bytes(body, content_type=content_type)
