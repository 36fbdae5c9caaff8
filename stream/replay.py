"""Replay a historical CSV/JSONL file into ``news``, keeping each item's event time.

``speed`` 1.0 reproduces the original spacing, 500 runs 500x faster, ``max`` sends as fast as
the broker takes it (load tests). Windows use event time, so every speed gives the same trends.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from tqdm.auto import tqdm

from riskpulse.records import TOPIC_NEWS

from .producer import news_key, news_producer

FIELDS = ("id", "headline", "source", "url", "body", "published_at", "tickers", "lang")


def read_items(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV (``headline`` or ``text`` column) or JSONL file as ``news`` records, in event-time order."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        frame = pd.read_json(path, lines=True, dtype=False)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "headline" not in frame.columns and "text" in frame.columns:
        frame = frame.rename(columns={"text": "headline"})
    if "headline" not in frame.columns:
        raise ValueError(f"{path} needs a 'headline' (or 'text') column/field")
    items = []
    for row in frame.to_dict(orient="records"):
        item = {k: row[k] for k in FIELDS if k in row and not _empty(row[k])}
        if isinstance(item.get("tickers"), str):
            item["tickers"] = [t for t in item["tickers"].replace(";", ",").split(",") if t.strip()]
        items.append(item)
    if all("published_at" in i for i in items):
        items.sort(key=lambda i: pd.Timestamp(i["published_at"]))
    return items


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _schedule(items: list[dict[str, Any]], speed: float | None) -> Iterator[tuple[float, dict[str, Any]]]:
    """(seconds after start to send, item)."""
    if speed is None or not all("published_at" in i for i in items):
        for item in items:
            yield 0.0, item
        return
    t0 = pd.Timestamp(items[0]["published_at"]).timestamp()
    for item in items:
        yield (pd.Timestamp(item["published_at"]).timestamp() - t0) / speed, item


def replay(path: Path, bootstrap: str, speed: float | None, topic: str = TOPIC_NEWS, progress: bool = True) -> int:
    """Send every item; returns how many. ``speed=None`` means as fast as possible."""
    items = read_items(path)
    producer = news_producer(bootstrap)
    start = time.monotonic()
    try:
        for due, item in tqdm(_schedule(items, speed), total=len(items), desc="replay", unit="item", disable=not progress):
            wait = due - (time.monotonic() - start)
            if wait > 0:
                time.sleep(wait)
            producer.send(topic, value=item, key=news_key(item))
        producer.flush()
    finally:
        producer.close()
    return len(items)
