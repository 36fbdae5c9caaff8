"""faust's consumer handing records to the agents (stream/runtime/handover.py): the repaired race
gives what mode's gives in every case the fetch loop meets, without tasks when nothing waits."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable

import pytest
from mode import Service

from riskpulse.stream.runtime import handover

handover.install()
ORIGINAL = handover._ORIGINAL["wait_first"]
REPAIRED = handover.wait_first
WaitFirst = Callable[..., Awaitable[Any]]


class Svc(Service):
    """A mode service like faust's consumer: its own stopped and crashed events race too."""


async def race(wait_first: WaitFirst, case: str) -> dict[str, Any]:
    """One delivery racing the suspension of flow, as faust's fetch loop runs it: the record goes
    into a stream buffer of one place (``queue``)."""
    svc, queue, flow = Svc(), asyncio.Queue(maxsize=1), asyncio.Event()
    ran_finally: list[bool] = []

    async def deliver(value: int) -> int:
        try:
            if case.startswith("raises at once"):
                raise ValueError("undecodable")
            await queue.put(value)
            if case == "raises after waiting":
                raise ValueError("undecodable")
            return value
        finally:
            ran_finally.append(True)

    async def later(action: Callable[[], Any]) -> None:
        await asyncio.sleep(0.01)
        action()

    if case in ("full, then room", "full, then flow suspended", "full, flow already suspended", "raises after waiting",
                "cancelled while waiting"):
        queue.put_nowait(0)
    if case in ("room, flow already suspended", "full, flow already suspended", "raises at once, flow suspended"):
        flow.set()
    if case == "stopped":
        svc._stopped.set()
    helper = None
    if case in ("full, then room", "raises after waiting"):
        helper = asyncio.ensure_future(later(queue.get_nowait))
    elif case == "full, then flow suspended":
        helper = asyncio.ensure_future(later(flow.set))

    coros = (deliver(1), flow.wait())
    outcome: dict[str, Any] = {}
    try:
        if case == "cancelled while waiting":
            waiter = asyncio.ensure_future(wait_first(svc, *coros))
            await asyncio.sleep(0.01)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            outcome["cancelled"] = True
        else:
            result = await wait_first(svc, *coros)
            outcome.update(done=[coros.index(c) for c in result.done], results=result.results, stopped=result.stopped)
    except ValueError as exc:
        outcome["raised"] = str(exc)
    if helper is not None:
        await helper
    await asyncio.sleep(0)  # let mode's cancelled losers finish
    outcome["queue"] = [queue.get_nowait() for _ in range(queue.qsize())]
    outcome["delivery finished"] = bool(ran_finally)
    outcome["left running"] = [inspect.getcoroutinestate(c) for c in coros if inspect.getcoroutinestate(c) != "CORO_CLOSED"]
    return outcome


CASES = ["room", "full, then room", "full, then flow suspended", "room, flow already suspended",
         "full, flow already suspended", "raises at once",
         "raises at once, flow suspended", "raises after waiting", "cancelled while waiting", "stopped"]


@pytest.mark.parametrize("case", CASES)
def test_the_repaired_race_ends_as_modes_own(case: str) -> None:
    original = asyncio.run(race(ORIGINAL, case))
    repaired = asyncio.run(race(REPAIRED, case))
    assert repaired == original
    assert repaired["left running"] == []  # no coroutine left unawaited or suspended


def test_what_each_case_means() -> None:
    """The cases above say what faust's loop relies on, not only that both agree."""
    assert asyncio.run(race(REPAIRED, "room"))["done"] == [0]
    assert asyncio.run(race(REPAIRED, "full, then room")) | {"left running": []} == {
        "done": [0], "results": [1], "stopped": False, "queue": [1], "delivery finished": True, "left running": []}
    suspended = asyncio.run(race(REPAIRED, "full, then flow suspended"))
    assert suspended["done"] == [1] and suspended["queue"] == [0]  # the blocked delivery gave way, nothing put
    assert asyncio.run(race(REPAIRED, "room, flow already suspended"))["done"] == [0, 1]
    assert asyncio.run(race(REPAIRED, "full, flow already suspended"))["queue"] == [0]
    assert asyncio.run(race(REPAIRED, "raises after waiting"))["raised"] == "undecodable"
    assert asyncio.run(race(REPAIRED, "stopped"))["stopped"] is True


def test_a_delivery_with_room_makes_no_task() -> None:
    """The point of the repair: mode makes four tasks for each record handed over."""

    async def deliveries(wait_first: WaitFirst) -> int:
        made = 0
        loop = asyncio.get_running_loop()

        def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            nonlocal made
            made += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        svc, queue, flow = Svc(), asyncio.Queue(maxsize=1000), asyncio.Event()
        loop.set_task_factory(counting)
        for value in range(100):
            await wait_first(svc, queue.put(value), flow.wait())
        loop.set_task_factory(None)
        assert [queue.get_nowait() for _ in range(100)] == list(range(100))
        return made

    assert asyncio.run(deliveries(ORIGINAL)) == 400
    assert asyncio.run(deliveries(REPAIRED)) == 0


def test_a_delivery_with_room_makes_no_future_for_the_flow_it_races() -> None:
    """The fetch loop's other racer, ``suspend_flow.wait()``, is read, not run: running it made
    a future per record, for nothing (faust's ``suspend_flow`` is an ``asyncio.Event``)."""

    async def futures_made() -> int:
        made = 0
        loop = asyncio.get_running_loop()
        create = loop.create_future

        def counting() -> asyncio.Future[Any]:
            nonlocal made
            made += 1
            return create()

        svc, queue, flow = Svc(), asyncio.Queue(maxsize=1000), asyncio.Event()
        loop.create_future = counting  # type: ignore[method-assign]
        try:
            for value in range(100):
                await REPAIRED(svc, queue.put(value), flow.wait())
        finally:
            del loop.create_future
        return made

    assert asyncio.run(futures_made()) == 0


@pytest.mark.parametrize("wait_first", [ORIGINAL, REPAIRED], ids=["mode", "repaired"])
def test_the_agents_get_a_turn_between_records(wait_first: WaitFirst) -> None:
    """As in mode's race: without a turn per record, faust's loop hands a hundred over before an
    agent runs (measured slower through a real worker: stream/runtime/handover.py)."""

    async def turns_during_deliveries() -> int:
        turns = 0

        async def agent() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        svc, queue, flow = Svc(), asyncio.Queue(maxsize=1000), asyncio.Event()
        running = asyncio.ensure_future(agent())
        await asyncio.sleep(0)
        before = turns
        for value in range(100):
            await wait_first(svc, queue.put(value), flow.wait())
        running.cancel()
        return turns - before

    assert asyncio.run(turns_during_deliveries()) >= 100


def test_the_repair_is_faust_s_consumers_race() -> None:
    from faust.transport.consumer import Consumer

    handover.install()
    assert Consumer.wait_first is REPAIRED and Service.wait_first is not REPAIRED  # the consumer's alone
