"""Story identity: which headlines are copies of one story, and stories counted once per window."""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from riskpulse.stream.core import stories
from riskpulse.stream.core.aggregator import Aggregator, AggregatorConfig
from riskpulse.stream.core.backtest import run_backtest
from riskpulse.stream.core.state import Overlay
from riskpulse.stream.stages.partitioning import story_partition
from tests.helpers import story_tag

from .test_core import DETECTOR, T0, LoggedStore, alert_keys, interleave, run, run_with_crashes, scored

LAWSUIT = "Tesla sued by shareholders over misleading disclosures, seeking $260 million"
# how twelve outlets carry one story: wire tags, source suffixes, changed figures, clauses swapped
SYNDICATED = [
    LAWSUIT,
    "UPDATE 2-Tesla sued by shareholders over misleading disclosures, seeking $250 million",
    "BRIEF-Tesla sued by shareholders over misleading disclosures, seeking $300 million",
    "Tesla sued by shareholders over misleading disclosures, seeking $260 mln - Reuters",
    "Reuters: Tesla sued by shareholders over misleading disclosures, seeking $260 million",
    "Seeking $260 million, Tesla sued by shareholders over misleading disclosures",
    "TESLA SUED BY SHAREHOLDERS OVER MISLEADING DISCLOSURES, SEEKING $260 MILLION",
    "Tesla sued by shareholders over misleading disclosures; seeking $0.26 billion | Bloomberg",
    "EXCLUSIVE-Tesla sued by shareholders over misleading disclosure, seeking $260 million",
    "Tesla sued by shareholders over misleading disclosures, seeking $260 million (Reuters)",
    "Tesla Inc sued by shareholders over misleading disclosures, seeking $260 million",
    "BREAKING: Tesla sued by shareholders over misleading disclosures, seeking $260M",
]
SOURCES = ["reuters", "bloomberg", "dow jones", "marketwatch", "cnbc", "ft", "wsj", "benzinga", "the fly", "afp",
           "seeking alpha", "yahoo finance"]


def test_the_syndication_variations_are_one_story_and_meet_in_one_block() -> None:
    words = stories.story_tokens(LAWSUIT)
    assert words == {"tesla", "sued", "shareholder", "misleading", "disclosure", "seeking"}
    for variant in SYNDICATED:
        assert stories.same_story(words, stories.story_tokens(variant)), variant
    # identical story words always share a block (and so a partition); these all have them
    identical = [v for v in SYNDICATED if stories.story_tokens(v) == words]
    assert len(identical) >= 8 and {stories.block_of(v) for v in identical} == {stories.block_of(LAWSUIT)}


def test_opposite_news_in_the_same_words_and_unrelated_news_are_different_stories() -> None:
    up, down = stories.story_tokens("Acme shares rise after quarterly results"), stories.story_tokens(
        "Acme shares fall after quarterly results")
    assert stories.direction_clash(up, down) and not stories.same_story(up, down)
    assert not stories.same_story(stories.story_tokens("Acme beats estimates, raises outlook"),
                                  stories.story_tokens("Acme misses estimates, cuts outlook"))
    assert not stories.same_story(stories.story_tokens(LAWSUIT),
                                  stories.story_tokens("Tesla recalls 2 million vehicles over autopilot"))
    # too few words to judge: only an exact re-publication is a copy
    assert not stories.same_story(stories.story_tokens("Stocks fall"), stories.story_tokens("Stocks fall again"))
    # a headline without words (emoji, figures) is its own block, by its exact text
    assert stories.block_of("📉📉📉") != stories.block_of("🚀🚀")
    assert story_partition("📉📉📉", 4) == story_partition("📉📉📉", 4)


def test_twelve_outlets_one_story_twelve_copies_and_one_row_of_evidence() -> None:
    agg = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    start = T0 - T0 % 60  # one window holds them all
    items = [scored(f"n{k}", start + 4 * k, tickers=["TSLA"], topic="Legal", headline=h).model_copy(
        update={"source": SOURCES[k]}) for k, h in enumerate(SYNDICATED)]
    added = [agg.add(item, 0, k, 0.0) for k, item in enumerate(items)]
    assert {a.item.story_id for a in added} == {"n0"}
    assert [a.item.story_copies for a in added] == list(range(1, 13))
    assert added[-1].item.story_sources == 12
    close = agg.next_close(0.0, until=math.inf)
    assert close is not None
    tsla = next(t for t in close.trends if t.key == "TSLA")
    # the upper-case copy is an exact re-publication: a copy of the story, not counted again
    assert sum(a.status == "duplicate" for a in added) == 1
    assert (tsla.count, tsla.negative, tsla.stories, tsla.negative_stories) == (11, 11, 1, 1)
    assert len(tsla.top_negative) == 1
    evidence = tsla.top_negative[0]
    assert (evidence.story_id, evidence.copies, evidence.sources) == ("n0", 12, 12)


def test_an_exact_republication_is_a_copy_of_the_story_but_not_counted_again() -> None:
    agg = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    agg.add(scored("a", T0, tickers=["TSLA"], headline=LAWSUIT).model_copy(update={"source": "reuters"}), 0, 0, 0.0)
    dup = agg.add(scored("b", T0 + 9, tickers=["TSLA"], headline=LAWSUIT + "!").model_copy(update={"url": "https://www.ft.com/x"}),
                  1, 0, 0.0)
    assert dup.status == "duplicate" and dup.item.duplicate_of == "a"
    assert (dup.item.story_id, dup.item.story_copies, dup.item.story_sources) == ("a", 2, 2)  # ft.com from the link
    again = agg.add(scored("b", T0 + 9, tickers=["TSLA"], headline=LAWSUIT + "!"), 1, 0, 0.0)  # redelivered
    assert again.item.story_copies == 2


def syndicated_feed(seed: int, n_partitions: int = 4, stories_per_partition: int = 12) -> list[list[Any]]:
    """Distinct stories, each carried by a few outlets over a minute or two, on any partition."""
    rng = random.Random(seed)
    parts: list[list[Any]] = [[] for _ in range(n_partitions)]
    tags = ["", "UPDATE 1-", "BRIEF-", "Reuters: ", "EXCLUSIVE-"]
    n = 0
    for s in range(n_partitions * stories_per_partition):
        ts = T0 + s * 1200 / (n_partitions * stories_per_partition)
        base = f"{rng.choice(['Acme', 'Globex', 'Initech'])} {story_tag(s)} probe widens after filing of ${rng.randint(1, 99)}m"
        sentiment = rng.choice(["negative", "negative", "neutral", "positive"])
        for c in range(rng.randint(1, 4)):
            figure = rng.randint(1, 99)
            headline = tags[c % len(tags)] + base.rsplit("$", 1)[0] + f"${figure}m"
            parts[rng.randrange(n_partitions)].append(
                scored(f"s{s}c{c}", ts + 20 * c + rng.uniform(0, 3), sentiment, tickers=[rng.choice(["AAPL", "TSLA"])],
                       headline=headline))
            n += 1
    for p in parts:
        p.sort(key=lambda i: i.published_at)
    return parts


def story_rows(trends: list[Any]) -> dict[tuple[str, str, str], tuple[int | None, ...]]:
    rows = {}
    for t in trends:
        rows[(t.key_type, t.key, t.window_start.isoformat())] = (t.count, t.negative, t.stories, t.negative_stories,
                                                                 tuple((e.story_id, e.copies) for e in t.top_negative))
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 30), crash_batch=st.integers(0, 20),
       kept=st.integers(0, 300), committed_back=st.integers(0, 4), crashes=st.integers(1, 3))
def test_copies_across_partitions_with_kill_9_at_any_write_count_as_a_clean_run(
        seed: int, batch: int, crash_batch: int, kept: int, committed_back: int, crashes: int) -> None:
    """Stories, copies and evidence survive a crash at any write and the redelivery after it."""
    parts = syndicated_feed(seed)
    arrivals = interleave(parts, random.Random(seed))
    clean_trends, clean_alerts, _ = run(LoggedStore(), arrivals, batch)
    trends, alerts = run_with_crashes(arrivals, batch, crash_batch, kept, committed_back, crashes)
    assert story_rows(trends) == story_rows(clean_trends)
    assert alert_keys(alerts) == alert_keys(clean_alerts)
    assert any(r[2] is not None and r[0] > r[2] for r in story_rows(clean_trends).values()), "copies were found"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 60))
def test_any_interleaving_finds_the_same_stories_and_the_backtest_over_news_scored_agrees(seed: int, batch: int) -> None:
    """Copies whose story words are the same meet whatever the order; the backtest, fed the
    worker's news.scored (story ids on it), counts the same stories."""
    parts = syndicated_feed(seed)
    reference, _, _ = run(LoggedStore(), [(p, k, i) for p, part in enumerate(parts) for k, i in enumerate(part)], 10_000)
    trends, _, _ = run(LoggedStore(), interleave(parts, random.Random(seed)), batch)
    counts = {k: v[:4] for k, v in story_rows(trends).items()}
    assert counts == {k: v[:4] for k, v in story_rows(reference).items()}
    agg = Aggregator(Overlay({}), AggregatorConfig(), None, now_wall=0.0)
    scored_news = [agg.add(i, p, k, 0.0).item for p, part in enumerate(parts) for k, i in enumerate(part)]
    backtest = run_backtest([i for i in scored_news if i.duplicate_of is None], DETECTOR, 60)
    assert {k: v[:4] for k, v in story_rows(backtest.trends).items()} == counts


def test_a_negative_story_carried_by_five_outlets_within_half_an_hour_is_one_spread_alert() -> None:
    from riskpulse.stream.core.spread import SpreadConfig, spread_alert_id

    store: dict[str, Any] = {}
    cfg = AggregatorConfig(spread=SpreadConfig(min_sources=5, within_s=1800))
    agg = Aggregator(Overlay(store), cfg, DETECTOR, now_wall=0.0)

    def carry(agg: Aggregator, k: int, minute: float, sentiment: str = "negative", story: str = LAWSUIT,
              prefix: str = "n") -> None:
        item = scored(f"{prefix}{k}", T0 + 60 * minute, sentiment, tickers=["TSLA"], headline=SYNDICATED[k] if story == LAWSUIT
                      else f"{story} {k}").model_copy(update={"source": SOURCES[k]})
        agg.add(item, 0, k if prefix == "n" else 100 + k, 0.0)

    for k, minute in enumerate([0, 3, 7, 12]):
        carry(agg, k, minute)
    assert agg.spread_alerts(0.0) == []  # four outlets: not yet
    carry(agg, 4, 20)
    due = agg.spread_alerts(0.0)
    assert len(due) == 1
    story_id, alert = due[0]
    assert (alert.key_type, alert.key, alert.rule, alert.id) == ("story", "n0", "spread", spread_alert_id("n0"))
    assert alert.observed["sources"] == 5 and alert.observed["minutes"] == 20
    assert [h.source for h in alert.top_headlines] == SOURCES[:5]  # the pick-up, in order
    # not acknowledged yet (a crash): a fresh instance over what was written finds it due again, same id
    agg.end_batch()
    agg.state.flush()  # the batch's writes reached the store; the alert's acknowledgement did not
    again = Aggregator(Overlay(store), cfg, DETECTOR, now_wall=0.0)
    carry(again, 4, 20)  # the batch read again
    assert [a.id for _, a in again.spread_alerts(0.0)] == [alert.id]
    again.commit_spread(story_id, alert)
    carry(again, 5, 25)
    assert again.spread_alerts(0.0) == []  # once acknowledged, never again for this story
    # its pick-up quiet for the rule's half hour (event time): resolved, once
    while (close := again.next_close(0.0, until=T0 + 60 * 25 + 1800 + 120)) is not None:
        again.commit(close)
    resolved = again.spread_alerts(0.0)
    assert [(a.id, a.status) for _, a in resolved] == [(alert.id, "resolved")]
    again.commit_spread(*resolved[0])
    assert again.spread_alerts(0.0) == []


def test_a_positive_story_or_a_slow_pick_up_is_no_spread_alert() -> None:
    from riskpulse.stream.core.spread import SpreadConfig

    for sentiment, minutes in (("positive", [0, 1, 2, 3, 4, 5]), ("negative", [0, 20, 40, 60, 80, 100])):
        agg = Aggregator(Overlay({}), AggregatorConfig(spread=SpreadConfig(min_sources=5, within_s=1800)), DETECTOR,
                         now_wall=0.0)
        for k, minute in enumerate(minutes):
            item = scored(f"n{k}", T0 + 60 * minute, sentiment, tickers=["TSLA"], headline=SYNDICATED[k]).model_copy(
                update={"source": SOURCES[k]})
            agg.add(item, 0, k, 0.0)
        assert agg.spread_alerts(0.0) == [], (sentiment, minutes)


def test_stories_past_the_horizon_are_forgotten_with_their_candidates() -> None:
    store: dict[str, Any] = {}
    agg = Aggregator(Overlay(store), AggregatorConfig(dedupe_horizon_s=3600), DETECTOR, now_wall=0.0)
    agg.add(scored("old", T0, tickers=["TSLA"], headline=LAWSUIT), 0, 0, 0.0)
    for day in range(1, 4):
        agg.add(scored(f"n{day}", T0 + day * 86400, tickers=["XOM"],
                       headline=f"Exxon {story_tag(day)} refinery outage widens {story_tag(day + 50)}"), 0, day, 0.0)
    agg.prune(T0 + 3 * 86400 + 10)  # as a window close three days on does
    agg.end_batch()
    agg.state.flush()
    assert "s|old" not in store and "s|n3" in store
    assert not [k for k in store if k.startswith("sk|")]  # the band buckets live in memory, not in the store
    assert len(agg.stories._band_index()) == 6  # n3's six bands: no candidate left for a forgotten story
    # a copy of the old story now is a story of its own (news again)
    again = agg.add(scored("late-copy", T0 + 4 * 86400, tickers=["TSLA"], headline="UPDATE 1-" + LAWSUIT), 0, 9, 0.0)
    assert again.item.story_id == "late-copy"


def test_a_story_the_spread_rule_cannot_judge_is_skipped_not_fatal() -> None:
    from riskpulse.stream.core.spread import SpreadConfig

    agg = Aggregator(Overlay({}), AggregatorConfig(spread=SpreadConfig(min_sources=2, within_s=1800)), DETECTOR,
                     now_wall=0.0)
    for k in range(3):
        agg.add(scored(f"n{k}", T0 + 60 * k, tickers=["TSLA"], headline=SYNDICATED[k]).model_copy(
            update={"source": SOURCES[k]}), 0, k, 0.0)
    story = agg.stories.story("n0")
    assert story is not None
    agg.state.set("s|n0", {**story, "timeline": [["not", "a", "copy"]]})  # a value the rule cannot read
    assert agg.spread_alerts(0.0) == []  # logged and skipped: the batch goes on


def test_a_restarted_partition_finds_the_stories_its_store_holds_and_cleans_the_old_band_keys() -> None:
    """The band buckets live in memory, built from the stored stories: a new instance over the
    same store (a restart, a partition moved) finds a story founded before it, and a store
    written before the buckets left it loses their keys as its stories are forgotten."""
    store: dict[str, Any] = {}
    first = Aggregator(Overlay(store), AggregatorConfig(dedupe_horizon_s=3600), DETECTOR, now_wall=0.0)
    first.add(scored("n0", T0, tickers=["TSLA"], headline=SYNDICATED[0]), 0, 0, 0.0)
    first.end_batch()
    first.state.flush()
    assert not [k for k in store if k.startswith("sk|")]
    # as the previous layout left it: the story without "v", and its six band buckets stored
    words = frozenset(store["s|n0"]["words"])
    store["s|n0"] = {k: v for k, v in store["s|n0"].items() if k != "v"}
    for band in stories.bands(words):
        store["sk|" + band] = [["n0", T0]]

    again = Aggregator(Overlay(store), AggregatorConfig(dedupe_horizon_s=3600), DETECTOR, now_wall=0.0)
    copy = again.add(scored("n1", T0 + 60, tickers=["TSLA"], headline=SYNDICATED[1]), 1, 0, 0.0)
    assert copy.item.story_id == "n0" and copy.item.story_copies == 2
    again.prune(T0 + 86400)  # both forgotten past the horizon
    again.end_batch()
    again.state.flush()
    assert "s|n0" not in store and not [k for k in store if k.startswith("sk|")]
    assert len(again.stories._band_index()) == 0


def test_a_record_that_fails_after_founding_a_story_leaves_no_candidate_behind() -> None:
    """A record's writes are undone when it fails (dead-lettered); the band buckets beside the
    store are undone with them, so no later headline is compared to a story the store never held."""
    agg = Aggregator(Overlay({}), AggregatorConfig(), DETECTOR, now_wall=0.0)
    agg.add(scored("n0", T0, tickers=["TSLA"], headline=LAWSUIT), 0, 0, 0.0)
    assert len(agg.stories._band_index()) == 6
    fails = scored("x", T0 + 5, tickers=["XOM"], headline="Exxon refinery outage widens after fire at Baytown plant")
    try:
        with agg.state.savepoint():
            agg.add(fails, 0, 1, 0.0)
            assert len(agg.stories._band_index()) == 12  # listed while the record is in hand
            raise RuntimeError("a later stage fails on this record")
    except RuntimeError:
        pass
    assert agg.stories.story("x") is None
    assert len(agg.stories._band_index()) == 6
    # and a story forgotten while a record that then fails was in hand is listed again
    try:
        with agg.state.savepoint():
            agg.prune(T0 + 3 * 86400)  # as a window close the record brought about does
            assert agg.stories.story("n0") is None and len(agg.stories._band_index()) == 0
            raise RuntimeError("fails after forgetting")
    except RuntimeError:
        pass
    assert agg.stories.story("n0") is not None and len(agg.stories._band_index()) == 6
