"""Every table of riskpulse's store, under one metadata.

The stream's sinks write the news, trends and alerts tables (keyed like their Kafka records, so
redelivery is an upsert); the alerts package keeps the webhook outbox, its delivery log and the
endpoints it disabled; the dashboard reads. The shape changes only through a migration
(store/migrations, Alembic): a test compares this metadata with the migrated database.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

scored_news = Table(
    "scored_news", metadata,
    Column("id", String(200), primary_key=True),
    Column("headline", Text, nullable=False),
    Column("source", String(200)),
    Column("url", Text),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("topic_confidence", Float, nullable=False),
    Column("sentiment", String(16), nullable=False),
    Column("p_negative", Float, nullable=False),
    Column("p_neutral", Float, nullable=False),
    Column("p_positive", Float, nullable=False),
    Column("sentiment_score", Float, nullable=False),
    Column("tickers", Text, nullable=False, default=""),  # comma-separated, for display
    Column("duplicate_of", String(200)),
    Column("model_version", String(100), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("story_id", String(200)),  # the story's first copy (stream/core/stories.py); None before stories
    Column("story_copies", Integer),  # the copy's place in its story: copies so far, this one included
    Column("story_sources", Integer),  # distinct sources so far
    Column("lang", String(20)),  # the producer's or the identified language (models/language.py)
    Column("sentiment_status", String(24)),  # scored, unsupported_language, no_text; None before languages
    Column("revision", Integer),  # the latest revision (a correction is the same id with changed content); None before
    Index("ix_scored_news_published_at", "published_at"),
    Index("ix_scored_news_story", "story_id", "published_at"),
    Index("ix_scored_news_topic_time", "topic", "published_at"),
    Index("ix_scored_news_sentiment_time", "sentiment", "published_at"),
)

# the earlier revisions of corrected items: what each said and how it was scored, until the next replaced it
news_revisions = Table(
    "news_revisions", metadata,
    Column("id", String(200), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("headline", Text, nullable=False),
    Column("source", String(200)),
    Column("url", Text),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Column("tickers", Text, nullable=False, default=""),
    Column("topic", String(64), nullable=False),
    Column("sentiment", String(16), nullable=False),
    Column("sentiment_score", Float, nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
)

news_tickers = Table(
    "news_tickers", metadata,
    Column("news_id", String(200), primary_key=True),
    Column("ticker", String(20), primary_key=True),
    Column("published_at", DateTime(timezone=True), nullable=False),
    Index("ix_news_tickers_ticker_time", "ticker", "published_at"),
)

trends = Table(
    "trends", metadata,
    Column("key_type", String(8), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
    Column("negative", Integer, nullable=False),
    Column("neutral", Integer, nullable=False),
    Column("positive", Integer, nullable=False),
    Column("mean_score", Float, nullable=False),
    Column("negative_share", Float, nullable=False),
    Column("window_ts", BigInteger, nullable=False),  # window_start in Unix seconds: bucketing without date parsing
    Column("stories", Integer),  # distinct stories among the counted items; None before stories
    Column("negative_stories", Integer),
    Column("unscored", Integer),  # items whose sentiment the model cannot judge; None before languages
    # covering: the dashboard's charts read only the index, never the table
    Index("ix_trends_type_ts", "key_type", "window_ts", "key", "count", "negative", "mean_score"),
)


BUCKET_S = 1800  # trend_buckets' width: a 7-day chart (30-minute points) reads a 30th of the trends' rows

# Sums of the trends of each key per half hour, kept by Store.upsert_trends from the trends rows
# themselves (recomputed, never incremented: a redelivered window cannot count twice). The
# dashboard's long ranges read whole buckets here and only their partial edges from trends.
trend_buckets = Table(
    "trend_buckets", metadata,
    Column("key_type", String(8), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("bucket_ts", BigInteger, primary_key=True),  # Unix seconds, a multiple of BUCKET_S
    Column("count", Integer, nullable=False),
    Column("negative", Integer, nullable=False),
    Column("score_sum", Float, nullable=False),  # sum of mean_score * count: the count-weighted mean's numerator
    Index("ix_trend_buckets_type_ts", "key_type", "bucket_ts", "key", "count", "negative", "score_sum"),
)


alerts = Table(
    "alerts", metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("key_type", String(8), nullable=False),
    Column("key", String(100), nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),  # the first anomalous window
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("last_window_start", DateTime(timezone=True), nullable=False),  # of the latest record
    Column("rule", String(120), nullable=False),
    Column("summary", Text, nullable=False),
    Column("observed", Text, nullable=False),  # JSON
    Column("baseline", Text, nullable=False),  # JSON
    Column("top_headlines", Text, nullable=False),  # JSON list
    Column("fired_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True)),
    Column("acked_by", String(100)),
    Column("acked_at", DateTime(timezone=True)),
    Index("ix_alerts_fired_at", "fired_at"),
    Index("ix_alerts_key", "key_type", "key", "window_start"),
)

# -- webhook delivery (alerts/outbox.py) --

outbox = Table(
    "webhook_outbox", metadata,
    Column("message_id", String(120), primary_key=True),
    Column("route", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed | skipped | silenced
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float),
    Column("lease_owner", String(40)),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    # what silences match on (alerts/silences.py), kept with the row so a silence created while
    # a delivery is being retried stops it too; empty on rows made before revision 0002
    Column("key_type", String(8)),
    Column("key", String(100)),
    Column("severity", String(16)),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(120), nullable=False),
    Column("route", String(100), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Float, nullable=False),
    Index("ix_deliveries_message", "message_id"),
)

# what each route was last told of each incident (alerts/notifier.py): the notifications owed are
# decided against it, and each is claimed by a conditional update of ``seq``, so several workers
# send each one once
incident_notices = Table(
    "incident_notices", metadata,
    Column("incident_id", String(40), primary_key=True),
    Column("route", String(100), primary_key=True),
    Column("seq", Integer, nullable=False),  # notifications sent so far
    Column("state", String(64)),  # digest of what the last one said (None: none sent yet)
    Column("status", String(16)),  # firing | resolved, as last sent
    Column("opened_at", Float, nullable=False),  # wall clock, when the route first saw the incident
    Column("last_sent_at", Float),
    Column("next_at", Float, nullable=False),  # no notification before this (group_wait, group_interval)
    Index("ix_incident_notices_next", "next_at"),
)

endpoints = Table(
    "webhook_endpoints", metadata,
    Column("route", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("disabled_at", Float),
    Column("reason", Text),
)

# Alertmanager-style silences: every matcher set must equal the alert's (an unset one matches all);
# an alert they match is still detected, stored and shown, but no webhook is sent while one holds
silences = Table(
    "silences", metadata,
    Column("id", String(32), primary_key=True),
    Column("key_type", String(8)),
    Column("key", String(100)),
    Column("severity", String(16)),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_silences_ends", "ends_at"),
)

# the dashboard's people: a role each (viewer < analyst < admin); a password hash (Werkzeug's
# scrypt) for those who sign in on the login page, none for those signed in by the SSO proxy
users = Table(
    "users", metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(300)),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("time_zone", String(64)),  # IANA name the dashboard shows times in; none: UTC
    Column("created_by", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
)
