"""``riskpulse backtest FILE``: the worker's window and detector code over a scored history, offline.

The input is what riskpulse itself writes: ``news.scored`` records (JSONL, e.g. exported from
the topic or the store) or the output of ``riskpulse score`` (its rows need ``published_at``).
Windows are counted and closed by the worker's own aggregation core (stream/core/), in
event-time order, so the alerts printed are the ones a live run would fire.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from riskpulse.alerts.detector import Detector
from riskpulse.alerts.rules import Rules
from riskpulse.records import Alert, ScoredNews

from .core.backtest import run_backtest


def read_history(path: Path) -> list[ScoredNews]:
    """Scored rows as records; rows without a time or a score are reported, not guessed."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        frame = pd.read_json(path, lines=True, dtype=False)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"published_at", "sentiment", "topic"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks {', '.join(sorted(missing))}: backtest needs scored rows with event times "
                         "(news.scored records, or `riskpulse score` output of a file with published_at)")
    out = []
    for raw in frame.to_dict(orient="records"):
        row = {k: v for k, v in raw.items() if not _blank(v)}  # a JSONL field one row lacks is NaN in the others
        if row.get("error") or row.get("duplicate_of"):
            continue  # invalid text, or a re-published story the worker would not count
        out.append(_record(row))
    return out


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value)


def _record(row: dict[str, Any]) -> ScoredNews:
    headline = row.get("headline") or row.get("text") or ""
    tickers = row.get("tickers") or []
    if isinstance(tickers, str):
        tickers = [t for t in tickers.replace(";", ",").split(",") if t.strip()]
    probs = row.get("sentiment_probs") or {"negative": 0.0, "neutral": 0.0, "positive": 0.0}
    stamp = pd.Timestamp(row["published_at"])
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return ScoredNews(
        id=str(row.get("id") or hashlib.sha256(f"{headline}|{row['published_at']}".encode()).hexdigest()[:32]),
        headline=headline, url=row.get("url") or None, published_at=stamp.to_pydatetime(), tickers=tickers,
        topic=row["topic"], topic_confidence=float(row.get("topic_confidence") or 1.0), sentiment=row["sentiment"],
        sentiment_probs=probs, sentiment_score=float(row.get("sentiment_score") or 0.0),
        model_version=str(row.get("model_version") or "history"), scored_at=stamp.to_pydatetime(),
        revision=int(row["revision"]) if row.get("revision") else None)  # the latest revision of an id counts


def backtest(items: Iterable[ScoredNews], rules: Rules, window_s: int) -> list[Alert]:
    """The alerts a live run over ``items`` fires (see stream/core/backtest.py)."""
    return run_backtest(items, Detector(rules, window_s), window_s).alerts
