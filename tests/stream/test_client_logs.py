"""The Kafka client's retried errors are INFO with a counter; the ones it cannot retry stay ERROR."""

from __future__ import annotations

import logging

from aiokafka import errors

from riskpulse.stream import metrics
from riskpulse.stream.runtime.client_logs import COORDINATOR, quiet_retried_client_errors


class Kept(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_coordinator_not_ready_at_start_is_info_and_counted_and_a_fatal_error_stays_an_error() -> None:
    quiet_retried_client_errors()
    quiet_retried_client_errors()  # idempotent
    logger = logging.getLogger(COORDINATOR)
    console, logfile = Kept(logging.WARNING), Kept(logging.INFO)
    logger.addHandler(console)
    logger.addHandler(logfile)
    before = metrics.CLIENT_RETRIES.labels("GroupCoordinatorNotAvailableError")._value.get()  # noqa: SLF001
    try:
        logger.error("Group Coordinator Request failed: %s", errors.GroupCoordinatorNotAvailableError())
        logger.error("Group Coordinator Request failed: %s", errors.IllegalStateError("broken"))
    finally:
        logger.removeHandler(console)
        logger.removeHandler(logfile)
    assert [r.levelname for r in logfile.records] == ["INFO", "ERROR"]
    assert [r.getMessage() for r in console.records] == ["Group Coordinator Request failed: IllegalStateError: broken"]
    after = metrics.CLIENT_RETRIES.labels("GroupCoordinatorNotAvailableError")._value.get()  # noqa: SLF001
    assert after == before + 1
    assert len([f for f in logger.filters if type(f).__name__ == "RetriedByTheClient"]) == 1
