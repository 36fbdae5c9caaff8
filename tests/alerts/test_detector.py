"""The detector's arithmetic and lifecycle, on hand-made windows."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from scipy import stats

from riskpulse.alerts.detector import Detector, alert_id, new_state, tail_z
from riskpulse.alerts.rules import Rules
from riskpulse.records import EvidenceHeadline, Trend

RULES = Rules.parse("defaults: {warmup_windows: 10, halflife_windows: 10, resolve_after_windows: 2, cooldown_windows: 3}")


def trend(w: int, count: int, negative: int, key: str = "AAPL") -> Trend:
    start = datetime.fromtimestamp(60 * w, timezone.utc)
    return Trend(key_type="ticker", key=key, window_start=start, window_end=datetime.fromtimestamp(60 * w + 60, timezone.utc),
                 count=count, negative=negative, neutral=count - negative, positive=0, mean_score=0.0,
                 negative_share=negative / count if count else 0.0,
                 top_negative=[EvidenceHeadline(id=f"n{w}", headline=f"bad news {w}", sentiment_score=-0.9)] if negative else [])


def feed(det: Detector, state: dict, rows: list[tuple[int, int]], first: int = 0) -> list:
    out = []
    for i, (count, neg) in enumerate(rows):
        out += det.observe(state, trend(first + i, count, neg))
    return out


def test_tail_z_matches_the_exact_poisson_and_negative_binomial_tails() -> None:
    # P(Poisson(4) >= 10) as a z
    assert tail_z(10, 4.0, 1.0) == pytest.approx(stats.norm.isf(stats.poisson.sf(9, 4.0)), rel=1e-6)
    n, p = 4.0 / (2.0 - 1.0), 1 / 2.0  # negative binomial with variance 2 x mean
    assert tail_z(10, 4.0, 2.0) == pytest.approx(stats.norm.isf(stats.nbinom.sf(9, n, p)), rel=1e-6)
    assert tail_z(10, 4.0, 2.0) < tail_z(10, 4.0, 1.0)  # over-dispersed keys need more to surprise
    assert tail_z(0, 4.0, 1.0) == -math.inf


def test_baseline_learns_mean_and_variance_with_a_guard_band() -> None:
    det, state = Detector(RULES, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    assert state["mean"] == pytest.approx(4.0, abs=0.05)
    assert state["var"] == pytest.approx(0.0, abs=0.05)
    assert state["n"] == 25  # the last 5 windows are still under test, not yet learned
    assert state["share"] == pytest.approx(0.2)


def test_no_alert_during_warmup_even_for_a_huge_spike() -> None:
    det, state = Detector(RULES, 60), new_state()
    assert feed(det, state, [(20, 4)] * 5 + [(60, 50)]) == []


def test_spike_fires_once_escalates_and_resolves_with_the_same_id() -> None:
    det, state = Detector(RULES, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    first = det.observe(state, trend(30, 24, 14))  # P(Poisson(4) >= 14) ~ 3e-5: z ~ 4, warning
    assert [a.status for a in first] == ["firing"] and first[0].severity == "warning"
    alert = first[0]
    assert alert.id == alert_id("ticker", "AAPL", 30 * 60)
    assert alert.observed["negative"] == 14 and alert.baseline["negative_mean"] == pytest.approx(4.0, abs=0.05)
    assert alert.top_headlines[0].headline == "bad news 30"
    assert "AAPL" in alert.summary and "z =" in alert.summary
    worse = det.observe(state, trend(31, 40, 30))
    assert [(a.status, a.severity, a.id) for a in worse] == [("firing", "critical", alert.id)]
    assert det.observe(state, trend(32, 40, 30)) == []  # still firing: nothing new to say
    calm = feed(det, state, [(20, 4)] * 2, first=33)
    assert [(a.status, a.id) for a in calm] == [("resolved", alert.id)]


def test_redelivered_or_older_windows_change_nothing() -> None:
    det, state = Detector(RULES, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    snapshot = {k: (list(v) if isinstance(v, list) else v) for k, v in state.items()}
    assert det.observe(state, trend(29, 20, 19)) == []
    assert det.observe(state, trend(5, 20, 19)) == []
    assert {k: (list(v) if isinstance(v, list) else v) for k, v in state.items()} == snapshot


def test_cooldown_holds_a_new_alert_back() -> None:
    det, state = Detector(RULES, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    assert det.observe(state, trend(30, 30, 20))
    resolved = feed(det, state, [(20, 4)] * 2, first=31)
    assert resolved[0].status == "resolved"  # at window 32: cooldown until window 36
    assert det.observe(state, trend(33, 30, 20)) == []
    again = feed(det, state, [(20, 4)] * 3 + [(30, 22)], first=34)
    assert [a.status for a in again] == ["firing"] and again[0].window_start.timestamp() == 37 * 60


def test_volume_surge_with_the_usual_share_is_not_a_negative_spike() -> None:
    det, state = Detector(RULES, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    assert det.observe(state, trend(30, 100, 20)) == []  # 5x news, still 20% negative


def test_minimum_volume_gate() -> None:
    rules = Rules.parse("defaults: {warmup_windows: 10, min_negative: 8}")
    det, state = Detector(rules, 60), new_state()
    feed(det, state, [(10, 0)] * 30)
    assert det.observe(state, trend(30, 10, 6)) == []  # surprising, but only 6 negatives


def test_silence_counts_as_zero_negatives_and_resolves_a_firing_key() -> None:
    det, state = Detector(RULES, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    assert det.observe(state, trend(30, 30, 20))[0].status == "firing"
    firing = {"ticker|AAPL"}
    states = {"ticker|AAPL": state}
    out = []
    for w in (31, 32):  # no news about AAPL at all
        out += det.close_window(60 * w, [], firing, states.get, states.__setitem__)
    assert [a.status for a in out] == ["resolved"] and firing == set()
    assert state["last"] == 32 * 60


def test_a_gap_in_the_news_is_filled_with_quiet_windows() -> None:
    det, state = Detector(RULES, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    det.observe(state, trend(200, 20, 4))
    assert state["mean"] < 0.1  # 170 silent windows taught the baseline to expect nothing


def test_a_page_needs_distinct_stories_not_copies_of_one() -> None:
    """judge: copies sees thirty negative copies, far above the baseline: critical by z, but they
    are two stories (fewer than critical_min_stories, 3): a warning. Three stories page."""
    rules = Rules.parse("defaults: {warmup_windows: 10, halflife_windows: 10, judge: copies}")
    for stories, severity in ((2, "warning"), (3, "critical")):
        det, state = Detector(rules, 60), new_state()
        feed(det, state, [(20, 4)] * 30)
        burst = trend(30, 40, 30).model_copy(update={"stories": 12, "negative_stories": stories})
        (alert,) = det.observe(state, burst)
        assert (alert.status, alert.severity) == ("firing", severity)
    # a trend from before stories were counted says nothing of them: z alone decides
    det, state = Detector(rules, 60), new_state()
    feed(det, state, [(20, 4)] * 30)
    assert det.observe(state, trend(30, 40, 30))[0].severity == "critical"
