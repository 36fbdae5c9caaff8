"""Incident notifications: what each webhook route is owed about each incident, and when.

The alerts sink stores alerts; this loop, beside the stream like the webhook deliverer, reads the
recent ones back, makes incidents of them (alerts/incidents.py: a pure function of the stored
alerts, so every worker, a replay and the dashboard find the same ones), and puts each
notification into the webhook outbox, from where the deliverer sends, retries and signs it as any
other message. Timing as Prometheus Alertmanager's, per route:

- an incident's first notification ``group_wait_s`` after the route first sees it (the ticker's
  alert and the topic alerts of one burst arrive within seconds: they go out as one);
- a change (an alert joins, escalates or resolves) at most once per ``group_interval_s``;
- a reminder every ``repeat_interval_s`` while it fires and nothing changed;
- one notification when all its alerts resolve; an incident that resolved before its first
  notification was due (a backlog read after an outage fires and resolves in seconds) is told
  once, as resolved: what happened is never dropped, and nobody is paged for what is over.

A route is told only of the incident's alerts it matches, that are not inhibited (muted echoes of
a cause) and not silenced; an incident with none of those says nothing to that route.

Exact under several workers, redelivery and kill -9: what a route was last told is one row of
``incident_notices``; a notification is claimed by a conditional update of its ``seq`` in the same
transaction as its outbox row (message id ``inc_<incident>_<seq>``), so it is enqueued once
whoever gets there first, and a crash before the commit leaves both undone for the next tick.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from riskpulse.store.news import Store
from riskpulse.store.schema import incident_notices, outbox

from . import incident_bodies
from .incident_bodies import severity_of
from .incidents import Grouping, Incident, InhibitRule, Member, incidents
from .outbox import Outbox
from .rules import IncidentsSpec, Route, Rules
from .silences import Silences
from .slack import slack_message

log = logging.getLogger(__name__)

HORIZON_S = 86400.0  # event time: alerts this far behind the newest are no longer grouped or notified


def grouping_of(spec: IncidentsSpec) -> tuple[Grouping, tuple[InhibitRule, ...] | None]:
    """The rules file's incidents section as alerts/incidents.py takes it (None: its default inhibition)."""
    grouping = Grouping(by=tuple(spec.group_by), min_overlap=spec.min_overlap, window_s=spec.window_minutes * 60)
    if spec.inhibit is None:
        return grouping, None
    return grouping, tuple(InhibitRule(source=dict(r.source), target=dict(r.target), equal=tuple(r.equal),
                                       min_evidence_share=r.min_evidence_share, window_s=r.window_minutes * 60)
                           for r in spec.inhibit)


def make_incidents(alerts: list[Any], spec: IncidentsSpec) -> list[Incident]:
    grouping, inhibit = grouping_of(spec)
    return incidents(alerts, grouping) if inhibit is None else incidents(alerts, grouping, inhibit)


@dataclass(frozen=True)
class Timing:
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float

    @classmethod
    def of(cls, route: Route, spec: IncidentsSpec) -> "Timing":
        return cls(spec.group_wait_s if route.group_wait_s is None else route.group_wait_s,
                   spec.group_interval_s if route.group_interval_s is None else route.group_interval_s,
                   spec.repeat_interval_s if route.repeat_interval_s is None else route.repeat_interval_s)


@dataclass(frozen=True)
class Notice:
    """What a route was last told of an incident (a row of ``incident_notices``)."""

    seq: int
    state: str | None
    status: str | None
    last_sent_at: float | None
    next_at: float
    opened_at: float = 0.0


def state_of(members: list[Member]) -> tuple[str, str]:
    """The incident as a route sees it: (status, digest of its alerts' states)."""
    status = "firing" if any(m.firing for m in members) else "resolved"
    states = sorted((m.alert.id, m.alert.status, m.alert.severity) for m in members)
    return status, hashlib.sha256(json.dumps([status, states]).encode()).hexdigest()[:32]


def due(notice: Notice, status: str, state: str, now: float, timing: Timing) -> str | None:
    """Whether a notification is owed now: "change", "reminder" or None (plain code: the timing rules)."""
    if now < notice.next_at:
        return None
    if state != notice.state:  # also an incident that resolved before its first notification: told once, resolved
        return "change"
    if status == "firing" and notice.last_sent_at is not None and now - notice.last_sent_at >= timing.repeat_interval_s:
        return "reminder"
    return None


class Notifier:
    def __init__(self, store: Store, outbox: Outbox, rules: Rules, dashboard_url: str | None = None,
                 silences: Silences | None = None, horizon_s: float = HORIZON_S) -> None:
        self.store, self.outbox, self.rules = store, outbox, rules
        self.spec = rules.incidents
        self.silences = silences or Silences(outbox.engine)
        self.dashboard_url, self.horizon_s = dashboard_url, horizon_s
        self.on_notified: Callable[[str, str], None] = lambda route, kind: None  # metrics hook

    def tick(self, now: float | None = None) -> int:
        """One pass over the recent incidents; returns the notifications enqueued."""
        now = time.time() if now is None else now
        if not self.rules.routes:
            return 0
        found = make_incidents(self.store.recent_alerts(self.horizon_s), self.spec)
        if not found:
            return 0
        notices = self._notices([inc.id for inc in found] + ["digest"])
        silences = self.silences.active(now)
        reached: dict[tuple[str, str, str], set[str]] = {}  # (severity, key_type, key) -> route names, down the tree
        sent = 0
        digests: dict[str, list[tuple[Incident, list[Member]]]] = {}
        for incident in found:
            for route in self.rules.routes:
                members = []
                for m in incident.notified:
                    labels = (m.alert.severity, m.alert.key_type, m.alert.key)
                    if labels not in reached:
                        reached[labels] = {r.name for r in self.rules.routes_for(*labels)}
                    if route.name in reached[labels] and not any(
                            s.matches(m.alert.key_type, m.alert.key, m.alert.severity, now) for s in silences):
                        members.append(m)
                if not members:
                    continue
                if route.digest_every_s is not None:
                    digests.setdefault(route.name, []).append((incident, members))
                    continue
                try:
                    sent += self._route(incident, route, members, notices.get((incident.id, route.name)), now)
                    if route.escalate_to is not None:
                        sent += self._escalate(incident, route, members, notices, now)
                except Exception:  # noqa: BLE001 - one incident must not stop the others' notifications
                    log.exception("incident notification failed; tried again next pass",
                                  extra={"incident": incident.id, "route": route.name})
        for route in self.rules.routes:
            if route.digest_every_s is not None:
                try:
                    sent += self._digest(route, digests.get(route.name, []), notices, now)
                except Exception:  # noqa: BLE001 - as above
                    log.exception("incident digest failed; tried again next pass", extra={"route": route.name})
        return sent

    def _notices(self, ids: list[str]) -> dict[tuple[str, str], Notice]:
        out = {}
        with self.outbox.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                for r in conn.execute(select(incident_notices).where(
                        incident_notices.c.incident_id.in_(ids[start:start + 500]))).mappings():
                    out[(r["incident_id"], r["route"])] = Notice(r["seq"], r["state"], r["status"], r["last_sent_at"],
                                                                 r["next_at"], r["opened_at"])
        return out

    def _route(self, incident: Incident, route: Route, members: list[Member], notice: Notice | None, now: float) -> int:
        timing = Timing.of(route, self.spec)
        status, state = state_of(members)
        if notice is None:
            # every alert of it already told as it stands, one message per alert (a release before
            # incidents, or incidents turned on): the route knows; nothing to say until it changes
            told = self._told_per_alert(route, members)
            notice = Notice(0, state if told else None, status if told else None, now if told else None,
                            now + timing.group_wait_s, now)
            try:
                with self.outbox.engine.begin() as conn:
                    conn.execute(insert(incident_notices).values(
                        incident_id=incident.id, route=route.name, seq=0, state=notice.state, status=notice.status,
                        opened_at=now, last_sent_at=notice.last_sent_at, next_at=notice.next_at))
            except IntegrityError:
                return 0  # another worker opened it first: the next pass reads its row
        kind = due(notice, status, state, now, timing)
        if kind is None:
            return 0
        seq = notice.seq + 1
        message_id = f"inc_{incident.id}_{seq}"
        body = self._body(incident, route, members, status, seq, kind == "reminder", now)
        lead = members[0].alert
        try:
            with self.outbox.engine.begin() as conn:
                claimed = conn.execute(update(incident_notices).where(and_(
                    incident_notices.c.incident_id == incident.id, incident_notices.c.route == route.name,
                    incident_notices.c.seq == notice.seq)).values(
                        seq=seq, state=state, status=status, last_sent_at=now,
                        next_at=now + timing.group_interval_s)).rowcount
                if claimed != 1:
                    return 0  # another worker sent it (nothing was written here)
                self.outbox.enqueue(message_id, route.name, route.url, body, now, key_type=lead.key_type, key=lead.key,
                                    severity=lead.severity, conn=conn)
        except IntegrityError:
            return 0  # enqueued already (a crashed pass's commit was not lost after all)
        self.on_notified(route.name, kind)
        log.info("incident notification enqueued", extra={"incident": incident.id, "route": route.name, "seq": seq,
                                                          "status": status, "kind": kind, "alerts": len(members)})
        return 1

    def _told_per_alert(self, route: Route, members: list[Member]) -> bool:
        ids = [f"msg_{m.alert.id}_{m.alert.status}_{m.alert.severity}" for m in members]
        with self.outbox.engine.connect() as conn:
            found = {r[0] for r in conn.execute(select(outbox.c.message_id).where(
                outbox.c.route == route.name, outbox.c.message_id.in_(ids)))}
        return found == set(ids)

    def _escalate(self, incident: Incident, route: Route, members: list[Member],
                  notices: dict[tuple[str, str], Notice], now: float) -> int:
        """Beyond Alertmanager: an incident ``route`` was told of, still firing, that nobody has
        acknowledged ``escalate_after_s`` after the route first saw it, goes to ``escalate_to``
        once (claimed by inserting its notice row, ``<route>>escalated``, with the message)."""
        notice = notices.get((incident.id, route.name))
        key = (incident.id, f"{route.name}>escalated")
        if (route.escalate_after_s is None or notice is None or notice.seq < 1 or notice.status != "firing"
                or key in notices or now < notice.opened_at + route.escalate_after_s):
            return 0
        if self.store.acknowledged(m.alert.id for m in incident.members):
            return 0  # someone is on it
        target = next(r for r in self.rules.routes if r.name == route.escalate_to)
        body = self._body(incident, target, members, "firing", 1, False, now)
        if target.format == "standard":
            body["type"] = "incident.escalated"
            body["data"]["escalated_from"] = route.name
        lead = members[0].alert
        try:
            with self.outbox.engine.begin() as conn:
                conn.execute(insert(incident_notices).values(
                    incident_id=incident.id, route=key[1], seq=1, state=None, status="firing", opened_at=now,
                    last_sent_at=now, next_at=now))
                self.outbox.enqueue(f"inc_{incident.id}_esc_{route.name}", target.name, target.url or "", body, now,
                                    key_type=lead.key_type, key=lead.key, severity=lead.severity, conn=conn)
        except IntegrityError:
            return 0  # another worker escalated it
        notices[key] = Notice(1, None, "firing", now, now, now)
        self.on_notified(target.name, "escalation")
        log.warning("incident escalated: nobody acknowledged it", extra={
            "incident": incident.id, "route": route.name, "to": target.name, "after_s": route.escalate_after_s})
        return 1

    def _digest(self, route: Route, reached: list[tuple[Incident, list[Member]]],
                notices: dict[tuple[str, str], Notice], now: float) -> int:
        """Beyond Alertmanager: one message per ``digest_every_s`` (wall-clock periods) listing the
        incidents opened, changed and resolved since the last, for readers who want no page per
        event. What each incident was when last listed is its notice row; the period sent last
        is the ``digest`` row's ``seq``, claimed with the message like any notification."""
        assert route.digest_every_s is not None
        period = int(now // route.digest_every_s)
        last = notices.get(("digest", route.name))
        if last is None:
            try:
                with self.outbox.engine.begin() as conn:  # the first period is a partial one: nothing sent for it
                    conn.execute(insert(incident_notices).values(
                        incident_id="digest", route=route.name, seq=period, state=None, status=None, opened_at=now,
                        last_sent_at=None, next_at=(period + 1) * route.digest_every_s))
            except IntegrityError:
                pass
            return 0
        if period <= last.seq:
            return 0
        entries, changed = [], []
        for incident, members in reached:
            status, state = state_of(members)
            before = notices.get((incident.id, route.name))
            if before is not None and before.state == state:
                continue
            what = ("resolved" if status == "resolved" else "opened" if before is None or before.state is None
                    else "changed")
            entries.append({"change": what, "id": incident.id, "status": status, "severity": severity_of(members),
                             "alerts": [{"id": m.alert.id, "key_type": m.alert.key_type, "key": m.alert.key,
                                         "severity": m.alert.severity, "status": m.alert.status,
                                         "summary": m.alert.summary} for m in members]})
            changed.append((incident.id, before, status, state))
        try:
            with self.outbox.engine.begin() as conn:
                claimed = conn.execute(update(incident_notices).where(and_(
                    incident_notices.c.incident_id == "digest", incident_notices.c.route == route.name,
                    incident_notices.c.seq == last.seq)).values(seq=period, last_sent_at=now,
                                                                next_at=(period + 1) * route.digest_every_s)).rowcount
                if claimed != 1:
                    return 0
                for incident_id, before, status, state in changed:
                    values = {"seq": (before.seq if before else 0) + 1, "state": state, "status": status,
                              "last_sent_at": now, "next_at": now}
                    if before is None:
                        conn.execute(insert(incident_notices).values(incident_id=incident_id, route=route.name,
                                                                     opened_at=now, **values))
                    else:
                        conn.execute(update(incident_notices).where(and_(
                            incident_notices.c.incident_id == incident_id,
                            incident_notices.c.route == route.name)).values(**values))
                if entries:
                    body = self._digest_body(route, entries, period, now)
                    self.outbox.enqueue(f"digest_{route.name}_{period}", route.name, route.url or "", body, now,
                                        conn=conn)
        except IntegrityError:
            return 0  # another worker sent this period's digest
        if entries:
            self.on_notified(route.name, "digest")
        return 1 if entries else 0

    def _digest_body(self, route: Route, entries: list[dict[str, Any]], period: int, now: float) -> dict[str, Any]:
        assert route.digest_every_s is not None
        since = datetime.fromtimestamp((period - 1) * route.digest_every_s, timezone.utc)
        until = datetime.fromtimestamp(period * route.digest_every_s, timezone.utc)
        if route.format == "slack":
            lines = [f":newspaper: riskpulse digest, {since:%H:%M} to {until:%H:%M} UTC: {len(entries)} incident(s)"]
            lines += [f"• {e['change']} ({e['severity']}): " + "; ".join(a["key"] for a in e["alerts"][:5])
                      for e in entries]
            return slack_message(lines, None)
        return {"type": "incident.digest", "timestamp": datetime.fromtimestamp(now, timezone.utc).isoformat()
                .replace("+00:00", "Z"), "data": {"since": since.isoformat().replace("+00:00", "Z"),
                                                  "until": until.isoformat().replace("+00:00", "Z"),
                                                  "incidents": entries}}

    def _body(self, incident: Incident, route: Route, members: list[Member], status: str, seq: int, reminder: bool,
              now: float) -> dict[str, Any]:
        link = incident_bodies.incident_link(self.dashboard_url, incident)
        if route.format == "alertmanager":
            return incident_bodies.alertmanager_body(f"{route.name}:{incident.id}", route.name, members, status,
                                                     self.spec.group_by, self.dashboard_url)
        if route.format == "slack":
            return incident_bodies.slack_body(incident, members, status, reminder, link)
        return incident_bodies.standard_body(incident, members, status, seq, reminder,
                                             datetime.fromtimestamp(now, timezone.utc), link)


async def notify_forever(notifier_factory: Callable[[], Notifier], run_blocking: Callable[..., Any],
                         interval_s: float = 1.0) -> None:
    """The worker's incident loop: a pass every ``interval_s`` on the outbox's thread."""
    notifier = await run_blocking(notifier_factory)
    while True:
        try:
            await run_blocking(notifier.tick)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a store hiccup must not end notifications
            log.exception("incident notification loop error; retrying")
        await asyncio.sleep(interval_s)
