"""Aggregation partitioned in two stages, without a broker: the same trends and alerts as one
aggregator (the backtest), for any routing, interleaving, batching, redelivery and crash point."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from riskpulse.stream.core.aggregator import KEY_SHARDS, Aggregator, AggregatorConfig
from riskpulse.stream.core.backtest import run_backtest
from riskpulse.stream.stages.partitioning import story_partition
from tests.helpers import story_tag
from riskpulse.stream.core.merge import WindowMerge
from riskpulse.stream.core.revisions import Revisions
from riskpulse.stream.core.state import Overlay

from .test_core import DETECTOR, T0, LoggedStore, alert_keys, crash_in_flush, feed, scored, trend_rows

CFG = AggregatorConfig(window_s=60, lateness_s=10, idle_s=1e9, max_skew_s=math.inf)  # wall clock 0: no bound


@dataclass
class Queue:
    """One partition of a topic: records in the order they were sent, and where its reader has
    committed (a crash re-reads from there)."""

    records: list[tuple[Any, ...]] = field(default_factory=list)
    committed: int = 0


@dataclass
class Stage:
    """One partition's store and its queue, as a worker would hold them."""

    store: LoggedStore = field(default_factory=LoggedStore)
    queue: Queue = field(default_factory=Queue)


class TwoStages:
    """The worker's topology in plain code: scorers route each item to a first-stage partition by
    its story, and after each batch tell every partition how far their news partition has come;
    first stages send closed windows' key shards to the second stage and say how far they are
    closed through; the second stage judges."""

    def __init__(self, n: int, m: int, rng: random.Random) -> None:
        self.n, self.m, self.rng = n, m, rng
        self.first = [Stage() for _ in range(n)]
        self.second = [Stage() for _ in range(m)]
        self.revisions: dict[int, dict[str, Any]] = {}  # the scorers' state, per news partition
        self.trends: list[Any] = []
        self.alerts: list[Any] = []

    def score(self, partition: int, batch: list[tuple[int, Any]]) -> None:
        state = Overlay(self.revisions.setdefault(partition, {}))
        revisions = Revisions(state, 86_400)
        for offset, item in batch:
            target = story_partition(item.headline, self.n)
            revision = revisions.observe(item, offset, target)
            item = item.model_copy(update={"revision": revision.number})
            replaces = revision.replaces
            if replaces is not None and replaces["partition"] != target:
                self.first[replaces["partition"]].queue.records.append(("retract", partition, offset, item.id, replaces))
            retract = replaces if replaces is not None and replaces["partition"] == target else None
            self.first[target].queue.records.append(("item", partition, offset, item, retract))
        state.flush()
        top = max(item.published_at.timestamp() for _, item in batch)
        for stage in self.first:
            stage.queue.records.append(("progress", partition, top))

    def run_first(self, d: int, count: int, until: float | None = None, crash_kept: int | None = None) -> None:
        """Process up to ``count`` records of partition ``d`` as one batch (``crash_kept``: kill -9
        inside the flush, the store keeping that many of the batch's writes; nothing committed)."""
        stage = self.first[d]
        state = Overlay(stage.store)
        agg = Aggregator(state, CFG, None, now_wall=0.0, partitions=range(4))
        batch = stage.queue.records[stage.queue.committed:stage.queue.committed + count]
        for record in batch:
            with state.savepoint():
                if record[0] == "item":
                    agg.add(record[3], record[1], record[2], now_wall=0.0, retract=record[4] if len(record) > 4 else None)
                elif record[0] == "retract":
                    agg.retract(record[3], record[4], record[1], record[2])
                else:
                    agg.heard(record[1], 0.0, 0, record[2])
        while (close := agg.next_close(0.0, until)) is not None:
            for shard, counters in close.parts.items():
                self.second[shard % self.m].queue.records.append(("part", d, close.start, shard, counters))
            for stage2 in self.second:
                stage2.queue.records.append(("window", d, close.start, tuple(sorted(close.parts))))
            agg.commit(close)  # all acknowledged
        for start, shard, at, fix in agg.fixes:  # corrections of windows closed here, after their counters
            self.second[shard % self.m].queue.records.append(("fix", d, start, shard, at, fix))
        through = agg.settle(0.0, until)
        agg.end_batch()
        if crash_kept is not None:
            crash_in_flush(stage.store, state, crash_kept)
            return
        state.flush()
        stage.queue.committed += len(batch)
        if through > -math.inf:
            for stage2 in self.second:
                stage2.queue.records.append(("through", d, through))

    def run_second(self, e: int, count: int, crash_kept: int | None = None) -> None:
        stage = self.second[e]
        state = Overlay(stage.store)
        merge = WindowMerge(state, CFG.window_s, CFG.lateness_s, self.n, DETECTOR)
        batch = stage.queue.records[stage.queue.committed:stage.queue.committed + count]
        for record in batch:
            if record[0] == "part":
                merge.part(record[1], record[2], record[3], record[4])
            elif record[0] == "fix":
                merge.fix(record[1], record[2], record[3], record[4], record[5])
            elif record[0] == "window":
                merge.window(record[2], record[1], record[3])
            else:
                merge.closed_through(record[1], record[2])
        self.trends += merge.corrected  # published
        merge.corrected = []
        while (close := merge.next_close()) is not None:
            self.trends += close.trends
            self.alerts += close.alerts
            merge.commit(close)
        merge.end_batch()
        if crash_kept is not None:
            crash_in_flush(stage.store, state, crash_kept)
            return
        state.flush()
        stage.queue.committed += len(batch)

    def pending(self) -> list[tuple[str, int]]:
        return ([("first", d) for d, s in enumerate(self.first) if s.queue.committed < len(s.queue.records)]
                + [("second", e) for e, s in enumerate(self.second) if s.queue.committed < len(s.queue.records)])

    def drain(self, batch: int, crash_every: int = 0, kept: int = 0) -> None:
        steps = 0
        while todo := self.pending():
            which, i = self.rng.choice(todo)
            steps += 1
            crash = kept if crash_every and steps % crash_every == 0 else None
            (self.run_first if which == "first" else self.run_second)(i, self.rng.randint(1, batch), crash_kept=crash)

    def finish(self) -> None:
        """The end of the test stream: every first stage closes everything, the second judges it."""
        for d in range(self.n):
            self.run_first(d, 0, until=math.inf)
        self.drain(10_000)


def run_two_stages(seed: int, n: int, m: int, batch: int, score_batch: int, crash_every: int = 0,
                   kept: int = 0, parts: list[list[Any]] | None = None) -> TwoStages:
    rng = random.Random(seed)
    parts = parts if parts is not None else feed(4, 40, seed)
    topo = TwoStages(n, m, rng)
    cursors = [0] * len(parts)
    while any(c < len(p) for c, p in zip(cursors, parts)):
        p = rng.choice([i for i, part in enumerate(parts) if cursors[i] < len(part)])
        size = rng.randint(1, score_batch)
        topo.score(p, [(o, parts[p][o]) for o in range(cursors[p], min(len(parts[p]), cursors[p] + size))])
        cursors[p] = min(len(parts[p]), cursors[p] + size)
        if rng.random() < 0.5:
            topo.drain(batch, crash_every, kept)  # stages keep up, or fall behind and catch up
    topo.drain(batch, crash_every, kept)
    topo.finish()
    return topo


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), m=st.integers(1, 4), batch=st.integers(1, 60),
       score_batch=st.integers(1, 20))
def test_two_stages_count_and_judge_every_item_as_the_backtest(seed: int, n: int, m: int, batch: int,
                                                               score_batch: int) -> None:
    parts = feed(4, 40, seed)
    topo = run_two_stages(seed, n, m, batch, score_batch, parts=parts)
    expected = run_backtest([i for p in parts for i in p], DETECTOR, 60)
    assert trend_rows(topo.trends) == trend_rows(expected.trends)
    assert alert_keys(topo.alerts) == alert_keys(expected.alerts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 3), m=st.integers(1, 3), batch=st.integers(1, 40),
       crash_every=st.integers(2, 9), kept=st.integers(0, 300))
def test_a_crash_of_either_stage_at_any_write_then_redelivery_gives_the_clean_run(
        seed: int, n: int, m: int, batch: int, crash_every: int, kept: int) -> None:
    """kill -9 of a partition's worker mid-flush (a prefix of its writes survives, its input is read
    again from the last commit), over and over, in both stages."""
    parts = feed(4, 40, seed)
    topo = run_two_stages(seed, n, m, batch, 8, crash_every=crash_every, kept=kept, parts=parts)
    expected = run_backtest([i for p in parts for i in p], DETECTOR, 60)
    assert trend_rows(topo.trends) == trend_rows(expected.trends)
    assert alert_keys(topo.alerts) == alert_keys(expected.alerts)


def corrected_feed(seed: int, n_partitions: int = 4, per_partition: int = 25) -> list[list[Any]]:
    """``feed`` with corrections, as wire services send them: the same id again, a few items
    later on its partition, with another sentiment, other tickers or another headline (or
    unchanged: a re-send), sometimes corrected twice; some come after their window was judged.
    The model's verdict (sentiment, topic) changes only with the text, as it would."""
    rng = random.Random(seed + 1)
    parts = []
    for items in feed(n_partitions, per_partition, seed):
        seq = list(items)
        for _ in range(2):  # a correction may itself be corrected
            after: dict[int, list[Any]] = {}  # position in seq -> revisions sent right after it
            for k, item in enumerate(seq):
                if rng.random() >= 0.2:
                    continue
                change = rng.choice(["sentiment", "tickers", "headline", "resend"])
                ts = item.published_at.timestamp()
                if change == "resend":
                    revision = item
                elif change == "sentiment":
                    revision = scored(item.id, ts, rng.choice(["negative", "neutral", "positive"]), item.topic,
                                      item.tickers, f"{item.headline} (corrected {story_tag(rng.randrange(10_000))})")
                elif change == "tickers":
                    revision = scored(item.id, ts, item.sentiment, item.topic, rng.sample(["AAPL", "TSLA", "NVDA"], 1),
                                      item.headline + " (updated)")
                else:
                    revision = scored(item.id, ts, item.sentiment, rng.choice(["Macro", "M&A"]), item.tickers,
                                      f"rewritten {story_tag(rng.randrange(10_000))} {item.id}")
                after.setdefault(min(len(seq) - 1, k + rng.randint(0, 30)), []).append(revision)
            seq = [i for k, item in enumerate(seq) for i in [item] + after.get(k, [])]
        parts.append(seq)
    return parts


def latest_revisions(parts: list[list[Any]]) -> list[Any]:
    """Each id once, as its last revision says, where its first revision stood."""
    latest = {item.id: item for part in parts for item in part}
    seen: set[str] = set()
    return [latest[i.id] for part in parts for i in part if not (i.id in seen or seen.add(i.id))]


def counted(trends: list[Any]) -> dict[tuple[str, str, str], tuple[int, int, int, int]]:
    """Upserted rows, without a key's window a correction emptied (its last record says zero)."""
    return {k: v for k, v in trend_rows(trends).items() if v[0]}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 3), m=st.integers(1, 3), batch=st.integers(1, 40),
       crash_every=st.integers(0, 9), kept=st.integers(0, 300))
def test_corrections_count_each_item_once_with_its_latest_revision_through_kill_9_at_any_write(
        seed: int, n: int, m: int, batch: int, crash_every: int, kept: int) -> None:
    """Whatever the routing, interleaving and crash points: every window counts each item once,
    as its latest revision says (a window judged before the correction gets a corrected trend),
    and the alerts are those of the clean run (a verdict already published stands)."""
    parts = corrected_feed(seed)
    assert any(len({i.id for i in p}) < len(p) for p in parts), "corrections were sent"
    clean = run_two_stages(seed, n, m, batch, 8, parts=parts)
    topo = run_two_stages(seed, n, m, batch, 8, crash_every=crash_every if crash_every > 1 else 0, kept=kept,
                          parts=parts)
    expected = run_backtest(latest_revisions(parts), DETECTOR, 60)
    assert counted(topo.trends) == counted(expected.trends)
    assert counted(clean.trends) == counted(expected.trends)
    assert alert_keys(topo.alerts) == alert_keys(clean.alerts)


def test_a_burst_split_across_partitions_alerts_once_as_in_one_aggregator() -> None:
    """A negative burst on one ticker whose headlines land on every first-stage partition: the
    second stage sees the whole count and alerts as the backtest does (a single partition would
    see a quarter of it)."""
    calm = [scored(f"c{k}", T0 + 60 * k + 1, "neutral", tickers=["ACME"], headline=f"ACME routine note {story_tag(k)}")
            for k in range(40)]
    burst = [scored(f"b{k}", T0 + 60 * 40 + k, "negative", tickers=["ACME"], headline=f"ACME sued {story_tag(k)} {story_tag(k + 500)}")
             for k in range(24)]
    parts = [calm + burst]
    topo = run_two_stages(7, 4, 2, 30, 5, parts=parts)
    expected = run_backtest(calm + burst, DETECTOR, 60)
    assert len({story_partition(i.headline, 4) for i in burst}) >= 3  # split across the partitions
    assert [a for a in expected.alerts if a.key == "ACME"], "the burst is an alert for one aggregator"
    assert alert_keys(topo.alerts) == alert_keys(expected.alerts)
    assert trend_rows(topo.trends) == trend_rows(expected.trends)


def test_a_window_the_second_stage_judged_ignores_repeats_and_out_of_range_records_raise() -> None:
    merge = WindowMerge(Overlay({}), 60, 10, 2, DETECTOR)
    counters = {"keys": {"ticker|ACME": [1, 1, 0, 0, -0.8]}, "top": {}}
    assert merge.part(0, T0, 3, counters)
    merge.closed_through(0, T0 + 70)
    assert merge.next_close() is None  # source 1 has not said it is through
    merge.closed_through(1, T0 + 70)
    close = merge.next_close()
    assert close is not None and [t.count for t in close.trends] == [1]
    merge.commit(close)
    assert not merge.part(1, T0, 3, counters)  # judged: a repeat changes nothing
    assert merge.next_close() is None
    with pytest.raises(ValueError):
        merge.part(2, T0 + 60, 0, counters)
    with pytest.raises(ValueError):
        merge.part(0, T0 + 60, KEY_SHARDS, counters)


def test_windows_are_judged_while_the_stream_runs_even_where_a_partition_has_no_items() -> None:
    """A first-stage partition that holds no windows is still closed through its watermark (the
    scorers' progress), so the second stage judges windows as the news goes on, not at the end;
    and an item dated behind that point is late there, as it would be in one aggregator."""
    headlines = [h for h in (f"ACME {story_tag(k)} {story_tag(k + 5000)}" for k in range(2000)) if story_partition(h, 2) == 0][:20]
    items = [scored(f"i{k}", T0 + 30 * k, "negative" if k % 3 else "neutral", tickers=["ACME"], headline=h)
             for k, h in enumerate(headlines)]
    topo = TwoStages(2, 1, random.Random(1))
    for p in range(4):  # every news partition has come as far as the last item
        topo.score(p, [(k, item) for k, item in enumerate(items) if k % 4 == p])
    topo.drain(1000)
    judged = {t.window_start.timestamp() for t in topo.trends}
    # the watermark is the slowest news partition's last item (T0 + 480): every window ending
    # LATENESS_S before it is judged without an end of stream, though one partition has no items
    assert judged and max(judged) + 60 + 10 > T0 + 480 - 60, "windows behind the watermark are judged"
    stale = scored("late", T0 + 1, "negative", tickers=["ACME"], headline=headlines[0] + " again")
    topo.first[1].queue.records.append(("item", 0, 99, stale))  # on the partition that had none
    topo.drain(1000)
    topo.finish()
    assert sum(t.count for t in topo.trends if t.key == "ACME") == 20  # the old story came after its window was judged


def test_each_partition_keeps_its_keys_under_its_prefix_in_a_shared_table() -> None:
    """A worker's table holds every partition it owns; each stage instance sees only its own."""
    from riskpulse.stream.core.state import Prefixed

    table: dict[str, Any] = {}
    zero, three = Overlay(Prefixed(table, 0)), Overlay(Prefixed(table, 3))
    zero.set("wm", {"seq": 1})
    three.set("wm", {"seq": 7})
    zero.flush()
    three.flush()
    assert table == {"0|wm": {"seq": 1}, "3|wm": {"seq": 7}}
    assert Overlay(Prefixed(table, 3)).get("wm") == {"seq": 7} and Overlay(Prefixed(table, 1)).get("wm") is None
    three.delete("wm")
    three.flush()
    assert table == {"0|wm": {"seq": 1}}


def test_internal_records_decode_or_raise_for_the_dead_letter_queue() -> None:
    from riskpulse.stream.core.messages import Progress, Source, decode_counting
    from riskpulse.stream.stages.partitioning import story_partition

    assert decode_counting(b'{"_progress": ["news", 2, 41, 3, 1780000000.5]}') == Progress(Source("news", 2, 41, 3),
                                                                                           1780000000.5)
    assert decode_counting(b'{"_progress": ["news", 2, 41, 0]}') == Progress(Source("news", 2, 41, 0), None,
                                                                             heartbeat=True)
    for bad in (b'{"_progress": ["news", 2, 41, 0, "soon"]}', b'{"_progress": ["news", 2, 41, 0, NaN]}',
                b'{"_progress": ["news", "2", 41]}', b"[]"):
        with pytest.raises(ValueError):
            decode_counting(bad)
    # copies of a story meet on one counting partition, whatever their case, links or spacing
    assert story_partition("Apple beats!", 4) == story_partition("apple  beats https://t.co/x", 4)


def test_every_window_of_one_trend_key_goes_to_the_partition_kafka_gives_that_key() -> None:
    """Subscribers read one key's windows in order on one partition; the partition is the one
    Kafka's default partitioner (murmur2, checked against kafka-python's own port) gives ``key_type|key``."""
    from kafka.partitioner.default import murmur2 as kafka_python_murmur2

    from riskpulse.stream.stages.partitioning import trend_partition

    keys = [("topic", "earnings"), ("ticker", "ACME"), ("ticker", "BRK.B"), ("topic", "m&a"), ("ticker", "Ünï\udcff")]
    for partitions in (1, 3, 4, 12):
        for key_type, key in keys:
            raw = f"{key_type}|{key}".encode("utf-8", "surrogatepass")
            assert trend_partition(key_type, key, partitions) == (kafka_python_murmur2(raw) & 0x7FFFFFFF) % partitions
    assert len({trend_partition("ticker", f"T{i}", 4) for i in range(40)}) == 4  # keys spread over the partitions


def test_malformed_window_counters_are_refused_before_they_are_stored() -> None:
    """A value the judging stage stored could not be merged later, and would fail every judging of
    its window: the worker dead-letters the record instead (stage `judge`)."""
    merge = WindowMerge(Overlay({}), 60, 10, 1, DETECTOR)
    good_row = [-0.8, "id", "headline", None, 0.8, 0.1, 0.1]
    assert merge.part(0, T0, 1, {"keys": {"ticker|ACME": [1, 1, 0, 0, -0.8]}, "top": {"ticker|ACME": [good_row]}})
    for bad in ({"keys": {"ticker|ACME": "7"}}, {"keys": {"ACME": [1, 1, 0, 0, 0.0]}},
                {"keys": {"ticker|ACME": [1, 1, 0, 0, float("nan")]}}, {"keys": {"ticker|A": [1, 1, 0, 0, True]}},
                {"keys": {}, "top": {"ticker|ACME": [["x"]]}}, {"keys": [], "top": {}}):
        with pytest.raises(ValueError):
            merge.part(0, T0 + 60, 1, bad)
    merge.closed_through(0, T0 + 200)
    close = merge.next_close()
    assert close is not None and [t.count for t in close.trends] == [1]  # only the good counters were kept


def test_a_judged_window_kept_for_corrections_is_trimmed_to_the_budget_and_keeps_its_counters() -> None:
    """Merged from every counting partition, a shard's evidence can add up past the budget each
    part stayed within: the copy kept for corrections keeps one row per key, or none."""
    from riskpulse.stream.core.aggregator import MAX_WINDOW_VALUE_BYTES
    from riskpulse.stream.core.merge import _within_budget

    row = [-0.9, "i" * 200, "h" * 300, "https://example.com/" + "a" * 1_980, 0.9, 0.05, 0.05, "s", 1, 1, []]
    keys = {f"ticker|T{k}": [5, 5, 0, 0, -4.5, 5, 5, 0] for k in range(300)}
    big = {"keys": keys, "top": {k: [row] * 5 for k in keys}, "fixed": {}}
    kept = _within_budget(big)
    assert len(json.dumps(kept)) < MAX_WINDOW_VALUE_BYTES and kept["keys"] == keys
    small = {"keys": dict(list(keys.items())[:3]), "top": {k: [row] * 5 for k in list(keys)[:3]}, "fixed": {}}
    assert _within_budget(small) is small
