"""Faust agents: short glue around the pure functions of validation, dedupe and windows.

Delivery is at-least-once end to end (Faust flushes the producer before committing offsets);
the aggregate agent makes counting exact by remembering which ids each window holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from faust.types import EventT

from . import metrics, windows
from .app import (WINDOW_SHARDS, app, dedupe_table, dlq_topic, news_topic, scored_internal, scored_topic,
                  settings, trends_topic, windows_table)
from .dedupe import dedupe_key, duplicate_of
from .records import TOPIC_NEWS, ScoredNews
from .scoring import ScoringService
from .validation import Invalid, dead_letter, parse_news

log = logging.getLogger(__name__)

_model_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")  # inference off the event loop
_service: ScoringService | None = None

WATERMARK_KEY = b"__watermark__"
OPEN_KEY = b"__open_windows__"
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


def _shard_key(start: int, shard: int) -> bytes:
    return f"w|{start}|{shard}".encode()


def _close_windows(watermark: float) -> list[tuple[int, dict[str, Any]]]:
    """Merge the shards of every closable window; the caller emits and then deletes them."""
    open_windows = windows_table.get(OPEN_KEY) or []
    out = []
    for start in windows.closable(open_windows, watermark, settings.window_s, settings.lateness_s):
        merged = windows.empty_window()
        for shard in range(WINDOW_SHARDS):
            part = windows_table.get(_shard_key(start, shard))
            if part:
                merged["ids"] += part["ids"]
                for key, counts in part["keys"].items():
                    acc = merged["keys"].setdefault(key, [0, 0, 0, 0, 0.0])
                    for i, v in enumerate(counts):
                        acc[i] += v
        out.append((start, merged))
    return out


async def _emit_closed(watermark: float) -> None:
    closed = _close_windows(watermark)
    if not closed:
        return
    for start, merged in closed:
        for trend in windows.trends(start, settings.window_s, merged):
            key = f"{trend.key_type}|{trend.key}|{start}".encode()
            await trends_topic.send(key=key, value=_dumps(trend.to_json()))
            metrics.ITEMS_OUT.labels("trends").inc()
        for shard in range(WINDOW_SHARDS):
            if windows_table.get(_shard_key(start, shard)) is not None:
                del windows_table[_shard_key(start, shard)]
    done = {start for start, _ in closed}
    windows_table[OPEN_KEY] = [s for s in (windows_table.get(OPEN_KEY) or []) if s not in done]


_last_event_wall = time.time()


@app.agent(scored_internal)
async def aggregate(stream: Any) -> None:
    """Dedupe, publish news.scored, count into event-time windows, emit trends as windows close."""
    global _last_event_wall
    async for event in stream.events():
        value = event.value
        state = windows_table.get(WATERMARK_KEY) or {"watermark": 0.0, "max_event": 0.0}
        if value == TICK:
            wm = windows.idle_watermark(state["max_event"], _last_event_wall, time.time(), settings.idle_s)
            if wm > state["watermark"]:
                windows_table[WATERMARK_KEY] = {**state, "watermark": wm}
                await _emit_closed(wm)
            continue
        _last_event_wall = time.time()
        raw = json.loads(value)
        ingest_ts = raw.pop("_ingest_ts", None)
        item = ScoredNews.model_validate(raw)
        ts = item.published_at.timestamp()

        dkey = dedupe_key(item.headline).encode()
        first = dedupe_table.get(dkey)
        dup = duplicate_of(first, item.id, ts, settings.dedupe_horizon_s)
        if dup is None and (first is None or first["id"] != item.id):
            dedupe_table[dkey] = {"id": item.id, "ts": ts}
        if dup is not None:
            item = item.model_copy(update={"duplicate_of": dup})
        await scored_topic.send(key=item.id.encode(), value=_dumps(item.to_json()))
        metrics.ITEMS_OUT.labels("news.scored").inc()
        if ingest_ts:
            metrics.E2E_SECONDS.observe(max(0.0, time.time() - ingest_ts / 1000))

        if dup is None:
            if windows.is_late(ts, state["watermark"], settings.window_s, settings.lateness_s):
                metrics.LATE.inc()
                log.info("late item not counted", extra={"id": item.id, "published_at": str(item.published_at)})
            else:
                start = windows.window_start(ts, settings.window_s)
                skey = _shard_key(start, zlib.crc32(item.id.encode()) % WINDOW_SHARDS)
                shard = windows_table.get(skey) or windows.empty_window()
                if windows.apply(shard, item):
                    windows_table[skey] = shard
                open_windows = windows_table.get(OPEN_KEY) or []
                if start not in open_windows:
                    windows_table[OPEN_KEY] = sorted(open_windows + [start])
        if ts > state["max_event"]:
            wm = max(state["watermark"], ts)
            windows_table[WATERMARK_KEY] = {"watermark": wm, "max_event": ts}
            await _emit_closed(wm)


@app.timer(interval=1.0)
async def tick() -> None:
    """Lets the aggregate agent close windows while no news arrives (see windows.idle_watermark)."""
    await scored_internal.send(key=b"tick", value=TICK)
