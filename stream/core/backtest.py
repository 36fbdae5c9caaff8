"""The aggregation core over a scored history, offline: the trends and alerts a live run makes.

Items are fed in event-time order to the same :class:`~stream.core.aggregator.Aggregator` the
worker runs, and every window is closed at the end, so ``riskpulse backtest`` and a replay of
the same file through the worker agree window by window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from riskpulse.records import Alert, ScoredNews, Trend

from .aggregator import Aggregator, AggregatorConfig
from .state import Overlay


@dataclass
class BacktestResult:
    trends: list[Trend] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def run_backtest(items: Iterable[ScoredNews], detector: Any, window_s: int) -> BacktestResult:
    """Each id counts once, as its latest revision says (an export of ``news.scored`` repeats
    redelivered items, and carries every revision of a corrected one)."""
    latest: dict[str, ScoredNews] = {}
    for item in items:
        kept = latest.get(item.id)
        if kept is None or (item.revision or 1) >= (kept.revision or 1):
            latest[item.id] = item
    unique = sorted(latest.values(), key=lambda i: i.published_at)
    store: dict[str, Any] = {}
    agg = Aggregator(Overlay(store), AggregatorConfig(window_s=window_s, lateness_s=0, max_skew_s=math.inf,
                                                      dedupe=False), detector, now_wall=0.0)
    result = BacktestResult()
    for offset, item in enumerate(unique):
        agg.add(item, 0, offset, now_wall=0.0)
    while (close := agg.next_close(0.0, until=math.inf)) is not None:
        result.trends += close.trends
        result.alerts += close.alerts
        agg.commit(close)
    agg.end_batch()
    return result
