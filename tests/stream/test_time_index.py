"""The time indexes of the stages' state (stream/core/time_index.py) stay small under a sustained
stream: each stored list is a page of bounded size, however many members a bucket gets. Before
pages, one list per shard held a whole bucket and was written whole with every new member; at a
sustained rate it grew past Kafka's 1 MB for a changelog record, and the stage stopped."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings as hyp_settings, strategies as st

from riskpulse.stream.core.aggregator import Aggregator, AggregatorConfig
from riskpulse.stream.core.shards import INDEX_SHARDS
from riskpulse.stream.core.revisions import Revisions
from riskpulse.stream.core.state import Overlay
from riskpulse.stream.core.time_index import PAGE, TimeIndex

from .test_core import DETECTOR, T0, LoggedStore, crash_in_flush, scored

INDEX = TimeIndex("xb", "x_buckets", 600)
LIMIT = 16_000  # bytes of JSON per stored value: a page of ids is about 2 KB


def _key_of(member: str) -> str:
    """The shard list ``member`` goes to at T0."""
    state = Overlay({})
    INDEX.add(state, member, T0)
    return next(k for k in state._cache if k.startswith("xb|"))


def largest(store: dict[str, Any], prefix: str = "") -> tuple[int, str]:
    return max((len(json.dumps(v)), k) for k, v in store.items() if k.startswith(prefix))


def test_a_bucket_of_sixty_thousand_members_is_stored_in_pages_listed_once_each_and_pruned_whole() -> None:
    store: dict[str, Any] = {}
    members = [f"d|{k:024x}" for k in range(60_000)]
    for start in range(0, len(members), 500):  # batches of 500, one bucket of event time
        state = Overlay(store)
        for k, member in enumerate(members[start:start + 500]):
            INDEX.add(state, member, T0 + (start + k) * 0.005)
        state.flush()
    size, key = largest(store, "xb|")
    assert size < LIMIT, f"{key} holds {size} bytes"  # one list per shard: 3,750 ids, 75 KB
    state = Overlay(store)
    assert sorted(INDEX.members(state)) == members
    forgotten: list[str] = []
    INDEX.prune(state, 0, T0 + 10_000, lambda member, end: forgotten.append(member))
    state.flush()
    assert sorted(forgotten) == members
    assert not [k for k in store if k.startswith("xb|")] and store["x_buckets"] == []


def test_a_list_written_before_pages_is_read_whole_and_becomes_a_page_at_the_next_member() -> None:
    bucket = (T0 // 600) * 600
    old = [f"old{k}" for k in range(1_000)]
    store: dict[str, Any] = {f"xb|{bucket}|3": old, "x_buckets": [bucket]}
    new = next(f"new{k}" for k in range(100) if INDEX_SHARDS and f"xb|{bucket}|3" in _key_of(f"new{k}"))
    state = Overlay(store)
    INDEX.add(state, new, T0)
    state.flush()
    assert store[f"xb|{bucket}|3|pages"] == 1 and store[f"xb|{bucket}|3|1"] == old and store[f"xb|{bucket}|3"] == [new]
    assert set(INDEX.members(Overlay(store))) == set(old) | {new}
    state = Overlay(store)
    INDEX.prune(state, 0, T0 + 10_000, lambda member, end: None)
    state.flush()
    assert [k for k in store if k.startswith("xb|")] == []


@hyp_settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.lists(st.integers(1, 400), min_size=1, max_size=6), st.integers(0, 5),
       st.integers(0, 2_000))
def test_a_crash_at_any_write_keeps_every_member_whose_value_survived_listed(
        seed: int, batches: list[int], crash_batch: int, kept: int) -> None:
    """Each batch writes its members' own values and lists them (the listing early); a kill -9 in
    one batch's flush keeps a prefix of its writes, and the batch is read again."""
    rng = random.Random(seed)
    store = LoggedStore()
    n = 0
    for b, size in enumerate(batches):
        batch = [f"m{n + k}-{rng.randrange(4)}" for k in range(size)]  # a few members come again
        n += size
        for attempt in (0, 1):
            state = Overlay(store)
            for member in batch:
                state.set("v|" + member, 1)
                INDEX.add(state, member, T0 + rng.uniform(0, 1_200))
            if b == crash_batch and attempt == 0:
                crash_in_flush(store, state, kept)
                continue  # read again
            state.flush()
            break
        listed = set(INDEX.members(Overlay(store)))
        assert {k[2:] for k in store if k.startswith("v|")} <= listed
        assert all(len(v) <= PAGE for k, v in store.items() if k.startswith("xb|") and isinstance(v, list))


def test_a_sustained_stream_of_distinct_headlines_keeps_every_counting_value_small() -> None:
    """Production defaults, 20,000 distinct items at 400 a second of event time into one counting
    partition: its dedupe and story indexes are the values that grew with the rate."""
    store: dict[str, Any] = {}
    agg = Aggregator(Overlay(store), AggregatorConfig(), DETECTOR, now_wall=float(T0), partitions=range(1))
    for start in range(0, 20_000, 500):
        state = agg.state = Overlay(store)
        for k in range(start, start + 500):
            item = scored(f"i{k}", T0 + k / 400, tickers=[f"T{k % 300}"], headline=f"company {k} files report number {k * 7}")
            with state.savepoint():
                agg.add(item, 0, k, float(T0))
        agg.end_batch()
        state.flush()
    assert sum(1 for k in store if k.startswith("d|")) == 20_000
    size, key = largest(store)
    assert size < LIMIT, f"{key} holds {size} bytes"


def test_a_sustained_stream_of_distinct_ids_keeps_every_revision_value_small() -> None:
    """The scoring stage's revisions of one news partition: an hour's bucket of 20,000 ids."""
    store: dict[str, Any] = {}
    for start in range(0, 20_000, 500):
        state = Overlay(store)
        revisions = Revisions(state, 86_400)
        for k in range(start, start + 500):
            revisions.observe(scored(f"{k:032x}", T0 + k / 10), k, k % 4)
        state.flush()
    assert sum(1 for k in store if k.startswith("r|")) == 20_000
    assert 20_000 > INDEX_SHARDS * PAGE  # more than one page per shard: the case that grew
    size, key = largest(store)
    assert size < LIMIT, f"{key} holds {size} bytes"


def test_a_feed_naming_new_tickers_keeps_every_detector_value_small_and_silent_keys_still_go() -> None:
    """Production defaults, 1,000 items naming 20 new tickers each (20,000 keys) into one store with
    the detector, as the judges keep it: the index of detector states by their latest window grew
    with the distinct keys of a week (one dict per index shard, 44 KB here; past Kafka's 1 MB at
    ~500,000 keys, under an hour of such a feed, and the judging stage stopped)."""
    store: dict[str, Any] = {}
    cfg = AggregatorConfig()
    agg = Aggregator(Overlay(store), cfg, DETECTOR, now_wall=float(T0), partitions=range(1))
    for start in range(0, 1_000, 100):
        state = agg.state = Overlay(store)
        for k in range(start, start + 100):
            item = scored(f"i{k}", T0 + k / 10, tickers=[f"N{k}X{j}" for j in range(20)],
                          headline=f"company {k} files report number {k * 7}")
            with state.savepoint():
                agg.add(item, 0, k, float(T0))
        while (close := agg.next_close(float(T0), until=T0 + (start + 100) / 10)) is not None:  # behind the batch
            agg.commit(close)
        agg.end_batch()
        state.flush()
    state = agg.state = Overlay(store)
    while (close := agg.next_close(float(T0), until=T0 + 200)) is not None:
        agg.commit(close)
    agg.end_batch()
    state.flush()
    assert sum(1 for k in store if k.startswith("k|ticker|")) == 20_000
    size, key = largest(store)
    assert size < LIMIT, f"{key} holds {size} bytes"
    # a week and a day later, one more item: every silent key is gone, the new one kept
    state = agg.state = Overlay(store)
    late = T0 + cfg.key_ttl_s + 86_400
    agg.add(scored("late", late, tickers=["LATE"]), 0, 1_000, float(T0))
    while (close := agg.next_close(float(T0), until=late + 200)) is not None:
        agg.commit(close)
    agg.end_batch()
    state.flush()
    assert [k for k in store if k.startswith("k|ticker|")] == ["k|ticker|LATE"]


def test_the_detector_index_of_a_release_before_pages_is_read_once_and_a_firing_key_is_kept() -> None:
    from riskpulse.stream.core.detection import FIRING, KEY_INDEX, Detection

    ttl, now = 86_400.0, float(T0 + 10 * 86_400)
    store: dict[str, Any] = {"k|ticker|OLD": {"last": T0}, "k|ticker|NEW": {"last": now - 600},
                             "k|ticker|HOT": {"last": T0}, "ki|3": {"ticker|OLD": T0, "ticker|NEW": now - 600},
                             "ki|5": {"ticker|HOT": T0}, FIRING: ["ticker|HOT"]}
    state = Overlay(store)
    Detection.prune(state, now, ttl)
    state.flush()
    assert "k|ticker|OLD" not in store and not [k for k in store if k.startswith("ki|")]
    assert set(KEY_INDEX.members(Overlay(store))) == {"ticker|NEW", "ticker|HOT"}
    store[FIRING] = []  # HOT resolved: both go once silent past the TTL
    state = Overlay(store)
    Detection.prune(state, now + ttl + 7_200, ttl)
    state.flush()
    assert not [k for k in store if k.startswith("k|")] and not list(KEY_INDEX.members(Overlay(store)))


def test_tens_of_thousands_of_firing_keys_are_kept_in_small_values_and_an_old_list_is_replaced() -> None:
    """A feed can keep ~64,000 keys firing (16,000 keys a window, each three quiet windows from
    resolving); one list of them all was 1.2 MB, past Kafka's 1 MB for a record."""
    from riskpulse.stream.core.detection import FIRING, Detection, Verdicts, firing_keys

    firing = sorted(f"ticker|F{k:07d}" for k in range(64_000))
    store: dict[str, Any] = {FIRING: ["ticker|OLD"]}  # as a release before the shards left it
    state = Overlay(store)
    assert firing_keys(state) == {"ticker|OLD"}
    Detection(DETECTOR, 60).commit(state, T0, Verdicts([], firing=firing))
    state.flush()
    assert FIRING not in store and firing_keys(Overlay(store)) == set(firing)
    size, key = largest(store)
    assert size < 8 * LIMIT, f"{key} holds {size} bytes"  # 16 shards: ~76 KB each at this count
    state = Overlay(store)
    Detection(DETECTOR, 60).commit(state, T0 + 60, Verdicts([], firing=firing[:10]))
    state.flush()
    assert firing_keys(Overlay(store)) == set(firing[:10])


def test_thousands_of_spreading_stories_with_long_ids_keep_every_value_small_and_each_resolves_once() -> None:
    """6,000 stories firing at once with 200-character ids (the longest an id may be): one list of
    them all was 1.2 MB. Listed by their latest copy, each resolves once its pick-up is quiet."""
    from riskpulse.stream.core.spread import SPREAD_FIRING, SpreadConfig, commit_spread, due_alerts, spread_alert
    from riskpulse.stream.core.story_state import Stories

    config = SpreadConfig()
    store: dict[str, Any] = {}
    ids = [f"{k:06d}" + "x" * 194 for k in range(6_000)]
    for k, story_id in enumerate(ids):
        ts = T0 + k * 0.3  # half an hour of them
        store["s|" + story_id] = {"ts": ts, "last": ts + 60, "copies": 5, "sources": [f"s{j}" for j in range(5)],
                                  "applied": {}, "seen": {}, "scored": 5, "negative": 5,
                                  "timeline": [[ts + 15 * j, f"s{j}", "Acme sued", f"c{j}",
                                                                            -0.8, None] for j in range(5)]}
    state = Overlay(store)
    stories = Stories(state, 86_400)
    for story_id in ids:
        commit_spread(stories, state, story_id, spread_alert(story_id, state.get("s|" + story_id), config), {})
    state.flush()
    size, key = largest(store, "sfb|")
    assert size < LIMIT, f"{key} holds {size} bytes"
    assert largest({k: v for k, v in store.items() if not k.startswith("s|")})[0] < LIMIT

    halfway = T0 + 900 + 60 + config.within_s  # the first half's pick-up has been quiet for the span
    state = Overlay(store)
    stories = Stories(state, 86_400)
    resolved, _ = due_alerts(stories, state, config, {}, halfway)
    assert {a.status for _, a in resolved} == {"resolved"} and 2_000 < len(resolved) < 3_000
    for story_id, alert in resolved:
        commit_spread(stories, state, story_id, alert, {})
    state.flush()
    state = Overlay(store)
    stories = Stories(state, 86_400)
    rest, _ = due_alerts(stories, state, config, {}, T0 + 3 * 3600)
    assert sorted(s for s, _ in resolved + rest) == ids  # every story resolved, once
    for story_id, alert in rest:
        commit_spread(stories, state, story_id, alert, {})
    state.flush()
    assert not [k for k in store if k.startswith("sfb|")]

    # the list a release before the index kept is read once
    store["s|" + ids[0]].pop("spread_resolved")
    store[SPREAD_FIRING] = [ids[0]]
    state = Overlay(store)
    again, _ = due_alerts(Stories(state, 86_400), state, config, {}, T0 + 3 * 3600)
    state.flush()
    assert [s for s, _ in again] == [ids[0]] and SPREAD_FIRING not in store
