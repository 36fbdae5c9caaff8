"""Re-published stories: the same normalised headline (within a horizon, see the aggregator) is a duplicate."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

URL = re.compile(r"https?://\S+")
NON_WORD = re.compile(r"[^\w$]+")


def normalise_headline(headline: str) -> str:
    """Case, accents, links, punctuation and spacing removed: 'Apple beats!' == 'apple  beats https://t.co/x'."""
    if headline.isascii():  # no accents to strip: NFKD and the combining-mark filter change nothing
        text = headline.lower()
    else:
        text = unicodedata.normalize("NFKD", headline)
        text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = URL.sub(" ", text).replace("&amp;", "&")
    return " ".join(NON_WORD.sub(" ", text).split())


def dedupe_key(headline: str) -> str:
    return key_of_normalised(normalise_headline(headline), headline)


def key_of_normalised(normalised: str, headline: str) -> str:
    """The dedupe key from a headline already normalised. A headline without letters or digits
    (emoji only) keys by its own characters: normalised it would be empty, and every such item a
    re-publication of the first."""
    basis = normalised or " ".join(headline.split())
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def entries(value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A dedupe entry and, after it, the entries it took the place of: sightings since corrected
    whose headline came again (a correction of them may still come, or be read again)."""
    if value is None:
        return []
    return [{k: v for k, v in value.items() if k != "before"}] + list(value.get("before") or [])


def entry_at(value: dict[str, Any] | None, item_id: str, pos: list[int]) -> tuple[int, dict[str, Any]] | None:
    for i, entry in enumerate(entries(value)):
        if entry["id"] == item_id and list(entry["pos"]) == pos:
            return i, entry
    return None


def replace_entry(value: dict[str, Any], at: int, entry: dict[str, Any]) -> dict[str, Any]:
    listed = entries(value)
    listed[at] = entry
    head = dict(listed[0])
    if len(listed) > 1:
        head["before"] = listed[1:]
    return head
