"""faust's consumer hands each record to the agents without four tasks a record.

faust-streaming's fetch loop (``Consumer._drain_messages``) delivers every record with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: the delivery races a
rebalance's "suspend flow", so that a delivery blocked on a full stream buffer gives way to it.
mode's ``Service.wait_first`` makes a task of each racer plus two for the service's own stopped
and crashed events, waits on all four with ``asyncio.wait`` and cancels the losers: four tasks,
their callbacks and three cancellations for each record, although almost every delivery puts the
record into a buffer with room and never waits at all. A profile of a worker under a burst
(bench/profile_worker.py, null scorer, 2 cores) put 4.2 % of the worker's time in that call
alone, more in the event loop running the tasks it makes.

This runs the first racer, when every racer is a coroutine, up to its first suspension before
any task is made. Finished without suspending: that is the race's outcome, with any other racer
that also finishes in its first step, as it would have been in mode's race, where each task takes
its first step before the race is read (the fetch loop's other racer, an ``asyncio.Event``'s
``wait()``, is read rather than run: its first step is "set?", and running it made a future per
record). Suspended (a full buffer): the coroutine goes on from where it stopped inside mode's own
race, unchanged. A stopped or crashed consumer takes mode's path.

The delivery still gives the event loop one turn (``asyncio.sleep(0)``, no task), as mode's race
did: the agents run between records. Without it, faust's loop hands over a hundred records before
it yields; measured through a real worker (bench_stream_revisions.py, null scorer, 2 cores,
2026-12-07) that was 0.66x end to end and 1.2 ms more worker CPU per item (why was not
measured; most likely the agents ran behind buffers the fetch loop had filled;
bench/results/stream-ceiling-handover-no-turn-2026-12-07.json); with the turn, 1.20x and 21 %
less worker CPU per item (stream-ceiling-handover-2026-12-07.json).
Upstream: faust-streaming/faust#229 names this call in a deadlock report; none found for its cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, Callable

from faust.transport.consumer import Consumer
from mode.services import WaitResults

_ORIGINAL: dict[str, Callable[..., Any]] = {}
_EVENT_WAIT = asyncio.Event.wait.__code__  # the fetch loop's other racer: ``suspend_flow.wait()``


class Started:
    """A coroutine already run to its first suspension, awaitable from there (``yield from`` by hand,
    so that a task awaiting it waits on what the coroutine waits on, and a cancellation reaches it)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self.coro, self.waiting_on = coro, waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.waiting_on
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - a cancellation or an error thrown in: the coroutine's to handle
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as done:
                    return done.value


async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> WaitResults:
    """mode's ``wait_first``, without tasks when the first racer finishes without suspending (the
    others are then run to their first suspension too: any that finish as well are winners with it,
    as they would be in mode's race, where each task takes its first step before the race is read)."""
    if not coros or not all(map(asyncio.iscoroutine, coros)) or self._stopped.is_set() or self._crashed.is_set():
        return await _ORIGINAL["wait_first"](self, *coros, timeout=timeout)  # type: ignore[no-any-return]
    first = coros[0]
    try:
        waiting_on = first.send(None)
    except StopIteration as done:
        result = _finished_first(first, done.value, coros[1:])
        await asyncio.sleep(0)  # mode's race gave the loop a turn between records, and the agents need it
        return result
    except BaseException:
        _close(coros[1:])
        raise
    started = Started(first, waiting_on)
    result = await _ORIGINAL["wait_first"](self, started, *coros[1:], timeout=timeout)
    # the caller knows its racers by identity
    return WaitResults([first if c is started else c for c in result.done], result.results, result.stopped)


def _finished_first(first: Any, value: Any, others: tuple[Any, ...]) -> WaitResults:
    winners, results = [first], [value]
    for i, other in enumerate(others):
        if other.cr_code is _EVENT_WAIT:
            # an Event's wait(): its first step is "set? then True", else a future made and dropped
            # again (1-2 % of a worker's samples): read it instead
            if other.cr_frame.f_locals["self"].is_set():
                winners.append(other)
                results.append(True)
            other.close()  # never started: nothing to undo
            continue
        try:
            other.send(None)
        except StopIteration as done:
            winners.append(other)
            results.append(done.value)
        except BaseException:
            _close(others[i + 1:])
            raise
        else:
            other.close()  # suspended: as mode cancels a loser
    return WaitResults(winners, results, False)


def _close(coros: tuple[Any, ...]) -> None:
    for coro in coros:
        coro.close()  # never started: nothing to undo


def install() -> None:
    """Repair the hand-over (idempotent)."""
    if not _ORIGINAL:
        _ORIGINAL["wait_first"] = Consumer.wait_first
        Consumer.wait_first = wait_first  # type: ignore[method-assign]
