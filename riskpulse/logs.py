"""Logging set-up: human lines by default, one JSON object per line with ``--log-json``."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

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


def setup_logging(json_logs: bool = False, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "urllib3", "httpx", "faust", "mode", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
