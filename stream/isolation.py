"""Keep one record's failure to that record: the rest of its batch goes on.

A batch that raises is retried item by item and only the items that fail alone are handed back
(to be dead-lettered with their stage). What is not the record's fault must not be blamed on it:
when every item fails, a known-good item decides whether the scorer itself is broken, and a store
that cannot be reached is retried, with bounded backoff, and then reported as an infrastructure
fault (the worker restarts; the records stay uncommitted and are redone).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence, TypeVar

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

INFRA_ERRORS = (OperationalError, InterfaceError, DisconnectionError)


class InfrastructureError(RuntimeError):
    """Not a record's fault: the model, the store or the broker. The worker restarts for these."""


def score_isolated(score: Callable[[Sequence[T]], list[R]], items: Sequence[T], canary: T) -> list[R | Exception]:
    """``score(items)``, or per item when the batch raises; a failing item's slot holds its exception."""
    try:
        return list(score(items))
    except Exception as batch_exc:  # noqa: BLE001 - sorted out item by item below
        out: list[R | Exception] = []
        for item in items:
            try:
                out += score([item])
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
        if out and all(isinstance(r, Exception) for r in out):
            try:
                score([canary])
            except Exception as exc:
                raise InfrastructureError(f"the scorer fails on a known-good headline too: {exc!r}") from batch_exc
        return out


def write_isolated(write: Callable[[list[T]], object], records: list[T], *, attempts: int = 6,
                   backoff_s: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> list[tuple[int, Exception]]:
    """``write(records)``; on a record-level error, each record alone. Returns (index, error) of the failures.

    Blocking (runs on the store's thread). Connection-level errors are retried ``attempts`` times
    with doubling backoff, then raised as :class:`InfrastructureError`.
    """
    def attempt(batch: list[T]) -> None:
        delay = backoff_s
        for n in range(attempts):
            try:
                write(batch)
                return
            except INFRA_ERRORS as exc:
                if n == attempts - 1:
                    raise InfrastructureError(f"the store is unreachable after {attempts} attempts: {exc}") from exc
                log.warning("store unreachable; retrying", extra={"attempt": n + 1, "retry_in_s": delay, "error": str(exc)[:300]})
                sleep(delay)
                delay *= 2

    try:
        attempt(records)
        return []
    except InfrastructureError:
        raise
    except Exception:  # noqa: BLE001 - find the record(s) at fault
        failures = []
        for index, record in enumerate(records):
            try:
                attempt([record])
            except InfrastructureError:
                raise
            except Exception as exc:  # noqa: BLE001
                failures.append((index, exc))
        return failures
