"""One record's changes to window counters, per (window start, key shard): what the aggregator
applies to an open window's value, or sends to the judges as a correction of a closed one
(stream/core/aggregator.py). A correction taking a revision out is a fix (stream/core/windows.py
``apply_fix``); an item counted under some keys is counted straight into the value, so the common
case stays as cheap as before corrections.
"""

from __future__ import annotations

from typing import Any, Iterable

import orjson

from riskpulse.records import ScoredNews

from . import windows
from .shards import shard_of


class Changes(dict):  # type: ignore[type-arg]
    """One item's changes to window counters, per (window start, key shard), in order: a
    correction taking a revision out (a fix, stream/core/windows.py ``apply_fix``), an item
    counted under some keys (counted straight into the value: the common case stays cheap)."""

    def add(self, start: int, shard: int, fix: dict[str, Any]) -> None:
        self.setdefault((start, shard), []).append(("fix", fix))

    def count(self, start: int, shard: int, item: ScoredNews, keys: list[str], new_story: list[str]) -> None:
        self.setdefault((start, shard), []).append(("count", item, keys, new_story))


def apply(value: dict[str, Any], ops: list[tuple[Any, ...]], evidence: bool = True) -> None:
    """``evidence`` False: counted without evidence rows (windows.count_keys)."""
    for op in ops:
        if op[0] == "count":
            windows.count_keys(value, op[1], op[2], op[3], evidence)
        else:
            windows.apply_fix(value, op[1])


# a window value's evidence stops growing at this size (its counters go on): a record, in the
# changelog or sent to the judges, stays well below Kafka's 1 MB. 128 negative items naming the
# same 256 tickers with 2,000-character links made one value of 3-4 MB before (tests/stream/test_stages.py)
MAX_WINDOW_VALUE_BYTES = 256_000
MEASURED_ABOVE_KEYS = 8  # smaller values cannot reach the budget (8 keys x 5 rows x ~3.4 KB): not measured


def copy_value(value: dict[str, Any] | None, deep: bool) -> dict[str, Any]:
    """A window value to change without touching ``value`` (a savepoint may restore it). Counting
    replaces a key's counters and evidence lists, never edits them (windows.count_keys), so only a
    fix, which adds into counters in place (windows.merge), needs them copied (``deep``)."""
    if value is None:
        return {"applied": {}, "keys": {}, "top": {}}
    keys = {k: list(v) for k, v in value["keys"].items()} if deep else dict(value["keys"])
    return {"applied": dict(value["applied"]), "keys": keys, "top": dict(value["top"])}


def applied(current: dict[str, Any] | None, ops: list[tuple[Any, ...]], partition: str,
            offset: int) -> tuple[dict[str, Any], bool]:
    """``current`` (unchanged) with ``ops`` applied and the record's offset noted, and whether its
    evidence rows went in: not where they would take the value past :data:`MAX_WINDOW_VALUE_BYTES`."""
    value = copy_value(current, deep=any(op[0] != "count" for op in ops))
    value["applied"][partition] = offset
    apply(value, ops)
    if len(value["keys"]) <= MEASURED_ABOVE_KEYS or len(orjson.dumps(value)) <= MAX_WINDOW_VALUE_BYTES:
        return value, True
    value = copy_value(current, deep=True)
    value["applied"][partition] = offset
    apply(value, ops, evidence=False)
    return value, False


def as_fix(ops: list[tuple[Any, ...]]) -> dict[str, Any]:
    """An item's changes to a closed window, as one correction for the judges."""
    fix = windows.empty_fix()
    for op in ops:
        if op[0] == "count":
            windows.count_keys(fix, op[1], op[2], op[3])
        else:
            windows.add_fix(fix, op[1])
    return fix


def keys_of(ops: list[tuple[Any, ...]]) -> Iterable[str]:
    """The keys ``ops`` touch, each once."""
    if len(ops) == 1 and ops[0][0] == "count":
        return dict.fromkeys(ops[0][2])  # the common case: one item counted
    return {k for op in ops for k in (op[2] if op[0] == "count" else op[1]["keys"])}


def by_shard(fix: dict[str, Any], shards: int) -> dict[int, dict[str, Any]]:
    """A fix split by key shard (each window value holds one shard's keys); the dropped items
    go with every part."""
    parts: dict[int, dict[str, Any]] = {}
    for section in ("keys", "top"):
        for key, value in (fix.get(section) or {}).items():
            part = parts.setdefault(shard_of(key, shards), {"keys": {}, "drop": list(fix.get("drop") or []), "top": {}})
            part[section][key] = value
    return parts
