"""faust's livelock check, kept from crashing the consumer on a partition aiokafka has no
position for.

faust-streaming's consumer runs a check every 2.5 commit intervals (``_commit_livelock_detector``)
that only logs: for each assigned partition it reads aiokafka's fetch position
(``TopicPartitionState.position``) and compares it with the highwater. While a partition awaits
an offset reset (just assigned, or its position deleted by retention) aiokafka has no position,
and that property asserts instead of answering None. The check's AssertionError crashed faust's
Consumer service, which stops every mode timer of the app with it (the stall check included)
while the process lives on: seen in a test loop, a worker frozen past its session timeout while
retention deleted its next records came back, crashed this way, and read nothing more. faust
already treats an unknown position as "nothing to judge" (``committed_offset is not None``);
this makes aiokafka's missing position read as that. Upstream: none found for the position;
faust-streaming/faust#446 is the same check crashing the app on another exception.
"""

from __future__ import annotations

from typing import Any, Callable

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from .fetch_state import partition_state

_ORIGINAL: dict[str, Callable[..., Any]] = {}


def _without_position(thread: Any, tp: Any) -> bool:
    """Whether aiokafka has no fetch position for ``tp`` now (awaiting a reset), on faust's own path to it."""
    try:
        state = partition_state(thread, tp)
    except Exception:  # noqa: BLE001 - not assigned (any more): faust's own check says so its way
        return False
    return state is not None and not state.has_valid_position


def verify_event_path(self: Any, now: float, tp: Any) -> None:
    """faust's check for one partition, skipped while aiokafka has no position for it (the next
    round judges it). The consumer's thread may reset a position between the look and faust's
    read, so an AssertionError with the position gone by then is that race, not a fault."""
    if _without_position(self, tp):
        return None
    try:
        return _ORIGINAL["verify_event_path"](self, now, tp)  # type: ignore[no-any-return]
    except AssertionError:
        if _without_position(self, tp):
            return None
        raise


def install() -> None:
    """Repair the check (idempotent)."""
    if not _ORIGINAL:
        _ORIGINAL["verify_event_path"] = AIOKafkaConsumerThread.verify_event_path
        AIOKafkaConsumerThread.verify_event_path = verify_event_path  # type: ignore[method-assign]
