"""The worker's pipeline, as a table of contents: which stage reads which topic.

    news ──score──▶ <app>-scored-by-story ──count──▶ news.scored
      │              (by story: each copy of a         <app>-windows ──judge──▶ trends, alerts
      └──▶ news.dlq   story meets its first sighting)   (closed windows' counters, by key)

    news.scored, trends, alerts ──sinks──▶ the store; alerts ──▶ the webhook outbox ──▶ receivers

The stages are plain code (stream/stages/); the runtime (stream/runtime/) owns faust and hands
each stage its input in offset order with no holes, held until processed. Delivery is
at-least-once end to end and the stages' state makes counting exact. A record that makes any
stage raise is dead-lettered to ``news.dlq`` with its stage, error and source position, and the
stream goes on; only infrastructure faults (model, store, broker) end the worker for a restart.
"""

from __future__ import annotations

from typing import Any

from riskpulse.alerts.delivery import deliver_forever
from riskpulse.alerts.notifier import Notifier, notify_forever
from riskpulse.alerts.detector import Detector
from riskpulse.alerts.rules import Rules
from riskpulse.records import TOPIC_ALERTS, TOPIC_SCORED, TOPIC_TRENDS
from riskpulse.settings import Settings

from . import metrics
from .runtime.app import App, create_app
from .runtime.worker import Runtime
from .stages.count import Count
from .stages.judge import Judge
from .stages.score import Score
from .stages.sinks import StoreAccess, sinks


def build_app(settings: Settings) -> App:
    """The worker's Faust app with its topics, table, agents, timers and pages, from ``settings``.

    Nothing is built at import: a test, a benchmark or a second worker in one process gets its own."""
    app = create_app(settings)
    Pipeline(app, settings)
    return app


class Pipeline:
    """One worker's stages on its runtime."""

    def __init__(self, app: App, settings: Settings) -> None:
        self.runtime = runtime = Runtime(app, settings)
        topics = runtime.topics
        rules = Rules.load(settings.alert_rules)  # validated by `riskpulse worker` before this process starts
        self.score = Score(settings, runtime.port(), runtime.behind)
        runtime.run(self.score, topics.news, runtime.score_table)
        runtime.on_tick(self.score.pending_progress)
        runtime.run(Count(settings, runtime.port(), rules.spread, runtime.unclaimed_news), topics.scored_internal,
                    runtime.count_table)
        runtime.run(Judge(settings, runtime.port(), Detector(rules, settings.window_s)), topics.windows_internal,
                    runtime.judge_table)
        # news.scored -> store (upserts by id); trends -> store (upserts by key and window);
        # alerts -> store (one row per alert id) + webhook outbox (one row per route and message)
        self.store = store = StoreAccess(settings)
        by_topic = sinks(settings, runtime.port, store, rules)
        for name, topic in ((TOPIC_SCORED, topics.scored), (TOPIC_TRENDS, topics.trends), (TOPIC_ALERTS, topics.alerts)):
            runtime.run(by_topic[name], topic)

        async def deliver_webhooks() -> None:
            await deliver_forever(rules, settings, store.outbox, store.on_outbox_thread,
                                  on_result=lambda route, outcome: metrics.WEBHOOKS.labels(route, outcome).inc())
        runtime.beside(deliver_webhooks)
        if rules.routes and rules.incidents.enabled:
            def notifier() -> Notifier:
                made = Notifier(store.store(), store.outbox(), rules, settings.dashboard_url)
                made.on_notified = lambda route, kind: metrics.INCIDENT_NOTIFICATIONS.labels(route, kind).inc()
                return made

            async def notify_incidents() -> None:
                await notify_forever(notifier, store.on_outbox_thread)
            runtime.beside(notify_incidents)
        runtime.every(3600.0, "retention", store.retention)
        runtime.start(model_loaded=lambda: self.score.service is not None)

    def health(self, now: float) -> dict[str, Any]:
        return self.runtime.health(now)
