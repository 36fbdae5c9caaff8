"""The offset a partition may commit: the run of done offsets from the commit, and nothing past it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from riskpulse.stream.core.commits import next_commit


def test_the_commit_moves_to_the_end_of_the_run_from_the_committed_offset() -> None:
    assert next_commit(10, [10, 11, 12, 14], []) == 13  # 13 is not done: 14 waits for it
    assert next_commit(10, [11, 12], []) is None  # 10 is not done (in flight, or not read yet)
    assert next_commit(10, [], [(10, 20)]) == 20
    assert next_commit(10, [20, 21], [(10, 20)]) == 22  # acknowledged and marked offsets join up
    assert next_commit(10, [5, 6], []) is None  # only offsets the group already passed


def test_repeats_and_overlaps_do_not_hold_the_commit() -> None:
    """faust's own walk stopped at the first repeated offset: where a marked range overlapped
    acknowledged offsets the commit moved one offset per commit interval (CI: 400 behind for
    seven minutes). Here repeats and overlaps change nothing."""
    acked = [196, 197, 197, 198, 198] + list(range(199, 228)) * 2 + list(range(585, 618))
    assert next_commit(196, acked, [(197, 586), (228, 585), (300, 400)]) == 618


def test_without_a_committed_offset_the_run_starts_at_the_lowest_done() -> None:
    assert next_commit(None, [7, 8, 9], []) == 10
    assert next_commit(None, [12], [(5, 9)]) == 9
    assert next_commit(None, [], []) is None


@given(st.integers(0, 40), st.sets(st.integers(0, 80), max_size=60),
       st.lists(st.tuples(st.integers(0, 80), st.integers(0, 12)), max_size=6), st.integers(1, 3))
def test_the_commit_never_passes_an_offset_that_is_not_done(committed: int, acked: set[int],
                                                             spans: list[tuple[int, int]], repeat: int) -> None:
    """Whatever was acknowledged (repeats, any order) and marked (overlapping ranges): every offset
    from the committed one up to the answer is done, and the answer's own offset is not."""
    ranges = [(b, b + n) for b, n in spans]
    done = set(acked) | {o for b, e in ranges for o in range(b, e)}
    answer = next_commit(committed, sorted(acked, reverse=True) * repeat, ranges)
    end = committed
    while end in done:
        end += 1
    assert answer == (end if end > committed else None)
