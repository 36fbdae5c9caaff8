"""The dashboard's addresses: a shared link reopens the view it names (a tab and range, an
alert's page, a key's page)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, unquote, urlencode

from .display import RANGES

TABS = ("now", "overview", "tickers", "alerts", "news")
KEY_TYPES = ("topic", "ticker")


def key_from_url(path: str | None) -> tuple[str, str] | None:
    """(key type, key) of a key's page, /keys/<type>/<key>; None for any other path."""
    if not path or not path.startswith("/keys/"):
        return None
    key_type, _, key = path[len("/keys/"):].partition("/")
    return (key_type, unquote(key)) if key_type in KEY_TYPES and key else None


def view_from_url(path: str | None, search: str | None) -> tuple[str | None, str | None, str | None]:
    """(tab, range, alert id) a URL names; None where it names nothing (or nothing valid)."""
    if path and path.startswith("/alerts/") and len(path) > len("/alerts/"):
        return "alerts", None, unquote(path[len("/alerts/"):])
    query = parse_qs((search or "").lstrip("?"))
    tab = "now" if key_from_url(path) else (query.get("tab") or [None])[0]
    rng = (query.get("range") or [None])[0]
    return (tab if tab in TABS else None), (rng if rng in RANGES else None), None


def url_for_view(tab: str | None, rng: str | None, alert_id: str | None = None,
                 key: tuple[str, str] | None = None) -> str:
    """The link that reopens this view: an alert's page, a key's page (with the range), or the tab and range."""
    if alert_id:
        return f"/alerts/{quote(alert_id, safe='')}"
    if key:
        query = f"?{urlencode({'range': rng})}" if rng and rng != "custom" else ""
        return f"/keys/{key[0]}/{quote(key[1], safe='')}{query}"
    return "/?" + urlencode({k: v for k, v in (("tab", tab), ("range", rng)) if v and v != "custom"})
