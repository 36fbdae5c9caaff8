"""The Kafka client's log lines about errors it handles itself, as INFO with a counter.

aiokafka logs "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
at ERROR while a new group's coordinator is not ready yet (every first start of a worker), then
retries until it is. An ERROR a person cannot act on teaches them to ignore the ones that
matter: a retriable error the client retries is demoted to INFO (the log file keeps it) and
counted in ``riskpulse_kafka_client_retries_total``; one it cannot retry stays an ERROR (and the
client raises it). A coordinator that never comes shows as a stalled worker (the watchdog).
"""

from __future__ import annotations

import logging

from .. import metrics

COORDINATOR = "aiokafka.consumer.group_coordinator"


def _retriable(err: object) -> bool:
    return isinstance(err, Exception) and getattr(err, "retriable", False) is True


class RetriedByTheClient(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.args and isinstance(record.args, tuple) \
                and _retriable(record.args[0]) and str(record.msg).startswith("Group Coordinator Request failed"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            metrics.CLIENT_RETRIES.labels(type(record.args[0]).__name__).inc()
        return True


def quiet_retried_client_errors() -> None:
    """Once per process (a second call adds nothing)."""
    logger = logging.getLogger(COORDINATOR)
    if not any(isinstance(f, RetriedByTheClient) for f in logger.filters):
        logger.addFilter(RetriedByTheClient())
