"""Incidents without a broker: grouping and inhibition as functions of the alerts alone."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from riskpulse.alerts.incidents import Grouping, InhibitRule, incidents
from riskpulse.records import Alert, EvidenceHeadline

T0 = datetime(2026, 12, 5, 14, 0, tzinfo=timezone.utc)


def alert(key_type: str, key: str, stories: list[str], minute: int = 0, status: str = "firing",
          severity: str = "warning", rule: str = "default") -> Alert:
    start = T0 + timedelta(minutes=minute)
    return Alert(id=f"{key_type}-{key}-{minute}", status=status, severity=severity, key_type=key_type,  # type: ignore[arg-type]
                 key=key, window_start=start, window_end=start + timedelta(minutes=1), observed={}, baseline={},
                 rule=rule, summary=f"{key} negative", fired_at=start + timedelta(minutes=1),
                 top_headlines=[EvidenceHeadline(id=s, headline=f"headline {s}", sentiment_score=-0.8, story_id=s)
                                for s in (stories if status == "firing" else [])])


def burst() -> list[Alert]:
    """The burst the issue measured: one ticker and, from the same headlines, two topics."""
    tsla = [f"tsla-{k}" for k in range(5)]
    return [alert("ticker", "TSLA", tsla, severity="critical"),
            alert("topic", "Financials", tsla[:4], minute=1, severity="critical"),
            alert("topic", "Company | Product News", tsla[:3] + ["other-1"], minute=1)]


def test_one_burst_on_a_ticker_and_its_topics_is_one_incident_paging_once() -> None:
    (incident,) = incidents(burst())
    assert incident.status == "firing" and incident.severity == "critical"
    assert [m.alert.key for m in incident.notified] == ["TSLA"]  # the topics echo it: inhibited
    assert {m.alert.key: m.inhibited_by for m in incident.members} == {
        "TSLA": None, "Financials": "ticker-TSLA-0", "Company | Product News": "ticker-TSLA-0"}
    resolved = burst() + [alert(a.key_type, a.key, [], minute=m, status="resolved") for a, m in
                          zip(burst(), (0, 1, 1))]
    for r, a in zip(resolved[3:], burst()):
        assert r.id == a.id
    assert [i.status for i in incidents(resolved)] == ["resolved"]


def test_unrelated_alerts_are_incidents_of_their_own_and_a_topic_with_its_own_news_is_not_inhibited() -> None:
    alerts = [alert("ticker", "TSLA", [f"tsla-{k}" for k in range(5)]),
              alert("topic", "Energy", ["oil-1", "oil-2", "oil-3", "oil-4", "tsla-0"], minute=1),
              alert("ticker", "XOM", ["oil-1", "oil-2", "oil-3"], minute=30)]
    found = incidents(alerts)
    assert [[m.alert.key for m in i.members] for i in found] == [["TSLA"], ["Energy"], ["XOM"]]
    assert all(m.inhibited_by is None for i in found for m in i.members)
    assert len(incidents(alerts, Grouping(window_s=3600))) == 2  # within the hour, Energy and XOM share news


def test_the_same_key_firing_again_soon_is_the_same_incident_and_later_a_new_one() -> None:
    soon = [alert("ticker", "NVDA", ["a"]), alert("ticker", "NVDA", ["b"], minute=8)]
    assert len(incidents(soon)) == 1
    later = [alert("ticker", "NVDA", ["a"]), alert("ticker", "NVDA", ["b"], minute=90)]
    assert len(incidents(later)) == 2


def test_inhibition_rules_match_labels_and_equal_labels_like_alertmanager() -> None:
    critical_mutes_warning = (InhibitRule(source={"severity": "critical"}, target={"severity": "warning"},
                                          equal=("key",)),)
    alerts = [alert("ticker", "AMD", ["x"], severity="critical", rule="default"),
              alert("ticker", "AMD", ["y"], severity="warning", rule="spread", minute=2),
              alert("ticker", "INTC", ["z"], severity="warning", minute=2)]
    found = {m.alert.id: m.inhibited_by for i in incidents(alerts, inhibit=critical_mutes_warning) for m in i.members}
    assert found == {"ticker-AMD-0": None, "ticker-AMD-2": "ticker-AMD-0", "ticker-INTC-2": None}
    assert all(v is None for v in (m.inhibited_by for i in incidents(alerts, inhibit=()) for m in i.members))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 12))
def test_the_same_alerts_in_any_order_and_batching_give_the_same_incidents(seed: int, cut: int) -> None:
    """A replay, a redelivery (records repeated) or another sink's reading agree."""
    rng = random.Random(seed)
    stories = [f"s{k}" for k in range(12)]
    records = []
    for n in range(rng.randint(2, 10)):
        key_type, key = rng.choice([("ticker", "TSLA"), ("ticker", "AAPL"), ("topic", "Macro"), ("topic", "Tech")])
        made = alert(key_type, f"{key}", rng.sample(stories, rng.randint(1, 5)), minute=rng.randint(0, 40),
                     severity=rng.choice(["warning", "critical"]))
        records.append(made)
        if rng.random() < 0.4:
            records.append(alert(key_type, key, [], minute=int((made.window_start - T0).total_seconds() // 60),
                                 status="resolved"))
    expected = [(i.id, tuple((m.alert.id, m.alert.status, m.inhibited_by) for m in i.members)) for i in incidents(records)]
    shuffled = records + rng.sample(records, min(len(records), cut))  # redelivered
    rng.shuffle(shuffled)
    batches = [shuffled[k:k + cut] for k in range(0, len(shuffled), cut)]
    seen: list[Alert] = []
    for batch in batches:  # read batch by batch, the incidents recomputed each time
        seen += batch
        got = incidents(seen)
    assert [(i.id, tuple((m.alert.id, m.alert.status, m.inhibited_by) for m in i.members)) for i in got] == expected


def test_a_ticker_burst_across_two_topics_is_one_incident_though_their_evidence_samples_differ() -> None:
    """Each alert carries its five most negative stories: fourteen negatives about TSLA split over
    two topics give the topics other stories than the ticker's own five. Their evidence names
    TSLA: one incident, both topics muted echoes of the ticker's alert."""
    def named(a: Alert, tickers: list[str]) -> Alert:
        return a.model_copy(update={"top_headlines": [h.model_copy(update={"tickers": tickers}) for h in a.top_headlines]})

    ticker = named(alert("ticker", "TSLA", [f"t{k}" for k in range(5)], severity="critical"), ["TSLA"])
    even = named(alert("topic", "Stock Movement", ["t0", "t2", "t4", "t6", "t8"], minute=1), ["TSLA"])
    odd = named(alert("topic", "Markets", ["t1", "t3", "t5", "t7", "t9"], minute=1), ["TSLA"])
    (incident,) = incidents([ticker, even, odd])
    assert [m.alert.key for m in incident.notified] == ["TSLA"]
    # the same samples without tickers (records from before incidents): only the stories shared count
    plain = [alert("ticker", "TSLA", [f"t{k}" for k in range(5)]), alert("topic", "Stock Movement", ["t0", "t2", "t4", "t6", "t8"], 1),
             alert("topic", "Markets", ["t1", "t3", "t5", "t7", "t9"], 1)]
    assert [[m.alert.key for m in i.members] for i in incidents(plain)] == [["TSLA", "Stock Movement"], ["Markets"]]
    # a topic whose evidence is mostly other companies' news is neither muted nor grouped by it
    other = named(alert("topic", "Energy", ["x1", "x2", "x3"], minute=1), ["XOM"])
    assert [[m.alert.key for m in i.notified] for i in incidents([ticker, other])] == [["TSLA"], ["Energy"]]


def test_an_echo_stays_muted_when_its_cause_resolves_first_and_a_label_rule_only_while_it_fires() -> None:
    ticker, topic, _ = burst()
    ticker_over = alert("ticker", "TSLA", [], status="resolved")  # the ticker resolves a window before the topic
    (incident,) = incidents([ticker, topic, ticker_over])
    assert [m.alert.key for m in incident.members if m.inhibited_by] == ["Financials"]
    by_labels = (InhibitRule(source={"key_type": "ticker"}, target={"key_type": "topic"}),)
    (incident,) = incidents([ticker, topic, ticker_over], inhibit=by_labels)
    assert all(m.inhibited_by is None for m in incident.members)  # Alertmanager's: the source no longer fires
