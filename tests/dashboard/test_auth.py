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


def test_wrong_passwords_slow_one_address_down_but_never_lock_the_owner_out() -> None:
    """The lockout case: 200 wrong passwords for `analyst` from one address (it is throttled,
    429 with Retry-After) do not keep the right password from another address out."""
    client = app().test_client()
    answers = [client.post("/login", data={"username": "analyst", "password": f"guess{k}"},
                           environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code for k in range(200)]
    assert answers[:3] == [200, 200, 200] and answers.count(429) >= 190  # tried, then held back
    held = client.post("/login", data={"username": "analyst", "password": "pw"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0  # this address waits, even with the right one
    owner = app().test_client()
    signed_in = client.post("/login", data={"username": "analyst", "password": "pw"},
                            environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert signed_in.status_code == 302, "the owner from another address is let in"
    assert owner is not None


def test_behind_a_trusted_load_balancer_the_throttle_sees_each_client_not_the_balancer() -> None:
    from ipaddress import ip_network

    from riskpulse.dashboard.auth import client_address

    lb = (ip_network("10.1.0.0/16"),)
    assert client_address("10.1.2.3", "198.51.100.7", lb) == "198.51.100.7"
    assert client_address("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.1.9.9", lb) == "198.51.100.7"  # the forged hop is ignored
    assert client_address("203.0.113.5", "198.51.100.7", lb) == "203.0.113.5"  # not from the balancer: not believed
    server = app(trusted_proxies=["10.1.0.0/16"])
    client = server.test_client()
    for k in range(30):  # a guesser behind the balancer
        client.post("/login", data={"username": "analyst", "password": f"g{k}"},
                    environ_base={"REMOTE_ADDR": "10.1.0.1"}, headers={"X-Forwarded-For": "203.0.113.66"})
    owner = client.post("/login", data={"username": "analyst", "password": "pw"},
                        environ_base={"REMOTE_ADDR": "10.1.0.1"}, headers={"X-Forwarded-For": "198.51.100.7"})
    assert owner.status_code == 302


def test_the_waits_grow_per_user_and_address_and_per_address_and_age_out() -> None:
    now = [0.0]
    throttle = LoginThrottle(pair_free=2, address_free=4, user_free=100, window_s=60, clock=lambda: now[0])
    for _ in range(2):
        assert throttle.admit("u", "1.2.3.4") == (0.0, None)
        throttle.failed("u", "1.2.3.4")
    assert throttle.admit("u", "1.2.3.4") == (1.0, "user_address")  # 2 ** 0 s after the last failure
    throttle.failed("u", "1.2.3.4")
    assert throttle.admit("u", "1.2.3.4") == (2.0, "user_address")  # then 2 s, 4 s ...
    assert throttle.admit("v", "1.2.3.4") == (0.0, None)  # another user from here: three failures so far
    throttle.failed("v", "1.2.3.4")
    assert throttle.admit("w", "1.2.3.4")[1] == "address"  # one address trying many users
    assert throttle.admit("w", "5.6.7.8") == (0.0, None)
    now[0] = 61
    assert throttle.admit("u", "1.2.3.4") == (0.0, None)  # aged out


def test_guessing_one_user_from_many_addresses_is_paced_but_its_owner_waits_seconds_at_most() -> None:
    now = [0.0]
    throttle = LoginThrottle(pair_free=3, address_free=10, user_free=5, user_interval_s=2.0, clock=lambda: now[0])
    for k in range(5):  # a botnet: each address fails once
        throttle.failed("analyst", f"10.0.0.{k}")
    assert throttle.admit("analyst", "10.0.0.1") == (0.0, None)  # the failed lane: one check ...
    assert throttle.admit("analyst", "10.0.0.2") == (2.0, "user")  # ... per 2 s
    assert throttle.admit("analyst", "10.9.9.9") == (0.0, None)  # an address that never failed: its own lane
    assert throttle.admit("analyst", "10.9.9.8")[1] == "user"  # paced too: a fresh address per try gains nothing
    now[0] = 2.0
    assert throttle.admit("analyst", "10.0.0.2") == (0.0, None)  # 2 s later, the next
    assert throttle.admit("analyst", "192.0.2.1") == (0.0, None)


def test_parallel_wrong_passwords_run_at_most_two_hashes_at_once_and_the_site_answers() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import riskpulse.dashboard.auth as auth

    running, peak, lock = [0], [0], threading.Lock()
    real = auth.check_password_hash

    def slow_check(stored: str, given: str) -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.2)
            return real(stored, given)
        finally:
            with lock:
                running[0] -= 1

    server = app()
    auth.check_password_hash = slow_check  # type: ignore[assignment]
    try:
        def attempt(k: int) -> int:
            return server.test_client().post("/login", data={"username": f"user{k}", "password": "x"},
                                             environ_base={"REMOTE_ADDR": f"192.0.2.{k}"}).status_code
        with ThreadPoolExecutor(10) as pool:
            tries = [pool.submit(attempt, k) for k in range(16)]
            health = [pool.submit(lambda: server.test_client().get("/healthz").status_code) for _ in range(8)]
            codes = [t.result() for t in tries]
        assert [h.result() for h in health] == [200] * 8  # the site answers while the guesses run
    finally:
        auth.check_password_hash = real  # type: ignore[assignment]
    assert peak[0] <= auth.HASHERS and set(codes) <= {200, 429} and 429 in codes


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


def test_a_request_started_before_a_zone_change_does_not_undo_it() -> None:
    """The dashboard's callbacks run side by side. A request that left the session alone must not
    send it back: one that set out with the cookie of before a change (the minute's refresh while
    the analyst picks a zone) would otherwise answer after it and put the old zone back (seen in
    CI: the browser test's zone never came back to UTC)."""
    from flask import jsonify

    from riskpulse.dashboard.auth import current_tz, set_time_zone

    server = Flask(__name__)

    @server.route("/")
    def index() -> str:
        return str(current_tz())

    @server.route("/zone/<path:zone>", methods=["POST"])
    def zone(zone: str) -> object:
        set_time_zone(zone)
        return jsonify(zone)
    install(server, "analyst", hash_password("pw"), b"k" * 32)
    name = cookie_name(b"k" * 32)
    browser = server.test_client()
    browser.post("/login", data={"username": "analyst", "password": "pw"})
    browser.post("/zone/Asia/Tokyo")
    before = browser.get_cookie(name).value
    assert browser.post("/zone/UTC").headers.get("Set-Cookie")  # the change is sent
    started_before = server.test_client()  # the same browser, a request that left with the old cookie
    started_before.set_cookie(name, before)
    answer = started_before.get("/")
    assert answer.text == "Asia/Tokyo"  # it read what it was sent: the page it draws is redrawn after
    assert "Set-Cookie" not in answer.headers  # and it does not overwrite the newer cookie
    assert browser.get("/").text == "UTC"
