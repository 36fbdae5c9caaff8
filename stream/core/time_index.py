"""Keys of a store listed by the time bucket of their latest event, so that state past its
horizon can be found and dropped without scanning the store: the dedupe entries and the stories
of a counting partition (stream/core/aggregator.py, stream/core/story_state.py) both use it.

Layout (names given by the caller): ``<prefix>|<bucket>|<shard>`` lists the members indexed in
that bucket (sharded, so no value grows large), ``<buckets_key>`` the buckets in use.
"""

from __future__ import annotations

from typing import Callable, Iterator

from .detection import INDEX_SHARDS, shard_of
from .state import Overlay


class TimeIndex:
    def __init__(self, prefix: str, buckets_key: str, bucket_s: int) -> None:
        self.prefix, self.buckets_key, self.bucket_s = prefix, buckets_key, bucket_s

    def add(self, state: Overlay, member: str, ts: float) -> None:
        """``member`` had an event at ``ts``: listed in that time's bucket. The listing is flushed
        before the batch's other writes (``early``), so a member whose own value survived a crash
        is listed too (:meth:`members` finds every one the store holds)."""
        bucket = int(ts // self.bucket_s) * self.bucket_s
        key = f"{self.prefix}|{bucket}|{shard_of(member, INDEX_SHARDS)}"
        members = state.get(key) or []
        if member not in members:
            state.set(key, members + [member], early=True)
        buckets = state.get(self.buckets_key) or []
        if bucket not in buckets:
            state.set(self.buckets_key, sorted(buckets + [bucket]), early=True)

    def members(self, state: Overlay) -> Iterator[str]:
        """Every member listed in a bucket still kept, once (a member listed again later is in several)."""
        seen: set[str] = set()
        for bucket in state.get(self.buckets_key) or []:
            for i in range(INDEX_SHARDS):
                for member in state.get(f"{self.prefix}|{bucket}|{i}") or []:
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
                for member in state.get(key) or []:
                    forget(member, bucket + self.bucket_s)
                if state.get(key) is not None:
                    state.delete(key)
        if len(keep) != len(buckets):
            state.set(self.buckets_key, keep)
