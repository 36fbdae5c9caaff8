"""The dashboard's reads and figures on an empty store and a populated one (SQLite and PostgreSQL, no browser)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from riskpulse.dashboard import figures, queries
from riskpulse.dashboard.sample_store import populate
from riskpulse.store.news import Store


def test_an_empty_store_gives_typed_empty_frames_and_empty_charts(store_url: str) -> None:
    engine = Store(store_url).engine
    end = datetime.now(timezone.utc)
    start = end - timedelta(hours=24)
    assert queries.latest_time(engine) is None
    for keys, top_n in ((None, None), (None, 8), ([], 8), (["TSLA"], None)):
        frame = queries.trend_series(engine, "topic", start, end, keys=keys, top_n=top_n)
        assert frame.empty
        assert frame["count"].dtype == "int64" and frame["net"].dtype == "float64"
        top = figures.busiest(frame, 8)  # raised "Cannot use method 'nlargest' with dtype object"
        assert top.empty
        assert figures.trend_lines(top, queries.alert_rows(engine, start, end, key_type="topic"), "topic").layout.annotations
        assert figures.heatmap(frame).layout.annotations


def test_busiest_keeps_the_keys_with_most_items(store_url: str) -> None:
    store = Store(store_url)
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    populate(store, n_news=3000, days=0.5, end=end)
    frame = queries.trend_series(store.engine, "topic", end - timedelta(hours=12), end, top_n=None)
    totals = frame.groupby("key")["count"].sum()
    top = figures.busiest(frame, 3)
    kept = set(top["key"])
    assert len(kept) == 3 and len(totals) > 3
    assert min(totals[k] for k in kept) >= max(totals[k] for k in totals.index if k not in kept)
    assert (top.groupby("key")["count"].sum() == totals[list(kept)].sort_index()).all()
    assert len(figures.trend_lines(top, queries.alert_rows(store.engine, end - timedelta(hours=12), end), "topic").data) >= 9


def test_long_ranges_read_half_hour_sums_that_equal_the_trends(store_url: str) -> None:
    """7 and 30 days (30-minute and 2-hour points) from trend_buckets, with ranges that start and
    end inside a half hour: the same figures, key by key and point by point, as summing the trends."""
    store = Store(store_url)
    end = datetime(2026, 11, 30, 16, 47, tzinfo=timezone.utc)
    populate(store, n_news=6000, days=8, end=end)
    for days, shift in ((7, 0), (7, 13), (30, 29)):
        start, stop = end - timedelta(days=days, minutes=shift), end - timedelta(minutes=shift)
        assert queries.bucket_seconds(stop - start) % 1800 == 0
        for key_type, keys, top_n in (("topic", None, None), ("ticker", None, 8), ("ticker", ["AAPL", "TSLA"], None)):
            fast = queries.trend_series(store.engine, key_type, start, stop, keys=keys, top_n=top_n)
            exact = queries.trend_series(store.engine, key_type, start, stop, keys=keys, top_n=top_n, rollup=False)
            assert not exact.empty
            assert fast[["bucket", "key", "count", "negative"]].equals(exact[["bucket", "key", "count", "negative"]])
            assert (fast["net"] - exact["net"]).abs().max() < 1e-9
        assert queries.ticker_keys(store.engine, start, stop) == queries.ticker_keys(store.engine, start, stop, search="")
    store.engine.dispose()


def test_the_feed_shows_a_story_once_with_its_copies_and_unread_items_as_unscored(store_url: str) -> None:
    """Copies collapse into their story's first row in the range (copies counted); every copy,
    or one story, on request; an item in a language the model never saw is never 'neutral'."""
    store = Store(store_url)
    t0 = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)

    def item(i: str, minute: int, headline: str, story: str | None, source: str, **extra: object) -> dict[str, object]:
        stamp = (t0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
        return {"id": i, "headline": headline, "source": source, "url": None, "published_at": stamp, "tickers": ["TSLA"],
                "topic": "Legal", "topic_confidence": 0.9, "sentiment": "negative",
                "sentiment_probs": {"negative": 0.8, "neutral": 0.1, "positive": 0.1}, "sentiment_score": -0.7,
                "model_version": "m", "scored_at": stamp, "story_id": story, **extra}

    store.upsert_scored([item("a", 1, "Tesla sued by shareholders", "a", "reuters"),
                         item("b", 2, "UPDATE 1-Tesla sued by shareholders", "a", "bloomberg"),
                         item("c", 3, "BRIEF-Tesla sued by shareholders", "a", "reuters"),
                         item("d", 4, "Acme recalls cars", "d", "afp"),
                         item("old", 5, "A row from before stories", None, "afp"),
                         item("zh", 6, "特斯拉股价暴跌", "zh", "xinhua", lang="zh", sentiment_status="unsupported_language")])
    f = queries.FeedFilter(start=t0, end=t0 + timedelta(hours=1))
    frame, total = queries.news_page(store.engine, f, 0)
    assert total == 4 and dict(zip(frame["id"], frame["copies"])) == {"a": 3, "d": 1, "old": 1, "zh": 1}
    every, total = queries.news_page(store.engine, queries.FeedFilter(start=t0, end=t0 + timedelta(hours=1), every_copy=True), 0)
    assert total == 6
    one, total = queries.news_page(store.engine, queries.FeedFilter(start=t0, end=t0 + timedelta(hours=1), story="a"), 0)
    assert total == 3 and set(one["id"]) == {"a", "b", "c"}
    # the range starts after the story's first copy: the story shows at its first copy inside it
    later, _ = queries.news_page(store.engine, queries.FeedFilter(start=t0 + timedelta(minutes=2), end=t0 + timedelta(hours=1)), 0)
    assert "b" in set(later["id"]) and "c" not in set(later["id"])
    spread = queries.story_spread(store.engine, "a")
    assert spread is not None and (spread["copies"], spread["sources"]) == (3, 2)
    assert (spread["last"] - spread["first"]).total_seconds() == 120
    negative, _ = queries.news_page(store.engine, queries.FeedFilter(start=t0, end=t0 + timedelta(hours=1),
                                                                     sentiments=("negative",)), 0)
    assert "zh" not in set(negative["id"])
    assert dict(zip(frame["id"], frame["sentiment_status"]))["zh"] == "unsupported_language"
    store.engine.dispose()
