"""``riskpulse webhooks`` and ``riskpulse silence``: alerts/'s command-line entry points."""

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


DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90m``, ``4h``, ``2d`` -> seconds."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in DURATION_UNITS or not text[:-1].replace(".", "", 1).isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a duration such as 90m, 4h or 2d")
    return float(text[:-1]) * DURATION_UNITS[text[-1]]


def cmd_silence(args: argparse.Namespace) -> int:
    import getpass
    import time
    from datetime import datetime, timezone

    from riskpulse.settings import get_settings

    from .silences import Silences

    silences = Silences(get_settings().store_url, get_settings().store_migrate)
    if args.action == "add":
        try:
            made = silences.add(args.by or getpass.getuser(), args.comment or "", time.time() + args.duration,
                                key_type=args.key_type, key=args.key, severity=args.severity)
        except ValueError as exc:
            raise SystemExit(f"riskpulse silence add: {exc}") from None
        print(json.dumps(made.to_json()))
        return 0
    if args.action == "expire":
        if not args.id:
            raise SystemExit("riskpulse silence expire: name the silence ID (see `riskpulse silence list`)")
        if not silences.expire(args.id):
            raise SystemExit(f"riskpulse silence: no silence {args.id!r} is holding (already ended, or unknown)")
        print(json.dumps({"id": args.id, "expired": True}))
        return 0
    shown = silences.all() if args.all else silences.active()
    for silence in shown:
        if args.json:
            print(json.dumps(silence.to_json()))
            continue
        until = datetime.fromtimestamp(silence.ends_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        print(f"{silence.id}  until {until}  ({silence.matchers()}) by {silence.created_by}: {silence.comment}")
    if not shown and not args.json:
        print("no silences holding" if not args.all else "no silences in this store")
    return 0


def register(sub: Any) -> None:
    s = sub.add_parser("silence", help="mute the webhooks of matching alerts for a while (Alertmanager-style)")
    s.add_argument("action", nargs="?", choices=["list", "add", "expire"], default="list")
    s.add_argument("id", nargs="?", help="expire: the silence's id")
    s.add_argument("--key-type", choices=["topic", "ticker"], help="add: match this key type")
    s.add_argument("--key", help="add: match this key (a topic or a ticker, exactly)")
    s.add_argument("--severity", choices=["warning", "critical"], help="add: match this severity")
    s.add_argument("--for", dest="duration", type=parse_duration, default=parse_duration("4h"),
                   help="add: how long, e.g. 90m, 4h (default), 2d")
    s.add_argument("--comment", help="add: why (required)")
    s.add_argument("--by", help="add: who (default: your login name)")
    s.add_argument("--all", action="store_true", help="list: ended ones too")
    s.add_argument("--json", action="store_true", help="list: one JSON object per silence")
    s.set_defaults(func=cmd_silence)

    w = sub.add_parser("webhooks", help="webhook routes: delivery counts, and re-enabling one a receiver disabled (410)")
    w.add_argument("action", nargs="?", choices=["list", "enable"], default="list")
    w.add_argument("route", nargs="?", help="enable: the route's name in the alert rules")
    w.add_argument("--requeue-skipped", action="store_true",
                   help="enable: also send the alerts skipped while the route was disabled")
    w.add_argument("--json", action="store_true", help="list: one JSON object per route")
    w.set_defaults(func=cmd_webhooks)
