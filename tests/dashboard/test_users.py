"""People and roles at the dashboard: users from the store, a break-glass admin, single sign-on
through a trusted proxy, and what each role may do (Flask's test client over a real SQLite store)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from riskpulse.dashboard import auth
from riskpulse.dashboard.app import create_app
from riskpulse.settings import Settings
from riskpulse.store.users import Users
from tests.helpers import REPO

PASSWORD = "a long enough secret"


@pytest.fixture
def site(tmp_path: Path) -> Any:
    settings = Settings(home=tmp_path / "home", store_url=f"sqlite:///{tmp_path / 'store.db'}",
                        dashboard_password="break glass please", dashboard_proxy_header="X-Forwarded-User",
                        dashboard_trusted_proxies=["10.0.0.0/8"])
    app = create_app(settings)
    app.users = Users(settings.store_url)  # type: ignore[attr-defined]
    return app


def client(app: Any, address: str = "127.0.0.1") -> Any:
    c = app.server.test_client()
    c.environ_base["REMOTE_ADDR"] = address
    return c


def sign_in(c: Any, name: str, password: str) -> int:
    return c.post("/login", data={"username": name, "password": password}).status_code


def post_silence(c: Any, **headers: str) -> Any:
    return c.post("/api/silences", json={"key_type": "ticker", "key": "TSLA", "comment": "known story"},
                  headers=headers)


def test_the_configured_user_is_the_break_glass_admin_until_the_store_has_users(site: Any) -> None:
    c = client(site)
    assert sign_in(c, "analyst", "break glass please") == 302
    assert post_silence(c).status_code == 201  # admin
    site.users.add("ana", "analyst", auth.hash_password(PASSWORD), created_by="ops")
    assert c.get("/api/silences").status_code == 401  # the break-glass session ends once users exist
    assert sign_in(client(site), "analyst", "break glass please") == 200  # refused: the login page again


def test_roles_decide_who_reads_who_silences_and_who_ends_anyones_silence(site: Any) -> None:
    for name, role in (("vera", "viewer"), ("ana", "analyst"), ("ada", "admin"), ("otto", "analyst")):
        site.users.add(name, role, auth.hash_password(PASSWORD), created_by="ops")
    viewer, analyst, admin, other = (client(site) for _ in range(4))
    for c, name in ((viewer, "vera"), (analyst, "ana"), (admin, "ada"), (other, "otto")):
        assert sign_in(c, name, PASSWORD) == 302
    assert viewer.get("/api/silences").status_code == 200
    assert post_silence(viewer).status_code == 403
    made = post_silence(analyst)
    assert made.status_code == 201 and made.get_json()["created_by"] == "ana"  # who, recorded
    silence_id = made.get_json()["id"]
    assert other.delete(f"/api/silences/{silence_id}").status_code == 403  # not theirs
    assert admin.delete(f"/api/silences/{silence_id}").status_code == 204  # an admin ends anyone's
    assert sign_in(client(site), "vera", "wrong password") == 200


def test_a_disabled_or_removed_user_is_signed_out_at_the_next_request(site: Any) -> None:
    site.users.add("ana", "analyst", auth.hash_password(PASSWORD), created_by="ops")
    c = client(site)
    assert sign_in(c, "ana", PASSWORD) == 302 and c.get("/api/silences").status_code == 200
    site.users.set_disabled("ana", True)
    assert c.get("/api/silences").status_code == 401
    assert sign_in(c, "ana", PASSWORD) == 200  # refused
    site.users.set_disabled("ana", False)
    site.users.set_role("ana", "viewer")
    assert sign_in(c, "ana", PASSWORD) == 302 and post_silence(c).status_code == 403  # the new role holds at once


def test_single_sign_on_trusts_the_header_only_from_the_proxies(site: Any) -> None:
    site.users.add("ada", "admin", None, created_by="ops")
    proxy, stranger = client(site, "10.1.2.3"), client(site, "192.0.2.9")
    assert proxy.get("/api/silences", headers={"X-Forwarded-User": "ada"}).status_code == 200
    assert post_silence(proxy, **{"X-Forwarded-User": "ada"}).status_code == 201  # admin, from the store
    assert post_silence(proxy, **{"X-Forwarded-User": "newcomer"}).status_code == 403  # unknown: the default, viewer
    assert proxy.get("/api/silences", headers={"X-Forwarded-User": "newcomer"}).status_code == 200
    assert stranger.get("/api/silences", headers={"X-Forwarded-User": "ada"}).status_code == 401  # not a proxy
    assert proxy.get("/api/silences", headers={"X-Forwarded-User": "bad name!"}).status_code == 403
    site.users.set_disabled("ada", True)
    assert proxy.get("/api/silences", headers={"X-Forwarded-User": "ada"}).status_code == 403
    assert sign_in(client(site), "ada", "") == 200  # a sign-on user has no password to sign in with


def test_users_are_managed_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "RISKPULSE_HOME": str(tmp_path), "RISKPULSE_STORE_URL": f"sqlite:///{tmp_path / 's.db'}"}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "riskpulse.cli", "users", *args], input=stdin, text=True,
                              capture_output=True, env=env, cwd=REPO, timeout=120)

    assert run("add", "ana", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert run("add", "sso.user", "--sso", "--role", "viewer").returncode == 0
    short = run("add", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode != 0 and "12 characters" in short.stderr
    taken = run("add", "ana", "--password-stdin", stdin=PASSWORD + "\n")
    assert taken.returncode != 0 and "exists already" in taken.stderr
    assert run("role", "ana", "--role", "admin").returncode == 0
    listed = run("list").stdout
    assert '"name": "ana", "role": "admin"' in listed and '"sign_in": "single sign-on"' in listed
    assert run("remove", "nobody").returncode != 0
    user = Users(env["RISKPULSE_STORE_URL"]).get("ana")
    assert user is not None and user.role == "admin" and user.password_hash and PASSWORD not in user.password_hash


def test_a_users_time_zone_follows_them_to_their_next_sign_in(site: Any) -> None:
    site.users.add("ana", "analyst", auth.hash_password(PASSWORD), created_by="ops")
    assert site.users.set_time_zone("ana", "Asia/Tokyo") and not site.users.set_time_zone("nobody", "UTC")
    c = client(site)
    assert sign_in(c, "ana", PASSWORD) == 302 and c.get("/api/silences").status_code == 200
    with c.session_transaction() as session:
        assert session["tz"] == "Asia/Tokyo" and session["tz_user"] == "ana"
