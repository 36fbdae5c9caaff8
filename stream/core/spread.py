"""A negative story spreading fast, as an alert: one story, many outlets, minutes apart.

The trends judge volume per key against its baseline (alerts/detector.py); a single story picked
up by five outlets within half an hour can matter before any window looks unusual. The counting
stage knows each story's pick-up (stream/core/story_state.py); this turns it into an alert record
whose evidence is that timeline. The id comes from the story, so a re-sent alert is the same alert.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from riskpulse.records import Alert, EvidenceHeadline

from .state import Overlay
from .story_state import Stories
from .time_index import TimeIndex

log = logging.getLogger(__name__)

# stories whose spread alert fires, by the time bucket of their latest copy, until their pick-up has
# been quiet for the rule's span: a bucket is looked at once that span has passed it (a story with
# later copies is listed again, later). Paged (stream/core/time_index.py): one list of every firing
# story before, ids of up to 200 characters, passed Kafka's 1 MB for a record at ~5,000 of them
# (a feed of five-outlet stories at 14 items/s for half an hour) and stopped the counting stage
SPREAD_INDEX = TimeIndex("sfb", "spread_buckets", 300)
SPREAD_FIRING = "spread_firing"  # that list, as a release before the index left it: read once


@dataclass(frozen=True)
class SpreadConfig:
    min_sources: int = 5
    within_s: float = 1800.0
    min_negative_share: float = 0.5
    severity: str = "warning"


def spread_alert_id(story_id: str) -> str:
    return hashlib.sha256(f"story|{story_id}|spread".encode()).hexdigest()[:32]


def spread_alert(story_id: str, story: dict[str, Any], config: SpreadConfig, resolved: bool = False) -> Alert:
    """The story's spread alert; ``resolved``: its pick-up has been quiet for ``within_s``."""
    first = float(story["ts"])
    if resolved:
        quiet = float(story["last"]) + config.within_s
        n_sources = len(story.get("sources") or [])
        return Alert(
            id=spread_alert_id(story_id), status="resolved", severity=config.severity,  # type: ignore[arg-type]
            key_type="story", key=story_id, window_start=datetime.fromtimestamp(first, timezone.utc),
            window_end=datetime.fromtimestamp(quiet, timezone.utc),
            observed={"sources": float(n_sources), "copies": float(story["copies"])},
            baseline={"min_sources": float(config.min_sources), "within_minutes": config.within_s / 60},
            rule="spread", summary=f"RESOLVED: the story's pick-up has been quiet for {config.within_s / 60:g} min "
                                   f"({int(story['copies'])} copies from {n_sources} sources)",
            top_headlines=[], fired_at=datetime.fromtimestamp(quiet, timezone.utc))
    timeline = sorted(story.get("timeline") or [], key=lambda c: c[0])
    seen: set[str] = set()
    reached = first
    for ts, source, *_ in timeline:  # when the pick-up reached min_sources distinct sources
        if ts - first > config.within_s:
            break
        if source:
            seen.add(source)
            if len(seen) == config.min_sources:
                reached = ts
    sources = sorted(seen)
    minutes = (reached - first) / 60
    scored = max(1, int(story.get("scored", 0)))
    evidence = [EvidenceHeadline(id=c[3], headline=c[2], sentiment_score=max(-1.0, min(1.0, float(c[4]))), url=c[5],
                                 story_id=story_id, source=c[1], published_at=datetime.fromtimestamp(c[0], timezone.utc))
                for c in timeline]
    return Alert(
        id=spread_alert_id(story_id), status="firing", severity=config.severity,  # type: ignore[arg-type]
        key_type="story", key=story_id, window_start=datetime.fromtimestamp(first, timezone.utc),
        window_end=datetime.fromtimestamp(reached, timezone.utc),
        observed={"sources": float(len(sources)), "copies": float(story["copies"]), "minutes": round(minutes, 2),
                  "negative_share": round(story.get("negative", 0) / scored, 4)},
        baseline={"min_sources": float(config.min_sources), "within_minutes": config.within_s / 60,
                  "min_negative_share": config.min_negative_share},
        rule="spread",
        summary=(f"{config.severity.upper()}: a negative story spreading: {len(sources)} outlets in {minutes:.0f} min "
                 f"({', '.join(sources[:6])}{', ...' if len(sources) > 6 else ''}): {timeline[0][2][:160]}"),
        top_headlines=evidence, fired_at=datetime.fromtimestamp(reached, timezone.utc))


def due_alerts(stories: Stories, state: Overlay, spread: SpreadConfig, touched: dict[str, None],
               watermark: float) -> tuple[list[tuple[str, Alert]], dict[str, None]]:
    """The spread alerts due on one counting partition: stories ``touched`` (a copy since the last
    call) that reached their spread, and firing ones whose pick-up has been quiet for ``within``
    in event time (resolved). Also returns the stories still to commit (:func:`commit_spread`)."""
    out = []
    due: dict[str, None] = {}
    for story_id in touched:  # a story's spread changes only with its copies
        try:
            story = stories.spreading(story_id, spread.min_sources, spread.within_s, spread.min_negative_share)
            if story is not None:
                out.append((story_id, spread_alert(story_id, story, spread)))
                due[story_id] = None
        except Exception:  # noqa: BLE001 - one story the rule cannot judge must not stop the stream
            log.exception("spread rule failed on a story; skipped", extra={"story_id": story_id})
    again: list[tuple[str, float]] = []

    def look_at(story_id: str, bucket_end: float) -> None:
        """A firing story listed in a bucket whose span has passed: resolved if its pick-up has
        been quiet since, else listed again at its latest copy."""
        try:
            story = stories.story(story_id)
            if story is None or story.get("spread_resolved"):
                return  # forgotten past the horizon, or resolved and acknowledged
            last = float(story["last"])
            if last + spread.within_s <= watermark:
                out.append((story_id, spread_alert(story_id, story, spread, resolved=True)))
            else:
                again.append((story_id, last))
        except Exception:  # noqa: BLE001 - as above; it is not tried again
            log.exception("spread rule failed to resolve a story; dropped", extra={"story_id": story_id})
    SPREAD_INDEX.prune(state, spread.within_s, watermark, look_at)
    legacy = state.get(SPREAD_FIRING)
    if legacy is not None:
        for story_id in legacy:
            look_at(story_id, watermark)
        state.delete(SPREAD_FIRING)
    for story_id, last in again:  # after the prune, which rewrites the bucket list
        SPREAD_INDEX.add(state, story_id, last)
    return out, due


def commit_spread(stories: Stories, state: Overlay, story_id: str, alert: Alert, touched: dict[str, None]) -> None:
    """``alert`` is acknowledged by the broker: a firing story is marked (and no longer due) and
    listed until its pick-up goes quiet; a resolved one is marked resolved."""
    story = stories.story(story_id)
    if alert.status == "firing":
        stories.mark_spread(story_id)
        touched.pop(story_id, None)
        if story is not None:
            SPREAD_INDEX.add(state, story_id, float(story["last"]))
    else:
        stories.mark_spread(story_id, resolved=True)
