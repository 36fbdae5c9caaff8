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


def register(sub: Any) -> None:
    d = sub.add_parser("dashboard", help="the analysts' dashboard (Plotly Dash) over the store")
    d.add_argument("--port", type=int, help="default RISKPULSE_DASHBOARD_PORT (8050)")
    d.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in containers)")
    d.add_argument("--hash-password", action="store_true", help="print a hash for RISKPULSE_DASHBOARD_PASSWORD_HASH")
    d.set_defaults(func=cmd_dashboard)
