"""faust's commit bookkeeping, corrected for the topics riskpulse reads in full.

For every topic its agents read (news, the two topics between its stages, and the outputs the
sinks read back into the store) riskpulse accounts for every offset itself: each record is
processed in offset order, and what faust passes over is read on the worker's own client and
processed in place (stream/runtime/passed_over.py). faust's bookkeeping then needs two corrections, both
seen in CI's stopped-mid-backlog test:

- faust marks a jump in the offsets it hands over as done at once (``Consumer._add_gap``, meant
  for compacted topics): after a seek back its first record can lie far ahead of the commit
  (seen: 585 with the commit at 196), so the 389 records between, not yet read, were marked done,
  and one acknowledged record past their start would have committed them all. For these topics
  faust's own gaps are ignored: a range is marked done by :func:`mark_processed` once its records'
  effects are written.
- the offset to commit comes from stream/core/commits.py (``next_commit``) instead of faust's
  ``_new_offset``, which stopped at repeated offsets (one offset per commit interval) and commits
  past one unprocessed offset at the head.

Topics not named to :func:`install` keep faust's bookkeeping as it is. The fields touched are
faust-streaming's (pinned in pyproject.toml); tests/stream/test_continuity.py runs the corrected
methods on the same fields.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

from faust.transport.consumer import Consumer

from ..core.commits import next_commit

# app -> names of the topics whose offsets riskpulse accounts for itself
_FILLED: "weakref.WeakKeyDictionary[Any, frozenset[str]]" = weakref.WeakKeyDictionary()
_ORIGINAL: dict[str, Callable[..., Any]] = {}


def _filled(consumer: Any, tp: Any) -> bool:
    app = getattr(consumer, "app", None)
    return app is not None and tp.topic in _FILLED.get(app, frozenset())


async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    if _filled(self, tp):
        return  # riskpulse reads these records itself and marks them once processed (mark_processed)
    await _ORIGINAL["_add_gap"](self, tp, offset_from, offset_to)


def new_offset(self: Any, tp: Any) -> int | None:
    """faust's ``Consumer._new_offset`` for a filled topic: the offset to commit (None: nothing
    new), with what it covers dropped from the bookkeeping."""
    if not _filled(self, tp):
        return _ORIGINAL["_new_offset"](self, tp)  # type: ignore[no-any-return]
    acked = self._acked[tp]
    gaps = self._gap[tp]
    offset = next_commit(self._committed_offset[tp], acked, [(iv.begin, iv.end) for iv in gaps])
    if offset is None:
        return None
    acked[:] = [o for o in acked if o >= offset]
    index = self._acked_index[tp]
    index.difference_update([o for o in index if o < offset])
    gaps.chop(0, offset)
    return offset


def mark_processed(consumer: Any, tp: Any, first: int, last: int) -> None:
    """Offsets ``first`` to ``last`` of ``tp`` are processed (their effects written): the commit may
    pass them. From the committed offset on (the next one the group reads: faust's own
    ``_add_gap`` starts one past it)."""
    committed = consumer._committed_offset[tp]  # noqa: SLF001 - faust-streaming is pinned
    if committed is not None:
        first = max(first, committed)
    if first <= last:
        gaps = consumer._gap[tp]  # noqa: SLF001
        gaps.addi(first, last + 1)
        gaps.merge_overlaps()


def install(app: Any, topics: set[str]) -> None:
    """Correct faust's bookkeeping for ``topics`` of ``app``'s consumer (idempotent; every other
    app and topic keeps faust's)."""
    if not _ORIGINAL:
        _ORIGINAL["_add_gap"] = Consumer._add_gap
        _ORIGINAL["_new_offset"] = Consumer._new_offset
        Consumer._add_gap = _add_gap  # type: ignore[method-assign]
        Consumer._new_offset = new_offset  # type: ignore[method-assign]
    _FILLED[app] = frozenset(topics)
