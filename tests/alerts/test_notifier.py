"""Incident notifications over a real store (SQLite), with the clock in the test's hands: what each
route is owed and when, inhibition, silences, and two notifiers racing for the same incident."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from riskpulse.alerts.notifier import HORIZON_S, Notifier, make_incidents
from riskpulse.alerts.outbox import Outbox
from riskpulse.alerts.rules import Rules, RulesError
from riskpulse.alerts.silences import Silences
from riskpulse.records import Alert
from riskpulse.store.news import Store
from riskpulse.store.schema import outbox
from tests.alerts.test_incidents import alert, burst

RULES = """
routes:
  - {name: desk, url: "http://127.0.0.1:9/desk"}
  - {name: am, url: "http://127.0.0.1:9/am", format: alertmanager}
  - {name: chat, url: "http://127.0.0.1:9/chat", format: slack, severities: [critical], group_wait_s: 0}
"""
NOW = 1_800_000_000.0


@pytest.fixture()
def parts(tmp_path: Path) -> tuple[Store, Outbox]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    return store, Outbox(store.engine, migrate=False)


def notifier(parts: tuple[Store, Outbox], text: str = RULES) -> Notifier:
    return Notifier(parts[0], parts[1], Rules.parse(text), dashboard_url="https://rp.example")


def stored(store: Store, alerts: list[Alert]) -> None:
    store.upsert_alerts([a.to_json() for a in alerts])


def messages(out: Outbox, route: str) -> list[dict[str, Any]]:
    with out.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.message_id, outbox.c.body).where(outbox.c.route == route)
                            .order_by(outbox.c.created_at, outbox.c.message_id)).all()
    return [{"id": m, **json.loads(b)} for m, b in rows]


def resolved(alerts: list[Alert], minute: int = 5) -> list[Alert]:
    return [alert(a.key_type, a.key, [], minute=int((a.window_start - alerts[0].window_start).total_seconds() // 60),
                  status="resolved") for a in alerts]


def test_one_burst_is_one_notification_when_it_opens_and_one_when_it_resolves(parts: tuple[Store, Outbox]) -> None:
    store, out = parts
    n = notifier(parts)
    stored(store, burst()[:1])  # the ticker's alert first; the topics' a few seconds later
    assert n.tick(NOW) == 1  # chat: no group_wait, and only the critical ticker alert matches it
    stored(store, burst()[1:])
    assert n.tick(NOW + 5) == 0  # desk and am wait group_wait (30 s): the topics join before anyone is told
    assert n.tick(NOW + 31) == 2
    (desk,) = messages(out, "desk")
    assert desk["type"] == "incident.firing" and desk["id"] == f"inc_{desk['data']['id']}_1"
    assert [a["key"] for a in desk["data"]["alerts"]] == ["TSLA"]  # the topic alerts echo it: inhibited
    assert sorted(desk["data"]["inhibited"]) == ["topic-Company | Product News-1", "topic-Financials-1"]
    assert n.tick(NOW + 60) == 0 and n.tick(NOW + 400) == 0  # nothing changed: nothing said
    stored(store, resolved(burst()))
    assert n.tick(NOW + 401) == 3  # group_interval has passed since the first: resolved at once
    assert [m["type"] for m in messages(out, "desk")] == ["incident.firing", "incident.resolved"]
    assert [m["status"] for m in messages(out, "am")] == ["firing", "resolved"]
    assert len(messages(out, "chat")) == 2
    assert n.tick(NOW + 100_000) == 0  # resolved: no reminders


def test_the_alertmanager_body_follows_its_webhook_schema(parts: tuple[Store, Outbox]) -> None:
    store, out = parts
    stored(store, burst())
    n = notifier(parts)
    n.tick(NOW)
    n.tick(NOW + 30)
    (body,) = messages(out, "am")
    assert set(body) - {"id"} == {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
                                  "commonLabels", "commonAnnotations", "externalURL", "alerts"}
    assert body["version"] == "4" and body["receiver"] == "am" and body["truncatedAlerts"] == 0
    (am_alert,) = body["alerts"]
    assert set(am_alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert am_alert["labels"] == {"alertname": "default", "key_type": "ticker", "key": "TSLA", "severity": "critical"}
    assert am_alert["endsAt"] == "0001-01-01T00:00:00Z" and am_alert["startsAt"].endswith("Z")
    assert body["commonLabels"]["key"] == "TSLA" and body["groupLabels"] == {"key_type": "ticker", "key": "TSLA"}
    assert am_alert["generatorURL"].startswith("https://rp.example/alerts/")


def test_a_change_waits_for_the_group_interval_and_a_quiet_firing_incident_is_repeated(
        parts: tuple[Store, Outbox]) -> None:
    store, out = parts
    n = notifier(parts)
    stored(store, [alert("ticker", "NVDA", ["a", "b"])])
    n.tick(NOW)
    assert n.tick(NOW + 30) == 2  # desk, am
    stored(store, [alert("ticker", "NVDA", ["c"], minute=8)])  # the key again soon: the same incident grows
    assert n.tick(NOW + 60) == 0  # within group_interval (300 s) of the last notification
    assert n.tick(NOW + 330) == 2
    assert [len(m["data"]["alerts"]) for m in messages(out, "desk")] == [1, 2]
    assert n.tick(NOW + 330 + 14_399) == 0
    assert n.tick(NOW + 330 + 14_400) == 2  # repeat_interval (4 h): a reminder
    last = messages(out, "desk")[-1]
    assert last["data"]["reminder"] is True and last["data"]["notification"] == 3


def test_an_incident_resolved_before_its_first_notification_is_told_once_as_resolved(
        parts: tuple[Store, Outbox]) -> None:
    """A backlog read after an outage fires and resolves an alert within seconds: the desk hears
    of it once, as over, not a page and a resolution."""
    store, out = parts
    n = notifier(parts)
    stored(store, [alert("ticker", "AMD", ["x"])])
    n.tick(NOW)
    stored(store, [alert("ticker", "AMD", [], status="resolved")])
    assert n.tick(NOW + 60) == 2  # desk, am (chat takes critical only)
    assert [(m["type"], [a["key"] for a in m["data"]["alerts"]]) for m in messages(out, "desk")] == [
        ("incident.resolved", ["AMD"])]
    assert n.tick(NOW + 100_000) == 0


def test_a_silenced_alert_is_left_out_and_an_incident_of_only_silenced_ones_says_nothing(
        parts: tuple[Store, Outbox]) -> None:
    store, out = parts
    Silences(out.engine).add("ops", "known", NOW + 3600, key_type="ticker", key="TSLA")
    n = notifier(parts)
    stored(store, [alert("ticker", "TSLA", ["a"]), alert("ticker", "XOM", ["z"], minute=40)])
    n.tick(NOW)
    n.tick(NOW + 30)
    assert [[a["key"] for a in m["data"]["alerts"]] for m in messages(out, "desk")] == [["XOM"]]


def test_two_notifiers_racing_enqueue_each_notification_once(parts: tuple[Store, Outbox]) -> None:
    """Two workers: the one that read an incident's notice before the other sent its notification
    finds the notice moved on when it tries to claim it, and sends nothing."""
    store, out = parts
    stored(store, burst())
    first, second = notifier(parts), notifier(parts)
    assert first.tick(NOW) + second.tick(NOW) == 1  # chat's, once
    (incident,) = make_incidents(store.recent_alerts(HORIZON_S), second.spec)
    stale = second._notices([incident.id])
    assert first.tick(NOW + 30) == 2
    desk = second.rules.routes[0]
    assert second._route(incident, desk, list(incident.notified), stale[(incident.id, "desk")], NOW + 30) == 0
    assert second.tick(NOW + 31) == 0
    assert len(messages(out, "desk")) == 1


def test_grouping_disabled_notifies_each_alert_as_before(parts: tuple[Store, Outbox]) -> None:
    from riskpulse.alerts.delivery import enqueue_alert

    store, out = parts
    rules = Rules.parse(RULES + "incidents: {enabled: false}\n")
    assert rules.incidents.enabled is False
    for a in burst():
        enqueue_alert(out, rules, a)
    assert len(messages(out, "desk")) == 3 and len(messages(out, "am")) == 3
    assert {m["groupKey"] for m in messages(out, "am")} == {f"am:{a.id}" for a in burst()}


def test_inhibition_and_grouping_come_from_the_rules_file(parts: tuple[Store, Outbox]) -> None:
    store, out = parts
    n = notifier(parts, RULES + "incidents: {inhibit: [], min_overlap: 1.0}\n")
    stored(store, burst())
    n.tick(NOW)
    n.tick(NOW + 30)
    keys = sorted(sorted(a["key"] for a in m["data"]["alerts"]) for m in messages(out, "desk"))
    # no inhibition; Financials' evidence lies wholly in TSLA's (one incident), Product News' does not
    assert keys == [["Company | Product News"], ["Financials", "TSLA"]]


def test_an_incident_goes_down_the_routing_tree(parts: tuple[Store, Outbox]) -> None:
    """The burst's critical ticker alert goes to the pager under the desk route (continue: false
    there), and to the audit route beside it; the desk route itself hears nothing."""
    from tests.alerts.test_rules_and_signing import TREE

    store, out = parts
    stored(store, burst())
    n = notifier(parts, TREE)
    n.tick(NOW)
    assert n.tick(NOW + 30) == 2
    assert (len(messages(out, "desk-pager")), len(messages(out, "audit")), len(messages(out, "desk"))) == (1, 1, 0)
    assert "text" in messages(out, "desk-pager")[0] and messages(out, "audit")[0]["version"] == "4"


ESCALATING = """
routes:
  - {name: desk, url: "http://127.0.0.1:9/desk", escalate_after_s: 600, escalate_to: head-of-desk}
  - {name: head-of-desk, url: "http://127.0.0.1:9/head", key_types: [story]}
"""


def test_an_incident_nobody_acknowledges_escalates_once_and_an_acknowledged_one_never(
        parts: tuple[Store, Outbox]) -> None:
    from datetime import datetime, timezone

    store, out = parts
    stored(store, burst())
    n = notifier(parts, ESCALATING)
    n.tick(NOW)
    assert n.tick(NOW + 30) == 1  # the desk
    assert n.tick(NOW + 599) == 0
    assert n.tick(NOW + 600) == 1 and n.tick(NOW + 700) == 0  # escalated, once
    (escalated,) = messages(out, "head-of-desk")
    assert escalated["type"] == "incident.escalated" and escalated["data"]["escalated_from"] == "desk"
    assert [a["key"] for a in escalated["data"]["alerts"]] == ["TSLA"]
    # another burst, acknowledged in time: nobody above the desk is woken
    later = [alert("ticker", "NVDA", ["n1", "n2", "n3"], minute=120, severity="critical")]
    stored(store, later)
    n.tick(NOW + 1000)
    assert n.tick(NOW + 1030) == 1
    store.acknowledge(later[0].id, "dana", datetime.now(timezone.utc))
    assert n.tick(NOW + 2000) == 0
    assert len(messages(out, "head-of-desk")) == 1


def test_escalation_needs_both_fields_and_a_route_to_go_to() -> None:
    with pytest.raises(RulesError, match="escalate_to names no route"):
        Rules.parse(ESCALATING.replace("escalate_to: head-of-desk", "escalate_to: nobody"))
    with pytest.raises(RulesError, match="go together"):
        Rules.parse(ESCALATING.replace(", escalate_to: head-of-desk", ""))


DIGEST = """
routes:
  - {name: desk, url: "http://127.0.0.1:9/desk"}
  - {name: morning-note, url: "http://127.0.0.1:9/note", digest_every_s: 3600}
"""


def test_a_digest_route_gets_one_message_per_period_listing_what_opened_changed_and_resolved(
        parts: tuple[Store, Outbox]) -> None:
    store, out = parts
    n = notifier(parts, DIGEST)
    start = 3600 * (int(NOW) // 3600)
    n.tick(start + 10)  # the first period is partial: nothing is listed for it
    stored(store, burst())
    stored(store, [alert("ticker", "AMD", ["x"], minute=200)])
    n.tick(start + 20)
    n.tick(start + 60)  # the desk is paged as usual meanwhile
    assert len(messages(out, "desk")) == 2 and messages(out, "morning-note") == []
    assert n.tick(start + 3600) == 1 and n.tick(start + 3700) == 0
    (first,) = messages(out, "morning-note")
    assert first["type"] == "incident.digest"
    assert sorted((e["change"], e["alerts"][0]["key"]) for e in first["data"]["incidents"]) == [
        ("opened", "AMD"), ("opened", "TSLA")]
    stored(store, resolved(burst()))
    assert n.tick(start + 7200) == 2  # the digest, and the desk's resolved message
    second = messages(out, "morning-note")[1]
    assert [(e["change"], e["status"]) for e in second["data"]["incidents"]] == [("resolved", "resolved")]
    assert n.tick(start + 10800) == 0  # a quiet period: no message


def test_incidents_whose_alerts_were_told_one_by_one_are_not_told_again(parts: tuple[Store, Outbox]) -> None:
    """The upgrade to incidents (or turning them on): the past day's alerts were each sent as a
    message of their own; the route hears of them again only when they change."""
    from riskpulse.alerts.delivery import enqueue_alert

    store, out = parts
    before = Rules.parse(RULES + "incidents: {enabled: false}\n")
    stored(store, burst())
    for a in burst():
        enqueue_alert(out, before, a)
    n = notifier(parts)
    assert n.tick(NOW) == 0 and n.tick(NOW + 400) == 0  # already told, as it stands
    stored(store, resolved(burst()))
    n.tick(NOW + 800)
    assert [m["type"] for m in messages(out, "desk") if "type" in m and m["type"].startswith("incident")] == [
        "incident.resolved"]
