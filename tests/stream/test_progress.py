"""Which progress markers a scorer sends at once and which wait for the tick (stream/core/progress.py),
and the counting stage's closed-through notes, which follow the same rule."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

from hypothesis import given, settings as hyp_settings, strategies as st

from riskpulse.settings import Settings
from riskpulse.stream.core.messages import TICK, Progress, Source
from riskpulse.stream.core.progress import ProgressTeller, closes_more
from riskpulse.stream.core.state import Overlay, Prefixed
from riskpulse.stream.stages.count import Count
from riskpulse.stream.stages.ports import SCORED_BY_STORY, WINDOWS, Record

from .test_core import T0
from .test_stages import Memory

W, L = 60, 10
B = (T0 // W) * W + L  # a window's close: the next is at B + W


def marker(partition: int, offset: int, event: float | None, behind: int = 0) -> Progress:
    return Progress(Source("news", partition, offset, behind), event)


def test_a_window_closes_at_each_multiple_of_the_window_plus_the_lateness() -> None:
    assert closes_more(None, 5.0, W, L)  # nothing told yet: anything is news
    assert not closes_more(5.0, None, W, L)
    assert not closes_more(11.0, 69.0, W, L)  # 10 < 11 .. 69 < 70: no close between
    assert closes_more(69.0, 70.0, W, L)
    assert closes_more(11.0, 200.0, W, L)
    assert not closes_more(70.0, 70.0, W, L)
    assert not closes_more(5.0, -math.inf, W, L)


def test_a_marker_that_passes_no_close_waits_for_the_tick_merged_with_the_later_ones() -> None:
    teller = ProgressTeller(W, L)
    first = marker(0, 1, B + 1)
    assert teller.after_batch(first) == first  # the partition's first word goes at once
    assert teller.after_batch(marker(0, 2, B + 30, behind=5)) is None
    assert teller.after_batch(marker(0, 3, None)) is None  # dead-lettered records: moved on, no event time
    assert teller.after_batch(marker(1, 7, None)) == marker(1, 7, None)  # another partition's first
    # at the tick: the latest position, the latest event time of all that waited
    assert teller.take_pending({0, 1}) == [marker(0, 3, B + 30)]
    assert teller.take_pending({0, 1}) == []
    # passing a close goes at once, carrying what waited before it
    assert teller.after_batch(marker(0, 4, B + 40)) is None
    assert teller.after_batch(marker(0, 5, B + W)) == marker(0, 5, B + W)
    assert teller.take_pending({0, 1}) == []


def test_markers_of_a_partition_this_worker_no_longer_reads_are_dropped_at_the_tick() -> None:
    teller = ProgressTeller(W, L)
    teller.after_batch(marker(2, 1, B + 1))
    assert teller.after_batch(marker(2, 2, B + 2)) is None
    assert teller.take_pending({0, 1}) == []  # revoked: its new reader tells its own
    assert teller.take_pending({0, 1, 2}) == []


def cell(t: float) -> int:
    return math.floor((t - L) / W)


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.one_of(st.none(), st.floats(0, 1_000))), min_size=1, max_size=60),
       st.sets(st.integers(0, 60)))
def test_what_the_counting_partitions_are_told_never_differs_from_the_truth_by_a_windows_close(
        batches: list[tuple[int, float | None]], ticks: set[int]) -> None:
    """After every batch, for each news partition, the latest event time told and the latest one
    processed lie between the same two window closes: whatever a counting partition decides on
    it (a window closed, an item late) is what it would decide on every marker; after a tick they are equal."""
    teller = ProgressTeller(W, L)
    truth: dict[int, float] = {}
    told: dict[int, float] = {}

    def hear(m: Progress | None) -> None:
        if m is not None and m.event_time is not None:
            p = m.source.partition
            told[p] = max(told.get(p, -math.inf), m.event_time)

    for k, (partition, event) in enumerate(batches):
        if event is not None:
            truth[partition] = max(truth.get(partition, -math.inf), event)
        hear(teller.after_batch(marker(partition, k, event)))
        for p, latest in truth.items():
            assert p in told and cell(told[p]) == cell(latest)
        if k in ticks:
            for m in teller.take_pending({0, 1, 2}):
                hear(m)
            assert told == truth


def test_the_counting_stage_tells_the_judges_its_closed_through_where_it_passes_a_close_and_at_each_tick(
        tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kafka_partitions=1, window_s=W, lateness_s=L, idle_s=3600)
    out = Memory()
    count = Count(settings, out)
    table: dict[str, object] = {}
    offsets = iter(range(1_000))

    async def batch(*values: bytes) -> list[float]:
        await count.open(0, Overlay(Prefixed(table, 0)))
        await count.process([Record(SCORED_BY_STORY, 0, next(offsets), None, v) for v in values])
        await count.close(0)
        return [json.loads(s["value"])["_through"][1] for s in out.take(WINDOWS) if b"_through" in s["value"]]

    start = B + 1  # just after a close: the next is W ahead

    async def scenario() -> None:
        assert await batch(marker(0, 1, start).encode()) == [start]  # the first word
        assert await batch(marker(0, 2, start + 5).encode()) == []  # no close passed: nothing to act on
        assert await batch(marker(0, 3, start + 6).encode(), TICK) == [start + 6]  # the tick: told anyway
        assert await batch(marker(0, 4, start + W).encode()) == [start + W]  # passed a close
    asyncio.run(scenario())
