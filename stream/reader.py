"""kafka-python consumers for the tools that read riskpulse's topics (tests, bench, demo).

kafka-python 2.x refuses any network frame over ``receive_message_max_bytes`` (1,000,000 by
default) but asks the broker for fetch responses of up to ``fetch_max_bytes`` (50 MiB). A reader
that falls ~1 MB behind on a multi-partition topic then gets a response it will not accept,
drops the connection, asks again, and never advances (dpkp/kafka-python#3074). Every reader we
build keeps the two limits consistent.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer

from . import kafka_clients

FETCH_MAX_BYTES = 16 * 1024 * 1024
PARTITION_FETCH_BYTES = 1024 * 1024
# the broker may return one batch over the limit to make progress; a frame also has headers
RECEIVE_MAX_BYTES = FETCH_MAX_BYTES + 2 * PARTITION_FETCH_BYTES


def reader(*topics: str, bootstrap: str | None = None, **config: Any) -> KafkaConsumer:
    """A consumer whose largest fetch response always fits the largest frame it accepts."""
    config = {"fetch_max_bytes": FETCH_MAX_BYTES, "max_partition_fetch_bytes": PARTITION_FETCH_BYTES,
              "receive_message_max_bytes": RECEIVE_MAX_BYTES, **config}
    if config["receive_message_max_bytes"] < config["fetch_max_bytes"] + config["max_partition_fetch_bytes"]:
        raise ValueError("receive_message_max_bytes must exceed fetch_max_bytes + max_partition_fetch_bytes, "
                         "or a reader that falls behind stops advancing (kafka-python#3074)")
    return kafka_clients.consumer(*topics, bootstrap=bootstrap, **config)
