"""Every read the dashboard makes, aggregated in SQL against the store's indexes.

Nothing here pulls a table into pandas: charts get one row per (key, time bucket), the news
feed one page, the drill-down a bounded list. Buckets grow with the time range so a 7-day view
is a few hundred points per key, whatever the window length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
from sqlalchemy import case, exists, or_, and_, func, select, union_all
from sqlalchemy.engine import Engine

from riskpulse.store.schema import BUCKET_S, alerts, news_tickers, scored_news, trend_buckets, trends

FEED_COLUMNS = ["published_at", "headline", "topic", "sentiment", "p_negative", "p_neutral", "p_positive",
                "sentiment_score", "tickers", "source", "lang", "copies", "url", "id", "story_id", "sentiment_status",
                "revision"]
SORTABLE = {"published_at", "sentiment_score", "topic", "sentiment", "p_negative", "source"}
COUNT_CAP = 10_000  # the feed says "10,000+" rather than counting a million rows per page turn


def _frame(rows: Any, columns: list[str]) -> pd.DataFrame:
    """Rows as plain tuples first: pandas probes each SQLAlchemy Row for attributes, which cost
    two thirds of a 7-day chart's read (7,000 rows) in a profile."""
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def bucket_seconds(span: timedelta) -> int:
    """About 100-400 points per key, at whole minutes."""
    for b in (60, 300, 900, 1800, 3600, 7200, 21600, 86400):
        if span.total_seconds() / b <= 400:
            return b
    return 86400


def _aware(value: datetime | str) -> datetime:
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _naive(ts: datetime) -> datetime:
    """The store keeps UTC; SQLite compares naive strings, PostgreSQL aware timestamps."""
    return ts.astimezone(timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def _bound(engine: Engine, ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc) if engine.dialect.name == "postgresql" else _naive(ts)


def latest_time(engine: Engine) -> datetime | None:
    """End of the newest closed window: "now" for the time ranges, so a replay of old news shows."""
    with engine.connect() as conn:
        value = conn.execute(select(trends.c.window_end).where(trends.c.key_type == "topic")
                             .order_by(trends.c.window_ts.desc()).limit(1)).scalar()
        if value is not None:
            return _aware(value)
        value = conn.execute(select(func.max(scored_news.c.published_at))).scalar()
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value + timedelta(minutes=1)


def _sums(key_type: str, start: datetime, end: datetime, b: int, keys: list[str] | None = None,
          search: str | None = None, rollup: bool = True) -> Any:
    """Rows of (ts, key, count, negative, score_sum) covering [start, end) of ``key_type``: the
    whole half hours from trend_buckets, when ``b`` is made of them, and only the partial half
    hours at either end from trends (a 7-day chart then reads ~7,000 rows, not ~200,000)."""
    lo_s, hi_s = int(start.timestamp()), int(end.timestamp())
    lo = -(-lo_s // BUCKET_S) * BUCKET_S  # the first whole bucket
    hi = hi_s // BUCKET_S * BUCKET_S

    def part(table: Any, ts: Any, score_sum: Any, a: int, z: int) -> Any:
        where = [table.c.key_type == key_type, ts >= a, ts < z]
        if keys is not None:
            where.append(table.c.key.in_(keys))
        if search:
            where.append(table.c.key.ilike(f"%{search.strip()}%"))
        return select(ts.label("ts"), table.c.key.label("key"), table.c.count.label("count"),
                      table.c.negative.label("negative"), score_sum.label("score_sum")).where(and_(*where))

    def from_trends(a: int, z: int) -> Any:
        return part(trends, trends.c.window_ts, trends.c.mean_score * trends.c.count, a, z)

    if not rollup or b % BUCKET_S or lo >= hi:
        return from_trends(lo_s, hi_s).subquery()
    whole = part(trend_buckets, trend_buckets.c.bucket_ts, trend_buckets.c.score_sum, lo, hi)
    return union_all(from_trends(lo_s, lo), whole, from_trends(hi, hi_s)).subquery()


def trend_series(engine: Engine, key_type: str, start: datetime, end: datetime, keys: list[str] | None = None,
                 top_n: int | None = 12, rollup: bool = True) -> pd.DataFrame:
    """Per key and bucket: volume, negatives, negative share and count-weighted net sentiment.

    ``keys`` None and ``top_n`` None: every key (the topics, a fixed taxonomy of 20). ``rollup``
    False reads the trends rows only (the reference the half-hour sums are tested against).
    """
    b = bucket_seconds(end - start)
    with engine.connect() as conn:
        if keys is None and top_n is not None:  # the busiest keys of the range
            ranked = _sums(key_type, start, end, b, rollup=rollup)
            keys = [r[0] for r in conn.execute(
                select(ranked.c.key).group_by(ranked.c.key).order_by(func.sum(ranked.c.count).desc(), ranked.c.key)
                .limit(top_n))]
        rows_ = _sums(key_type, start, end, b, keys=keys, rollup=rollup)  # keys []: selects nothing (SQL's empty IN)
        bucket = (rows_.c.ts // b) * b
        rows = conn.execute(
            select(bucket.label("bucket"), rows_.c.key, func.sum(rows_.c.count).label("count"),
                   func.sum(rows_.c.negative).label("negative"), func.sum(rows_.c.score_sum).label("score_sum"))
            .group_by("bucket", rows_.c.key).order_by("bucket", rows_.c.key)).all()
    frame = _frame(rows, ["bucket", "key", "count", "negative", "score_sum"])
    # typed even when empty: an empty range must draw an empty chart, not fail on object dtypes
    frame = frame.astype({"key": "object", "count": "int64", "negative": "int64", "score_sum": "float64"})
    frame["bucket"] = pd.to_datetime(frame["bucket"].astype("int64"), unit="s", utc=True)
    frame["negative_share"] = frame["negative"] / frame["count"].clip(lower=1)
    frame["net"] = frame["score_sum"] / frame["count"].clip(lower=1)
    return frame.drop(columns="score_sum")


def ticker_keys(engine: Engine, start: datetime, end: datetime, search: str | None = None, limit: int = 200) -> list[str]:
    """Tickers with news in the range, busiest first, optionally matching ``search``."""
    sums = _sums("ticker", start, end, bucket_seconds(end - start), search=search)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(sums.c.key).group_by(sums.c.key)
                                           .order_by(func.sum(sums.c.count).desc(), sums.c.key).limit(limit))]


def alert_rows(engine: Engine, start: datetime, end: datetime, key_type: str | None = None,
               status: str | None = None, limit: int = 500) -> pd.DataFrame:
    where = [alerts.c.fired_at >= _bound(engine, start), alerts.c.fired_at < _bound(engine, end)]
    if key_type:
        where.append(alerts.c.key_type == key_type)
    if status:
        where.append(alerts.c.status == status)
    cols = [alerts.c.id, alerts.c.status, alerts.c.severity, alerts.c.key_type, alerts.c.key, alerts.c.window_start,
            alerts.c.window_end, alerts.c.summary, alerts.c.fired_at, alerts.c.resolved_at, alerts.c.acked_by,
            alerts.c.acked_at]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).where(and_(*where)).order_by(alerts.c.fired_at.desc()).limit(limit)).all()
    return _frame(rows, [c.name for c in cols])


def alert_detail(engine: Engine, alert_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    for k in ("observed", "baseline", "top_headlines"):
        out[k] = json.loads(out[k])
    return out


@dataclass(frozen=True)
class FeedFilter:
    start: datetime
    end: datetime
    topics: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    ticker: str | None = None
    text: str | None = None
    sort: tuple[tuple[str, str], ...] = field(default_factory=lambda: (("published_at", "desc"),))
    every_copy: bool = False  # False: one row per story, its first copy in the range
    story: str | None = None  # only this story's copies


def _feed_query(engine: Engine, f: FeedFilter) -> Any:
    n = scored_news.c
    where = [n.published_at >= _bound(engine, f.start), n.published_at < _bound(engine, f.end)]
    if f.topics:
        where.append(n.topic.in_(f.topics))
    if f.sentiments:
        where.append(n.sentiment.in_(f.sentiments))
        where.append(or_(n.sentiment_status.is_(None), n.sentiment_status == "scored"))  # unscored has no sentiment
    for word in (f.text or "").split()[:5]:  # every word must appear
        where.append(n.headline.ilike(f"%{word}%"))
    if f.story:
        where.append(n.story_id == f.story.strip())
    elif not f.every_copy:  # a story shows once, at its first copy in the range (items before stories: each its own)
        earlier = scored_news.alias("earlier")
        e = earlier.c
        where.append(or_(n.story_id.is_(None), ~exists().where(
            e.story_id == n.story_id, e.published_at >= _bound(engine, f.start),
            or_(e.published_at < n.published_at, and_(e.published_at == n.published_at, e.id < n.id)))))
    copies = scored_news.alias("copies")
    n_copies = (select(func.count()).where(copies.c.story_id == n.story_id).scalar_subquery())
    q = select(*(n[c] if c != "copies" else case((n.story_id.is_(None), 1), else_=n_copies).label("copies")
                 for c in FEED_COLUMNS))
    if f.ticker:
        t = news_tickers.c
        q = q.join(news_tickers, and_(t.news_id == n.id, t.ticker == f.ticker.strip().upper(),
                                      t.published_at >= _bound(engine, f.start), t.published_at < _bound(engine, f.end)))
    return q.where(and_(*where))


def _ordered(q: Any, f: FeedFilter) -> Any:
    order = []
    for column, direction in f.sort or (("published_at", "desc"),):
        if column in SORTABLE:
            col = scored_news.c[column]
            order.append(col.desc() if direction == "desc" else col.asc())
    return q.order_by(*order, scored_news.c.id)


def news_page(engine: Engine, f: FeedFilter, page: int, page_size: int = 25) -> tuple[pd.DataFrame, int]:
    """One page of the filtered, sorted feed and the match count (capped at :data:`COUNT_CAP` + 1)."""
    q = _feed_query(engine, f)
    with engine.connect() as conn:
        rows = conn.execute(_ordered(q, f).limit(page_size).offset(page * page_size)).all()
        total = conn.execute(select(func.count()).select_from(q.limit(COUNT_CAP + 1).subquery())).scalar_one()
    return _frame(rows, FEED_COLUMNS), int(total)


def news_export(engine: Engine, f: FeedFilter, limit: int = 100_000) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(_ordered(_feed_query(engine, f), f).limit(limit)).all()
    return _frame(rows, FEED_COLUMNS)


def story_copies(engine: Engine, story_id: str, limit: int = 2000) -> pd.DataFrame:
    """A story's copies in the order they were published: its pick-up."""
    n = scored_news.c
    with engine.connect() as conn:
        rows = conn.execute(select(n.published_at, n.source, n.headline).where(n.story_id == story_id)
                            .order_by(n.published_at, n.id).limit(limit)).all()
    return _frame(rows, ["published_at", "source", "headline"])


def story_spread(engine: Engine, story_id: str) -> dict[str, Any] | None:
    """How one story spread: its copies, distinct sources, and its first and latest copy."""
    n = scored_news.c
    with engine.connect() as conn:
        row = conn.execute(select(func.count(), func.count(func.distinct(n.source)), func.min(n.published_at),
                                  func.max(n.published_at)).where(n.story_id == story_id)).first()
    if row is None or not row[0]:
        return None
    return {"copies": int(row[0]), "sources": int(row[1]), "first": row[2], "last": row[3]}


def headlines_for(engine: Engine, key_type: str, key: str, start: datetime, end: datetime,
                  limit: int = 50) -> pd.DataFrame:
    """Drill-down: the headlines behind one key and time bucket, most negative first."""
    f = FeedFilter(start=start, end=end, topics=(key,) if key_type == "topic" else (),
                   ticker=key if key_type == "ticker" else None, sort=(("sentiment_score", "asc"),))
    with engine.connect() as conn:
        rows = conn.execute(_ordered(_feed_query(engine, f), f).limit(limit)).all()
    return _frame(rows, FEED_COLUMNS)


def topics_in_range(engine: Engine, start: datetime, end: datetime) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(
            select(trends.c.key).where(and_(trends.c.key_type == "topic", trends.c.window_ts >= int(start.timestamp()),
                                            trends.c.window_ts < int(end.timestamp()))).distinct()))


def window_counts(engine: Engine, windows: list[int]) -> pd.DataFrame:
    """Per key and window of ``windows`` (starts, seconds): headlines and negatives, rows only where
    a key had news. What the movers are ranked on (dashboard/movers.py)."""
    cols = ["key_type", "key", "window_ts", "count", "negative"]
    if not windows:
        return pd.DataFrame(columns=cols)
    with engine.connect() as conn:
        rows = conn.execute(select(trends.c.key_type, trends.c.key, trends.c.window_ts, trends.c.count,
                                   trends.c.negative)
                            .where(and_(trends.c.window_ts >= windows[0], trends.c.window_ts <= windows[-1]))).all()
    frame = _frame(rows, cols)
    return frame.astype({"key_type": "object", "key": "object", "window_ts": "int64", "count": "int64",
                         "negative": "int64"})


def firing_keys(engine: Engine, since: datetime) -> dict[tuple[str, str], str]:
    """(key_type, key) -> the most severe firing alert fired since ``since``."""
    with engine.connect() as conn:
        rows = conn.execute(select(alerts.c.key_type, alerts.c.key, alerts.c.severity)
                            .where(and_(alerts.c.status == "firing", alerts.c.fired_at >= _bound(engine, since)))).all()
    out: dict[tuple[str, str], str] = {}
    for key_type, key, severity in rows:
        if out.get((key_type, key)) != "critical":
            out[(key_type, key)] = severity
    return out


def fired_figures(engine: Engine, since: datetime) -> dict[tuple[str, str], dict[str, float]]:
    """(key_type, key) -> what the detector observed when the key's latest firing alert fired
    (negatives, z, span): the figures behind a firing row whose recent windows are quiet."""
    with engine.connect() as conn:
        rows = conn.execute(select(alerts.c.key_type, alerts.c.key, alerts.c.observed)
                            .where(and_(alerts.c.status == "firing", alerts.c.fired_at >= _bound(engine, since)))
                            .order_by(alerts.c.fired_at)).all()
    out = {}
    for key_type, key, observed in rows:
        try:
            out[(key_type, key)] = {k: float(v) for k, v in json.loads(observed).items()}
        except (ValueError, TypeError, AttributeError):
            continue  # a row the detector did not write: its row shows the recent windows alone
    return out


def key_series(engine: Engine, key_type: str, key: str, start: datetime, end: datetime) -> pd.DataFrame:
    """One key's headlines and negatives per bucket of the range, every bucket present (zeros
    where it had no news: a quiet window is part of its baseline)."""
    b = bucket_seconds(end - start)
    first, last = (int(start.timestamp()) // b) * b, int(end.timestamp())
    bucket = (trends.c.window_ts // b) * b
    with engine.connect() as conn:
        rows = conn.execute(select(bucket.label("bucket"), func.sum(trends.c.count), func.sum(trends.c.negative))
                            .where(and_(trends.c.key_type == key_type, trends.c.key == key,
                                        trends.c.window_ts >= first, trends.c.window_ts < last))
                            .group_by("bucket")).all()
    found = {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
    buckets = list(range(first, last, b))
    return pd.DataFrame({"window_ts": buckets, "count": [found.get(w, (0, 0))[0] for w in buckets],
                         "negative": [found.get(w, (0, 0))[1] for w in buckets]})
