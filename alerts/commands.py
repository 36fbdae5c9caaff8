"""``riskpulse backtest`` and ``riskpulse webhooks``: alerts/'s command-line entry points."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cmd_backtest(args: argparse.Namespace) -> int:
    from riskpulse.settings import get_settings

    from .rules import Rules

    s = get_settings()
    rules = Rules.load(Path(args.rules) if args.rules else s.alert_rules)
    if args.evaluate:
        from .evaluation import evaluate

        report = evaluate(Path(args.data) if args.data else s.data_dir, rules, seed=args.seed,
                          burst_days=args.days, clean_days=args.clean_days)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    if not args.file:
        raise SystemExit("riskpulse backtest: give a scored history FILE, or --evaluate")
    from .backtest import backtest, read_history

    alerts = backtest(read_history(Path(args.file)), rules, args.window_s or s.window_s)
    for alert in alerts:
        if args.json:
            print(json.dumps(alert.to_json(), ensure_ascii=False))
        else:
            print(f"{alert.window_start:%Y-%m-%d %H:%M}  {alert.status:8s} {alert.severity:8s} {alert.summary}")
    if not args.json:
        firing = sum(a.status == "firing" for a in alerts)
        print(f"{firing} alert(s) fired, {len(alerts) - firing} record(s) of escalation/resolution")
    return 0


def cmd_webhooks(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from riskpulse.settings import get_settings

    from .outbox import Outbox

    outbox = Outbox(get_settings().store_url)
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
    b = sub.add_parser("backtest", help="run the spike detector over a scored history (no broker), or evaluate it")
    b.add_argument("file", nargs="?", help="news.scored JSONL or `riskpulse score` output with published_at")
    b.add_argument("--rules", help="alert rules YAML (default RISKPULSE_ALERT_RULES)")
    b.add_argument("--window-s", type=int, help="window length (default RISKPULSE_WINDOW_S)")
    b.add_argument("--json", action="store_true", help="one JSON alert per line")
    b.add_argument("--evaluate", action="store_true", help="inject synthetic bursts into background streams built "
                   "from the labelled data and report detection rate, time to detect and false alerts")
    b.add_argument("--data", help="labelled data folder for --evaluate (default RISKPULSE_DATA_DIR)")
    b.add_argument("--days", type=float, default=2.0, help="--evaluate: simulated days per burst size")
    b.add_argument("--clean-days", type=float, default=8.0, help="--evaluate: simulated days without bursts")
    b.add_argument("--seed", type=int, default=1)
    b.set_defaults(func=cmd_backtest)

    w = sub.add_parser("webhooks", help="webhook routes: delivery counts, and re-enabling one a receiver disabled (410)")
    w.add_argument("action", nargs="?", choices=["list", "enable"], default="list")
    w.add_argument("route", nargs="?", help="enable: the route's name in the alert rules")
    w.add_argument("--requeue-skipped", action="store_true",
                   help="enable: also send the alerts skipped while the route was disabled")
    w.add_argument("--json", action="store_true", help="list: one JSON object per route")
    w.set_defaults(func=cmd_webhooks)
