"""A closed window's verdicts: its trends, the detector's alerts, and which keys are firing.

Every key's detector state is its own (alerts/detector.py): a key's alerts depend only on that
key's windows, in window order. Detection therefore splits by key: the worker runs it in the
partition of the aggregation stage that owns the key (stream/core/merge.py), the backtest and
the single-store aggregator over every key at once, with the same results.

Like the window counters, verdicts are computed without changing state (:meth:`Detection.judge`)
and written only once the caller's trends and alerts are acknowledged (:meth:`Detection.commit`):
a crash in between judges the same window again, and the detector ignores a window it has
already seen for a key, so no alert is sent twice.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from riskpulse.records import Alert, Trend

from . import windows
from .shards import INDEX_SHARDS, shard_of
from .state import Overlay
from .time_index import TimeIndex

log = logging.getLogger(__name__)

FIRING = "firing"  # the keys firing, one sorted list per index shard: ``firing|<shard>`` (a release
# before kept one list of every firing key, ``firing``, read until the next commit replaces it): a
# feed can keep tens of thousands of keys firing (16,000 a window, three quiet windows each to resolve)

# detector states by the hour of their latest window, so keys silent past their TTL are found
# without scanning the store. Paged (stream/core/time_index.py): it held one dict per index shard
# of every key's latest window before (``ki|<shard>``), which grew with the distinct keys of a
# week; a feed naming 20 new tickers an item took a value past Kafka's 1 MB in under an hour of
# event time, and the judging stage stopped (tests/stream/test_time_index.py)
KEY_INDEX = TimeIndex("kb", "key_buckets", 3600)
LISTED = "listed"  # a detector state's field: the index bucket its key was last listed in
LEGACY_INDEX = "ki|"


def _copy_detector_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy the detector may change without touching ``state``: it replaces or pops its lists and
    edits the ``alert`` dict in place, never the rows inside ``pending`` (4x faster than deepcopy)."""
    return {k: list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v for k, v in state.items()}


@dataclass
class Verdicts:
    trends: list[Trend]
    alerts: list[Alert] = field(default_factory=list)
    detector_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    firing: list[str] = field(default_factory=list)


class Detection:
    """The detector over closed windows, its per-key state kept in an :class:`Overlay`."""

    def __init__(self, detector: Any, window_s: int,
                 on_detector_error: Callable[[str, Exception], None] | None = None) -> None:
        self.detector = detector
        self.window_s = window_s
        self.on_detector_error = on_detector_error or (lambda key, exc: None)

    def judge(self, state: Overlay, start: int, merged: dict[str, Any]) -> Verdicts:
        """Trends of the window's merged counters and what the detector says of them; state unchanged.

        Keys firing before this window but without news in it are told of a quiet window."""
        out = Verdicts(windows.trends(start, self.window_s, merged))
        firing = firing_keys(state)
        seen = set()
        for trend in out.trends:
            key = f"{trend.key_type}|{trend.key}"
            seen.add(key)
            self._observe(state, out, key, partial(self.detector.observe, trend=trend), create=True)
        for key in sorted(firing - seen):
            key_type, name = key.split("|", 1)
            self._observe(state, out, key, partial(self.detector.quiet_window, key_type=key_type, key=name,
                                                   start=start), create=False)
        after = {k: (out.detector_states[k] if k in out.detector_states else state.get("k|" + k))
                 for k in firing | seen}
        out.firing = sorted(k for k, st in after.items() if st is not None and st.get("alert") is not None)
        return out

    def _observe(self, state: Overlay, out: Verdicts, key: str, step: Callable[[dict[str, Any]], list[Alert]],
                 create: bool) -> None:
        saved = state.get("k|" + key)
        if saved is None and not create:
            return
        st = _copy_detector_state(saved) if saved is not None else self.detector.new_state()
        try:
            out.alerts += step(st)
        except Exception as exc:  # noqa: BLE001 - one key's arithmetic must not stop every key's windows
            log.exception("detector failed on one key; its window is published without a verdict", extra={"key": key})
            self.on_detector_error(key, exc)
            return
        out.detector_states[key] = st

    def commit(self, state: Overlay, start: int, verdicts: Verdicts) -> None:
        """Keep the verdicts: call only once the window's trends and alerts are acknowledged."""
        for key, st in verdicts.detector_states.items():
            _list(state, key, st, start)
            state.set("k|" + key, st)
        by_shard: list[list[str]] = [[] for _ in range(INDEX_SHARDS)]
        for key in verdicts.firing:
            by_shard[shard_of(key, INDEX_SHARDS)].append(key)
        for i, keys in enumerate(by_shard):
            if (state.get(f"{FIRING}|{i}") or []) != sorted(keys):
                state.set(f"{FIRING}|{i}", sorted(keys))
        if state.get(FIRING) is not None:
            state.delete(FIRING)

    @staticmethod
    def prune(state: Overlay, watermark: float, key_ttl_s: float) -> None:
        """Forget the detector state of keys silent for ``key_ttl_s`` (a key that is firing is kept,
        and listed again: it is looked at once more a TTL later)."""
        firing = firing_keys(state)
        again: list[tuple[str, dict[str, Any], float]] = []  # keys to list (again), at this time

        def relist_at(st: dict[str, Any]) -> float:  # a firing key: now (the backtest's last close is at infinity)
            return watermark if math.isfinite(watermark) else float(st.get("last") or 0)

        def forget(key: str, bucket_end: float) -> None:
            st = state.get("k|" + key)
            if st is None or (st.get(LISTED) or 0) >= bucket_end:
                return  # gone already, or listed again in a later bucket
            if key in firing:
                again.append((key, st, relist_at(st)))
            else:
                state.delete("k|" + key)
        KEY_INDEX.prune(state, key_ttl_s, watermark, forget)
        for i in range(INDEX_SHARDS):  # the index a release before pages kept: read once, then gone
            legacy = state.get(f"{LEGACY_INDEX}{i}")
            if legacy is None:
                continue
            for key, last in legacy.items():
                st = state.get("k|" + key)
                if st is None:
                    continue
                if last + key_ttl_s < watermark and key not in firing:
                    state.delete("k|" + key)
                else:
                    again.append((key, st, relist_at(st) if key in firing else float(last)))
            state.delete(f"{LEGACY_INDEX}{i}")
        for key, st, ts in again:
            st = dict(st)
            _list(state, key, st, ts)
            state.set("k|" + key, st)


def firing_keys(state: Overlay) -> set[str]:
    """The keys whose alert is firing."""
    legacy = state.get(FIRING)
    if legacy is not None:  # written by a release before the shards: until the next commit
        return set(legacy)
    return {key for i in range(INDEX_SHARDS) for key in state.get(f"{FIRING}|{i}") or []}


def _list(state: Overlay, key: str, st: dict[str, Any], ts: float) -> None:
    """List ``key`` in the index at ``ts`` unless its state says it is listed in that bucket
    already: a key with news every minute is listed once an hour, not sixty times."""
    bucket = int(ts // KEY_INDEX.bucket_s) * KEY_INDEX.bucket_s
    if st.get(LISTED) != bucket:
        KEY_INDEX.add(state, key, ts)
        st[LISTED] = bucket
