"""The stories of one counting partition, kept in its store beside the windows: which story a
new headline joins, how far each story has spread, and in which (window, key) it is counted.

Keys in the store (all bounded: a story is forgotten past the horizon, like dedupe entries):

- ``s|<story_id>``: the story: its words, first and last event time, copies, distinct sources, the highest
  offset per source partition already registered, and per ``"window|key"`` the position of
  the copy that brought it into that window's counts.
- ``sb|<bucket>|<shard>``: story ids by the time bucket of their latest copy, for pruning.

Which stories a new headline is compared to (its LSH band buckets, stream/core/stories.py
``bands``) is not stored: :class:`BandIndex` keeps it in memory, a function of the stories the
store holds, built from them when the partition is first read and kept in step with every story
made or forgotten (undone with the write when a record's savepoint rolls back). Stored, the six
band buckets of each new story were two thirds of the values a counting partition wrote per
item, each one more changelog record (issue 32's profile); rebuilt, a restart finds the same
candidates as a run that never stopped.

Exact under redelivery and kill -9 (the store keeps a prefix of a batch's writes, and the
uncommitted input is read again in the same order): a copy is registered once per position (the
highest-offset guard, as the window shards have), and the copy that brought a story into a
window keeps that role when it is read again, whichever writes survived, so the window shards'
own guard decides alone whether it is counted.
"""

from __future__ import annotations

import bisect
from typing import Any
from urllib.parse import urlsplit

from riskpulse.records import ScoredNews

from . import stories
from .state import Overlay
from .time_index import TimeIndex

BUCKET_CAP = 50  # the most recent stories of an LSH band bucket a new headline is compared to
WORDS_CACHED = 100_000
PLACES_CAP = 500  # copies whose place is remembered per story (beyond: a copy read again reports the count then)
TIMELINE_CAP = 20  # first copies kept per story: a spread alert's evidence
SOURCES_CAP = 100  # distinct sources named per story; the count stops there
STORY_INDEX = TimeIndex("sb", "story_buckets", 600)  # stories by the time of their latest copy
LAYOUT = 2  # story values written without band buckets in the store (1: with ``sk|<band>`` keys)


def source_of(item: ScoredNews) -> str | None:
    """Who published the copy: the producer's ``source``, else the host of its link."""
    if item.source:
        return item.source.strip().lower()[:200] or None
    if item.url:
        try:
            host = urlsplit(item.url).hostname
        except ValueError:
            return None
        return host.removeprefix("www.") if host else None
    return None


class Stories:
    def __init__(self, state: Overlay, horizon_s: float, threshold: float = stories.THRESHOLD) -> None:
        self.state, self.horizon_s, self.threshold = state, horizon_s, threshold
        self._words: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._last_bands: tuple[frozenset[str], list[str]] = (frozenset(), [])
        self._index: BandIndex | None = None  # built from the store on first use

    def _band_index(self) -> "BandIndex":
        if self._index is None:
            index = BandIndex()
            for story_id in STORY_INDEX.members(self.state):
                story = self.state.get("s|" + story_id)
                if story is not None and _indexed(story):
                    words = frozenset(story["words"])
                    self._remember(story_id, words, frozenset(story.get("tickers") or ()))
                    index.add(stories.bands(words), story_id, float(story["ts"]))
            self._index = index
        return self._index

    # -- which story ---------------------------------------------------------------------------

    def assign(self, item: ScoredNews, ts: float, words: frozenset[str]) -> str:
        """The story a first sighting of a headline belongs to: the most similar recent story
        sharing an LSH band with it, at or above the threshold (ties: the older), else a new
        story of its own id. ``words``: its story words (stream/core/stories.py ``story_tokens``)."""
        if len(words) < stories.MIN_TOKENS:
            return item.id  # too few words to judge: only exact re-publication makes a copy
        index = self._band_index()
        tickers = frozenset(item.tickers)
        need = self.threshold / (1 + self.threshold)  # shared words / (|a| + |b|) at the threshold
        best: tuple[float, float, str] | None = None
        seen: set[str] = set()
        for band in self._bands(words):
            for first_ts, story_id in index.recent(band):
                if story_id == item.id:
                    return story_id  # this item founded it (read again after a crash)
                if story_id in seen or abs(ts - float(first_ts)) > self.horizon_s:
                    continue
                seen.add(story_id)
                known = self._words.get(story_id)
                if known is None:
                    story = self.state.get("s|" + story_id)
                    if story is None:
                        continue  # forgotten (pruned), or lost with a crash: its founder read again restores it
                    known = self._remember(story_id, frozenset(story["words"]), frozenset(story.get("tickers") or ()))
                candidate, their_tickers = known
                if tickers and their_tickers and not tickers & their_tickers:
                    continue  # both tagged, no company in common: the same template about two companies
                shared = len(words & candidate)
                if shared < need * (len(words) + len(candidate)):
                    continue
                sim = stories.similarity(words, candidate)
                if sim >= self.threshold and (best is None or (sim, -float(first_ts)) > (best[0], -best[1])):
                    best = (sim, float(first_ts), story_id)
        if best is not None:
            return best[2]
        return item.id  # a story of its own: its bands list it once registered (:meth:`register`)

    def _bands(self, words: frozenset[str]) -> list[str]:
        """The band keys of the words in hand (asked for twice per new story: assigned, registered)."""
        if self._last_bands[0] != words:
            self._last_bands = (words, stories.bands(words))
        return self._last_bands[1]

    def _remember(self, story_id: str, words: frozenset[str],
                  tickers: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
        """Candidates' words and tickers parsed once per process (a story's never change)."""
        if len(self._words) >= WORDS_CACHED:
            self._words.clear()
        found = self._words[story_id] = (words, tickers)
        return found

    # -- its spread ------------------------------------------------------------------------------

    def register(self, story_id: str, item: ScoredNews, ts: float, partition: int, offset: int,
                 words: frozenset[str]) -> dict[str, Any]:
        """One copy of ``story_id`` seen at (partition, offset): counted once per position. Returns
        the item's story fields: its story and its place in it (copies and sources so far)."""
        skey = "s|" + story_id
        current = self.state.get(skey)
        p = str(partition)
        if current is not None and current["applied"].get(p, -1) >= offset:  # read again: the place it had
            place = (current.get("places") or {}).get(f"{p}:{offset}") or [current["copies"], len(current["sources"])]
            return {"story_id": story_id, "story_copies": place[0], "story_sources": place[1]}
        story = _copy(current) if current is not None else {
            "ts": ts, "last": ts, "copies": 0, "sources": [], "applied": {}, "seen": {},
            "words": sorted(words), "tickers": sorted(item.tickers), "indexed": story_id == item.id, "v": LAYOUT}
        if current is None and _indexed(story):  # a new story: new headlines are compared to it from now on
            self._listed(story_id, self._bands(words), ts, True)
        story["applied"][p] = offset
        story["copies"] += 1
        source = source_of(item)
        if source and source not in story["sources"] and len(story["sources"]) < SOURCES_CAP:
            story["sources"].append(source)
        if item.sentiment_status == "scored":
            story["scored"] = story.get("scored", 0) + 1
            story["negative"] = story.get("negative", 0) + (item.sentiment == "negative")
        places = story["places"] = dict(story.get("places") or {})
        if len(places) < PLACES_CAP:  # so a copy read again reports the place it had, not the story's count now
            places[f"{p}:{offset}"] = [story["copies"], len(story["sources"])]
        timeline = story.setdefault("timeline", [])
        if len(timeline) < TIMELINE_CAP:  # the pick-up: the first copies, in the order they came
            timeline.append([ts, source, item.headline[:200], item.id, item.sentiment_score, item.url])
        if ts > story["last"] or current is None:
            STORY_INDEX.add(self.state, story_id, ts)
            story["last"] = max(ts, story["last"])
        self.state.set(skey, story)
        return {"story_id": story_id, "story_copies": story["copies"], "story_sources": len(story["sources"])}

    def brings_in(self, story_id: str, start: int, keys: list[str], partition: int, offset: int,
                  closed_before: float) -> list[str]:
        """The keys under which this copy is the story's first in window ``start`` (it then
        counts as one more story there). The same copy read again keeps the role; windows
        already closed (before ``closed_before``) are forgotten."""
        skey = "s|" + story_id
        story = self.state.get(skey)
        if story is None:
            return list(keys)
        seen = story["seen"]
        here = [partition, offset]
        new = [k for k in keys if seen.get(f"{start}|{k}", here) == here]
        missing = [k for k in new if f"{start}|{k}" not in seen]
        if missing:
            story = _copy(story)
            story["seen"] = {wk: pos for wk, pos in seen.items() if int(wk.split("|", 1)[0]) >= closed_before}
            for k in missing:
                story["seen"][f"{start}|{k}"] = here
            self.state.set(skey, story)
        return new

    def not_brought_by(self, story_id: str, start: int, keys: list[str], position: list[int],
                       correction: list[int]) -> None:
        """The copy at ``position`` was corrected by the record at ``correction``: under ``keys``
        in window ``start`` the story is brought in by the correction's new revision if it is
        still a copy of this story there (then it counts as the story again), else by nobody."""
        story = self.state.get("s|" + story_id)
        if story is None:
            return
        moved = [f"{start}|{k}" for k in keys if story["seen"].get(f"{start}|{k}") == position]
        if moved:
            story = _copy(story)
            for wk in moved:
                story["seen"][wk] = correction
            self.state.set("s|" + story_id, story)

    def story(self, story_id: str) -> dict[str, Any] | None:
        """A story's value (the layout above), if it is still remembered."""
        return self.state.get("s|" + story_id)

    def spreading(self, story_id: str, min_sources: int, within_s: float, min_negative_share: float) -> dict[str, Any] | None:
        """The story, if it has just reached ``min_sources`` distinct sources within ``within_s``
        of its first copy, is negative (that share of its scored copies) and has not fired yet."""
        story = self.story(story_id)
        if story is None or story.get("spread_fired"):
            return None
        sources_in_time = {c[1] for c in story.get("timeline") or [] if c[1] and c[0] - story["ts"] <= within_s}
        scored = story.get("scored", 0)
        if (len(sources_in_time) >= min_sources and scored
                and story.get("negative", 0) / scored >= min_negative_share):
            return story
        return None

    def mark_spread(self, story_id: str, resolved: bool = False) -> None:
        """Its spread alert is acknowledged by the broker: never again for this story (``resolved``:
        its resolution, never again either)."""
        flag = "spread_resolved" if resolved else "spread_fired"
        story = self.state.get("s|" + story_id)
        if story is not None and not story.get(flag):
            self.state.set("s|" + story_id, {**_copy(story), flag: True})

    # -- bounded state ---------------------------------------------------------------------------

    def prune(self, watermark: float) -> None:
        """Forget stories whose latest copy is past the horizon (a later copy re-indexed it later)."""
        def forget(story_id: str, bucket_end: float) -> None:
            story = self.state.get("s|" + story_id)
            if story is not None and float(story["last"]) < bucket_end:
                self._forget(story_id, story)
        STORY_INDEX.prune(self.state, self.horizon_s, watermark, forget)

    def _forget(self, story_id: str, story: dict[str, Any]) -> None:
        words = frozenset(story.get("words") or ())
        if _indexed(story):
            bands = self._bands(words)
            self._listed(story_id, bands, float(story["ts"]), False)
            if story.get("v", 1) < LAYOUT:  # written before the bands left the store: its band buckets go with it
                for band in bands:
                    members = self.state.get("sk|" + band)
                    if members is not None:
                        rest = [m for m in members if m[0] != story_id]
                        self.state.set("sk|" + band, rest or None)
        self._words.pop(story_id, None)
        self.state.delete("s|" + story_id)

    def _listed(self, story_id: str, keys: list[str], ts: float, listed: bool) -> None:
        """List an indexed story in its band buckets ``keys`` (or take it out), undone if the record's
        savepoint rolls back, so the buckets always hold exactly the indexed stories the store holds."""
        index = self._band_index()
        if listed:
            index.add(keys, story_id, ts)
            self.state.on_undo(lambda: index.remove(keys, story_id, ts))
        else:
            index.remove(keys, story_id, ts)
            self.state.on_undo(lambda: index.add(keys, story_id, ts))


def _indexed(story: dict[str, Any]) -> bool:
    """Whether new headlines are compared to this story: founded by its own first copy, with words enough to judge."""
    return bool(story.get("indexed")) and len(story.get("words") or ()) >= stories.MIN_TOKENS


class BandIndex:
    """The stories of one counting partition by LSH band, in memory (see the module doc): per
    band, ``(first_ts, story_id)`` in that order, a new headline compared to the newest
    :data:`BUCKET_CAP`. Bounded like the stories: a story leaves when it is forgotten."""

    def __init__(self) -> None:
        self._bands: dict[str, list[tuple[float, str]]] = {}

    def recent(self, band: str) -> list[tuple[float, str]]:
        return self._bands.get(band, [])[-BUCKET_CAP:]

    def add(self, bands: list[str], story_id: str, ts: float) -> None:
        entry = (ts, story_id)
        for band in bands:
            members = self._bands.setdefault(band, [])
            at = bisect.bisect_left(members, entry)
            if at == len(members) or members[at] != entry:
                members.insert(at, entry)

    def remove(self, bands: list[str], story_id: str, ts: float) -> None:
        entry = (ts, story_id)
        for band in bands:
            members = self._bands.get(band)
            if members is None:
                continue
            at = bisect.bisect_left(members, entry)
            if at < len(members) and members[at] == entry:
                del members[at]
                if not members:
                    del self._bands[band]

    def __len__(self) -> int:
        return sum(map(len, self._bands.values()))


def _copy(story: dict[str, Any]) -> dict[str, Any]:
    return {**story, "sources": list(story["sources"]), "applied": dict(story["applied"]), "seen": dict(story["seen"]),
            "timeline": list(story.get("timeline") or [])}
