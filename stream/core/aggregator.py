"""The aggregation core: dedupe, event-time windows, watermark, window closes (and the detector).

Plain code over one key-value store (:class:`~stream.core.state.Overlay`): the worker runs one
per partition of its counting stage, over that partition's keys of a Faust table, and judges
the closed windows in a second stage (stream/core/merge.py); the backtest and the tests run one
over a dict, with the detector. No Kafka in here; the agent only moves records in and out.

Exactly-once counting over at-least-once delivery. Every item carries its position in ``news``
(partition, offset). Window counters are kept per (window, key shard), and each shard records
the highest offset per source partition it has applied, in the same value as its counters, so
a redelivered item (a restart re-reads uncommitted input) is skipped by exactly the shards that
already hold it, whichever writes survived a crash. The same item re-sent at another offset is
recognised by its id in the dedupe entry.

Windows close in two steps. :meth:`Aggregator.next_close` computes a window's counters (and
trends and alerts) without changing state; the caller publishes them and waits for the broker's acknowledgement;
only then :meth:`Aggregator.commit` marks the window closed. A crash in between re-closes the
window after restart: the same trends (upserts downstream) and, because the detector ignores a
window it has already seen for a key, no alert twice.

Write order makes any crash point safe (the store keeps a prefix of the flushed writes, see
stream/core/state.py): counts and detector states first, then one marker value ``wm`` (partition
progress, the closed-through watermark and the open windows), then the deletion of closed
windows' counters. A window's counters are therefore never gone while it is still listed open.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal

from riskpulse.records import Alert, ScoredNews, Trend

from . import windows
from . import stories
from .dedupe import entries, entry_at, key_of_normalised, normalise_headline, replace_entry
from .limits import MAX_TICKERS
from .shards import shard_of
from .detection import Detection, Verdicts
from .state import Overlay
from .spread import SpreadConfig, commit_spread, due_alerts
from .story_state import Stories
from .time_index import TimeIndex
from .window_changes import MAX_WINDOW_VALUE_BYTES, Changes, applied, as_fix, by_shard, keys_of  # noqa: F401 (the budget)
from .watermark import PartitionClock

log = logging.getLogger(__name__)

KEY_SHARDS = 64  # window counters split by key hash: each table value stays small
MAX_KEYS_PER_SHARD = 256  # ~16k distinct keys per window
MAX_KEYS_PER_ITEM = 1 + MAX_TICKERS  # its topic and its tickers
DEDUPE_BUCKET_S = 600
PRUNE_EVERY_S = 3600.0
BEFORE_KEPT = 4  # corrected sightings kept under a dedupe entry whose headline came again

WM, PRUNED, BUCKETS = "wm", "pruned", "dedupe_buckets"
DEDUPE_INDEX = TimeIndex("db", BUCKETS, DEDUPE_BUCKET_S)  # dedupe entries by the time of their sighting
CLOSED_INDEX = TimeIndex("cb", "closed_buckets", DEDUPE_BUCKET_S)  # what closed windows held (corrections)

# "redelivered": the same record again after its window closed (a restart re-reads uncommitted
# input); it was counted, or judged late, the first time: neither counted nor late now
# "corrected": a new revision of an item whose window was closed: its change goes to the judges
Status = Literal["counted", "late", "duplicate", "resent", "redelivered", "corrected"]


class StateFull(Exception):
    """Counting the item would grow a window value past its cap (dead-letter it, never crash)."""


@dataclass(frozen=True)
class AggregatorConfig:
    window_s: int = 60
    lateness_s: int = 10
    idle_s: float = 5.0
    max_skew_s: float = 300.0
    dedupe_horizon_s: int = 86_400
    key_ttl_s: float = 7 * 86_400.0  # detector state of keys silent this long is dropped
    dedupe: bool = True  # off in the backtest, whose input was deduplicated (and its stories found) by the worker
    story_threshold: float = stories.THRESHOLD  # similarity that makes a headline a copy of a story (stream/core/stories.py)
    spread: SpreadConfig | None = None  # one negative story spreading fast is an alert of its own (stream/core/spread.py)
    confirm_idle: bool = False  # the worker's scorers send heartbeats: idleness needs one (watermark.py)


@dataclass(frozen=True)
class Added:
    item: ScoredNews  # with ``duplicate_of`` filled in
    status: Status


@dataclass
class WindowClose:
    """A window the watermark has passed: its counters merged (``parts``: per key shard, without
    bookkeeping) and, where the aggregator detects itself, its trends and alerts."""

    start: int
    watermark: float
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    verdicts: Verdicts | None = None
    committed: bool = False  # closed between records: in the state already (Aggregator._close_due)

    @property
    def trends(self) -> list[Trend]:
        return self.verdicts.trends if self.verdicts else []

    @property
    def alerts(self) -> list[Alert]:
        return self.verdicts.alerts if self.verdicts else []


_shard = shard_of


def _wkey(start: int, shard: int) -> str:
    return f"w|{start}|{shard}"


def _ckey(start: int) -> str:
    """What a closed window's values held when it closed: per key shard, the applied offsets."""
    return f"wc|{start}"


class Aggregator:
    """One instance per running aggregate agent (per partition of its input); all durable state
    lives in ``state``.

    With a ``detector``, closed windows come with their trends and alerts (the backtest, and a
    single aggregation partition). Without one, with their counters only (``WindowClose.parts``):
    the worker's first aggregation stage, whose windows are merged across partitions and judged
    per key in the second (stream/core/merge.py)."""

    def __init__(self, state: Overlay, config: AggregatorConfig, detector: Any, now_wall: float,
                 partitions: Iterable[int] = (), on_detector_error: Callable[[str, Exception], None] | None = None) -> None:
        self.stories = Stories(state, config.dedupe_horizon_s, config.story_threshold)
        self.state = state
        self.config = config
        self.detection = Detection(detector, config.window_s, on_detector_error) if detector is not None else None
        saved = state.get(WM) or {}
        self.clock = PartitionClock.restore(saved, config.idle_s, config.max_skew_s, now_wall, partitions,
                                            confirm=config.confirm_idle)
        self.closed = -math.inf if saved.get("closed") is None else float(saved["closed"])
        self.open: list[int] = sorted(int(s) for s in saved.get("open") or [])
        self.seq = int(saved.get("seq") or 0)  # bumped at every marker write: see :meth:`is_current`
        self._garbage: list[str] = []  # counters of closed windows, deleted after the marker
        # corrections of closed windows for the judges: (window start, key shard, (news partition, offset), fix);
        # the caller sends them (stream/stages/count.py) and empties the list
        self.fixes: list[tuple[int, int, tuple[int, int], dict[str, Any]]] = []
        self._touched: dict[str, None] = {}  # stories with a copy since the last spread_alerts (ordered), or due
        self._closed_inline: list[WindowClose] = []  # closed between records, to publish (_close_due)
        self.evidence_dropped = 0  # items counted without evidence rows: their window value was at its budget
        limit = now_wall + config.max_skew_s
        moved = self.clock.clamp_to(limit)
        if self.closed > limit or moved:
            log.error("persisted watermark was ahead of the wall clock; repaired to the clock",
                      extra={"closed": self.closed, "limit": limit, "partitions": moved})
            self.closed = min(self.closed, limit)
            self._save_marker()

    @property
    def state(self) -> Overlay:
        return self._state

    @state.setter
    def state(self, state: Overlay) -> None:
        """The caller hands each batch its own overlay (stream/stages/count.py)."""
        self._state = self.stories.state = state

    # -- items -----------------------------------------------------------------------------

    def add(self, item: ScoredNews, partition: int, offset: int, now_wall: float, behind: int = 0,
            retract: dict[str, Any] | None = None) -> Added:
        """Dedupe and count one scored item from ``news`` partition/offset. Raises only on a bad item.

        ``behind``: records of that partition still unread when it was scored (see watermark.py).
        ``retract``: the previous revision this one corrects, counted on this partition
        (stream/core/revisions.py): taken out in the same step as this one is counted.
        """
        ts = item.published_at.timestamp()
        late = self._is_late(ts)
        changes = Changes()
        if retract is not None:  # first: the revision it replaces may have had the same headline
            self._retract(item.id, retract, partition, offset, changes)
        if self.config.dedupe:
            normalised = normalise_headline(item.headline)
            words = stories.story_tokens(item.headline, normalised)
            dkey = "d|" + key_of_normalised(normalised, item.headline)
            update, status, story = self._dedupe(item, ts, partition, offset, dkey, words, late)
        else:  # the backtest: the worker found the stories (news.scored carries them)
            update, status, story, words, dkey = {}, "counted", item.story_id or item.id, frozenset(), ""
        update.update(self.stories.register(story, item, ts, partition, offset, words))
        item = item.model_copy(update=update)
        if self.config.spread is not None and self.config.dedupe:
            self._touched[story] = None  # judged for its spread once per batch (spread_alerts)
        if status in ("counted", "redelivered"):
            # into a closed window only a correction (as a fix for the judges, unless the window
            # held it when it closed: :meth:`_write`)
            if late and not (item.revision or 1) > 1:
                status = "late" if status == "counted" else "redelivered"
            else:
                self._count(item, ts, partition, offset, changes, dkey)
                status = "corrected" if late else "counted"
        self._write(changes, partition, offset)
        self.clock.observe(partition, ts, now_wall, behind)
        self._close_due(now_wall)
        return Added(item, status)

    def retract(self, item_id: str, replaced: dict[str, Any], partition: int, offset: int) -> None:
        """Take item ``item_id``'s previous revision out of the counts here: its correction, read
        at (partition, offset), was counted on another partition."""
        changes = Changes()
        self._retract(item_id, replaced, partition, offset, changes)
        self._write(changes, partition, offset)

    def _retract(self, item_id: str, replaced: dict[str, Any], partition: int, offset: int, changes: "Changes") -> None:
        """Only a revision that was counted here (its dedupe entry: first sighting, not late) is
        taken out, like an item is counted: by each window value that does not hold this record
        yet (:meth:`_write`). The entry is then marked gone, so its headline is news again for others."""
        dkey = "d|" + replaced["dkey"]
        value = self.state.get(dkey)
        here = [partition, offset]
        found = entry_at(value, item_id, [partition, replaced["offset"]])
        if found is None or found[1].get("late") or found[1].get("gone") not in (None, here):
            return
        at, entry = found
        ts = float(replaced["ts"])
        start = windows.window_start(ts, self.config.window_s)
        brought = list(entry.get("in") or [])
        fix = windows.uncount(replaced, item_id, brought)
        for shard, part in by_shard(fix, KEY_SHARDS).items():
            changes.add(start, shard, part)
        if brought:
            self.stories.not_brought_by(entry.get("story") or item_id, start, brought, [partition, replaced["offset"]],
                                        here)
        if entry.get("gone") is None:
            self.state.set(dkey, replace_entry(value, at, {**entry, "gone": here}))

    def heard(self, partition: int, now_wall: float, behind: int = 0, event_ts: float | None = None) -> None:
        """A partition's progress without an item: a heartbeat, its records failed before scoring,
        or (``event_ts``) its scorer sent items up to that event time, to this partition of the
        aggregation input or to others (each partition's clock then follows every item of ``news``)."""
        if event_ts is not None:
            self.clock.observe(partition, event_ts, now_wall, behind)
        else:
            self.clock.heard(partition, now_wall, behind)
        self._close_due(now_wall)

    def _dedupe(self, item: ScoredNews, ts: float, partition: int, offset: int, dkey: str,
                words: frozenset[str], late: bool) -> tuple[dict[str, Any], Status, str]:
        """Exact re-publication first (the same normalised headline), then the story: a first
        sighting joins the story it is a near-copy of, or starts one (stream/core/story_state.py).
        Returns the fields to update on the item, its status and its story."""
        current = self.state.get(dkey)
        mine = entry_at(current, item.id, [partition, offset])
        if mine is not None:  # this very record, read again (a story a crash lost is made again by its register)
            return {}, "redelivered", mine[1].get("story") or item.id  # the window shards know whether they hold it
        first = current
        if first is not None and first.get("gone") is not None:
            first = None  # a revision since corrected: its headline no longer stands for the item
        if first is not None and first["id"] == item.id:
            return {}, "resent", first.get("story") or item.id  # the same item sent again: counted once, at its first position
        if first is not None and abs(ts - float(first["ts"])) <= self.config.dedupe_horizon_s:
            return {"duplicate_of": first["id"]}, "duplicate", first.get("story") or first["id"]
        story = self.stories.assign(item, ts, words)
        entry: dict[str, Any] = {"id": item.id, "ts": ts, "pos": [partition, offset], "story": story}
        if late and not (item.revision or 1) > 1:
            entry["late"] = True  # never counted: nothing to take back if it is corrected
        if current is not None and current.get("gone") is not None:  # a correction may still look for it
            entry["before"] = entries(current)[:BEFORE_KEPT]
        self.state.set(dkey, entry)
        DEDUPE_INDEX.add(self.state, dkey, ts)
        return {}, "counted", story

    def _is_late(self, ts: float) -> bool:
        return windows.window_start(ts, self.config.window_s) + self.config.window_s + self.config.lateness_s <= self.closed

    def _count(self, item: ScoredNews, ts: float, partition: int, offset: int, changes: "Changes", dkey: str) -> None:
        """``dkey``: the item's dedupe entry ("" in the backtest, which has none)."""
        start = windows.window_start(ts, self.config.window_s)
        keys = windows.keys_of(item)[:MAX_KEYS_PER_ITEM]
        cfg = self.config
        value = self.state.get(dkey) if dkey else None
        found = entry_at(value, item.id, [partition, offset])
        entry = found[1] if found is not None else None
        new_story: list[str] = []
        if item.sentiment_status == "scored":
            new_story = self.stories.brings_in(item.story_id or item.id, start, keys, partition, offset,
                                               self.closed - cfg.window_s - cfg.lateness_s)
            if entry is not None and "in" in entry:  # read again: the role its first reading recorded
                new_story = [k for k in keys if k in entry["in"]]
        keys_by_shard: dict[int, list[str]] = {}
        for key in keys:
            keys_by_shard.setdefault(_shard(key, KEY_SHARDS), []).append(key)
        for shard, shard_keys in keys_by_shard.items():
            changes.count(start, shard, item, shard_keys, new_story)
        if found is not None and entry is not None and value is not None and "in" not in entry:  # a correction takes the story out where this copy brought it in
            self.state.set(dkey, replace_entry(value, found[0], {**entry, "in": new_story}))

    def _write(self, changes: "Changes", partition: int, offset: int) -> None:
        """An item's changes to window counters, each (window, key shard) value once, where the
        value does not hold the record yet (redelivery): in place while the window is open; once
        it is closed, as corrections for the judges (:attr:`fixes`), unless the window held the
        record when it closed (what each value held is kept past the close: :meth:`commit`)."""
        p = str(partition)
        updates = []
        for (start, shard), ops in changes.items():
            if start + self.config.window_s + self.config.lateness_s <= self.closed:
                held = (self.state.get(_ckey(start)) or {}).get(str(shard)) or {}
                if held.get(p, -1) < offset:
                    self.fixes.append((start, shard, (partition, offset), as_fix(ops)))
                continue
            if start not in self.open:  # also on redelivery: the marker may not have kept it
                self.open = sorted(self.open + [start])
            current = self.state.get(_wkey(start, shard))
            if current is not None and current["applied"].get(p, -1) >= offset:
                continue  # this shard already holds the item (redelivery)
            held = current["keys"] if current is not None else {}
            new_keys = [k for k in keys_of(ops) if k not in held]
            if len(held) + len(new_keys) > MAX_KEYS_PER_SHARD:
                raise StateFull(f"window {start} holds {len(held)} keys in shard {shard}; "
                                f"at most {MAX_KEYS_PER_SHARD} (a flood of distinct tickers?)")
            value, with_evidence = applied(current, ops, p, offset)
            self.evidence_dropped += not with_evidence
            updates.append((_wkey(start, shard), value))
        for key, value in updates:
            self.state.set(key, value)

    # -- time --------------------------------------------------------------------------------

    def watermark(self, now_wall: float) -> float:
        return max(self.closed, self.clock.watermark(now_wall))

    def end_batch(self) -> None:
        """Write the marker after everything else of the batch, then drop closed windows' counters."""
        self._save_marker()
        for key in self._garbage:
            if self.state.get(key) is not None:
                self.state.delete(key)
        self._garbage = []

    def _save_marker(self) -> None:
        self.seq += 1
        self.state.set(WM, {**self.clock.saved(), "closed": self.closed if math.isfinite(self.closed) else None,
                            "open": self.open, "seq": self.seq})

    def is_current(self, state: Overlay) -> bool:
        """False if someone else wrote the store since this instance did (the partition moved to
        another worker and back): the caller then builds a fresh instance from the store."""
        return int((state.get(WM) or {}).get("seq") or 0) == self.seq

    # -- window closes -----------------------------------------------------------------------

    def _close_due(self, now_wall: float) -> None:
        """Windows close in the state the moment the watermark passes them, between one record
        and the next, not at the end of a batch: whether a record is late (or a correction of a
        closed window) then depends only on the records before it, so a batch read again after a
        crash, cut into other batches, decides every record as the first reading did. The
        closes wait in :attr:`_closed_inline` for :meth:`next_close` (published, then the state
        written: a crash in between closes them again on the next reading)."""
        while (close := self._due(now_wall)) is not None:
            self.commit(close)
            close.committed = True
            self._closed_inline.append(close)

    def next_close(self, now_wall: float, until: float | None = None) -> WindowClose | None:
        """The oldest window the watermark has passed, with its counters (and verdicts). Publish
        it, then :meth:`commit` it (a window closed between records is committed already in the
        state, which is written only after the publication; its commit does nothing).

        ``until`` forces the watermark at least that far (the backtest closes everything at the end).
        """
        if self._closed_inline:
            return self._closed_inline.pop(0)
        return self._due(now_wall, until)

    def _due(self, now_wall: float, until: float | None = None) -> WindowClose | None:
        """The oldest window the watermark has passed, with its counters (and verdicts); state unchanged."""
        wm = self.watermark(now_wall) if until is None else max(until, self.watermark(now_wall))
        cfg = self.config
        due = [s for s in self.open if s + cfg.window_s + cfg.lateness_s <= wm]
        if not due:
            return None
        start = min(due)
        close = WindowClose(start, wm)
        for shard in range(KEY_SHARDS):
            part = self.state.get(_wkey(start, shard))
            if part is not None:  # also one a correction emptied: it replaces what a crashed run may have sent
                close.parts[shard] = {"keys": part["keys"], "top": part["top"]}
        if self.detection is not None:
            merged = windows.empty_window()
            for part in close.parts.values():
                windows.merge(merged, part)
            close.verdicts = self.detection.judge(self.state, start, merged)
        return close

    def spread_alerts(self, now_wall: float) -> list[tuple[str, Alert]]:
        """The spread alerts due (stream/core/spread.py, :func:`~.spread.due_alerts`). Publish them,
        and once the broker has acknowledged them, :meth:`commit_spread` each (a crash in between
        sends the same record again: its id comes from the story)."""
        if self.config.spread is None:
            return []
        out, self._touched = due_alerts(self.stories, self.state, self.config.spread, self._touched,
                                        self.watermark(now_wall))
        return out

    def commit_spread(self, story_id: str, alert: Alert) -> None:
        commit_spread(self.stories, self.state, story_id, alert, self._touched)

    def commit(self, close: WindowClose) -> None:
        """Mark ``close`` done: call only once its trends and alerts (or counters) are acknowledged
        by the broker. Takes effect in the store with the batch's marker (:meth:`end_batch`).
        A window closed between records was committed when it closed: nothing to do."""
        if close.committed:
            return
        if self.detection is not None and close.verdicts is not None:
            self.detection.commit(self.state, close.start, close.verdicts)
        self._garbage += [_wkey(close.start, shard) for shard in range(KEY_SHARDS)]
        self._remember_close(close.start)
        self.closed = max(self.closed, close.watermark)
        self.open = [s for s in self.open if s != close.start]
        pruned = self.state.get(PRUNED)
        if pruned is None or close.watermark - float(pruned) >= PRUNE_EVERY_S:
            self.prune(close.watermark)

    def _remember_close(self, start: int) -> None:
        """A correction read after the window closed must know whether the window held it (the
        record was counted in place before a crash, and read again): the applied offsets of each
        key shard stay, for the dedupe horizon."""
        held = {}
        for shard in range(KEY_SHARDS):
            value = self.state.get(_wkey(start, shard))
            if value is not None:
                held[str(shard)] = dict(value["applied"])
        if held:
            self.state.set(_ckey(start), held)
            CLOSED_INDEX.add(self.state, _ckey(start), float(start))

    def settle(self, now_wall: float, until: float | None = None) -> float:
        """Once every window the watermark passed is closed, everything up to the watermark is:
        an item dated before it is late from now on, even in a window that never opened. Returns
        that closed-through time, which the second aggregation stage waits for from every
        partition before it judges a window (it must never learn of counts behind it)."""
        wm = self.watermark(now_wall) if until is None else max(until, self.watermark(now_wall))
        cfg = self.config
        if not any(s + cfg.window_s + cfg.lateness_s <= wm for s in self.open) and wm > self.closed:
            self.closed = wm
        return self.closed

    # -- bounded state -------------------------------------------------------------------------

    def prune(self, watermark: float) -> None:
        """Forget dedupe entries past their horizon and detector state of keys silent past ``key_ttl_s``."""
        cfg = self.config

        def forget(dkey: str, bucket_end: float) -> None:
            entry = self.state.get(dkey)
            if entry is not None and float(entry["ts"]) < bucket_end:
                self.state.delete(dkey)  # a later sighting, indexed in a later bucket, is kept
        DEDUPE_INDEX.prune(self.state, cfg.dedupe_horizon_s, watermark, forget)

        def forget_close(key: str, bucket_end: float) -> None:
            if self.state.get(key) is not None:
                self.state.delete(key)
        CLOSED_INDEX.prune(self.state, cfg.dedupe_horizon_s, watermark, forget_close)
        self.stories.prune(watermark)
        if self.detection is not None:
            self.detection.prune(self.state, watermark, cfg.key_ttl_s)
        self.state.set(PRUNED, watermark)
