"""``riskpulse dashboard``: dashboard/'s command-line entry point."""

from __future__ import annotations

import argparse
import getpass
from typing import Any


def cmd_dashboard(args: argparse.Namespace) -> int:
    if args.hash_password:
        from .auth import hash_password

        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise SystemExit("riskpulse dashboard: the passwords differ")
        print(hash_password(first))
        return 0
    from riskpulse.settings import get_settings

    from .app import serve

    s = get_settings()
    print(f"riskpulse dashboard on http://{args.host}:{args.port or s.dashboard_port}/ (user {s.dashboard_user})", flush=True)
    serve(s, port=args.port, host=args.host)
    return 0


def _password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin (scripts), else asked twice on the terminal."""
    if args.password_stdin:
        import sys

        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            raise SystemExit("riskpulse users: the passwords differ")
    if len(password) < 12:
        raise SystemExit("riskpulse users: a password needs at least 12 characters")
    return password


def cmd_users(args: argparse.Namespace) -> int:
    import json

    from riskpulse.settings import get_settings
    from riskpulse.store.users import Users

    from .auth import hash_password

    users = Users(get_settings().store_url)
    by = getpass.getuser()
    try:
        if args.action == "list":
            for u in users.all():
                print(json.dumps({"name": u.name, "role": u.role, "disabled": u.disabled,
                                  "sign_in": "password" if u.password_hash else "single sign-on"}))
            return 0
        if not args.name:
            raise ValueError(f"riskpulse users {args.action} NAME")
        if args.action == "add":
            pw = None if args.sso else hash_password(_password(args))
            users.add(args.name, args.role or "analyst", pw, created_by=by)
        elif args.action == "role":
            users.set_role(args.name, args.role or "")
        elif args.action == "password":
            users.set_password_hash(args.name, hash_password(_password(args)))
        elif args.action in ("disable", "enable"):
            users.set_disabled(args.name, args.action == "disable")
        elif args.action == "remove":
            users.remove(args.name)
    except ValueError as exc:
        raise SystemExit(f"riskpulse users: {exc}") from None
    print(f"riskpulse users: {args.action} {args.name}: done")
    return 0


def register(sub: Any) -> None:
    u = sub.add_parser("users", help="the dashboard's users and their roles (viewer, analyst, admin)")
    u.add_argument("action", choices=["list", "add", "role", "password", "disable", "enable", "remove"])
    u.add_argument("name", nargs="?", help="the user's name (as they sign in, or as the sign-on proxy names them)")
    u.add_argument("--role", choices=["viewer", "analyst", "admin"], help="add (default analyst), role")
    u.add_argument("--sso", action="store_true", help="add: signs in through the sign-on proxy only, no password")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    u.set_defaults(func=cmd_users)

    d = sub.add_parser("dashboard", help="the analysts' dashboard (Plotly Dash) over the store")
    d.add_argument("--port", type=int, help="default RISKPULSE_DASHBOARD_PORT (8050)")
    d.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in containers)")
    d.add_argument("--hash-password", action="store_true", help="print a hash for RISKPULSE_DASHBOARD_PASSWORD_HASH")
    d.set_defaults(func=cmd_dashboard)
