"""What is burning now: keys ranked by how unusual their last windows are, and a key's own page.

The ranking uses the detector's own figure (alerts/detector.py, ``deviation``): the largest tail
z of the negatives of the last 1, 2, 3 or 5 windows against the key's usual negatives per window,
here the mean and variance of the baseline windows before them (zeros where a key had no news).
Keys with a firing alert come first whatever their z, then the rest by z. Plain code over the
frame of :func:`dashboard.queries.window_counts`; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from riskpulse.alerts.detector import SCAN, deviation

RECENT = max(SCAN)  # windows judged "now"
BASELINE = 60  # windows before them that say what is usual
SPARK = "▁▂▃▄▅▆▇█"
SEVERITY_RANK = {"critical": 0, "warning": 1}


@dataclass(frozen=True)
class Mover:
    key_type: str
    key: str
    z: float  # -inf: no negatives lately
    span: int  # windows the z is taken over
    negative_recent: int  # negatives in the last ``span`` windows
    usual: float  # negatives a window usually has
    count_recent: int  # headlines in the last RECENT windows
    spark: str  # negatives per window, the last RECENT + 25
    firing: str  # severity of a firing alert, or ""
    when_fired: bool = False  # the figures are the alert's, from when it fired (its recent windows are quiet)

    def row(self) -> dict[str, object]:
        return {"key_type": self.key_type, "key": self.key, "firing": self.firing,
                "unusual": "" if not math.isfinite(self.z) else f"{self.z:+.1f}",
                "negatives": f"{self.negative_recent} in {self.span} window{'s' if self.span > 1 else ''}"
                             + (" when it fired" if self.when_fired else ""),
                "usual": f"{self.usual:.1f} per window", "headlines": self.count_recent, "last_windows": self.spark}


def sparkline(values: list[float]) -> str:
    """Block characters scaled to the largest value (text: readable by a screen reader, copyable)."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values)


def rank(frame: pd.DataFrame, windows: list[int], firing: dict[tuple[str, str], str], limit: int = 25,
         fired: dict[tuple[str, str], dict[str, float]] | None = None) -> list[Mover]:
    """``frame``: key_type, key, window_ts, count, negative (one row per key and window with news);
    ``windows``: the window starts of the baseline and the recent windows, oldest first;
    ``firing``: (key_type, key) -> severity of a firing alert; ``fired``: what its alert observed
    when it fired, shown where the key's recent windows have no negatives (a firing row with
    "0 in 1 window" and no z says nothing of why it fires)."""
    fired = fired or {}
    if not windows:
        return []
    recent_from = windows[-RECENT] if len(windows) >= RECENT else windows[0]
    active = frame[frame["window_ts"] >= recent_from]
    keys = set(zip(active["key_type"], active["key"])) | set(firing)
    by_key = {k: part for k, part in frame.groupby(["key_type", "key"])} if not frame.empty else {}
    movers = []
    for key in keys:
        part = by_key.get(key)
        negatives = dict(zip(part["window_ts"], part["negative"])) if part is not None else {}
        counts = dict(zip(part["window_ts"], part["count"])) if part is not None else {}
        series = [int(negatives.get(w, 0)) for w in windows]
        base, recent = series[:-RECENT] or [0], series[-RECENT:]
        mean = sum(base) / len(base)
        var = sum((x - mean) ** 2 for x in base) / len(base)
        z, span = deviation({"mean": mean, "var": var}, recent)
        negative_recent, when_fired = sum(recent[-span:]), False
        observed = fired.get(key)
        if key in firing and observed and "z" in observed and (negative_recent == 0 or not math.isfinite(z)):
            z, span = observed["z"], max(1, int(observed.get("span_windows", 1)))
            negative_recent, when_fired = int(observed.get("negative", 0)), True
        movers.append(Mover(key[0], key[1], z, span, negative_recent, mean,
                            sum(int(counts.get(w, 0)) for w in windows[-RECENT:]),
                            sparkline(series[-(RECENT + 25):]), firing.get(key, ""), when_fired))
    movers.sort(key=lambda m: (SEVERITY_RANK.get(m.firing, 2), -m.z if math.isfinite(m.z) else math.inf,
                               -m.negative_recent, m.key_type, m.key))
    return movers[:limit]


def baseline_band(series: pd.DataFrame, width: int = BASELINE, k: float = 2.0) -> pd.DataFrame:
    """Per window: the key's usual negatives (mean of the ``width`` windows before it) and the band
    ``k`` deviations around it (the larger of variance and mean, as the detector does: counts are
    at least Poisson-noisy). ``series``: window_ts, negative, one row per window, zeros filled."""
    before = series["negative"].shift(1).rolling(width, min_periods=5)
    mean = before.mean()
    spread = pd.concat([before.var(ddof=0), mean], axis=1).max(axis=1) ** 0.5
    return series.assign(usual=mean, upper=mean + k * spread, lower=(mean - k * spread).clip(lower=0))
