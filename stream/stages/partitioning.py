"""Where the stages send their records: two partitioners, each chosen for its reader.

- By story block (crc32 of the headline's block, stream/core/stories.py ``block_of``): the
  counting stage must see every copy of a story on one partition, whichever news partition each
  came on. Exact re-publications always share a block; near-copies share it with probability
  equal to the Jaccard similarity of their words (docs/stories.md gives the measured share).
  Stories are only ever matched within a block, so partitioning splits no story the single
  aggregator would find. The topic is internal, so riskpulse's own stable hash serves.
- By trend key (murmur2, Kafka's default partitioner): a subscriber of ``trends`` reads one key's
  windows in order on one partition, the one any Kafka client's default partitioner gives the
  key ``key_type|key``, so a subscriber can find it without riskpulse's code.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from ..core.shards import shard_of
from ..core.stories import block_of


def story_partition(headline: str, partitions: int) -> int:
    """The partition of the counting stage for an item: by story block, so a copy of a story
    meets the story's first sighting, whichever news partition each came on."""
    return shard_of(block_of(headline), partitions)


def trend_partition(key_type: str, key: str, partitions: int) -> int:
    """The partition of ``trends`` for every window of one key: the one Kafka's default partitioner
    gives the key ``key_type|key`` (murmur2), so a subscriber reads one key's windows in order on
    one partition, while the record key (with the window) keeps a compacted topic a table of windows."""
    return (murmur2(f"{key_type}|{key}".encode("utf-8", "surrogatepass")) & 0x7FFFFFFF) % partitions
