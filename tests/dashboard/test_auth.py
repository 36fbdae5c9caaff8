"""Dashboard sign-in without a browser: throttling, expiry, revocation at sign-out, cookie flags."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask

from riskpulse.dashboard.auth import LoginThrottle, cookie_name, hash_password, install


def app(key: bytes = b"k" * 32, **kw: object) -> Flask:
    server = Flask(__name__)

    @server.route("/")
    def index() -> str:
        return "desk"
    install(server, "analyst", hash_password("pw"), key, **kw)  # type: ignore[arg-type]
    return server


def test_wrong_passwords_are_throttled_per_user_and_address() -> None:
    client = app().test_client()
    for _ in range(5):
        assert client.post("/login", data={"username": "analyst", "password": "guess"}).status_code == 200
    locked = client.post("/login", data={"username": "analyst", "password": "pw"})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0  # even the right one, for now
    other = app().test_client()  # a fresh process: nothing remembered
    assert other.post("/login", data={"username": "analyst", "password": "pw"}).status_code == 302


def test_throttle_ages_out() -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window_s=60, clock=lambda: now[0])
    throttle.failed("u", "1.2.3.4")
    throttle.failed("v", "1.2.3.4")
    assert throttle.retry_in_s("w", "1.2.3.4") > 0  # the address tried two users
    assert throttle.retry_in_s("w", "5.6.7.8") == 0
    now[0] = 61
    assert throttle.retry_in_s("w", "1.2.3.4") == 0


def test_sign_out_revokes_the_session_and_sessions_expire() -> None:
    server = app(session_hours=1 / 3600, secure_cookie=True)  # one second
    client = server.test_client()
    response = client.post("/login", data={"username": "analyst", "password": "pw"})
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    copy = server.test_client()
    name = cookie_name(b"k" * 32)
    copy.set_cookie(name, client.get_cookie(name).value)
    assert client.get("/").status_code == 200
    client.get("/logout")
    assert copy.get("/").status_code == 302  # the copied cookie died with the sign-out
    fresh = server.test_client()
    fresh.post("/login", data={"username": "analyst", "password": "pw"})
    time.sleep(1.1)
    assert fresh.get("/").status_code == 302  # expired


def test_two_dashboards_on_one_host_keep_their_own_sessions() -> None:
    """Browsers share cookies across ports: signing in to one dashboard must not sign out the other
    (it did: the browser test's second dashboard got 401s while the first page still refreshed)."""
    desk, demo = app(b"a" * 32), app(b"b" * 32)
    browser = desk.test_client()
    browser.post("/login", data={"username": "analyst", "password": "pw"})
    other = demo.test_client()
    other.post("/login", data={"username": "analyst", "password": "pw"})
    for cookie in [other.get_cookie(cookie_name(b"b" * 32))]:  # the same browser now holds both cookies
        browser.set_cookie(cookie.key, cookie.value)
    assert browser.get("/").status_code == 200
    assert cookie_name(b"a" * 32) != cookie_name(b"b" * 32) and cookie_name(b"a" * 32) == cookie_name(b"a" * 32)


def test_csv_export_neutralises_formulas() -> None:
    import pandas as pd

    from riskpulse.dashboard.figures import csv_safe

    frame = pd.DataFrame({"headline": ["=HYPERLINK(\"http://evil\")", "+1 beats", "-ve news", "@SUM(A1)", "Plain"],
                          "sentiment_score": [-0.5, 0.1, -0.2, 0.0, 0.3]})
    safe = csv_safe(frame)
    assert safe["headline"].tolist() == ["'=HYPERLINK(\"http://evil\")", "'+1 beats", "'-ve news", "'@SUM(A1)", "Plain"]
    assert safe["sentiment_score"].tolist() == [-0.5, 0.1, -0.2, 0.0, 0.3]


def test_processes_creating_the_cookie_key_at_once_all_read_one_whole_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys; from pathlib import Path; from riskpulse.dashboard.auth import secret_key; " \
           "print(secret_key(Path(sys.argv[1])).hex())"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and len(keys.pop()) == 64  # one 32-byte key, never an empty or partial read
    assert [p.name for p in tmp_path.iterdir()] == ["dashboard-secret"]  # no temporary file left
