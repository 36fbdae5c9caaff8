"""Slack's message text: escaping, so a headline cannot inject links or @-mentions, and links."""

from __future__ import annotations


def slack_escape(text: str) -> str:
    """Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str, text: str) -> str:
    """``<url|text>``; a ``|`` in the URL would end it early."""
    return f"<{slack_escape(url).replace('|', '%7C')}|{text}>"
