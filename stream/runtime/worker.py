"""The runtime: one worker's faust app, and everything that stands between faust and the stages.

It builds the app and its topics and tables (app.py), drives each stage as an agent
(driver.py), gives the stages their output port (outputs.py), fills in what the consumer passes
over (passed_over.py), corrects faust's commits (commits.py), runs the watches (watches.py), the
heartbeat that lets windows close while no news comes, and the worker's web pages. Every access
to faust's or aiokafka's private state is in this package, and the releases it was written for
are checked at start (versions.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import faust
from faust.types import TP

from riskpulse.logs import take_over_handlers
from riskpulse.settings import Settings

from .. import metrics
from ..core.messages import TICK, Progress, Source
from ..core.watermark import HEARTBEAT_S
from ..stages.ports import SCORED_BY_STORY, Record, Stage
from . import commits, handover, livelock
from .app import declare_topics, state_tables
from .broker_offsets import BrokerOffsets
from .client_logs import quiet_retried_client_errors
from .delivered import Delivered
from .driver import StageDriver
from .outputs import StagePort, TopicOutputs
from .passed_over import PassedOver
from .supervisor import exit_when_crashed
from .versions import check_pinned
from .watchdog import StallWatchdog
from .watches import Watches

log = logging.getLogger("riskpulse.stream.runtime")


class Runtime:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        check_pinned()
        quiet_retried_client_errors()  # before the consumer starts: its first lookup fails on every first start
        self.app, self.settings = app, settings
        self.topics = declare_topics(app, settings)
        self.partitions = settings.kafka_partitions  # of every topic: news, both internal ones, the outputs
        self.count_table, self.judge_table, self.score_table = state_tables(app, settings)
        self.watchdog = StallWatchdog(stall_s=settings.stall_s)
        self.delivered = Delivered()  # where the heartbeat says each partition stands
        app.on_partitions_assigned.connect(self._on_assigned)
        # asked on a client of its own (the watches use it too: it must not lean on the consumer they judge)
        self.broker_offsets = BrokerOffsets(settings.kafka_bootstrap)
        topics = self.topics
        # where a dropped record may wait long for a later one to reveal it (the internal topics
        # carry the tick every second, which reveals any hole)
        caught_up = {t.get_topic_name() for t in (topics.news, topics.scored, topics.trends, topics.alerts)}
        self.passed_over = PassedOver(app, caught_up, self.broker_offsets)
        # every stage accounts for each offset of what it reads (driver.py): the commits follow that
        commits.install(app, {t.get_topic_name() for t in topics.read()})
        livelock.install()  # faust's livelock check must not crash the consumer (livelock.py)
        handover.install()  # records handed to the agents without four tasks each (handover.py)
        self.outputs = TopicOutputs(app, topics)  # the heartbeat sends through it; each stage has a port of its own
        inputs = [t.get_topic_name() for t in (topics.news, topics.scored_internal, topics.windows_internal)]
        self.watches = Watches(app, inputs, self.partitions, settings.stall_s, self.watchdog, self.passed_over,
                               self.broker_offsets)
        self._readers: dict[str, str] = {}  # topic -> the stage reading it
        self._model_loaded: Callable[[], bool] = lambda: False
        self._waiting_markers: list[Callable[[set[int]], list[bytes]]] = []  # told at the tick (on_tick)
        self._said_cancelled = False

    # -- what the pipeline puts on the worker ------------------------------------------------

    def port(self) -> StagePort:
        """A stage's own output port (one per stage: the driver settles it at the end of each batch)."""
        return StagePort(self.outputs)

    def run(self, stage: Stage, topic: Any, table: Any = None) -> None:
        """``stage`` reads ``topic`` (a keyed stage keeps its state in ``table``)."""
        driver = StageDriver(stage, self.passed_over, self.watchdog, table, self.delivered)
        self.app.agent(topic, name=f"riskpulse.stream.agents.{stage.name}")(driver.agent())
        self._readers[topic.get_topic_name()] = stage.name

    def beside(self, task: Callable[[], Awaitable[None]]) -> None:
        """A task that runs beside the stream for the worker's life (the webhook loop)."""
        self.app.task(task)

    def on_tick(self, markers: Callable[[set[int]], list[bytes]]) -> None:
        """``markers(news partitions read)``: progress markers a stage kept back for the tick
        (stream/core/progress.py), sent to every counting partition before the heartbeats."""
        self._waiting_markers.append(markers)

    def every(self, interval_s: float, name: str, job: Callable[[], Awaitable[None]]) -> None:
        self.app.timer(interval=interval_s, name=name)(job)

    def start(self, model_loaded: Callable[[], bool]) -> None:
        """The worker's own jobs and pages; ``model_loaded`` says whether readiness may pass."""
        self._model_loaded = model_loaded
        self.app.task(self.own_the_log_handlers)
        self.app.task(exit_when_crashed)  # faust passes the app
        self.every(5.0, "stall_check", self.watches.check)
        self.every(HEARTBEAT_S, "tick", self.tick)
        self._page("/healthz", self.healthz)
        self._page("/readyz", self.readyz)
        self._page("/metrics", self.metrics_page)

    async def _on_assigned(self, sender: Any, assigned: Any, **_: Any) -> None:
        self.watchdog.assigned({(tp.topic, tp.partition) for tp in assigned})
        self.delivered.assigned()
        self.watches.assigned()

    def unclaimed_news(self) -> dict[int, int] | None:
        """Per news partition, records the group has not committed, at the last check (None: not
        known since the last assignment; watches.py)."""
        unclaimed = self.watches.unclaimed
        return None if unclaimed is None else unclaimed.get(self.topics.news.get_topic_name(), {})

    def behind(self, record: Record) -> int:
        """Records of the record's partition not yet read (the fetcher's last highwater; no broker call)."""
        try:
            highwater = self.app.consumer.highwater(TP(record.topic, record.partition))
        except Exception:  # noqa: BLE001 - revoked meanwhile, or not fetched yet: no claim either way
            return 0
        return max(0, int(highwater) - record.offset - 1) if highwater is not None else 0

    # -- the heartbeat -------------------------------------------------------------------------

    async def tick(self) -> None:
        """Heartbeats: for each news partition this worker scores, how many records it has yet to read
        (the fetcher's last highwater against what it processed; no broker call). A partition is idle
        for the watermark only once its scorer says it is caught up (stream/core/watermark.py). Every
        partition of the counting stage hears them. The tick itself lets the counting partitions
        close windows, and tell the judges so, while no news arrives."""
        app, out = self.app, self.outputs
        consumer = app.consumer
        # only while this worker reads news: during a table recovery (the scorer's own table, after
        # a rebalance) its news partitions are paused, and the highwater its fetcher last saw is
        # stale while the producers go on; "caught up" against it let the watermark run past the
        # records waiting there, and at a 30x replay they were counted late (a worker joining)
        if consumer is not None and not app.rebalancing and not app.tables.recovery.in_recovery \
                and app.flow_control.is_active():
            try:
                assigned = [tp for tp in consumer.assignment() if tp.topic == self.topics.news.get_topic_name()]
                paused = set(getattr(consumer, "_paused_partitions", ()) or ())  # faust pinned: versions.py
            except Exception:  # noqa: BLE001 - no assignment yet
                assigned, paused = [], set()
            if assigned:
                reading = {tp.partition for tp in assigned if tp not in paused}
                for waiting in self._waiting_markers:
                    for marker in waiting(reading):
                        for target in range(self.partitions):
                            await out.send(SCORED_BY_STORY, marker, key=b"progress", partition=target)
            for tp in assigned:
                if tp in paused:
                    continue  # not being read: no claim either way, it keeps holding the watermark
                try:
                    highwater = consumer.highwater(tp)
                except Exception:  # noqa: BLE001 - revoked meanwhile
                    continue
                # where this worker stands: the last offset whose batch it released (its items sent
                # ahead of this heartbeat), or before any since the assignment, the committed one (a
                # partition with a backlog it has not started on is slow, not idle): delivered.py
                last = self.delivered.position((tp.topic, tp.partition), self.passed_over.committed(tp))
                if last is None or highwater is None:
                    continue  # nothing known yet: the partition keeps holding the watermark
                marker = Progress(Source(tp.topic, tp.partition, last, max(0, int(highwater) - last - 1)),
                                  heartbeat=True).encode()
                for target in range(self.partitions):
                    await out.send(SCORED_BY_STORY, marker, key=b"progress", partition=target)
            await self.passed_over.catch_up({topic for topic, stage in self._readers.items()
                                             if stage in self.watchdog.busy})
        for target in range(self.partitions):
            await out.send(SCORED_BY_STORY, TICK, key=b"tick", partition=target)

    # -- the process: logs, web pages ----------------------------------------------------------

    async def own_the_log_handlers(self) -> None:
        """faust/mode install their own log handlers at start: our formatter (fields, JSON, redaction)
        and rate limit on them (see riskpulse.logs)."""
        take_over_handlers(self.settings.log_json)
        asyncio.get_running_loop().set_exception_handler(self._loop_exception)

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """faust's send callback raises on a send cancelled as the worker stops, one ERROR traceback
        per pending record at every deploy. Nothing is lost (the batch that sent it was never
        acknowledged and is read again by the next owner): say so once, quietly. Told by the name
        of faust's callback (``_on_published``; faust is pinned: versions.py)."""
        if isinstance(context.get("exception"), asyncio.CancelledError) and "_on_published" in str(context.get("handle")):
            if not self._said_cancelled:  # said once per process, counted always
                self._said_cancelled = True
                log.info("sends still pending at stop were cancelled; their input is read again by the next owner")
            metrics.SENDS_CANCELLED.inc()
            return
        loop.default_exception_handler(context)

    def _page(self, path: str, handler: Callable[[Any, Any], Any]) -> None:
        """faust makes a page's handler its view's ``get`` method: a function, so it binds to the view."""
        async def page(web: Any, request: Any) -> Any:
            return await handler(web, request)
        page.__name__ = page.__qualname__ = handler.__name__
        page.__doc__ = handler.__doc__
        self.app.page(path)(page)

    async def healthz(self, web: Any, request: Any) -> Any:
        """Liveness: the event loop answers."""
        return web.json({"status": "ok"})

    def health(self, now: float) -> dict[str, Any]:
        """What readiness reports: model loaded, partitions assigned, the records behind on the
        partitions this worker holds (at the last stall check), and those stalling: data waiting
        and no progress for half of STALL_S (at all of it the worker exits for a restart)."""
        app = self.app
        try:
            assigned = bool(app.consumer.assignment()) if app.consumer else False
        except Exception:  # noqa: BLE001 - consumer not started yet: not ready (503), not an error (500)
            assigned = False
        model_loaded = self._model_loaded()
        stalling = self.watches.stalling(now)
        ready = model_loaded and assigned and not app.rebalancing and not stalling
        return {"ready": ready, "model_loaded": model_loaded, "assigned": assigned, "lag": self.watches.lag(),
                "stalling": stalling}

    async def readyz(self, web: Any, request: Any) -> Any:
        """Readiness: model loaded, partitions assigned, not rebalancing, no partition stalling."""
        health = self.health(time.time())
        return web.json(health, status=200 if health["ready"] else 503)

    async def metrics_page(self, web: Any, request: Any) -> Any:
        body, content_type = metrics.exposition()
        return web.bytes(body, content_type=content_type)
