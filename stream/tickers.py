"""Tickers named by an item: the ones it came with, cashtags, and a watchlist of names/aliases."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .core.limits import MAX_TICKERS

CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w])")


class Watchlist:
    """Maps company names and aliases (case-insensitive, whole words) to tickers.

    YAML: ``{AAPL: [Apple, Apple Inc], MSFT: [Microsoft]}``.
    """

    def __init__(self, aliases: dict[str, list[str]] | None = None) -> None:
        self.aliases = {t.upper(): list(names) for t, names in (aliases or {}).items()}
        names = sorted({n for ns in self.aliases.values() for n in ns}, key=len, reverse=True)
        self._lookup = {n.lower(): t for t, ns in self.aliases.items() for n in ns}
        self._pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE) if names else None

    @classmethod
    def load(cls, path: Path | None) -> "Watchlist":
        if path is None:
            return cls()
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
            raise ValueError(f"{path}: the watchlist must map each ticker to a list of names, e.g. AAPL: [Apple]")
        return cls({str(k): [str(n) for n in v] for k, v in raw.items()})

    @property
    def tickers(self) -> list[str]:
        return sorted(self.aliases)

    def extract(self, text: str, given: list[str] | None = None) -> list[str]:
        found = [t.upper() for t in (given or [])]
        found += [m.group(1).upper() for m in CASHTAG.finditer(text)]
        if self._pattern is not None:
            found += [self._lookup[m.group(1).lower()] for m in self._pattern.finditer(text)]
        return list(dict.fromkeys(found))[:MAX_TICKERS]  # de-duplicated, first-seen order, capped
