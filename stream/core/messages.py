"""The records the worker's stages send each other on its two internal topics, as typed messages.

The public records (news, news.scored, trends, alerts) have pydantic models and JSON Schemas
(riskpulse/records.py); these are their internal counterparts. Each decoder refuses, with a
``ValueError`` naming what is wrong, any value that is not one of its messages: the stage then
dead-letters the record and goes on (a hand-written record, or one from a worker of another
version, must not stop a stage).

Wire format, version :data:`INTERNAL_SCHEMA_VERSION` (JSON objects; one tag key per kind, so a
record can be told apart without a schema)::

    <app>-scored-by-story  scorers -> counters, partitioned by story
        Scored     {...a news.scored record..., "_src": [topic, partition, offset, behind], "_ingest_ts": ts,
                    "_retract": {...} (a correction whose previous revision was counted on this partition)}
        Retract    {"_retract": {...the previous revision, stream/core/revisions.py...}, "_id": id, "_src": [...]}
                   (a correction whose previous revision was counted on this partition, itself going elsewhere)
        Progress   {"_progress": [topic, partition, offset, behind(, event time or null)]}
        TICK       {"tick":1}   (the exact bytes; once a second, lets windows close while no news comes)
    <app>-windows          counters -> judges, partitioned by key shard
        WindowPart     {"_part": [source, window start, shard], "keys": {...}, "top": {...}}
        WindowClosed   {"_window": [source, window start], "shards": [key shards it sent counters for]}
        ClosedThrough  {"_through": [source, time]}
        WindowFix      {"_fix": [source, window start, shard, news partition, offset], "keys": {...deltas},
                        "drop": [ids], "top": {...}}  (a correction of a window already closed)

A change to this format must be readable by the version before it while a rolling deploy runs
both: add fields, never change one's meaning, and raise the version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Union

import orjson

from riskpulse.records import ScoredNews

INTERNAL_SCHEMA_VERSION = 1
TICK = b'{"tick":1}'


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as every record riskpulse publishes is written: by orjson, several
    times the standard library's speed on the worker's records (bench/bench_codec.py), with the
    same text for them (non-string keys as strings, as ``json`` writes them). What orjson refuses
    (an integer past 64 bits) goes to the standard library, which writes it or raises as before."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(value: bytes | None) -> Any:
    """JSON text as Python values (orjson). Stricter than the standard library where it matters
    to a stage: NaN and Infinity are refused, as JSON has none (a ValueError, so the record is
    dead-lettered like any other that does not decode)."""
    return orjson.loads(value)  # type: ignore[arg-type]


def json_object(value: bytes | None) -> dict[str, Any]:
    raw = loads(value)
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
    retract: dict[str, Any] | None = None  # the revision it corrects, counted on the same partition

    def encode(self) -> bytes:
        value = self.item.to_json()
        value["_src"] = self.source.to_json()
        value["_ingest_ts"] = self.ingest_ts
        if self.retract is not None:
            value["_retract"] = self.retract
        return dumps(value)


@dataclass(frozen=True)
class Retract:
    """Take item ``id``'s previous revision (``replaced``: stream/core/revisions.py) out of this
    counting partition's counts: its correction, read at ``source``, went to another partition."""

    id: str
    replaced: dict[str, Any]
    source: Source

    def encode(self) -> bytes:
        return dumps({"_retract": self.replaced, "_id": self.id, "_src": self.source.to_json()})


def check_replaced(value: Any) -> dict[str, Any]:
    """A previous revision as the scorer describes it, or ValueError."""
    ok = (isinstance(value, dict) and isinstance(value.get("ts"), (int, float)) and math.isfinite(value["ts"])
          and isinstance(value.get("keys"), list) and all(isinstance(k, str) and "|" in k for k in value["keys"])
          and value.get("sentiment") in ("negative", "neutral", "positive")
          and isinstance(value.get("score"), (int, float)) and isinstance(value.get("status"), str)
          and isinstance(value.get("dkey"), str) and isinstance(value.get("offset"), int)
          and isinstance(value.get("partition"), int))
    if not ok:
        raise ValueError(f"not a previous revision: {value!r:.200}")
    return value


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


CountingInput = Union[Scored, Retract, Progress, Tick]


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
    retract = raw.pop("_retract", None)
    if "_id" in raw:
        if not isinstance(raw["_id"], str):
            raise ValueError("retraction without an item id")
        return Retract(raw["_id"], check_replaced(retract), source)
    ingest_ts = raw.pop("_ingest_ts", None)
    return Scored(ScoredNews.model_validate(raw), source, ingest_ts,
                  check_replaced(retract) if retract is not None else None)


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
    # the key shards this close sent counters for (None: a release that did not say); a judge
    # drops what an earlier, crashed attempt at the same close sent for others
    shards: tuple[int, ...] | None = None

    def encode(self) -> bytes:
        value: dict[str, Any] = {"_window": [self.source, self.start]}
        if self.shards is not None:
            value["shards"] = list(self.shards)
        return dumps(value)


@dataclass(frozen=True)
class ClosedThrough:
    """Counting partition ``source`` has closed, and sent on, every window up to ``through``."""

    source: int
    through: float

    def encode(self) -> bytes:
        return dumps({"_through": [self.source, self.through]})


@dataclass(frozen=True)
class WindowFix:
    """A correction to window ``start`` after counting partition ``source`` closed it: counter
    deltas per key (``"keys"``), evidence rows to drop (by item id) and to add (``"top"``). ``at``:
    the correction's position on ``news`` (partition, offset), which makes a repeat a no-op."""

    source: int
    start: int
    shard: int
    at: tuple[int, int]
    fix: dict[str, Any]  # {"keys": {...}, "drop": [...], "top": {...}}

    def encode(self) -> bytes:
        return dumps({"_fix": [self.source, self.start, self.shard, *self.at], **self.fix})


JudgingInput = Union[WindowPart, WindowClosed, ClosedThrough, WindowFix]


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
        shards = raw.get("shards")
        if shards is not None and not (isinstance(shards, list) and all(
                isinstance(s, int) and not isinstance(s, bool) for s in shards)):
            raise ValueError("window note: 'shards' must list key shards")
        return WindowClosed(source, start, tuple(shards) if shards is not None else None)
    if "_through" in raw:
        marker = raw["_through"]
        if not (isinstance(marker, list) and len(marker) == 2 and isinstance(marker[1], (int, float))):
            raise ValueError("closed-through marker: expected [partition, time]")
        return ClosedThrough(_ints(marker[:1], 1)[0], float(marker[1]))
    if "_fix" in raw:
        source, start, shard, partition, offset = _ints(raw.pop("_fix"), 5)
        if not isinstance(raw.get("keys"), dict) or not isinstance(raw.get("drop", []), list):
            raise ValueError("window correction without keys")
        return WindowFix(source, start, shard, (partition, offset),
                         {"keys": raw["keys"], "drop": raw.get("drop") or [], "top": raw.get("top") or {}})
    raise ValueError("not a window record (_part, _window, _through or _fix)")
