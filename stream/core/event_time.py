"""The event-time policy: what an item's own clock may claim before it counts at another time.

A feed with a broken clock (a ``published_at`` years ahead, or the Unix epoch) must neither move
the watermark nor open windows nobody will ever see. Such an item is, by policy, either counted
at its broker timestamp (``clamp``, the default: the record keeps its claim in
``published_at_original``), or dead-lettered (``dead-letter``). The broker timestamp is stable
across redelivery, so a clamped item lands in the same window every time it is processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

ClockPolicy = Literal["clamp", "dead-letter"]


@dataclass(frozen=True)
class EventTimePolicy:
    max_skew_s: float = 300.0  # how far ahead of the wall clock an item may be dated
    max_age_s: float = 3650 * 86400.0  # how far back (replays of old history stay inside it)
    on_violation: ClockPolicy = "clamp"


@dataclass(frozen=True)
class Verdict:
    """The time to count an item at; ``original`` is set when the policy replaced its own."""

    published_at: datetime
    original: datetime | None = None
    refused: str | None = None  # the reason, when the policy dead-letters instead


def judge(published_at: datetime, broker_time: datetime, now: datetime, policy: EventTimePolicy) -> Verdict:
    """Apply ``policy`` to one item dated ``published_at`` that reached the broker at ``broker_time``."""
    latest = now + timedelta(seconds=policy.max_skew_s)
    earliest = now - timedelta(seconds=policy.max_age_s)
    if earliest <= published_at <= latest:
        return Verdict(published_at)
    where = "ahead of" if published_at > latest else "older than"
    limit = f"{policy.max_skew_s:g} s" if published_at > latest else f"{policy.max_age_s / 86400:g} days"
    reason = (f"published_at {published_at.isoformat()} is {where} the clock by more than {limit} "
              "(RISKPULSE_MAX_CLOCK_SKEW_S / RISKPULSE_MAX_EVENT_AGE_DAYS)")
    if policy.on_violation == "dead-letter":
        return Verdict(published_at, refused=reason)
    # the producer's clock may be broken too: the broker time is kept inside the same bounds
    return Verdict(min(max(broker_time, earliest), latest), original=published_at)
