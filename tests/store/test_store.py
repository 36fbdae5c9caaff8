"""The store on SQLite and on a real PostgreSQL: migrations, adoption of older stores, processes
migrating together, and the sinks' upserts."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, inspect, select
from sqlalchemy.exc import OperationalError

from riskpulse.store.engine import _baseline_metadata, alembic_config, create_store_engine, current_revision
from riskpulse.store.news import Store
from riskpulse.store.schema import BUCKET_S, metadata, trend_buckets, trends

HEAD = ScriptDirectory.from_config(alembic_config(None)).get_current_head()  # type: ignore[arg-type]


def schema_drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def test_a_new_store_is_migrated_to_the_head_and_matches_the_schema(store_url: str) -> None:
    engine = create_store_engine(store_url)
    assert current_revision(engine) == HEAD
    assert schema_drift(store_url) == []  # a table changed in schema.py without a migration fails here
    engine.dispose()
    again = create_store_engine(store_url)  # a second start finds nothing to do
    assert current_revision(again) == HEAD
    again.dispose()


def test_a_store_made_before_migrations_is_adopted_and_keeps_its_rows(store_url: str) -> None:
    """Stores before migrations: the news tables, and trends without window_ts (added by hand later)."""
    legacy = MetaData()
    old_trends = Table("trends", legacy, Column("key_type", String(8), primary_key=True),
                       Column("key", String(100), primary_key=True),
                       Column("window_start", DateTime(timezone=True), primary_key=True),
                       Column("window_end", DateTime(timezone=True), nullable=False),
                       *[Column(c, Integer, nullable=False) for c in ("count", "negative", "neutral", "positive")],
                       Column("mean_score", Float, nullable=False), Column("negative_share", Float, nullable=False))
    engine = create_engine(store_url)
    baseline = _baseline_metadata()  # the news tables as they were then
    baseline.create_all(engine, tables=[baseline.tables[n] for n in ("scored_news", "news_tickers", "alerts")])
    legacy.create_all(engine)
    start = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(old_trends.insert().values(key_type="topic", key="Macro", window_start=start, window_end=start,
                                                count=3, negative=1, neutral=1, positive=1, mean_score=0.0,
                                                negative_share=0.333))
    engine.dispose()

    store = Store(store_url)
    assert current_revision(store.engine) == HEAD
    with store.engine.connect() as conn:
        assert conn.execute(select(trends.c.window_ts, trends.c.count)).all() == [(int(start.timestamp()), 3)]
        # the half-hour sums are filled in from the trends already stored
        assert conn.execute(select(trend_buckets.c.bucket_ts, trend_buckets.c.count)).all() == [(int(start.timestamp()), 3)]
    assert {"webhook_outbox", "webhook_deliveries", "webhook_endpoints"} <= set(inspect(store.engine).get_table_names())
    assert schema_drift(store_url) == []
    store.engine.dispose()


def test_processes_opening_a_new_store_together_all_migrate_it_once(store_url: str, tmp_path: Path) -> None:
    """A worker, a dashboard and the webhook tools starting at once on an empty store."""
    code = ("import sys; from riskpulse.store.engine import create_store_engine, current_revision; "
            "print(current_revision(create_store_engine(sys.argv[1])))")
    procs = [subprocess.Popen([sys.executable, "-c", code, store_url], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-2000:] for _, err in results]
    assert [out.strip() for out, _ in results] == [HEAD] * 4
    assert schema_drift(store_url) == []


def test_sink_writes_are_upserts_on_each_database(store_url: str) -> None:
    store = Store(store_url)
    scored = {"id": "n1", "headline": "Bank misses", "source": "wire", "url": None,
              "published_at": "2026-11-02T14:00:30Z", "topic": "Macro", "topic_confidence": 0.9,
              "sentiment": "negative", "sentiment_probs": {"negative": 0.8, "neutral": 0.15, "positive": 0.05},
              "sentiment_score": -0.75, "tickers": ["JPM", "XOM"], "duplicate_of": None, "model_version": "m1",
              "scored_at": "2026-11-02T14:00:31Z"}
    trend = {"key_type": "ticker", "key": "JPM", "window_start": "2026-11-02T14:00:00Z",
             "window_end": "2026-11-02T14:01:00Z", "count": 1, "negative": 1, "neutral": 0, "positive": 0,
             "mean_score": -0.75, "negative_share": 1.0}
    alert = {"id": "a1", "status": "firing", "severity": "warning", "key_type": "ticker", "key": "JPM",
             "window_start": "2026-11-02T14:00:00Z", "window_end": "2026-11-02T14:01:00Z", "rule": "default",
             "summary": "JPM negative spike", "observed": {"count": 1}, "baseline": {"mean": 0.1},
             "top_headlines": ["Bank misses"], "fired_at": "2026-11-02T14:01:01Z"}
    for _ in range(2):  # redelivery
        store.upsert_scored([scored, {**scored, "sentiment_score": -0.7}])  # the last write of a batch wins
        store.upsert_trends([trend])
        store.upsert_alerts([alert])
    store.upsert_alerts([{**alert, "status": "resolved", "window_start": "2026-11-02T14:05:00Z",
                          "fired_at": "2026-11-02T14:06:00Z"}])
    store.upsert_alerts([alert])  # an older record, redelivered late, never reopens it
    assert store.counts() == {"scored_news": 1, "news_tickers": 2, "trends": 1, "alerts": 1}
    with store.engine.connect() as conn:
        assert conn.execute(select(metadata.tables["scored_news"].c.sentiment_score)).scalar_one() == -0.7
        assert conn.execute(select(metadata.tables["alerts"].c.status)).scalar_one() == "resolved"
    store.purge(datetime(2026, 11, 3, tzinfo=timezone.utc))
    assert store.counts() == {"scored_news": 0, "news_tickers": 0, "trends": 0, "alerts": 0}
    store.engine.dispose()


def test_the_latest_revision_of_an_item_wins_in_any_order_and_the_earlier_ones_are_its_history(store_url: str) -> None:
    """A correction (the same id, changed content, a higher revision) replaces the item and its
    tickers; a redelivered earlier revision arriving after it never brings it back."""
    store = Store(store_url)
    first = {"id": "w1", "headline": "Acme beats estimates", "source": "wire", "url": None,
             "published_at": "2026-11-02T14:00:30Z", "topic": "Earnings", "topic_confidence": 0.9,
             "sentiment": "positive", "sentiment_probs": {"negative": 0.05, "neutral": 0.15, "positive": 0.8},
             "sentiment_score": 0.75, "tickers": ["ACME"], "duplicate_of": None, "model_version": "m1",
             "scored_at": "2026-11-02T14:00:31Z", "revision": 1}
    second = {**first, "headline": "Acme misses estimates", "sentiment": "negative", "sentiment_score": -0.7,
              "tickers": ["ACME", "ACMEB"], "revision": 2}
    third = {**second, "headline": "Acme misses estimates, cuts outlook", "tickers": ["ACMEB"], "revision": 3}
    store.upsert_scored([first])
    store.upsert_scored([second, first])  # in one batch, an older one after the newer
    store.upsert_scored([first])  # redelivered late
    store.upsert_scored([third])
    with store.engine.connect() as conn:
        row = conn.execute(select(metadata.tables["scored_news"])).mappings().one()
        tickers = conn.execute(select(metadata.tables["news_tickers"].c.ticker)).scalars().all()
    assert (row["headline"], row["revision"], row["sentiment"]) == ("Acme misses estimates, cuts outlook", 3, "negative")
    assert tickers == ["ACMEB"]
    assert [(r["revision"], r["headline"]) for r in store.revisions_of("w1")] == [
        (1, "Acme beats estimates"), (2, "Acme misses estimates")]
    store.purge(datetime(2026, 11, 3, tzinfo=timezone.utc))
    assert store.revisions_of("w1") == []
    store.engine.dispose()


def test_a_sqlite_store_from_session_1_is_upgraded_in_place(tmp_path: Path) -> None:
    """Session-1 stores had no trends.window_ts: the sink and the dashboard need it."""
    import sqlite3

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE trends (key_type VARCHAR(8), key VARCHAR(100), window_start DATETIME, window_end DATETIME,"
                " count INTEGER, negative INTEGER, neutral INTEGER, positive INTEGER, mean_score FLOAT,"
                " negative_share FLOAT, PRIMARY KEY (key_type, key, window_start))")
    con.execute("INSERT INTO trends VALUES ('topic', 'Macro', '2026-11-02 14:00:00.000000', '2026-11-02 14:01:00.000000',"
                " 3, 1, 1, 1, 0.0, 0.333)")
    con.commit()
    con.close()
    store = Store(f"sqlite:///{db}")
    store.upsert_trends([{"key_type": "topic", "key": "Macro", "window_start": "2026-11-02T14:01:00Z",
                          "window_end": "2026-11-02T14:02:00Z", "count": 1, "negative": 0, "neutral": 1, "positive": 0,
                          "mean_score": 0.0, "negative_share": 0.0}])
    con = sqlite3.connect(db)
    start = int(datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc).timestamp())
    assert con.execute("SELECT window_ts FROM trends ORDER BY window_start").fetchall() == [(start,), (start + 60,)]
    assert "ix_trends_type_ts" in {r[1] for r in con.execute("PRAGMA index_list('trends')")}


def test_a_store_that_cannot_be_opened_fails_with_the_databases_error(tmp_path: Path) -> None:
    """What the dashboard shows as "Store unavailable": SQLAlchemy's error, not one from the lock file."""
    with pytest.raises(OperationalError, match="unable to open database file"):
        create_store_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'store.db'}")


def test_with_migrations_off_the_services_refuse_another_revision_and_the_cli_upgrades(
        store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """STORE_MIGRATE=false: a DBA runs `riskpulse store upgrade`; services only check the revision."""
    from riskpulse.cli import main
    from riskpulse.store.engine import StoreNotMigrated

    with pytest.raises(StoreNotMigrated, match="is at schema revision none, this riskpulse needs .*riskpulse store upgrade"):
        create_store_engine(store_url, migrate=False)
    assert main(["store", "current", "--url", store_url]) == 1
    assert main(["store", "upgrade", "--url", store_url]) == 0
    report = capsys.readouterr().out.strip().splitlines()[-1]
    assert f'"revision": "{HEAD}"' in report and '"current": true' in report and "password" not in report
    create_store_engine(store_url, migrate=False).dispose()  # at the head now: opens
    assert main(["store", "current", "--url", store_url]) == 0


def buckets_and_their_trends(store: Store) -> tuple[dict[tuple[str, str, int], tuple[int, int, float]], ...]:
    """trend_buckets as stored, and as summed from the trends rows: they must be equal."""
    with store.engine.connect() as conn:
        kept = {(t, k, ts): (c, n, round(s, 9)) for t, k, ts, c, n, s in conn.execute(select(
            trend_buckets.c.key_type, trend_buckets.c.key, trend_buckets.c.bucket_ts, trend_buckets.c.count,
            trend_buckets.c.negative, trend_buckets.c.score_sum))}
        summed: dict[tuple[str, str, int], tuple[int, int, float]] = {}
        for t, k, ts, c, n, m in conn.execute(select(trends.c.key_type, trends.c.key, trends.c.window_ts, trends.c.count,
                                                     trends.c.negative, trends.c.mean_score)):
            key = (t, k, ts // BUCKET_S * BUCKET_S)
            c0, n0, s0 = summed.get(key, (0, 0, 0.0))
            summed[key] = (c0 + c, n0 + n, s0 + m * c)
    return kept, {key: (c, n, round(s, 9)) for key, (c, n, s) in summed.items()}


def _trend(key_type: str, key: str, minute: int, count: int, negative: int) -> dict[str, object]:
    start = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc) + timedelta(minutes=minute)
    return {"key_type": key_type, "key": key, "window_start": start.isoformat(),
            "window_end": (start + timedelta(minutes=1)).isoformat(), "count": count, "negative": negative,
            "neutral": count - negative, "positive": 0, "mean_score": -negative / count, "negative_share": negative / count}


def test_half_hour_sums_follow_every_trends_write_and_the_retention(store_url: str) -> None:
    """Windows across bucket edges, redelivered, rewritten with new figures, then purged mid-bucket."""
    store = Store(store_url)
    store.upsert_trends([_trend("topic", "Macro", m, 3, 1) for m in range(25, 65)]
                        + [_trend("ticker", "JPM", m, 2, 2) for m in (29, 30, 31)])
    store.upsert_trends([_trend("topic", "Macro", 40, 3, 1)])  # redelivered: counted once
    store.upsert_trends([_trend("topic", "Macro", 41, 9, 0), _trend("topic", "Earnings", 200, 1, 1)])  # rewritten
    kept, summed = buckets_and_their_trends(store)
    assert kept == summed and len(kept) == 6
    store.purge(datetime(2026, 11, 2, 14, 45, tzinfo=timezone.utc))  # inside the bucket of 14:30
    kept, summed = buckets_and_their_trends(store)
    assert kept == summed and min(ts for _, _, ts in kept) == int(datetime(2026, 11, 2, 14, 30, tzinfo=timezone.utc).timestamp())
    store.engine.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.sampled_from(["topic", "ticker"]), st.sampled_from(["A", "B", "C"]),
                                   st.integers(0, 24 * 60), st.integers(1, 20)), min_size=1, max_size=12),
                min_size=1, max_size=6))
def test_any_sequence_of_trends_writes_keeps_the_sums_exact(tmp_path_factory: pytest.TempPathFactory,
                                                            batches: list[list[tuple[str, str, int, int]]]) -> None:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('buckets')}/store.db")
    for batch in batches:
        store.upsert_trends([_trend(t, k, m, c, c // 2) for t, k, m, c in batch])
    kept, summed = buckets_and_their_trends(store)
    assert kept == summed
    store.engine.dispose()


def test_sinks_writing_one_key_at_once_keep_its_sums_exact(store_url: str) -> None:
    """Trends of one key come on several partitions (the window is part of the Kafka key), so two
    workers' sinks write windows of the same half hour at the same moment."""
    import threading

    stores = [Store(store_url), Store(store_url)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sink(n: int) -> None:
        try:
            for minute in range(n, 60, 2):  # the two sinks alternate the windows of two half hours
                barrier.wait(timeout=30)
                stores[n].upsert_trends([_trend("ticker", "JPM", minute, 2 + n, 1)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=sink, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    kept, summed = buckets_and_their_trends(stores[0])
    assert kept == summed and sum(c for c, _, _ in kept.values()) == 30 * 2 + 30 * 3
    for s in stores:
        s.engine.dispose()
