"""Notifications per event, one alert per message (incidents disabled) against incidents: the
demo's news (a ticker's burst of six stories among an hour of background), scored by the shipped
model, counted by the backtest, and told to one route. The notifier runs on the replay's clock
(a tick every 10 s of event time, as if the news had come live), with the default timing.

    python bench/bench_incidents.py [--seeds 3,4,5]

Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_model import host  # noqa: E402
from riskpulse.alerts.delivery import enqueue_alert  # noqa: E402
from riskpulse.alerts.notifier import Notifier  # noqa: E402
from riskpulse.alerts.outbox import Outbox  # noqa: E402
from riskpulse.alerts.rules import Rules  # noqa: E402
from riskpulse.records import Alert, NewsItem  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402
from riskpulse.store.news import Store  # noqa: E402
from riskpulse.stream.backtest import backtest  # noqa: E402
from riskpulse.stream.sample_news import generate  # noqa: E402
from riskpulse.stream.scoring import ScoringService  # noqa: E402

ROUTE = "routes:\n  - {name: desk, url: 'http://127.0.0.1:9/desk'}\n"


def alerts_of(service: ScoringService, seed: int) -> list[Alert]:
    items = [NewsItem.model_validate(i) for i in generate(seed=seed)]
    scored = service.score_items(items, datetime.now(timezone.utc))
    return sorted(backtest(scored, Rules.defaults(), 60), key=lambda a: (a.fired_at, a.id))


def messages(alerts: list[Alert], incidents: bool) -> int:
    """Messages the desk route gets for these alerts."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/store.db")
        outbox = Outbox(store.engine, migrate=False)
        rules = Rules.parse(ROUTE + ("" if incidents else "incidents: {enabled: false}\n"))
        notifier = Notifier(store, outbox, rules)
        if not alerts:
            return 0
        now = alerts[0].fired_at.timestamp()
        pending = list(alerts)
        end = alerts[-1].fired_at.timestamp() + 6 * 3600  # long enough for every message owed, reminders included
        while now <= end:
            due = [a for a in pending if a.fired_at.timestamp() <= now]
            pending = pending[len(due):]
            if due:
                store.upsert_alerts([a.to_json() for a in due])
                if not incidents:
                    for a in due:
                        enqueue_alert(outbox, rules, a)
            if incidents:
                notifier.tick(now)
            now += 10
        return sum(outbox.summary().values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="3,4,5")
    args = ap.parse_args()
    service = ScoringService.from_settings(Settings())
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        alerts = alerts_of(service, seed)
        fired = sorted({f"{a.key_type} {a.key}" for a in alerts if a.status == "firing"})
        rows.append({"seed": seed, "alerts": len({a.id for a in alerts}), "records": len(alerts), "keys": fired,
                     "per_alert": messages(alerts, incidents=False), "incidents": messages(alerts, incidents=True)})
    print(f"host: {host()}")
    print(f"{'seed':>4} {'alerts':>6} {'per-alert msgs':>14} {'incident msgs':>13}  keys fired")
    for r in rows:
        print(f"{r['seed']:>4} {r['alerts']:>6} {r['per_alert']:>14} {r['incidents']:>13}  {', '.join(r['keys'])}")
    before, after = sum(r["per_alert"] for r in rows), sum(r["incidents"] for r in rows)
    print(f"messages to one route, all seeds: {before} -> {after} ({after / max(1, before):.2f}x)")
    print(json.dumps({"bench": "incidents", "rows": rows, "per_alert": before, "incidents": after,
                      "ratio": round(after / max(1, before), 3), "host": host()}))


if __name__ == "__main__":
    main()
