"""Dashboard callback latency with 1,000,000 scored headlines and a month of trends in SQLite.

Every callback of the app is called the way the browser calls it (POST /_dash-update-component
through the Flask test client, signed in), for each time range and a set of feed filters; the
table gives p50 / p95 / max per callback against the 300 ms budget.

Usage: ``python bench/bench_dashboard.py [--news 1000000] [--days 30] [--store PATH] [--repeat 5]``
(the store is built once and reused when PATH exists).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskpulse.dashboard.app import create_app  # noqa: E402
from riskpulse.dashboard.sample_store import populate  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402
from riskpulse.store.news import Store  # noqa: E402

BUDGET_MS = 300.0


def values_for(range_choice: str, feed: dict[str, Any], at: str) -> dict[tuple[str, str], Any]:
    click_topic = {"points": [{"x": at, "y": "Earnings", "customdata": ["Earnings"]}]}
    click_ticker = {"points": [{"x": at, "customdata": ["TSLA"]}]}
    return {
        ("tick", "n_intervals"): 1, ("range", "value"): range_choice, ("custom-start", "value"): None,
        ("custom-end", "value"): None, ("ticker-pick", "value"): None, ("ticker-pick", "search_value"): "A",
        ("alert-status", "value"): "all", ("ack-done", "data"): None, ("alerts-table", "selected_rows"): [0],
        ("alerts-table", "data"): [{"id": "sample-alert-1"}], ("feed-table", "page_current"): 3,
        ("feed-topic", "value"): feed.get("topics"), ("feed-sentiment", "value"): feed.get("sentiments"),
        ("feed-ticker", "value"): feed.get("ticker"), ("feed-text", "value"): feed.get("text"),
        ("feed-table", "sort_by"): feed.get("sort", [{"column_id": "published_at", "direction": "desc"}]),
        ("topic-lines", "clickData"): click_topic, ("ticker-lines", "clickData"): click_ticker,
        ("topic-heatmap", "clickData"): click_topic, ("feed-export", "n_clicks"): None, ("ack-button", "n_clicks"): None,
        ("movers-table", "selected_rows"): [0], ("movers-table", "data"): [{"key_type": "ticker", "key": "TSLA"}],
        ("url", "pathname"): "/",
    }


FEEDS = {
    "no filter": {},
    "negative + ticker": {"sentiments": ["negative"], "ticker": "TSLA"},
    "topic + text": {"topics": ["Earnings", "Macro"], "text": "guidance"},
    "sorted by score": {"sort": [{"column_id": "sentiment_score", "direction": "asc"}]},
}
SKIP = {"feed-download.data", "ack-done.data", "feed-table.page_current", "tz-done.data"}  # downloads and writes, not views


def payload(output: str, spec: dict[str, Any], values: dict[tuple[str, str], Any]) -> dict[str, Any]:
    def part(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [{"id": i["id"], "property": i["property"], "value": values.get((i["id"], i["property"]))} for i in items]
    inputs = part(spec["inputs"])
    outs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in output.strip(".").split("...")]
    return {"output": output, "outputs": outs if output.startswith("..") else outs[0],
            "inputs": inputs, "state": part(spec["state"]), "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--news", type=int, default=1_000_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "riskpulse-bench-dashboard.db"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    url = f"sqlite:///{args.store}"
    if not Path(args.store).exists():
        started = time.perf_counter()
        counts = populate(Store(url), args.news, args.days, datetime.now(timezone.utc).replace(second=0, microsecond=0))
        print(f"built {args.store}: {counts} in {time.perf_counter() - started:.0f} s", flush=True)
    counts = Store(url).counts()
    home = Path(tempfile.mkdtemp())
    app = create_app(Settings(home=home, store_url=url, dashboard_password="bench"))
    client = app.server.test_client()
    assert client.post("/login", data={"username": "analyst", "password": "bench"}).status_code == 302
    from riskpulse.dashboard.queries import latest_time

    at = (latest_time(Store(url).engine) - timedelta(minutes=40)).isoformat()  # inside the alert's burst
    results: dict[str, list[float]] = {}
    for output, spec in app.callback_map.items():
        if output in SKIP:
            continue
        feed_cases = FEEDS if output.startswith("..feed-table.data") else {"": {}}
        for rng in ("15m", "1h", "24h", "7d"):
            for feed_name, feed in feed_cases.items():
                body = payload(output, spec, values_for(rng, feed, at))
                name = f"{output.strip('.').split('...')[0]} [{rng}{', ' + feed_name if feed_name else ''}]"
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.post("/_dash-update-component", json=body)
                    times.append((time.perf_counter() - started) * 1000)
                    if response.status_code not in (200, 204):
                        raise SystemExit(f"{name}: HTTP {response.status_code} {response.get_data(as_text=True)[:300]}")
                results[name] = times
    print(f"store: {counts}")
    print(f"{'callback [range, filter]':70s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'max/budget':>10s}")
    worst = 0.0
    for name, times in sorted(results.items(), key=lambda kv: -max(kv[1])):
        p95 = sorted(times)[max(0, int(round(0.95 * len(times))) - 1)]
        worst = max(worst, max(times))
        print(f"{name:70s} {statistics.median(times):8.1f} {p95:8.1f} {max(times):8.1f} {max(times) / BUDGET_MS:10.2f}")
    ratios = rollup_side_by_side(Store(url), args.repeat)
    print(json.dumps({"callbacks_timed": len(results), "worst_ms": round(worst, 1), "budget_ms": BUDGET_MS,
                      "within_budget": sum(max(t) <= BUDGET_MS for t in results.values()),
                      "trends_rows_over_half_hour_sums": ratios}))


def rollup_side_by_side(store: Store, repeat: int) -> dict[str, float]:
    """The long-range trend reads from the half-hour sums (what the dashboard does) and from the
    trends rows alone, interleaved in one run: the ratio is the speed-up of trend_buckets."""
    from riskpulse.dashboard.queries import latest_time, trend_series

    end = latest_time(store.engine)
    print(f"\n{'trend read (7d: 30-min points, 30d: 2-hour points)':52s} {'sums ms':>8s} {'rows ms':>8s} {'rows/sums':>9s}")
    ratios = {}
    for days in (7, 30):
        for key_type, top_n in (("topic", None), ("ticker", 8)):
            timed: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(repeat):
                for rollup in (True, False):
                    started = time.perf_counter()
                    trend_series(store.engine, key_type, end - timedelta(days=days), end, top_n=top_n, rollup=rollup)
                    timed[rollup].append((time.perf_counter() - started) * 1000)
            fast, slow = statistics.median(timed[True]), statistics.median(timed[False])
            name = f"{key_type} {days}d"
            ratios[name] = round(slow / fast, 2)
            print(f"{name:52s} {fast:8.1f} {slow:8.1f} {slow / fast:9.2f}")
    return ratios


if __name__ == "__main__":
    main()
