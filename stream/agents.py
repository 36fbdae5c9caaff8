"""Faust agents: short glue around the pure functions of validation, dedupe and windows.

Delivery is at-least-once end to end (Faust flushes the producer before committing offsets);
the aggregate agent makes counting exact by remembering which ids each window holds.
"""

from __future__ import annotations

import asyncio
import os
import json
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from aiokafka.errors import IllegalStateError, KafkaError
from faust.types import EventT

from alerts.delivery import Deliverer, RetryPolicy, enqueue_alert
from alerts.detector import Detector
from alerts.outbox import Outbox
from alerts.rules import Rules

from . import metrics, windows
from .app import (WINDOW_SHARDS, alerts_topic, app, dedupe_table, detector_table, dlq_topic, news_topic,
                  scored_internal, scored_topic, settings, trends_topic, windows_table)
from .records import TOPIC_NEWS, Alert, ScoredNews, Trend
from .watchdog import StallWatchdog
from .dedupe import dedupe_key, duplicate_of
from .scoring import ScoringService
from .store import Store
from .supervisor import RESTART, exit_on_crash
from .validation import Invalid, dead_letter, parse_news

log = logging.getLogger(__name__)

watchdog = StallWatchdog(stall_s=settings.stall_s)
_model_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")  # inference off the event loop
_service: ScoringService | None = None

WATERMARK_KEY = "__watermark__"
OPEN_KEY = "__open_windows__"
FIRING_KEY = "__firing__"  # keys with a firing alert: they resolve even when their news stops
TICK = b'{"tick":1}'


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def _scoring_service() -> ScoringService:
    global _service
    if _service is None:
        loop = asyncio.get_running_loop()
        _service = await loop.run_in_executor(_model_pool, ScoringService.from_settings, settings)
    return _service


@app.agent(news_topic)
@exit_on_crash
async def score(stream: Any) -> None:
    """news -> validate (bad input to news.dlq) -> micro-batch scoring -> riskpulse-scored."""
    service = await _scoring_service()
    loop = asyncio.get_running_loop()
    async for events in stream.take_events(settings.batch_max_size, within=settings.batch_max_wait_ms / 1000):
        now = datetime.now(timezone.utc)
        good: list[tuple[EventT, Any]] = []
        for event in events:
            parsed = parse_news(event.value, now)
            if isinstance(parsed, Invalid):
                msg = event.message
                letter = dead_letter(event.value, parsed.reason, msg.topic, msg.partition, msg.offset, now)
                log.warning("news.dlq", extra={"reason": parsed.reason, "topic": msg.topic,
                                               "partition": msg.partition, "offset": msg.offset})
                metrics.DLQ.inc()
                await dlq_topic.send(key=f"{msg.topic}:{msg.partition}:{msg.offset}".encode(), value=_dumps(letter.to_json()))
            else:
                good.append((event, parsed))
        metrics.ITEMS_IN.labels(TOPIC_NEWS).inc(len(events))
        watchdog.note(events)
        if not good:
            continue
        started = time.perf_counter()
        scored = await loop.run_in_executor(_model_pool, service.score_items, [item for _, item in good], now)
        metrics.MODEL_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(good))
        for (event, _), record in zip(good, scored):
            value = record.to_json()
            value["_ingest_ts"] = event.message.timestamp  # broker time of the news record, for latency figures
            await scored_internal.send(key=record.id.encode(), value=_dumps(value))


def _shard_key(start: int, shard: int) -> str:
    return f"w|{start}|{shard}"


class BatchState:
    """Write-back view of the state tables for one batch: each touched key is written once.

    Every write carries whole values (a shard's counters together with its ids), so a crash
    between two writes leaves each key consistent, and redelivery is absorbed by the ids.
    """

    def __init__(self) -> None:
        self.cache: dict[tuple[int, str], Any] = {}
        self.dirty: set[tuple[int, str]] = set()
        self.tables = (windows_table, dedupe_table, detector_table)

    def get(self, table: int, key: str) -> Any:
        if (table, key) not in self.cache:
            self.cache[(table, key)] = self.tables[table].get(key)
        return self.cache[(table, key)]

    def set(self, table: int, key: str, value: Any) -> None:
        self.cache[(table, key)] = value
        self.dirty.add((table, key))

    def delete(self, table: int, key: str) -> None:
        self.set(table, key, None)

    def flush(self) -> None:
        for table, key in sorted(self.dirty):
            value = self.cache[(table, key)]
            if value is None:
                if key in self.tables[table]:
                    del self.tables[table][key]
            else:
                self.tables[table][key] = value
        self.dirty.clear()


W, D, A = 0, 1, 2  # table indices in BatchState

rules = Rules.load(settings.alert_rules)  # validated by `riskpulse worker` before this process starts
detector = Detector(rules, settings.window_s)


async def _detect(state: "BatchState", start: int, closed: list[Trend]) -> None:
    """The closed window through the spike detector; its state lives in the detector table."""
    firing = set(state.get(W, FIRING_KEY) or [])
    found = detector.close_window(start, closed, firing, lambda k: state.get(A, k), lambda k, v: state.set(A, k, v))
    for alert in found:
        await alerts_topic.send(key=alert.id.encode(), value=_dumps(alert.to_json()))
        metrics.ALERTS.labels(alert.severity, alert.status).inc()
        log.warning("alert", extra={"alert_id": alert.id, "status": alert.status, "severity": alert.severity,
                                    "summary": alert.summary})
    state.set(W, FIRING_KEY, sorted(firing))


async def _advance(state: BatchState, watermark: float) -> None:
    """Persist the watermark first, then close what it passed: a restart never reopens a closed window."""
    open_windows = state.get(W, OPEN_KEY) or []
    closing = windows.closable(open_windows, watermark, settings.window_s, settings.lateness_s)
    if not closing:
        return
    state.set(W, WATERMARK_KEY, {"watermark": watermark})
    state.flush()
    for start in closing:
        merged = windows.empty_window()
        for shard in range(WINDOW_SHARDS):
            part = state.get(W, _shard_key(start, shard))
            if part:
                windows.merge(merged, part)
        closed = windows.trends(start, settings.window_s, merged)
        for trend in closed:
            key = f"{trend.key_type}|{trend.key}|{start}".encode()
            await trends_topic.send(key=key, value=_dumps(trend.to_json()))
            metrics.ITEMS_OUT.labels("trends").inc()
        await _detect(state, start, closed)
        for shard in range(WINDOW_SHARDS):
            if state.get(W, _shard_key(start, shard)) is not None:
                state.delete(W, _shard_key(start, shard))
    state.set(W, OPEN_KEY, [s for s in open_windows if s not in set(closing)])
    state.flush()


_clock: dict[str, Any] = {"last_event_wall": time.time(), "max_event": None}


def _persisted_watermark(state: BatchState) -> float:
    """Written only when windows close, which is all that correctness needs."""
    return float((state.get(W, WATERMARK_KEY) or {}).get("watermark", 0.0))


async def _aggregate_one(state: BatchState, value: bytes) -> None:
    raw = json.loads(value)
    ingest_ts = raw.pop("_ingest_ts", None)
    item = ScoredNews.model_validate(raw)
    ts = item.published_at.timestamp()

    dkey = dedupe_key(item.headline)
    first = state.get(D, dkey)
    dup = duplicate_of(first, item.id, ts, settings.dedupe_horizon_s)
    if dup is None and (first is None or first["id"] != item.id):
        state.set(D, dkey, {"id": item.id, "ts": ts})
    if dup is not None:
        item = item.model_copy(update={"duplicate_of": dup})
    await scored_topic.send(key=item.id.encode(), value=_dumps(item.to_json()))
    metrics.ITEMS_OUT.labels("news.scored").inc()
    if ingest_ts:
        metrics.E2E_SECONDS.observe(max(0.0, time.time() - ingest_ts))

    if dup is None:
        if windows.is_late(ts, _persisted_watermark(state), settings.window_s, settings.lateness_s):
            metrics.LATE.inc()
            log.info("late item not counted", extra={"id": item.id, "published_at": str(item.published_at)})
        else:
            start = windows.window_start(ts, settings.window_s)
            skey = _shard_key(start, zlib.crc32(item.id.encode()) % WINDOW_SHARDS)
            shard = state.get(W, skey) or windows.empty_window()
            if windows.apply(shard, item):
                state.set(W, skey, shard)
            open_windows = state.get(W, OPEN_KEY) or []
            if start not in open_windows:
                state.set(W, OPEN_KEY, sorted(open_windows + [start]))
    if ts > _clock["max_event"]:
        _clock["max_event"] = ts
        await _advance(state, ts)


@app.agent(scored_internal)
@exit_on_crash
async def aggregate(stream: Any) -> None:
    """Dedupe, publish news.scored, count into event-time windows, emit trends as windows close."""
    async for events in stream.take_events(500, within=0.02):
        # take_events runs the iteration in another task; the RocksDB store picks its partition
        # from the current event, so name one (all share partition 0 of the internal topic)
        stream._set_current_event(events[-1])  # noqa: SLF001
        state = BatchState()
        if _clock["max_event"] is None:
            _clock["max_event"] = _persisted_watermark(state)
        watchdog.note(events)
        for event in events:
            if event.value == TICK:
                wm = windows.idle_watermark(_clock["max_event"], _clock["last_event_wall"], time.time(), settings.idle_s)
                await _advance(state, wm)
            else:
                _clock["last_event_wall"] = time.time()
                await _aggregate_one(state, event.value)
        state.flush()


_store_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
_store: Store | None = None


def _get_store() -> Store:
    global _store
    if _store is None:
        _store = Store(settings.store_url)
    return _store


@app.agent(scored_topic)
@exit_on_crash
async def sink_scored(stream: Any) -> None:
    """news.scored -> store (idempotent upserts by id)."""
    loop = asyncio.get_running_loop()
    async for events in stream.take_events(500, within=1.0):
        await loop.run_in_executor(_store_pool, _get_store().upsert_scored, [json.loads(e.value) for e in events])


@app.agent(trends_topic)
@exit_on_crash
async def sink_trends(stream: Any) -> None:
    """trends -> store (idempotent upserts by key and window)."""
    loop = asyncio.get_running_loop()
    async for events in stream.take_events(500, within=1.0):
        await loop.run_in_executor(_store_pool, _get_store().upsert_trends, [json.loads(e.value) for e in events])


_outbox_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
_outbox: Outbox | None = None


def _get_outbox() -> Outbox:
    global _outbox
    if _outbox is None:
        _outbox = Outbox(_get_store().engine)
    return _outbox


def _sink_alerts_blocking(records: list[dict[str, Any]]) -> None:
    """Store first, then the outbox: a delivery row exists only for a stored alert."""
    _get_store().upsert_alerts(records)
    for rec in records:
        enqueue_alert(_get_outbox(), rules, Alert.model_validate(rec))


@app.agent(alerts_topic)
@exit_on_crash
async def sink_alerts(stream: Any) -> None:
    """alerts -> store (one row per alert id) + webhook outbox (one row per route and message)."""
    loop = asyncio.get_running_loop()
    async for events in stream.take_events(100, within=0.5):
        await loop.run_in_executor(_store_pool, _sink_alerts_blocking, [json.loads(e.value) for e in events])


@app.task
async def deliver_webhooks() -> None:
    """Drains the outbox beside the stream; a dead receiver costs this task timeouts, nothing else."""
    if not rules.routes:
        return
    loop = asyncio.get_running_loop()
    outbox = await loop.run_in_executor(_outbox_pool, _get_outbox)
    policy = RetryPolicy(settings.webhook_retry_base_s, settings.webhook_retry_cap_s, settings.webhook_max_attempts)
    deliverer = Deliverer(outbox, rules, policy, run_blocking=lambda fn, *a: loop.run_in_executor(_outbox_pool, fn, *a))
    deliverer.on_result = lambda route, outcome: metrics.WEBHOOKS.labels(route, outcome).inc()
    await deliverer.run_forever()


@app.timer(interval=3600.0)
async def retention() -> None:
    cutoff = datetime.now(timezone.utc) - timedelta(days=settings.retention_days)
    await asyncio.get_running_loop().run_in_executor(_store_pool, _get_store().purge, cutoff)


_settling: dict[str, float] = {}
_blocked: dict[str, float] = {}


@app.timer(interval=5.0)
async def stall_check() -> None:
    """A partition that has data but makes no progress (faust-streaming#629, after a rebalance)."""
    now = time.time()
    if app.rebalancing or app.consumer is None or app.tables.recovery.in_recovery:
        watchdog.progress.clear()  # judge afresh once the group and the tables have settled
        _settling.setdefault("since", now)
        if now - _settling["since"] > 4 * settings.stall_s:  # a recovery that never ends (seen once)
            log.error("stuck rebalancing or recovering; exiting so the supervisor restarts the worker")
            os._exit(RESTART)
        return
    _settling.clear()
    watched = {news_topic.get_topic_name(), scored_internal.get_topic_name()}
    tps = [tp for tp in app.consumer.assignment() if tp.topic in watched]
    if not tps:
        return
    # asked of the broker: a partition that was never fetched has no highwater locally
    try:
        highwaters = await asyncio.wait_for(app.consumer.highwaters(*tps), timeout=10.0)
    except KafkaError:  # broker unreachable: nothing to judge until it is back
        watchdog.progress.clear()
        return
    except asyncio.TimeoutError:  # the consumer thread itself does not answer: that is a stall too
        _blocked.setdefault("since", now)
        if now - _blocked["since"] > settings.stall_s:
            log.error("consumer thread unresponsive; exiting so the supervisor restarts the worker")
            os._exit(RESTART)
        return
    _blocked.clear()
    for tp in tps:
        try:
            position = await asyncio.wait_for(app.consumer.position(tp), timeout=5.0)
        except (IllegalStateError, asyncio.TimeoutError):  # revoked meanwhile, or no answer yet
            continue
        if position is not None:
            watchdog.start_from((tp.topic, tp.partition), position, now)
            if highwaters.get(tp) is not None:
                metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwaters[tp] - position))
    stuck = watchdog.stuck({(tp.topic, tp.partition): highwaters.get(tp) for tp in tps}, now)
    if stuck:
        log.error("partitions stalled; exiting so the supervisor restarts the worker (state is idempotent)",
                  extra={"stalled": stuck})
        os._exit(RESTART)


@app.timer(interval=1.0)
async def tick() -> None:
    """Lets the aggregate agent close windows while no news arrives (see windows.idle_watermark)."""
    await scored_internal.send(key=b"tick", value=TICK)


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    """Liveness: the event loop answers."""
    return web.json({"status": "ok"})


@app.page("/readyz")
async def readyz(web: Any, request: Any) -> Any:
    """Readiness: model loaded, partitions assigned, not rebalancing."""
    assigned = bool(app.consumer.assignment()) if app.consumer else False
    ready = _service is not None and assigned and not app.rebalancing
    return web.json({"ready": ready, "model_loaded": _service is not None, "assigned": assigned},
                    status=200 if ready else 503)


@app.page("/metrics")
async def metrics_page(web: Any, request: Any) -> Any:
    body, content_type = metrics.exposition()
    return web.bytes(body, content_type=content_type)
