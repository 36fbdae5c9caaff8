"""Tumbling event-time windows per topic and per ticker: pure arithmetic, no Kafka.

A window's counters are JSON-able dicts (per key: count, negative, neutral, positive, sum of
scores, distinct stories and negative stories, plus the most negative headlines as evidence, one
per story), so they can live in a Faust table, be
merged across shards and turned into ``trends`` records. When a window closes and which items
count is the aggregator's business (stream/core/aggregator.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

from riskpulse.records import EvidenceHeadline, ScoredNews, SentimentProbs, Trend

SENTIMENT_SLOT = {"negative": 1, "neutral": 2, "positive": 3}
EVIDENCE_PER_KEY = 5  # most negative headlines kept per key and window: an alert's evidence
COUNTERS = 8  # count, negative, neutral, positive, sum(score), stories, negative stories, unscored
ROW = 11  # evidence: score, id, headline, url, p(neg), p(neu), p(pos), story id, copies, sources, tickers


def window_start(ts: float, window_s: int) -> int:
    return int(ts // window_s) * window_s


def empty_window() -> dict[str, Any]:
    return {"keys": {}, "top": {}}


def counters(counts: list[Any]) -> list[Any]:
    """A key's counters in today's layout; a release before stories kept five (every item its own
    story, every item scored)."""
    if len(counts) == 5:
        return list(counts) + [counts[0], counts[1], 0]
    return list(counts)


def row(r: list[Any]) -> list[Any]:
    """An evidence row in today's layout; a release before stories kept seven fields, one before
    incidents ten (no tickers: an empty list, "not known")."""
    if len(r) == 7:
        return list(r) + [r[1], 1, None, []]
    if len(r) == 10:
        return list(r) + [[]]
    return list(r)


def _keep_most_negative(rows: list[list[Any]]) -> list[list[Any]]:
    """One row per story: its most negative copy, with the most copies and sources the story had
    reached among its copies counted here; lowest score first, ties by id: the same set whatever
    the arrival order or sharding."""
    best: dict[str, list[Any]] = {}
    for r in sorted((row(r) for r in rows), key=lambda r: (r[0], r[1])):
        kept = best.setdefault(r[7], r)
        if kept is not r:
            _spread_to(kept, r[8], r[9])
    return list(best.values())[:EVIDENCE_PER_KEY]


def _spread_to(kept: list[Any], copies: int, sources: int | None) -> None:
    """An evidence row's story seen at least this far spread (sources None: not known)."""
    kept[8] = max(kept[8], copies)
    if sources is not None:
        kept[9] = sources if kept[9] is None else max(kept[9], sources)


def keys_of(item: ScoredNews) -> list[str]:
    """An item's keys: its topic and tickers. An item the model cannot read has no topic the
    model could know: it counts under its tickers only."""
    tickers = [f"ticker|{t}" for t in item.tickers]
    return tickers if item.sentiment_status != "scored" else [f"topic|{item.topic}"] + tickers


def count_keys(state: dict[str, Any], item: ScoredNews, keys: Iterable[str], new_story: Iterable[str] = (),
               evidence: bool = True) -> None:
    """Count ``item`` into ``state`` (mutated) under ``keys`` (some or all of :func:`keys_of`);
    under the keys in ``new_story`` it is also the first copy of its story in this window.
    ``evidence`` False: counters only, no evidence row (a window value at its size budget,
    stream/core/aggregator.py).

    Exactly-once is the caller's job (stream/core/aggregator.py tracks applied offsets).
    """
    new_story = set(new_story)
    for key in keys:
        c = state["keys"].get(key)
        c = state["keys"][key] = [0, 0, 0, 0, 0.0, 0, 0, 0] if c is None else counters(c)
        if item.sentiment_status != "scored":
            c[7] += 1  # counted apart: never as neutral news
            continue
        c[0] += 1
        c[SENTIMENT_SLOT[item.sentiment]] += 1
        c[4] += item.sentiment_score
        if key in new_story:
            c[5] += 1
            c[6] += item.sentiment == "negative"
        if not evidence:
            continue
        top = state.setdefault("top", {})
        story = item.story_id or item.id
        if item.sentiment == "negative":
            p = item.sentiment_probs
            line = [item.sentiment_score, item.id, item.headline[:300], item.url, p.negative, p.neutral, p.positive,
                    story, item.story_copies or 1, item.story_sources, list(item.tickers)]
            top[key] = _keep_most_negative(top.get(key, []) + [line])
        elif item.story_copies:  # another copy of a story in the evidence: the story has spread further
            rows = [row(r) for r in top.get(key, [])]
            for r in rows:
                if r[7] == story:
                    _spread_to(r, item.story_copies, item.story_sources or 0)
                    top[key] = rows


def uncount(replaced: dict[str, Any], item_id: str, brought: Iterable[str]) -> dict[str, Any]:
    """A correction: the counters and evidence that take a previous revision (as the scorer
    described it, stream/core/revisions.py) back out, as a fix for :func:`apply_fix`; under the
    keys in ``brought`` it was the copy that brought its story into the window."""
    brought = set(brought)
    keys: dict[str, list[Any]] = {}
    for key in replaced["keys"]:
        if replaced["status"] != "scored":
            keys[key] = [0, 0, 0, 0, 0.0, 0, 0, -1]
            continue
        c = keys[key] = [-1, 0, 0, 0, -float(replaced["score"]), 0, 0, 0]
        c[SENTIMENT_SLOT[replaced["sentiment"]]] -= 1
        if key in brought:
            c[5] -= 1
            c[6] -= replaced["sentiment"] == "negative"
    return {"keys": keys, "drop": [item_id], "top": {}}


def empty_fix() -> dict[str, Any]:
    return {"keys": {}, "drop": [], "top": {}}


def add_fix(into: dict[str, Any], fix: dict[str, Any]) -> None:
    """Two fixes of one window as one (``into`` mutated): the drops of both happen first."""
    merge(into, fix)
    into["drop"] = list(into.get("drop") or []) + [i for i in fix.get("drop") or [] if i not in (into.get("drop") or [])]


def is_empty(counts: list[Any]) -> bool:
    """Nothing counted (a correction took it all back out)."""
    return not any(counts[i] for i in (0, 1, 2, 3, 5, 6, 7))


def apply_fix(value: dict[str, Any], fix: dict[str, Any], keep_empty: bool = False) -> list[str]:
    """Apply a correction to a window's counters (``value`` mutated): evidence rows of the
    dropped items go, the deltas are added, the fix's own evidence rows come in; a key left with
    nothing counted goes (``keep_empty``: stays, at zero, for the judge to publish that it is
    empty now). Returns the keys it changed."""
    drop = set(fix.get("drop") or ())
    top = value.setdefault("top", {})
    if drop:
        for key, rows in list(top.items()):
            kept = [r for r in rows if r[1] not in drop]
            if len(kept) != len(rows):
                top[key] = kept
    merge(value, {"keys": fix.get("keys") or {}, "top": fix.get("top") or {}})
    changed = sorted(set(fix.get("keys") or {}) | set(fix.get("top") or {}))
    for key in changed:
        counts = value["keys"].get(key)
        if counts is not None and is_empty(counts) and not keep_empty:
            del value["keys"][key]
            top.pop(key, None)
        elif key in top and not top[key]:
            del top[key]
    return changed


def merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one shard's counters into ``into`` (mutated)."""
    for key, counts in part["keys"].items():
        acc = into["keys"].setdefault(key, [0, 0, 0, 0, 0.0, 0, 0, 0])
        for i, v in enumerate(counters(counts)):
            acc[i] += v
    for key, rows in part.get("top", {}).items():
        top = into.setdefault("top", {})
        top[key] = _keep_most_negative(top.get(key, []) + rows)


def trends(start: int, window_s: int, state: dict[str, Any]) -> list[Trend]:
    out = []
    for key, counts in sorted(state["keys"].items()):
        count, neg, neu, pos, total, stories, neg_stories, unscored = counters(counts)
        key_type, name = key.split("|", 1)
        out.append(Trend(key_type=key_type, key=name,  # type: ignore[arg-type]
                         window_start=datetime.fromtimestamp(start, timezone.utc),
                         window_end=datetime.fromtimestamp(start + window_s, timezone.utc),
                         count=count, negative=neg, neutral=neu, positive=pos,
                         mean_score=max(-1.0, min(1.0, round(total / count, 6))) if count else 0.0,
                         negative_share=round(neg / count, 6) if count else 0.0, stories=max(0, int(stories)),
                         negative_stories=max(0, int(neg_stories)), unscored=int(unscored),
                         top_negative=[_evidence(r) for r in state.get("top", {}).get(key, [])]))
    return out


def _evidence(r: list[Any]) -> EvidenceHeadline:
    score, id_, headline, url, neg, neu, pos, story, copies, sources, tickers = row(r)
    return EvidenceHeadline(id=id_, headline=headline, sentiment_score=score, url=url,
                            sentiment_probs=SentimentProbs(negative=neg, neutral=neu, positive=pos),
                            story_id=story, copies=copies, sources=sources, tickers=tickers or None)
