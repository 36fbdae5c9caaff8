"""Offsets passed over by the consumer are caught; redeliveries and moved partitions are not gaps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskpulse.stream.core.continuity import Gap, OffsetContinuity


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


# -- after an assignment, and filling in what was passed over ---------------------------------

import asyncio  # noqa: E402
from typing import AsyncIterator  # noqa: E402

from riskpulse.stream.core.continuity import Plan, in_offset_order  # noqa: E402


def test_the_first_record_after_an_assignment_is_judged_against_the_committed_offset() -> None:
    """faust's stale read offset: the partition comes back with committed offset 120, faust hands 131."""
    c = OffsetContinuity()
    c.assigned({0, 1})
    assert c.check(0, 131, committed=120) == Gap(0, 120, 131)
    assert c.check(1, 7, committed=7) is None  # starts where the group left off
    assert c.check(1, 8, committed=3) is None  # only the first record is judged so


def test_a_kept_partition_is_judged_again_from_the_committed_offset() -> None:
    """faust forgets at every rebalance which records were processed since its last commit: they
    count for the commit only if handed over or filled in again. Here 50-59 were processed, the
    group committed 55, and after the rebalance faust's stale read offset makes it hand over 70:
    55-69 are a gap (judged from 60, 55-59 were never processed again and held the commit at 55)."""
    c = OffsetContinuity()
    for o in range(50, 60):
        c.check(0, o, committed=None)
    c.assigned({0})
    assert c.check(0, 70, committed=55) == Gap(0, 55, 70)
    c.assigned({0})
    assert c.check(0, 55, committed=55) is None  # redelivered from the commit: not a gap
    assert c.check(0, 72, committed=55) == Gap(0, 56, 72)


def test_a_batch_abandoned_after_the_assignment_is_read_again_from_the_committed_offset() -> None:
    """A batch a rebalance overtook went on past the new assignment and judged 60-64 (taking the
    partition's first check), then was abandoned: never processed, they are a gap again when the
    next record handed over is 65."""
    c = OffsetContinuity()
    for o in range(50, 60):
        c.check(0, o, committed=None)
    before = c.positions([0, 1])
    c.assigned({0})
    for o in range(60, 65):
        assert c.check(0, o, committed=60) is None
    c.abandoned(before)
    assert c.expected == {0: 60}  # until a record comes (nothing may: the stream's end), 60 is next
    assert c.check(0, 65, committed=60) == Gap(0, 60, 65)
    # a partition first seen in the abandoned batch: no expectation left, the committed offset decides
    c.assigned({0, 1})
    c.check(0, 60, committed=60)
    before = c.positions([1])
    c.check(1, 7, committed=7)
    c.abandoned(before)
    assert 1 not in c.expected and c.check(1, 9, committed=7) == Gap(1, 7, 9)


def test_a_kept_partition_without_a_committed_offset_goes_on_from_where_this_worker_left_off() -> None:
    c = OffsetContinuity()
    for o in range(50, 60):
        c.check(0, o, committed=None)
    c.assigned({0})
    assert c.check(0, 70, committed=None) == Gap(0, 60, 70)


def test_a_kept_partition_the_group_never_committed_is_judged_from_where_this_worker_left_off() -> None:
    """A worker evicted before its first commit processed 0-4; meanwhile retention deleted 5-24,
    so the group's start is the log start, 25. Judged from 25, nothing was missing (seen in CI:
    twenty deleted records neither counted nor logged); judged from 5, 5-24 are the gap."""
    c = OffsetContinuity()
    for o in range(5):
        c.check(0, o, committed=None)
    c.assigned({0, 1})
    assert c.start_without_commit(0, log_start=25) == 5
    assert c.check(0, 25, committed=c.start_without_commit(0, log_start=25)) == Gap(0, 5, 25)
    assert c.start_without_commit(1, log_start=25) == 25  # a partition new to this worker: the log start
    c.assigned({0})
    c.seen(0, 40)
    assert c.start_without_commit(0, log_start=30) == 30  # this worker read past the log start: redelivered from it
    assert c.start_without_commit(0, log_start=-1) == -1  # no log start known: nothing to judge from


def test_a_loss_judged_again_is_reported_once() -> None:
    """The batch that revealed 5-24 as deleted is abandoned at a rebalance and read again from the
    group's commit at 5: the same gap, judged twice, is one loss."""
    c = OffsetContinuity()
    first = c.report_loss(OffsetContinuity.plan(Gap(0, 5, 40), log_start=25))
    assert first == range(5, 25)
    assert c.report_loss(OffsetContinuity.plan(Gap(0, 5, 40), log_start=25)) == range(0)
    assert c.report_loss(OffsetContinuity.plan(Gap(0, 5, 60), log_start=30)) == range(25, 30)  # only what is new
    assert c.report_loss(OffsetContinuity.plan(Gap(1, 5, 40), log_start=25)) == range(5, 25)  # another partition
    assert c.report_loss(OffsetContinuity.plan(Gap(0, 70, 80), log_start=0)) == range(0)  # nothing lost


def test_no_committed_offset_means_nothing_to_judge() -> None:
    c = OffsetContinuity()
    c.assigned({0})
    assert c.check(0, 900, committed=None) is None


def test_records_retention_deleted_are_lost_and_the_rest_is_filled_in() -> None:
    gap = Gap(0, 5, 40)
    assert OffsetContinuity.plan(gap, log_start=25) == Plan(gap, 25, 20)  # 5-24 gone, 25-39 read
    assert OffsetContinuity.plan(gap, log_start=0) == Plan(gap, 5, 0)
    assert OffsetContinuity.plan(gap, log_start=None) == Plan(gap, 5, 0)  # unknown: read it all
    everything = Gap(1, 5, 25)
    assert OffsetContinuity.plan(everything, log_start=25) == Plan(everything, None, 20)
    assert OffsetContinuity.plan(everything, log_start=90) == Plan(everything, None, 20)  # never more than the gap


def _walk(c: OffsetContinuity, delivered: list[tuple[int, int]], held: dict[int, list[int]],
          committed: int | None = None, chunk: int = 4) -> list[list[tuple[int, int]]]:
    """Run :func:`in_offset_order` over ``delivered`` (partition, offset) with a broker holding
    ``held[partition]`` offsets (gaps in it: markers or deleted), read two records per page."""
    async def fill(gap: Gap) -> AsyncIterator[list[tuple[int, int]]]:
        plan = c.plan(gap, min(held[gap.partition], default=0))
        at = plan.fill_from
        while at is not None and at < gap.next_seen:
            page = [o for o in held[gap.partition] if at <= o < gap.next_seen][:2]
            if not page:
                return
            yield [(gap.partition, o) for o in page]
            at = page[-1] + 1

    async def run() -> list[list[tuple[int, int]]]:
        return [chunk_ async for chunk_ in in_offset_order(delivered, c, lambda e: (e[0], e[1], committed), fill, chunk)]

    return asyncio.run(run())


def test_a_gap_is_filled_in_just_before_the_record_that_revealed_it_in_bounded_chunks() -> None:
    c = OffsetContinuity()
    c.assigned({0, 1})
    chunks = _walk(c, [(1, 0), (0, 127), (0, 128), (1, 1)], {0: list(range(200)), 1: list(range(5))}, committed=120)
    assert all(len(x) <= 4 for x in chunks)
    assert [e for x in chunks for e in x] == [(1, 0)] + [(0, o) for o in range(120, 129)] + [(1, 1)]


def test_offsets_that_hold_no_record_are_neither_filled_nor_lost() -> None:
    """A third party's transactional producer: one offset per commit marker (10 and 13 here)."""
    c = OffsetContinuity()
    held = {0: [o for o in range(40) if o not in (10, 13)]}
    flat = [e for x in _walk(c, [(0, 9), (0, 11), (0, 12), (0, 20)], held) for e in x]
    assert flat == [(0, 9), (0, 11), (0, 12)] + [(0, o) for o in range(14, 21)]


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 5)), min_size=1, max_size=60),
       st.sets(st.integers(0, 300), max_size=8), st.integers(1, 7))
def test_a_consumer_that_skips_anywhere_still_yields_every_record_in_order(
        steps: list[tuple[int, int]], skips: set[int], chunk: int) -> None:
    """A simulated faust: it delivers each partition in order but jumps ahead at ``skips``, and
    after a jump it sometimes hands the skipped records over late (a redelivery). Every offset
    reaches processing in offset order per partition the first time (what the aggregator's
    exactness needs), and a late one only as a redelivery."""
    c = OffsetContinuity()
    c.assigned({0, 1, 2})
    position = {p: 0 for p in range(3)}
    delivered: list[tuple[int, int]] = []
    for partition, n in steps:
        for _ in range(n):
            offset = position[partition]
            if offset in skips:
                offset += 3  # faust passes over three records
                if offset % 2:
                    delivered.append((partition, offset))
                    delivered += [(partition, o) for o in range(offset - 3, offset)]  # ... and hands them over after
                    position[partition] = offset + 1
                    continue
            delivered.append((partition, offset))
            position[partition] = offset + 1
    flat = [e for x in _walk(c, delivered, {p: list(range(400)) for p in range(3)}, committed=0, chunk=chunk) for e in x]
    for partition in range(3):
        offsets = [o for p, o in flat if p == partition]
        first_time = [o for i, o in enumerate(offsets) if o not in offsets[:i]]
        assert first_time == list(range(position[partition]))


# -- records dropped after the fetch, with nothing after them --------------------------------

from riskpulse.stream.core.continuity import CATCH_UP_AFTER_S, DroppedAfterFetch  # noqa: E402


def test_records_handed_over_and_never_processed_are_read_again_once_quiet() -> None:
    d = DroppedAfterFetch()
    assert d.dropped(0, read=581, expected=211, highwater=582, now=0.0) is None  # may still be on its way
    assert d.dropped(0, 581, 211, 582, now=CATCH_UP_AFTER_S - 0.1) is None
    assert d.dropped(0, 581, 211, 582, now=CATCH_UP_AFTER_S) == 211
    assert d.dropped(0, 581, 211, 582, now=CATCH_UP_AFTER_S + 0.5) is None  # judged afresh after a seek
    # after a seek faust's read offset is the offset sought: a record there, never delivered
    d.dropped(1, 40, 40, 41, 0.0)
    assert d.dropped(1, 40, 40, 41, CATCH_UP_AFTER_S) == 40


def test_a_consumer_behind_the_expected_offset_that_hands_over_nothing_is_sought_there() -> None:
    """CI's kill -9 run: faust's read offset 102, the worker expects 112, records up to 286 wait,
    nothing handed over while the scorer waits: seek to 112 (not a restart 45 s later)."""
    d = DroppedAfterFetch()
    assert d.dropped(0, read=102, expected=112, highwater=287, now=0.0) is None  # may still be on its way
    assert d.dropped(0, 103, 112, 287, now=1.0) is None  # handed over a redelivery: moving, wait again
    assert d.dropped(0, 103, 112, 287, now=1.0 + CATCH_UP_AFTER_S) == 112
    assert d.dropped(1, 102, 112, 112, now=0.0) is None and d.dropped(1, 102, 112, 112, now=100.0) is None  # nothing waits


def test_progress_or_a_busy_scorer_restarts_the_wait_and_caught_up_partitions_are_left_alone() -> None:
    d = DroppedAfterFetch()
    d.dropped(0, 581, 211, 582, 0.0)
    assert d.dropped(0, 581, 300, 582, CATCH_UP_AFTER_S) is None  # it moved: not dropped, slow
    d.busy()
    assert d.dropped(0, 581, 300, 582, 2 * CATCH_UP_AFTER_S) is None
    assert d.dropped(0, 581, 300, 582, 3 * CATCH_UP_AFTER_S) == 300
    assert d.dropped(1, 99, 100, 100, 0.0) is None and d.dropped(1, 99, 100, 100, 100.0) is None  # all processed
    d.dropped(2, 100, 100, 100, 0.0)
    assert d.dropped(2, 100, 100, 100, 100.0) is None  # sought to the end: nothing there
    assert d.dropped(3, None, 5, 9, 100.0) is None and d.dropped(3, 5, None, 9, 100.0) is None  # nothing known
    assert d.dropped(3, 5, 5, None, 100.0) is None


def test_records_the_client_has_not_yet_fetched_are_waited_for_not_sought() -> None:
    """Under a burst the fetcher reaches the sinks' topics seconds late: while the Kafka client has
    given faust nothing past the offset expected, nothing was dropped however long it is quiet
    (seen: news.scored and trends sought back every few seconds of a 30,000-item burst, each seek
    making faust drop what it had fetched). Past it, the wait is judged as before."""
    d = DroppedAfterFetch()
    for now in (0.0, CATCH_UP_AFTER_S, 10 * CATCH_UP_AFTER_S):
        assert d.dropped(0, read=28, expected=29, highwater=33, now=now, fetched=29) is None
        assert d.dropped(1, read=102, expected=112, highwater=287, now=now, fetched=104) is None
    # the client gave faust records past the offset expected and faust handed none over: dropped
    assert d.dropped(0, 28, 29, 33, now=11 * CATCH_UP_AFTER_S, fetched=33) is None  # the wait starts now
    assert d.dropped(0, 28, 29, 33, now=12 * CATCH_UP_AFTER_S, fetched=33) == 29
    assert d.dropped(1, 102, 112, 287, now=11 * CATCH_UP_AFTER_S, fetched=None) is None  # position unknown:
    assert d.dropped(1, 102, 112, 287, now=12 * CATCH_UP_AFTER_S, fetched=None) == 112  # judged as before


# -- the glue (stream/runtime/passed_over.py) with a broker that does not answer ------------------------

from riskpulse.stream.runtime import passed_over  # noqa: E402


class _Signal:
    def connect(self, handler: object) -> None:
        self.handler = handler


class _App:
    on_partitions_assigned = _Signal()
    consumer = None


class _SilentBroker:
    """BrokerOffsets as it answers while the brokers are down: None to every question."""

    def __init__(self) -> None:
        self.asked = 0

    async def start(self, keys: object) -> None:
        self.asked += 1
        return None

    async def read(self, *args: object) -> None:
        self.asked += 1
        return None


def test_a_hole_that_cannot_be_read_while_the_broker_is_down_is_an_infrastructure_fault(
        monkeypatch: "pytest.MonkeyPatch") -> None:
    """Filling in what faust passed over asks the broker again with backoff, then gives up with
    an error that names the partition and offsets: the agent ends and the worker restarts with
    the batch unacknowledged (read again), never skipping the hole."""
    monkeypatch.setattr(passed_over, "FILL_DEADLINE_S", 1.0)
    sleeps: list[float] = []

    async def no_sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(0.3)  # time passes; the deadline is reached after a few questions

    real_sleep = asyncio.sleep
    monkeypatch.setattr(passed_over.asyncio, "sleep", no_sleep)
    broker = _SilentBroker()
    bookkeeping = passed_over.PassedOver(_App(), {"news"}, broker)  # type: ignore[arg-type]
    done: list[object] = []

    async def drain() -> None:
        async for _ in bookkeeping._fill(Gap(("news", 2), 10, 15), done):  # noqa: SLF001
            raise AssertionError("nothing can be read from a broker that does not answer")

    with pytest.raises(passed_over.BrokerUnavailable, match=r"news partition 2 \(offsets 10 to 14"):
        asyncio.run(drain())
    assert broker.asked >= 3 and sleeps[:3] == [0.5, 1.0, 2.0] and done == []


class _Message:
    def __init__(self, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = "news", partition, offset
        self.tp = ("news", partition)


class _Event:
    def __init__(self, partition: int, offset: int) -> None:
        self.message = _Message(partition, offset)


class _CommittingBroker:
    """The group committed news-0 up to 200 and never news-1 (whose log starts at 7); records can be read."""

    def __init__(self) -> None:
        self.questions: list[tuple[str, object]] = []

    async def committed(self, group: str, keys: object, wait: bool = False) -> dict[tuple[str, int], int]:
        self.questions.append(("committed", sorted(keys)))  # type: ignore[call-overload]
        return {key: {0: 200, 1: -1}[key[1]] for key in keys}  # type: ignore[attr-defined]

    async def start(self, keys: object) -> dict[tuple[str, int], int]:
        self.questions.append(("start", sorted(keys)))  # type: ignore[call-overload]
        return {key: 7 for key in keys}  # type: ignore[attr-defined]

    async def read(self, key: tuple[str, int], start: int, stop: int, limit: int = 500) -> list[object]:
        return [type("Record", (), {"topic": key[0], "partition": key[1], "offset": o, "key": None, "value": b"{}",
                                    "timestamp": 0, "headers": []})() for o in range(start, stop)]


def test_a_partition_whose_first_record_came_after_a_skipped_one_is_filled_from_the_group_commit() -> None:
    """faust had not loaded the committed offset when the first records of a fresh assignment
    arrived, and had skipped the first one: the start is asked of the broker, so the skipped
    record is seen as a hole and read, instead of defining the start (and holding the commit)."""
    app = _App()
    app.conf = type("Conf", (), {"id": "riskpulse"})()  # type: ignore[attr-defined]
    broker = _CommittingBroker()
    bookkeeping = passed_over.PassedOver(app, {"news"}, broker)  # type: ignore[arg-type]
    bookkeeping.continuity.assigned({("news", 0), ("news", 1)})
    done: list[object] = []

    async def run(events: list[_Event]) -> list[tuple[int, int]]:
        out = []
        async for chunk in bookkeeping.complete(events, 100, done):
            out += [(e.message.partition, e.message.offset) for e in chunk]
        return out

    seen = asyncio.run(run([_Event(0, 201), _Event(0, 202), _Event(1, 8)]))
    assert seen == [(0, 200), (0, 201), (0, 202), (1, 7), (1, 8)]  # 200 and the log start of news-1 filled in
    assert [d[1:] for d in done] == [(200, 200), (7, 7)]  # type: ignore[index]
    assert broker.questions[:2] == [("committed", [("news", 0), ("news", 1)]), ("start", [("news", 1)])]
    asked = len(broker.questions)
    assert asyncio.run(run([_Event(0, 203)])) == [(0, 203)]
    assert len(broker.questions) == asked  # asked once per assignment


# -- with faust's own commit bookkeeping (faust-streaming's Consumer methods, pinned version) -----

from collections import defaultdict  # noqa: E402

from faust.transport.consumer import Consumer as FaustConsumer  # noqa: E402
from faust.types import TP  # noqa: E402
from intervaltree import IntervalTree  # noqa: E402


class _FaustCommits:
    """faust's commit bookkeeping of a consumer: its ``_new_offset`` and ``_add_gap`` run as they
    are; ``ack``, ``revoke`` and ``assign`` do what faust's ``Consumer.ack``,
    ``on_partitions_revoked`` and ``perform_seek`` do to the same fields."""

    _new_offset = FaustConsumer._new_offset
    _add_gap = FaustConsumer._add_gap

    def __init__(self) -> None:
        self._acked: dict[TP, list[int]] = defaultdict(list)
        self._acked_index: dict[TP, set[int]] = defaultdict(set)
        self._gap: dict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)

    def ack(self, tp: TP, offset: int) -> None:
        committed = self._committed_offset[tp]
        if (committed is None or offset >= committed) and offset not in self._acked_index[tp]:
            self._acked_index[tp].add(offset)
            self._acked[tp].append(offset)

    def commit(self, tp: TP) -> int | None:
        offset = self._new_offset(tp)
        if offset is not None and (self._committed_offset[tp] is None or offset > self._committed_offset[tp]):
            self._committed_offset[tp] = offset
        return self._committed_offset[tp]

    def revoke(self, tp: TP) -> None:  # eager rebalancing: every partition, kept or not
        for field_ in (self._gap, self._acked, self._acked_index, self._committed_offset):
            field_.pop(tp, None)

    def assign(self, tp: TP, committed: int) -> None:
        self._committed_offset[tp] = committed


class _HoldingBroker:
    async def start(self, keys: object) -> dict[tuple[str, int], int]:
        return {key: 0 for key in keys}  # type: ignore[attr-defined]

    async def read(self, key: tuple[str, int], start: int, stop: int, limit: int = 500) -> list[object]:
        return [type("Record", (), {"topic": key[0], "partition": key[1], "offset": o, "key": None, "value": b"{}",
                                    "timestamp": 0, "headers": []})() for o in range(start, min(stop, start + limit))]


def _process(bookkeeping: passed_over.PassedOver, faust: _FaustCommits, tp: TP, offsets: range) -> list[int]:
    """One batch as the agent runs it: the delivered records with holes filled in, the filled
    holes marked once the batch is written, then the delivered records released (acknowledged).
    Returns the offsets processed, in order."""
    done: list[tuple[TP, int, int]] = []

    async def run() -> list[int]:
        out = []
        async for chunk in bookkeeping.complete([_Event(tp.partition, o) for o in offsets], 100, done):
            out += [e.message.offset for e in chunk]
        await bookkeeping.mark_done(done)
        return out

    seen = asyncio.run(run())
    for o in offsets:
        faust.ack(tp, o)
    return seen


def test_records_faust_forgot_at_a_rebalance_and_then_dropped_are_filled_in_and_committed() -> None:
    """The stopped-mid-backlog failure (CI: commit stuck at 242 of 618, every record processed):
    the worker processed 242-300 of a partition, a rebalance came before faust committed them and
    let the worker keep the partition; faust forgot them, sought back to 242, and its stale read
    offset made it drop 242-309 and hand over 310 on. Judged from where the worker had left off
    (301) only 301-309 were filled in, and 242-300, never acknowledged again, held the commit."""
    app = _App()
    app.consumer = faust = _FaustCommits()  # type: ignore[assignment]
    bookkeeping = passed_over.PassedOver(app, {"news"}, _HoldingBroker())  # type: ignore[arg-type]
    tp = TP("news", 0)
    faust.assign(tp, 242)
    bookkeeping.continuity.assigned({("news", 0)})

    assert _process(bookkeeping, faust, tp, range(242, 301)) == list(range(242, 301))
    faust.revoke(tp)  # the rebalance, before faust's commit interval came round
    faust.assign(tp, 242)
    bookkeeping.continuity.assigned({("news", 0)})
    assert _process(bookkeeping, faust, tp, range(310, 618)) == list(range(242, 618))  # 242-309 filled in before 310
    assert faust.commit(tp) == 618


class _CorrectedCommits(_FaustCommits):
    """The same fields, with riskpulse's corrections (stream/runtime/commits.py) installed for ``news``."""

    def __init__(self, app: object) -> None:
        super().__init__()
        self.app = app

    def _new_offset(self, tp: TP) -> int | None:  # type: ignore[override]
        return FaustConsumer._new_offset(self, tp)  # type: ignore[arg-type]  # as installed

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:  # type: ignore[override]
        await FaustConsumer._add_gap(self, tp, offset_from, offset_to)  # type: ignore[arg-type]


def test_the_commit_follows_what_was_processed_when_faust_jumps_ahead_after_a_seek() -> None:
    """CI's stopped-mid-backlog failure (commit 304 of 618 a minute after every record was
    processed): the new worker's consumer, sought to the commit (196), first handed over 585. faust
    marked 197-584 done at once, unread; then it handed over 196-227, and the worker filled in
    228-584 and went on. faust's walk over its acknowledged offsets, which now held 197-227 twice,
    stopped at each repeat: the commit moved one offset a second. Corrected, faust's own mark is
    ignored, the commit waits for the records, and then moves to the end in one step."""
    from riskpulse.stream.runtime import commits as faust_commits

    app = _App()
    app.consumer = faust = _CorrectedCommits(app)  # type: ignore[assignment]
    faust_commits.install(app, {"news"})
    bookkeeping = passed_over.PassedOver(app, {"news"}, _HoldingBroker())  # type: ignore[arg-type]
    tp = TP("news", 0)
    faust.assign(tp, 196)
    bookkeeping.continuity.assigned({("news", 0)})

    asyncio.run(faust._add_gap(tp, 197, 585))  # faust's consumer: read offset 196, first record 585
    assert faust.commit(tp) == 196  # nothing processed yet: nothing committed
    assert _process(bookkeeping, faust, tp, range(196, 228)) == list(range(196, 228))
    assert faust.commit(tp) == 228  # not past 228-584, which nobody has read
    assert _process(bookkeeping, faust, tp, range(585, 600)) == list(range(228, 600))  # 228-584 filled in before 585
    # redelivered after a seek back: acknowledged over a range already marked
    assert _process(bookkeeping, faust, tp, range(300, 311)) == list(range(300, 311))
    assert _process(bookkeeping, faust, tp, range(600, 618)) == list(range(600, 618))
    assert faust.commit(tp) == 618  # in one step

    other = TP("news.scored", 0)  # a topic riskpulse does not fill: faust's bookkeeping as it is
    faust.assign(other, 10)
    asyncio.run(faust._add_gap(other, 11, 20))
    faust.ack(other, 21)
    assert faust.commit(other) == 22  # faust's: its own gap, and one missing offset at the head (10) passed


def test_the_fetch_position_is_read_from_aiokafkas_own_state_and_unknown_reads_as_none() -> None:
    """The position faust's consumer thread has handed over, read where aiokafka keeps it (the
    subscription state its fetcher moves as it gives records away); no position, no assignment
    or no consumer yet: None (judged as before), never an exception in the once-a-second check."""
    from types import SimpleNamespace

    from aiokafka.consumer.subscription_state import SubscriptionState
    from aiokafka.structs import TopicPartition
    from faust.types import TP

    from riskpulse.stream.runtime.passed_over import fetch_position

    async def positions() -> list[int | None]:
        subscriptions = SubscriptionState()
        client = SimpleNamespace(_fetcher=SimpleNamespace(_subscriptions=subscriptions))
        consumer = SimpleNamespace(_thread=SimpleNamespace(_ensure_consumer=lambda: client))
        tp = TP("news", 0)
        subscriptions.assign_from_user({TopicPartition("news", 0)})
        seen = [fetch_position(consumer, tp)]  # assigned, awaiting a reset
        subscriptions.seek(TopicPartition("news", 0), 42)
        seen.append(fetch_position(consumer, tp))
        subscriptions.subscription.assignment.state_value(TopicPartition("news", 0)).consumed_to(50)  # handed over
        seen.append(fetch_position(consumer, tp))
        seen.append(fetch_position(consumer, TP("news", 1)))  # not assigned here
        seen.append(fetch_position(SimpleNamespace(), tp))  # no consumer thread yet
        return seen

    assert asyncio.run(positions()) == [None, 42, 50, None, None]


def test_a_stream_buffer_without_room_for_a_fetch_means_the_consumer_may_be_waiting_not_dropping() -> None:
    """faust hands a fetch over record by record and waits at a full stream buffer, handing nothing
    else over meanwhile (faust-streaming/faust#53): while any agent's buffer has less room than a
    fetch holds, other partitions standing still is no sign of dropped records (passed_over.py)."""
    import faust

    from riskpulse.stream.runtime.app import MAX_POLL_RECORDS
    from riskpulse.stream.runtime.passed_over import delivery_may_wait

    app = faust.App("delivery-test", store="memory://")
    news = app.topic("news", value_serializer="raw").clone(is_iterator=True)
    sink = app.topic("news.scored", value_serializer="raw").clone(is_iterator=True)
    app.topics.add(news)
    app.topics.add(sink)
    assert not delivery_may_wait(app)  # no buffer made yet

    async def fill(n: int) -> bool:
        for _ in range(n):
            news.queue.put_nowait(object())
        sink.queue  # noqa: B018 - an empty buffer beside it
        return delivery_may_wait(app)

    room = news.queue.maxsize if news._queue is not None else app.conf.stream_buffer_maxsize  # noqa: SLF001
    assert asyncio.run(fill(room - MAX_POLL_RECORDS)) is False  # room for a whole fetch
    assert asyncio.run(fill(1)) is True  # one record less: the fetch may be waiting on it
