"""Logging set-up: human lines by default, one JSON object per line with ``--log-json``."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import datetime, timezone
from typing import Callable

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SECRET_HINTS = ("password", "secret", "token", "authorization")


_SCRUB = [(re.compile(r"(://[^/@:\s]+):[^@/\s]+@"), r"\1:***@"),  # credentials in URLs
          (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_***"),  # webhook secrets
          (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***")]


def scrub(text: str) -> str:
    """Secrets that slip into a message or a value (a store URL, an error echoing a header)."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: ("***" if any(h in k.lower() for h in _SECRET_HINTS) else scrub(v) if isinstance(v, str) else v)
            for k, v in record.__dict__.items() if k not in _STD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "msg": scrub(record.getMessage()), **_extras(record)}
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = scrub(super().format(record))
        extras = _extras(record)
        return base + ("  " + " ".join(f"{k}={v}" for k, v in extras.items()) if extras else "")


class RateLimit(logging.Filter):
    """At most ``burst`` records per message template and logger every ``period_s``; the rest are counted.

    A worker whose broker is gone must not write megabytes of the same connection error: the
    first ones say what is wrong, the next allowed one says how many were held back. A record
    about one partition (``topic`` and ``partition`` in its extras) is limited per partition: a
    restart that finds holes on every partition must log each of them (CI's kill -9 stall of
    2026-12-02 could not be read back because the sixth partition's line was held back), and
    the partitions are few, so the log stays bounded.
    """

    def __init__(self, burst: int = 5, period_s: float = 60.0, clock: "Callable[[], float] | None" = None) -> None:
        super().__init__()
        self.burst, self.period_s = burst, period_s
        self.clock = clock or time.monotonic
        self.seen: dict[tuple[str, int, str, str, str], list[float]] = {}  # key -> [window start, count, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:200],
               str(getattr(record, "topic", "")), str(getattr(record, "partition", "")))
        now = self.clock()
        entry = self.seen.get(key)
        if entry is None or now - entry[0] >= self.period_s:
            held = int(entry[2]) if entry else 0
            self.seen[key] = [now, 1, 0]
            if len(self.seen) > 10_000:  # bounded: forget the oldest templates
                for old in list(self.seen)[:5_000]:
                    del self.seen[old]
            if held:
                record.msg = f"{record.msg} ({held} similar records suppressed in the last {self.period_s:g} s)"
            return True
        entry[1] += 1
        if entry[1] <= self.burst:
            return True
        entry[2] += 1
        return False


def rate_limit_handlers(logger: logging.Logger | None = None, **kw: float) -> None:
    """Attach one :class:`RateLimit` to each handler of ``logger`` (the root by default) that has none."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RateLimit) for f in handler.filters):
            handler.addFilter(RateLimit(**kw))  # type: ignore[arg-type]


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(json_logs: bool) -> logging.Formatter:
    return JsonFormatter() if json_logs else TextFormatter(TEXT_FORMAT)


def take_over_handlers(json_logs: bool, logger: logging.Logger | None = None) -> None:
    """faust/mode replace the root handlers with their own plain formatter when a worker starts,
    which dropped every record's fields (a skipped-offsets error lost its offsets), ignored
    LOG_JSON and redacted nothing: give those handlers ours back, rate-limited."""
    for handler in (logger or logging.getLogger()).handlers:
        handler.setFormatter(formatter(json_logs))
    rate_limit_handlers(logger)


def setup_logging(json_logs: bool = False, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(json_logs))
    root = logging.getLogger()
    handler.addFilter(RateLimit())
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "urllib3", "httpx", "faust", "mode", "werkzeug", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
