"""Offsets passed over by the consumer are caught; redeliveries and moved partitions are not gaps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.core.continuity import Gap, OffsetContinuity


def test_a_skip_on_a_kept_partition_is_a_gap() -> None:
    c = OffsetContinuity()
    assert [c.seen(0, o) for o in (10, 11, 12)] == [None, None, None]
    c.assigned({0, 1})  # a rebalance that let this worker keep partition 0
    assert c.seen(0, 40) == Gap(0, 13, 40) and Gap(0, 13, 40).size == 27
    assert c.seen(0, 41) is None


def test_redelivery_after_a_seek_back_is_not_a_gap() -> None:
    c = OffsetContinuity()
    for o in range(5):
        c.seen(3, o)
    assert c.seen(3, 2) is None and c.seen(3, 3) is None and c.seen(3, 5) is None


def test_a_partition_that_moved_away_and_back_starts_afresh() -> None:
    c = OffsetContinuity()
    c.seen(2, 7)
    c.assigned({0})  # partition 2 went to another worker, which moved it on
    c.assigned({0, 2})
    assert c.seen(2, 500) is None


@given(st.lists(st.integers(0, 3), min_size=1, max_size=200), st.integers(0, 100))
def test_any_contiguous_run_with_redeliveries_has_no_gap(partitions: list[int], back: int) -> None:
    """Whatever the interleaving of partitions, and with a seek back mid-way, nothing is a gap."""
    c = OffsetContinuity()
    nxt = {p: 0 for p in range(4)}
    for i, p in enumerate(partitions):
        if i == len(partitions) // 2:
            nxt[p] = max(0, nxt[p] - back)  # seek back: redeliver
        assert c.seen(p, nxt[p]) is None
        nxt[p] += 1


# -- after an assignment, and re-reading what was passed over ----------------------------------

from stream.core.continuity import REREAD_TIMEOUT_S, STALE, Plan  # noqa: E402


def test_the_first_record_after_an_assignment_is_judged_against_the_committed_offset() -> None:
    """faust's stale read offset: the partition comes back with committed offset 120, faust hands 131."""
    c = OffsetContinuity()
    c.assigned({0, 1})
    assert c.check(0, 131, committed=120, now=0.0) == Gap(0, 120, 131)
    assert c.check(1, 7, committed=7, now=0.0) is None  # starts where the group left off
    assert c.check(1, 8, committed=3, now=0.0) is None  # only the first record is judged so


def test_a_kept_partition_is_judged_from_where_this_worker_left_off() -> None:
    c = OffsetContinuity()
    for o in range(50, 60):
        c.check(0, o, committed=None, now=0.0)
    c.assigned({0})
    assert c.check(0, 55, committed=55, now=0.0) is None  # redelivered from the commit: not a gap
    assert c.check(0, 70, committed=55, now=0.0) == Gap(0, 60, 70)


def test_no_committed_offset_means_nothing_to_judge() -> None:
    c = OffsetContinuity()
    c.assigned({0})
    assert c.check(0, 900, committed=None, now=0.0) is None


def test_a_gap_whose_records_exist_is_reread_and_records_fetched_past_it_wait_their_turn() -> None:
    c = OffsetContinuity()
    c.assigned({0})
    gap = c.check(0, 131, committed=120, now=0.0)
    assert isinstance(gap, Gap)
    assert c.plan(gap, log_start=0, first_record=120, now=0.0) == Plan(gap, 120, 0)
    assert [c.check(0, o, None, 1.0) for o in (132, 133)] == [STALE, STALE]  # prefetched before the seek
    assert c.check(0, 131, None, 1.0) == STALE  # faust handed the one that revealed the gap over again
    assert c.check(1, 5, None, 1.0) is None  # other partitions go on
    assert [c.check(0, o, None, 2.0) for o in range(120, 135)] == [None] * 15  # the re-read, in order
    assert c.check(0, 200, None, 3.0) == Gap(0, 135, 200)  # a later gap is judged afresh


def test_records_retention_deleted_are_lost_and_the_rest_is_reread() -> None:
    c = OffsetContinuity()
    for o in range(5):
        c.check(0, o, None, 0.0)
    gap = c.check(0, 40, None, 0.0)
    assert gap == Gap(0, 5, 40)
    assert c.plan(gap, log_start=25, first_record=25, now=0.0) == Plan(gap, 25, 20)  # 5-24 gone, 25-39 re-read
    everything = Gap(1, 5, 25)
    assert c.plan(everything, log_start=25, first_record=25, now=0.0) == Plan(everything, None, 20)


def test_offsets_that_hold_no_record_are_neither_reread_nor_lost() -> None:
    """A third party's transactional producer: one offset per commit marker."""
    c = OffsetContinuity()
    c.check(0, 9, None, 0.0)
    gap = c.check(0, 11, None, 0.0)  # offset 10: a commit marker
    assert isinstance(gap, Gap)
    assert c.plan(gap, log_start=0, first_record=11, now=0.0) == Plan(gap, None, 0)
    assert c.check(0, 12, None, 0.0) is None
    markers_then_records = c.check(0, 20, None, 0.0)  # 13 a marker, 14-19 passed over
    assert isinstance(markers_then_records, Gap)
    assert c.plan(markers_then_records, 0, 14, 0.0).reread_from == 14
    assert c.check(0, 14, None, 0.1) is None


def test_a_reread_that_never_begins_is_given_up_after_its_timeout_and_counted() -> None:
    c = OffsetContinuity()
    c.check(0, 0, None, 0.0)
    gap = c.check(0, 10, None, 0.0)
    assert isinstance(gap, Gap) and c.plan(gap, 0, 1, 0.0).reread_from == 1
    assert c.check(0, 50, None, REREAD_TIMEOUT_S - 1) == STALE
    late = c.check(0, 51, None, REREAD_TIMEOUT_S + 1)  # 1-50 deleted meanwhile: it began at 51
    assert late == Gap(0, 1, 51) and c.plan(late, 51, 51, REREAD_TIMEOUT_S + 1) == Plan(late, None, 50)


def test_the_same_gap_twice_is_counted_not_reread_for_ever() -> None:
    c = OffsetContinuity()
    c.check(0, 0, None, 0.0)
    gap = c.check(0, 10, None, 0.0)
    assert isinstance(gap, Gap) and c.plan(gap, 0, 1, 0.0).reread_from == 1
    c.assigned({0})  # a rebalance before the re-read began
    c.rereading.clear()  # (as if the seek was undone) the same records are passed over again
    again = c.check(0, 10, None, 1.0)
    assert again == Gap(0, 1, 10) and c.plan(again, 0, 1, 1.0) == Plan(again, None, 9)


def test_a_partition_that_leaves_while_rereading_forgets_it() -> None:
    c = OffsetContinuity()
    c.check(2, 0, None, 0.0)
    gap = c.check(2, 10, None, 0.0)
    assert isinstance(gap, Gap)
    c.plan(gap, 0, 1, 0.0)
    c.assigned({0})
    assert c.rereading == {} and c.tried == set() and c.expected == {}


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 5)), min_size=1, max_size=60),
       st.sets(st.integers(0, 300), max_size=8))
def test_a_consumer_that_skips_anywhere_ends_up_delivering_every_record_in_order(
        steps: list[tuple[int, int]], skips: set[int]) -> None:
    """A simulated faust: it delivers each partition in order but jumps ahead at ``skips``; the
    worker seeks back whenever told to. Every offset is processed, in offset order per partition
    (what the aggregator's exactness needs), and nothing is counted lost."""
    c = OffsetContinuity()
    c.assigned({0, 1, 2})
    position = {p: 0 for p in range(3)}
    processed: dict[int, list[int]] = {p: [] for p in range(3)}
    skipped: set[tuple[int, int]] = set()
    lost = 0
    for partition, n in steps:
        for _ in range(n):
            offset = position[partition]
            if offset in skips and (partition, offset) not in skipped:
                skipped.add((partition, offset))
                offset += 3  # faust passes over three records
            position[partition] = offset + 1
            verdict = c.check(partition, offset, committed=0, now=0.0)
            if verdict == STALE:
                continue
            if isinstance(verdict, Gap):
                plan = c.plan(verdict, log_start=0, first_record=verdict.first_missing, now=0.0)
                lost += plan.lost
                if plan.reread_from is not None:
                    position[partition] = plan.reread_from  # the seek
                    continue
            processed[partition].append(offset)
    assert lost == 0
    for partition, offsets in processed.items():
        assert offsets == list(range(len(offsets)))
