"""The worker's own view of the partitions: first and end offsets, and the records of a gap, from
the broker on a client that shares nothing with faust's consumer, and no answer (never an
exception) when the broker does not reply."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from riskpulse.stream.runtime.broker_offsets import BrokerOffsets
from riskpulse.stream.local_broker import free_port

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

    # the group's committed offsets, as the group watch reads them (any member sees every partition)
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    group = f"group-{uuid.uuid4().hex[:8]}"
    member = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        member.assign([TopicPartition(topic, 0)])
        member.commit({TopicPartition(topic, 0): OffsetAndMetadata(5, "", -1)})
    finally:
        member.close()

    async def committed() -> Any:
        offsets = BrokerOffsets(kafka.bootstrap)
        try:
            return await offsets.committed(group, [(topic, 0), (topic, 1)])
        finally:
            offsets.close()

    assert asyncio.run(committed()) == {(topic, 0): 5, (topic, 1): -1}


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


def test_records_of_a_gap_are_read_in_order_without_transaction_markers_or_deleted_offsets(kafka: Any) -> None:
    """What filling a gap reads: a transactional producer's commit marker holds an offset but no
    record; records before the log start are gone; pages end where asked."""
    topic = f"gap-{uuid.uuid4().hex[:8]}"

    async def ask(*spans: tuple[int, int, int]) -> list[Any]:
        offsets = BrokerOffsets(kafka.bootstrap)
        try:
            answers = []
            for start, stop, limit in spans:
                records = await offsets.read((topic, 0), start, stop, limit)
                answers.append(None if records is None else [(r.offset, r.value) for r in records])
            return answers
        finally:
            offsets.close()

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        tx = KafkaProducer(bootstrap_servers=kafka.bootstrap, transactional_id=f"tx-{topic}", acks="all")
        try:
            tx.init_transactions()
            for i in range(2):
                tx.begin_transaction()
                tx.send(topic, value=f"t{i}".encode(), partition=0)
                tx.commit_transaction()  # record, marker, record, marker: offsets 0-3
        finally:
            tx.close()
        plain = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        try:
            for i in range(4, 7):
                plain.send(topic, value=f"p{i}".encode(), partition=0)  # offsets 4-6
            plain.flush()
        finally:
            plain.close()
        assert asyncio.run(ask((0, 7, 500), (1, 4, 500), (3, 4, 500), (4, 7, 2))) == [
            [(0, b"t0"), (2, b"t1"), (4, b"p4"), (5, b"p5"), (6, b"p6")],
            [(2, b"t1")],  # markers at 1 and 3
            [],  # only a marker
            [(4, b"p4"), (5, b"p5")],  # a page
        ]
        admin.delete_records({TopicPartition(topic, 0): 5})
        assert asyncio.run(ask((0, 7, 500))) == [[(5, b"p5"), (6, b"p6")]]
    finally:
        admin.close()


def test_a_topic_made_after_the_client_started_is_answered(kafka: Any) -> None:
    """The internal scored topic is created when the worker starts, after the watchdog's client
    first asked about `news`: a group-less kafka-python client knows only the topics it has metadata
    for, and its offset lookups for any other were a KeyError (the watchdog then judged nothing)."""
    first, later = (f"first-{uuid.uuid4().hex[:8]}", f"later-{uuid.uuid4().hex[:8]}")
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)

    def make(topic: str, n: int) -> None:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        try:
            for i in range(n):
                producer.send(topic, value=f"{topic}-{i}".encode(), partition=0)
            producer.flush()
        finally:
            producer.close()

    async def ask() -> tuple[Any, ...]:
        offsets = BrokerOffsets(kafka.bootstrap)
        try:
            before = await offsets.end([(first, 0)])
            gap_before = await offsets.read((first, 0), 0, 3)
            make(later, 2)
            both = await offsets.end([(first, 0), (later, 0)])
            start = await offsets.start([(later, 0)])
            gap_later = await offsets.read((later, 0), 0, 2)
            return before, [r.offset for r in gap_before or []], both, start, [r.value for r in gap_later or []]
        finally:
            offsets.close()

    try:
        make(first, 3)
        before, gap_before, both, start, gap_later = asyncio.run(ask())
    finally:
        admin.close()
    assert before == {(first, 0): 3}
    assert gap_before == [0, 1, 2]
    assert both == {(first, 0): 3, (later, 0): 2}
    assert start == {(later, 0): 0}
    assert gap_later == [f"{later}-0".encode(), f"{later}-1".encode()]
