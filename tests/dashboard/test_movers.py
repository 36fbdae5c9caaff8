"""What is burning now, without a browser: ranking, sparklines and the baseline band."""

from __future__ import annotations

import math

import pandas as pd

from riskpulse.dashboard import movers

W = 60
WINDOWS = [1_780_000_000 + W * i for i in range(movers.BASELINE + movers.RECENT)]


def frame(rows: list[tuple[str, str, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["key_type", "key", "window_ts", "count", "negative"])


def steady(key: str, negatives: int, key_type: str = "ticker") -> list[tuple[str, str, int, int, int]]:
    return [(key_type, key, w, 10, negatives if i % 2 else 0) for i, w in enumerate(WINDOWS)]


def test_a_key_whose_last_windows_are_unusual_ranks_first_and_a_firing_alert_above_all() -> None:
    rows = steady("CALM", 2) + steady("Macro", 3, "topic")
    burst = [("ticker", "HOT", w, 12, 0) for w in WINDOWS[:-2]] + [("ticker", "HOT", w, 20, 9) for w in WINDOWS[-2:]]
    ranked = movers.rank(frame(rows + burst), WINDOWS, firing={})
    assert ranked[0].key == "HOT" and ranked[0].z > 4 and ranked[0].negative_recent >= 9
    assert {m.key for m in ranked} == {"HOT", "CALM", "Macro"}
    assert all(ranked[0].z > m.z for m in ranked[1:])
    # an alert still firing comes first, even where its key's last windows are quiet again
    ranked = movers.rank(frame(rows + burst), WINDOWS, firing={("ticker", "CALM"): "warning"})
    assert [m.key for m in ranked[:2]] == ["CALM", "HOT"]
    row = ranked[0].row()
    assert row["firing"] == "warning" and row["key"] == "CALM" and len(row["last_windows"]) == movers.RECENT + 25


def test_keys_without_recent_news_are_left_out_and_quiet_ones_have_no_z() -> None:
    old = [("ticker", "OLD", w, 5, 5) for w in WINDOWS[:10]]
    quiet = [("topic", "Quiet", w, 4, 0) for w in WINDOWS]
    ranked = movers.rank(frame(old + quiet), WINDOWS, firing={})
    assert [m.key for m in ranked] == ["Quiet"] and ranked[0].z == -math.inf and ranked[0].row()["unusual"] == ""
    assert movers.rank(frame([]), WINDOWS, firing={}) == []


def test_sparkline_and_band() -> None:
    assert movers.sparkline([0, 1, 2, 4]) == "▁▃▅█" and movers.sparkline([0, 0]) == "▁▁"
    series = pd.DataFrame({"window_ts": WINDOWS[:20], "count": [10] * 20, "negative": [2, 4] * 9 + [12, 2]})
    band = movers.baseline_band(series)
    assert band["usual"].iloc[:5].isna().all()  # too few windows before them to say what is usual
    assert band["usual"].iloc[18] == 3.0 and band["upper"].iloc[18] > 3.0 and band["negative"].iloc[18] > band["upper"].iloc[18]
    assert (band["lower"].dropna() >= 0).all()


def test_a_firing_key_whose_last_windows_are_quiet_shows_the_figures_that_fired_it() -> None:
    """A firing row read "0 in 1 window" with no z: it says nothing of why the key fires."""
    quiet = [("ticker", "NVDA", w, 4, 0) for w in WINDOWS]
    fired = {("ticker", "NVDA"): {"negative": 14.0, "z": 7.2, "span_windows": 2.0}}
    (row,) = [m.row() for m in movers.rank(frame(quiet), WINDOWS, firing={("ticker", "NVDA"): "critical"}, fired=fired)]
    assert (row["unusual"], row["negatives"]) == ("+7.2", "14 in 2 windows when it fired")
    # a key burning now shows its own recent windows, firing or not
    hot = [("ticker", "NVDA", w, 12, 0) for w in WINDOWS[:-2]] + [("ticker", "NVDA", w, 20, 9) for w in WINDOWS[-2:]]
    (row,) = [m.row() for m in movers.rank(frame(hot), WINDOWS, firing={("ticker", "NVDA"): "critical"}, fired=fired)]
    assert "when it fired" not in row["negatives"]
