"""Turn a raw ``news`` value into a :class:`NewsItem`, or into a dead letter that says why not.

Pure functions: the agent calls them and routes the failures to ``news.dlq``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from riskpulse.records import SCHEMA_VERSION, DeadLetter, NewsItem

RAW_KEEP_BYTES = 4096
MAX_VALUE_BYTES = 64 * 1024  # a valid item is far smaller: 1,000-char headline + 20,000-char body


@dataclass(frozen=True)
class Invalid:
    reason: str


def parse_news(value: bytes | None, ingest_time: datetime) -> NewsItem | Invalid:
    """Validate one raw value; never raises."""
    if value is None:
        return Invalid("empty value (tombstone)")
    if len(value) > MAX_VALUE_BYTES:
        return Invalid(f"value of {len(value)} bytes exceeds the {MAX_VALUE_BYTES}-byte limit")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Invalid(f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return Invalid(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return Invalid("JSON nested too deeply")
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits, NaN or Infinity
        return Invalid(f"not acceptable JSON: {exc}")
    if not isinstance(raw, dict):
        return Invalid(f"expected a JSON object, got {type(raw).__name__}")
    version = raw.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        return Invalid(f"unsupported schema_version {version!r}; this worker reads {SCHEMA_VERSION}")
    try:
        item = NewsItem.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
        return Invalid(f"invalid news record: {problems}")
    except (OverflowError, RecursionError) as exc:  # pydantic wraps ValueError only
        return Invalid(f"invalid news record: {exc}")
    problem = _text_problem(item)
    if problem:
        return Invalid(problem)
    return item.completed(ingest_time)


def _text_problem(item: NewsItem) -> str | None:
    """What JSON and pydantic accept but no sink can store: NUL characters and lone surrogates."""
    fields = item.model_dump(exclude_none=True)
    for name, value in fields.items():
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            if "\x00" in text:
                return f"{name}: contains a NUL character (U+0000), which no text column stores"
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"{name}: not valid Unicode ({exc.reason} at character {exc.start})"
    return None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def dead_letter(value: bytes | None, reason: str, topic: str, partition: int, offset: int,
                now: datetime, stage: str = "parse") -> DeadLetter:
    """The DLQ record of a value that failed ``stage``: enough to find, fix and re-send it."""
    raw = value or b""
    return DeadLetter(error=reason[:2000], stage=stage, raw_value=raw[:RAW_KEEP_BYTES].decode("utf-8", errors="replace"),
                      raw_truncated=len(raw) > RAW_KEEP_BYTES, source_topic=topic, source_partition=partition,
                      source_offset=offset, failed_at=now)
