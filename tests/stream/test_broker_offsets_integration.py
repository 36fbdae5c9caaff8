"""The stall watchdog's own view of the partitions: first and end offsets from the broker, on a
client that shares nothing with faust's consumer, and no answer (never an exception) when the
broker does not reply."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from stream.broker_offsets import BrokerOffsets
from stream.local_broker import free_port

pytestmark = pytest.mark.integration


def test_first_and_end_offsets_per_partition(kafka: Any) -> None:
    topic = f"offsets-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        try:
            for i in range(7):
                producer.send(topic, value=b"x", partition=0)
            for i in range(2):
                producer.send(topic, value=b"y", partition=1)
            producer.flush()
        finally:
            producer.close()
        admin.delete_records({TopicPartition(topic, 0): 3})
    finally:
        admin.close()

    async def ask() -> tuple[Any, Any]:
        offsets = BrokerOffsets(kafka.bootstrap)
        try:
            return await offsets.end([(topic, 0), (topic, 1)]), await offsets.start([(topic, 0), (topic, 1)])
        finally:
            offsets.close()

    end, start = asyncio.run(ask())
    assert end == {(topic, 0): 7, (topic, 1): 2}
    assert start == {(topic, 0): 3, (topic, 1): 0}


def test_a_broker_that_does_not_answer_gives_no_judgement_and_one_question_at_a_time() -> None:
    """Nothing listens on the port: the answer is None, and a second question while the first is
    still out is not queued behind it (the watchdog asks every 5 s; a dead broker must not pile
    up threads or calls)."""

    async def ask() -> tuple[Any, Any, Any]:
        offsets = BrokerOffsets(f"127.0.0.1:{free_port()}", timeout_s=1.0)
        first = await offsets.end([("news", 0)])
        second = await offsets.end([("news", 0)])  # the first is still trying to connect
        empty = await offsets.end([])
        offsets.close()
        return first, second, empty

    first, second, empty = asyncio.run(ask())
    assert first is None and second is None
    assert empty == {}


def test_the_first_record_still_held_passes_over_transaction_markers_and_deleted_offsets(kafka: Any) -> None:
    """What a gap's re-read starts from: a transactional producer's commit marker holds an
    offset but no record; records before the log start are gone."""
    topic = f"first-{uuid.uuid4().hex[:8]}"

    async def ask(*at: int) -> list[Any]:
        offsets = BrokerOffsets(kafka.bootstrap)
        try:
            return [await offsets.first_record((topic, 0), a) for a in at]
        finally:
            offsets.close()

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        tx = KafkaProducer(bootstrap_servers=kafka.bootstrap, transactional_id=f"tx-{topic}", acks="all")
        try:
            tx.init_transactions()
            for _ in range(2):
                tx.begin_transaction()
                tx.send(topic, value=b"x", partition=0)
                tx.commit_transaction()  # record, marker, record, marker: offsets 0-3
        finally:
            tx.close()
        plain = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        try:
            for _ in range(3):
                plain.send(topic, value=b"y", partition=0)  # offsets 4-6
            plain.flush()
        finally:
            plain.close()
        assert asyncio.run(ask(0, 1, 3)) == [0, 2, 4]  # markers at 1 and 3
        admin.delete_records({TopicPartition(topic, 0): 5})
        assert asyncio.run(ask(0, 6)) == [5, 6]
    finally:
        admin.close()
