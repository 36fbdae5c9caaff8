"""The stages' output port (stream/stages/ports.py ``Outputs``) over the worker's faust topics.

faust's producer sends with acks=all; faust flushes it before it commits the input's offsets, so
an input is committed only once the outputs it caused are acknowledged (at-least-once end to end).
"""

from __future__ import annotations

from typing import Any, Awaitable

from riskpulse.records import TOPIC_ALERTS, TOPIC_DLQ, TOPIC_SCORED, TOPIC_TRENDS

from ..stages.ports import SCORED_BY_STORY, WINDOWS
from .app import Topics


class TopicOutputs:
    def __init__(self, topics: Topics) -> None:
        self._topics = {SCORED_BY_STORY: topics.scored_internal, WINDOWS: topics.windows_internal,
                        TOPIC_SCORED: topics.scored, TOPIC_TRENDS: topics.trends, TOPIC_ALERTS: topics.alerts,
                        TOPIC_DLQ: topics.dlq}

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None, timestamp: float | None = None) -> Awaitable[Any]:
        return await self._topics[topic].send(key=key, value=value, partition=partition, headers=headers,
                                              timestamp=timestamp)
