"""Login for the dashboard: nothing but the login page answers without a session.

Passwords are checked against a salted hash (Werkzeug's scrypt), never stored in the clear:
configure ``RISKPULSE_DASHBOARD_PASSWORD_HASH`` (``riskpulse dashboard --hash-password``
prints one) or, for the embedded demo, ``RISKPULSE_DASHBOARD_PASSWORD``, hashed at start-up.
"""

from __future__ import annotations

import html
import hmac
import logging
import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response, redirect, request, session
from werkzeug.security import check_password_hash, generate_password_hash

log = logging.getLogger(__name__)

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


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def secret_key(home: Path) -> bytes:
    """Signs session cookies; kept in RISKPULSE_HOME so sessions survive a restart."""
    path = home / "dashboard-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a login link must not bounce the analyst to another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def install(server: Flask, user: str, password_hash: str, key: bytes) -> None:
    server.secret_key = key
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    @server.before_request
    def _guard() -> Response | tuple[str, int] | None:
        if request.path in OPEN_PATHS or session.get("user"):
            return None
        if request.path.startswith("/_dash") or request.method != "GET":
            return "login required", 401
        return redirect("/login?next=" + quote(request.full_path.rstrip("?")))  # type: ignore[return-value]

    @server.route("/login", methods=["GET", "POST"])
    def _login() -> Response | str:
        error = ""
        if request.method == "POST":
            given_user = request.form.get("username", "")
            ok = hmac.compare_digest(given_user.encode(), user.encode())
            ok = check_password_hash(password_hash, request.form.get("password", "")) and ok
            if ok:
                session.clear()
                session["user"] = user
                log.info("dashboard sign-in", extra={"user": user})
                return redirect(_safe_next(request.form.get("next")))  # type: ignore[return-value]
            time.sleep(0.5)  # slows guessing
            log.warning("dashboard sign-in refused", extra={"user": given_user[:50]})
            error = '<p class="err" id="login-error">Wrong user or password.</p>'
        return PAGE.format(error=error, next=html.escape(_safe_next(request.args.get("next") or request.form.get("next"))))

    @server.route("/logout")
    def _logout() -> Response:
        session.clear()
        return redirect("/login")  # type: ignore[return-value]

    @server.route("/healthz")
    def _healthz() -> tuple[str, int]:
        return '{"status":"ok"}', 200


def current_user() -> str:
    return str(session.get("user", ""))
