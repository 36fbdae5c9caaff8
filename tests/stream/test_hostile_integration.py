"""A hostile feed through the real worker: nothing stops, skews or silently drops the stream."""

from __future__ import annotations

import json
from collections import Counter
import random
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from riskpulse.stream.core.validation import Invalid, parse_news
from riskpulse.records import TOPIC_DLQ, TOPIC_NEWS, TOPIC_SCORED, TOPIC_TRENDS
from tests.helpers import consume, produce
from tests.stream.test_pipeline_integration import BASE_TS, HEADLINES, rfc3339

pytestmark = pytest.mark.integration


def hostile_records(n: int, rng: random.Random, valid: list[dict[str, Any]]) -> list[bytes]:
    """``n`` records of every kind a broken or malicious producer sends."""
    def now() -> str:  # a live feed: the items that are scored are dated as they are sent
        return datetime.now(timezone.utc).isoformat()
    makers = [
        lambda i: bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))),  # bad bytes
        lambda i: b"[" * 5000 + b"]" * 5000,  # nesting
        lambda i: b'{"headline": "n", "x": ' + b"7" * rng.randint(4400, 6000) + b"}",  # huge number
        lambda i: json.dumps({"headline": "h" * rng.randint(1001, 5000)}).encode(),  # huge string
        lambda i: json.dumps({"headline": rng.choice([1, None, [], {}, True])}).encode(),  # wrong type
        lambda i: json.dumps({"headline": "bad date", "published_at": rng.choice(
            ["9999-12-31T23:59:59-23:00", "0000-01-01T00:00:00Z", "2026-13-45T99:00:00Z", "soon"])}).encode(),
        lambda i: b'{"headline": "lone \\ud83d surrogate"}', lambda i: b'{"headline": "nul \\u0000"}',
        lambda i: b"", lambda i: b"null", lambda i: b'"just a string"', lambda i: b"NaN",
        # scored harmlessly: far-future and epoch dates (clamped, flagged), a cashtag flood (capped),
        # re-sends of valid items (counted once), republished stories (duplicates), no date (broker time)
        lambda i: json.dumps({"id": f"future-{i}", "headline": f"Clock from the future {i}",
                              "published_at": "2099-01-01T00:00:00Z"}).encode(),
        lambda i: json.dumps({"id": f"epoch-{i}", "headline": f"Clock at the epoch {i}",
                              "published_at": "1970-01-01T00:00:00Z"}).encode(),
        lambda i: json.dumps({"id": f"flood-{i}", "headline": "Flood " + " ".join(f"$T{i}X{k}" for k in range(300))[:990],
                              "published_at": now()}).encode(),
        lambda i: json.dumps(rng.choice(valid)).encode(),
        lambda i: json.dumps({"id": f"repub-{i}", "headline": rng.choice(valid)["headline"].upper(),
                              "published_at": now()}).encode(),
        lambda i: json.dumps({"id": f"nodate-{i}", "headline": f"Undated wire item {i}"}).encode(),
    ]
    weights = [30] * 12 + [1] * 6  # mostly refused at the door; a few hundred reach the model
    return [rng.choices(makers, weights)[0](i) for i in range(n)]


def ticker_totals(trends: list[dict[str, Any]], tickers: set[str]) -> int:
    latest = {(t["key_type"], t["key"], t["window_start"]): t for t in trends}
    return sum(t["count"] for (kt, key, _), t in latest.items() if kt == "ticker" and key in tickers)


def test_ten_thousand_hostile_records_interleaved_with_news(pipeline: Any, kafka: Any) -> None:
    """A live feed: valid news dated as it is sent, 10,000 hostile records among it, production defaults."""
    worker = pipeline()  # first: the feed below is dated as it is sent
    rng = random.Random(12)
    valid = [{"id": f"v-{i}", "headline": f"{rng.choice(HEADLINES)} ${rng.choice(['AAPL', 'XOM'])} #{i}",
              "source": "wire"} for i in range(300)]
    hostile = hostile_records(10_000, rng, valid)
    stream: list[bytes] = []
    sent = 0
    for i, value in enumerate(hostile):  # interleaved; valid items dated when they are sent
        stream.append(value)
        if i % 33 == 0 and sent < len(valid):
            valid[sent]["published_at"] = datetime.now(timezone.utc).isoformat()
            stream.append(json.dumps(valid[sent]).encode())
            sent += 1
    for v in valid[sent:]:
        v["published_at"] = datetime.now(timezone.utc).isoformat()
        stream.append(json.dumps(v).encode())
    now = datetime.now(timezone.utc)
    refused = sum(isinstance(parse_news(v, now), Invalid) for v in stream)

    produce(kafka.bootstrap, pipeline.topic(TOPIC_NEWS), stream, key=lambda v: str(rng.randrange(97)).encode())
    dlq = consume(kafka.bootstrap, pipeline.topic(TOPIC_DLQ),
                  lambda r: len({(d["source_partition"], d["source_offset"]) for d in r}) >= refused, timeout_s=300)
    harmless = len(stream) - refused
    # every valid id, not only a count: a re-sent copy can be published before an item still on its
    # way from another counting partition
    scored = consume(kafka.bootstrap, pipeline.topic(TOPIC_SCORED),
                     lambda r: len(r) >= harmless and {x["id"] for x in r} >= {v["id"] for v in valid}, timeout_s=300)
    trends = consume(kafka.bootstrap, pipeline.topic(TOPIC_TRENDS),
                     lambda r: ticker_totals(r, {"AAPL", "XOM"}) >= len(valid), timeout_s=300)

    # one dead letter per refused record, by its key (source partition and offset); at least once:
    # faust seeks every stream partition back to its commit when it has recovered the tables at
    # start, so the first records read before that are read again, and dead-lettered again under
    # the same key with the same content (docs/kafka.md, news.dlq)
    by_key: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for d in dlq:
        by_key.setdefault((d["source_partition"], d["source_offset"]), []).append(d)
    assert len(by_key) == refused and all(d["stage"] == "parse" and d["error"] for d in dlq), Counter(
        d["stage"] for d in dlq)
    def content(d: dict[str, Any]) -> dict[str, Any]:  # the record's own fields (consume adds _offset etc.)
        return {k: v for k, v in d.items() if not k.startswith("_") and k != "failed_at"}
    for copies in by_key.values():
        assert all(content(c) == content(copies[0]) for c in copies), [content(c) for c in copies]
    by_id: dict[str, dict[str, Any]] = {}
    for rec in scored:
        by_id.setdefault(rec["id"], rec)
    assert {v["id"] for v in valid} <= set(by_id)
    # every valid item counted exactly once (re-sends and republished copies are not counted again)
    time.sleep(5)  # any double count would be a later trend record of the same windows
    trends = consume(kafka.bootstrap, pipeline.topic(TOPIC_TRENDS), lambda r: True)
    assert ticker_totals(trends, {"AAPL", "XOM"}) == len(valid)
    clamped = [r for r in by_id.values() if r["id"].startswith(("future-", "epoch-"))]
    assert clamped and all(r["published_at_original"] and r["published_at"] < "2030" for r in clamped)
    assert all(len(r["tickers"]) <= 20 for r in by_id.values())
    # a republished story is a duplicate of whichever copy was seen first
    originals = {v["headline"].upper(): v["id"] for v in valid}
    for r in (r for r in by_id.values() if r["id"].startswith("repub-")):
        original = by_id[originals[r["headline"]]]
        assert r["duplicate_of"] or original["duplicate_of"], (r, original)
    assert "riskpulse_late_items_total 0.0" in worker.metrics()
    assert worker.restarts() == 0 and worker.proc is not None and worker.proc.poll() is None


def test_poison_on_every_internal_stage_is_dead_lettered_and_the_stream_goes_on(pipeline: Any, kafka: Any) -> None:
    """Records no validation upstream vouches for, written straight to the topics the later stages read."""
    worker = pipeline()
    internal = f"{pipeline.topic('')}".rstrip(".") + "."  # the namespace prefix
    poison = [b"{broken", b"[1]", json.dumps({"id": "x", "headline": "no score fields"}).encode()]
    app_id = worker.env["RISKPULSE_APP_ID"]
    produce(kafka.bootstrap, internal + app_id + "-scored-by-story", poison)
    produce(kafka.bootstrap, internal + app_id + "-windows", poison + [
        json.dumps({"_part": [0, 60, 99], "keys": {}}).encode(),  # a shard out of range
        json.dumps({"_part": [0, 60, 1], "keys": {"ticker|X": "7"}}).encode(),  # counters that could never be merged
        json.dumps({"_through": ["0", 1.0]}).encode()])
    produce(kafka.bootstrap, pipeline.topic(TOPIC_SCORED), poison)
    produce(kafka.bootstrap, pipeline.topic(TOPIC_TRENDS), poison)
    produce(kafka.bootstrap, pipeline.topic("alerts"), poison, key=lambda v: v[:12])  # compacted: keys required
    items = [{"id": f"after-{i}", "headline": f"{HEADLINES[i % len(HEADLINES)]} #{i}",
              "published_at": rfc3339(BASE_TS + i)} for i in range(20)]
    produce(kafka.bootstrap, pipeline.topic(TOPIC_NEWS), items)
    # at least once, keyed by the source position: a record faust hands over again after a rebalance
    # (or that the worker filled in where faust passed it over) is dead-lettered again, same key
    def positions(letters: list[dict[str, Any]]) -> dict[tuple[str, int, int], set[str]]:
        out: dict[tuple[str, int, int], set[str]] = {}
        for d in letters:
            out.setdefault((d["source_topic"], d["source_partition"], d["source_offset"]), set()).add(d["stage"])
        return out

    dlq = consume(kafka.bootstrap, pipeline.topic(TOPIC_DLQ), lambda r: len(positions(r)) >= 5 * len(poison) + 3,
                  timeout_s=180)
    by_position = positions(dlq)
    stage_of_topic = {internal + app_id + "-scored-by-story": "aggregate", internal + app_id + "-windows": "judge",
                      pipeline.topic(TOPIC_SCORED): "sink_scored", pipeline.topic(TOPIC_TRENDS): "sink_trends",
                      pipeline.topic("alerts"): "sink_alerts"}
    assert all(stages == {stage_of_topic[topic]} for (topic, _, _), stages in by_position.items()), by_position
    assert sorted(stage for stages in by_position.values() for stage in stages) == sorted(
        ["aggregate"] * 3 + ["judge"] * 6 + ["sink_scored"] * 3 + ["sink_trends"] * 3 + ["sink_alerts"] * 3)
    assert all(d["error"] for d in dlq)
    scored = consume(kafka.bootstrap, pipeline.topic(TOPIC_SCORED),
                     lambda r: {x.get("id") for x in r} >= {i["id"] for i in items}, timeout_s=120, skip_garbage=True)
    assert scored
    from riskpulse.store.news import Store

    store = Store(worker.env["RISKPULSE_STORE_URL"])
    deadline = time.monotonic() + 60
    while store.counts()["scored_news"] < len(items) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert store.counts()["scored_news"] == len(items)
    assert worker.restarts() == 0 and worker.proc is not None and worker.proc.poll() is None
