"""Tumbling event-time windows per topic and per ticker: pure arithmetic, no Kafka.

A window's state is one JSON-able dict: per-key counters plus the ids already counted. Applying
an item whose id is already in the window is a no-op, so redelivery after a crash never double
counts, and because state, counters and ids are written together (one table entry per window)
a partial write cannot split them.

Windows close on the watermark: the highest event time seen, minus the allowed lateness. While
the stream is idle, the watermark also advances with the wall clock, by the idle time only, so a
replay at any speed >= 1x closes exactly the windows a live run would.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from .records import ScoredNews, Trend

SENTIMENT_SLOT = {"negative": 1, "neutral": 2, "positive": 3}


def window_start(ts: float, window_s: int) -> int:
    return int(ts // window_s) * window_s


def empty_window() -> dict[str, Any]:
    return {"keys": {}, "ids": []}


def keys_of(item: ScoredNews) -> list[str]:
    return [f"topic|{item.topic}"] + [f"ticker|{t}" for t in item.tickers]


def apply(state: dict[str, Any], item: ScoredNews) -> bool:
    """Count ``item`` into ``state`` (mutated); False if it was already counted."""
    if item.id in state["ids"]:
        return False
    state["ids"].append(item.id)
    for key in keys_of(item):
        c = state["keys"].setdefault(key, [0, 0, 0, 0, 0.0])  # count, neg, neu, pos, sum(score)
        c[0] += 1
        c[SENTIMENT_SLOT[item.sentiment]] += 1
        c[4] += item.sentiment_score
    return True


def merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one shard's ids and counters into ``into`` (mutated)."""
    into["ids"] += part["ids"]
    for key, counts in part["keys"].items():
        acc = into["keys"].setdefault(key, [0, 0, 0, 0, 0.0])
        for i, v in enumerate(counts):
            acc[i] += v


def trends(start: int, window_s: int, state: dict[str, Any]) -> list[Trend]:
    out = []
    for key, (count, neg, neu, pos, total) in sorted(state["keys"].items()):
        key_type, name = key.split("|", 1)
        out.append(Trend(key_type=key_type, key=name,  # type: ignore[arg-type]
                         window_start=datetime.fromtimestamp(start, timezone.utc),
                         window_end=datetime.fromtimestamp(start + window_s, timezone.utc),
                         count=count, negative=neg, neutral=neu, positive=pos,
                         mean_score=max(-1.0, min(1.0, round(total / count, 6))),
                         negative_share=round(neg / count, 6)))
    return out


def closable(starts: Iterable[int], watermark: float, window_s: int, lateness_s: int) -> list[int]:
    """Windows whose end plus lateness the watermark has passed, oldest first."""
    return sorted(s for s in starts if s + window_s + lateness_s <= watermark)


def is_late(ts: float, watermark: float, window_s: int, lateness_s: int) -> bool:
    """True if the item's window has already closed."""
    return window_start(ts, window_s) + window_s + lateness_s <= watermark


def idle_watermark(max_event_ts: float, last_event_wall: float, now_wall: float, idle_s: float) -> float:
    """The watermark while idle: after ``idle_s`` without events, event time moves on with the wall clock.

    Callers keep ``max(previous, this)``, so the watermark never goes back.
    """
    idle = now_wall - last_event_wall
    return max_event_ts + idle if idle >= idle_s else max_event_ts
