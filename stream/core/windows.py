"""Tumbling event-time windows per topic and per ticker: pure arithmetic, no Kafka.

A window's counters are JSON-able dicts (per key: count, negative, neutral, positive, sum of
scores, plus the most negative headlines as evidence), so they can live in a Faust table, be
merged across shards and turned into ``trends`` records. When a window closes and which items
count is the aggregator's business (stream/core/aggregator.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from riskpulse.records import EvidenceHeadline, ScoredNews, SentimentProbs, Trend

SENTIMENT_SLOT = {"negative": 1, "neutral": 2, "positive": 3}
EVIDENCE_PER_KEY = 5  # most negative headlines kept per key and window: an alert's evidence


def window_start(ts: float, window_s: int) -> int:
    return int(ts // window_s) * window_s


def empty_window() -> dict[str, Any]:
    return {"keys": {}, "top": {}}


def _keep_most_negative(rows: list[list[Any]]) -> list[list[Any]]:
    """Lowest score first, ties by id: the same set whatever the arrival order or sharding."""
    return sorted(rows, key=lambda r: (r[0], r[1]))[:EVIDENCE_PER_KEY]


def keys_of(item: ScoredNews) -> list[str]:
    return [f"topic|{item.topic}"] + [f"ticker|{t}" for t in item.tickers]


def count_keys(state: dict[str, Any], item: ScoredNews, keys: Iterable[str]) -> None:
    """Count ``item`` into ``state`` (mutated) under ``keys`` (some or all of :func:`keys_of`).

    Exactly-once is the caller's job (stream/core/aggregator.py tracks applied offsets).
    """
    for key in keys:
        c = state["keys"].setdefault(key, [0, 0, 0, 0, 0.0])  # count, neg, neu, pos, sum(score)
        c[0] += 1
        c[SENTIMENT_SLOT[item.sentiment]] += 1
        c[4] += item.sentiment_score
        if item.sentiment == "negative":
            p = item.sentiment_probs
            row = [item.sentiment_score, item.id, item.headline[:300], item.url, p.negative, p.neutral, p.positive]
            top = state.setdefault("top", {})
            top[key] = _keep_most_negative(top.get(key, []) + [row])


def merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one shard's counters into ``into`` (mutated)."""
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
