"""The Faust app, its topics and its tables, built from settings (the stages live in
stream/stages/; ``build_app`` in stream/agents.py puts them on the app).

Flow inside the worker (every topic has KAFKA_PARTITIONS partitions; a worker holds the same
partitions of all of them)::

    news --score--> <app>-scored-by-story --count--> news.scored
      |             (by story: each copy of a        <app>-windows --judge--> trends, alerts
      +--> news.dlq  story meets its first sighting)  (closed windows' counters, by key)

Scoring is the expensive, stateless part and scales with the partitions of ``news``. Counting
(dedupe, event-time windows) is partitioned by story, so duplicates meet; judging (trends, the
detector) by key, so all of a key's counts meet. Both stages keep their state in a table
partitioned like their input, so each scales with the workers too (stream/core/aggregator.py,
stream/core/merge.py).
"""

from __future__ import annotations

import socket
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from riskpulse.records import TOPIC_ALERTS, TOPIC_DLQ, TOPIC_NEWS, TOPIC_SCORED, TOPIC_TRENDS
from riskpulse.settings import Settings

from ..kafka_clients import faust_broker, faust_credentials
from ..topic_plan import TABLES, internal_topic_names



def worker_datadir(settings: Settings) -> Path:
    """Local RocksDB state (a cache of the changelog); one folder per worker, so several workers
    share a host (each on its own port) or a volume (``docker compose --scale``: each replica has
    its own hostname and the same port)."""
    path = settings.home / "worker" / f"{socket.gethostname()}-port-{settings.worker_web_port}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


MAX_POLL_RECORDS = 500

App = faust.App  # the worker's app, as the pipeline names it without importing faust


def create_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=faust_broker(settings),
        broker_credentials=faust_credentials(settings),
        store="rocksdb://",
        datadir=str(worker_datadir(settings)),
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication,
        topic_allow_declare=settings.kafka_create_topics,  # off: `riskpulse topics apply` made them
        processing_guarantee="at_least_once",  # made exact by idempotent state; see stream/core/aggregator.py
        consumer_auto_offset_reset="earliest",
        broker_commit_every=500,
        broker_commit_interval=1.0,
        # at most this many records per fetch: faust hands a fetch over record by record, waiting
        # whenever an agent's stream buffer is full, and hands over nothing else meanwhile
        # (faust-streaming/faust#53); a fetch of thousands of news records behind a busy scorer
        # starved the counting stage and the sinks for seconds (docs/benchmarks.md, 2026-12-07)
        broker_max_poll_records=MAX_POLL_RECORDS,
        producer_acks=-1,
        producer_linger_ms=5,  # a few ms of batching: far fewer produce requests for the broker to serve
        stream_wait_empty=False,
        table_standby_replicas=0,
        web_enabled=True,
        web_port=settings.worker_web_port,
        web_bind=settings.worker_web_host,
        web_in_thread=False,
        # the web port serves /healthz, /readyz and /metrics only: no table browsing, no router,
        # no graph or stats pages (faust's own views expose state and topology)
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=30.0,
        topic_disable_leader=True,
    )


def topic_name(settings: Settings, topic: str) -> str:
    return settings.topic_prefix + topic


class HeldTopic(faust.Topic):
    """A topic whose messages stay unacknowledged from delivery until the agent reading it has
    processed them (it releases them: stream/runtime/driver.py, ``_processing``).

    faust's streams acknowledge, and so commit, every record they skip: those queued under the
    previous consumer generation when a rebalance ends. Read again nowhere, those records were
    lost to a crash or a restart in the seconds before the worker filled them in
    (stream/core/continuity.py). One more reference taken here, when faust first decodes the
    message, means a record is committed only once an agent has processed it."""

    def _compile_decode(self) -> None:
        super()._compile_decode()
        decode = self.decode

        async def held(message: Any, *, propagate: bool = False) -> Any:
            if message not in _holding:  # once per message, however many channels decode it
                _holding.add(message)
                message.incref()
            return await decode(message, propagate=propagate)

        self.decode = held  # type: ignore[method-assign]


_holding: "weakref.WeakSet[Any]" = weakref.WeakSet()


@dataclass(frozen=True)
class Topics:
    """The worker's topics: its three inputs (news, and the two internal topics between its
    stages), what it publishes, and what its sink agents read back."""

    news: HeldTopic
    scored_internal: HeldTopic  # scorers -> counters, partitioned by story
    windows_internal: HeldTopic  # counters -> judges, partitioned by key
    scored: HeldTopic
    trends: HeldTopic
    alerts: HeldTopic
    dlq: Any

    def read(self) -> tuple[HeldTopic, ...]:
        """The topics agents read: each is held, filled in where faust passes over records, and
        committed as processed (stream/runtime/commits.py)."""
        return (self.news, self.scored_internal, self.windows_internal, self.scored, self.trends, self.alerts)


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Every topic an agent reads is held (see :class:`HeldTopic`); the dead-letter topic is only written."""

    def held(name: str, **options: Any) -> HeldTopic:
        return HeldTopic(app, topics=[name], **options)

    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    partitions = settings.kafka_partitions
    by_story, windows = internal_topic_names(settings)
    return Topics(
        news=held(topic_name(settings, TOPIC_NEWS), key_type=bytes, value_type=bytes, partitions=partitions, **raw),
        scored_internal=held(by_story, key_type=bytes, value_type=bytes, partitions=partitions, internal=True, **raw),
        windows_internal=held(windows, key_type=bytes, value_type=bytes, partitions=partitions, internal=True, **raw),
        scored=held(topic_name(settings, TOPIC_SCORED), partitions=partitions, **raw),
        trends=held(topic_name(settings, TOPIC_TRENDS), partitions=partitions, **raw),
        alerts=held(topic_name(settings, TOPIC_ALERTS), partitions=partitions, **raw),
        dlq=app.topic(topic_name(settings, TOPIC_DLQ), partitions=partitions, **raw),
    )


class PartitionedStateTable(faust.Table):
    """A table partitioned like its agent's input, each key prefixed with its partition
    (``"3|wm"``), which names its changelog partition.

    faust otherwise picks a changelog partition from the current event, checking the source
    topic's partition count on the consumer first, or, with ``use_partitioner``, from the
    producer's topic metadata, which it does not fetch first: a write before that metadata
    arrived crashed the aggregate agent ("'NoneType' object is not iterable" in
    ``Producer.key_partition``). Taken from the key, no write depends on metadata or timing.
    The agent still makes an event of the partition current while it reads and writes it
    (faust's RocksDB store keeps one database per partition and picks it from that event).
    """

    def partition_for_key(self, key: object) -> int:
        return int(str(key).split("|", 1)[0])


def state_tables(app: faust.App, settings: Settings) -> tuple[faust.Table, faust.Table, faust.Table]:
    """The state of the stages: counting (windows, dedupe, watermark), judging (counters of
    closed windows, detector baselines) and scoring (the revisions of each id). One changelog partition per input
    partition keeps each partition's writes in order, so what survives a crash is a prefix of
    them (see stream/core/state.py). str keys, JSON values."""
    return tuple(app.tables.add(PartitionedStateTable(  # type: ignore[return-value]
        app, name=name, default=None, partitions=settings.kafka_partitions, key_type=str, beacon=app.tables.beacon))
        for name in TABLES)
