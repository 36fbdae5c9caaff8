"""One record's failure stays with that record; infrastructure faults are told apart."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy.exc import OperationalError

from riskpulse.stream.core.validation import Invalid, parse_news
from riskpulse.stream.isolation import InfrastructureError, score_isolated, write_isolated
from riskpulse.store.news import Store

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def test_a_poison_item_fails_alone_and_the_batch_is_scored() -> None:
    def score(batch: list[str]) -> list[str]:
        if "poison" in batch:
            raise RuntimeError("tokenizer exploded")
        return [s.upper() for s in batch]

    out = score_isolated(score, ["a", "poison", "b"], canary="ok")
    assert out[0] == "A" and out[2] == "B" and isinstance(out[1], RuntimeError)


def test_a_broken_scorer_is_an_infrastructure_fault_not_a_batch_of_poison() -> None:
    def score(batch: list[str]) -> list[str]:
        raise RuntimeError("CUDA error: device lost")

    with pytest.raises(InfrastructureError, match="known-good"):
        score_isolated(score, ["a", "b"], canary="ok")


def test_a_record_the_store_refuses_is_returned_the_rest_are_written(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    good = {"key_type": "topic", "key": "Macro", "window_start": "2026-11-22T12:00:00Z", "window_end": "2026-11-22T12:01:00Z",
            "count": 2, "negative": 1, "neutral": 1, "positive": 0, "mean_score": -0.4, "negative_share": 0.5}
    bad = {**good, "key": "Fed", "window_start": "not a date"}
    failures = write_isolated(store.upsert_trends, [good, bad, {**good, "key": "Oil"}])
    assert [i for i, _ in failures] == [1]
    assert store.counts()["trends"] == 2


SCORED = {"id": "n1", "headline": "Bank misses", "source": "wire", "url": None, "published_at": "2026-11-22T12:00:00Z",
          "topic": "Macro", "topic_confidence": 0.9, "sentiment": "negative",
          "sentiment_probs": {"negative": 0.8, "neutral": 0.15, "positive": 0.05}, "sentiment_score": -0.75,
          "tickers": ["JPM"], "duplicate_of": None, "model_version": "m1", "scored_at": "2026-11-22T12:00:01Z"}


def test_nul_characters_and_over_long_values_are_refused_alike_on_every_database(store_url: str) -> None:
    """PostgreSQL refuses both, SQLite neither: the store refuses them first, so a record's fate
    (dead-lettered with this reason, the rest written) does not depend on the database."""
    store = Store(store_url)
    records = [SCORED, {**SCORED, "id": "n2", "headline": "nul \x00 inside"}, {**SCORED, "id": "n3", "source": "s" * 201},
               {**SCORED, "id": "n4", "tickers": ["T" * 21]}, {**SCORED, "id": "n5", "headline": "x" * 100_000}]
    failures = write_isolated(store.upsert_scored, records)
    assert [(i, str(exc)) for i, exc in failures] == [
        (1, "scored_news.headline contains a NUL character, which PostgreSQL cannot store"),
        (2, "scored_news.source is 201 characters, over the column's 200"),
        (3, "news_tickers.ticker is 21 characters, over the column's 20")]
    assert store.counts()["scored_news"] == 2  # n1, and n5: Text has no length limit on either
    alert = {"id": "a1", "status": "firing", "severity": "warning", "key_type": "ticker", "key": "JPM",
             "window_start": "2026-11-22T12:00:00Z", "window_end": "2026-11-22T12:01:00Z", "rule": "r" * 121,
             "summary": "s", "observed": {}, "baseline": {}, "top_headlines": [], "fired_at": "2026-11-22T12:01:01Z"}
    failures = write_isolated(store.upsert_alerts, [alert, {**alert, "id": "a2", "rule": "default"}])
    assert [(i, str(exc)) for i, exc in failures] == [(0, "alerts.rule is 121 characters, over the column's 120")]
    assert store.counts()["alerts"] == 1
    store.engine.dispose()


def test_an_unreachable_store_is_retried_then_reported_as_infrastructure() -> None:
    calls: list[int] = []

    def write(batch: list[Any]) -> None:
        calls.append(len(batch))
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("unable to open database file"))

    with pytest.raises(InfrastructureError, match="unreachable after 3 attempts"):
        write_isolated(write, [1, 2], attempts=3, sleep=lambda s: None)
    assert calls == [2, 2, 2]  # never blamed on a record


HOSTILE = [
    b"[" * 100_000 + b"]" * 100_000,  # nesting far past the recursion limit
    b'{"headline": "x", "n": ' + b"9" * 5000 + b"}",  # an integer Python refuses to convert
    b'{"headline": "x", "n": NaN}', b'{"headline": "x", "n": Infinity}',
    b'{"headline": "\\ud800 lone surrogate"}', b'{"headline": "nul \\u0000 inside"}',
    b'{"headline": "ok", "source": "\\u0000"}', b'{"headline": "ok", "tickers": ["\\udfff"]}',
    b'{"headline": "ok", "published_at": "9999-12-31T23:59:59-23:59"}',
    b'{"headline": "ok", "published_at": "0001-01-01T00:00:00+23:59"}',
    b'{"headline": "ok", "published_at": 1e400}', b'{"headline": "ok", "published_at": -1e308}',
    b'{"headline": "ok", "id": ""}', b'{"headline": "ok", "tickers": [' + b'"A",' * 60 + b'"B"]}',
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_are_refused_with_a_reason(raw: bytes) -> None:
    result = parse_news(raw, NOW)
    assert isinstance(result, Invalid) and result.reason, result


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                           lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
                           max_leaves=30)
news_like = st.fixed_dictionaries({}, optional={
    "headline": st.text(max_size=1100) | json_values, "id": st.text(max_size=210) | json_values,
    "published_at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.text(max_size=40) | json_values,
    "tickers": st.lists(st.text(max_size=25), max_size=60) | json_values, "body": st.text(max_size=50) | json_values,
    "schema_version": st.integers(0, 2) | json_values, "url": st.text(max_size=30) | json_values})


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=300))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    parse_news(raw, NOW)


@settings(max_examples=400, deadline=None)
@given(doc=news_like)
def test_parse_never_raises_and_what_passes_can_be_written_anywhere(doc: dict[str, Any]) -> None:
    result = parse_news(json.dumps(doc, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass"), NOW)
    if not isinstance(result, Invalid):
        text = json.dumps(result.to_json(), ensure_ascii=False)
        text.encode("utf-8")  # no lone surrogates reach Kafka or a store
        assert "\x00" not in text and result.id and result.published_at is not None
        assert 1 <= len(result.headline) <= 1000
