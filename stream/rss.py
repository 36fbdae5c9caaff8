"""Poll RSS/Atom feeds into ``news``: conditional GETs, guid de-duplication, polite intervals.

Feed servers are someone else's machines: each feed is fetched at most every ``interval_s``
(never under :data:`MIN_INTERVAL_S`), with ETag / Last-Modified so an unchanged feed costs a
304, ``Retry-After`` honoured and errors backed off exponentially. Items are sent before the
feed's state (validators + seen guids) is saved, so a crash re-sends rather than loses; the
item id is derived from feed URL + guid, which the worker's windows already count once.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import logging
import os
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import feedparser
import httpx
from prometheus_client import Counter

from riskpulse.httputil import retry_after_s

from riskpulse.records import BODY_MAX, HEADLINE_MAX

log = logging.getLogger(__name__)

# by outcome only: feed URLs stay out of metric labels (a label per URL grows without bound)
POLLS = Counter("riskpulse_rss_polls_total", "Feed polls by outcome (ok, failed: backed off)", ["outcome"])
ITEMS = Counter("riskpulse_rss_items_total", "New feed entries sent to news")

MIN_INTERVAL_S = 30.0
MAX_BACKOFF_S = 3600.0
MAX_FEED_BYTES = 5 * 1024 * 1024  # the largest real news feeds are well under 1 MB
MAX_REDIRECTS = 5


class FeedTooLarge(Exception):
    """The feed's body passed MAX_FEED_BYTES."""
SEEN_PER_FEED = 5000  # guids remembered per feed: far more than any feed lists at once
USER_AGENT = "riskpulse-rss/1 (+https://github.com/riskpulse; polite poller)"
_TAG = re.compile(r"<[^>]+>")


@dataclass
class FeedState:
    """What is remembered about one feed between polls (and restarts)."""

    etag: str | None = None
    last_modified: str | None = None
    seen: list[str] = field(default_factory=list)  # oldest first
    failures: int = 0
    next_poll: float = 0.0


def _text(value: str | None, limit: int) -> str:
    """Feed titles and summaries carry HTML and entities; headlines must be plain text."""
    plain = html.unescape(_TAG.sub(" ", value or ""))
    return " ".join(plain.split())[:limit]


def entry_guid(entry: Any) -> str:
    """The entry's own id when it has one, else its link, else its title (RSS makes all optional)."""
    return str(entry.get("id") or entry.get("guid") or entry.get("link") or entry.get("title") or "")


def entry_to_news(feed_url: str, source: str, entry: Any) -> dict[str, Any] | None:
    """One feed entry as a ``news`` record, or None when it has no title to score."""
    headline = _text(entry.get("title"), HEADLINE_MAX)
    if not headline:
        return None
    guid = entry_guid(entry)
    item: dict[str, Any] = {
        "id": "rss-" + hashlib.sha256(f"{feed_url}\x1f{guid}".encode()).hexdigest()[:32],
        "headline": headline,
        "source": source[:200],
    }
    if entry.get("link"):
        item["url"] = str(entry["link"])[:2000]
    body = _text(entry.get("summary"), BODY_MAX)
    if body and body != headline:
        item["body"] = body
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if stamp:  # feedparser normalises every date format to a UTC struct_time
        item["published_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(stamp)))
    return item


class FeedPoller:
    """Polls a fixed list of feeds; ``send`` takes a batch of records and returns once they are durable."""

    def __init__(self, urls: list[str], state_path: Path, send: Callable[[list[dict[str, Any]]], None],
                 interval_s: float = 300.0, client: httpx.Client | None = None) -> None:
        if not urls:
            raise ValueError("give at least one feed URL")
        self.urls = urls
        self.state_path = Path(state_path)
        self.send = send
        self.interval_s = max(MIN_INTERVAL_S, interval_s)
        self.client = client or httpx.Client(timeout=httpx.Timeout(20.0), follow_redirects=True,
                                             max_redirects=MAX_REDIRECTS, headers={"User-Agent": USER_AGENT})
        self.states: dict[str, FeedState] = self._load()

    def _load(self) -> dict[str, FeedState]:
        if not self.state_path.exists():
            return {}
        raw = json.loads(self.state_path.read_text())
        return {url: FeedState(**value) for url, value in raw.items()}

    def _save(self) -> None:
        """Atomic: a crash mid-write leaves the previous state, never a torn file."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({url: asdict(s) for url, s in self.states.items()}))
        os.replace(tmp, self.state_path)

    def _fetch(self, url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
        """GET, reading at most MAX_FEED_BYTES: a feed that streams forever is refused, not buffered."""
        with self.client.stream("GET", url, headers=headers) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise FeedTooLarge(f"feed body over {MAX_FEED_BYTES} bytes")
                chunks.append(chunk)
        return response, b"".join(chunks)

    def poll(self, url: str, now: float | None = None) -> int:
        """Fetch one feed now; returns how many new items were sent."""
        now = time.time() if now is None else now
        state = self.states.setdefault(url, FeedState())
        headers = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        try:
            response, content = self._fetch(url, headers)
        except httpx.HTTPError as exc:
            return self._failed(url, state, now, f"{type(exc).__name__}: {exc}", None)
        except FeedTooLarge as exc:
            return self._failed(url, state, now, str(exc), None)
        if response.status_code == 304:
            self._succeeded(state, now)
            return 0
        if response.status_code != 200:
            wait = retry_after_s(response.headers.get("Retry-After"), now)
            return self._failed(url, state, now, f"HTTP {response.status_code}", wait)
        parsed = feedparser.parse(content, response_headers=dict(response.headers))
        if parsed.bozo and not parsed.entries:
            return self._failed(url, state, now, f"unreadable feed: {parsed.get('bozo_exception')}", None)
        source = _text(parsed.feed.get("title"), 200) or httpx.URL(url).host
        seen = set(state.seen)
        fresh: list[tuple[str, dict[str, Any]]] = []
        for entry in parsed.entries:
            guid = entry_guid(entry)
            item = entry_to_news(url, source, entry)
            if item is not None and guid not in seen:
                fresh.append((guid, item))
                seen.add(guid)
        fresh.reverse()  # feeds list newest first; send in publication order
        if fresh:
            self.send([item for _, item in fresh])
        state.seen = (state.seen + [guid for guid, _ in fresh])[-SEEN_PER_FEED:]
        state.etag = response.headers.get("ETag")
        state.last_modified = response.headers.get("Last-Modified")
        self._succeeded(state, now)
        POLLS.labels("ok").inc()
        ITEMS.inc(len(fresh))
        log.info("feed polled", extra={"feed": url, "new": len(fresh), "entries": len(parsed.entries)})
        return len(fresh)

    def _succeeded(self, state: FeedState, now: float) -> None:
        state.failures = 0
        state.next_poll = now + self.interval_s * random.uniform(0.9, 1.1)  # jitter: feeds drift apart
        self._save()

    def _failed(self, url: str, state: FeedState, now: float, why: str, retry_after: float | None) -> int:
        state.failures += 1
        POLLS.labels("failed").inc()
        backoff = min(MAX_BACKOFF_S, self.interval_s * 2 ** (state.failures - 1))
        state.next_poll = now + max(backoff, retry_after or 0.0)
        self._save()
        log.warning("feed poll failed", extra={"feed": url, "error": why, "failures": state.failures,
                                               "retry_in_s": round(state.next_poll - now)})
        return 0

    def due(self, now: float) -> list[str]:
        return [u for u in self.urls if self.states.get(u, FeedState()).next_poll <= now]

    def run(self, once: bool = False, stop: Callable[[], bool] = lambda: False) -> int:
        """Poll every due feed, sleep until the next is due; ``once`` polls each feed a single time."""
        total = 0
        if once:
            return sum(self.poll(u) for u in self.urls)
        while not stop():
            now = time.time()
            for url in self.due(now):
                total += self.poll(url, now)
            wake = min(self.states[u].next_poll for u in self.urls)
            time.sleep(max(1.0, min(60.0, wake - time.time())))
        return total
