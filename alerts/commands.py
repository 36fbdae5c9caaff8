"""``riskpulse webhooks``: alerts/'s command-line entry point."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cmd_webhooks(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from riskpulse.settings import get_settings

    from .outbox import Outbox

    outbox = Outbox(get_settings().store_url, get_settings().store_migrate)
    if args.action == "enable":
        if not args.route:
            raise SystemExit("riskpulse webhooks enable: name the ROUTE (see `riskpulse webhooks list`)")
        try:
            requeued = outbox.enable(args.route, requeue_skipped=args.requeue_skipped)
        except KeyError:
            raise SystemExit(f"riskpulse webhooks: route {args.route!r} was never disabled in this store; "
                             "`riskpulse webhooks list` shows the routes it knows") from None
        print(json.dumps({"route": args.route, "enabled": True, "requeued": requeued}))
        return 0
    routes = outbox.routes()
    if args.json:
        for entry in routes:
            print(json.dumps(entry))
        return 0
    for entry in routes:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(entry["counts"].items())) or "no deliveries"
        state = "enabled"
        if entry["disabled_at"] is not None:
            since = datetime.fromtimestamp(entry["disabled_at"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            state = f"DISABLED since {since} ({entry['reason']})"
        print(f"{entry['route']:20s} {state}; {counts}")
    if not routes:
        print("no webhook deliveries in this store yet")
    return 0


def register(sub: Any) -> None:

    w = sub.add_parser("webhooks", help="webhook routes: delivery counts, and re-enabling one a receiver disabled (410)")
    w.add_argument("action", nargs="?", choices=["list", "enable"], default="list")
    w.add_argument("route", nargs="?", help="enable: the route's name in the alert rules")
    w.add_argument("--requeue-skipped", action="store_true",
                   help="enable: also send the alerts skipped while the route was disabled")
    w.add_argument("--json", action="store_true", help="list: one JSON object per route")
    w.set_defaults(func=cmd_webhooks)
