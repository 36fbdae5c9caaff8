"""faust's livelock check on a partition aiokafka has no fetch position for (stream/runtime/livelock.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer.subscription_state import TopicPartitionState
from faust.types import TP

from riskpulse.stream.runtime import livelock


class FakeThread:
    """Just what faust's check reaches on its consumer thread: aiokafka's partition states, and
    the faust consumer and app whose monitor makes it read the position at all."""

    def __init__(self, state: TopicPartitionState) -> None:
        assignment = SimpleNamespace(state_value=lambda tp: state)
        self._consumer = SimpleNamespace(_fetcher=SimpleNamespace(
            _subscriptions=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))))
        app = SimpleNamespace(monitor=SimpleNamespace(stream_inbound_time={}), topics=SimpleNamespace(
            acks_enabled_for=lambda topic: True))
        self.consumer = SimpleNamespace(app=app)
        self.time_started = time.monotonic()
        self.tp_stream_timeout_secs = 300.0
        self.log = SimpleNamespace(error=lambda *a, **k: None)

    def _ensure_consumer(self) -> Any:
        return self._consumer

    def _verify_aiokafka_event_path(self, now: float, tp: TP) -> bool:
        return False


def awaiting_reset() -> TopicPartitionState:
    async def made() -> TopicPartitionState:  # aiokafka makes its states inside the consumer's loop
        return TopicPartitionState(assignment=None)
    state = asyncio.run(made())
    state.highwater = 35  # fetched before: a highwater, and the position reset away (retention)
    return state


def test_faust_s_own_check_crashes_on_a_partition_awaiting_reset() -> None:
    """The upstream behaviour this repairs: aiokafka's position asserts instead of answering None."""
    livelock.install()
    with pytest.raises(AssertionError):
        livelock._ORIGINAL["verify_event_path"](FakeThread(awaiting_reset()), time.monotonic(), TP("news", 0))


def test_the_repaired_check_skips_a_partition_awaiting_reset_and_judges_one_with_a_position() -> None:
    livelock.install()
    tp = TP("news", 0)
    assert livelock.verify_event_path(FakeThread(awaiting_reset()), time.monotonic(), tp) is None
    state = awaiting_reset()
    state.seek(10)  # a position again: faust's own check runs (nothing inbound yet, recently started: quiet)
    assert state.has_valid_position
    assert livelock.verify_event_path(FakeThread(state), time.monotonic(), tp) is None
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    assert AIOKafkaConsumerThread.verify_event_path is livelock.verify_event_path
