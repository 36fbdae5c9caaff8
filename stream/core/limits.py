"""Bounds every stage agrees on, so extraction and counting cannot drift apart."""

from __future__ import annotations

MAX_TICKERS = 20  # per item: a headline with hundreds of cashtags is capped, not a key flood
