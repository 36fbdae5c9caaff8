"""Alerts in the real worker: detection on closed windows, the alerts topic, the store, and signed
webhooks to a real receiver through an outage and a kill -9."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from riskpulse.alerts.outbox import Outbox
from riskpulse.alerts.signing import new_secret, verify
from riskpulse.records import TOPIC_ALERTS, TOPIC_NEWS, TOPIC_SCORED, TOPIC_TRENDS
from riskpulse.settings import Settings
from tests.helpers import REPO, WebhookReceiver, as_scorers_send, consume, produce, story_tag

pytestmark = pytest.mark.integration

BASE_TS = 1_780_000_020 - 1_780_000_020 % 60


def scored(i: int, ts: float, ticker: str, negative: bool) -> dict[str, Any]:
    """A record as the score agent hands it to the aggregate agent (the model is tested elsewhere)."""
    probs = {"negative": 0.9, "neutral": 0.07, "positive": 0.03} if negative else {"negative": 0.05, "neutral": 0.9, "positive": 0.05}
    stamp = datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")
    return {"schema_version": 1, "id": f"s{i}", "headline": f"{ticker} {'plunges on probe' if negative else 'update'} {story_tag(i)}",
            "url": f"https://news.example/{i}", "published_at": stamp, "tickers": [ticker], "topic": "Stock Movement",
            "topic_confidence": 0.9, "sentiment": "negative" if negative else "neutral", "sentiment_probs": probs,
            "sentiment_score": round(probs["positive"] - probs["negative"], 4), "model_version": "test", "scored_at": stamp}


def history(burst_window: int = 20, windows: int = 30) -> list[dict[str, Any]]:
    rng = random.Random(5)
    items = []
    for w in range(windows):
        for ticker in ("AAPL", "MSFT", "TSLA"):
            negatives = 14 if (ticker == "TSLA" and w == burst_window) else rng.choice([0, 1, 1, 2])
            for k in range(10 + (10 if negatives > 5 else 0)):
                items.append(scored(len(items), BASE_TS + 60 * w + 1 + k, ticker, k < negatives))
    items.sort(key=lambda r: r["published_at"])
    for offset, item in enumerate(items):  # the score agent's note of where each came from in `news`
        item["_src"] = ["news", 0, offset]
    return items


def flush(after_windows: int) -> dict[str, Any]:
    return {**scored(999_999, BASE_TS + 60 * after_windows + 7200, "ZZZ", False), "id": "flush",
            "_src": ["news", 0, 999_999]}


def rules_file(tmp_path: Path, url: str, extra_route: str = "", incidents: str = "") -> Path:
    """``incidents``: the rules file's incidents section, as flow YAML (none: the defaults)."""
    path = tmp_path / "rules.yaml"
    path.write_text("defaults: {warmup_windows: 8, halflife_windows: 10, resolve_after_windows: 2}\n"
                    + (f"incidents: {incidents}\n" if incidents else "") + "routes:\n"
                    f"  - {{name: desk, url: '{url}', secrets: ['env:RP_TEST_SECRET'], timeout_s: 2}}\n" + extra_route)
    return path


def internal_topic(pipeline: Any) -> str:
    prefix = pipeline.topic("")
    return f"{prefix}rp-{prefix[:-1]}-scored-by-story"


def produce_scored(kafka: Any, pipeline: Any, items: list[dict[str, Any]]) -> None:
    """Scored items straight onto the worker's counting stage, as its scorers would send them."""
    sends = as_scorers_send(items, Settings().kafka_partitions)
    route = {id(r): p for p, r in sends}
    produce(kafka.bootstrap, internal_topic(pipeline), [r for _, r in sends], partition=lambda r: route[id(r)])


def all_alerts_of_the_history(kafka: Any, pipeline: Any) -> list[dict[str, Any]]:
    """Every alert the history makes. Keys are judged in several partitions, each publishing as it
    goes; a partition that has published a window's trends has published every alert up to it."""
    last = datetime.fromtimestamp(BASE_TS + 60 * 29, timezone.utc).isoformat().replace("+00:00", "Z")
    keys = {"AAPL", "MSFT", "TSLA", "Stock Movement"}
    consume(kafka.bootstrap, pipeline.topic(TOPIC_TRENDS),
            lambda r: {t["key"] for t in r if t["window_start"] == last} >= keys, timeout_s=180)
    return consume(kafka.bootstrap, pipeline.topic(TOPIC_ALERTS),
                   lambda r: any(a["key"] == "TSLA" and a["status"] == "resolved" for a in r), timeout_s=60)


def queued(outbox: Outbox) -> set[str]:
    """The message ids in the outbox."""
    from sqlalchemy import select

    from riskpulse.store.schema import outbox as table

    with outbox.engine.connect() as conn:
        return {m for (m,) in conn.execute(select(table.c.message_id))}


def test_spike_alert_is_published_stored_and_delivered_through_outage_and_kill(
        pipeline: Any, kafka: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_secret()
    monkeypatch.setenv("RP_TEST_SECRET", secret)
    outage = {"on": True}
    rx = WebhookReceiver(answer=lambda req: 503 if outage["on"] else 200)
    try:
        worker = pipeline(ALERT_RULES=rules_file(tmp_path, rx.url), WEBHOOK_RETRY_BASE_S=0.5, WEBHOOK_RETRY_CAP_S=2)
        produce_scored(kafka, pipeline, history() + [flush(30)])
        alerts = all_alerts_of_the_history(kafka, pipeline)
        tsla = [a for a in alerts if a["key"] == "TSLA"]
        fired = tsla[0]
        assert fired["status"] == "firing" and fired["key_type"] == "ticker"
        assert fired["window_start"] == datetime.fromtimestamp(BASE_TS + 60 * 20, timezone.utc).isoformat().replace("+00:00", "Z")
        assert fired["observed"]["negative"] == 14 and fired["baseline"]["negative_mean"] < 2
        assert len(fired["top_headlines"]) == 5 and all("plunges" in h["headline"] for h in fired["top_headlines"])
        assert {a["id"] for a in tsla} == {fired["id"]}  # firing and resolved: one alert id
        assert not [a for a in alerts if a["key"] in ("AAPL", "MSFT")]  # their background never fires

        # the receiver is down; the worker dies with deliveries pending, and comes back
        deadline = time.monotonic() + 60
        while len(rx.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rx.requests and not rx.unique
        worker.kill()
        time.sleep(3)
        outage["on"] = False
        worker.start()
        from riskpulse.store.news import Store

        store = Store(worker.env["RISKPULSE_STORE_URL"])
        outbox = Outbox(store.engine)
        deadline = time.monotonic() + 120
        while (set(outbox.summary()) != {"delivered"} or set(rx.unique) != queued(outbox)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert set(rx.unique) == queued(outbox)  # each message once, as an idempotent receiver sees it
        assert outbox.summary() == {"delivered": len(rx.unique)}
        for req in rx.requests:
            verify(req["body"], req["headers"], secret)
        # the history is read in seconds: the TSLA incident fired and resolved before its first
        # notification was due (group_wait), so the desk is told once, that it is over
        bodies = [json.loads(body) for body in rx.unique.values()]
        (about_tsla,) = [b for b in bodies if fired["id"] in {a["id"] for a in b["data"]["alerts"]}]
        assert about_tsla["type"] == "incident.resolved" and about_tsla["data"]["severity"] == fired["severity"]
        assert store.counts()["alerts"] == len({a["id"] for a in alerts})
        assert 'riskpulse_webhook_attempts_total{outcome="delivered",route="desk"}' in worker.metrics()
    finally:
        rx.close()


def test_one_burst_on_a_ticker_and_its_topics_is_one_incident_told_once_firing_and_once_resolved(
        pipeline: Any, kafka: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's burst: fourteen negative headlines about TSLA, falling under two topics, fire the
    ticker's alert and the topics'. Each receiver is told once that an incident opened (the
    topic alerts are the ticker's echoes, muted) and once that it is over; one receiver reads
    Alertmanager's webhook body. Default timing but the interval between an incident's messages
    (the default five minutes would make the resolution wait that long)."""
    monkeypatch.setenv("RP_TEST_SECRET", new_secret())
    desk, am = WebhookReceiver(), WebhookReceiver()
    try:
        route = f"  - {{name: am, url: '{am.url}', format: alertmanager}}\n"
        pipeline(ALERT_RULES=rules_file(tmp_path, desk.url, route, incidents="{group_interval_s: 20}"))
        items = history()
        for item in items:  # every ticker's news under two topics, the burst's too
            item["topic"] = "Markets" if int(item["id"][1:]) % 2 else "Stock Movement"
        burst_ends = datetime.fromtimestamp(BASE_TS + 60 * 21 + 30, timezone.utc).isoformat().replace("+00:00", "Z")
        produce_scored(kafka, pipeline, [i for i in items if i["published_at"] < burst_ends])
        deadline = time.monotonic() + 150
        while (not desk.unique or not am.unique) and time.monotonic() < deadline:
            time.sleep(0.3)
        (opened,) = [json.loads(b) for b in desk.unique.values()]
        alerts = consume(kafka.bootstrap, pipeline.topic(TOPIC_ALERTS), lambda r: len(r) >= 1)
        fired = {a["id"]: (a["key_type"], a["key"]) for a in alerts if a["status"] == "firing"}
        topics = sorted(alert_id for alert_id, (key_type, _) in fired.items() if key_type == "topic")
        assert ("ticker", "TSLA") in fired.values() and topics, fired  # the burst moved a topic too
        assert opened["type"] == "incident.firing"
        assert [a["key"] for a in opened["data"]["alerts"]] == ["TSLA"]
        assert opened["data"]["inhibited"] == topics  # the topics: their evidence is TSLA's news
        (am_opened,) = [json.loads(b) for b in am.unique.values()]
        assert am_opened["version"] == "4" and am_opened["status"] == "firing"
        assert [a["labels"]["key"] for a in am_opened["alerts"]] == ["TSLA"]

        produce_scored(kafka, pipeline, [i for i in items if i["published_at"] >= burst_ends] + [flush(30)])
        deadline = time.monotonic() + 150
        while (len(desk.unique) < 2 or len(am.unique) < 2) and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(3)  # nothing more follows
        bodies = [json.loads(b) for b in desk.unique.values()]
        assert [b["type"] for b in bodies] == ["incident.firing", "incident.resolved"]
        assert bodies[1]["data"]["id"] == opened["data"]["id"]
        assert [json.loads(b)["status"] for b in am.unique.values()] == ["firing", "resolved"]
        assert len(desk.requests) == 2 and len(am.requests) == 2  # one event: two messages per receiver
    finally:
        desk.close()
        am.close()


def test_incidents_go_down_the_routing_tree_repeat_escalate_and_are_digested(
        pipeline: Any, kafka: Any, tmp_path: Path) -> None:
    """The worker's notifier with a routing tree: a critical ticker incident goes to the pager
    below the desk route (continue: false there), is repeated while it fires, escalates to the
    head of desk when nobody acknowledges it, and a digest route lists it once. Short intervals:
    the scenario's, not the defaults' (those are the unit tests' and the burst test's)."""
    pager, head, note = WebhookReceiver(), WebhookReceiver(), WebhookReceiver()
    try:
        rules = tmp_path / "rules.yaml"
        rules.write_text(
            "incidents: {group_wait_s: 0, group_interval_s: 2, repeat_interval_s: 4}\n"
            "routes:\n"
            "  - name: desk\n"
            f"    url: '{note.url}/unused'\n"
            "    key_types: [ticker]\n"
            "    routes:\n"
            f"      - {{name: pager, url: '{pager.url}', severities: [critical], continue: false,"
            " escalate_after_s: 6, escalate_to: head}\n"
            f"  - {{name: head, url: '{head.url}', key_types: [story]}}\n"
            f"  - {{name: note, url: '{note.url}', digest_every_s: 5}}\n")
        pipeline(ALERT_RULES=rules)
        stamp = datetime.fromtimestamp(BASE_TS, timezone.utc).isoformat().replace("+00:00", "Z")
        fired = {"schema_version": 1, "id": "al-NVDA", "status": "firing", "severity": "critical",
                 "key_type": "ticker", "key": "NVDA", "window_start": stamp, "window_end": stamp,
                 "observed": {"negative": 12.0}, "baseline": {"negative_mean": 1.0}, "rule": "default",
                 "summary": "CRITICAL: negative news on ticker NVDA", "top_headlines": [], "fired_at": stamp}
        produce(kafka.bootstrap, pipeline.topic(TOPIC_ALERTS), [fired], key=lambda a: a["id"].encode())
        deadline = time.monotonic() + 90
        while (len(pager.unique) < 2 or not head.unique or not note.unique) and time.monotonic() < deadline:
            time.sleep(0.3)
        bodies = [json.loads(b) for b in pager.unique.values()]
        assert [b["data"]["reminder"] for b in bodies[:2]] == [False, True]  # told, then reminded
        (escalated,) = [json.loads(b) for b in head.unique.values()]
        assert escalated["type"] == "incident.escalated" and escalated["data"]["escalated_from"] == "pager"
        digest = json.loads(next(iter(note.unique.values())))
        assert digest["type"] == "incident.digest"
        assert [(e["change"], e["alerts"][0]["key"]) for e in digest["data"]["incidents"]] == [("opened", "NVDA")]
        assert not [r for r in note.requests if r["path"].endswith("/unused")]  # the desk itself: handed down
    finally:
        for rx in (pager, head, note):
            rx.close()


def test_a_dead_endpoint_never_blocks_the_stream(pipeline: Any, kafka: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RP_TEST_SECRET", new_secret())
    hang = WebhookReceiver(delay_s=5)  # accepts, then never answers in time
    try:
        rules = rules_file(tmp_path, hang.url, "  - {name: nowhere, url: 'http://127.0.0.1:9/hook', timeout_s: 2}\n",
                           incidents="{group_wait_s: 0}")  # deliveries at once: this test is about them
        worker = pipeline(ALERT_RULES=rules, WEBHOOK_RETRY_BASE_S=0.5, WEBHOOK_RETRY_CAP_S=2)
        fake = [{**scored(0, BASE_TS, "AAPL", True), "id": f"al{i}"} for i in range(30)]
        alerts = [{"schema_version": 1, "id": f"al{i}", "status": "firing", "severity": "critical", "key_type": "ticker",
                   "key": "AAPL", "window_start": f["published_at"], "window_end": f["published_at"], "observed": {},
                   "baseline": {}, "rule": "default", "summary": "test", "top_headlines": [], "fired_at": f["published_at"]}
                  for i, f in enumerate(fake)]
        produce(kafka.bootstrap, pipeline.topic(TOPIC_ALERTS), alerts, key=lambda a: a["id"].encode())
        deadline = time.monotonic() + 60
        while not hang.requests and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hang.requests  # deliveries are being attempted (and hanging)
        news = [{"id": f"n{i}", "headline": f"Markets update {i}", "published_at": "2026-11-23T10:00:00Z"} for i in range(200)]
        started = time.monotonic()
        produce(kafka.bootstrap, pipeline.topic(TOPIC_NEWS), news)
        consume(kafka.bootstrap, pipeline.topic(TOPIC_SCORED), lambda r: {x["id"] for x in r} >= {n["id"] for n in news},
                timeout_s=120)
        # scoring went on while every delivery was timing out or refused
        assert time.monotonic() - started < 60
        from riskpulse.store.engine import create_store_engine

        pending = Outbox(create_store_engine(worker.env["RISKPULSE_STORE_URL"])).summary().get("pending", 0)
        assert pending > 0
    finally:
        hang.close()


def test_a_malformed_rules_file_stops_the_worker_at_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("defaults:\n  warning_z: 3\nroutes:\n  - name: desk\n    url: not-a-url\n")
    env = {**os.environ, "RISKPULSE_ALERT_RULES": str(bad), "RISKPULSE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "riskpulse.cli", "worker"], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    assert f"{bad} line 5: routes.0.url" in out.stderr, out.stderr


def test_a_silenced_key_is_stored_but_pages_nobody_until_the_silence_ends(pipeline: Any, kafka: Any, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from riskpulse.alerts.silences import Silences
    from riskpulse.store.news import Store

    monkeypatch.setenv("RP_TEST_SECRET", new_secret())
    rx = WebhookReceiver()
    try:
        # one notification per alert state, as before incidents: a silence is judged at each delivery
        worker = pipeline(ALERT_RULES=rules_file(tmp_path, rx.url, incidents="{enabled: false}"),
                          WEBHOOK_RETRY_BASE_S=0.5, WEBHOOK_RETRY_CAP_S=2)
        silences = Silences(worker.env["RISKPULSE_STORE_URL"])
        muted = silences.add("dana", "recall story, desk already on it", time.time() + 3600, key_type="ticker", key="TSLA")
        stamp = datetime.fromtimestamp(BASE_TS, timezone.utc).isoformat().replace("+00:00", "Z")

        def alert(key: str, status: str) -> dict[str, Any]:
            return {"schema_version": 1, "id": f"al-{key}", "status": status, "severity": "critical",
                    "key_type": "ticker", "key": key, "window_start": stamp, "window_end": stamp,
                    "observed": {"negative": 12.0}, "baseline": {"negative_mean": 1.0}, "rule": "default",
                    "summary": f"CRITICAL: negative news on ticker {key}", "top_headlines": [], "fired_at": stamp}

        produce(kafka.bootstrap, pipeline.topic(TOPIC_ALERTS), [alert("TSLA", "firing"), alert("AAPL", "firing")],
                key=lambda a: a["id"].encode())
        outbox = Outbox(Store(worker.env["RISKPULSE_STORE_URL"]).engine)
        deadline = time.monotonic() + 60
        while outbox.summary() != {"delivered": 1, "silenced": 1} and time.monotonic() < deadline:
            time.sleep(0.3)
        assert outbox.summary() == {"delivered": 1, "silenced": 1}
        assert set(rx.unique) == {"msg_al-AAPL_firing_critical"}  # the silenced key paged nobody
        assert Store(worker.env["RISKPULSE_STORE_URL"]).counts()["alerts"] == 2  # both stored, both shown

        assert silences.expire(muted.id)
        produce(kafka.bootstrap, pipeline.topic(TOPIC_ALERTS), [alert("TSLA", "resolved")], key=lambda a: a["id"].encode())
        deadline = time.monotonic() + 60
        while "msg_al-TSLA_resolved_critical" not in rx.unique and time.monotonic() < deadline:
            time.sleep(0.3)
        assert set(rx.unique) == {"msg_al-AAPL_firing_critical", "msg_al-TSLA_resolved_critical"}
        assert 'riskpulse_webhook_attempts_total{outcome="silenced",route="desk"}' in worker.metrics()
    finally:
        rx.close()


@pytest.mark.parametrize("judge, fires", [("stories", False), ("copies", True)])
def test_copies_burst(pipeline: Any, kafka: Any, tmp_path: Path,
                      judge: str, fires: bool) -> None:
    """A burst of copies is judged as the stories it is, and spreads as one (a short name: the
    pipeline fixture names its topics after the first 40 characters of the test's name, and each
    case needs its own). The history's TSLA burst, but fourteen outlets carrying one story: judged as stories (the
    default) it is one negative story and no spike; where the rule counts copies it fires, and
    its evidence is that one story with its fourteen copies; either way it fires the spread
    rule, with the story's pick-up as the evidence."""
    story = "TSLA plunges as regulators open probe into autopilot crashes"
    tags = ["", "UPDATE 1-", "UPDATE 2-", "BRIEF-", "Reuters: ", "EXCLUSIVE-", "BREAKING: ", "DJ ", "CORRECTED-",
            "REFILE-", "FLASH: ", "URGENT: ", "ANALYSIS-", "WRAPUP 1-"]
    items = history()
    minute = datetime.fromtimestamp(BASE_TS + 60 * 20, timezone.utc).strftime("%Y-%m-%dT%H:%M")
    burst = [i for i in items if i["tickers"] == ["TSLA"] and i["sentiment"] == "negative"
             and i["published_at"].startswith(minute)]
    assert len(burst) == 14
    for k, item in enumerate(burst):
        item["headline"], item["source"] = tags[k] + story, f"outlet-{k}"
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults: {warmup_windows: 8, halflife_windows: 10, resolve_after_windows: 2, judge: %s}\n"
                     "spread: {min_sources: 5, within_minutes: 30}\n" % judge)
    pipeline(ALERT_RULES=rules)
    produce_scored(kafka, pipeline, items + [flush(30)])
    last = datetime.fromtimestamp(BASE_TS + 60 * 29, timezone.utc).isoformat().replace("+00:00", "Z")
    consume(kafka.bootstrap, pipeline.topic(TOPIC_TRENDS),  # every window judged: every alert published
            lambda r: {t["key"] for t in r if t["window_start"] == last} >= {"AAPL", "MSFT", "TSLA"}, timeout_s=180)
    alerts = consume(kafka.bootstrap, pipeline.topic(TOPIC_ALERTS),  # fired, then resolved once its pick-up went quiet
                     lambda r: {a["status"] for a in r if a["key_type"] == "story"} == {"firing", "resolved"})
    spread = [a for a in alerts if a["key_type"] == "story" and a["status"] == "firing"]
    assert len(spread) == 1 and spread[0]["rule"] == "spread" and spread[0]["observed"]["sources"] >= 5
    assert len({a["id"] for a in alerts if a["key_type"] == "story"}) == 1  # one alert: fired, resolved
    # the pick-up, outlet by outlet, as far as the counting batch that fired it had read (the
    # fourteen copies may come in more than one batch); all of it counted once it resolves
    fired_with = {h["source"] for h in spread[0]["top_headlines"]}
    assert len(fired_with) >= 5 and fired_with <= {f"outlet-{k}" for k in range(14)}
    resolved = [a for a in alerts if a["key_type"] == "story" and a["status"] == "resolved"]
    assert (resolved[0]["observed"]["sources"], resolved[0]["observed"]["copies"]) == (14, 14)
    spike = [a for a in alerts if a["key"] == "TSLA" and a["status"] == "firing"]
    assert bool(spike) is fires, [(a["key"], a["status"], a["summary"]) for a in alerts]
    if fires:
        evidence = spike[0]["top_headlines"]
        assert len(evidence) == 1 and (evidence[0]["copies"], evidence[0]["sources"]) == (14, 14)  # one story
