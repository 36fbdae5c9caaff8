"""Corrections: the same id sent again with changed content is a new revision of that item.

Wire services publish a correction or an update under the item's id. The trends must count the
item once, with its latest revision, so the counting stage has to take the earlier revision
back out of the window it was counted in, on whichever counting partition its story put it.
Only the scoring stage sees every revision of an id in order, on one partition of ``news``, when
producers key news by id (Kafka's rule for updates of one entity; riskpulse's own producers do):
it keeps, per partition, the latest revisions of each id (:class:`Revisions`) and tells the
counting stage which revision an item is and what the one it replaces was counted as.

Content is what the item says: headline, body, url, source, tickers and language. A change of
``published_at`` alone is not a correction (an item without one is dated by its arrival, and
an unchanged re-send would otherwise look corrected); the same content again is a re-send,
counted once, as before.

Exact under redelivery: a record read again is answered from what its first reading stored (the
same revision and the same predecessor), so a crash between the state's flush and the commit
changes nothing downstream. State per id: its last :data:`REVISIONS_KEPT` revisions, forgotten
past the dedupe horizon of its latest one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from riskpulse.records import NewsItem, ScoredNews

from . import windows
from .dedupe import dedupe_key
from .state import Overlay
from .time_index import TimeIndex

REVISIONS_KEPT = 8  # per id: a redelivered record older than these is taken as an unchanged re-send
BUCKET_S = 3600
INDEX = TimeIndex("rb", "revision_buckets", BUCKET_S)
LATEST, PRUNED = "r_latest", "r_pruned"


def content_of(item: NewsItem | ScoredNews) -> str:
    """A digest of what the item says (see the module's docstring)."""
    basis = json.dumps([item.headline, item.body, item.url, item.source, sorted(item.tickers), item.lang],
                       ensure_ascii=False)
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def counted_as(item: ScoredNews) -> dict[str, Any]:
    """What the counting stage needs to take a revision back out: its window, keys, sentiment,
    and its dedupe entry (which says whether it was counted at all)."""
    return {"ts": item.published_at.timestamp(), "keys": windows.keys_of(item), "sentiment": item.sentiment,
            "score": item.sentiment_score, "status": item.sentiment_status, "dkey": dedupe_key(item.headline)}


@dataclass(frozen=True)
class Revision:
    """``number``: the item's revision. ``replaces``: the revision it takes the place of, as
    :func:`counted_as` gave it, with ``partition`` (its counting partition) and ``offset`` (its
    position on the same ``news`` partition); None for a first revision or a re-send."""

    number: int
    replaces: dict[str, Any] | None = None


class Revisions:
    """The revisions of one ``news`` partition; all state in ``state`` (a Faust table in the
    worker, a dict in tests). Keys: ``r|<id>`` -> ``{"revs": [[number, content, offset,
    counting partition, counted_as], ...]}`` oldest first."""

    def __init__(self, state: Overlay, horizon_s: float) -> None:
        self.state, self.horizon_s = state, horizon_s

    def observe(self, item: ScoredNews, offset: int, partition: int) -> Revision:
        """The revision of ``item`` (scored, read at ``offset``, bound for counting ``partition``)."""
        key = "r|" + item.id
        entry = self.state.get(key)
        revs: list[list[Any]] = list(entry["revs"]) if entry else []
        content = content_of(item)
        before = [i for i, r in enumerate(revs) if r[2] <= offset]
        if before:
            i = before[-1]
            number, seen, at = revs[i][0], revs[i][1], revs[i][2]
            if at == offset:  # read again: what its first reading said
                return Revision(number, _replaced(revs[i - 1]) if i > 0 else None)
            if seen == content or i < len(revs) - 1:  # a re-send (or one read again between revisions)
                return Revision(number)
        elif revs:  # read again, older than the revisions kept
            return Revision(revs[0][0])
        number = revs[-1][0] + 1 if revs else 1
        replaces = _replaced(revs[-1]) if revs else None
        revs = (revs + [[number, content, offset, partition, counted_as(item)]])[-REVISIONS_KEPT:]
        ts = item.published_at.timestamp()
        self.state.set(key, {"revs": revs, "ts": max(ts, float(entry["ts"])) if entry else ts})
        INDEX.add(self.state, key, ts)
        self._maybe_prune(ts)
        return Revision(number, replaces)

    def _maybe_prune(self, ts: float) -> None:
        """Past the horizon of this item's event time, an id's revisions are forgotten (checked
        once per bucket of event time). Written per item, the latest event time seen was one more
        changelog record per item at low load; an item dated earlier only prunes later, never
        more (``r_latest``, kept by earlier releases, is still read)."""
        latest = max(ts, float(self.state.get(LATEST) or ts))
        pruned = self.state.get(PRUNED)
        if pruned is not None and latest - float(pruned) < BUCKET_S:
            return

        def forget(key: str, bucket_end: float) -> None:
            entry = self.state.get(key)
            if entry is not None and float(entry["ts"]) < bucket_end:
                self.state.delete(key)
        INDEX.prune(self.state, self.horizon_s, latest, forget)
        self.state.set(PRUNED, latest)


def _replaced(rev: list[Any]) -> dict[str, Any]:
    return {**rev[4], "partition": rev[3], "offset": rev[2]}
