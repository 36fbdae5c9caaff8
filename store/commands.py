"""``riskpulse store``: the store's schema, for operators who migrate as a separate step."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_store(args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine

    from riskpulse.settings import get_settings

    from .engine import current_revision, head_revision, upgrade

    url = args.url or get_settings().store_url
    engine = create_engine(url, future=True)
    try:
        if args.action == "upgrade":
            upgrade(engine)
        current, head = current_revision(engine), head_revision()
        print(json.dumps({"store": engine.url.render_as_string(hide_password=True), "revision": current,
                          "head": head, "current": current == head}))
        return 0 if current == head else 1
    finally:
        engine.dispose()


def register(sub: Any) -> None:
    s = sub.add_parser("store", help="the store's schema: show its revision, or upgrade it to this riskpulse's")
    s.add_argument("action", choices=["current", "upgrade"],
                   help="current: the store's revision against this riskpulse's (exit 1 if behind); upgrade: migrate")
    s.add_argument("--url", help="the store (default RISKPULSE_STORE_URL)")
    s.set_defaults(func=cmd_store)
