"""Slack's message text: escaping, so a headline cannot inject links or @-mentions, and links."""

from __future__ import annotations

from typing import Any

from riskpulse.records import EvidenceHeadline


def slack_escape(text: str) -> str:
    """Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(url: str, text: str) -> str:
    """``<url|text>``; a ``|`` in the URL would end it early."""
    return f"<{slack_escape(url).replace('|', '%7C')}|{text}>"


def slack_headline(h: EvidenceHeadline, prefix: str) -> str:
    """One evidence headline, linked where it has a link, with its score."""
    text = slack_escape(h.headline)
    return f"{prefix}{slack_link(h.url, text) if h.url else text} ({h.sentiment_score:+.2f})"


def slack_message(lines: list[str], page: str | None) -> dict[str, Any]:
    """A Slack incoming-webhook message of these lines, ending with the dashboard link if any."""
    if page:
        lines = lines + [slack_link(page, "Open in riskpulse")]
    text = "\n".join(lines)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
