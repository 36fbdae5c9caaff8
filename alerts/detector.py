"""Negative-spike detection against each key's own baseline, one closed window at a time.

Per key (a topic or a ticker) the detector keeps an exponentially weighted mean and variance
of the negative count per window. A window is anomalous when the negatives of the last 1, 2,
3 or 5 windows stand ``z`` baseline deviations above what the baseline expects for that many
windows (a short scan: a sharp spike fires at once, a burst spread over a few windows fires
on its sum), and the window's negative share is both high in absolute terms and above the
key's usual share (so a surge of *all* news about a key is not a negative spike).

The deviation uses ``max(variance, mean)``: negatives are counts, at least Poisson-noisy,
and an EWMA variance of a quiet key underestimates that. Windows without news about a key
count as zero negatives. Anomalous windows enter the baseline winsorised, so a burst does not
teach the baseline to expect bursts, while a lasting level shift is still absorbed.

Pure and deterministic: state is a JSON-able dict (a Faust table value in the worker, a plain
dict in the backtest), the same windows in the same order give the same alerts, and an alert's
id comes from its key and first window, so a redelivered alert is the same alert.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timezone
from typing import Any, Callable

from scipy import special

from riskpulse.records import Alert, EvidenceHeadline, Trend

from .rules import Rule, Rules

SCAN = (1, 2, 3, 5)  # window spans whose negative sums are tested
MAX_GAP_STEPS = 300  # longer silences decay the baseline in one jump (10 half-lives by default)


def alert_id(key_type: str, key: str, first_window: int) -> str:
    return hashlib.sha256(f"{key_type}|{key}|{first_window}".encode()).hexdigest()[:32]


def new_state() -> dict[str, Any]:
    return {"n": 0, "mean": 0.0, "var": 0.0, "share": 0.0, "share_n": 0, "last": None, "recent": [],
            "pending": [],
            "alert": None, "quiet": 0, "cooldown_until": None}


def _alpha(rule: Rule) -> float:
    return 1.0 - 0.5 ** (1.0 / rule.halflife_windows)


def _update(state: dict[str, Any], negative: float, alpha: float) -> None:
    diff = negative - state["mean"]
    incr = alpha * diff
    state["mean"] += incr
    state["var"] = (1 - alpha) * (state["var"] + diff * incr)


def tail_z(observed: float, mean: float, dispersion: float) -> float:
    """How surprising ``observed`` or more is, as the Gaussian z with the same upper tail.

    Counts are skewed: at a mean of 2, "mean + 4 sd" happens a hundred times more often than a
    Gaussian 4-sd event. The exact tail of a Poisson (or, when the key's counts vary more than
    Poisson, a negative binomial with the same mean and variance) keeps thresholds honest at
    every volume, so one ``warning_z`` means the same false-alert rate for busy and quiet keys.
    """
    if observed <= 0:
        return -math.inf
    mean = max(mean, 1e-3)
    if dispersion <= 1.0 + 1e-9:
        p = special.gammainc(observed, mean)  # P(Poisson(mean) >= observed)
    else:
        n = mean / (dispersion - 1.0)  # negative binomial: variance = mean * dispersion
        p = special.betainc(observed, n, 1.0 - 1.0 / dispersion)  # P(NB >= observed)
    p = min(max(float(p), 1e-300), 1.0)
    return float(-special.ndtri(p))


def deviation(state: dict[str, Any], recent: list[int]) -> tuple[float, int]:
    """Largest tail z over the scan spans ending now, and its span."""
    dispersion = state["var"] / state["mean"] if state["mean"] > 0 else 1.0
    best, span = -math.inf, 1
    for k in SCAN:
        if len(recent) < k:
            break
        z = tail_z(sum(recent[-k:]), k * state["mean"], dispersion)
        if z > best:
            best, span = z, k
    return best, span


def judged(trend: Trend, rule: Rule) -> tuple[int, int, float]:
    """The window's count, negatives and negative share as the rule judges them: distinct
    stories by default, every copy with ``judge: copies`` (and for trends from a release before
    stories, which did not count them)."""
    if rule.judge == "stories" and trend.stories is not None and trend.negative_stories is not None:
        stories, negative = trend.stories, trend.negative_stories
        return stories, negative, round(negative / stories, 6) if stories else 0.0
    return trend.count, trend.negative, trend.negative_share


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class Detector:
    """Feeds closed windows to per-key states; returns the alerts (firing or resolved) they cause."""

    def __init__(self, rules: Rules, window_s: int) -> None:
        self.rules = rules
        self.window_s = window_s

    @staticmethod
    def new_state() -> dict[str, Any]:
        return new_state()

    def observe(self, state: dict[str, Any], trend: Trend) -> list[Alert]:
        """One closed window of one key; ``state`` (from :func:`new_state`) is updated in place.

        Windows at or before the last one seen are ignored: redelivery changes nothing.
        """
        start = int(trend.window_start.timestamp())
        named = self.rules.rule_for(trend.key_type, trend.key)
        count, negative, share = judged(trend, named[1])
        return self._advance_to(state, trend.key_type, trend.key, start, count, negative, share, trend.top_negative,
                                copies=(trend.count, trend.negative), named=named, stories=trend.negative_stories)

    def close_window(self, start: int, closed: list[Trend], firing: set[str],
                     load: Callable[[str], dict[str, Any] | None], save: Callable[[str, dict[str, Any]], None]) -> list[Alert]:
        """Every key's trend of one closed window, then the firing keys that had no news in it.

        ``load``/``save`` reach the per-key states (a Faust table in the worker, a dict in the
        backtest); ``firing`` ("key_type|key") is updated in place.
        """
        out: list[Alert] = []
        seen = set()
        for trend in closed:
            key = f"{trend.key_type}|{trend.key}"
            seen.add(key)
            state = load(key) or new_state()
            out += self.observe(state, trend)
            save(key, state)
        for key in sorted(firing - seen):
            state = load(key)
            if state is not None:
                key_type, name = key.split("|", 1)
                out += self.quiet_window(state, key_type, name, start)
                save(key, state)
        for alert in out:
            if alert.status == "firing":
                firing.add(f"{alert.key_type}|{alert.key}")
            else:
                firing.discard(f"{alert.key_type}|{alert.key}")
        return out

    def quiet_window(self, state: dict[str, Any], key_type: str, key: str, start: int) -> list[Alert]:
        """A closed window without news about the key (lets a firing alert resolve in silence)."""
        return self._advance_to(state, key_type, key, start, 0, 0, 0.0, [])

    def _advance_to(self, state: dict[str, Any], key_type: str, key: str, start: int, count: int, negative: int,
                    share: float, evidence: list[EvidenceHeadline], copies: tuple[int, int] | None = None,
                    named: tuple[str, Rule] | None = None, stories: int | None = None) -> list[Alert]:
        """``stories``: distinct negative stories in the window (None: not known, no minimum applies)."""
        last = state["last"]
        if last is not None and start <= last:
            return []
        name, rule = named or self.rules.rule_for(key_type, key)
        out: list[Alert] = []
        if last is not None:
            gap = (start - last) // self.window_s - 1
            steps = min(gap, MAX_GAP_STEPS)
            if gap > steps:  # a long silence: decay in one jump, no alerts to tell about it
                decay = (1 - _alpha(rule)) ** (gap - steps)
                state["mean"] *= decay
                state["var"] *= decay
                state["n"] += gap - steps
            for i in range(steps, 0, -1):
                window = start - i * self.window_s
                if state["alert"] is None:
                    self._silent_step(state, rule, window)  # nothing can fire on zero negatives
                else:
                    out += self._step(state, key_type, key, name, rule, window, 0, 0, 0.0, [])
        out += self._step(state, key_type, key, name, rule, start, count, negative, share, evidence, copies, stories)
        return out

    def _step(self, state: dict[str, Any], key_type: str, key: str, name: str, rule: Rule, start: int,
              count: int, negative: int, share: float, evidence: list[EvidenceHeadline],
              copies: tuple[int, int] | None = None, stories: int | None = None) -> list[Alert]:
        state["last"] = start
        recent = (state["recent"] + [negative])[-max(SCAN):]
        state["recent"] = recent
        z, span = deviation(state, recent)
        baseline_share = state["share"]
        warm = state["n"] >= rule.warmup_windows
        span_negative = sum(recent[-span:])
        anomalous = (warm and z >= rule.warning_z and span_negative >= rule.min_negative and negative > 0
                     and share >= rule.min_share and share >= baseline_share + rule.min_share_lift)
        severity = ("critical" if z >= rule.critical_z and (stories is None or stories >= rule.critical_min_stories)
                    else "warning")
        sd = math.sqrt(max(state["var"], state["mean"], 0.25))
        figures = {"observed": {"negative": float(negative), "count": float(count), "negative_share": round(share, 4),
                                "z": round(z, 3), "span_windows": float(span), "span_negative": float(span_negative)}
                   | ({"copies": float(copies[0]), "negative_copies": float(copies[1])}
                      if copies is not None and rule.judge == "stories" else {}),
                   "baseline": {"negative_mean": round(state["mean"], 4), "negative_sd": round(sd, 4),
                                "negative_share": round(baseline_share, 4), "windows": float(state["n"])}}
        out: list[Alert] = []
        alert = state["alert"]
        cooling = state["cooldown_until"] is not None and start < state["cooldown_until"]
        if alert is None and anomalous and not cooling:
            alert = state["alert"] = {"id": alert_id(key_type, key, start), "severity": severity, "first": start}
            state["quiet"] = 0
            out.append(self._alert(alert, "firing", key_type, key, name, start, figures, evidence))
        elif alert is not None:
            if anomalous:
                state["quiet"] = 0
                if severity == "critical" and alert["severity"] == "warning":  # escalation is news
                    alert["severity"] = "critical"
                    out.append(self._alert(alert, "firing", key_type, key, name, start, figures, evidence))
            else:
                state["quiet"] += 1
                if state["quiet"] >= rule.resolve_after_windows:
                    out.append(self._alert(alert, "resolved", key_type, key, name, start, figures, []))
                    state["alert"] = None
                    state["quiet"] = 0
                    state["cooldown_until"] = start + (rule.cooldown_windows + 1) * self.window_s
        # the baseline learns a window only once it has left the scan (a guard band): a burst is
        # never part of the baseline it is tested against; anomalous windows enter clipped
        state["pending"] = state["pending"] + [[negative, count, share, warm and z >= rule.warning_z]]
        while len(state["pending"]) > max(SCAN):
            old_neg, old_count, old_share, was_anomalous = state["pending"].pop(0)
            self._learn(state, rule, old_neg, old_count, old_share, was_anomalous)
        return out

    def _silent_step(self, state: dict[str, Any], rule: Rule, start: int) -> None:
        """:meth:`_step` for a window without news while no alert is firing, without the tail arithmetic.

        Sparse keys (a ticker mentioned once an hour) make most windows silent; this keeps a
        window close cheap for the event loop.
        """
        state["last"] = start
        state["recent"] = (state["recent"] + [0])[-max(SCAN):]
        state["pending"] = state["pending"] + [[0, 0, 0.0, False]]
        while len(state["pending"]) > max(SCAN):
            old_neg, old_count, old_share, was_anomalous = state["pending"].pop(0)
            self._learn(state, rule, old_neg, old_count, old_share, was_anomalous)

    @staticmethod
    def _learn(state: dict[str, Any], rule: Rule, negative: int, count: int, share: float, anomalous: bool) -> None:
        alpha = max(_alpha(rule), 1.0 / (state["n"] + 1))  # a plain mean until the EWMA has enough history
        value = float(negative)
        if anomalous:
            value = min(value, state["mean"] + rule.warning_z * math.sqrt(max(state["var"], state["mean"], 0.25)))
        _update(state, value, alpha)
        if count > 0:
            state["share"] += max(alpha, 1.0 / (state["share_n"] + 1)) * (share - state["share"])
            state["share_n"] += 1
        state["n"] += 1

    def _alert(self, alert: dict[str, Any], status: str, key_type: str, key: str, rule_name: str, start: int,
               figures: dict[str, dict[str, float]], evidence: list[EvidenceHeadline]) -> Alert:
        obs, base = figures["observed"], figures["baseline"]
        minutes = self.window_s / 60
        unit = " stories" if "copies" in obs else ""
        copies = f" ({int(obs['negative_copies'])} negative copies)" if "copies" in obs else ""
        if status == "firing":
            summary = (f"{alert['severity'].upper()}: negative news on {key_type} {key}: {int(obs['negative'])} of "
                       f"{int(obs['count'])}{unit} in the {minutes:g}-min window{copies} ({obs['negative_share']:.0%} negative, usually "
                       f"{base['negative_share']:.0%}); baseline {base['negative_mean']:.1f} ± {base['negative_sd']:.1f} "
                       f"per window, z = {obs['z']:.1f}")
        else:
            summary = f"RESOLVED: negative news on {key_type} {key} back to normal ({int(obs['negative'])} negative in the last window)"
        return Alert(id=alert["id"], status=status, severity=alert["severity"], key_type=key_type,  # type: ignore[arg-type]
                     key=key, window_start=_utc(start), window_end=_utc(start + self.window_s),
                     observed=obs, baseline=base, rule=rule_name, summary=summary, top_headlines=evidence,
                     fired_at=_utc(start + self.window_s))
