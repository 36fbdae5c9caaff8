"""The second aggregation stage: window counters merged across partitions, judged per key.

The first stage (stream/core/aggregator.py, one instance per partition of the scored topic,
partitioned by story so every copy of a story meets its first sighting) dedupes and counts.
Its windows hold only that partition's items, so a closed window is sent on as counters, each
key shard to the partition of this stage that owns it, and judged here, where all of a key's
counts meet: trends, the detector and its alerts (stream/core/detection.py).

A window is judged once every first-stage partition has said it is closed through the window's
end plus the lateness: each sends its counters of a closed window, then a note that the window
exists (to every partition here, so a key that is firing hears of windows without news about
it, as in one aggregator), and after every batch how far it is closed through. Records of one
partition arrive in the order it sent them, so when its closed-through passes a window, its
counters of that window are here. Nothing here adds: counters are stored per (window, source
partition, shard) and a repeat overwrites them, so redelivery and re-sent windows (a first
stage that crashed before its commit) change nothing; counters for a window already judged are
repeats and are ignored.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

from riskpulse.records import Trend

import orjson

from . import windows
from .aggregator import KEY_SHARDS, WindowClose
from .window_changes import MAX_WINDOW_VALUE_BYTES, MEASURED_ABOVE_KEYS
from .detection import Detection
from .state import Overlay

MARK, PRUNED, JUDGED = "mark", "pruned", "judged"
PRUNE_EVERY_S = 3600.0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_counters(counters: dict[str, Any]) -> None:
    """Counters as the first stage writes them (stream/core/windows.py), or ValueError: per key
    ``"type|name"`` seven numbers (five from a release before stories), and evidence rows of
    eleven fields (seven before stories, ten before incidents)."""
    keys, top = counters.get("keys"), counters.get("top") or {}
    if not isinstance(keys, dict) or not isinstance(top, dict):
        raise ValueError("window counters: 'keys' and 'top' must be objects")
    for key, counts in keys.items():
        if "|" not in key or not (isinstance(counts, list) and len(counts) in (5, windows.COUNTERS)
                                   and all(map(_number, counts))):
            raise ValueError(f"window counters of {key[:100]!r}: expected {windows.COUNTERS} numbers under 'type|name'")
    for key, rows in top.items():
        if not isinstance(rows, list) or not all(
                isinstance(r, list) and len(r) in (7, 10, windows.ROW) and _number(r[0]) and isinstance(r[1], str)
                and isinstance(r[2], str) and (r[3] is None or isinstance(r[3], str)) and all(map(_number, r[4:7]))
                and (len(r) == 7 or (isinstance(r[7], str) and _number(r[8]) and r[8] >= 1
                                     and (r[9] is None or (_number(r[9]) and r[9] >= 0))))
                and (len(r) < windows.ROW or (isinstance(r[10], list) and all(isinstance(t, str) for t in r[10])))
                for r in rows):
            raise ValueError(f"evidence of {key[:100]!r}: expected rows [score, id, headline, url, neg, neu, pos, "
                             "story, copies, sources, tickers]")


def _pkey(start: int, source: int, shard: int) -> str:
    return f"p|{start}|{source}|{shard}"


def _jkey(start: int, shard: int) -> str:
    return f"j|{start}|{shard}"


def _check_fix(fix: dict[str, Any]) -> None:
    """A correction as the first stage writes it (deltas may be negative), or ValueError."""
    _check_counters(fix)
    if not all(isinstance(i, str) for i in fix.get("drop") or []):
        raise ValueError("window correction: 'drop' must list item ids")


def _copy_value(value: dict[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {"keys": {}, "top": {}, "fixed": {}}
    return {"keys": {k: list(v) for k, v in value["keys"].items()}, "top": {k: list(v) for k, v in (value.get("top") or {}).items()},
            "fixed": dict(value.get("fixed") or {})}


class WindowMerge:
    """One instance per partition of the second stage; all durable state lives in ``state``."""

    def __init__(self, state: Overlay, window_s: int, lateness_s: int, sources: int, detector: Any,
                 key_ttl_s: float = 7 * 86_400.0,
                 on_detector_error: Callable[[str, Exception], None] | None = None,
                 correction_horizon_s: float = 6 * 3600.0) -> None:
        self.state = state
        self.correction_horizon_s = correction_horizon_s
        # corrected trends of windows judged already, to publish (the caller empties the list)
        self.corrected: list[Trend] = []
        self.window_s, self.lateness_s, self.sources, self.key_ttl_s = window_s, lateness_s, sources, key_ttl_s
        self.detection = Detection(detector, window_s, on_detector_error)
        saved = state.get(MARK) or {}
        self.through: dict[int, float] = {int(k): float(v) for k, v in (saved.get("through") or {}).items()}
        self.closed = -math.inf if saved.get("closed") is None else float(saved["closed"])
        self.open: list[int] = sorted(int(s) for s in saved.get("open") or [])
        self.seq = int(saved.get("seq") or 0)
        self._garbage: list[str] = []

    def _judged(self, start: int) -> bool:
        return start + self.window_s + self.lateness_s <= self.closed

    def part(self, source: int, start: int, shard: int, counters: dict[str, Any]) -> bool:
        """Counters of one key shard of a window closed in first-stage partition ``source``.
        False: the window was judged already (a repeat), nothing changed."""
        if not 0 <= shard < KEY_SHARDS or not 0 <= source < self.sources:
            raise ValueError(f"shard {shard} of source {source}: out of range (sources: {self.sources})")
        if self._judged(start):
            return False
        _check_counters(counters)  # a bad value stored would fail every later judging of the window
        self.state.set(_pkey(start, source, shard), {"keys": counters["keys"], "top": counters.get("top") or {}})
        self.window(start)  # (its note says which shards the close sent)
        return True

    def fix(self, source: int, start: int, shard: int, at: tuple[int, int],
            fix: dict[str, Any]) -> Literal["applied", "repeat", "too_old"]:
        """A correction from first-stage partition ``source`` to window ``start``, which it had
        closed: applied to its counters if the window is still to be judged here; if judged, to
        the window's kept counters, and its changed keys' trends go to :attr:`corrected` (the
        detector's verdict on the window stands). Nothing changes for a repeat, or for a window
        judged longer ago than the correction horizon."""
        if not 0 <= shard < KEY_SHARDS or not 0 <= source < self.sources:
            raise ValueError(f"shard {shard} of source {source}: out of range (sources: {self.sources})")
        _check_fix(fix)
        partition, offset = at
        if not self._judged(start):
            key, mark = _pkey(start, source, shard), str(partition)
        else:
            if str(start) not in (self.state.get(JUDGED) or {}):
                return "too_old"
            key, mark = _jkey(start, shard), f"{source}:{partition}"
        current = self.state.get(key)
        if current is not None and (current.get("fixed") or {}).get(mark, -1) >= offset:
            return "repeat"
        value = _copy_value(current)
        # a key a correction emptied before judging stays at zero: the judging publishes it (a
        # judging before a crash may have published it with counts)
        changed = windows.apply_fix(value, fix, keep_empty=not self._judged(start))
        value["fixed"][mark] = offset
        self.state.set(key, value)
        if not self._judged(start):
            self.window(start)
            return "applied"
        zero = [0, 0, 0, 0, 0.0, 0, 0, 0]  # a key left with nothing: its trend says so
        self.corrected += windows.trends(start, self.window_s, {
            "keys": {k: value["keys"].get(k, zero) for k in changed},
            "top": {k: value["top"][k] for k in changed if k in value["top"]}})
        return "applied"

    def window(self, start: int, source: int | None = None, shards: tuple[int, ...] | None = None) -> None:
        """A first-stage partition closed window ``start``: it is judged here too, news of this
        partition's keys in it or not. ``shards``: those ``source`` sent counters for with this
        close; counters of other shards from it are left over from an attempt that crashed before
        its commit (it counted an item the attempt that committed found late, or a correction
        took back out) and go."""
        if self._judged(start):
            return
        if start not in self.open:
            self.open = sorted(self.open + [start])
        if source is not None and shards is not None:
            sent = set(shards)
            for shard in range(KEY_SHARDS):
                if shard not in sent and self.state.get(_pkey(start, source, shard)) is not None:
                    self.state.delete(_pkey(start, source, shard))

    def closed_through(self, source: int, ts: float) -> None:
        """First-stage partition ``source`` has closed, and sent on, every window up to ``ts``."""
        if not 0 <= source < self.sources:
            raise ValueError(f"source {source} out of range (sources: {self.sources})")
        if ts > self.through.get(source, -math.inf):
            self.through[source] = ts

    def watermark(self) -> float:
        """How far every first-stage partition is closed through (nothing before it can change)."""
        if len(self.through) < self.sources:
            return -math.inf
        return min(self.through.values())

    def next_close(self) -> WindowClose | None:
        """The oldest window every source has closed, merged and judged; state unchanged."""
        wm = self.watermark()
        due = [s for s in self.open if s + self.window_s + self.lateness_s <= wm]
        if not due:
            return None
        start = min(due)
        close = WindowClose(start, wm)
        merged = windows.empty_window()
        for shard in range(KEY_SHARDS):
            for source in range(self.sources):
                part = self.state.get(_pkey(start, source, shard))
                if part:
                    into = close.parts.setdefault(shard, windows.empty_window())  # kept for corrections
                    windows.merge(into, part)
                    fixed = into.setdefault("fixed", {})  # corrections it holds: a repeat after judging is one
                    fixed.update({f"{source}:{k}": v for k, v in (part.get("fixed") or {}).items()})
                    windows.merge(merged, part)
        emptied = sorted(k for k, c in merged["keys"].items() if windows.is_empty(c))
        for key in emptied:  # corrected to nothing: a trend that says so, and nothing for the detector
            del merged["keys"][key]
            merged["top"].pop(key, None)
        close.verdicts = self.detection.judge(self.state, start, merged)
        close.verdicts.trends += windows.trends(start, self.window_s, {"keys": {k: [0, 0, 0, 0, 0.0, 0, 0, 0]
                                                                              for k in emptied}})
        return close

    def commit(self, close: WindowClose) -> None:
        """Mark ``close`` judged: call only once its trends and alerts are acknowledged."""
        assert close.verdicts is not None
        self.detection.commit(self.state, close.start, close.verdicts)
        self._garbage += [_pkey(close.start, source, shard) for shard in close.parts for source in range(self.sources)]
        self._keep_for_corrections(close)
        self.open = [s for s in self.open if s != close.start]
        self.closed = max(self.closed, close.start + self.window_s + self.lateness_s)
        pruned = self.state.get(PRUNED)
        if pruned is None or close.watermark - float(pruned) >= PRUNE_EVERY_S:
            self.detection.prune(self.state, close.watermark, self.key_ttl_s)
            self.state.set(PRUNED, close.watermark)

    def _keep_for_corrections(self, close: WindowClose) -> None:
        """A judged window's counters stay for the correction horizon, merged per key shard."""
        judged = dict(self.state.get(JUDGED) or {})
        for shard, part in close.parts.items():
            if part["keys"]:
                self.state.set(_jkey(close.start, shard), _within_budget(
                    {"keys": part["keys"], "top": part["top"], "fixed": part.get("fixed") or {}}))
        judged[str(close.start)] = sorted(s for s, p in close.parts.items() if p["keys"])
        for start in [s for s in judged if int(s) + self.window_s + self.correction_horizon_s <= close.watermark]:
            for shard in range(KEY_SHARDS):  # corrections may have added shards
                if self.state.get(_jkey(int(start), shard)) is not None:
                    self._garbage.append(_jkey(int(start), shard))
            del judged[start]
        self.state.set(JUDGED, judged)

    def end_batch(self) -> None:
        """The marker after everything else of the batch, then the judged windows' counters go."""
        self.seq += 1
        self.state.set(MARK, {"through": {str(k): v for k, v in sorted(self.through.items())},
                              "closed": self.closed if math.isfinite(self.closed) else None,
                              "open": self.open, "seq": self.seq})
        for key in self._garbage:
            if self.state.get(key) is not None:
                self.state.delete(key)
        self._garbage = []

    def is_current(self, state: Overlay) -> bool:
        """False if another worker wrote the store since (see Aggregator.is_current)."""
        return int((state.get(MARK) or {}).get("seq") or 0) == self.seq


def _within_budget(kept: dict[str, Any]) -> dict[str, Any]:
    """A judged window's shard as kept for corrections, under the counting stage's size budget
    (stream/core/aggregator.py): merged from every counting partition, its evidence can add up
    past it where each part stayed within. Trimmed to one evidence row per key, then to none (a
    corrected trend of such a window then comes without its evidence); counters always stay."""
    if len(kept["keys"]) <= MEASURED_ABOVE_KEYS or len(orjson.dumps(kept)) <= MAX_WINDOW_VALUE_BYTES:
        return kept
    one = {**kept, "top": {key: rows[:1] for key, rows in kept["top"].items()}}
    return one if len(orjson.dumps(one)) <= MAX_WINDOW_VALUE_BYTES else {**kept, "top": {}}
