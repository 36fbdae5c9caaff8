"""How well the detector works: synthetic negative bursts injected into realistic background streams.

Background: per key, news arrives as a Poisson process whose rate follows a daily cycle
(busy market hours, quiet nights); each item is a real headline drawn from the labelled
sentiment data in ../shared/data, carrying its gold label as its sentiment, so the figures
measure the detector, not the model. Bursts add extra negative headlines for a few windows,
sized in standard deviations of the key's negative count at that moment (Poisson: sqrt of
the expected negatives). The same :class:`~alerts.detector.Detector` as the worker runs over
the windows, in order.

Figures: detection rate and windows-to-detect per burst size, and false alerts per key per
simulated day on streams without bursts.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskpulse.records import EvidenceHeadline, Trend

from .detector import Detector, new_state
from .rules import Rules

DAY_WINDOWS = 1440  # one-minute windows
BASE_TS = 1_767_225_600  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Pool:
    texts: list[str]
    labels: np.ndarray  # 0 negative, 1 neutral, 2 positive

    @classmethod
    def from_data(cls, data_dir: Path) -> "Pool":
        frames = [pd.read_csv(Path(data_dir) / "twitter-financial-news-sentiment" / f) for f in ("train.csv", "valid.csv")]
        frames.append(pd.read_csv(Path(data_dir) / "financial-phrasebank" / "all.csv"))
        frame = pd.concat(frames, ignore_index=True)
        codes = frame.label.map({"negative": 0, "neutral": 1, "positive": 2})
        return cls(frame.text.tolist(), codes.to_numpy())

    def negatives(self) -> np.ndarray:
        return np.flatnonzero(self.labels == 0)


def daily_factor(window: int) -> float:
    """Busy by day, quiet at night: 0.4x to 1.6x of the key's mean rate."""
    return 1.0 + 0.6 * math.sin(2 * math.pi * (window % DAY_WINDOWS) / DAY_WINDOWS - math.pi / 2)


def simulate(pool: Pool, rules: Rules, *, days: float, keys: int, burst_sd: float | None, burst_windows: int = 5,
             bursts_every: int = 240, seed: int = 0, rate_range: tuple[float, float] = (8.0, 60.0)) -> dict[str, Any]:
    """Runs one stream through the detector; returns bursts (start, detected_at) and false alerts."""
    rng = np.random.default_rng(seed)
    n_windows = int(days * DAY_WINDOWS)
    names = [f"key-{k:02d}" for k in range(keys)]
    rates = rng.uniform(*rate_range, size=keys)
    neg_idx = pool.negatives()
    neg_share = float(np.mean(pool.labels == 0))
    detector = Detector(rules, 60)
    states = {n: new_state() for n in names}
    warmup = max(rules.rule_for("topic", n)[1].warmup_windows for n in names) + 60
    bursts: dict[str, list[tuple[int, int]]] = {n: [] for n in names}  # (first window, last window)
    if burst_sd is not None:
        for k, n in enumerate(names):  # staggered so bursts of different keys do not coincide
            start = warmup + (k * bursts_every) // keys
            while start + burst_windows < n_windows:
                bursts[n].append((start, start + burst_windows - 1))
                start += bursts_every
    firings: dict[str, list[int]] = {n: [] for n in names}
    seen: set[str] = set()
    for w in range(n_windows):
        ws = BASE_TS + 60 * w
        for k, n in enumerate(names):
            lam = rates[k] * daily_factor(w)
            count = int(rng.poisson(lam))
            picks = rng.integers(0, len(pool.texts), size=count)
            labels = pool.labels[picks]
            extra = 0
            if any(a <= w <= b for a, b in bursts[n]):
                extra = math.ceil(burst_sd * math.sqrt(lam * neg_share))  # type: ignore[operator]
                picks = np.concatenate([picks, rng.choice(neg_idx, size=extra)])
                labels = pool.labels[picks]
            total = len(picks)
            if total == 0:
                alerts = detector.quiet_window(states[n], "topic", n, ws)
            else:
                neg = int(np.sum(labels == 0))
                neu = int(np.sum(labels == 1))
                evidence = [EvidenceHeadline(id=f"{n}-{w}-{i}", headline=pool.texts[int(p)][:300], sentiment_score=-1.0)
                            for i, p in enumerate(picks[labels == 0][:5])]
                trend = Trend(key_type="topic", key=n, window_start=datetime.fromtimestamp(ws, timezone.utc),
                              window_end=datetime.fromtimestamp(ws + 60, timezone.utc), count=total, negative=neg,
                              neutral=neu, positive=total - neg - neu, mean_score=0.0, negative_share=neg / total,
                              top_negative=evidence)
                alerts = detector.observe(states[n], trend)
            for a in alerts:
                if a.status == "firing" and a.id not in seen:  # an escalation is the same alert
                    seen.add(a.id)
                    firings[n].append(w)
    detected, delays, false = 0, [], 0
    n_bursts = 0
    misses = []
    for k, n in enumerate(names):
        in_burst = set()
        for a, b in bursts[n]:
            n_bursts += 1
            hits = [f for f in firings[n] if a <= f <= b + 1]
            in_burst.update(range(a, b + 2))
            if hits:
                detected += 1
                delays.append(hits[0] - a + 1)
            else:
                misses.append(round(rates[k] * daily_factor(a) * neg_share, 2))
        false += sum(1 for f in firings[n] if f not in in_burst and f >= warmup)
    sim_days = (n_windows - warmup) / DAY_WINDOWS * keys  # key-days after warm-up
    return {"misses_expected_negatives": sorted(misses), "bursts": n_bursts, "detected": detected, "delays": delays, "false_alerts": false, "key_days": sim_days}


def evaluate(data_dir: Path, rules: Rules | None = None, *, sizes: tuple[float, ...] = (2.0, 3.0, 4.0, 6.0),
             burst_days: float = 1.0, clean_days: float = 3.0, keys: int = 12, seed: int = 0) -> dict[str, Any]:
    """The figures the README reports: per burst size, and the false-alert rate."""
    rules = rules or Rules.defaults()
    pool = Pool.from_data(data_dir)
    out: dict[str, Any] = {"keys": keys, "bursts": {}}
    for i, size in enumerate(sizes):
        r = simulate(pool, rules, days=burst_days, keys=keys, burst_sd=size, seed=seed + 1 + i)
        out["bursts"][f"{size:g}sd"] = {
            "bursts": r["bursts"], "detected": round(r["detected"] / max(1, r["bursts"]), 4),
            "median_windows_to_detect": statistics.median(r["delays"]) if r["delays"] else None,
            "p90_windows_to_detect": float(np.percentile(r["delays"], 90)) if r["delays"] else None,
            "missed_at_expected_negatives": r["misses_expected_negatives"],
        }
    clean = simulate(pool, rules, days=clean_days, keys=keys, burst_sd=None, seed=seed + 100)
    out["false_alerts_per_key_day"] = round(clean["false_alerts"] / clean["key_days"], 4)
    out["false_alerts"] = clean["false_alerts"]
    out["clean_key_days"] = round(clean["key_days"], 2)
    return out
