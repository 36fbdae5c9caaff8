"""The offset a consumer may commit for one partition, from what it has processed.

A Kafka commit says "every record before this offset is done": committing past a record that
was not processed loses it at the next restart, and not committing past one that was makes the
commit, and with it lag figures and a restart's re-read, fall behind.

What is done is known two ways: offsets acknowledged one by one (records the consumer handed
over, released once their batch was processed) and ranges marked processed at once (records the
worker read on its own client where the consumer passed over them, stream/core/continuity.py).
The two overlap (a record filled in can also be handed over later, after a seek back), and an
offset may be acknowledged more than once: the answer depends only on the set of offsets done.

faust-streaming's own bookkeeping (``Consumer._new_offset``, pinned version) gets two things
wrong for the topics riskpulse reads in full, both seen in CI's stopped-mid-backlog test:

- it walks a sorted list of acknowledged offsets and stops at the first repeat, so where a
  marked range overlapped acknowledged offsets, the commit moved one offset per commit interval
  (a partition's commit 400 behind for seven minutes after every record was processed);
- it commits past one missing offset at the head (faust-streaming/faust#606), so a record at
  the committed offset that is still being processed, or not yet read, is committed over.

:func:`next_commit` is the rule without either: the commit moves to the end of the run of done
offsets that starts exactly at the committed offset, and nowhere else.
"""

from __future__ import annotations

from typing import Iterable


def next_commit(committed: int | None, acked: Iterable[int], processed: Iterable[tuple[int, int]]) -> int | None:
    """The offset to commit next (one past the last of the run of done offsets that starts at
    ``committed``), or None where nothing past ``committed`` can be committed.

    ``committed``: the next offset the group would read, or None where faust holds none (a group
    that never committed: the run then starts at the lowest offset done, as faust's does).
    ``acked``: offsets acknowledged, in any order, repeats allowed. ``processed``: ranges marked
    done, half-open ``(begin, end)``, in any order, overlaps allowed."""
    done = set(acked)
    ranges = sorted((b, e) for b, e in processed if e > b)
    lowest = [b for b, _ in ranges] + list(done)
    if committed is None and not lowest:
        return None
    start = committed if committed is not None else min(lowest)
    at = start
    for begin, end in ranges:
        while at in done:  # acknowledged offsets up to this range
            at += 1
        if begin > at:
            break  # the range starts past a missing offset
        at = max(at, end)  # inside or just before a marked range: on to its end
    while at in done:  # acknowledged offsets after the last range reached
        at += 1
    return at if at > start else None
