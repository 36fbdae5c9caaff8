"""The RSS/Atom poller against a real local HTTP server, and the HTTP ingest endpoint against Kafka."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from riskpulse.stream.local_broker import free_port
from riskpulse.records import TOPIC_NEWS
from riskpulse.httputil import retry_after_s
from riskpulse.stream.rss import MIN_INTERVAL_S, FeedPoller
from tests.helpers import REPO, consume

FEEDS = Path(__file__).parent / "feeds"


class FeedServer:
    """Serves feed files like a real publisher: ETag + Last-Modified, 304s, and switchable failures."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.status: int | None = None  # force this status (e.g. 429, 503)
        self.headers: dict[str, str] = {}
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                if server.status:
                    self.send_response(server.status)
                    for k, v in server.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Mon, 23 Nov 2026 09:05:00 GMT")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer()
    server.files["/markets.rss"] = (FEEDS / "markets.rss.xml").read_bytes()
    server.files["/filings.atom"] = (FEEDS / "filings.atom.xml").read_bytes()
    yield server
    server.close()


def poller(feeds: FeedServer, tmp_path: Path, sent: list[dict[str, Any]], *paths: str) -> FeedPoller:
    return FeedPoller([feeds.base + p for p in paths], tmp_path / "rss-state.json", sent.extend, interval_s=60)


def test_rss_items_become_news_records_in_publication_order(feeds: FeedServer, tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    def polled() -> tuple[float, float]:
        return (REGISTRY.get_sample_value("riskpulse_rss_items_total") or 0.0,
                REGISTRY.get_sample_value("riskpulse_rss_polls_total", {"outcome": "ok"}) or 0.0)

    before = polled()
    sent: list[dict[str, Any]] = []
    assert poller(feeds, tmp_path, sent, "/markets.rss").poll(feeds.base + "/markets.rss") == 3
    assert polled() == (before[0] + 3, before[1] + 1)  # served on /metrics with --metrics-port
    # the untitled entry has nothing to score and is not sent; the rest oldest first
    assert [s["headline"] for s in sent] == [
        "Acme Corp ($ACME) beats quarterly estimates, raises outlook",
        "Oil steadies after OPEC+ signals output pause",
        "Regional bank shares tumble as deposit outflows & losses mount",
    ]
    first = sent[0]
    assert first["published_at"] == "2026-11-23T13:01:30Z"  # -0500 normalised to UTC
    assert first["source"] == "Example Wire – Markets"
    assert first["url"].endswith("/acme-beats")
    assert sent[2]["body"] == "Shares of regional lenders fell sharply on Monday…"  # tags and entities gone
    assert len({s["id"] for s in sent}) == 3 and all(s["id"].startswith("rss-") for s in sent)


def test_atom_entries_with_html_titles(feeds: FeedServer, tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    poller(feeds, tmp_path, sent, "/filings.atom").poll(feeds.base + "/filings.atom")
    assert [s["headline"] for s in sent] == ["Initech files for Chapter 11 bankruptcy protection",
                                            "Globex Inc. discloses SEC probe into accounting"]
    assert sent[1]["published_at"] == "2026-11-23T08:02:00Z"
    assert sent[1]["url"] == "https://filings.example.org/8k/000123"


def test_conditional_get_and_guid_dedupe_survive_a_restart(feeds: FeedServer, tmp_path: Path) -> None:
    url = feeds.base + "/markets.rss"
    sent: list[dict[str, Any]] = []
    poller(feeds, tmp_path, sent, "/markets.rss").poll(url)
    # a new process: state comes back from disk; unchanged feed -> conditional GET -> 304
    again = poller(feeds, tmp_path, sent, "/markets.rss")
    assert again.poll(url) == 0
    assert feeds.requests[-1]["if-none-match"].startswith('"')
    assert feeds.requests[-1]["if-modified-since"] == "Mon, 23 Nov 2026 09:05:00 GMT"
    # the feed gains one entry (and so a new ETag): only the new guid is sent
    body = feeds.files["/markets.rss"].decode()
    new = ("<item><title>Fed minutes show split over rate path</title><guid>ew-20261123-0004</guid>"
           "<pubDate>Mon, 23 Nov 2026 09:20:00 GMT</pubDate></item>")
    feeds.files["/markets.rss"] = body.replace("<item>", new + "<item>", 1).encode()
    assert again.poll(url) == 1
    assert sent[-1]["headline"] == "Fed minutes show split over rate path"
    assert len(sent) == 4


def test_rate_limits_and_errors_back_off_politely(feeds: FeedServer, tmp_path: Path) -> None:
    url = feeds.base + "/markets.rss"
    sent: list[dict[str, Any]] = []
    p = poller(feeds, tmp_path, sent, "/markets.rss")
    feeds.status, feeds.headers = 429, {"Retry-After": "900"}
    now = time.time()
    assert p.poll(url, now) == 0
    assert p.states[url].next_poll >= now + 900  # Retry-After wins over the 60 s interval
    assert p.due(now + 899) == []
    feeds.status, feeds.headers = 503, {}
    p.poll(url, now)
    p.poll(url, now)
    assert p.states[url].failures == 3 and p.states[url].next_poll >= now + 4 * 60  # exponential
    feeds.status = None
    assert p.poll(url, now) == 3 and p.states[url].failures == 0
    assert p.states[url].next_poll <= now + 1.1 * 60


def test_unreachable_or_garbage_feed_is_logged_not_fatal(feeds: FeedServer, tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    dead = f"http://127.0.0.1:{free_port()}/feed"
    feeds.files["/garbage"] = b"<html><body>not a feed</body></html>"
    p = FeedPoller([dead, feeds.base + "/garbage"], tmp_path / "s.json", sent.extend, interval_s=1)
    assert p.run(once=True) == 0
    assert sent == [] and p.states[dead].failures == 1
    assert p.interval_s == MIN_INTERVAL_S  # a too-eager interval is raised to the polite minimum


def test_oversize_feeds_and_redirect_loops_are_refused_not_fatal(feeds: FeedServer, tmp_path: Path) -> None:
    from riskpulse.stream.rss import MAX_FEED_BYTES

    sent: list[dict[str, Any]] = []
    feeds.files["/huge"] = b"<rss>" + b"x" * (MAX_FEED_BYTES + 1) + b"</rss>"
    p = FeedPoller([feeds.base + "/huge"], tmp_path / "s.json", sent.extend)
    assert p.run(once=True) == 0 and p.states[feeds.base + "/huge"].failures == 1
    feeds.status, feeds.headers = 302, {"Location": "/loop"}
    loop = FeedPoller([feeds.base + "/loop"], tmp_path / "s2.json", sent.extend)
    assert loop.run(once=True) == 0 and loop.states[feeds.base + "/loop"].failures == 1
    assert len(feeds.requests) <= 1 + 1 + 6  # the huge one, then the loop cut at 5 redirects
    assert sent == []


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert retry_after_s("120", 0.0) == 120.0
    assert retry_after_s("Thu, 01 Jan 1970 00:10:00 GMT", 0.0) == 600.0
    assert retry_after_s("soon", 0.0) is None
    for hostile in ("\u00b2", "\u0661\u0662", "9" * 5000, "Fri, 31 Dec 9999 23:59:59 GMT", "-5", "1e9", "Mon, 99 Foo"):
        assert retry_after_s(hostile, 0.0) is None, hostile  # ignored: the caller's own backoff applies


@pytest.mark.integration
def test_rss_command_writes_to_kafka(feeds: FeedServer, kafka: Any, tmp_path: Path) -> None:
    env = {"RISKPULSE_HOME": str(tmp_path), "RISKPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap, "RISKPULSE_TOPIC_PREFIX": "rss."}
    cmd = [sys.executable, "-m", "riskpulse.cli", "rss", "--once", feeds.base + "/markets.rss", feeds.base + "/filings.atom"]
    out = subprocess.run(cmd, env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["sent"] == 5
    news = consume(kafka.bootstrap, "rss." + TOPIC_NEWS, lambda r: len(r) >= 5)
    assert {n["_key"] for n in news} == {n["id"] for n in news}
    assert (tmp_path / "rss-state.json").exists()


@pytest.fixture
def ingest(kafka: Any, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "RISKPULSE_HOME": str(tmp_path), "RISKPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "RISKPULSE_TOPIC_PREFIX": "ing.", "RISKPULSE_INGEST_TOKEN": "s3cret-token"}
    proc = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "ingest", "--port", str(port)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.integration
def test_ingest_answers_with_accepted_ids_and_writes_them(ingest: str, kafka: Any) -> None:
    auth = {"Authorization": "Bearer s3cret-token"}
    batch = [{"id": "ing-1", "headline": "Bank run fears hit lender", "published_at": "2026-11-23T09:00:00Z"},
             {"headline": "   "},
             {"headline": "Chipmaker wins export licence", "source": "wire", "url": "https://x.example/2"},
             "not an object"]
    r = httpx.post(ingest + "/v1/news", json=batch, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"][0] == "ing-1" and len(body["accepted"]) == 2
    assert [x["index"] for x in body["rejected"]] == [1, 3]
    assert "headline" in body["rejected"][0]["reason"]
    one = httpx.post(ingest + "/v1/news", json={"id": "ing-3", "headline": "Single item"}, headers=auth)
    assert one.json()["accepted"] == ["ing-3"]
    news = consume(kafka.bootstrap, "ing." + TOPIC_NEWS, lambda rs: len(rs) >= 3)
    assert {n["id"] for n in news} == set(body["accepted"]) | {"ing-3"}
    assert all(n["_key"] == n["id"] and n["published_at"] for n in news)
    metrics = httpx.get(ingest + "/metrics").text  # no token: counts only
    assert 'riskpulse_ingest_items_total{result="accepted"} 3.0' in metrics
    assert 'riskpulse_ingest_items_total{result="rejected"} 2.0' in metrics
    assert 'riskpulse_ingest_requests_total{status="200"} 2.0' in metrics


@pytest.mark.integration
def test_ingest_refuses_without_token_and_over_limits(ingest: str) -> None:
    item = {"headline": "x"}
    assert httpx.post(ingest + "/v1/news", json=item).status_code == 401
    wrong = httpx.post(ingest + "/v1/news", json=item, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    auth = {"Authorization": "Bearer s3cret-token"}
    assert httpx.post(ingest + "/v1/news", content=b"{oops", headers=auth).status_code == 400
    assert httpx.post(ingest + "/v1/news", json=[item] * 501, headers=auth).status_code == 413
    huge = httpx.post(ingest + "/v1/news", json={"headline": "y", "body": "z" * (2 * 1024 * 1024)}, headers=auth)
    assert huge.status_code == 413
    none_valid = httpx.post(ingest + "/v1/news", json=[{"headline": ""}], headers=auth)
    assert none_valid.status_code == 422 and none_valid.json()["accepted"] == []


def test_ingest_will_not_start_without_a_token() -> None:
    from riskpulse.stream.ingest import build_app

    async def send(pairs: list[tuple[bytes, bytes]]) -> None:
        pass

    with pytest.raises(ValueError, match="RISKPULSE_INGEST_TOKEN"):
        build_app(send, "")


@pytest.mark.integration
def test_ingest_answers_4xx_never_500_to_hostile_bodies(ingest: str) -> None:
    auth = {"Authorization": "Bearer s3cret-token", "Content-Type": "application/json"}
    bodies = [b"[" * 50_000 + b"]" * 50_000, b'{"headline": "x", "n": ' + b"9" * 5000 + b"}", b"\xff\xfe\x00",
              b'{"headline": "\\ud800"}', b'{"headline": "a\\u0000b"}',
              b'{"headline": "x", "published_at": "9999-12-31T23:59:59-23:59"}', b"NaN", b'{"items": 5}', b"null",
              b'[[[[[[[[[[{"headline": "deep"}]]]]]]]]]]', b'{"items": [' + b"[" * 5000 + b"]" * 5000 + b"]}", b""]
    for body in bodies:
        r = httpx.post(ingest + "/v1/news", content=body, headers=auth)
        assert 400 <= r.status_code < 500, (body[:60], r.status_code, r.text[:200])
    mixed = httpx.post(ingest + "/v1/news", content=b'[{"headline": "\\ud800"}, {"headline": "fine"}]', headers=auth)
    assert mixed.status_code == 200 and len(mixed.json()["accepted"]) == 1  # the valid item still goes through
