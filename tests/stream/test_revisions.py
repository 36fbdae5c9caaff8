"""Corrections at the scorer: which revision an item is, the same answer when it is read again."""

from __future__ import annotations

from typing import Any

from riskpulse.stream.core.aggregator import Aggregator, AggregatorConfig
from riskpulse.stream.core.merge import WindowMerge
from riskpulse.stream.core.messages import Retract, Scored, Source, WindowFix, decode_counting, decode_judging
from riskpulse.stream.core.revisions import REVISIONS_KEPT, Revisions, content_of, counted_as
from riskpulse.stream.core.state import Overlay

from .test_core import DETECTOR, T0, scored


def observe(store: dict[str, Any], item: Any, offset: int, partition: int = 0) -> Any:
    state = Overlay(store)
    revision = Revisions(state, 86_400).observe(item, offset, partition)
    state.flush()
    return revision


def test_changed_content_is_a_new_revision_and_the_same_content_a_resend() -> None:
    store: dict[str, Any] = {}
    first = scored("wire-1", T0, "positive", tickers=["ACME"], headline="Acme beats estimates")
    corrected = scored("wire-1", T0, "negative", tickers=["ACME"], headline="Acme misses estimates")
    assert observe(store, first, 10, partition=2).number == 1
    assert observe(store, first, 11).replaces is None  # re-sent unchanged: a redelivery of revision 1
    second = observe(store, corrected, 12, partition=3)
    assert second.number == 2 and second.replaces is not None
    assert second.replaces["partition"] == 2 and second.replaces["offset"] == 10
    assert second.replaces["sentiment"] == "positive" and "ticker|ACME" in second.replaces["keys"]
    retimed = corrected.model_copy(update={"published_at": first.published_at.replace(year=2027)})
    assert content_of(retimed) == content_of(corrected)  # a new time alone is not a correction
    assert observe(store, first, 13).number == 3  # the first text again is a correction too


def test_a_record_read_again_gets_the_answer_its_first_reading_got() -> None:
    store: dict[str, Any] = {}
    revisions = [scored("w", T0, "neutral", headline=f"Acme update number {k}") for k in range(4)]
    first_answers = [observe(store, item, 100 + k, partition=k % 2) for k, item in enumerate(revisions)]
    again = [observe(store, item, 100 + k, partition=k % 2) for k, item in enumerate(revisions)]
    assert again == first_answers
    assert [r.number for r in again] == [1, 2, 3, 4]
    assert again[2].replaces is not None and again[2].replaces["offset"] == 101


def test_revisions_are_bounded_per_id_and_forgotten_past_the_horizon() -> None:
    store: dict[str, Any] = {}
    for k in range(REVISIONS_KEPT + 5):
        observe(store, scored("busy", T0, headline=f"busy item take {k}"), k)
    assert len(store["r|busy"]["revs"]) == REVISIONS_KEPT
    assert observe(store, scored("busy", T0, headline="busy item take 0"), 0).number >= 1  # older than kept: no crash
    observe(store, scored("later", T0 + 3 * 86_400, headline="much later news"), 100)
    assert "r|busy" not in store and "r|later" in store


def test_internal_records_of_corrections_round_trip_and_bad_ones_raise() -> None:
    item = scored("w", T0, headline="Acme misses estimates")
    replaced = {"ts": float(T0), "keys": ["topic|Macro"], "sentiment": "positive", "score": 0.7, "status": "scored",
                "dkey": "abc", "partition": 1, "offset": 4}
    source = Source("news", 0, 9, 0)
    assert decode_counting(Scored(item, source, None, replaced).encode()).retract == replaced
    assert decode_counting(Retract("w", replaced, source).encode()) == Retract("w", replaced, source)
    fix = WindowFix(1, T0, 3, (0, 9), {"keys": {"topic|Macro": [-1, 0, 0, -1, -0.7, 0, 0, 0]}, "drop": ["w"], "top": {}})
    assert decode_judging(fix.encode()) == fix
    for bad in (b'{"_retract": {"ts": 1}, "_id": "w", "_src": ["news", 0, 1, 0]}',
                b'{"_retract": "x", "_id": 3, "_src": ["news", 0, 1, 0]}'):
        try:
            decode_counting(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} decoded")


def test_a_correction_after_its_window_was_judged_republishes_the_trend_and_repeats_change_nothing() -> None:
    """The counting stage sends the correction of a closed window as a fix; the judge applies it
    to the window it keeps and publishes the corrected trend, once."""
    cfg = AggregatorConfig(window_s=60, lateness_s=10, idle_s=1e9, max_skew_s=float("inf"))
    agg = Aggregator(Overlay({}), cfg, None, now_wall=0.0, partitions=[0])
    merge = WindowMerge(Overlay({}), 60, 10, 1, DETECTOR)
    original = scored("w", T0 + 5, "positive", tickers=["ACME"], headline="Acme beats estimates")
    agg.add(original, 0, 0, 0.0)
    agg.add(scored("x", T0 + 200, "neutral", headline="later news moves the clock"), 0, 1, 0.0)
    while (close := agg.next_close(0.0)) is not None:
        for shard, part in close.parts.items():
            merge.part(0, close.start, shard, part)
        merge.window(close.start, 0, tuple(sorted(close.parts)))
        agg.commit(close)
    merge.closed_through(0, agg.settle(0.0))
    while (judged := merge.next_close()) is not None:
        merge.commit(judged)
    correction = scored("w", T0 + 5, "negative", tickers=["ACME"], headline="Acme misses estimates").model_copy(
        update={"revision": 2})
    replaced = {**counted_as(original), "partition": 0, "offset": 0}  # as the scorer tells it
    added = agg.add(correction, 0, 2, 0.0, retract=replaced)
    assert added.status == "corrected" and agg.fixes
    for start, shard, at, fix in agg.fixes:
        assert merge.fix(0, start, shard, at, fix) == "applied"
        assert merge.fix(0, start, shard, at, fix) == "repeat"
    acme = [t for t in merge.corrected if t.key == "ACME"]
    assert [(t.count, t.negative, t.positive) for t in acme] == [(1, 1, 0)]
    assert [e.headline for e in acme[0].top_negative] == ["Acme misses estimates"]
