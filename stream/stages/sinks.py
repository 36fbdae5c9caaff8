"""The sinks: news.scored, trends and alerts read back into the store (upserts, so a record read
twice is stored once), and each stored alert's webhook messages into the outbox.

Riskpulse reads its own outputs back rather than writing the store from the stages: the topics
are the record of what was published, a store that is down holds up nothing upstream, and the
store can be rebuilt by reading the topics again.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from riskpulse.alerts.delivery import enqueue_alert
from riskpulse.alerts.outbox import Outbox
from riskpulse.alerts.rules import Rules
from riskpulse.records import TOPIC_ALERTS, TOPIC_SCORED, TOPIC_TRENDS, Alert
from riskpulse.settings import Settings
from riskpulse.store.news import Store

from ..core.messages import loads
from ..isolation import write_isolated
from .ports import Outputs, Record, Stage, send_dead_letter


class StoreAccess:
    """The store and the webhook outbox, opened on first use, each with a thread of its own so
    their blocking calls never hold the event loop (nor each other)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.outbox_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._store: Store | None = None
        self._outbox: Outbox | None = None

    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.store_url, self.settings.store_migrate)
        return self._store

    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(self.store().engine)
        return self._outbox

    def on_outbox_thread(self, fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        return asyncio.get_running_loop().run_in_executor(self.outbox_pool, fn, *args)

    async def retention(self) -> None:
        """The store and the webhook outbox keep RETENTION_DAYS (pending webhook messages are kept)."""
        cutoff = datetime.now(timezone.utc) - timedelta(days=self.settings.retention_days)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.store_pool, self.store().purge, cutoff)
        await loop.run_in_executor(self.outbox_pool, self.outbox().purge, cutoff.timestamp())


class Sink(Stage):
    """One implementation for every sink: decode, write the batch on the store's thread, and
    dead-letter exactly the records the store refuses (an unreachable store is retried, then the
    worker restarts: stream/isolation.py)."""

    watched = False

    def __init__(self, name: str, out: Outputs, access: StoreAccess,
                 write: Callable[[], Callable[[list[dict[str, Any]]], object]], batch: int, within_s: float) -> None:
        self.name, self.out, self.access, self.write = name, out, access, write
        self.batch, self.within_s = batch, within_s

    async def process(self, records: list[Record]) -> None:
        decoded: list[tuple[Record, dict[str, Any]]] = []
        for record in records:
            try:
                value = loads(record.value)
                if not isinstance(value, dict):
                    raise ValueError(f"expected a JSON object, got {type(value).__name__}")
            except (ValueError, TypeError, RecursionError) as exc:
                await send_dead_letter(self.out, record, f"not a record: {exc}", self.name)
                continue
            decoded.append((record, value))
        if not decoded:
            return
        loop = asyncio.get_running_loop()
        failures = await loop.run_in_executor(self.access.store_pool, write_isolated, self.write(),
                                              [value for _, value in decoded])
        for index, exc in failures:
            await send_dead_letter(self.out, decoded[index][0], f"{type(exc).__name__}: {str(exc)[:500]}", self.name)


def sinks(settings: Settings, port: Callable[[], Outputs], access: StoreAccess, rules: Rules) -> dict[str, Sink]:
    """The sink of each output topic (by its riskpulse.records name), each with its own port."""

    def store_alerts(records: list[dict[str, Any]]) -> None:
        """Store first, then the outbox: a delivery row exists only for a stored alert."""
        alerts = [Alert.model_validate(rec) for rec in records]  # a malformed record fails before anything is written
        access.store().upsert_alerts(records)
        if rules.incidents.enabled:
            return  # notified as incidents, from the stored alerts (alerts/notifier.py)
        for alert in alerts:
            enqueue_alert(access.outbox(), rules, alert, settings.dashboard_url)

    return {
        TOPIC_SCORED: Sink("sink_scored", port(), access, lambda: access.store().upsert_scored, 500, 1.0),
        TOPIC_TRENDS: Sink("sink_trends", port(), access, lambda: access.store().upsert_trends, 500, 1.0),
        TOPIC_ALERTS: Sink("sink_alerts", port(), access, lambda: store_alerts, 100, 0.5),
    }
