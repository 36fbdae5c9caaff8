"""Pure parts of the pipeline: validation, windows, dedupe, tickers, schemas."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from riskpulse.stream.core import windows
from riskpulse.stream.core.dedupe import dedupe_key, normalise_headline
from riskpulse.records import SCHEMAS, ScoredNews
from riskpulse.stream.schema_files import load, schema_for
from riskpulse.stream.tickers import Watchlist
from riskpulse.stream.core.validation import MAX_VALUE_BYTES, Invalid, dead_letter, parse_news

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("raw,fragment", [
    (None, "tombstone"), (b"\xff", "not UTF-8"), (b"{oops", "not JSON"), (b'"str"', "JSON object"),
    (b'{"headline": ""}', "headline"), (b'{"headline": "  "}', "headline"), (b'{"headline": 5}', "headline"),
    (b'{"body": "no headline"}', "headline"), (json.dumps({"headline": "h" * 1001}).encode(), "headline"),
    (json.dumps({"headline": "ok", "body": "b" * 20_001}).encode(), "body"),
    (b'{"headline": "ok", "schema_version": 2}', "schema_version"),
    (b'{"headline": "ok", "published_at": "2026-01-01 10:00"}', "published_at"),
    (b'{"headline": "ok", "tickers": "AAPL"}', "tickers"), (b"x" * (MAX_VALUE_BYTES + 1), "exceeds"),
])
def test_invalid_news_is_refused_with_a_reason(raw: bytes | None, fragment: str) -> None:
    result = parse_news(raw, NOW)
    assert isinstance(result, Invalid) and fragment in result.reason


def test_valid_news_gets_a_deterministic_id_and_ingest_time() -> None:
    a = parse_news(b'{"headline": " Fed hikes ", "source": "wire", "extra": 1}', NOW)
    b = parse_news(b'{"headline": "Fed hikes", "source": "wire"}', NOW)
    assert not isinstance(a, Invalid) and not isinstance(b, Invalid)
    assert a.id == b.id and a.headline == "Fed hikes" and a.published_at == NOW
    c = parse_news(b'{"headline": "x", "published_at": "2026-01-01T10:00:00+02:00", "id": "mine"}', NOW)
    assert not isinstance(c, Invalid) and c.id == "mine" and c.published_at.hour == 8


def test_dead_letter_truncates_and_keeps_provenance() -> None:
    letter = dead_letter(b"\xff" + b"a" * 10_000, "bad", "news", 3, 42, NOW)
    assert letter.raw_truncated and len(letter.raw_value) <= 4096
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("news", 3, 42)


def scored(i: str, ts: float, sentiment: str = "negative", topic: str = "Macro", tickers: list[str] | None = None) -> ScoredNews:
    score = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}[sentiment]
    return ScoredNews(id=i, headline=f"h{i}", published_at=datetime.fromtimestamp(ts, timezone.utc),
                      tickers=tickers or [], topic=topic, topic_confidence=0.9, sentiment=sentiment,
                      sentiment_probs={"negative": 0.8, "neutral": 0.1, "positive": 0.1}, sentiment_score=score,
                      model_version="m", scored_at=NOW)


def test_window_counters_per_key_and_merged_shards() -> None:
    whole, parts = windows.empty_window(), [windows.empty_window(), windows.empty_window()]
    for n in range(10):
        item = scored(str(n), 120 + n, ["negative", "neutral", "positive"][n % 3], tickers=["AAPL"] if n < 4 else [])
        windows.count_keys(whole, item, windows.keys_of(item))
        windows.count_keys(parts[n % 2], item, windows.keys_of(item))
    merged = windows.empty_window()
    for p in parts:
        windows.merge(merged, p)
    assert windows.trends(120, 60, merged) == windows.trends(120, 60, whole)
    trends = {(t.key_type, t.key): t for t in windows.trends(120, 60, whole)}
    macro = trends[("topic", "Macro")]
    assert (macro.count, macro.negative, macro.neutral, macro.positive) == (10, 4, 3, 3)
    assert trends[("ticker", "AAPL")].count == 4
    assert macro.window_end.timestamp() - macro.window_start.timestamp() == 60
    assert windows.window_start(119.9, 60) == 60


def test_dedupe_key_normalises_headlines() -> None:
    assert normalise_headline("Apple BEATS estimates! https://t.co/xyz") == normalise_headline("apple beats   estimates")
    assert normalise_headline("Café") == "cafe"
    assert dedupe_key("Fed hikes") != dedupe_key("Fed holds")


def test_tickers_from_cashtags_given_and_watchlist(tmp_path) -> None:
    path = tmp_path / "watch.yaml"
    path.write_text("AAPL: [Apple, Apple Inc]\nMSFT: [Microsoft]\n")
    wl = Watchlist.load(path)
    assert wl.extract("Apple and microsoft rally; $nvda too, cost $5", ["xom"]) == ["XOM", "NVDA", "AAPL", "MSFT"]
    assert wl.extract("Pineapple prices") == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("AAPL: Apple\n")
    with pytest.raises(ValueError, match="list of names"):
        Watchlist.load(bad)


def test_shipped_json_schemas_match_the_record_models() -> None:
    for topic in SCHEMAS:
        assert load(topic) == json.loads(json.dumps(schema_for(topic), sort_keys=True)), \
            f"stream/schemas/{topic}.schema.json is stale: run python -m riskpulse.stream.schema_files"


def test_stall_watchdog_flags_only_partitions_with_data_and_no_progress() -> None:
    from types import SimpleNamespace

    from riskpulse.stream.runtime.watchdog import StallWatchdog

    dog = StallWatchdog(stall_s=30)
    ev = lambda p, o: SimpleNamespace(message=SimpleNamespace(topic="news", partition=p, offset=o))  # noqa: E731
    dog.note([ev(0, 10), ev(1, 5), ev(2, 7)], now=100)
    dog.note([ev(1, 9)], now=125)
    highwaters = {("news", 0): 11, ("news", 1): 20, ("news", 2): 50, ("news", 3): 9}
    assert dog.stuck(highwaters, now=120) == []  # nobody stuck long enough yet
    # p0 is caught up, p1 moved recently, p3 was never seen: only p2 is stuck
    assert dog.stuck(highwaters, now=140) == [("news", 2)]
    # a partition never processed is judged from the committed offset; the same one again is no progress
    dog.start_from(("news", 3), committed=4, now=100)
    dog.start_from(("news", 3), committed=4, now=139)
    assert dog.stuck(highwaters, now=140) == [("news", 2), ("news", 3)]
    # a committed offset behind what this worker processed changes nothing (commits lag processing)
    dog.start_from(("news", 0), committed=3, now=139)
    assert dog.progress[("news", 0)] == (10, 100)
    # one past it is progress (the partition's previous owner moved it on): p2 is caught up
    dog.start_from(("news", 2), committed=50, now=141)
    assert dog.stuck(highwaters, now=150) == [("news", 3)]
    # after a rebalance the clocks restart from the same offsets: nobody is stuck for stall_s
    dog.settle(now=200)
    assert dog.stuck(highwaters, now=229) == [] and dog.stuck(highwaters, now=231) == [("news", 1), ("news", 3)]


def test_a_crashed_agent_ends_the_worker_for_its_supervisor(monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    # faust-streaming would leave the agent stopped in a worker that still looks healthy
    import asyncio

    from riskpulse.stream.runtime import supervisor

    def exit_(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(supervisor.os, "_exit", exit_)

    async def aggregate(stream: object) -> None:
        raise TypeError("'NoneType' object is not iterable")

    async def stopping(stream: object) -> None:
        raise asyncio.CancelledError

    with pytest.raises(SystemExit) as ended:
        asyncio.run(supervisor.exit_on_crash(aggregate)(None))
    assert ended.value.code == supervisor.RESTART == 75
    record = next(r for r in caplog.records if "agent crashed" in r.getMessage())
    assert record.agent == "aggregate" and "NoneType" in (record.exc_text or "")  # type: ignore[attr-defined]
    assert supervisor.exit_on_crash(aggregate).__name__ == "aggregate"  # faust names the agent after it
    with pytest.raises(asyncio.CancelledError):  # shutdown and rebalances stay faust's
        asyncio.run(supervisor.exit_on_crash(stopping)(None))


def test_stall_watchdog_sees_an_agent_blocked_inside_a_batch() -> None:
    from riskpulse.stream.runtime.watchdog import StallWatchdog

    dog = StallWatchdog(stall_s=30)
    dog.begin("aggregate", now=100)
    dog.begin("score", now=125)
    dog.end("score")
    assert dog.blocked(now=150) == []
    assert dog.blocked(now=161) == ["aggregate"]  # its output never drained: no input check sees that
    try:
        with dog.batch("sink_trends"):
            raise RuntimeError("cancelled or raised: the span ends either way")
    except RuntimeError:
        pass
    assert "sink_trends" not in dog.busy


def test_group_watch_sees_a_partition_nobody_commits_past_whoever_owns_it() -> None:
    """A partition the group's assignment left to nobody is judged by no worker's own watchdog:
    the group's committed offsets show it from any member."""
    from riskpulse.stream.runtime.watchdog import GroupWatch

    watch = GroupWatch(limit_s=135)
    news0, news1, idle, fresh = ("news", 0), ("news", 1), ("news", 2), ("news", 3)
    ends = {news0: 500, news1: 500, idle: 80, fresh: 40}
    assert watch.stalled({news0: 100, news1: 100, idle: 80, fresh: -1}, ends, now=0) == []
    # news0 moves on; news1 does not; idle has nothing waiting; fresh was never committed by anyone
    assert watch.stalled({news0: 300, news1: 100, idle: 80, fresh: -1}, ends, now=100) == []
    assert watch.stalled({news0: 450, news1: 100, idle: 80, fresh: -1}, ends, now=136) == [news1, fresh]
    watch.settle(200)  # this worker rebalanced: every partition is judged afresh from then
    assert watch.stalled({news0: 499, news1: 100, idle: 80, fresh: -1}, ends, now=300) == []
    assert watch.stalled({news0: 500, news1: 100, idle: 80, fresh: 40}, {**ends, news0: 900}, now=336) == [news1]
    assert watch.stalled({news0: 500, news1: 500, idle: 80, fresh: 40}, {**ends, news0: 900}, now=700) == [news0]


def test_commit_watch_says_once_when_a_commit_stays_behind_processed_records() -> None:
    from riskpulse.stream.runtime.watchdog import CommitWatch

    watch, key, other = CommitWatch(limit_s=45), ("news", 0), ("news", 1)
    assert watch.stuck({key: 284, other: 10}, {key: 617, other: 9}, now=0) == []  # other: nothing past its commit
    assert watch.stuck({key: 284, other: 10}, {key: 617, other: 9}, now=44) == []
    assert watch.stuck({key: 284, other: 10}, {key: 617, other: 9}, now=45) == [key]  # unmoved for STALL_S
    assert watch.stuck({key: 284}, {key: 617}, now=90) == []  # said once per episode
    assert watch.stuck({key: 618}, {key: 617}, now=91) == []  # committed to the end: over
    assert watch.stuck({key: 618}, {key: 700}, now=92) == []  # a new episode starts its own clock
    watch.settle()  # a rebalance: judged afresh
    assert watch.stuck({key: 618}, {key: 700}, now=130) == []
    assert watch.stuck({key: 618}, {key: 700}, now=175) == [key]


def test_commit_watch_says_so_when_a_commit_crawls_behind_processed_records() -> None:
    """A commit that moves, one offset a second, but does not catch up (CI: 400 behind for seven
    minutes) is behind as much as one that stands still; one that keeps up with a moving stream is not."""
    from riskpulse.stream.runtime.watchdog import CommitWatch

    watch, key = CommitWatch(limit_s=45), ("news", 0)
    assert [t for t in range(0, 60) if watch.stuck({key: 198 + t}, {key: 617}, now=t)] == [45]
    healthy = CommitWatch(limit_s=45)
    assert not any(healthy.stuck({key: 100 + 10 * t}, {key: 110 + 10 * t}, now=t) for t in range(0, 300))
