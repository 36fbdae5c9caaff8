"""The durable webhook outbox and delivery log, in the store database.

An alert becomes one outbox row per matching route *before* anything is sent, so a worker
that dies during a receiver's outage resumes the pending deliveries when it (or another worker)
starts. Rows are claimed with a short lease by a conditional UPDATE, so several workers never
send the same row at the same time. Blocking (SQLAlchemy); the worker calls it from a thread.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from riskpulse.store.engine import create_store_engine
from riskpulse.store.schema import deliveries, endpoints, incident_notices, outbox

LEASE_S = 120.0


class Outbox:
    def __init__(self, url_or_engine: str | Engine, migrate: bool = True) -> None:
        self.engine = create_store_engine(url_or_engine, migrate) if isinstance(url_or_engine, str) else url_or_engine
        self.owner = uuid.uuid4().hex[:12]

    def enqueue(self, message_id: str, route: str, url: str, body: dict[str, Any], now: float | None = None,
                key_type: str | None = None, key: str | None = None, severity: str | None = None,
                conn: Connection | None = None) -> bool:
        """Adds a pending delivery; False if it is already there (redelivered alert): idempotent.

        ``key_type``, ``key``, ``severity``: the alert's, for silences (alerts/silences.py).
        ``conn``: inside the caller's transaction (alerts/notifier.py), where a message already
        there raises IntegrityError instead, so the caller's whole transaction rolls back."""
        now = time.time() if now is None else now
        status = "skipped" if self.disabled(route) else "pending"
        row = insert(outbox).values(
            message_id=message_id, route=route, url=url, body=json.dumps(body, ensure_ascii=False),
            key_type=key_type, key=key, severity=severity,
            status=status, attempts=0, next_attempt_at=now, created_at=now,
            last_error="endpoint disabled (HTTP 410)" if status == "skipped" else None)
        if conn is not None:
            conn.execute(row)
            return True
        try:
            with self.engine.begin() as own:
                own.execute(row)
            return True
        except IntegrityError:
            return False

    def claim_due(self, now: float | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Pending rows whose time has come, leased to this process."""
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            candidates = conn.execute(
                select(outbox.c.message_id, outbox.c.route)
                .where(and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now,
                            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)))
                .order_by(outbox.c.next_attempt_at).limit(limit)).all()
        claimed = []
        for message_id, route in candidates:
            with self.engine.begin() as conn:
                won = conn.execute(
                    update(outbox)
                    .where(and_(outbox.c.message_id == message_id, outbox.c.route == route, outbox.c.status == "pending",
                                or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)))
                    .values(lease_until=now + LEASE_S, lease_owner=self.owner)).rowcount
                if won:
                    row = conn.execute(select(outbox).where(and_(outbox.c.message_id == message_id,
                                                                 outbox.c.route == route))).mappings().one()
                    claimed.append(dict(row))
        return claimed

    def record(self, row: dict[str, Any], outcome: str, status_code: int | None, error: str | None,
               duration_ms: float, next_attempt_at: float | None, now: float | None = None) -> None:
        """The result of one attempt: log it and move the row on (pending again, delivered, failed)."""
        now = time.time() if now is None else now
        attempt = row["attempts"] + 1
        values: dict[str, Any] = {"attempts": attempt, "last_status_code": status_code, "last_error": error,
                                  "lease_until": None, "lease_owner": None}
        if outcome == "retry":
            values.update(status="pending", next_attempt_at=next_attempt_at)
        else:
            values.update(status=outcome, finished_at=now)
        with self.engine.begin() as conn:
            conn.execute(insert(deliveries).values(message_id=row["message_id"], route=row["route"], attempt=attempt,
                                                   at=now, status_code=status_code, error=error, duration_ms=duration_ms))
            conn.execute(update(outbox).where(and_(outbox.c.message_id == row["message_id"],
                                                   outbox.c.route == row["route"])).values(**values))

    def disable(self, route: str, url: str, reason: str, now: float | None = None) -> None:
        """HTTP 410 Gone: the receiver asked us to stop; pending rows for the route are skipped."""
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            if conn.execute(select(endpoints.c.route).where(endpoints.c.route == route)).first():
                conn.execute(update(endpoints).where(endpoints.c.route == route).values(disabled_at=now, reason=reason, url=url))
            else:
                conn.execute(insert(endpoints).values(route=route, url=url, disabled_at=now, reason=reason))
            conn.execute(update(outbox).where(and_(outbox.c.route == route, outbox.c.status == "pending"))
                         .values(status="skipped", last_error=reason, finished_at=now))

    def enable(self, route: str, requeue_skipped: bool = False, now: float | None = None) -> int:
        """Re-enable a route after its receiver is back (operator action); running workers see it at once.

        With ``requeue_skipped`` the alerts skipped while it was disabled are sent after all, oldest
        first; returns how many were requeued. Raises KeyError for a route that was never disabled.
        """
        now = time.time() if now is None else now
        with self.engine.begin() as conn:
            if not conn.execute(update(endpoints).where(endpoints.c.route == route)
                                .values(disabled_at=None, reason=None)).rowcount:
                raise KeyError(route)
            if not requeue_skipped:
                return 0
            return int(conn.execute(
                update(outbox).where(and_(outbox.c.route == route, outbox.c.status == "skipped"))
                .values(status="pending", next_attempt_at=now, finished_at=None, lease_until=None, lease_owner=None,
                        last_error="requeued after the route was re-enabled")).rowcount)

    def routes(self) -> list[dict[str, Any]]:
        """Every route the outbox has seen: its delivery counts per status and, if disabled, since when and why."""
        with self.engine.connect() as conn:
            counts = conn.execute(select(outbox.c.route, outbox.c.status, func.count())
                                  .group_by(outbox.c.route, outbox.c.status)).all()
            state = conn.execute(select(endpoints.c.route, endpoints.c.disabled_at, endpoints.c.reason)).all()
        # enable() clears the reason with the date, so an enabled route's reason is already None
        found = {route: {"route": route, "counts": {}, "disabled_at": at, "reason": reason} for route, at, reason in state}
        for route, status, n in counts:
            found.setdefault(route, {"route": route, "counts": {}, "disabled_at": None, "reason": None})["counts"][status] = n
        return sorted(found.values(), key=lambda e: e["route"])

    def disabled(self, route: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(endpoints.c.disabled_at).where(endpoints.c.route == route)).first()
        return bool(row and row[0] is not None)

    def purge(self, before: float) -> int:
        """Retention: finished messages and delivery attempts older than ``before`` (Unix s).

        Pending rows are kept whatever their age: they are still owed to a receiver.
        """
        with self.engine.begin() as conn:
            done = conn.execute(delete(outbox).where(outbox.c.status != "pending", outbox.c.finished_at < before))
            conn.execute(delete(deliveries).where(deliveries.c.at < before))
            conn.execute(delete(incident_notices).where(incident_notices.c.next_at < before,
                                                        func.coalesce(incident_notices.c.last_sent_at,
                                                                      incident_notices.c.opened_at) < before))
        return int(done.rowcount or 0)

    def summary(self) -> dict[str, int]:
        """Rows per status, e.g. {"pending": 3, "delivered": 40}."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all())
