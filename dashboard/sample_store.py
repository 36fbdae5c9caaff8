"""A populated store without running the pipeline: for the dashboard's browser tests and its benchmark.

Scored headlines are synthetic (templates from stream/sample_news.py, random sentiment), and
the trends are computed from them exactly as the windows would (same counts, same means), so a
drill-down from a chart finds the headlines the chart counted.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from sqlalchemy import insert

from riskpulse.models.labels import TOPICS
from riskpulse.stream.sample_news import COMPANIES, NEGATIVE, NEUTRAL, POSITIVE
from riskpulse.store.news import Store
from riskpulse.store.schema import news_tickers, scored_news, trends

CHUNK = 50_000


def populate(store: Store, n_news: int, days: float, end: datetime, seed: int = 0, burst_ticker: str = "TSLA",
             window_s: int = 60, id_prefix: str = "sample") -> dict[str, int]:
    """Writes ``n_news`` scored headlines over ``days`` ending at ``end``, their trends, and one alert."""
    rng = np.random.default_rng(seed)
    span = int(days * 86400)
    t0 = end.timestamp() - span
    ts = np.sort(t0 + rng.random(n_news) * span)
    tickers = np.array(list(COMPANIES))
    tick = rng.choice(tickers, size=n_news)
    has_ticker = rng.random(n_news) < 0.7
    sentiment = rng.choice(np.array(["negative", "neutral", "positive"]), size=n_news, p=[0.2, 0.55, 0.25])
    # the burst: the last ten minutes before `end - 30 min`, 40 negative items on one ticker
    burst_start = end.timestamp() - 1800 - 600
    burst = np.flatnonzero((ts >= burst_start) & (ts < burst_start + 600))[:40]
    tick[burst], has_ticker[burst], sentiment[burst] = burst_ticker, True, "negative"
    topic = rng.choice(np.array(TOPICS), size=n_news)
    p_neg = np.where(sentiment == "negative", rng.uniform(0.6, 0.98, n_news), rng.uniform(0.01, 0.2, n_news))
    p_pos = np.where(sentiment == "positive", rng.uniform(0.6, 0.98, n_news), rng.uniform(0.0, 1.0, n_news) * (1 - p_neg) * 0.3)
    p_neu = np.clip(1 - p_neg - p_pos, 0, 1)
    pools = {"negative": NEGATIVE, "neutral": NEUTRAL, "positive": POSITIVE}
    template_idx = rng.integers(0, 1000, size=n_news)
    frame = pd.DataFrame({
        "id": [f"{id_prefix}-{i}" for i in range(n_news)],
        "headline": [pools[s][k % len(pools[s])].format(c=COMPANIES[t], p=k % 40 + 2) + f" #{i}"
                     for i, (s, t, k) in enumerate(zip(sentiment, tick, template_idx))],
        "source": rng.choice(np.array(["wire-a", "wire-b", "rss-c"]), size=n_news),
        "url": [f"https://news.example/{i}" for i in range(n_news)],
        "published_at": pd.to_datetime(ts, unit="s", utc=True),
        "topic": topic, "topic_confidence": rng.uniform(0.5, 1.0, n_news).round(4),
        "sentiment": sentiment, "p_negative": p_neg.round(4), "p_neutral": p_neu.round(4), "p_positive": p_pos.round(4),
        "sentiment_score": (p_pos - p_neg).round(4),
        "tickers": np.where(has_ticker, tick, ""), "duplicate_of": None, "model_version": "sample",
    })
    frame["scored_at"] = frame["published_at"]
    # every item its own story, but the burst: four stories, each carried by ten outlets
    frame["story_id"], frame["story_copies"], frame["story_sources"] = frame["id"], 1, 1
    frame["lang"], frame["sentiment_status"] = "en", "scored"
    outlets = np.array(["reuters", "bloomberg", "dow jones", "marketwatch", "cnbc", "ft", "wsj", "afp", "benzinga", "ap"])
    for g in range(0, len(burst), 10):
        members = burst[g:g + 10]
        founder = members[0]
        for place, i in enumerate(members):
            frame.at[i, "story_id"], frame.at[i, "story_copies"] = frame.at[founder, "id"], place + 1
            frame.at[i, "story_sources"], frame.at[i, "source"] = place + 1, outlets[place % len(outlets)]
            if place:
                frame.at[i, "headline"] = f"UPDATE {place}-" + frame.at[founder, "headline"]
    naive = {"published_at": frame["published_at"].dt.tz_localize(None), "scored_at": frame["scored_at"].dt.tz_localize(None)}
    rows = frame.assign(**naive) if store.engine.dialect.name == "sqlite" else frame
    _insert(store, scored_news, rows.to_dict("records"))
    tick_rows = rows.loc[has_ticker, ["id", "tickers", "published_at"]].rename(columns={"id": "news_id", "tickers": "ticker"})
    _insert(store, news_tickers, tick_rows.to_dict("records"))

    window = (ts // window_s * window_s).astype("int64")
    frame["window"] = window
    parts = [frame.assign(key_type="topic", key=frame["topic"]),
             frame[has_ticker].assign(key_type="ticker", key=frame.loc[has_ticker, "tickers"])]
    both = pd.concat(parts)
    both["neg"] = (both["sentiment"] == "negative").astype(int)
    both["neu"] = (both["sentiment"] == "neutral").astype(int)
    both["pos"] = (both["sentiment"] == "positive").astype(int)
    grouped = both.groupby(["key_type", "key", "window"]).agg(
        count=("id", "size"), negative=("neg", "sum"), neutral=("neu", "sum"), positive=("pos", "sum"),
        score=("sentiment_score", "mean")).reset_index()
    start = pd.to_datetime(grouped["window"], unit="s", utc=True)
    trend_rows = pd.DataFrame({
        "key_type": grouped["key_type"], "key": grouped["key"], "window_start": start,
        "window_end": start + pd.Timedelta(seconds=window_s), "count": grouped["count"],
        "negative": grouped["negative"], "neutral": grouped["neutral"], "positive": grouped["positive"],
        "mean_score": grouped["score"].round(6), "negative_share": (grouped["negative"] / grouped["count"]).round(6),
        "window_ts": grouped["window"].astype("int64")})
    if store.engine.dialect.name == "sqlite":
        trend_rows["window_start"] = trend_rows["window_start"].dt.tz_localize(None)
        trend_rows["window_end"] = trend_rows["window_end"].dt.tz_localize(None)
    _insert(store, trends, trend_rows.to_dict("records"))
    store.rebuild_trend_buckets()  # written around Store.upsert_trends, which keeps them

    fired = datetime.fromtimestamp(burst_start // window_s * window_s, timezone.utc)
    evidence = [{"id": frame.at[i, "id"], "headline": frame.at[i, "headline"], "url": frame.at[i, "url"],
                 "sentiment_score": float(frame.at[i, "sentiment_score"]), "sentiment_probs": None} for i in burst[:5]]
    store.upsert_alerts([{
        "id": f"{id_prefix}-alert-1", "status": "firing", "severity": "critical", "key_type": "ticker", "key": burst_ticker,
        "window_start": fired.isoformat(), "window_end": (fired + timedelta(minutes=10)).isoformat(),
        "observed": {"negative": float(len(burst)), "z": 7.9}, "baseline": {"negative_mean": 0.4, "negative_sd": 0.7},
        "rule": "default", "summary": f"CRITICAL: negative news on ticker {burst_ticker}: {len(burst)} negative in 10 min",
        "top_headlines": evidence, "fired_at": (fired + timedelta(minutes=1)).isoformat()}])
    return {"scored_news": n_news, "news_tickers": int(has_ticker.sum()), "trends": len(trend_rows), "alerts": 1}


def _insert(store: Store, table: object, rows: list[dict[str, object]]) -> None:
    with store.engine.begin() as conn:
        for i in range(0, len(rows), CHUNK):
            conn.execute(insert(table), rows[i:i + CHUNK])  # type: ignore[arg-type]


if __name__ == "__main__":  # python -m riskpulse.dashboard.sample_store STORE_URL [N] [DAYS]
    import sys

    counts = populate(Store(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5000,
                      float(sys.argv[3]) if len(sys.argv) > 3 else 1.0, datetime.now(timezone.utc))
    print(json.dumps(counts))
