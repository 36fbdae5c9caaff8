"""``riskpulse worker`` runs the Faust worker as a child and restarts it when it dies.

A crash, an out-of-memory kill or the stall watchdog's exit ends only the child; state is in
Kafka and idempotent, so the next child resumes where the last committed offsets point.
SIGTERM / SIGINT stop the child gracefully and end the supervisor.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from typing import Any

log = logging.getLogger(__name__)


def supervise(child_argv: list[str], backoff_s: float = 2.0, max_backoff_s: float = 60.0) -> int:
    stopping = False
    proc: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _: Any) -> None:
        nonlocal stopping
        stopping = True
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

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
        log.error("worker exited; restarting", extra={"returncode": rc, "restart_in_s": delay})
        time.sleep(delay)
        delay = min(delay * 2, max_backoff_s)


def child_argv(loglevel: str) -> list[str]:
    return [sys.executable, "-m", "riskpulse.cli", "worker", "--loglevel", loglevel, "--no-supervise"]
