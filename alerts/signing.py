"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign, and verify on the receiver.

Headers: ``webhook-id`` (the message id, the same on every retry, so receivers de-duplicate on
it), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: one or more
space-separated ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``, one per active
secret, so a receiver can rotate its secret without missing a message. Secrets are
``whsec_<base64 key>``.

Receivers need only :func:`verify` (standard library only; copy this file if you like)::

    from riskpulse.alerts.signing import verify, WebhookVerificationError
    try:
        verify(request.body, request.headers, "whsec_...")
    except WebhookVerificationError:
        return 400
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
import time
from typing import Mapping

TOLERANCE_S = 300  # a signature older or newer than this is refused: replay protection


class WebhookVerificationError(Exception):
    """The message was not signed by a holder of the secret, or is too old/new."""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(_secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("webhook secrets look like 'whsec_<base64>'")
    return base64.b64decode(secret[len("whsec_"):])


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers_for(secrets: list[str], msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of one delivery attempt (signed now, with every active secret)."""
    ts = int(time.time()) if timestamp is None else timestamp
    out = {"webhook-id": msg_id, "webhook-timestamp": str(ts)}
    if secrets:
        out["webhook-signature"] = " ".join(sign(s, msg_id, ts, body) for s in secrets)
    return out


def verify(body: bytes, headers: Mapping[str, str], secret: str, tolerance_s: int = TOLERANCE_S,
           now: float | None = None) -> None:
    """Raise :class:`WebhookVerificationError` unless one signature matches ``secret`` and the time is fresh."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, stamp, signatures = lower["webhook-id"], lower["webhook-timestamp"], lower["webhook-signature"]
        ts = int(stamp)
    except (KeyError, ValueError):
        raise WebhookVerificationError("missing or malformed webhook-id / webhook-timestamp / webhook-signature") from None
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance_s:
        raise WebhookVerificationError(f"timestamp {ts} is more than {tolerance_s}s from now")
    expected = sign(secret, msg_id, ts, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no signature matches this secret")
