"""The Alerts view's incidents: which incident each stored alert belongs to, and which alert
mutes it. The same incidents the worker notifies about (alerts/notifier.py): a pure function of
the stored alerts and the rules file's incidents section, so the desk and the receivers agree."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from riskpulse.alerts.incidents import Incident
from riskpulse.alerts.notifier import HORIZON_S, make_incidents
from riskpulse.alerts.rules import IncidentsSpec, Rules, RulesError
from riskpulse.store.news import Store

log = logging.getLogger("riskpulse.dashboard.app")


@dataclass(frozen=True)
class Place:
    """An alert's place in its incident."""

    incident: str
    members: tuple[str, ...]  # the incident's alert ids, first window first
    muted_by: str | None  # the id of the alert that inhibits this one
    labels: dict[str, tuple[str, str]]  # alert id -> (key_type, key), for the incident's members

    def named(self, alert_id: str | None) -> str:
        found = self.labels.get(alert_id or "")
        return f"{found[0]} {found[1]}" if found else (alert_id or "")

    def keys(self) -> list[tuple[str, str]]:
        """The incident's keys, each once, in its members' order."""
        return list(dict.fromkeys(self.labels[a] for a in self.members))


def incidents_spec(path: Path | None) -> IncidentsSpec:
    """The rules file's incidents section; its defaults if the file cannot be read (the worker
    refuses such a file at start-up and says why: the dashboard still shows the alerts)."""
    try:
        return Rules.load(path).incidents
    except (RulesError, OSError) as exc:
        log.warning("alert rules unreadable; incidents shown with the default grouping", extra={"error": str(exc)[:300]})
        return IncidentsSpec()


def places(found: list[Incident]) -> dict[str, Place]:
    """Alert id -> its place, over the incidents found."""
    out = {}
    for incident in found:
        members = tuple(m.alert.id for m in incident.members)
        labels = {m.alert.id: (m.alert.key_type, m.alert.key) for m in incident.members}
        for m in incident.members:
            out[m.alert.id] = Place(incident.id, members, m.inhibited_by, labels)
    return out


def current_places(store: Store, spec: IncidentsSpec) -> dict[str, Place]:
    return places(make_incidents(store.recent_alerts(HORIZON_S), spec))
