"""``riskpulse worker`` and ``riskpulse replay``: stream/'s command-line entry points."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_worker(args: argparse.Namespace) -> int:
    if not args.no_supervise:
        from .supervisor import child_argv, supervise

        return supervise(child_argv(args.loglevel))
    from . import agents  # noqa: F401  (registers the agents on the app)
    from .app import app
    from .topics import ensure_topics

    from riskpulse.settings import get_settings

    ensure_topics(get_settings())
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


def register(sub: Any) -> None:
    w = sub.add_parser("worker", help="run a Faust worker (scoring, windows, trends, store sink)")
    w.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    w.add_argument("--no-supervise", action="store_true", help="run the worker in this process, without restarts")
    w.set_defaults(func=cmd_worker)

    r = sub.add_parser("replay", help="replay a CSV/JSONL news file into Kafka, keeping event time")
    r.add_argument("file")
    r.add_argument("--speed", default="1", help="time acceleration, e.g. 1, 60, 500, or 'max'")
    r.add_argument("--bootstrap")
    r.set_defaults(func=cmd_replay)
