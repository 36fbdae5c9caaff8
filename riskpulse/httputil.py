"""Small HTTP helpers shared by the feed poller and the webhook deliverer."""

from __future__ import annotations

from email.utils import parsedate_to_datetime


def retry_after_s(header: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: either delta-seconds or an HTTP date."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - now)
    except (TypeError, ValueError):
        return None
