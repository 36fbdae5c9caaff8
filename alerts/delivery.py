"""Webhook delivery: message bodies, the retry policy, and the loop that drains the outbox.

Policy (Standard Webhooks' recommendations): 2xx delivered; 408, 429, 5xx, timeouts and
connection errors retried with exponential backoff and full jitter, never sooner than a
``Retry-After`` asks; other 4xx are the receiver refusing the message (not retried); 410
disables the route. A message that keeps failing is given up after ``max_attempts`` and stays
in the delivery log. The loop runs beside the stream, never inside it: an unreachable
endpoint costs a timeout in this task, nothing in the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

import httpx

from riskpulse.httputil import retry_after_s
from riskpulse.records import Alert
from riskpulse.settings import Settings

from .incident_bodies import alertmanager_body
from .incidents import Member, evidence
from .outbox import Outbox
from .rules import Route, Rules
from .signing import headers_for
from .slack import slack_escape, slack_headline, slack_message
from .silences import Silences

log = logging.getLogger(__name__)

USER_AGENT = "riskpulse-webhooks/1"


def message_id(alert: Alert) -> str:
    """One message per alert state: firing, escalated to critical, resolved. Retries keep it."""
    return f"msg_{alert.id}_{alert.status}_{alert.severity}"


def alert_link(dashboard_url: str | None, alert: Alert) -> str | None:
    """The alert's page on the dashboard (RISKPULSE_DASHBOARD_URL: its address as receivers reach it)."""
    return f"{dashboard_url.rstrip('/')}/alerts/{quote(alert.id, safe='')}" if dashboard_url else None


def standard_body(alert: Alert, link: str | None = None) -> dict[str, Any]:
    body = {"type": f"alert.{alert.status}", "timestamp": alert.fired_at.isoformat().replace("+00:00", "Z"),
            "data": alert.to_json()}
    if link:
        body["links"] = {"dashboard": link}
    return body


def slack_body(alert: Alert, page: str | None = None) -> dict[str, Any]:
    """A Slack incoming-webhook message (also understood by Mattermost and Rocket.Chat)."""
    icon = {"critical": ":rotating_light:", "warning": ":warning:"}[alert.severity] if alert.status == "firing" else ":white_check_mark:"
    lines = [f"{icon} {slack_escape(alert.summary)}"] + [slack_headline(h, "• ") for h in alert.top_headlines[:3]]
    return slack_message(lines, page)


def enqueue_alert(outbox: Outbox, rules: Rules, alert: Alert, dashboard_url: str | None = None) -> int:
    """One outbox row per matching route; returns how many were new."""
    new = 0
    page = alert_link(dashboard_url, alert)
    for route in rules.routes_for(alert.severity, alert.key_type, alert.key):
        if route.format == "alertmanager":  # a group of one alert
            body = alertmanager_body(f"{route.name}:{alert.id}", route.name, [Member(alert, evidence([alert]))],
                                     alert.status, ("key_type", "key"), dashboard_url)
        else:
            body = slack_body(alert, page) if route.format == "slack" else standard_body(alert, page)
        new += outbox.enqueue(message_id(alert), route.name, route.url, body, key_type=alert.key_type, key=alert.key,
                              severity=alert.severity)
    return new


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 5.0
    cap_s: float = 3600.0
    max_attempts: int = 20

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before attempt ``attempt + 1``: full jitter over an exponential ceiling."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return max(rng.uniform(ceiling / 2, ceiling), retry_after or 0.0)


def classify(status_code: int | None) -> str:
    """delivered | retry | failed | disable, from an HTTP status (None: no answer at all)."""
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "disable"
    if status_code in (408, 429) or status_code >= 500:
        return "retry"
    return "failed"


class Deliverer:
    """Drains the outbox: claims due rows, signs and sends them, records each attempt."""

    def __init__(self, outbox: Outbox, rules: Rules, policy: RetryPolicy,
                 run_blocking: Callable[..., Any] | None = None, client: httpx.AsyncClient | None = None,
                 silences: Silences | None = None) -> None:
        self.outbox = outbox
        self.silences = silences or Silences(outbox.engine)
        self.routes: dict[str, Route] = {r.name: r for r in rules.routes}
        self.secrets = {r.name: r.resolved_secrets() for r in rules.routes}
        self.policy = policy
        self.rng = random.Random()
        self.client = client or httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=False)
        self._blocking = run_blocking or (lambda fn, *a: asyncio.get_running_loop().run_in_executor(None, fn, *a))
        self.on_result: Callable[[str, str], None] = lambda route, outcome: None  # metrics hook

    async def run_once(self) -> int:
        rows = await self._blocking(self.outbox.claim_due)
        by_route: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_route.setdefault(row["route"], []).append(row)
        # routes in parallel, one request at a time per route: polite, and a 410 stops the rest
        await asyncio.gather(*(self._deliver_route(route_rows) for route_rows in by_route.values()))
        return len(rows)

    async def _deliver_route(self, rows: list[dict[str, Any]]) -> None:
        # A 410 stops this pass only (Outbox.disable marked the rest skipped); whether a route is
        # disabled lives in the store, so `riskpulse webhooks enable` takes effect without a restart.
        for row in rows:
            try:
                outcome = await self._deliver(row)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad row must not hold its route's queue
                outcome = await self._fail_row(row, exc)
            if outcome == "disable":
                return

    async def _fail_row(self, row: dict[str, Any], exc: Exception) -> str:
        """A row whose delivery raised (not an HTTP failure): recorded as failed, with the error, for good."""
        error = f"delivery error: {type(exc).__name__}: {exc}"[:500]
        log.error("webhook row could not be delivered; marked failed", extra={"route": row.get("route"),
                                                                               "message_id": row.get("message_id"), "error": error})
        self.on_result(str(row.get("route")), "failed")
        await self._blocking(self.outbox.record, row, "failed", None, error, 0.0, None)
        return "failed"

    async def run_forever(self, interval_s: float = 1.0) -> None:
        while True:
            try:
                if await self.run_once():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a store hiccup must not end deliveries
                log.exception("webhook delivery loop error; retrying")
            await asyncio.sleep(interval_s)

    async def _deliver(self, row: dict[str, Any]) -> str:
        """One attempt; returns its outcome (delivered, retry, failed, disable, silenced)."""
        route = self.routes.get(row["route"])
        if route is None:  # the route was removed from the rules file: keep the row, say why
            await self._blocking(self.outbox.record, row, "failed", None, "route no longer in the rules file", 0.0, None)
            return "failed"
        if row.get("key_type") is not None:  # rows enqueued before silences existed carry no keys
            silence = await self._blocking(self.silences.matching, row["key_type"], row["key"], row["severity"])
            if silence is not None:  # detected, stored and shown, but nobody is paged while it holds
                await self._blocking(self.outbox.record, row, "silenced", None, silence.describe()[:500], 0.0, None)
                self.on_result(route.name, "silenced")
                log.info("webhook silenced", extra={"route": route.name, "message_id": row["message_id"],
                                                    "silence": silence.id})
                return "silenced"
        body = row["body"].encode()
        headers = {"content-type": "application/json", **headers_for(self.secrets[route.name], row["message_id"], body)}
        started = time.perf_counter()
        status_code: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            response = await self.client.post(route.url, content=body, headers=headers, timeout=route.timeout_s)
            status_code = response.status_code
            retry_after = retry_after_s(response.headers.get("Retry-After"), time.time())
            if status_code >= 300:
                error = f"HTTP {status_code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = (time.perf_counter() - started) * 1000
        outcome = classify(status_code)
        attempt = row["attempts"] + 1
        next_at = None
        if outcome == "retry":
            if attempt >= self.policy.max_attempts:
                outcome = "failed"
                error = f"gave up after {attempt} attempts; last: {error}"
            else:
                next_at = time.time() + self.policy.delay(attempt, retry_after, self.rng)
        if outcome == "disable":
            await self._blocking(self.outbox.record, row, "failed", status_code, error, duration_ms, None)
            await self._blocking(self.outbox.disable, route.name, route.url, "receiver answered 410 Gone")
            log.error("webhook endpoint disabled (410 Gone); re-enable with: riskpulse webhooks enable ROUTE",
                      extra={"route": route.name})
        else:
            await self._blocking(self.outbox.record, row, outcome, status_code, error, duration_ms, next_at)
        self.on_result(route.name, "disabled" if outcome == "disable" else outcome)
        log_fn = log.info if outcome == "delivered" else log.warning
        log_fn("webhook attempt", extra={"route": route.name, "message_id": row["message_id"], "attempt": attempt,
                                         "outcome": outcome, "status_code": status_code, "error": error})
        return outcome

    async def close(self) -> None:
        await self.client.aclose()



async def deliver_forever(rules: Rules, settings: Settings, open_outbox: Callable[[], Outbox],
                          run_blocking: Callable[..., Any],
                          on_result: Callable[[str, str], None] = lambda route, outcome: None) -> None:
    """The worker's webhook loop: drains the outbox beside the stream, never inside it, so a dead
    receiver costs this task timeouts and nothing else. ``run_blocking`` runs store calls off the
    event loop (the worker gives the outbox a thread of its own); nothing to do without routes."""
    if not rules.routes:
        return
    outbox = await run_blocking(open_outbox)
    policy = RetryPolicy(settings.webhook_retry_base_s, settings.webhook_retry_cap_s, settings.webhook_max_attempts)
    deliverer = Deliverer(outbox, rules, policy, run_blocking=run_blocking)
    deliverer.on_result = on_result
    await deliverer.run_forever()
