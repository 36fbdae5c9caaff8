"""Incidents: the alerts that are one event, grouped, and the alerts that only echo a cause, inhibited.

One burst of negative news about a ticker fires the ticker's alert and, from the same headlines,
alerts on the topics those headlines fall under: three pages for one event. Prometheus
Alertmanager, the anchor every operations team knows, groups related alerts into one
notification and inhibits the echoes of a cause; riskpulse does both, and can also tell related
alerts by what they are made of (their evidence stories), which labels alone cannot.

Plain functions of a set of alert records, with no time of arrival and no state: the same alerts
in any order or batching give the same incidents, so a replay, a redelivery or two sinks reading
the alerts topic agree (tests/alerts/test_incidents.py). Notification timing (group_wait,
group_interval, repeat_interval) is the delivery's business, over these incidents.

- **Grouping.** Two alerts belong to one incident when their first windows are within
  ``window_s`` of each other and either they carry the same values of the ``by`` labels (by default
  the key: the same ticker firing again soon is the same event) or their evidence overlaps: at
  least ``min_overlap`` of the smaller alert's evidence stories are the other's too, or (one of
  them a ticker alert) of the other's evidence names that ticker. Incidents are
  the connected groups; an incident's id comes from its earliest alert, so it is stable while the
  incident grows (two incidents a later alert bridges become one, under the earlier's id).
- **Inhibition.** Rules in Alertmanager's spirit: an alert matching ``source`` inhibits alerts
  matching ``target`` that agree on the ``equal`` labels, within ``window_s``, while the source
  fires; and, beyond Alertmanager, a rule with ``min_evidence_share`` mutes only targets with at
  least that share of their evidence the source's news (for a ticker source: naming the
  ticker; else: among the source's stories), and keeps them muted when the source resolves
  first (the echo of a cause is an echo however the two end). Default: a ticker alert inhibits
  the topic alerts whose evidence is mostly that ticker's news. An inhibited alert is kept (and
  shown) as inhibited and is not notified on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

from riskpulse.records import Alert

LABELS = ("alertname", "key_type", "key", "severity")


def labels(alert: Alert) -> dict[str, str]:
    """An alert's labels, as Alertmanager would carry them."""
    return {"alertname": alert.rule, "key_type": alert.key_type, "key": alert.key, "severity": alert.severity}


def evidence(records: Iterable[Alert]) -> frozenset[str]:
    """The stories an alert is made of, over its records (a resolved record carries none)."""
    return frozenset(e.story_id or e.id for r in records for e in r.top_headlines)


def named(records: Iterable[Alert]) -> dict[str, frozenset[str]]:
    """The tickers each evidence story names, where the records say (those before incidents do not)."""
    out: dict[str, frozenset[str]] = {}
    for r in records:
        for e in r.top_headlines:
            if e.tickers is not None:
                out[e.story_id or e.id] = out.get(e.story_id or e.id, frozenset()) | frozenset(e.tickers)
    return out


@dataclass(frozen=True)
class Grouping:
    by: tuple[str, ...] = ("key_type", "key")
    min_overlap: float = 0.5
    window_s: float = 600.0


@dataclass(frozen=True)
class InhibitRule:
    source: dict[str, str]
    target: dict[str, str]
    equal: tuple[str, ...] = ()
    min_evidence_share: float | None = None
    window_s: float = 600.0

    def matches(self, matchers: dict[str, str], alert_labels: dict[str, str]) -> bool:
        return all(alert_labels.get(k) == v for k, v in matchers.items())


DEFAULT_INHIBIT = (InhibitRule(source={"key_type": "ticker"}, target={"key_type": "topic"}, min_evidence_share=0.5),)


@dataclass(frozen=True)
class Member:
    """One alert as an incident holds it: its latest record, and its evidence over all records."""

    alert: Alert
    evidence: frozenset[str]
    inhibited_by: str | None = None
    named: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return self.alert.status == "firing"

    def share_about(self, ticker: str) -> float | None:
        """How much of this alert's evidence names ``ticker`` (None: its evidence does not say).
        A topic alert's evidence is its five most negative stories; a ticker alert's, its own five:
        two samples of one burst need not share stories, but the topic's all name the ticker."""
        known = [story for story in self.evidence if story in self.named]
        if not known:
            return None
        return sum(ticker in self.named[story] for story in known) / len(known)


@dataclass(frozen=True)
class Incident:
    id: str
    members: tuple[Member, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        return "firing" if any(m.firing for m in self.members) else "resolved"

    @property
    def severity(self) -> str:
        firing = [m for m in self.members if m.firing and m.inhibited_by is None] or list(self.members)
        return "critical" if any(m.alert.severity == "critical" for m in firing) else "warning"

    @property
    def notified(self) -> tuple[Member, ...]:
        """The members a notification is about: all but the inhibited ones."""
        return tuple(m for m in self.members if m.inhibited_by is None)


def latest(records: Iterable[Alert]) -> dict[str, Member]:
    """Each alert id once: its latest record (a later window, then resolved over firing), with the
    evidence of all its records."""
    by_id: dict[str, list[Alert]] = {}
    for record in records:
        by_id.setdefault(record.id, []).append(record)
    out = {}
    for alert_id, recs in by_id.items():
        last = max(recs, key=lambda r: (r.window_end, r.status == "resolved", r.fired_at, r.severity == "critical"))
        out[alert_id] = Member(last, evidence(recs), named=named(recs))
    return out


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def _share(target: Member, source: Member) -> float:
    """How much of ``target``'s evidence is ``source``'s news: for a ticker source, the share of
    the target's evidence naming the ticker (where the evidence says), else of its stories that
    are the source's too."""
    if source.alert.key_type == "ticker":
        about = target.share_about(source.alert.key)
        if about is not None:
            return about
    if not target.evidence:
        return 0.0
    return len(target.evidence & source.evidence) / len(target.evidence)


def _related(a: Member, b: Member, min_overlap: float) -> bool:
    """One event by what the two are made of: shared stories, or one's evidence about the other's ticker."""
    if _overlap(a.evidence, b.evidence) >= min_overlap:
        return True
    return any(x.alert.key_type == "ticker" and (y.share_about(x.alert.key) or 0.0) >= min_overlap
               for x, y in ((a, b), (b, a)))


def _near(a: Alert, b: Alert, window_s: float) -> bool:
    return abs((a.window_start - b.window_start).total_seconds()) <= window_s


def inhibitions(members: dict[str, Member], rules: tuple[InhibitRule, ...] = DEFAULT_INHIBIT) -> dict[str, str]:
    """Alert id -> the id of the alert that inhibits it (the earliest such source: order-free)."""
    out: dict[str, str] = {}
    ids = sorted(members)
    for target_id in ids:
        target = members[target_id]
        t_labels = labels(target.alert)
        for rule in rules:
            if not rule.matches(rule.target, t_labels):
                continue
            for source_id in ids:
                source = members[source_id]
                s_labels = labels(source.alert)
                # an echo made of the cause's news stays muted when the cause resolves first; a rule
                # of labels alone mutes only while its source fires, as Alertmanager's do
                if (source_id == target_id or (not source.firing and rule.min_evidence_share is None)
                        or not rule.matches(rule.source, s_labels)
                        or any(s_labels.get(k) != t_labels.get(k) for k in rule.equal)
                        or not _near(source.alert, target.alert, rule.window_s)):
                    continue
                if rule.min_evidence_share is not None and _share(target, source) < rule.min_evidence_share:
                    continue
                out[target_id] = min(source_id, out.get(target_id, source_id))
    return out


def incidents(records: Iterable[Alert], grouping: Grouping = Grouping(),
              inhibit: tuple[InhibitRule, ...] = DEFAULT_INHIBIT) -> list[Incident]:
    """The incidents the alerts make, earliest first (see the module's docstring)."""
    members = latest(records)
    inhibited = inhibitions(members, inhibit)
    members = {i: Member(m.alert, m.evidence, inhibited.get(i), m.named) for i, m in members.items()}
    parent = {i: i for i in members}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    ids = sorted(members)
    for n, a in enumerate(ids):
        for b in ids[n + 1:]:
            ma, mb = members[a], members[b]
            if not _near(ma.alert, mb.alert, grouping.window_s):
                continue
            la, lb = labels(ma.alert), labels(mb.alert)
            same = bool(grouping.by) and all(la.get(k) == lb.get(k) for k in grouping.by)
            if same or _related(ma, mb, grouping.min_overlap):
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[Member]] = {}
    for i in ids:
        groups.setdefault(find(i), []).append(members[i])
    out = []
    for group in groups.values():
        group.sort(key=lambda m: (m.alert.window_start, m.alert.id))
        first = group[0].alert
        digest = hashlib.sha256(f"{first.id}".encode()).hexdigest()[:16]
        out.append(Incident(f"inc-{digest}", tuple(group)))
    return sorted(out, key=lambda inc: (inc.members[0].alert.window_start, inc.id))
