"""``riskpulse worker`` runs the Faust worker as a child and restarts it when it dies.

A crash, an out-of-memory kill or the stall watchdog's exit ends only the child; state is in
Kafka and idempotent, so the next child resumes where the last committed offsets point.
SIGTERM / SIGINT stop the child gracefully and end the supervisor.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)

RESTART = 75  # the child's exit status for "restart me": EX_TEMPFAIL


def exit_for_restart() -> None:
    """End the worker child now, with the status its supervisor restarts (no shutdown hooks: the
    state is idempotent and the offsets past the failed work were never committed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(RESTART)


def exit_on_crash(agent: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """An agent that raises ends the worker process, so the supervisor starts a fresh one.

    faust-streaming logs a crashed agent and leaves it stopped while the worker still answers
    its health checks: seen once, the aggregate agent died two seconds after start and the worker
    sat idle until it was stopped. Offsets past the failed batch were never committed and the
    state is idempotent, so the restarted worker redoes that batch and counts it once.
    """
    @functools.wraps(agent)
    async def run(stream: Any) -> None:
        try:
            await agent(stream)
        except asyncio.CancelledError:  # shutdown or rebalance: faust's business
            raise
        except Exception:
            log.exception("agent crashed; exiting so the supervisor restarts the worker",
                          extra={"agent": agent.__name__})
            exit_for_restart()
    return run


async def exit_when_crashed(app: Any) -> None:
    """A faust service that crashes ends the worker process, so the supervisor starts a fresh one.

    mode marks a crashed service's whole tree crashed, the app among them: every timer of the app
    then stops (the stall check with them) while the process, its health page and its group
    membership live on, reading nothing. Seen in a test loop: faust's Consumer crashed on an
    AssertionError (stream/runtime/livelock.py) and the worker sat idle, unrestarted, until the
    test gave up. Run as a task of the app from its start: it waits on mode's crash event."""
    await app._crashed.wait()  # noqa: SLF001 - mode's Service event, set by Service._crash
    log.error("a faust service crashed (%r); exiting so the supervisor restarts the worker",
              getattr(app, "crash_reason", None), extra={"reason": repr(getattr(app, "crash_reason", None))})
    exit_for_restart()


STOP_TIMEOUT_S = 30.0
# a dead child's group membership lives on until its session times out (broker_session_timeout,
# 10 s): a child started before that joins, then rebalances again when the dead member expires,
# and faust-streaming 0.15 can skip the records it had prefetched across that second rebalance
# (seen in the chaos test: ~28 records per partition passed over until the next restart)
MIN_RESTART_S = 11.0


def supervise(child_argv: list[str], backoff_s: float = 2.0, max_backoff_s: float = 60.0,
              stop_timeout_s: float = STOP_TIMEOUT_S, min_restart_s: float = MIN_RESTART_S) -> int:
    """Run the worker child, restart it when it dies, stop it within ``stop_timeout_s`` of SIGTERM.

    A graceful stop commits offsets and leaves the consumer group; one that hangs (seen: a worker
    whose broker was gone ignored SIGTERM for 23 minutes) is killed, which loses nothing either:
    uncommitted input is redone, idempotently.
    """
    stopping = False
    proc: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _: Any) -> None:
        nonlocal stopping
        stopping = True
        child = proc
        if child is not None and child.poll() is None:
            child.send_signal(signum)

            def kill_if_hung() -> None:
                if child.poll() is None:
                    log.error("worker did not stop in time; killing it", extra={"stop_timeout_s": stop_timeout_s})
                    child.kill()
            timer = threading.Timer(stop_timeout_s, kill_if_hung)
            timer.daemon = True
            timer.start()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    delay = backoff_s
    while True:
        started = time.monotonic()
        proc = subprocess.Popen(child_argv)
        rc = proc.wait()
        if stopping or rc == 0:
            return 0 if stopping else rc
        if time.monotonic() - started > 300:
            delay = backoff_s  # it ran a good while: not a crash loop
        wait = max(delay, min_restart_s)  # one rebalance, after the dead member's session expired
        log.error("worker exited; restarting", extra={"returncode": rc, "restart_in_s": wait})
        time.sleep(wait)
        delay = min(delay * 2, max_backoff_s)


def child_argv(loglevel: str) -> list[str]:
    return [sys.executable, "-m", "riskpulse.cli", "worker", "--loglevel", loglevel, "--no-supervise"]
