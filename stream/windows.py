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

from .records import EvidenceHeadline, ScoredNews, SentimentProbs, Trend

SENTIMENT_SLOT = {"negative": 1, "neutral": 2, "positive": 3}
EVIDENCE_PER_KEY = 5  # most negative headlines kept per key and window: an alert's evidence


def window_start(ts: float, window_s: int) -> int:
    return int(ts // window_s) * window_s


def empty_window() -> dict[str, Any]:
    return {"keys": {}, "ids": [], "top": {}}


def _keep_most_negative(rows: list[list[Any]]) -> list[list[Any]]:
    """Lowest score first, ties by id: the same set whatever the arrival order or sharding."""
    return sorted(rows, key=lambda r: (r[0], r[1]))[:EVIDENCE_PER_KEY]


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
        if item.sentiment == "negative":
            p = item.sentiment_probs
            row = [item.sentiment_score, item.id, item.headline[:300], item.url, p.negative, p.neutral, p.positive]
            top = state.setdefault("top", {})
            top[key] = _keep_most_negative(top.get(key, []) + [row])
    return True


def merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one shard's ids and counters into ``into`` (mutated)."""
    into["ids"] += part["ids"]
    for key, counts in part["keys"].items():
        acc = into["keys"].setdefault(key, [0, 0, 0, 0, 0.0])
        for i, v in enumerate(counts):
            acc[i] += v
    for key, rows in part.get("top", {}).items():
        top = into.setdefault("top", {})
        top[key] = _keep_most_negative(top.get(key, []) + rows)


def trends(start: int, window_s: int, state: dict[str, Any]) -> list[Trend]:
    out = []
    for key, (count, neg, neu, pos, total) in sorted(state["keys"].items()):
        key_type, name = key.split("|", 1)
        out.append(Trend(key_type=key_type, key=name,  # type: ignore[arg-type]
                         window_start=datetime.fromtimestamp(start, timezone.utc),
                         window_end=datetime.fromtimestamp(start + window_s, timezone.utc),
                         count=count, negative=neg, neutral=neu, positive=pos,
                         mean_score=max(-1.0, min(1.0, round(total / count, 6))),
                         negative_share=round(neg / count, 6),
                         top_negative=[_evidence(r) for r in state.get("top", {}).get(key, [])]))
    return out


def _evidence(row: list[Any]) -> EvidenceHeadline:
    score, id_, headline, url, neg, neu, pos = row
    return EvidenceHeadline(id=id_, headline=headline, sentiment_score=score, url=url,
                            sentiment_probs=SentimentProbs(negative=neg, neutral=neu, positive=pos))


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
