"""Small HTTP helpers shared by the feed poller and the webhook deliverer."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime


MAX_RETRY_AFTER_S = 86_400.0  # a server asking for longer is not taken at its word


def retry_after_s(header: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: either delta-seconds or an HTTP date; None if malformed.

    Whatever a server sends (Unicode digits, a 5,000-digit number, a date in year 9999) is either
    a number of seconds in [0, one day] or ignored (the caller's own backoff applies): a header
    never ends a poller or a deliverer, nor parks it for years.
    """
    if not header:
        return None
    header = header.strip()
    if header.isascii() and header.isdigit():
        seconds = float(header) if len(header) <= 12 else math.inf
    else:
        try:
            seconds = max(0.0, parsedate_to_datetime(header).timestamp() - now)
        except Exception:  # noqa: BLE001 - email.utils raises TypeError, ValueError, IndexError, OverflowError
            return None
    return seconds if seconds <= MAX_RETRY_AFTER_S else None
