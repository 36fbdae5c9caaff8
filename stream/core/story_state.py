"""The stories of one counting partition, kept in its store beside the windows: which story a
new headline joins, how far each story has spread, and in which (window, key) it is counted.

Keys in the store (all bounded: a story is forgotten past the horizon, like dedupe entries):

- ``sk|<block>``: the recent stories of one block (stream/core/stories.py ``block_of``), newest
  last, each ``[story_id, first_ts, words]``: the only candidates a new headline is compared to.
- ``s|<story_id>``: the story: first and last event time, copies, distinct sources, the highest
  offset per source partition already registered, and per ``"window|key"`` the position of
  the copy that brought it into that window's counts.
- ``sb|<bucket>|<shard>``: story ids by the time bucket of their latest copy, for pruning.

Exact under redelivery and kill -9 (the store keeps a prefix of a batch's writes, and the
uncommitted input is read again in the same order): a copy is registered once per position (the
highest-offset guard, as the window shards have), and the copy that brought a story into a
window keeps that role when it is read again, whichever writes survived, so the window shards'
own guard decides alone whether it is counted.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from riskpulse.records import ScoredNews

from . import stories
from .detection import INDEX_SHARDS, shard_of
from .state import Overlay

BLOCK_CAP = 50  # recent stories kept per block: candidates for a new headline
SOURCES_CAP = 100  # distinct sources named per story; the count stops there
BUCKET_S = 600


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

    # -- which story ---------------------------------------------------------------------------

    def assign(self, item: ScoredNews, ts: float) -> str:
        """The story a first sighting of a headline belongs to: the most similar recent story of
        its block at or above the threshold (ties: the older), else a new story of its own id."""
        words = stories.story_tokens(item.headline)
        if len(words) < stories.MIN_TOKENS:
            return item.id  # too few words to judge: only exact re-publication makes a copy
        bkey = "sk|" + stories.block_of(item.headline, words)
        members = self.state.get(bkey) or []
        best: tuple[float, float, str] | None = None
        for story_id, first_ts, story_words in members:
            if story_id == item.id:
                return story_id  # this item founded it (read again after a crash)
            if abs(ts - float(first_ts)) > self.horizon_s:
                continue
            sim = stories.similarity(words, frozenset(story_words))
            if sim >= self.threshold and (best is None or (sim, -float(first_ts)) > (best[0], -best[1])):
                best = (sim, float(first_ts), story_id)
        if best is not None:
            return best[2]
        self._found(bkey, members, item.id, ts, words)
        return item.id

    def refound(self, item: ScoredNews, ts: float) -> None:
        """A story's founder read again (redelivery): its place in its block is restored if a
        crash kept the item's dedupe entry but lost the block's write, so later copies still
        find the story."""
        words = stories.story_tokens(item.headline)
        if len(words) < stories.MIN_TOKENS:
            return
        bkey = "sk|" + stories.block_of(item.headline, words)
        members = self.state.get(bkey) or []
        if not any(m[0] == item.id for m in members):
            self._found(bkey, members, item.id, ts, words)

    def _found(self, bkey: str, members: list[list[Any]], story_id: str, ts: float, words: frozenset[str]) -> None:
        kept = [m for m in members if float(m[1]) > ts - self.horizon_s]
        self.state.set(bkey, sorted(kept + [[story_id, ts, sorted(words)]], key=lambda m: (float(m[1]), m[0]))[-BLOCK_CAP:])

    # -- its spread ------------------------------------------------------------------------------

    def register(self, story_id: str, item: ScoredNews, ts: float, partition: int, offset: int) -> ScoredNews:
        """One copy of ``story_id`` seen at (partition, offset): counted once per position. Returns
        the item with its story and its place in it (copies and sources so far)."""
        skey = "s|" + story_id
        current = self.state.get(skey)
        story = _copy(current) if current is not None else {
            "ts": ts, "last": ts, "copies": 0, "sources": [], "applied": {}, "seen": {},
            "block": stories.block_of(item.headline)}
        p = str(partition)
        if story["applied"].get(p, -1) < offset:
            story["applied"][p] = offset
            story["copies"] += 1
            source = source_of(item)
            if source and source not in story["sources"] and len(story["sources"]) < SOURCES_CAP:
                story["sources"].append(source)
            if ts > story["last"]:
                self._index(story_id, ts)
                story["last"] = ts
            if current is None:
                self._index(story_id, ts)
            self.state.set(skey, story)
        return item.model_copy(update={"story_id": story_id, "story_copies": story["copies"],
                                       "story_sources": len(story["sources"])})

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

    def spread(self, story_id: str) -> tuple[int, int] | None:
        """Copies and distinct sources of a story so far, if it is still remembered."""
        story = self.state.get("s|" + story_id)
        return None if story is None else (int(story["copies"]), len(story["sources"]))

    # -- bounded state ---------------------------------------------------------------------------

    def _index(self, story_id: str, ts: float) -> None:
        bucket = int(ts // BUCKET_S) * BUCKET_S
        key = f"sb|{bucket}|{shard_of(story_id, INDEX_SHARDS)}"
        members = self.state.get(key) or []
        if story_id not in members:
            self.state.set(key, members + [story_id])
        buckets = self.state.get("story_buckets") or []
        if bucket not in buckets:
            self.state.set("story_buckets", sorted(buckets + [bucket]))

    def prune(self, watermark: float) -> None:
        """Forget stories whose latest copy is past the horizon (a later copy re-indexed it later)."""
        buckets = self.state.get("story_buckets") or []
        keep = []
        for bucket in buckets:
            if bucket + BUCKET_S + self.horizon_s > watermark:
                keep.append(bucket)
                continue
            for i in range(INDEX_SHARDS):
                key = f"sb|{bucket}|{i}"
                for story_id in self.state.get(key) or []:
                    story = self.state.get("s|" + story_id)
                    if story is not None and float(story["last"]) < bucket + BUCKET_S:
                        self._forget(story_id, story)
                if self.state.get(key) is not None:
                    self.state.delete(key)
        if len(keep) != len(buckets):
            self.state.set("story_buckets", keep)

    def _forget(self, story_id: str, story: dict[str, Any]) -> None:
        bkey = "sk|" + story["block"]
        members = self.state.get(bkey)
        if members is not None:
            rest = [m for m in members if m[0] != story_id]
            if rest and len(rest) != len(members):
                self.state.set(bkey, rest)
            elif not rest:
                self.state.delete(bkey)
        self.state.delete("s|" + story_id)


def _copy(story: dict[str, Any]) -> dict[str, Any]:
    return {**story, "sources": list(story["sources"]), "applied": dict(story["applied"]), "seen": dict(story["seen"])}
