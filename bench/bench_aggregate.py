"""The aggregate stage alone: items per second through the aggregation core, one internal partition.

The worker runs :class:`stream.core.aggregator.Aggregator` in one agent over a single-partition
table, so this one stage bounds the pipeline's scale-up (docs/benchmarks.md: >= 5,000 items/s, else
partition it). Measured over a JSON-serialising store (each flushed value is encoded, as the
Faust table does for its changelog and RocksDB), batches of 500 as the agent takes them, window
closes and the detector included. Prints a table and, last, one JSON line.

    python bench/bench_aggregate.py [--n 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faust.utils import json as faust_json  # noqa: E402

from riskpulse.alerts.detector import Detector  # noqa: E402
from riskpulse.alerts.rules import Rules  # noqa: E402
from bench.bench_model import host  # noqa: E402
from riskpulse.stream.core.aggregator import Aggregator, AggregatorConfig  # noqa: E402
from riskpulse.stream.core.state import Overlay  # noqa: E402
from riskpulse.records import ScoredNews  # noqa: E402

TARGET = 5000.0


class JsonStore(dict):
    """Values stored as JSON bytes with the codec of a Faust table's store and changelog (faust's
    JSON module: orjson where it is installed, as requirements/*.lock install it)."""

    def __setitem__(self, key: str, value: Any) -> None:
        encoded = faust_json.dumps(value)
        super().__setitem__(key, encoded if isinstance(encoded, bytes) else encoded.encode())

    def get(self, key: str, default: Any = None) -> Any:
        raw = super().get(key)
        return default if raw is None else faust_json.loads(raw)


VOCABULARY = [f"{a}{b}{c}" for a in "bcdfghklmnprst" for b in "aeiou" for c in "dgklmnrstx"]  # 700 made-up words
TAGS = ["UPDATE 1-", "BRIEF-", "Reuters: ", "EXCLUSIVE-"]


def make_headlines(n: int, rng: random.Random) -> list[str]:
    """Headlines of seven words; a quarter of them syndicated copies (a wire tag) of a recent one,
    so the story search meets copies and near misses as it does on the wire."""
    out: list[str] = []
    for i in range(n):
        if out and rng.random() < 0.25:
            out.append(rng.choice(TAGS) + out[max(0, len(out) - rng.randint(1, 50))])
        else:
            out.append(" ".join(rng.choice(VOCABULARY) for _ in range(7)))
    return out


def make_items(n: int, seed: int = 1, event_rate: float = 2.0) -> list[tuple[int, int, ScoredNews]]:
    """``event_rate``: items per second of event time (2: a quiet feed; a sustained burst of news
    is hundreds, and the state that grows with a time span's items grows with it)."""
    rng = random.Random(seed)
    heads = make_headlines(n, rng)
    t0 = 1_780_000_000
    tickers = [f"T{i}" for i in range(300)]
    topics = ["Macro", "M&A", "Earnings", "Fed | Central Banks", "Legal | Regulation", "Stock Commentary"]
    out = []
    offsets = [0, 0, 0, 0]
    now = datetime.now(timezone.utc)
    for i in range(n):
        p = rng.randrange(4)
        sentiment = rng.choice(["negative", "neutral", "positive"])
        item = ScoredNews(id=f"i{i}", headline=heads[i],
                          published_at=datetime.fromtimestamp(t0 + i / event_rate + rng.uniform(0, 2), timezone.utc),
                          tickers=rng.sample(tickers, rng.randint(0, 2)), topic=rng.choice(topics), topic_confidence=0.9,
                          sentiment=sentiment, sentiment_probs={"negative": 0.6, "neutral": 0.3, "positive": 0.1},
                          sentiment_score=-0.5 if sentiment == "negative" else 0.2, model_version="bench", scored_at=now)
        out.append((p, offsets[p], item))
        offsets[p] += 1
    return out


def run_once(items: list[tuple[int, int, ScoredNews]], batch: int) -> tuple[float, int]:
    store = JsonStore()
    detector = Detector(Rules.load(None), 60)
    agg = Aggregator(Overlay(store), AggregatorConfig(), detector, now_wall=time.time(), partitions=range(4))
    closes = 0
    started = time.perf_counter()
    for i in range(0, len(items), batch):
        state = Overlay(store)
        agg.state = state
        for p, off, item in items[i:i + batch]:
            with state.savepoint():
                agg.add(item, p, off, time.time())
        while (close := agg.next_close(time.time())) is not None:
            closes += 1
            agg.commit(close)
        agg.end_batch()
        state.flush()
    return len(items) / (time.perf_counter() - started), closes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--event-rate", type=float, default=2.0, help="items per second of event time")
    args = ap.parse_args()
    items = make_items(args.n, event_rate=args.event_rate)
    rates = []
    for _ in range(args.repeat):
        rate, closes = run_once(items, args.batch)
        rates.append(rate)
    best = max(rates)
    print(f"host: {host()}")
    print(f"aggregate stage: {args.n} items, batches of {args.batch}, {closes} window closes")
    print("runs (items/s): " + ", ".join(f"{r:,.0f}" for r in rates))
    print(f"best {best:,.0f} items/s = {best / TARGET:.2f}x the {TARGET:,.0f}/s target")
    print(json.dumps({"bench": "aggregate", "n": args.n, "event_rate": args.event_rate, "items_per_s": round(best), "runs": [round(r) for r in rates],
                      "ratio_to_target": round(best / TARGET, 2), "window_closes": closes, "host": host()}))


if __name__ == "__main__":
    main()
