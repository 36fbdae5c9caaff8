"""aiokafka's own state of a partition in faust's consumer thread, read where it lives.

faust runs aiokafka in a thread of its own; asking that thread (``call_thread``) would wait on
the very consumer the watches judge. Like faust's own highwater, the state is read without a
call: aiokafka's ``TopicPartitionState`` (fetch position, pause, highwater) of the assignment its
fetcher moves. faust-streaming and aiokafka are pinned (versions.py).
"""

from __future__ import annotations

from typing import Any

from aiokafka.structs import TopicPartition


def partition_state(thread: Any, tp: Any) -> Any:
    """aiokafka's ``TopicPartitionState`` of ``tp`` in faust's consumer ``thread`` (None: not in
    the assignment). Raises while there is no consumer or no assignment: each caller says what
    that means for it."""
    return thread._ensure_consumer()._fetcher._subscriptions.subscription.assignment.state_value(  # noqa: SLF001
        TopicPartition(tp.topic, tp.partition))
