"""The writes of the stream's sinks: scored news, trends and alerts, through SQLAlchemy.

Writes are upserts keyed like the Kafka records, so the at-least-once sink is idempotent.
Indexes (store/schema.py) serve the dashboard's queries: by time, by topic and time, by ticker
and time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import Connection, Table, and_, delete, func, or_, select

from riskpulse.records import Alert

from .engine import create_store_engine
from .schema import BUCKET_S, alerts, news_revisions, news_tickers, scored_news, trend_buckets, trends


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def storable(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` if every database riskpulse supports stores it as given, else ValueError saying why.

    PostgreSQL refuses NUL characters in text and strings longer than their column; SQLite takes
    both. Refusing them here, the same way on both, makes a record's fate independent of the
    database: the sink dead-letters it with this reason (stream/isolation.py) and writes the rest."""
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise ValueError(f"{table.name}.{name} contains a NUL character, which PostgreSQL cannot store")
        length = getattr(table.c[name].type, "length", None)
        if length is not None and len(value) > length:
            raise ValueError(f"{table.name}.{name} is {len(value)} characters, over the column's {length}")
    return row


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str], update: bool) -> None:
    """One statement with the rows as parameters (executemany; SQLAlchemy batches them into
    multi-row INSERTs): compiled once and cached, where .values(rows) compiled a new statement for
    every batch shape - a fifth of the worker's CPU in a profile of the aggregate stage. A row
    whose keys are stored already is updated (``update``) or left as it is."""
    if not rows:
        return
    rows = [storable(table, row) for row in rows]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=keys,
                                          set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt, rows)


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    _insert(conn, table, rows, keys, update=True)


def _insert_new(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert the rows whose keys are not stored yet (history: what was, stays)."""
    _insert(conn, table, rows, keys, update=False)


def _revision(row: dict[str, Any]) -> int:
    return int(row.get("revision") or 1)


def _history_row(row: dict[str, Any], revision: int) -> dict[str, Any]:
    return {"id": row["id"], "revision": revision, **{c: row[c] for c in (
        "headline", "source", "url", "published_at", "tickers", "topic", "sentiment", "sentiment_score",
        "model_version", "scored_at")}}


def _lock_id(key_type: str, key: str) -> int:
    """A stable signed 64-bit id for PostgreSQL's advisory locks (Python's hash() changes per process)."""
    return int.from_bytes(hashlib.blake2b(f"trend_buckets|{key_type}|{key}".encode(), digest_size=8).digest(),
                          "big", signed=True)


def refresh_buckets(conn: Connection, key_type: str, keys: set[str], first_ts: int, last_ts: int) -> None:
    """Recompute the trend_buckets of ``keys`` from their trends rows, for every bucket from the
    one holding ``first_ts`` to the one holding ``last_ts``.

    Recomputed rather than incremented, so a window written twice (the sinks are at-least-once)
    or rewritten with new figures counts once; a bucket left without rows is deleted."""
    if not keys:
        return
    if conn.dialect.name == "postgresql":
        # trends of one key arrive on several partitions (their Kafka key holds the window), so
        # two sinks may recompute one bucket at once: each would miss the other's uncommitted
        # window, and the second insert of the bucket's row would fail on its primary key. A lock
        # per key until commit serialises them; the later one then reads both windows. Sorted:
        # two batches never wait on each other in a circle. (SQLite: the write lock the trends
        # upsert took already serialises the whole transaction.)
        for key in sorted(keys):
            conn.execute(select(func.pg_advisory_xact_lock(_lock_id(key_type, key))))
    lo = first_ts // BUCKET_S * BUCKET_S
    hi = last_ts // BUCKET_S * BUCKET_S + BUCKET_S
    conn.execute(delete(trend_buckets).where(and_(trend_buckets.c.key_type == key_type,
                                                  trend_buckets.c.key.in_(sorted(keys)),
                                                  trend_buckets.c.bucket_ts >= lo, trend_buckets.c.bucket_ts < hi)))
    _insert_sums(conn, and_(trends.c.key_type == key_type, trends.c.key.in_(sorted(keys)), trends.c.window_ts >= lo,
                            trends.c.window_ts < hi))


def _insert_sums(conn: Connection, where: Any = None) -> None:
    """trend_buckets rows summed from the trends rows ``where`` selects, in the database (one
    INSERT ... SELECT: no rows through Python)."""
    bucket = (trends.c.window_ts // BUCKET_S) * BUCKET_S  # one expression: PostgreSQL matches GROUP BY by its parameters
    sums = select(trends.c.key_type, trends.c.key, bucket, func.sum(trends.c.count), func.sum(trends.c.negative),
                  func.sum(trends.c.mean_score * trends.c.count))
    if where is not None:
        sums = sums.where(where)
    conn.execute(trend_buckets.insert().from_select(
        ["key_type", "key", "bucket_ts", "count", "negative", "score_sum"],
        sums.group_by(trends.c.key_type, trends.c.key, bucket)))


class Store:
    def __init__(self, url: str, migrate: bool = True) -> None:
        self.engine = create_store_engine(url, migrate)

    def upsert_scored(self, records: Iterable[dict[str, Any]]) -> int:
        """The latest revision of each item wins, whatever the order records come in (a
        redelivered earlier revision never overwrites a later one); the revisions it replaces go
        to ``news_revisions``."""
        rows: dict[str, dict[str, Any]] = {}
        history: dict[tuple[str, int], dict[str, Any]] = {}
        for r in records:
            published = _ts(r["published_at"])
            row = {
                "id": r["id"], "headline": r["headline"], "source": r.get("source"), "url": r.get("url"),
                "published_at": published, "topic": r["topic"], "topic_confidence": r["topic_confidence"],
                "sentiment": r["sentiment"], "p_negative": r["sentiment_probs"]["negative"],
                "p_neutral": r["sentiment_probs"]["neutral"], "p_positive": r["sentiment_probs"]["positive"],
                "sentiment_score": r["sentiment_score"], "tickers": ",".join(r["tickers"]),
                "duplicate_of": r.get("duplicate_of"), "model_version": r["model_version"], "scored_at": _ts(r["scored_at"]),
                "story_id": r.get("story_id"), "story_copies": r.get("story_copies"), "story_sources": r.get("story_sources"),
                "lang": (r.get("lang") or None) and str(r["lang"])[:20], "sentiment_status": r.get("sentiment_status"),
                "revision": r.get("revision")}
            kept = rows.get(row["id"])
            if kept is not None and _revision(kept) > _revision(row):
                history[(row["id"], _revision(row))] = row
                continue
            if kept is not None and _revision(kept) < _revision(row):
                history[(kept["id"], _revision(kept))] = kept
            rows[row["id"]] = row
        with self.engine.begin() as conn:  # one transaction: a news row is never written without its tickers
            replaced = self._against_stored(conn, rows, history)
            if replaced:  # a correction may name other tickers: the old ones no longer list it
                conn.execute(delete(news_tickers).where(news_tickers.c.news_id.in_(replaced)))
            tick_rows = {(row["id"], t): {"news_id": row["id"], "ticker": t, "published_at": row["published_at"]}
                         for row in rows.values() for t in filter(None, row["tickers"].split(","))}
            _upsert(conn, scored_news, list(rows.values()), ["id"])
            _upsert(conn, news_tickers, list(tick_rows.values()), ["news_id", "ticker"])
            _insert_new(conn, news_revisions, [_history_row(row, rev) for (_, rev), row in history.items()],
                        ["id", "revision"])
        return len(rows)

    @staticmethod
    def _against_stored(conn: Connection, rows: dict[str, dict[str, Any]],
                        history: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
        """Rows older than the stored revision go to the history instead; stored rows a newer
        revision replaces go there too. Returns the ids whose stored row is replaced."""
        if not rows:
            return []
        stored = {i: (rev or 1) for i, rev in conn.execute(
            select(scored_news.c.id, scored_news.c.revision).where(scored_news.c.id.in_(list(rows))))}
        replaced = []
        for news_id, row in list(rows.items()):
            have = stored.get(news_id)
            if have is None or have == _revision(row):
                continue
            if have > _revision(row):
                history[(news_id, _revision(row))] = rows.pop(news_id)
            else:
                replaced.append(news_id)
        if replaced:
            for old in conn.execute(select(scored_news).where(scored_news.c.id.in_(replaced))).mappings():
                history.setdefault((old["id"], old["revision"] or 1), dict(old))
        return replaced

    def upsert_trends(self, records: Iterable[dict[str, Any]]) -> int:
        rows = {}
        for r in records:
            start = _ts(r["window_start"])
            rows[(r["key_type"], r["key"], start)] = {
                "key_type": r["key_type"], "key": r["key"], "window_start": start, "window_end": _ts(r["window_end"]),
                "window_ts": int(start.timestamp()),
                **{k: r[k] for k in ("count", "negative", "neutral", "positive", "mean_score", "negative_share")},
                "stories": r.get("stories"), "negative_stories": r.get("negative_stories"),
                "unscored": r.get("unscored")}
        with self.engine.begin() as conn:
            _upsert(conn, trends, list(rows.values()), ["key_type", "key", "window_start"])
            by_type: dict[str, list[dict[str, Any]]] = {}
            for row in rows.values():
                by_type.setdefault(row["key_type"], []).append(row)
            for key_type, written in by_type.items():
                refresh_buckets(conn, key_type, {r["key"] for r in written},
                                min(r["window_ts"] for r in written), max(r["window_ts"] for r in written))
        return len(rows)

    def upsert_alerts(self, records: Iterable[dict[str, Any]]) -> int:
        """Firing, escalated and resolved records of one alert id become one row.

        The first firing fixes the window and evidence; escalation updates severity and figures;
        a resolved record sets ``resolved_at``. A late redelivery of an older record never
        undoes a newer one, and an acknowledgement is never overwritten.
        """
        n = 0
        with self.engine.begin() as conn:
            for r in records:
                n += 1
                row = conn.execute(select(alerts).where(alerts.c.id == r["id"])).mappings().first()
                last = _ts(r["window_start"])
                if row is None:
                    conn.execute(alerts.insert().values(**storable(alerts, dict(
                        id=r["id"], status=r["status"], severity=r["severity"], key_type=r["key_type"], key=r["key"],
                        window_start=last, window_end=_ts(r["window_end"]), last_window_start=last, rule=r["rule"],
                        summary=r["summary"], observed=json.dumps(r["observed"]), baseline=json.dumps(r["baseline"]),
                        top_headlines=json.dumps(r["top_headlines"]), fired_at=_ts(r["fired_at"]),
                        resolved_at=_ts(r["fired_at"]) if r["status"] == "resolved" else None))))
                    continue
                if _aware(row["last_window_start"]) > last or row["status"] == "resolved":
                    continue  # an older record, redelivered
                changes: dict[str, Any] = {"last_window_start": last}
                if r["status"] == "resolved":
                    changes.update(status="resolved", resolved_at=_ts(r["fired_at"]))
                else:
                    changes.update(severity=r["severity"], summary=r["summary"], observed=json.dumps(r["observed"]),
                                   baseline=json.dumps(r["baseline"]))
                    if r["top_headlines"]:
                        changes["top_headlines"] = json.dumps(r["top_headlines"])
                conn.execute(alerts.update().where(alerts.c.id == r["id"]).values(**storable(alerts, changes)))
        return n

    def acknowledge(self, alert_id: str, user: str, when: datetime) -> bool:
        """Who acknowledged an alert and when; False if there is no such alert."""
        with self.engine.begin() as conn:
            return bool(conn.execute(alerts.update().where(alerts.c.id == alert_id)
                                     .values(**storable(alerts, {"acked_by": user, "acked_at": when}))).rowcount)

    def purge(self, before: datetime) -> None:
        """Retention: drop news and trends older than ``before`` (event time)."""
        with self.engine.begin() as conn:
            conn.execute(delete(news_tickers).where(news_tickers.c.published_at < before))
            conn.execute(delete(scored_news).where(scored_news.c.published_at < before))
            conn.execute(delete(news_revisions).where(news_revisions.c.published_at < before))
            conn.execute(delete(trends).where(trends.c.window_start < before))
            cut = int(before.timestamp())
            conn.execute(delete(trend_buckets).where(trend_buckets.c.bucket_ts < cut // BUCKET_S * BUCKET_S))
            for key_type in ("topic", "ticker"):  # the bucket the cut falls in keeps what is left of it
                keys = {r[0] for r in conn.execute(select(trend_buckets.c.key).distinct().where(and_(
                    trend_buckets.c.key_type == key_type, trend_buckets.c.bucket_ts == cut // BUCKET_S * BUCKET_S)))}
                refresh_buckets(conn, key_type, keys, cut, cut)
            conn.execute(delete(alerts).where(alerts.c.fired_at < before))

    def rebuild_trend_buckets(self) -> None:
        """trend_buckets recomputed from every trends row (after writing trends around Store, as
        the sample store and the migration that adds the table do)."""
        with self.engine.begin() as conn:
            conn.execute(delete(trend_buckets))
            _insert_sums(conn)

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for t in (scored_news, news_tickers, trends, alerts)}

    def recent_alerts(self, horizon_s: float) -> list[Alert]:
        """The alerts incidents are made of (alerts/notifier.py): every firing one, and those whose
        latest window is within ``horizon_s`` of event time of the newest stored alert's (event
        time, so a replay of old news groups as live news does). Each as one record: its first
        window, its latest state and evidence."""
        with self.engine.connect() as conn:
            newest = conn.execute(select(func.max(alerts.c.last_window_start))).scalar_one_or_none()
            if newest is None:
                return []
            since = _aware(newest) - timedelta(seconds=horizon_s)
            rows = conn.execute(select(alerts).where(or_(alerts.c.status == "firing", alerts.c.last_window_start >= since))
                                .order_by(alerts.c.window_start, alerts.c.id)).mappings().all()
        return [Alert(id=r["id"], status=r["status"], severity=r["severity"], key_type=r["key_type"], key=r["key"],
                      window_start=_aware(r["window_start"]), window_end=_aware(r["window_end"]),
                      observed=json.loads(r["observed"]), baseline=json.loads(r["baseline"]), rule=r["rule"],
                      summary=r["summary"], top_headlines=json.loads(r["top_headlines"]),
                      fired_at=_aware(r["fired_at"])) for r in rows]

    def acknowledged(self, alert_ids: Iterable[str]) -> set[str]:
        """Those of ``alert_ids`` someone has acknowledged."""
        ids = list(alert_ids)
        out: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                out |= {r[0] for r in conn.execute(select(alerts.c.id).where(
                    alerts.c.id.in_(ids[start:start + 500]), alerts.c.acked_at.is_not(None)))}
        return out

    def revisions_of(self, news_id: str) -> list[dict[str, Any]]:
        """An item's earlier revisions, oldest first (its latest is its news row)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(news_revisions).where(news_revisions.c.id == news_id)
                                .order_by(news_revisions.c.revision))
            return [dict(r._mapping) for r in rows]

    def story_of(self, story_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """Every stored copy of one story, first published first: its spread over time."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(scored_news).where(scored_news.c.story_id == story_id)
                                .order_by(scored_news.c.published_at, scored_news.c.id).limit(limit))
            return [dict(r._mapping) for r in rows]
