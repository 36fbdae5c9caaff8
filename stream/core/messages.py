"""The records the worker's stages send each other on its two internal topics, as typed messages.

The public records (news, news.scored, trends, alerts) have pydantic models and JSON Schemas
(riskpulse/records.py); these are their internal counterparts. Each decoder refuses, with a
``ValueError`` naming what is wrong, any value that is not one of its messages: the stage then
dead-letters the record and goes on (a hand-written record, or one from a worker of another
version, must not stop a stage).

Wire format, version :data:`INTERNAL_SCHEMA_VERSION` (JSON objects; one tag key per kind, so a
record can be told apart without a schema)::

    <app>-scored-by-story  scorers -> counters, partitioned by story
        Scored     {...a news.scored record..., "_src": [topic, partition, offset, behind], "_ingest_ts": ts}
        Progress   {"_progress": [topic, partition, offset, behind(, event time or null)]}
        TICK       {"tick":1}   (the exact bytes; once a second, lets windows close while no news comes)
    <app>-windows          counters -> judges, partitioned by key shard
        WindowPart     {"_part": [source, window start, shard], "keys": {...}, "top": {...}}
        WindowClosed   {"_window": [source, window start]}
        ClosedThrough  {"_through": [source, time]}

A change to this format must be readable by the version before it while a rolling deploy runs
both: add fields, never change one's meaning, and raise the version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Union

from riskpulse.records import ScoredNews

INTERNAL_SCHEMA_VERSION = 1
TICK = b'{"tick":1}'


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as every record riskpulse publishes is written."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_object(value: bytes | None) -> dict[str, Any]:
    raw = json.loads(value)  # type: ignore[arg-type]
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    return raw


def _ints(value: Any, n: int) -> list[int]:
    if not (isinstance(value, list) and len(value) == n and all(isinstance(v, int) and not isinstance(v, bool)
                                                                for v in value)):
        raise ValueError(f"expected a list of {n} integers, got {value!r:.100}")
    return value


@dataclass(frozen=True)
class Source:
    """Where a scored item came from on ``news``, and how many records its scorer still had to
    read there (the watermark treats a partition with a backlog as slow, not idle)."""

    topic: str
    partition: int
    offset: int
    behind: int = 0

    def to_json(self) -> list[Any]:
        return [self.topic, self.partition, self.offset, self.behind]

    @classmethod
    def from_json(cls, src: Any) -> "Source":
        if not (isinstance(src, list) and len(src) in (3, 4, 5) and all(isinstance(v, int) for v in src[1:4])):
            raise ValueError("no source position (_src: [topic, partition, offset, behind])")
        return cls(src[0], src[1], src[2], src[3] if len(src) >= 4 else 0)


@dataclass(frozen=True)
class Scored:
    """A scored item on its way to the counting partition of its story."""

    item: ScoredNews
    source: Source
    ingest_ts: float | None = None  # broker time of the news record, for latency figures

    def encode(self) -> bytes:
        value = self.item.to_json()
        value["_src"] = self.source.to_json()
        value["_ingest_ts"] = self.ingest_ts
        return dumps(value)


@dataclass(frozen=True)
class Progress:
    """How far a scorer has come on one news partition, told to every counting partition: with
    this each one's clock follows all of news, as one aggregator's would (stream/core/watermark.py).

    ``event_time``: the latest event time of the items it sent on from that partition (None: none
    in this batch). A ``heartbeat`` (the worker's tick) says only where the scorer stands."""

    source: Source
    event_time: float | None = None
    heartbeat: bool = False

    def encode(self) -> bytes:
        marker = self.source.to_json()
        if not self.heartbeat:
            marker.append(self.event_time)
        return dumps({"_progress": marker})


@dataclass(frozen=True)
class Tick:
    """The once-a-second tick: windows close, and judges hear from a counting partition, while no news comes."""

    def encode(self) -> bytes:
        return TICK


CountingInput = Union[Scored, Progress, Tick]


def decode_counting(value: bytes | None) -> CountingInput:
    """A record of the scored-by-story topic, or ValueError."""
    if value == TICK:
        return Tick()
    raw = json_object(value)
    if "_progress" in raw:
        marker = raw["_progress"]
        source = Source.from_json(marker)
        ts = marker[4] if len(marker) == 5 else None
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
            raise ValueError(f"progress marker with a bad event time: {ts!r}")
        return Progress(source, ts, heartbeat=len(marker) != 5)
    source = Source.from_json(raw.pop("_src", None))
    ingest_ts = raw.pop("_ingest_ts", None)
    return Scored(ScoredNews.model_validate(raw), source, ingest_ts)


@dataclass(frozen=True)
class WindowPart:
    """The counters of one key shard of a window closed on counting partition ``source``."""

    source: int
    start: int
    shard: int
    counters: dict[str, Any]  # {"keys": {...}, "top": {...}}: stream/core/aggregator.py

    def encode(self) -> bytes:
        return dumps({"_part": [self.source, self.start, self.shard], **self.counters})


@dataclass(frozen=True)
class WindowClosed:
    """Counting partition ``source`` closed window ``start``: every judge judges it, keys of its own in it or not."""

    source: int
    start: int

    def encode(self) -> bytes:
        return dumps({"_window": [self.source, self.start]})


@dataclass(frozen=True)
class ClosedThrough:
    """Counting partition ``source`` has closed, and sent on, every window up to ``through``."""

    source: int
    through: float

    def encode(self) -> bytes:
        return dumps({"_through": [self.source, self.through]})


JudgingInput = Union[WindowPart, WindowClosed, ClosedThrough]


def decode_judging(value: bytes | None) -> JudgingInput:
    """A record of the windows topic, or ValueError."""
    raw = json_object(value)
    if "_part" in raw:
        source, start, shard = _ints(raw["_part"], 3)
        if not isinstance(raw.get("keys"), dict) or not isinstance(raw.get("top", {}), dict):
            raise ValueError("window counters without keys")
        return WindowPart(source, start, shard, raw)
    if "_window" in raw:
        source, start = _ints(raw["_window"], 2)
        return WindowClosed(source, start)
    if "_through" in raw:
        marker = raw["_through"]
        if not (isinstance(marker, list) and len(marker) == 2 and isinstance(marker[1], (int, float))):
            raise ValueError("closed-through marker: expected [partition, time]")
        return ClosedThrough(_ints(marker[:1], 1)[0], float(marker[1]))
    raise ValueError("not a window record (_part, _window or _through)")
