"""What a stage is given and what it writes to: the records of its input, the port its outputs
go through, and the base every stage shares.

The runtime (stream/runtime/) hands a stage its input in offset order per partition with no
holes (records the consumer passed over are read and put in place first), and releases the
input for commit only once the batch is done; a batch left unfinished (the worker stopping) is
read again by whoever holds the partition next. A stage is written for that: processing a
record twice changes nothing (stream/core/aggregator.py, stream/core/merge.py, the store's upserts).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Protocol

from riskpulse.records import SCHEMA_VERSION, TOPIC_ALERTS, TOPIC_DLQ, Alert

from .. import metrics
from ..core.messages import dumps
from ..core.state import Overlay
from ..core.validation import dead_letter

log = logging.getLogger("riskpulse.stream.stages")

# the worker's two internal topics, by the names stages send to (the runtime maps them to the
# app's own topic names, stream/topic_plan.py); the public ones go by riskpulse.records' names
SCORED_BY_STORY = "scored-by-story"
WINDOWS = "windows"


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a stage's input."""

    topic: str
    partition: int
    offset: int
    timestamp: float | None  # the broker's timestamp, seconds (None: the record has none)
    value: bytes | None


class Outputs(Protocol):
    """Where one stage's records go (each stage has a port of its own). ``send`` returns once the
    record is queued for the broker; the awaitable it returns completes when the broker has
    acknowledged it (acks=all). A stage that must know its outputs are durable before it moves
    its own state on (a window is closed only once its counters are acknowledged) awaits those.
    ``settle`` waits for every record sent since the last settle: the runtime calls it at the end
    of each batch and releases the batch's input for commit only then, so an input is committed
    only once everything it caused, dead letters included, is acknowledged."""

    async def send(self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
                   headers: list[tuple[str, bytes]] | None = None,
                   timestamp: float | None = None) -> Awaitable[Any]: ...

    async def settle(self) -> None: ...


def record_headers(topic: str, model_version: str | None = None) -> list[tuple[str, bytes]]:
    """Kafka headers of every record riskpulse publishes: what it is, in which schema version
    (stream/schemas/<topic>.schema.json), and for scored items the model that scored them, so a
    subscriber can route or refuse a record without parsing its value."""
    headers = [("content-type", b"application/json"),
               ("riskpulse-schema", f"{topic}/v{SCHEMA_VERSION}".encode())]
    if model_version:
        headers.append(("riskpulse-model-version", model_version.encode()))
    return headers


async def send_dead_letter(out: Outputs, record: Record, reason: str, stage: str) -> None:
    """``record`` made ``stage`` raise: to news.dlq with its stage, reason and source position, and the stream goes on."""
    letter = dead_letter(record.value, reason, record.topic, record.partition, record.offset,
                         datetime.now(timezone.utc), stage=stage)
    log.warning("news.dlq", extra={"stage": stage, "reason": reason[:300], "topic": record.topic,
                                   "partition": record.partition, "offset": record.offset})
    metrics.DLQ.labels(stage).inc()
    await out.send(TOPIC_DLQ, dumps(letter.to_json()), key=f"{record.topic}:{record.partition}:{record.offset}".encode(),
                   headers=record_headers(TOPIC_DLQ))


async def send_alert(out: Outputs, alert: Alert, timestamp: float | None) -> Awaitable[Any]:
    """One alert record on ``alerts`` (key: its id), counted and logged, from whichever stage
    judged it (a key's spike, a story's spread). Returns the broker's acknowledgement to await."""
    ack = await out.send(TOPIC_ALERTS, dumps(alert.to_json()), key=alert.id.encode(), headers=record_headers(TOPIC_ALERTS),
                         timestamp=timestamp)
    metrics.ALERTS.labels(alert.severity, alert.status).inc()
    log.warning("alert", extra={"alert_id": alert.id, "status": alert.status, "severity": alert.severity,
                                "summary": alert.summary})
    return ack


class Stage:
    """One stage: ``process`` is called with each chunk of a batch, in offset order.

    A keyed stage keeps its state in a table partitioned like its input: the runtime calls
    ``open`` with a partition's state before that partition's chunks and ``close`` after them."""

    name: str = "stage"
    out: Outputs  # the stage's own port
    batch: int = 500  # records per batch at most
    within_s: float = 0.02  # how long a batch waits to fill
    keyed: bool = False
    # keeps state per input partition but reads batches across partitions (the scorer, whose
    # model wants whole batches): the runtime sets ``state_of`` before each chunk
    stateful: bool = False
    watched: bool = True  # its input counts for the stall watchdog and the lag figures

    async def start(self) -> None:
        """Before the first batch (the scorer loads its model here)."""

    async def open(self, partition: int, state: Overlay) -> None:
        """A keyed stage's partition, with that partition's state, before its chunks."""

    def state_of(self, partition: int) -> Overlay:
        """A stateful stage's state of one input partition: read, write and ``flush`` it before
        the next await (the table follows the current event, which this call sets)."""
        raise NotImplementedError("only a stateful stage has state")

    async def process(self, records: list[Record]) -> None:
        raise NotImplementedError

    async def close(self, partition: int) -> None:
        """After a keyed stage's partition's chunks: close what they completed."""

    def end_batch(self) -> None:
        """After the whole batch."""

    def abandon(self) -> None:
        """The batch was abandoned mid-way (a rebalance overtook it): none of its state was written
        after that, and it will be read again. A stage that keeps state in memory between batches
        forgets it here, to read it again from the store."""
