"""Silences, as in Prometheus Alertmanager: mute the webhooks of a known story, for a while.

A silence has matchers (key type, key, severity; each unset one matches anything, at least one
is set), a start and an end, who created it and why. An alert it matches is still detected,
published, stored and shown (as silenced); only its webhooks are held back: a delivery that comes
due while a silence matches is recorded as ``silenced`` instead of sent. Expiry is the end time
passing, or `expire` setting it to now; a later alert state (a resolve after the silence ended)
is a new message and is sent as usual. Blocking (SQLAlchemy), like the outbox.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine

from riskpulse.store.engine import create_store_engine
from riskpulse.store.schema import silences

KEY_TYPES = ("topic", "ticker")
SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class Silence:
    id: str
    key_type: str | None
    key: str | None
    severity: str | None
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float

    def matches(self, key_type: str | None, key: str | None, severity: str | None, at: float) -> bool:
        return (self.starts_at <= at < self.ends_at
                and all(want is None or want == got for want, got in ((self.key_type, key_type), (self.key, key),
                                                                       (self.severity, severity))))

    def matchers(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in (("key_type", self.key_type), ("key", self.key),
                                                 ("severity", self.severity)) if v is not None)

    def describe(self) -> str:
        return f"silence {self.id} ({self.matchers()}) by {self.created_by}: {self.comment}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Silences:
    def __init__(self, url_or_engine: str | Engine, migrate: bool = True) -> None:
        self.engine = create_store_engine(url_or_engine, migrate) if isinstance(url_or_engine, str) else url_or_engine

    def add(self, created_by: str, comment: str, ends_at: float, key_type: str | None = None, key: str | None = None,
            severity: str | None = None, starts_at: float | None = None, now: float | None = None) -> Silence:
        """A new silence; refuses one that matches everything, ends before it starts, or names an unknown value."""
        now = time.time() if now is None else now
        starts_at = now if starts_at is None else starts_at
        if key_type is None and key is None and severity is None:
            raise ValueError("a silence needs at least one matcher (key type, key or severity): it would mute every alert")
        if key_type is not None and key_type not in KEY_TYPES:
            raise ValueError(f"key type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        if not created_by.strip() or not comment.strip():
            raise ValueError("a silence needs who created it and a comment saying why")
        silence = Silence(uuid.uuid4().hex, key_type, key, severity, starts_at, ends_at, created_by.strip()[:100],
                          comment.strip(), now)
        with self.engine.begin() as conn:
            conn.execute(silences.insert().values(**silence.to_json()))
        return silence

    def expire(self, silence_id: str, now: float | None = None) -> bool:
        """End a silence now; False if there is no such silence still holding."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            return bool(conn.execute(update(silences).where(and_(silences.c.id == silence_id, silences.c.ends_at > now))
                                     .values(ends_at=now)).rowcount)

    def active(self, now: float | None = None) -> list[Silence]:
        """Silences holding now or starting later, soonest end first."""
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            rows = conn.execute(select(silences).where(silences.c.ends_at > now).order_by(silences.c.ends_at)).mappings()
            return [Silence(**row) for row in rows]

    def all(self, limit: int = 200) -> list[Silence]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(silences).order_by(silences.c.created_at.desc()).limit(limit)).mappings()
            return [Silence(**row) for row in rows]

    def matching(self, key_type: str | None, key: str | None, severity: str | None,
                 now: float | None = None) -> Silence | None:
        """The silence that holds for this alert now, if any (the one ending last): judged by
        :meth:`Silence.matches` over those not ended, a handful at most."""
        now = time.time() if now is None else now
        holding = [s for s in self.active(now) if s.matches(key_type, key, severity, now)]
        return holding[-1] if holding else None  # active() is ordered by end
