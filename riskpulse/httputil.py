"""Small HTTP helpers shared by the feed poller and the webhook deliverer."""

from __future__ import annotations

from email.utils import parsedate_to_datetime


MAX_RETRY_AFTER_S = 86_400.0  # a server asking for more is capped, not obeyed for years


def retry_after_s(header: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: either delta-seconds or an HTTP date; None if malformed.

    Whatever a server sends (Unicode digits, a 5,000-digit number, a date in year 9999) is either
    a number of seconds in [0, one day] or ignored: a header never ends a poller or a deliverer.
    """
    if not header:
        return None
    header = header.strip()
    if header.isascii() and header.isdigit():
        return min(float(header[:12]), MAX_RETRY_AFTER_S) if len(header) <= 12 else MAX_RETRY_AFTER_S
    try:
        return min(max(0.0, parsedate_to_datetime(header).timestamp() - now), MAX_RETRY_AFTER_S)
    except Exception:  # noqa: BLE001 - email.utils raises TypeError, ValueError, IndexError, OverflowError
        return None
