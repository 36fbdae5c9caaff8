"""The Kafka record contracts (docs/kafka.md, "Kafka topics"), as frozen typed models.

The contract every package shares, so it sits at the bottom of the layers with the settings
(docs/architecture.md): the stream, the alerts, the store and the dashboard import it, it
imports none of them. Every record carries ``schema_version``; the
JSON Schemas shipped in ``stream/schemas/`` are generated from these models
(``python -m riskpulse.stream.schema_files``) and a test keeps them in step.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

TOPIC_NEWS = "news"
TOPIC_SCORED = "news.scored"
TOPIC_TRENDS = "trends"
TOPIC_ALERTS = "alerts"
TOPIC_DLQ = "news.dlq"
TOPICS = (TOPIC_NEWS, TOPIC_SCORED, TOPIC_TRENDS, TOPIC_ALERTS, TOPIC_DLQ)

HEADLINE_MAX = 1000
BODY_MAX = 20_000


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset (RFC 3339), e.g. 2026-11-22T10:00:00Z")
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("timestamp out of range (years 1-9999 in UTC)") from None


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Headline = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=HEADLINE_MAX)]


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class NewsItem(_Record):
    """An input item on ``news``. Unknown fields are ignored (producers may carry more)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    schema_version: Literal[1] = 1
    headline: Headline
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    source: Annotated[str, StringConstraints(max_length=200)] | None = None
    url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    body: Annotated[str, StringConstraints(max_length=BODY_MAX)] | None = None
    published_at: UtcDatetime | None = None
    tickers: list[Annotated[str, StringConstraints(min_length=1, max_length=20)]] = Field(default_factory=list, max_length=50)
    lang: Annotated[str, StringConstraints(max_length=20)] | None = None

    def derived_id(self) -> str:
        """Deterministic id from source + url + headline, so a re-sent item keeps its identity."""
        basis = "\x1f".join([self.source or "", self.url or "", self.headline])
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]

    def completed(self, ingest_time: datetime) -> "NewsItem":
        """The item with ``id`` and ``published_at`` filled in."""
        return self.model_copy(update={"id": self.id or self.derived_id(),
                                       "published_at": self.published_at or ingest_time})


class SentimentProbs(_Record):
    negative: float
    neutral: float
    positive: float


class ScoredNews(_Record):
    schema_version: Literal[1] = 1
    id: str
    headline: str
    source: str | None = None
    url: str | None = None
    body: str | None = None
    published_at: UtcDatetime
    tickers: list[str]
    lang: str | None = None  # the producer's (its primary subtag), else identified (models/language.py); "und": no text
    # "scored": the model reads the language and its sentiment counts; otherwise the item is
    # counted apart in the trends ("unscored"), never as neutral news
    sentiment_status: Literal["scored", "unsupported_language", "no_text"] = "scored"
    topic: str
    topic_confidence: float = Field(ge=0, le=1)
    sentiment: Literal["negative", "neutral", "positive"]
    sentiment_probs: SentimentProbs
    sentiment_score: float = Field(ge=-1, le=1)
    duplicate_of: str | None = None
    # the story the item is a copy of (the id of its first copy; stream/core/stories.py), and the
    # copy's place in it: copies and distinct sources so far, this one included
    story_id: str | None = None
    story_copies: int | None = Field(None, ge=1)
    story_sources: int | None = Field(None, ge=0)
    # the item's revision: 1, then one more each time the same id comes again with changed content
    # (a correction or an update; stream/core/revisions.py); None from older releases
    revision: int | None = Field(None, ge=1)
    model_version: str
    scored_at: UtcDatetime
    # set when the item's own published_at broke the event-time policy (far future or far past):
    # published_at then holds the broker timestamp the item was counted at, and this the claim
    published_at_original: UtcDatetime | None = None


class EvidenceHeadline(_Record):
    id: str
    headline: str
    sentiment_score: float
    sentiment_probs: SentimentProbs | None = None
    url: str | None = None
    # the story this headline stands for in the evidence (its most negative copy in the window)
    # and how far it had spread when the window closed: copies and distinct sources
    story_id: str | None = None
    copies: int | None = Field(None, ge=1)
    sources: int | None = Field(None, ge=0)
    # on a spread alert's timeline: who carried this copy, and when
    source: str | None = None
    published_at: UtcDatetime | None = None
    # the tickers the headline names: how incidents tell a topic alert made of one company's news
    # (alerts/incidents.py); None where not known (records before incidents)
    tickers: list[str] | None = None


class Trend(_Record):
    schema_version: Literal[1] = 1
    key_type: Literal["topic", "ticker"]
    key: str
    window_start: UtcDatetime
    window_end: UtcDatetime
    count: int = Field(ge=0)
    negative: int = Field(ge=0)
    neutral: int = Field(ge=0)
    positive: int = Field(ge=0)
    mean_score: float = Field(ge=-1, le=1)
    negative_share: float = Field(ge=0, le=1)
    # distinct stories among the counted items (copies of one story count once per window and key),
    # and those whose copy that brought them into the window was negative; None from older releases
    stories: int | None = Field(None, ge=0)
    negative_stories: int | None = Field(None, ge=0)
    # items about the key whose sentiment the model cannot judge (a language it was not trained on,
    # or no text): not in count, negative, neutral or positive; None from older releases
    unscored: int | None = Field(None, ge=0)
    top_negative: list[EvidenceHeadline] = Field(default_factory=list)  # most negative first, one per story, at most 5


class Alert(_Record):
    schema_version: Literal[1] = 1
    id: str
    status: Literal["firing", "resolved"]
    severity: Literal["warning", "critical"]
    # "story": one negative story spreading fast (key: its story id; alerts/rules.py SpreadRule)
    key_type: Literal["topic", "ticker", "story"]
    key: str
    window_start: UtcDatetime
    window_end: UtcDatetime
    observed: dict[str, float]
    baseline: dict[str, float]
    rule: str
    summary: str
    top_headlines: list[EvidenceHeadline]
    fired_at: UtcDatetime


class DeadLetter(_Record):
    schema_version: Literal[1] = 1
    error: str
    # where it failed: parse, event_time, score, aggregate, judge, sink_scored, sink_trends, sink_alerts
    stage: str = "parse"
    raw_value: str  # the value as received, decoded leniently and truncated
    raw_truncated: bool
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: UtcDatetime


SCHEMAS: dict[str, type[_Record]] = {
    TOPIC_NEWS: NewsItem, TOPIC_SCORED: ScoredNews, TOPIC_TRENDS: Trend, TOPIC_ALERTS: Alert, TOPIC_DLQ: DeadLetter,
}
