"""The aggregation core without a broker: exact counts for any interleaving, clock and crash point."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from riskpulse.alerts.detector import Detector
from riskpulse.alerts.rules import Rules
from riskpulse.stream.core.aggregator import KEY_SHARDS, MAX_KEYS_PER_SHARD, Aggregator, AggregatorConfig, StateFull
from riskpulse.stream.core.backtest import run_backtest
from riskpulse.stream.core.event_time import EventTimePolicy, judge
from riskpulse.stream.core.state import Overlay
from riskpulse.stream.core.watermark import PartitionClock
from riskpulse.records import ScoredNews

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
T0 = 1_780_000_000
DETECTOR = Detector(Rules.load(None), 60)


def scored(i: str, ts: float, sentiment: str = "negative", topic: str = "Macro", tickers: list[str] | None = None,
           headline: str | None = None) -> ScoredNews:
    score = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}[sentiment]
    return ScoredNews(id=i, headline=headline or f"headline {i}", published_at=datetime.fromtimestamp(ts, timezone.utc),
                      tickers=tickers or [], topic=topic, topic_confidence=0.9, sentiment=sentiment,
                      sentiment_probs={"negative": 0.8, "neutral": 0.1, "positive": 0.1}, sentiment_score=score,
                      model_version="m", scored_at=NOW)


class LoggedStore(dict):
    """A dict that remembers the order of writes, so a crash can keep only a prefix of them."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.log.append((key, value))
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.log.append((key, None))
        super().__delitem__(key)

    def prefix(self, n: int) -> "LoggedStore":
        out = LoggedStore()
        for key, value in self.log[:n]:
            if value is None:
                out.pop(key, None)
                out.log.append((key, None))
            else:
                out[key] = value
        return out


def crash_in_flush(store: LoggedStore, state: Overlay, kept: int) -> None:
    """kill -9 inside ``state``'s flush: ``store`` keeps that many of the batch's writes, in order."""
    before = len(store.log)
    state.flush()
    survivor = store.prefix(before + min(kept, len(store.log) - before))
    store.clear()
    store.log[:] = []
    for key, value in survivor.log:
        if value is None:
            store.pop(key, None)
        else:
            dict.__setitem__(store, key, value)
        store.log.append((key, value))


def trend_rows(trends: list[Any]) -> dict[tuple[str, str, str], tuple[int, int, int, int]]:
    """Upsert semantics: the last record per (key, window) wins, as in the store."""
    rows = {}
    for t in trends:
        rows[(t.key_type, t.key, t.window_start.isoformat())] = (t.count, t.negative, t.neutral, t.positive)
    return rows


def feed(n_partitions: int, per_partition: int, seed: int, jitter_s: int = 5) -> list[list[ScoredNews]]:
    """Per partition: items in event-time order but for a jitter below the lateness, over ~20 minutes."""
    rng = random.Random(seed)
    parts = []
    for p in range(n_partitions):
        items = []
        for k in range(per_partition):
            ts = T0 + k * 1200 / per_partition + rng.uniform(0, jitter_s)
            sentiment = rng.choice(["negative", "neutral", "positive"])
            tickers = rng.sample(["AAPL", "TSLA", "XOM", "JPM"], rng.randint(0, 2))
            items.append(scored(f"p{p}-{k}", ts, sentiment, rng.choice(["Macro", "M&A", "Earnings"]), tickers))
        parts.append(items)
    return parts


def run(store: LoggedStore, arrivals: list[tuple[int, int, ScoredNews]], batch: int, start: int = 0,
        crash_at: tuple[int, int] | None = None, config: AggregatorConfig | None = None) -> tuple[list[Any], list[Any], int]:
    """Process ``arrivals[start:]`` in batches like the agent does; returns (trends, alerts, committed position).

    ``crash_at=(batch_index, writes_kept)`` stops inside that batch's flush, keeping that many of its writes.
    """
    cfg = config or AggregatorConfig(window_s=60, lateness_s=10, idle_s=1e9, max_skew_s=math.inf)  # wall clock 0
    agg = Aggregator(Overlay(store), cfg, DETECTOR, now_wall=0.0, partitions=range(4))
    trends: list[Any] = []
    alerts: list[Any] = []
    pos, b = start, 0
    while pos < len(arrivals):
        state = Overlay(store)
        agg.state = state
        for partition, offset, item in arrivals[pos:pos + batch]:
            with state.savepoint():
                agg.add(item, partition, offset, now_wall=0.0)
        while (close := agg.next_close(0.0)) is not None:
            trends += close.trends  # published and acknowledged
            alerts += close.alerts
            agg.commit(close)
        agg.end_batch()
        if crash_at is not None and crash_at[0] == b:
            crash_in_flush(store, state, crash_at[1])
            return trends, alerts, pos
        state.flush()
        pos += batch
        b += 1
    while (close := agg.next_close(0.0, until=math.inf)) is not None:  # the end of the test stream
        trends += close.trends
        alerts += close.alerts
        agg.commit(close)
    agg.end_batch()
    return trends, alerts, pos


def run_with_crashes(arrivals: list[tuple[int, int, ScoredNews]], batch: int, crash_batch: int, kept: int,
                     committed_back: int, crashes: int) -> tuple[list[Any], list[Any]]:
    """``crashes`` kills -9 mid-flush (the store keeps ``kept`` writes of the batch), each restart
    from an older committed offset, then a run to the end; every trend and alert published."""
    store = LoggedStore()
    trends: list[Any] = []
    alerts: list[Any] = []
    start = 0
    for n in range(crashes):
        t, a, pos = run(store, arrivals, batch, start=start, crash_at=(crash_batch + n, kept))
        trends += t
        alerts += a
        # offsets are committed only for batches whose writes were all flushed: some before the crash
        start = max(start, pos - batch * committed_back)
    t, a, _ = run(store, arrivals, batch, start=start)
    return trends + t, alerts + a


def interleave(parts: list[list[ScoredNews]], rng: random.Random) -> list[tuple[int, int, ScoredNews]]:
    """Any merge of the partitions that keeps each partition's own order (as the internal topic does)."""
    cursors = [0] * len(parts)
    out = []
    while any(c < len(p) for c, p in zip(cursors, parts)):
        p = rng.choice([i for i, part in enumerate(parts) if cursors[i] < len(part)])
        out.append((p, cursors[p], parts[p][cursors[p]]))
        cursors[p] += 1
    return out


def alert_keys(alerts: list[Any]) -> set[tuple[str, str, str, str]]:
    return {(a.id, a.status, a.severity, a.window_start.isoformat()) for a in alerts}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 80))
def test_any_interleaving_of_partitions_counts_every_item_as_the_backtest(seed: int, batch: int) -> None:
    """Partitions drift apart by up to the whole feed in the single aggregation input: nothing is late."""
    parts = feed(4, 60, seed)
    arrivals = interleave(parts, random.Random(seed))
    trends, alerts, _ = run(LoggedStore(), arrivals, batch)
    expected = run_backtest([i for p in parts for i in p], DETECTOR, 60)
    assert trend_rows(trends) == trend_rows(expected.trends)
    assert alert_keys(alerts) == alert_keys(expected.alerts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 40), crash_batch=st.integers(0, 30),
       kept=st.integers(0, 400), committed_back=st.integers(0, 5), crashes=st.integers(1, 3))
def test_a_crash_at_any_write_then_redelivery_gives_the_clean_run(seed: int, batch: int, crash_batch: int, kept: int,
                                                                committed_back: int, crashes: int) -> None:
    """kill -9 mid-flush (the store keeps a prefix of the writes), restart from an older committed offset."""
    parts = feed(4, 40, seed)
    arrivals = interleave(parts, random.Random(seed))
    trends, alerts = run_with_crashes(arrivals, batch, crash_batch, kept, committed_back, crashes)
    expected = run_backtest([i for p in parts for i in p], DETECTOR, 60)
    assert trend_rows(trends) == trend_rows(expected.trends)
    assert alert_keys(alerts) == alert_keys(expected.alerts)


def test_an_item_resent_at_another_offset_counts_once_and_a_republished_story_is_a_duplicate() -> None:
    agg = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    assert agg.add(scored("a", T0, tickers=["AAPL"]), 0, 1, 0.0).status == "counted"
    assert agg.add(scored("a", T0, tickers=["AAPL"]), 1, 7, 0.0).status == "resent"
    assert agg.add(scored("a", T0, tickers=["AAPL"]), 0, 1, 0.0).status == "counted"  # redelivered: shards skip it
    dup = agg.add(scored("b", T0 + 30, headline="HEADLINE A!! https://t.co/x"), 2, 3, 0.0)
    assert dup.status == "duplicate" and dup.item.duplicate_of == "a"
    later = agg.add(scored("c", T0 + 2 * 86_400, headline="headline a"), 2, 4, 0.0)
    assert later.status == "counted"  # the same words past the dedupe horizon are news again
    close = agg.next_close(0.0, until=math.inf)
    assert close is not None
    assert {(t.key_type, t.key): t.count for t in close.trends} == {("topic", "Macro"): 1, ("ticker", "AAPL"): 1}


def test_a_record_redelivered_after_its_window_closed_is_neither_counted_again_nor_late() -> None:
    """A restart re-reads uncommitted input; some of it belongs to windows closed since. Those
    items were counted the first time: calling them late (a warning each, the late counter) sent
    operators after a loss that did not happen (103 per run in the kill -9 test)."""
    agg = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    assert agg.add(scored("a", T0, tickers=["AAPL"]), 0, 1, 0.0).status == "counted"
    close = agg.next_close(0.0, until=T0 + 600)
    assert close is not None
    agg.commit(close)
    assert agg.add(scored("a", T0, tickers=["AAPL"]), 0, 1, 0.0).status == "redelivered"
    assert agg.add(scored("z", T0 + 1, headline="another story"), 0, 2, 0.0).status == "late"  # new: truly late


def test_a_lagging_partition_holds_the_watermark_until_it_goes_idle() -> None:
    w = T0 + 1000.0  # wall clock: the feed is a replay a little behind it
    clock = PartitionClock.restore(None, idle_s=5, max_skew_s=300, now_wall=w, expected=[0, 1])
    clock.observe(0, T0 + 600, now_wall=w)
    assert clock.watermark(w + 1) == -math.inf  # partition 1 not seen yet, not idle yet
    clock.observe(1, T0 + 10, now_wall=w + 2)
    assert clock.watermark(w + 3) == T0 + 10  # the slow partition decides
    assert clock.watermark(w + 6.5) == T0 + 10  # partition 0 went idle; partition 1 still holds
    assert clock.watermark(w + 7.5) == T0 + 600 + 5.5  # both idle: event time moves on with the wall clock


def test_a_broken_clock_can_neither_move_nor_keep_the_watermark_in_the_future() -> None:
    clock = PartitionClock.restore(None, idle_s=5, max_skew_s=300, now_wall=T0, expected=[0])
    clock.observe(0, T0 + 10 * 365 * 86400, now_wall=T0)
    assert clock.watermark(T0) == T0 + 300
    store = {"wm": {"progress": {"0": T0 + 1e9}, "closed": T0 + 1e9, "open": []}}
    agg = Aggregator(Overlay(store), AggregatorConfig(), DETECTOR, now_wall=T0, partitions=[0])
    assert agg.closed == T0 + 300 and agg.clock.progress[0] == T0 + 300  # repaired, loudly
    assert agg.add(scored("x", T0 + 390), 0, 1, now_wall=T0 + 400).status == "counted"  # counting goes on


def test_event_time_policy_clamps_or_dead_letters_far_dates() -> None:
    policy = EventTimePolicy(max_skew_s=300, max_age_s=86400 * 365)
    broker = NOW.replace(minute=1)
    ok = judge(NOW, broker, NOW, policy)
    assert ok.published_at == NOW and ok.original is None and ok.refused is None
    future = datetime(2099, 1, 1, tzinfo=timezone.utc)
    clamped = judge(future, broker, NOW, policy)
    assert clamped.published_at == broker and clamped.original == future
    epoch = judge(datetime(1970, 1, 1, tzinfo=timezone.utc), broker, NOW, policy)
    assert epoch.published_at == broker and epoch.original is not None
    bad_broker = judge(future, datetime(2098, 1, 1, tzinfo=timezone.utc), NOW, policy)
    assert bad_broker.published_at.timestamp() == NOW.timestamp() + 300  # the producer's clock is bounded too
    refused = judge(future, broker, NOW, EventTimePolicy(on_violation="dead-letter"))
    assert refused.refused and "ahead of the clock" in refused.refused


def test_a_cashtag_flood_is_capped_and_a_key_flood_is_refused_not_fatal() -> None:
    agg = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    agg.add(scored("flood", T0, tickers=[f"T{i}" for i in range(300)]), 0, 0, 0.0)
    close = agg.next_close(0.0, until=math.inf)
    assert close is not None and len(close.trends) == 21  # the topic and 20 tickers
    agg2 = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    n = 0
    with pytest.raises(StateFull):
        for n in range(KEY_SHARDS * MAX_KEYS_PER_SHARD):
            agg2.add(scored(f"i{n}", T0, tickers=[f"K{n}"]), 0, n, 0.0)
    assert n > MAX_KEYS_PER_SHARD  # many keys fit before one shard is full


def test_a_savepoint_undoes_a_failed_item_and_flush_keeps_the_order_of_last_writes() -> None:
    base: dict[str, Any] = {"a": 1}
    state = Overlay(base)
    state.set("b", 2)
    with pytest.raises(ValueError):
        with state.savepoint():
            state.set("a", 10)
            state.set("c", 3)
            raise ValueError("bad item")
    state.set("d", 4)
    state.set("b", 5)
    logged = LoggedStore()
    logged.update(base)
    state.base = logged
    state.flush()
    assert logged.log == [("d", 4), ("b", 5)] and logged["a"] == 1 and "c" not in logged


def test_early_writes_flush_first_unless_written_again_later_and_a_rollback_restores_which() -> None:
    """An index's listing goes out before the values it lists (stream/core/time_index.py), so a
    crash that keeps a prefix of the flush never keeps a value its index does not list."""
    state = Overlay({})
    state.set("s|x", 1)
    state.set("index", ["x"], early=True)
    state.set("s|x", 2)
    state.set("pruned", [], early=True)
    state.set("pruned", ["y"])  # written again without it: in the order of last writes
    with pytest.raises(ValueError):
        with state.savepoint():
            state.set("pruned", ["z"], early=True)
            state.set("index", None)
            raise ValueError("bad item")
    logged = LoggedStore()
    state.base = logged
    state.flush()
    assert logged.log == [("index", ["x"]), ("s|x", 2), ("pruned", ["y"])]


def test_dedupe_entries_and_silent_keys_are_pruned() -> None:
    store: dict[str, Any] = {}
    cfg = AggregatorConfig(dedupe_horizon_s=3600, key_ttl_s=86400)
    agg = Aggregator(Overlay(store), cfg, DETECTOR, now_wall=0.0)
    agg.add(scored("old", T0, tickers=["OLD"]), 0, 0, 0.0)
    for day in range(1, 4):  # three more days of another ticker
        agg.add(scored(f"n{day}", T0 + day * 86400, tickers=["NEW"]), 0, day, 0.0)
    while (close := agg.next_close(0.0, until=math.inf)) is not None:
        agg.commit(close)
    agg.end_batch()
    agg.state.flush()
    assert not any(k.startswith("d|") and store[k]["id"] == "old" for k in store)
    assert "k|ticker|OLD" not in store and "k|ticker|NEW" in store
    assert not any(k.startswith("w|") for k in store)  # closed windows' counters are gone


def test_an_instance_knows_when_another_worker_wrote_the_state_since() -> None:
    store: dict[str, Any] = {}
    mine = Aggregator(Overlay(store), AggregatorConfig(), DETECTOR, now_wall=0.0)
    mine.add(scored("a", T0), 0, 0, 0.0)
    mine.end_batch()
    mine.state.flush()
    assert mine.is_current(Overlay(store))
    other = Aggregator(Overlay(store), AggregatorConfig(), DETECTOR, now_wall=0.0)  # the partition moved
    other.add(scored("b", T0 + 1), 1, 0, 0.0)
    other.end_batch()
    other.state.flush()
    assert not mine.is_current(Overlay(store)) and other.is_current(Overlay(store))


def test_a_partition_is_idle_only_once_its_scorer_confirms_it_read_everything() -> None:
    """Two workers: one scorer works through partition 0's big fetch while partition 1 waits its turn."""
    w = T0 + 1000.0
    clock = PartitionClock.restore(None, idle_s=5, max_skew_s=300, now_wall=w, expected=[0, 1], confirm=True)
    clock.observe(0, T0 + 10, now_wall=w, behind=0)
    clock.observe(1, T0 + 5, now_wall=w, behind=120)  # 120 more of partition 1 are coming
    clock.observe(0, T0 + 600, now_wall=w + 30)
    assert clock.watermark(w + 30) == T0 + 5  # silent for 30 s, still holds: it said more were behind
    clock.heard(1, w + 31, behind=0)  # its scorer caught up (its last records were dead-lettered)
    assert clock.watermark(w + 31) == T0 + 600  # partition 1 is idle now; 0 is not confirmed
    clock.observe(1, T0 + 20, now_wall=w + 32, behind=0)
    assert clock.watermark(w + 60) == T0 + 20  # silence without a heartbeat after the item: not idle
    clock.heard(0, w + 61)
    clock.heard(1, w + 61)
    assert clock.watermark(w + 62) == T0 + 600 + (w + 62 - (w + 32))  # both confirmed and silent


def test_without_confirmation_silence_alone_makes_a_partition_idle() -> None:
    w = T0 + 1000.0
    clock = PartitionClock.restore(None, idle_s=5, max_skew_s=300, now_wall=w, expected=[0, 1])
    clock.observe(0, T0 + 600, now_wall=w)
    clock.observe(1, T0 + 5, now_wall=w, behind=3)
    assert clock.watermark(w + 10) == T0 + 5
    clock.heard(1, w + 11, behind=0)
    assert clock.watermark(w + 11) == T0 + 600 + 11

def test_a_configured_partition_nobody_reports_on_holds_only_for_a_grace() -> None:
    """RISKPULSE_KAFKA_PARTITIONS=4 on a news topic that has 1: windows must still close."""
    w = T0 + 1000.0
    clock = PartitionClock.restore(None, idle_s=5, max_skew_s=300, now_wall=w, expected=[0, 1, 2, 3], confirm=True)
    clock.observe(0, T0 + 600, now_wall=w + 1)
    clock.heard(0, w + 2)
    assert clock.watermark(w + 20) == -math.inf  # 1-3 not heard of yet: held
    clock.heard(0, w + 30)  # partition 0's scorer heartbeats every second
    assert clock.watermark(w + 31) == T0 + 600 + (w + 31 - (w + 1))  # after 6 x IDLE_S they no longer hold


def test_a_scorer_that_goes_quiet_no_longer_vouches_for_its_partition() -> None:
    """A worker killed under load: its last heartbeat said "caught up", then nothing more, while
    its partition's records wait for the next owner. They must not be late when they come."""
    w = T0 + 1000.0
    clock = PartitionClock.restore(None, idle_s=5, max_skew_s=300, now_wall=w, expected=[0, 1], confirm=True)
    clock.observe(0, T0 + 10, now_wall=w)
    clock.observe(1, T0 + 10, now_wall=w)
    clock.heard(1, w + 1, behind=0)  # the last word of partition 1's scorer: caught up; then it dies
    for second in range(1, 7):  # partition 0 keeps flowing
        clock.observe(0, T0 + 10 + second, now_wall=w + second)
    assert clock.watermark(w + 6) == T0 + 10  # quiet 6 s, but its word is 5 s old: not idle
    for second in range(7, 60):
        clock.observe(0, T0 + 10 + second, now_wall=w + second)
    assert clock.watermark(w + 59) == T0 + 10  # nearly a minute without a word: its partition holds again
    clock.heard(1, w + 60, behind=40)  # the next owner: a backlog of 40
    clock.observe(1, T0 + 12, now_wall=w + 61)  # ... not late
    assert clock.watermark(w + 61) == T0 + 12


def test_a_scorer_killed_right_after_its_heartbeat_never_lets_its_partition_turn_idle() -> None:
    """Its last item, then its heartbeat ("caught up") a moment later, then kill -9. Idleness
    (5 s of silence) must not come before its word goes stale: the records waiting for the next
    owner would be counted late (seen at a 30x replay: a minute of event time run past them)."""
    w = T0 + 1000.0
    clock = PartitionClock.restore(None, idle_s=5, max_skew_s=300, now_wall=w, expected=[0, 1], confirm=True)
    clock.observe(1, T0 + 10, now_wall=w)
    clock.heard(1, w + 0.9, behind=0)  # then it dies
    for tenth in range(1, 80):  # partition 0 flows on, 30 s of event time per wall second
        clock.observe(0, T0 + 10 + 3 * tenth, now_wall=w + tenth / 10)
        clock.heard(0, w + tenth / 10)
        assert clock.watermark(w + tenth / 10) <= T0 + 10, tenth / 10
    # a live scorer that keeps saying "caught up" lets its quiet partition go idle, as before
    clock.heard(1, w + 8)
    assert clock.watermark(w + 8.1) == T0 + 10 + 3 * 79


def test_a_partition_taken_back_is_judged_from_the_committed_offset_not_an_earlier_ownership() -> None:
    """A worker processed news:0 to offset 95, lost it in a rebalance (its commit at the revoke
    failed: the group had moved on), and gets it back after the next owner died at offset 88.
    Where it stands is 87 (the commit), not 95: its heartbeat must not say records 88-95 were read."""
    from riskpulse.stream.runtime.watchdog import StallWatchdog

    watchdog = StallWatchdog(stall_s=45)
    watchdog.assigned({("news", 0), ("news", 1)})
    watchdog.advance(("news", 0), 95, 1.0)
    watchdog.advance(("news", 1), 40, 1.0)
    watchdog.assigned({("news", 1)})  # news:0 went to another member
    watchdog.assigned({("news", 0), ("news", 1)})  # and came back
    assert ("news", 0) not in watchdog.progress and watchdog.progress[("news", 1)] == (40, 1.0)  # held throughout
    watchdog.start_from(("news", 0), 88, 2.0)
    assert watchdog.progress[("news", 0)] == (87, 2.0)


def test_a_table_recovery_that_reads_nothing_is_stuck_after_the_limit_and_one_that_reads_is_not() -> None:
    from riskpulse.stream.runtime.watchdog import RecoveryWatch

    watch = RecoveryWatch(limit_s=45)
    assert watch.stuck({"count-changelog:1": 120, "judge-changelog:1": 0}, 0.0) == []
    assert watch.stuck({"count-changelog:1": 120, "judge-changelog:1": 0}, 44.0) == []
    assert watch.stuck({"count-changelog:1": 120, "judge-changelog:1": 0}, 45.0) == ["count-changelog:1"]
    watch.reset()
    for second in range(0, 200, 10):  # a long recovery that makes progress is never stuck
        assert watch.stuck({"count-changelog:1": 100_000 - second * 50}, float(second)) == []
    assert watch.stuck({"count-changelog:1": 0}, 300.0) == []  # done
    watch.generation(3)
    assert watch.stuck({"count-changelog:1": 5}, 400.0) == []
    watch.generation(4)  # another rebalance began: its recovery's clock starts again
    assert watch.stuck({"count-changelog:1": 5}, 440.0) == []
    assert watch.stuck({"count-changelog:1": 5}, 485.0) == ["count-changelog:1"]


def test_a_recovery_is_judged_while_faust_still_counts_itself_rebalancing(monkeypatch: pytest.MonkeyPatch) -> None:
    """faust's ``app.rebalancing`` stays set until its table recovery ends: a recovery that reads
    nothing ends the recovering worker even so (until 2026-12-07 the check waited for it to clear,
    so it never judged anything, and a recovery stuck for minutes waited for a peer's group watch)."""
    import asyncio
    from types import SimpleNamespace

    from riskpulse.stream.runtime import watches as watches_module
    from riskpulse.stream.runtime.watchdog import StallWatchdog
    from riskpulse.stream.runtime.watches import Watches

    class Exited(Exception):
        pass

    def exit_(code: int) -> None:
        raise Exited(code)

    from faust.types import TP

    changelog = TP("judge-changelog", 1)
    recovery = SimpleNamespace(in_recovery=True, active_remaining=lambda: {changelog: 3})
    app = SimpleNamespace(rebalancing=True, rebalancing_count=2, consumer=object(),
                          tables=SimpleNamespace(recovery=recovery))
    watches = Watches(app, ["news"], 4, 45.0, StallWatchdog(45.0), None, None)  # type: ignore[arg-type]
    clock = [1_000.0]
    monkeypatch.setattr(watches_module.time, "time", lambda: clock[0])
    monkeypatch.setattr(watches_module.os, "_exit", exit_)
    asyncio.run(watches.check())
    clock[0] += 44.0
    asyncio.run(watches.check())
    clock[0] += 2.0
    with pytest.raises(Exited):
        asyncio.run(watches.check())


def test_the_watches_say_what_the_group_has_not_committed_and_forget_it_at_an_assignment() -> None:
    """What a counting partition restored elsewhere needs to judge a news partition it never heard
    from (stream/core/watermark.py): per partition, the group's commit against the end, from the
    log start where the group never committed; the last answer stands when the broker is silent."""
    import asyncio
    from types import SimpleNamespace

    from riskpulse.stream.runtime.watchdog import StallWatchdog
    from riskpulse.stream.runtime.watches import Watches

    class Broker:
        starts: dict[tuple[str, int], int] | None = {("news", 1): 30}

        async def end(self, keys: Any) -> dict[tuple[str, int], int]:
            return {("news", 0): 100, ("news", 1): 70, ("internal", 0): 5, ("internal", 1): 0}

        async def committed(self, group: str, keys: Any) -> dict[tuple[str, int], int]:
            return {("news", 0): 100, ("news", 1): -1, ("internal", 0): 2, ("internal", 1): -1}

        async def start(self, keys: Any) -> dict[tuple[str, int], int] | None:
            return None if self.starts is None else {k: v for k, v in self.starts.items() if k in keys}

    app = SimpleNamespace(rebalancing=False, consumer=object(), conf=SimpleNamespace(id="app"),
                          tables=SimpleNamespace(recovery=SimpleNamespace(in_recovery=False)),
                          assignor=SimpleNamespace(assigned_actives=lambda: []))
    broker = Broker()
    watches = Watches(app, ["news", "internal"], 2, 45.0, StallWatchdog(45.0), None, broker)  # type: ignore[arg-type]
    assert watches.unclaimed is None  # not known before the first check
    asyncio.run(watches.check())
    # news 1 never committed: from its log start (30) to its end (70); an empty partition: nothing
    assert watches.unclaimed == {"news": {0: 0, 1: 40}, "internal": {0: 3}}
    broker.starts = None  # the broker does not answer the log starts this time
    asyncio.run(watches.check())
    assert watches.unclaimed == {"news": {0: 0, 1: 40}, "internal": {0: 3}}
    watches.assigned()
    assert watches.unclaimed is None
