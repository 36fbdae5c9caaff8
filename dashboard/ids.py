"""Every component id of the dashboard, in one place: a page's callbacks and another page's
links name the same component, the browser tests find them by these values, and a renamed id
is one edit here."""

from __future__ import annotations

# the shell (header, banner, state shared by pages)
URL = "url"
TICK = "tick"
TABS = "tabs"
RANGE = "range"
CUSTOM_START = "custom-start"
CUSTOM_END = "custom-end"
AS_OF = "as-of"
SHARE_LINK = "share-link"
SIGNED_IN = "signed-in"
TZ_PICK = "tz-pick"
TZ_DONE = "tz-done"
BANNER = "banner"
STORE_ERROR = "store-error"
EMPTY_STATE = "empty-state"

# Now: movers and a key's page
MOVERS_TABLE = "movers-table"
KEY_PAGE = "key-page"
KEY_FOCUS = "key-focus"
KEY_SHOWN = "key-shown"
KEY_TITLE = "key-title"
KEY_CHART = "key-chart"
KEY_EVIDENCE = "key-evidence"

# Overview
TOPIC_LINES = "topic-lines"
TOPIC_HEATMAP = "topic-heatmap"
OVERVIEW_DRILL = "overview-drill"

# Tickers
TICKER_PICK = "ticker-pick"
TICKER_LINES = "ticker-lines"
TICKER_DRILL = "ticker-drill"

# Alerts
ALERT_STATUS = "alert-status"
ALERTS_TABLE = "alerts-table"
ALERT_DETAIL = "alert-detail"
ALERT_FOCUS = "alert-focus"
ALERT_SHOWN = "alert-shown"
ALERT_INCIDENT = "alert-incident"
ALERT_SUMMARY = "alert-summary"
ALERT_FIGURES = "alert-figures"
ALERT_CHART = "alert-chart"
ALERT_EVIDENCE = "alert-evidence"
ACK_BUTTON = "ack-button"
ACK_STATUS = "ack-status"
ACK_DONE = "ack-done"
SILENCE_FOR = "silence-for"
SILENCE_COMMENT = "silence-comment"
SILENCE_BUTTON = "silence-button"
SILENCE_STATUS = "silence-status"
SILENCE_DONE = "silence-done"

# News feed
FEED_TOPIC = "feed-topic"
FEED_SENTIMENT = "feed-sentiment"
FEED_TICKER = "feed-ticker"
FEED_TEXT = "feed-text"
FEED_COPIES = "feed-copies"
FEED_STORY = "feed-story"
FEED_SPREAD = "feed-spread"
FEED_SPREAD_BOX = "feed-spread-box"
FEED_EXPORT = "feed-export"
FEED_DOWNLOAD = "feed-download"
FEED_COUNT = "feed-count"
FEED_TABLE = "feed-table"


def drill_table(key_type: str) -> str:
    """The table of headlines under a chart point of ``key_type`` (topic or ticker)."""
    return f"drill-{key_type}-table"
