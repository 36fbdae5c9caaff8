"""Keys of a store listed by the time bucket of their latest event, so that state past its
horizon can be found and dropped without scanning the store: the dedupe entries and the stories
of a counting partition (stream/core/aggregator.py, stream/core/story_state.py), the scoring
stage's revisions and the judges' detector states (stream/core/detection.py) use it.

Layout (names given by the caller): ``<prefix>|<bucket>|<shard>`` lists the members indexed in
that bucket, newest last, at most :data:`PAGE` of them; when it is full it moves to
``<prefix>|<bucket>|<shard>|<n>`` (n = 1, 2, ...; how many in ``<prefix>|<bucket>|<shard>|pages``)
and a new list starts. ``<buckets_key>`` lists the buckets in use.

Pages, because a bucket holds every member of its time span: before them, one list per shard
grew with the rate and was written whole with each new member. At a sustained 400 items/s on
four partitions, a revisions bucket (an hour) reached 22,000 ids per list, 900 KB written with
every batch, past Kafka's 1 MB for a record at a little more: the changelog write fails and
the stage stops. A page is a few KB whatever the rate (tests/stream/test_time_index.py).

A release before pages reads the first list only, and leaves the pages of a bucket it prunes
behind: during a rolling deploy, a story or dedupe entry listed in a page is not found by an old
worker's rebuild, and such pages stay in the store; both end with the deploy.
"""

from __future__ import annotations

from typing import Callable, Iterator

from .shards import INDEX_SHARDS, shard_of
from .state import Overlay


PAGE = 64  # members per stored list: about 2 KB of ids (at low load a batch is one item and rewrites one)


class TimeIndex:
    def __init__(self, prefix: str, buckets_key: str, bucket_s: int) -> None:
        self.prefix, self.buckets_key, self.bucket_s = prefix, buckets_key, bucket_s

    def add(self, state: Overlay, member: str, ts: float) -> None:
        """``member`` had an event at ``ts``: listed in that time's bucket. The listing is flushed
        before the batch's other writes (``early``), so a member whose own value survived a crash
        is listed too (:meth:`members` finds every one the store holds). A member is listed once
        per page: listed again after its page filled, it is in two (:meth:`members` says it once,
        and forgetting twice is forgetting once)."""
        bucket = int(ts // self.bucket_s) * self.bucket_s
        key = f"{self.prefix}|{bucket}|{shard_of(member, INDEX_SHARDS)}"
        members = state.get(key) or []
        if member not in members:
            if len(members) >= PAGE:  # full: it becomes a page of its own (a crash between these writes
                # leaves a page not yet counted, written again at the next spill, or one listed twice)
                full = int(state.get(key + "|pages") or 0) + 1
                state.set(f"{key}|{full}", members, early=True)
                state.set(key + "|pages", full, early=True)
                members = []
            state.set(key, members + [member], early=True)
        buckets = state.get(self.buckets_key) or []
        if bucket not in buckets:
            state.set(self.buckets_key, sorted(buckets + [bucket]), early=True)

    def _lists(self, state: Overlay, key: str) -> Iterator[tuple[str, list[str]]]:
        """A shard's stored lists, as (key, members): its full pages, then the one being filled."""
        for n in range(1, int(state.get(key + "|pages") or 0) + 1):
            yield f"{key}|{n}", state.get(f"{key}|{n}") or []
        yield key, state.get(key) or []

    def members(self, state: Overlay) -> Iterator[str]:
        """Every member listed in a bucket still kept, once (a member listed again later is in several)."""
        seen: set[str] = set()
        for bucket in state.get(self.buckets_key) or []:
            for i in range(INDEX_SHARDS):
                for _, listed in self._lists(state, f"{self.prefix}|{bucket}|{i}"):
                    for member in listed:
                        if member not in seen:
                            seen.add(member)
                            yield member

    def prune(self, state: Overlay, horizon_s: float, watermark: float, forget: Callable[[str, float], None]) -> None:
        """Every bucket wholly past ``horizon_s`` behind ``watermark``: ``forget(member, bucket_end)``
        for each member listed in it (the caller keeps a member whose latest event is later: it
        was listed again in a later bucket), then the bucket's lists go."""
        buckets = state.get(self.buckets_key) or []
        keep = []
        for bucket in buckets:
            if bucket + self.bucket_s + horizon_s > watermark:
                keep.append(bucket)
                continue
            for i in range(INDEX_SHARDS):
                key = f"{self.prefix}|{bucket}|{i}"
                for stored, listed in list(self._lists(state, key)):
                    for member in listed:
                        forget(member, bucket + self.bucket_s)
                    if state.get(stored) is not None:
                        state.delete(stored)
                if state.get(key + "|pages") is not None:
                    state.delete(key + "|pages")
        if len(keep) != len(buckets):
            state.set(self.buckets_key, keep)
