"""Which shard a key goes to: window counters, detector states and the time indexes split their
keys this way, so that every stored value stays small however many keys there are."""

from __future__ import annotations

import zlib

INDEX_SHARDS = 16


def shard_of(key: str, n: int) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % n
