"""A synthetic sample news stream for the demo: steady background flow plus one negative burst.

Headlines are generated from templates (no labelled data is copied), with event times one
hour long, so a replay at 60x takes a minute.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

COMPANIES = {"AAPL": "Apple", "MSFT": "Microsoft", "XOM": "Exxon Mobil", "JPM": "JPMorgan", "TSLA": "Tesla",
             "NVDA": "Nvidia", "BAC": "Bank of America", "PFE": "Pfizer"}
NEUTRAL = ["{c} to present at investor conference next week", "{c} schedules quarterly earnings call",
           "{c} names new head of investor relations", "{c} files annual report with regulators",
           "Analysts keep {c} rating unchanged ahead of results", "{c} shares little changed in early trade"]
# {p} varies each headline, so the demo's stories are distinct and not folded by the deduper
POSITIVE = ["{c} beats profit estimates by {p}% and raises full-year outlook", "{c} shares jump {p}% after strong sales",
            "{c} announces ${p} billion buyback and dividend increase", "{c} wins {p} billion contract, stock rallies"]
NEGATIVE = ["{c} shares plunge {p}% after profit warning", "{c} faces regulator probe over {p} accounting restatements",
            "{c} cuts guidance by {p}% as demand slumps", "{c} hit with class action lawsuit, stock tumbles {p}%",
            "{c} credit rating downgraded to junk, bonds fall {p} points", "{c} recalls {p},000 products after safety failures"]
MACRO = ["Fed holds rates steady, signals patience", "Treasury yields edge higher ahead of jobs data",
         "Oil prices steady as OPEC+ keeps output unchanged", "European stocks open flat"]


def generate(start: datetime | None = None, minutes: int = 60, per_minute: int = 12, burst_ticker: str = "TSLA",
             burst_minute: int = 45, seed: int = 3) -> list[dict[str, object]]:
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
    items: list[dict[str, object]] = []
    for minute in range(minutes):
        burst = burst_minute <= minute < burst_minute + 3
        for k in range(per_minute + (10 if burst else 0)):
            ts = start + timedelta(minutes=minute, seconds=rng.uniform(0, 59.9))
            if burst and k < 12:
                ticker, pool = burst_ticker, NEGATIVE
            else:
                ticker = rng.choice(list(COMPANIES))
                pool = rng.choices([NEUTRAL, POSITIVE, NEGATIVE, MACRO], weights=[5, 2, 1, 2])[0]
            headline = rng.choice(pool).format(c=COMPANIES[ticker], p=rng.randint(2, 40))
            items.append({"id": f"sample-{len(items)}", "headline": headline, "source": "riskpulse-sample",
                          "url": f"https://news.example/{len(items)}", "published_at": ts.isoformat().replace("+00:00", "Z"),
                          "tickers": [ticker] if pool is not MACRO else []})
    items.sort(key=lambda i: str(i["published_at"]))
    return items


def write(path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for item in generate(**kwargs):  # type: ignore[arg-type]
            fh.write(json.dumps(item) + "\n")
    return path
