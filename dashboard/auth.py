"""Who is at the dashboard, and what their role lets them do: nothing but the login page answers
without a signed-in user.

People are users in the store with a role (viewer, analyst, admin; store/users.py), managed with
``riskpulse users``. They sign in on the login page (passwords checked against a salted hash,
Werkzeug's scrypt, never stored in the clear), or through a single sign-on proxy (oauth2-proxy
and the like) that puts the signed-in name in a header, believed only from the proxies'
addresses. The configured ``RISKPULSE_DASHBOARD_USER`` (``..._PASSWORD_HASH``, or for the demo
``..._PASSWORD``) is the break-glass admin: it signs in only while the store has no users, or
cannot be reached.
"""

from __future__ import annotations

import html
import hmac
import ipaddress
import logging
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from prometheus_client import Counter
from flask import Flask, Response, current_app, g, has_request_context, redirect, request, session
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.security import check_password_hash, generate_password_hash

from riskpulse.store.users import NAME, ROLES, Users

log = logging.getLogger(__name__)


# sign-in attempts answered 429, by the limit that held them (served on /metrics)
SIGNIN_THROTTLED = Counter("riskpulse_dashboard_signin_throttled_total",
                           "Sign-in attempts answered 429, by the limit that held them", ["reason"])
UTC = ZoneInfo("UTC")

OPEN_PATHS = ("/login", "/healthz", "/readyz", "/metrics")  # metrics carry counts and latencies, no data

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>riskpulse - sign in</title>
<style>body{{font-family:system-ui,sans-serif;background:#f4f5f7;display:flex;justify-content:center;padding-top:12vh}}
form{{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:280px}}
input{{display:block;width:100%;margin:.4rem 0 1rem;padding:.5rem;box-sizing:border-box}}
button{{padding:.5rem 1.2rem}} .err{{color:#b00020}}</style></head><body>
<form method="post" action="/login"><h2>riskpulse</h2>{error}
<label>User<input id="username" name="username" autocomplete="username" autofocus></label>
<label>Password<input id="password" name="password" type="password" autocomplete="current-password"></label>
<input type="hidden" name="next" value="{next}"><button id="login" type="submit">Sign in</button></form></body></html>"""


@dataclass(frozen=True)
class ProxyAuth:
    """Single sign-on by a trusted reverse proxy: ``header`` names the signed-in user."""

    header: str
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    default_role: str = "viewer"

    @classmethod
    def from_settings(cls, header: str | None, trusted: list[str], default_role: str) -> "ProxyAuth | None":
        if not header:
            return None
        return cls(header, tuple(ipaddress.ip_network(n, strict=False) for n in trusted), default_role)

    def trusts(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def secret_key(home: Path) -> bytes:
    """Signs session cookies; kept in RISKPULSE_HOME so sessions survive a restart."""
    path = home / "dashboard-secret"
    if not path.exists():
        # written whole under another name, then linked into place: a second process starting
        # at the same moment either wins the link or reads the winner's key, never a partial file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dashboard-secret.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_bytes()


def cookie_name(key: bytes) -> str:
    """Per installation: browsers share cookies across the ports of one host, so two dashboards
    there (a demo beside a real one) would overwrite each other's sessions and sign each other out.
    Replicas that share the secret share the name; the name reveals nothing of the secret."""
    return "riskpulse_" + hmac.new(key, b"session-cookie-name", "sha256").hexdigest()[:12]


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a login link must not bounce the analyst to another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


class LoginThrottle:
    """Wrong passwords slow guessing down; they never lock anyone out.

    A lockout per user (five wrong passwords from anywhere refused the right one from everywhere
    for 15 minutes) let anyone who knows a user name lock that user out. Instead (in the spirit
    of OWASP's and NIST SP 800-63B's advice):

    - per user and address: ``pair_free`` wrong passwords, then each further try waits twice as
      long as the one before (1 s, 2 s, 4 s ... up to ``cap_s``): guessing one account from one
      address stalls;
    - per address, over all users: ``address_free``, then the same growth (one address spraying
      many users);
    - per user, over all addresses, once it had ``user_free`` wrong passwords: one password check
      per ``user_interval_s`` from addresses that failed on it, and one per ``user_interval_s``
      from addresses that did not. Guessing one account from many addresses slows to a few
      tries a minute, while its owner, from an address that never failed on it, waits seconds at
      most, never minutes.

    Failures age out after ``window_s``. Thread-safe; bounded under a spray of users and addresses.
    """

    def __init__(self, pair_free: int = 3, address_free: int = 10, user_free: int = 20, user_interval_s: float = 2.0,
                 cap_s: float = 900.0, window_s: float = 900.0, clock: "Callable[[], float]" = time.monotonic) -> None:
        self.pair_free, self.address_free, self.user_free = pair_free, address_free, user_free
        self.user_interval_s, self.cap_s, self.window_s, self.clock = user_interval_s, cap_s, window_s, clock
        self.failures: dict[str, list[float]] = {}
        self.checked: dict[str, float] = {}  # "user|failed" / "user|clean" -> when its last check was let through
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self.failures.get(key, []) if now - t < self.window_s]
        if kept:
            self.failures[key] = kept
        else:
            self.failures.pop(key, None)
        return kept

    def _backoff(self, key: str, free: int, now: float) -> float:
        recent = self._recent(key, now)
        if len(recent) < free:
            return 0.0
        delay = min(self.cap_s, 2.0 ** (len(recent) - free))
        return max(0.0, recent[-1] + delay - now)

    def admit(self, user: str, address: str) -> tuple[float, str | None]:
        """Whether a password check may run now: (0, None), or (seconds to wait, the limit that
        holds it: ``user_address``, ``address`` or ``user``). An admitted check counts toward
        the per-user pace."""
        with self._lock:
            now = self.clock()
            for key, free, reason in ((f"p:{user}|{address}", self.pair_free, "user_address"),
                                      (f"a:{address}", self.address_free, "address")):
                if (wait := self._backoff(key, free, now)) > 0:
                    return wait, reason
            if len(self._recent(f"u:{user}", now)) >= self.user_free:
                lane = f"{user}|{'failed' if self._recent(f'p:{user}|{address}', now) else 'clean'}"
                wait = self.checked.get(lane, -float("inf")) + self.user_interval_s - now
                if wait > 0:
                    return wait, "user"
                self.checked[lane] = now
            return 0.0, None

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            for key in (f"p:{user}|{address}", f"a:{address}", f"u:{user}"):
                self.failures.setdefault(key, []).append(now)
            if len(self.failures) > 100_000:  # bounded under a spray of users/addresses
                for key in list(self.failures)[:50_000]:
                    del self.failures[key]
            if len(self.checked) > 100_000:
                self.checked.clear()

    def succeeded(self, user: str, address: str) -> None:
        """The owner signed in from here: this address owes nothing more for this user."""
        with self._lock:
            self.failures.pop(f"p:{user}|{address}", None)


def client_address(remote: str | None, forwarded_for: str | None,
                   trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str:
    """Who is signing in: behind a trusted proxy (a load balancer terminating TLS), the nearest
    address in ``X-Forwarded-For`` that is not one of the proxies (the one the proxy appended, so
    a client cannot forge it), else the peer itself. Without this every sign-in behind a load
    balancer would share its address, and one guesser would slow everyone down."""
    def trusted_ip(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    peer = remote or "?"
    if not forwarded_for or not trusted_ip(peer):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted_ip(hop):
            return hop
    return hops[0] if hops else peer


HASHERS = 2  # password checks running at once (each is deliberately slow); more wait a second


def install(server: Flask, user: str, password_hash: str, key: bytes, session_hours: float = 12.0,
            secure_cookie: bool = False, throttle: LoginThrottle | None = None, users: Users | None = None,
            proxy: ProxyAuth | None = None, trusted_proxies: list[str] | None = None) -> None:
    """Sessions expire after ``session_hours`` and die at sign-out; ``secure_cookie`` behind TLS.
    ``users``: the store's users (None: the configured user only); ``proxy``: single sign-on;
    ``trusted_proxies``: CIDRs whose ``X-Forwarded-For`` names the client (the sign-in throttle's address)."""
    proxies = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies or [])
    server.secret_key = key
    # SESSION_REFRESH_EACH_REQUEST off: Flask would otherwise send a permanent session back with
    # every answer, as the request found it; the dashboard's callbacks run side by side, and one
    # that set out before a change (a zone picked) would answer after it and undo it. A session's
    # life is counted from its sign-in (``issued``), so refreshing the cookie never extended it.
    server.config.update(SESSION_COOKIE_NAME=cookie_name(key), SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_SECURE=secure_cookie, PERMANENT_SESSION_LIFETIME=int(session_hours * 3600),
                         SESSION_REFRESH_EACH_REQUEST=False)
    throttle = throttle or LoginThrottle()
    hashers = threading.BoundedSemaphore(HASHERS)
    server.extensions["riskpulse_users"] = users  # for set_time_zone
    revoked: dict[str, float] = {}  # session id -> when it would have expired anyway
    said_untrusted: set[str] = set()

    def _known() -> int | None:
        """How many users the store has; None if it cannot say (then only the break-glass user)."""
        if users is None:
            return 0
        try:
            return users.count()
        except SQLAlchemyError as exc:
            log.warning("store unavailable for sign-in: only the configured user may sign in",
                        extra={"error": type(exc).__name__})
            return None

    def _role_of(name: str) -> str | None:
        """The role ``name`` has now (None: no such user, or disabled): the store's word where it
        has users, else the break-glass user alone, as admin."""
        known = _known()
        if known is None:  # the store cannot say: the role the session was made with
            return session.get("role")
        if known:
            found = users.get(name) if users is not None else None
            return found.role if found is not None and not found.disabled else None
        return "admin" if hmac.compare_digest(name.encode(), user.encode()) else None

    def _session_user() -> str | None:
        sid, issued = session.get("sid"), session.get("issued")
        if not session.get("user") or not sid or not isinstance(issued, (int, float)):
            return None
        now = time.time()
        for old in [k for k, until in revoked.items() if until < now]:
            del revoked[old]
        return str(session["user"]) if sid not in revoked and now - issued < session_hours * 3600 else None

    def _proxy_user() -> tuple[str, str] | None | bool:
        """(name, role) signed in by the proxy; None if no proxy speaks; False if it names someone refused."""
        if proxy is None:
            return None
        name = request.headers.get(proxy.header, "").strip()
        if not name:
            return None
        address = request.remote_addr or "?"
        if not proxy.trusts(address):
            if address not in said_untrusted and len(said_untrusted) < 1000:
                said_untrusted.add(address)
                log.warning("sign-on header from an address not among the trusted proxies: ignored",
                            extra={"address": address, "header": proxy.header})
            return None
        if not NAME.fullmatch(name):
            return False
        found = users.get(name) if users is not None else None
        if found is not None and found.disabled:
            return False
        return name, found.role if found is not None else proxy.default_role

    @server.before_request
    def _guard() -> Response | tuple[str, int] | None:
        if request.path in OPEN_PATHS:
            return None
        try:
            signed = _proxy_user()
            if signed is False:
                return "this user may not use riskpulse (disabled, or not a valid name)", 403
            if signed:
                g.user, g.role = signed
                _load_time_zone(signed[0])
                return None
            name = _session_user()
            role = _role_of(name) if name else None
        except SQLAlchemyError:  # a signed-in analyst keeps the role the session was made with
            name = _session_user()
            role = session.get("role") if name else None
        if name and role in ROLES:
            g.user, g.role = name, role
            _load_time_zone(name)
            return None
        if name:  # removed or disabled since: signed out
            session.clear()
        if request.path.startswith(("/_dash", "/api/")) or request.method != "GET":
            return "login required", 401
        return redirect("/login?next=" + quote(request.full_path.rstrip("?")))  # type: ignore[return-value]

    def _load_time_zone(name: str) -> None:
        """The user's time zone, from the store once per sign-in (kept in the session after that)."""
        if session.get("tz_user") == name:
            return
        try:
            zone = users.time_zone(name) if users is not None else None
        except SQLAlchemyError:
            return  # asked again at the next request
        session["tz_user"], session["tz"] = name, zone

    def _check(given_user: str, password: str) -> str | None:
        """The role of ``given_user`` if ``password`` is theirs."""
        known = _known()
        if known:
            found = users.get(given_user) if users is not None else None
            ok = (found is not None and not found.disabled and found.password_hash is not None
                  and check_password_hash(found.password_hash, password))
            return found.role if ok and found is not None else None
        ok = hmac.compare_digest(given_user.encode(), user.encode())
        return "admin" if check_password_hash(password_hash, password) and ok else None

    @server.route("/login", methods=["GET", "POST"])
    def _login() -> Response | str:
        error = ""
        if request.method == "POST":
            given_user = request.form.get("username", "")[:200]
            address = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), proxies)
            wait, reason = throttle.admit(given_user, address)
            if wait <= 0 and not hashers.acquire(blocking=False):
                wait, reason = 1.0, "busy"
            if wait > 0:
                SIGNIN_THROTTLED.labels(reason or "busy").inc()
                log.warning("dashboard sign-in throttled", extra={"user": given_user[:50], "address": address,
                                                                  "reason": reason, "retry_in_s": round(wait, 1)})
                when = f"{int(wait) + 1} s" if wait < 60 else f"{int(wait // 60) + 1} min"
                page = PAGE.format(error=f'<p class="err" id="login-error">Too many failed sign-ins; try again in '
                                         f'{when}.</p>', next="/")
                return Response(page, status=429, headers={"Retry-After": str(int(wait) + 1)})
            try:
                role = _check(given_user, request.form.get("password", ""))
            finally:
                hashers.release()
            if role is not None:
                throttle.succeeded(given_user, address)
                session.clear()
                session.permanent = True
                session.update(user=given_user, role=role, sid=secrets.token_urlsafe(16), issued=time.time())
                log.info("dashboard sign-in", extra={"user": given_user, "role": role})
                return redirect(_safe_next(request.form.get("next")))  # type: ignore[return-value]
            throttle.failed(given_user, address)
            log.warning("dashboard sign-in refused", extra={"user": given_user[:50], "address": address})
            error = '<p class="err" id="login-error">Wrong user or password.</p>'
        return PAGE.format(error=error, next=html.escape(_safe_next(request.args.get("next") or request.form.get("next"))))

    @server.route("/logout")
    def _logout() -> Response:
        sid = session.get("sid")
        if sid:  # the cookie may live on in another tab or a copy: it no longer signs anyone in
            revoked[str(sid)] = time.time() + session_hours * 3600
        session.clear()
        return redirect("/login")  # type: ignore[return-value]

    @server.route("/healthz")
    def _healthz() -> tuple[str, int]:
        return '{"status":"ok"}', 200


def current_tz() -> ZoneInfo:
    """The zone the signed-in user reads times in (UTC outside a request, or if none was chosen)."""
    if not has_request_context() or session.get("tz_user") != current_user():
        return UTC
    try:
        return ZoneInfo(session.get("tz") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def set_time_zone(zone: str) -> None:
    """Show this user's times in ``zone`` from now on (kept for store users across sign-ins)."""
    if zone not in available_timezones() and zone != "UTC":
        raise ValueError(f"unknown time zone {zone!r}")
    session["tz_user"], session["tz"] = current_user(), zone
    users = current_app.extensions.get("riskpulse_users")
    if users is not None:
        try:
            users.set_time_zone(current_user(), zone)
        except SQLAlchemyError:
            log.warning("time zone kept for this session only: store unavailable")


def current_user() -> str:
    """Who made this request (set by the guard: a session, or the sign-on proxy)."""
    return str(g.get("user") or session.get("user", ""))


def current_role() -> str:
    return str(g.get("role") or "viewer")


def may(role: str) -> bool:
    """True if the signed-in user's role is ``role`` or above it."""
    return ROLES.index(current_role()) >= ROLES.index(role)
