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
