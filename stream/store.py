"""The store the dashboard reads: scored news and trends, through SQLAlchemy.

SQLite (WAL) is the embedded default, PostgreSQL the deployed one (``RISKPULSE_STORE_URL``).
Writes are upserts keyed like the Kafka records, so the at-least-once sink is idempotent.
Indexes serve the dashboard's queries: by time, by topic and time, by ticker and time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import (Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text, create_engine, delete,
                        event, func, select)
from sqlalchemy.engine import Engine

metadata = MetaData()

scored_news = Table(
    "scored_news", metadata,
    Column("id", String(200), primary_key=True),
    Column("headline", Text, nullable=False),
    Column("source", String(200)),
    Column("url", Text),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("topic_confidence", Float, nullable=False),
    Column("sentiment", String(16), nullable=False),
    Column("p_negative", Float, nullable=False),
    Column("p_neutral", Float, nullable=False),
    Column("p_positive", Float, nullable=False),
    Column("sentiment_score", Float, nullable=False),
    Column("tickers", Text, nullable=False, default=""),  # comma-separated, for display
    Column("duplicate_of", String(200)),
    Column("model_version", String(100), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Index("ix_scored_news_published_at", "published_at"),
    Index("ix_scored_news_topic_time", "topic", "published_at"),
    Index("ix_scored_news_sentiment_time", "sentiment", "published_at"),
)

news_tickers = Table(
    "news_tickers", metadata,
    Column("news_id", String(200), primary_key=True),
    Column("ticker", String(20), primary_key=True),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Index("ix_news_tickers_ticker_time", "ticker", "published_at"),
)

trends = Table(
    "trends", metadata,
    Column("key_type", String(8), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
    Column("negative", Integer, nullable=False),
    Column("neutral", Integer, nullable=False),
    Column("positive", Integer, nullable=False),
    Column("mean_score", Float, nullable=False),
    Column("negative_share", Float, nullable=False),
    Index("ix_trends_type_time", "key_type", "window_start"),
)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def create_store_engine(url: str) -> Engine:
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _: Any) -> None:  # WAL: the dashboard reads while the sink writes
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()
    metadata.create_all(engine)
    return engine


def _upsert(engine: Engine, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if not rows:
        return
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(rows)
    stmt = stmt.on_conflict_do_update(index_elements=keys,
                                      set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})
    with engine.begin() as conn:
        conn.execute(stmt)


class Store:
    def __init__(self, url: str) -> None:
        self.engine = create_store_engine(url)

    def upsert_scored(self, records: Iterable[dict[str, Any]]) -> int:
        rows, tick_rows = {}, {}
        for r in records:
            published = _ts(r["published_at"])
            rows[r["id"]] = {
                "id": r["id"], "headline": r["headline"], "source": r.get("source"), "url": r.get("url"),
                "published_at": published, "topic": r["topic"], "topic_confidence": r["topic_confidence"],
                "sentiment": r["sentiment"], "p_negative": r["sentiment_probs"]["negative"],
                "p_neutral": r["sentiment_probs"]["neutral"], "p_positive": r["sentiment_probs"]["positive"],
                "sentiment_score": r["sentiment_score"], "tickers": ",".join(r["tickers"]),
                "duplicate_of": r.get("duplicate_of"), "model_version": r["model_version"], "scored_at": _ts(r["scored_at"])}
            for t in r["tickers"]:
                tick_rows[(r["id"], t)] = {"news_id": r["id"], "ticker": t, "published_at": published}
        _upsert(self.engine, scored_news, list(rows.values()), ["id"])
        _upsert(self.engine, news_tickers, list(tick_rows.values()), ["news_id", "ticker"])
        return len(rows)

    def upsert_trends(self, records: Iterable[dict[str, Any]]) -> int:
        rows = {}
        for r in records:
            start = _ts(r["window_start"])
            rows[(r["key_type"], r["key"], start)] = {
                "key_type": r["key_type"], "key": r["key"], "window_start": start, "window_end": _ts(r["window_end"]),
                **{k: r[k] for k in ("count", "negative", "neutral", "positive", "mean_score", "negative_share")}}
        _upsert(self.engine, trends, list(rows.values()), ["key_type", "key", "window_start"])
        return len(rows)

    def purge(self, before: datetime) -> None:
        """Retention: drop news and trends older than ``before`` (event time)."""
        with self.engine.begin() as conn:
            conn.execute(delete(news_tickers).where(news_tickers.c.published_at < before))
            conn.execute(delete(scored_news).where(scored_news.c.published_at < before))
            conn.execute(delete(trends).where(trends.c.window_start < before))

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for t in (scored_news, news_tickers, trends)}
