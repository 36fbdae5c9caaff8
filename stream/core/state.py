"""A write-back view of one key-value store: reads cached, writes collected, flushed in order.

Each aggregation partition keeps all of its state in one store (its keys of a Faust table in
the worker, :class:`Prefixed`; a dict in tests and the backtest). One changelog partition per
store means the changelog holds its writes in the order they were flushed, so whatever survives a kill -9 is a
prefix of that order; :meth:`Overlay.flush` writes each key once, in the order of its last
write, and the aggregator writes its commit markers last.

:meth:`Overlay.savepoint` undoes everything written since, so a record that makes a stage raise
leaves no half-applied state behind (it is dead-lettered, the batch goes on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

_MISSING = object()
_CALL = object()  # an undo entry that is a function to call (Overlay.on_undo), not a key


def write_all(base: MutableMapping[str, Any], items: list[tuple[str, Any]]) -> None:
    """``items`` written to ``base`` in order (None deletes): at once where the store takes a batch
    (``write_batch``: the worker's tables, stream/runtime/state_writes.py), else key by key."""
    write_batch = getattr(base, "write_batch", None)
    if write_batch is not None:
        write_batch(items)
        return
    for key, value in items:
        if value is None:
            del base[key]
        else:
            base[key] = value


class Overlay:
    def __init__(self, base: MutableMapping[str, Any]) -> None:
        self.base = base
        self._cache: dict[str, Any] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set: order of last write
        self._early: set[str] = set()  # keys whose last write goes out before the others (:meth:`set`)
        # (key or _CALL, old value or function, was dirty, was early)
        self._undo: list[tuple[Any, Any, bool, bool]] | None = None

    def get(self, key: str) -> Any:
        if key not in self._cache:
            self._cache[key] = self.base.get(key)
        return self._cache[key]

    def set(self, key: str, value: Any, early: bool = False) -> None:
        """``early``: flushed before every other write of the batch (in their order), unless the key
        is written again without it. For indexes whose members must be listed wherever a member's
        own value survived a crash (a store keeps a prefix of the flush): see stream/core/time_index.py."""
        if self._undo is not None:
            self._undo.append((key, self._cache.get(key, _MISSING), key in self._dirty, key in self._early))
        self._cache[key] = value
        self._dirty.pop(key, None)
        self._dirty[key] = None
        if early:
            self._early.add(key)
        else:
            self._early.discard(key)

    def delete(self, key: str) -> None:
        self.set(key, None)

    def on_undo(self, undo: Callable[[], None]) -> None:
        """``undo`` runs if the enclosing savepoint rolls back: what a caller keeps beside the store
        (in memory, derived from it) is undone with the writes it was derived from."""
        if self._undo is not None:
            self._undo.append((_CALL, undo, False, False))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Everything written inside is undone if the block raises (the exception propagates)."""
        outer, self._undo = self._undo, []
        try:
            yield
        except BaseException:
            for key, old, was_dirty, was_early in reversed(self._undo):
                if key is _CALL:
                    old()
                    continue
                if old is _MISSING:
                    self._cache.pop(key, None)
                else:
                    self._cache[key] = old
                if not was_dirty:
                    self._dirty.pop(key, None)
                if was_early:
                    self._early.add(key)
                else:
                    self._early.discard(key)
            raise
        finally:
            undone, self._undo = self._undo, outer
            if self._undo is not None:
                self._undo.extend(undone)

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def flush(self) -> None:
        """Write every changed key once, oldest last-write first (the early ones before all others);
        ``None`` deletes."""
        early = [key for key in self._dirty if key in self._early]
        ordered = [(key, self._cache[key]) for key in early + [key for key in self._dirty if key not in self._early]]
        write_all(self.base, [(key, value) for key, value in ordered if value is not None or key in self.base])
        self._dirty.clear()
        self._early.clear()
        self._cache.clear()


class Prefixed(MutableMapping):  # type: ignore[type-arg]
    """One partition's keys of a store shared by several (a worker's table holds every partition
    it owns): ``"3|"`` + key. Iteration and length are not needed by the aggregator, and a
    table's iteration would cross partitions."""

    def __init__(self, base: MutableMapping[str, Any], partition: int) -> None:
        self.base, self.prefix = base, f"{partition}|"

    def __getitem__(self, key: str) -> Any:
        return self.base[self.prefix + key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.base.get(self.prefix + key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self.prefix + key) in self.base

    def __setitem__(self, key: str, value: Any) -> None:
        self.base[self.prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self.base[self.prefix + key]

    def write_batch(self, items: list[tuple[str, Any]]) -> None:
        """Several writes at once, in order (None deletes), where the store takes them so."""
        write_all(self.base, [(self.prefix + key, value) for key, value in items])

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a partition's keys are not iterated")

    def __len__(self) -> int:
        raise TypeError("a partition's keys are not counted")
