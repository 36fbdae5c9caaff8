"""A durable ``news`` producer for the sources (replay, RSS, HTTP ingest's tools)."""

from __future__ import annotations

import json
from typing import Any

from kafka import KafkaProducer

from . import kafka_clients


def news_producer(bootstrap: str | None = None) -> KafkaProducer:
    """acks=all and one request in flight: an item is durable and in order once ``flush`` returns."""
    return kafka_clients.producer(bootstrap=bootstrap, acks="all", linger_ms=5, retries=10,
                                  max_in_flight_requests_per_connection=1,
                                  value_serializer=lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8"))


def news_key(item: dict[str, Any]) -> bytes:
    """Keyed by id (or headline): a re-sent item lands on the same partition as the first copy."""
    return str(item.get("id") or item["headline"]).encode("utf-8")


def send_all(producer: KafkaProducer, topic: str, items: list[dict[str, Any]], timeout_s: float = 60.0) -> None:
    """Send and wait for every acknowledgement; raises if any item was not written."""
    futures = [producer.send(topic, value=item, key=news_key(item)) for item in items]
    producer.flush(timeout=timeout_s)
    for future in futures:
        future.get(timeout=timeout_s)
