"""The stages' output ports: records go to the app's producer under the topic's real name, a batch's
failed send is raised by its settle, and a send nobody awaits is never logged as an error."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace
from typing import Any

import pytest

from riskpulse.records import TOPIC_DLQ, TOPIC_SCORED
from riskpulse.stream.runtime.app import Topics
from riskpulse.stream.runtime.outputs import StagePort, TopicOutputs
from riskpulse.stream.stages.ports import SCORED_BY_STORY


class Producer:
    """faust's producer's ``send``: awaited, it returns the future the broker's answer completes."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None,
                   timestamp: float | None, headers: Any) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value, partition, timestamp, headers))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def named(name: str) -> Any:
    return SimpleNamespace(get_topic_name=lambda: name)


def outputs() -> tuple[TopicOutputs, Producer]:
    producer = Producer()
    topics = Topics(news=named("p.news"), scored_internal=named("rp-x-scored-by-story"),
                    windows_internal=named("rp-x-windows"), scored=named("p.news.scored"), trends=named("p.trends"),
                    alerts=named("p.alerts"), dlq=named("p.news.dlq"))
    return TopicOutputs(SimpleNamespace(producer=producer), topics), producer  # type: ignore[arg-type]


def test_a_record_goes_to_the_producer_under_its_topics_real_name() -> None:
    async def go() -> Producer:
        out, producer = outputs()
        await out.send(SCORED_BY_STORY, b"v", key=b"k", partition=2)
        await out.send(TOPIC_SCORED, b"w", key=b"id", headers=[("content-type", b"application/json")], timestamp=12.5)
        return producer

    producer = asyncio.run(go())
    assert producer.sent == [("rp-x-scored-by-story", b"k", b"v", 2, None, None),
                             ("p.news.scored", b"id", b"w", None, 12.5, [("content-type", b"application/json")])]


def test_a_batch_whose_send_failed_is_not_settled() -> None:
    async def go() -> None:
        out, producer = outputs()
        port = StagePort(out)
        await port.send(TOPIC_SCORED, b"a")
        await port.send(TOPIC_DLQ, b"b")
        producer.futures[0].set_result("ok")
        producer.futures[1].set_exception(TimeoutError("delivery timed out"))
        with pytest.raises(TimeoutError):
            await port.settle()

    asyncio.run(go())


def test_a_failed_send_nobody_awaits_is_not_logged_as_an_error() -> None:
    """The heartbeat's sends, and those of a batch abandoned as the worker stops, are awaited by
    nobody: asyncio would log "exception was never retrieved" for each when it collects them."""
    reported: list[dict[str, Any]] = []

    async def go() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        out, producer = outputs()
        await out.send(SCORED_BY_STORY, b"tick", key=b"tick", partition=0)
        producer.futures.pop().set_exception(ConnectionError("broker went away"))
        await asyncio.sleep(0)  # the done callbacks run
        producer.sent.clear()
        gc.collect()

    asyncio.run(go())
    gc.collect()
    assert reported == []
