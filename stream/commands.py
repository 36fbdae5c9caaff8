"""``riskpulse worker``, ``replay``, ``rss``, ``ingest``, ``topics`` and ``backtest``: stream/'s command-line entry points."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_worker(args: argparse.Namespace) -> int:
    from riskpulse.alerts.rules import Rules
    from riskpulse.settings import get_settings

    Rules.load(get_settings().alert_rules)  # a bad rules file stops start-up here, with its line
    if not get_settings().store_migrate:  # a store at another schema revision stops start-up here, saying what to run
        from riskpulse.store.engine import create_store_engine

        create_store_engine(get_settings().store_url, migrate=False).dispose()
    if not args.no_supervise:
        from .topics import ensure_topics

        ensure_topics(get_settings())  # wrong credentials or bootstrap stop start-up here, not in a restart loop
        from .runtime.supervisor import child_argv, supervise

        return supervise(child_argv(args.loglevel))
    from .agents import build_app
    from .topics import ensure_topics

    settings = get_settings()
    ensure_topics(settings)
    app = build_app(settings)
    sys.argv = ["riskpulse-worker", "worker", "--loglevel", args.loglevel]
    app.main()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from riskpulse.settings import get_settings

    from .replay import replay
    from .topics import ensure_topics

    s = get_settings()
    ensure_topics(s)
    speed = None if args.speed == "max" else float(args.speed)
    n = replay(Path(args.file), args.bootstrap or s.kafka_bootstrap, speed, topic=s.topic_prefix + "news")
    print(json.dumps({"sent": n, "topic": "news"}))
    return 0


def cmd_rss(args: argparse.Namespace) -> int:
    from riskpulse.settings import get_settings

    from .producer import news_producer, send_all
    from .rss import FeedPoller
    from .topics import ensure_topics

    s = get_settings()
    ensure_topics(s)
    producer = news_producer(args.bootstrap or s.kafka_bootstrap)
    topic = s.topic_prefix + "news"
    state = Path(args.state) if args.state else s.home / "rss-state.json"
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_host)  # /metrics: polls and items
    try:
        poller = FeedPoller(args.urls, state, lambda items: send_all(producer, topic, items), interval_s=args.interval)
        n = poller.run(once=args.once)
    except KeyboardInterrupt:
        n = 0
    finally:
        producer.close()
    print(json.dumps({"sent": n, "topic": "news"}))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from riskpulse.settings import get_settings

    from .ingest import serve
    from .topics import ensure_topics

    s = get_settings()
    if s.ingest_token is None or not s.ingest_token.get_secret_value():
        raise SystemExit("riskpulse ingest: set RISKPULSE_INGEST_TOKEN (senders use it as a bearer token)")
    ensure_topics(s)
    serve(s.kafka_bootstrap, s.topic_prefix + "news", s.ingest_token.get_secret_value(), args.host,
          args.port or s.ingest_port)
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    """Print the topic plan; with ``apply``, carry it out and print what is left."""
    from riskpulse.settings import get_settings

    from .topic_plan import apply, plan, render

    s = get_settings()
    steps = plan(s)
    if args.action == "apply":
        for step in apply(s, steps):
            print(f"{'created' if step.action == 'create' else 'altered'} {step.spec.name}")
        steps = plan(s)
    print(render(steps))
    return 0 if all(step.action == "ok" for step in steps) else 1


def cmd_backtest(args: argparse.Namespace) -> int:
    from riskpulse.alerts.rules import Rules
    from riskpulse.settings import get_settings

    s = get_settings()
    rules = Rules.load(Path(args.rules) if args.rules else s.alert_rules)
    if args.evaluate:
        from riskpulse.alerts.evaluation import evaluate

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


def register(sub: Any) -> None:
    w = sub.add_parser("worker", help="run a Faust worker (scoring, windows, trends, store sink)")
    w.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    w.add_argument("--no-supervise", action="store_true", help="run the worker in this process, without restarts")
    w.set_defaults(func=cmd_worker)

    t = sub.add_parser("topics", help="the Kafka topics riskpulse needs: plan (compare with the cluster) or apply")
    t.add_argument("action", choices=["plan", "apply"])
    t.set_defaults(func=cmd_topics)

    r = sub.add_parser("replay", help="replay a CSV/JSONL news file into Kafka, keeping event time")
    r.add_argument("file")
    r.add_argument("--speed", default="1", help="time acceleration, e.g. 1, 60, 500, or 'max'")
    r.add_argument("--bootstrap")
    r.set_defaults(func=cmd_replay)

    f = sub.add_parser("rss", help="poll RSS/Atom feeds into Kafka (conditional GET, de-duplicated by guid)")
    f.add_argument("urls", nargs="+", metavar="URL")
    f.add_argument("--interval", type=float, default=300.0, help="seconds between polls of one feed (min 30)")
    f.add_argument("--once", action="store_true", help="poll each feed once and exit")
    f.add_argument("--state", help="state file (default RISKPULSE_HOME/rss-state.json)")
    f.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port (0: off)")
    f.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (0.0.0.0 in a container)")
    f.add_argument("--bootstrap")
    f.set_defaults(func=cmd_rss)

    i = sub.add_parser("ingest", help="HTTP endpoint: POST /v1/news with a bearer token")
    i.add_argument("--host", default="127.0.0.1")
    i.add_argument("--port", type=int, help="default RISKPULSE_INGEST_PORT (8088)")
    i.set_defaults(func=cmd_ingest)

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
