"""The stages' output ports (stream/stages/ports.py ``Outputs``) over the worker's faust topics.

Each stage has a port of its own, which remembers what the stage sent in the current batch; the
driver settles it (every send acknowledged by the broker, acks=all) before it releases the
batch's input for commit. faust also flushes its producer before it commits, but a send that
failed for good (a broker away past the producer's delivery timeout) only fails its own future:
the commit would go ahead past the input that caused it. Settled per batch, such a failure
raises in the stage's agent, the worker restarts (stream/runtime/supervisor.py), and the batch,
never committed, is read again.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

from riskpulse.records import TOPIC_ALERTS, TOPIC_DLQ, TOPIC_SCORED, TOPIC_TRENDS

from ..stages.ports import SCORED_BY_STORY, WINDOWS
from .app import Topics


def retrieve_failure(sent: "asyncio.Future[Any]") -> None:
    """A send's failure is raised where it is awaited (a stage's settle, a state flush's); one nobody
    awaits (the heartbeat's, or a batch abandoned as the worker stops, which the next owner reads again)
    must not be logged as an error when the future is collected."""
    if not sent.cancelled():
        sent.exception()


class TopicOutputs:
    """Records go straight to the app's producer (faust's thin wrapper over aiokafka's), not through
    faust's ``Topic.send``: that path wraps each record in a pending and a future message, runs
    the sensors and a completion callback, about 40 us of Python a record against aiokafka's own
    9 (bench/bench_kafka_floor.py, docs/benchmarks.md). Nothing here needs what it adds: the
    values are bytes already, partitions are given or left to aiokafka's partitioner (as faust
    leaves them), and faust still flushes the same producer before it commits."""

    def __init__(self, app: Any, topics: Topics) -> None:
        self._app = app
        self._names = {name: topic.get_topic_name() for name, topic in (
            (SCORED_BY_STORY, topics.scored_internal), (WINDOWS, topics.windows_internal), (TOPIC_SCORED, topics.scored),
            (TOPIC_TRENDS, topics.trends), (TOPIC_ALERTS, topics.alerts), (TOPIC_DLQ, topics.dlq))}

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None, timestamp: float | None = None) -> Awaitable[Any]:
        sent = await self._app.producer.send(self._names[topic], key, value, partition, timestamp, headers)
        sent.add_done_callback(retrieve_failure)
        return sent

    async def settle(self) -> None:
        """Nothing to wait for: the heartbeat's records answer to no input."""


class StagePort:
    """One stage's port: its sends since the last settle, awaited together at the end of a batch."""

    def __init__(self, topics: TopicOutputs) -> None:
        self._topics = topics
        self._pending: list[Awaitable[Any]] = []

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None, timestamp: float | None = None) -> Awaitable[Any]:
        sent = await self._topics.send(topic, value, key=key, partition=partition, headers=headers,
                                       timestamp=timestamp)
        self._pending.append(sent)
        return sent

    async def settle(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)  # a send that failed for good raises here: the batch is not released
