"""The outbox and the deliverer against a real HTTP receiver: outages, refusals, 410, restarts."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from riskpulse.alerts.delivery import Deliverer, RetryPolicy, enqueue_alert, message_id, slack_body
from riskpulse.alerts.outbox import Outbox
from riskpulse.alerts.rules import Rules
from riskpulse.alerts.signing import new_secret, verify
from riskpulse.cli import main
from riskpulse.settings import get_settings
from riskpulse.records import Alert, EvidenceHeadline
from tests.helpers import WebhookReceiver

SECRET = new_secret()
FAST = RetryPolicy(base_s=0.2, cap_s=1.0, max_attempts=50)


def alert(n: int, status: str = "firing", severity: str = "critical", key: str = "AAPL") -> Alert:
    start = datetime.fromtimestamp(1_780_000_000 + 60 * n, timezone.utc)
    return Alert(id=f"a{n:04d}", status=status, severity=severity, key_type="ticker", key=key,  # type: ignore[arg-type]
                 window_start=start, window_end=start, observed={"negative": 12.0}, baseline={"negative_mean": 2.0},
                 rule="default", summary=f"CRITICAL: negative news on ticker {key}",
                 top_headlines=[EvidenceHeadline(id="n1", headline="Apple plunges", sentiment_score=-0.9,
                                                 url="https://x.example/1")],
                 fired_at=start)


def rules_for(*urls: str, fmt: str = "standard") -> Rules:
    routes = "".join(f"  - {{name: r{i}, url: '{u}', secrets: ['{SECRET}'], format: {fmt}, timeout_s: 1}}\n"
                     for i, u in enumerate(urls))
    return Rules.parse("routes:\n" + routes)


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """RISKPULSE_* variables set through this reach `riskpulse` commands run in-process."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def outbox(store_url: str) -> Outbox:
    """On SQLite and on a real PostgreSQL: leases are conditional UPDATEs, which each must honour."""
    return Outbox(store_url)


def drain(deliverer: Deliverer, until: Any, timeout_s: float = 30.0) -> None:
    async def run() -> None:
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:
            await deliverer.run_once()
            await asyncio.sleep(0.05)
        await deliverer.close()
    asyncio.run(run())


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[WebhookReceiver] = []

    def make(**kw: Any) -> WebhookReceiver:
        made.append(WebhookReceiver(**kw))
        return made[-1]
    yield make
    for r in made:
        r.close()


def test_outage_then_recovery_delivers_each_message_once_and_signed(outbox: Outbox, receiver_factory: Any) -> None:
    outage_until = time.time() + 2.0
    rx = receiver_factory(answer=lambda req: 503 if req["at"] < outage_until else 200)
    rules = rules_for(rx.url)
    alerts = [alert(i) for i in range(20)]
    for a in alerts:
        enqueue_alert(outbox, rules, a)
    for a in alerts[:5]:  # a redelivered alert record enqueues nothing new
        assert enqueue_alert(outbox, rules, a) == 0
    drain(Deliverer(outbox, rules, FAST), lambda: len(rx.unique) == 20)
    assert set(rx.unique) == {message_id(a) for a in alerts}
    assert any(r["at"] < outage_until for r in rx.requests)  # the outage was really hit
    for req in rx.requests:
        verify(req["body"], req["headers"], SECRET)
    ok = [r for r in rx.requests if r["at"] >= outage_until]
    assert len({r["headers"]["webhook-id"] for r in ok}) == len(ok)  # delivered ones were not re-sent
    body = json.loads(rx.unique[message_id(alerts[0])])
    assert body["type"] == "alert.firing" and body["data"]["id"] == "a0000"
    assert outbox.summary() == {"delivered": 20}


def test_a_restart_resumes_pending_deliveries(tmp_path: Path, receiver_factory: Any) -> None:
    down = {"on": True}
    rx = receiver_factory(answer=lambda req: 503 if down["on"] else 200)
    rules = rules_for(rx.url)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = Outbox(url)
    for i in range(5):
        enqueue_alert(first, rules, alert(i))
    drain(Deliverer(first, rules, FAST), lambda: len(rx.requests) >= 5, timeout_s=10)
    assert first.summary() == {"pending": 5}
    down["on"] = False
    second = Outbox(url)  # a new process: only the database carries over
    drain(Deliverer(second, rules, FAST), lambda: len(rx.unique) == 5)
    assert second.summary() == {"delivered": 5}


def test_client_errors_are_not_retried_and_410_disables_the_route(outbox: Outbox, receiver_factory: Any) -> None:
    bad = receiver_factory(answer=lambda req: 400)
    gone = receiver_factory(answer=lambda req: 410)
    rules = rules_for(bad.url, gone.url)
    enqueue_alert(outbox, rules, alert(1))
    enqueue_alert(outbox, rules, alert(2))
    deliverer = Deliverer(outbox, rules, FAST)
    drain(deliverer, lambda: outbox.summary().get("pending", 0) == 0, timeout_s=10)
    assert len(bad.requests) == 2  # one attempt per message, never retried
    assert len(gone.requests) == 1  # the 410 disabled r1; its other message is skipped
    assert outbox.disabled("r1") and not outbox.disabled("r0")
    assert outbox.summary() == {"failed": 3, "skipped": 1}
    enqueue_alert(outbox, rules, alert(3))
    assert outbox.summary()["skipped"] == 2  # new alerts for a disabled route are not sent


def test_a_reenabled_route_delivers_without_a_worker_restart(tmp_path: Path, receiver_factory: Any,
                                                            settings_env: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`riskpulse webhooks enable` on a route a receiver disabled with 410, while a worker keeps running."""
    answers = {"status": 410}
    rx = receiver_factory(answer=lambda req: answers["status"])
    rules = rules_for(rx.url)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    outbox = Outbox(url)
    settings_env.setenv("RISKPULSE_STORE_URL", url)

    async def pass_until(deliverer: Deliverer, done: Any) -> None:
        deadline = time.monotonic() + 20
        while not done() and time.monotonic() < deadline:
            await deliverer.run_once()
            await asyncio.sleep(0.05)

    async def run() -> None:
        deliverer = Deliverer(outbox, rules, FAST)  # one worker for the whole story
        enqueue_alert(outbox, rules, alert(1))
        enqueue_alert(outbox, rules, alert(2))
        await pass_until(deliverer, lambda: outbox.disabled("r0"))
        enqueue_alert(outbox, rules, alert(3))  # while disabled: skipped
        assert outbox.summary() == {"failed": 1, "skipped": 2}
        assert main(["webhooks"]) == 0
        listed = capsys.readouterr().out
        assert listed.startswith("r0") and "DISABLED since" in listed and "1 failed, 2 skipped" in listed
        answers["status"] = 200
        assert main(["webhooks", "enable", "r0"]) == 0
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"route": "r0", "enabled": True,
                                                                                 "requeued": 0}
        enqueue_alert(outbox, rules, alert(4))  # after re-enabling: sent by the same running worker
        await pass_until(deliverer, lambda: len(rx.unique) == 1)
        assert set(rx.unique) == {message_id(alert(4))}
        assert main(["webhooks", "enable", "r0", "--requeue-skipped"]) == 0  # the two it missed, after all
        assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["requeued"] == 2
        await pass_until(deliverer, lambda: len(rx.unique) == 3)
        await deliverer.close()

    asyncio.run(run())
    assert set(rx.unique) == {message_id(alert(n)) for n in (2, 3, 4)}
    assert outbox.summary() == {"failed": 1, "delivered": 3}
    with pytest.raises(SystemExit, match="never disabled"):
        main(["webhooks", "enable", "no-such-route"])


def test_webhooks_list_shows_disabled_routes_and_counts(outbox: Outbox, settings_env: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    settings_env.setenv("RISKPULSE_STORE_URL", str(outbox.engine.url))
    outbox.enqueue("m1", "ops", "http://127.0.0.1:9/ops", {"x": 1})
    outbox.enqueue("m1", "desk", "http://127.0.0.1:9/desk", {"x": 1})
    outbox.disable("desk", "http://127.0.0.1:9/desk", "receiver answered 410 Gone", now=1_780_000_000)
    assert main(["webhooks", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["desk                 DISABLED since 2026-05-28 20:26 UTC (receiver answered 410 Gone); 1 skipped",
                     "ops                  enabled; 1 pending"]
    assert main(["webhooks", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["route"], r["counts"], r["reason"]) for r in rows] == [
        ("desk", {"skipped": 1}, "receiver answered 410 Gone"), ("ops", {"pending": 1}, None)]


def test_rate_limit_and_timeouts_are_retried(outbox: Outbox, receiver_factory: Any) -> None:
    calls = {"n": 0}

    def answer(req: dict[str, Any]) -> int:
        calls["n"] += 1
        return 429 if calls["n"] == 1 else 200
    limited = receiver_factory(answer=answer)
    slow = receiver_factory(delay_s=1.5)  # longer than the route's 1 s timeout
    rules = rules_for(limited.url, slow.url)
    enqueue_alert(outbox, rules, alert(1))
    deliverer = Deliverer(outbox, rules, FAST)
    drain(deliverer, lambda: len(limited.unique) == 1 and len(slow.requests) >= 2, timeout_s=20)
    times = [r["at"] for r in limited.requests]
    assert len(times) == 2 and times[1] - times[0] >= 0.9  # Retry-After: 1 honoured over a 0.2 s backoff
    assert len(slow.requests) >= 2  # a timed-out attempt is retried


def test_slack_format_carries_summary_and_evidence_links() -> None:
    body = slack_body(alert(1))
    assert body["text"].startswith(":rotating_light: CRITICAL")
    assert "<https://x.example/1|Apple plunges>" in body["text"]


@pytest.mark.parametrize("header", ["\u00b2", "9" * 5000, "Fri, 31 Dec 9999 23:59:59 GMT", "soon", "-5"])
def test_a_malformed_retry_after_is_ignored_not_fatal(outbox: Outbox, receiver_factory: Any, header: str) -> None:
    calls = {"n": 0}

    def answer(req: dict[str, Any]) -> int:
        calls["n"] += 1
        return 503 if calls["n"] == 1 else 200
    receiver = receiver_factory(answer=answer, retry_after=header)
    rules = rules_for(receiver.url)
    enqueue_alert(outbox, rules, alert(1))
    drain(Deliverer(outbox, rules, RetryPolicy(base_s=0.2, cap_s=1.0, max_attempts=5)), lambda: len(receiver.unique) == 1)
    assert len(receiver.unique) == 1 and len(receiver.requests) == 2


def test_a_row_whose_delivery_raises_is_failed_and_the_route_goes_on(outbox: Outbox) -> None:
    import httpx

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["data"]["id"] == "a0001":
            raise ValueError("a transport bug on this one message")
        seen.append(body["data"]["id"])
        return httpx.Response(200)
    rules = rules_for("https://hooks.example/x")
    for n in (1, 2, 3):
        enqueue_alert(outbox, rules, alert(n))
    deliverer = Deliverer(outbox, rules, FAST, client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    drain(deliverer, lambda: len(seen) == 2)
    assert seen == ["a0002", "a0003"]
    assert outbox.summary().get("failed") == 1


def test_slack_text_escapes_control_characters() -> None:
    a = alert(1).model_copy(update={"summary": "<!channel> & <https://evil.example|click>", "top_headlines": [
        EvidenceHeadline(id="n1", headline="<@U123> wins", sentiment_score=-0.9, url="https://x.example/a|b>c")]})
    text = slack_body(a)["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in text
    assert "<https://x.example/a%7Cb&gt;c|&lt;@U123&gt; wins>" in text


def test_outbox_retention_drops_finished_messages_and_old_attempts_but_keeps_pending(outbox: Outbox) -> None:
    rules = rules_for("https://hooks.example/x")
    enqueue_alert(outbox, rules, alert(1))
    enqueue_alert(outbox, rules, alert(2))
    rows = outbox.claim_due(limit=1)
    outbox.record(rows[0], "delivered", 200, None, 5.0, None)
    assert outbox.purge(before=time.time() + 1) == 1
    assert outbox.summary() == {"pending": 1}
    assert outbox.purge(before=time.time() + 1) == 0  # a pending message is still owed


# --- silences -------------------------------------------------------------------------------------

def test_a_silence_holds_back_the_webhooks_it_matches_and_nothing_else(outbox: Outbox, receiver_factory: Any) -> None:
    from riskpulse.alerts.silences import Silences

    rx = receiver_factory()
    rules = rules_for(rx.url)
    silences = Silences(outbox.engine)
    now = time.time()
    muted = silences.add("dana", "known story: the recall, already on the desk", now + 3600, key_type="ticker",
                         key="TSLA", now=now)
    assert silences.matching("ticker", "TSLA", "critical").id == muted.id
    assert silences.matching("ticker", "AAPL", "critical") is None and silences.matching("topic", "TSLA", "warning") is None
    tsla, aapl = alert(1, key="TSLA"), alert(2, key="AAPL")
    for a in (tsla, aapl):
        enqueue_alert(outbox, rules, a)
    drain(Deliverer(outbox, rules, FAST), lambda: outbox.summary() == {"delivered": 1, "silenced": 1})
    assert set(rx.unique) == {message_id(aapl)}  # only the unsilenced key paged anyone
    with outbox.engine.connect() as conn:
        from sqlalchemy import select

        from riskpulse.store.schema import outbox as table
        row = conn.execute(select(table.c.status, table.c.last_error).where(
            table.c.message_id == message_id(tsla))).one()
    assert row.status == "silenced" and muted.id in row.last_error and "dana" in row.last_error

    # the silence is expired; the story resolves: that message is sent as usual
    assert silences.expire(muted.id) and not silences.expire(muted.id)
    resolved = alert(1, status="resolved", key="TSLA")
    enqueue_alert(outbox, rules, resolved)
    drain(Deliverer(outbox, rules, FAST), lambda: message_id(resolved) in rx.unique)
    assert message_id(resolved) in rx.unique and message_id(tsla) not in rx.unique


def test_a_silence_made_while_a_delivery_is_retried_stops_it(outbox: Outbox, receiver_factory: Any) -> None:
    from riskpulse.alerts.silences import Silences

    rx = receiver_factory(answer=lambda req: 503)
    rules = rules_for(rx.url)
    enqueue_alert(outbox, rules, alert(3, key="TSLA"))
    drain(Deliverer(outbox, rules, FAST), lambda: len(rx.requests) >= 2)
    Silences(outbox.engine).add("dana", "receiver is paging the whole floor", time.time() + 600, key="TSLA")
    drain(Deliverer(outbox, rules, FAST), lambda: outbox.summary() == {"silenced": 1}, timeout_s=10)
    assert outbox.summary() == {"silenced": 1}


def test_silences_refuse_what_would_mute_everything_or_nothing(outbox: Outbox) -> None:
    from riskpulse.alerts.silences import Silences

    silences, now = Silences(outbox.engine), time.time()
    with pytest.raises(ValueError, match="at least one matcher"):
        silences.add("dana", "why", now + 60)
    with pytest.raises(ValueError, match="end after it starts"):
        silences.add("dana", "why", now - 1, key="TSLA", now=now)
    with pytest.raises(ValueError, match="key type must be"):
        silences.add("dana", "why", now + 60, key_type="sector")
    with pytest.raises(ValueError, match="comment"):
        silences.add("dana", " ", now + 60, key="TSLA")
    later = silences.add("dana", "tomorrow's results", now + 7200, severity="warning", starts_at=now + 3600, now=now)
    assert silences.matching("ticker", "X", "warning", now=now) is None  # not started yet
    assert silences.matching("ticker", "X", "warning", now=now + 3700).id == later.id
    assert silences.matching("ticker", "X", "critical", now=now + 3700) is None
    assert [s.id for s in silences.active(now)] == [later.id]


def test_silences_from_the_command_line(outbox: Outbox, settings_env: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from riskpulse.alerts.silences import Silences

    settings_env.setenv("RISKPULSE_STORE_URL", str(outbox.engine.url))
    assert main(["silence", "add", "--key-type", "ticker", "--key", "TSLA", "--for", "90m",
                 "--comment", "recall story, desk informed", "--by", "dana"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert 5390 < made["ends_at"] - made["starts_at"] <= 5400 and made["created_by"] == "dana"
    assert main(["silence", "list"]) == 0
    listed = capsys.readouterr().out
    assert made["id"] in listed and "key_type=ticker, key=TSLA" in listed and "recall story" in listed
    with pytest.raises(SystemExit, match="comment saying why"):
        main(["silence", "add", "--key", "TSLA"])
    with pytest.raises(SystemExit, match="at least one matcher"):
        main(["silence", "add", "--comment", "everything"])
    assert main(["silence", "expire", made["id"]]) == 0
    assert Silences(outbox.engine).matching("ticker", "TSLA", "critical") is None
    with pytest.raises(SystemExit, match="no silence"):
        main(["silence", "expire", made["id"]])


def test_webhooks_link_to_the_alert_page_when_the_dashboard_address_is_set(outbox: Outbox) -> None:
    from riskpulse.alerts.delivery import alert_link, standard_body

    a = alert(7)
    page = alert_link("https://riskpulse.desk.example/", a)
    assert page == "https://riskpulse.desk.example/alerts/a0007"
    assert standard_body(a, page)["links"] == {"dashboard": page}
    assert "links" not in standard_body(a) and alert_link(None, a) is None
    assert slack_body(a, page)["text"].endswith("<https://riskpulse.desk.example/alerts/a0007|Open in riskpulse>")
    enqueue_alert(outbox, rules_for("http://127.0.0.1:9/hook"), a, "https://riskpulse.desk.example")
    from sqlalchemy import select

    from riskpulse.store.schema import outbox as table
    with outbox.engine.connect() as conn:
        body = json.loads(conn.execute(select(table.c.body)).scalar_one())
    assert body["links"]["dashboard"] == page
