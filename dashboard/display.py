"""What every page draws with: times in the signed-in user's zone, safe headline links, cards,
headline tables, and the selected time range."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import dash
from dash import dash_table, html

from . import auth, ids, queries

WARNING_TEXT = "#b45309"  # amber dark enough for text on white (WCAG AA, 5:1); #ef6c00 was 3:1
RANGES = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
SENTIMENTS = ["negative", "neutral", "positive"]
CARD = {"background": "#fff", "borderRadius": "6px", "padding": "12px 16px", "marginBottom": "14px",
        "boxShadow": "0 1px 3px #0002"}


def when(ts: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as the signed-in user reads it: in their zone, with the zone's abbreviation."""
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    local = ts.astimezone(auth.current_tz())
    return f"{local.strftime(fmt)} {local.tzname()}"


def local_times(column: pd.Series, fmt: str = "%Y-%m-%d %H:%M") -> pd.Series:
    """A column of UTC times (naive or aware) as text in the signed-in user's zone."""
    times = pd.to_datetime(column, utc=True, format="mixed")
    return times.dt.tz_convert(auth.current_tz()).dt.strftime(fmt)


def in_zone(column: pd.Series) -> pd.Series:
    """UTC times for a chart's axis, shown as the user's wall-clock times."""
    return pd.to_datetime(column, utc=True).dt.tz_convert(auth.current_tz())


ZONES = ["UTC", "America/New_York", "America/Chicago", "Europe/London", "Europe/Frankfurt", "Europe/Zurich",
         "Asia/Hong_Kong", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]

SILENCE_FOR = {"1h": 3600, "4h": 4 * 3600, "24h": 86400, "7d": 7 * 86400}

MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def headline_link(headline: str, url: str | None) -> str:
    """A feed headline as a Markdown link to its story: the text escaped (a headline is data, not
    markup), and only http(s) addresses linked (never javascript: or data:)."""
    text = MARKDOWN_SPECIAL.sub(r"\\\1", headline)
    if url and url.lower().startswith(("http://", "https://")) and not re.search(r"[\s<>]", url):
        return f"[{text}](<{url}>)"
    return text


def corrected_note(revision: Any) -> str:
    """A corrected item says so beside its headline (the feed shows its latest revision)."""
    try:
        number = int(revision)
    except (TypeError, ValueError):
        return ""
    return f" *(corrected: revision {number})*" if number > 1 else ""


def time_range(engine: Any, choice: str, custom_start: str | None, custom_end: str | None) -> tuple[datetime, datetime]:
    """The selected range, ending at the newest data (so a replay of past news is visible); a
    custom range is read in the user's zone."""
    if choice == "custom" and custom_start and custom_end:
        start = datetime.fromisoformat(custom_start).replace(tzinfo=auth.current_tz())
        end = datetime.fromisoformat(custom_end).replace(tzinfo=auth.current_tz())
        if end > start:
            return start, end
    end = queries.latest_time(engine) or datetime.now(timezone.utc)
    return end - RANGES.get(choice, RANGES["1h"]), end


def headline_table(frame: pd.DataFrame, table_id: str) -> dash_table.DataTable:
    data = frame.assign(published_at=local_times(frame["published_at"], "%Y-%m-%d %H:%M:%S"),
                        p_negative=frame["p_negative"].round(3), sentiment_score=frame["sentiment_score"].round(3))
    cols = ["published_at", "headline", "sentiment", "p_negative", "sentiment_score", "tickers", "source", "url"]
    return dash_table.DataTable(id=table_id, data=data[cols].to_dict("records"), columns=[{"name": c, "id": c} for c in cols],
                                page_size=10, style_cell={"textAlign": "left", "whiteSpace": "normal", "fontSize": 13},
                                style_table={"overflowX": "auto"})


def drill_panel(engine: Any, key_type: str, key: str, start: datetime, end: datetime, title: str) -> html.Div:
    frame = queries.headlines_for(engine, key_type, key, start, end)
    if frame.empty:
        return html.Div(f"No headlines for {key_type} {key} between {when(start)} and {when(end)}.")
    return html.Div([html.H4(title), headline_table(frame, ids.drill_table(key_type))])


def drill_from_click(engine: Any, click: dict[str, Any] | None, key_type: str, rng: str, cs: str | None,
                     ce: str | None) -> Any:
    """The headlines under a clicked chart point: its key, from its bucket's start to its end."""
    if not click or not click.get("points"):
        return dash.no_update
    point = click["points"][0]
    custom = point.get("customdata")
    key = custom[0] if isinstance(custom, list) and custom else point.get("y") if key_type == "topic" else None
    if not key:
        return dash.no_update
    start, end = time_range(engine, rng, cs, ce)
    bucket = timedelta(seconds=queries.bucket_seconds(end - start))
    at = pd.Timestamp(point["x"]).to_pydatetime()
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return drill_panel(engine, key_type, key, at, at + bucket,
                       f"{key_type} {key}: {when(at)} to {when(at + bucket, '%H:%M')}, most negative first")
