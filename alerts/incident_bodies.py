"""What a receiver is sent about an incident, in each route format: riskpulse's own JSON, a Slack
message, and the body Prometheus Alertmanager's webhook receivers already parse (version 4:
``groupKey``, ``status``, ``alerts[]``, ``commonLabels``, ``truncatedAlerts``; documented at
prometheus.io/docs/alerting/latest/configuration/#webhook_config).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import quote

from riskpulse.records import Alert

from .incidents import Incident, Member, labels
from .slack import slack_escape, slack_headline, slack_message

MAX_ALERTS = 50  # alerts listed in one body (Alertmanager's max_alerts); the rest counted as truncated
NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def incident_link(dashboard_url: str | None, incident: Incident) -> str | None:
    """The incident's lead alert on the dashboard (its page lists the incident's members)."""
    if not dashboard_url:
        return None
    return f"{dashboard_url.rstrip('/')}/alerts/{quote(incident.members[0].alert.id, safe='')}"


def standard_body(incident: Incident, members: list[Member], status: str, seq: int, reminder: bool,
                  now: datetime, link: str | None) -> dict[str, Any]:
    """riskpulse's own JSON: the incident, the alerts it notifies about, and the muted ones by id."""
    body: dict[str, Any] = {
        "type": f"incident.{status}", "timestamp": _iso(now),
        "data": {"id": incident.id, "status": status, "severity": severity_of(members), "notification": seq,
                 "reminder": reminder, "alerts": [m.alert.to_json() for m in members[:MAX_ALERTS]],
                 "truncated_alerts": max(0, len(members) - MAX_ALERTS),
                 "inhibited": sorted(m.alert.id for m in incident.members if m.inhibited_by is not None)}}
    if link:
        body["links"] = {"dashboard": link}
    return body


def slack_body(incident: Incident, members: list[Member], status: str, reminder: bool, link: str | None) -> dict[str, Any]:
    """One Slack message for the incident: its alerts, then its most negative stories once each."""
    icon = ":white_check_mark:" if status == "resolved" else (
        ":rotating_light:" if severity_of(members) == "critical" else ":warning:")
    head = "Resolved" if status == "resolved" else ("Still firing" if reminder else "Incident")
    lines = [f"{icon} {head}: {len(members)} alert{'s' if len(members) != 1 else ''}"]
    lines += [f"• {slack_escape(m.alert.summary)}" for m in members[:10]]
    seen: set[str] = set()
    stories = []
    for h in sorted((h for m in members for h in m.alert.top_headlines), key=lambda h: h.sentiment_score):
        story = h.story_id or h.id
        if story not in seen:
            seen.add(story)
            stories.append(h)
    return slack_message(lines + [slack_headline(h, "    ") for h in stories[:3]], link)


def alertmanager_body(group_key: str, receiver: str, members: list[Member], status: str,
                      group_by: Iterable[str], external_url: str | None) -> dict[str, Any]:
    """Alertmanager's webhook body, version 4, for a group of alerts (an incident, or one alert)."""
    listed = members[:MAX_ALERTS]
    all_labels = [labels(m.alert) for m in members]
    common = {k: v for k, v in all_labels[0].items() if all(lab.get(k) == v for lab in all_labels)} if all_labels else {}
    summaries = {m.alert.summary for m in members}
    return {
        "version": "4", "groupKey": group_key, "truncatedAlerts": len(members) - len(listed), "status": status,
        "receiver": receiver, "groupLabels": {k: v for k, v in common.items() if k in set(group_by)},
        "commonLabels": common,
        "commonAnnotations": {"summary": next(iter(summaries))} if len(summaries) == 1 else {},
        "externalURL": (external_url or "").rstrip("/"),
        "alerts": [_am_alert(m.alert, external_url) for m in listed],
    }


def _am_alert(alert: Alert, external_url: str | None) -> dict[str, Any]:
    stories = sorted(alert.top_headlines, key=lambda h: h.sentiment_score)
    annotations = {"summary": alert.summary}
    if stories:
        annotations["description"] = "; ".join(h.headline for h in stories[:3])
    fingerprint = hashlib.sha256(alert.id.encode()).hexdigest()[:16]
    return {"status": alert.status, "labels": labels(alert), "annotations": annotations,
            "startsAt": _iso(alert.window_start),
            "endsAt": _iso(alert.fired_at) if alert.status == "resolved" else NEVER,
            "generatorURL": f"{external_url.rstrip('/')}/alerts/{quote(alert.id, safe='')}" if external_url else "",
            "fingerprint": fingerprint}


def severity_of(members: list[Member]) -> str:
    """The highest of the firing alerts' (of all, once resolved: what the incident was)."""
    judged = [m for m in members if m.firing] or members
    return "critical" if any(m.alert.severity == "critical" for m in judged) else "warning"
