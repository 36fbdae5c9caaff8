"""Views named by URLs: an alert's page and shareable tab + range links (no browser needed)."""

from __future__ import annotations

from riskpulse.dashboard.app import figures_in_words, key_from_url, url_for_view, view_from_url


def test_a_url_names_a_view_and_a_view_has_a_url() -> None:
    assert view_from_url("/alerts/al%2F7", None) == ("alerts", None, "al/7")
    assert view_from_url("/", "?tab=news&range=24h") == ("news", "24h", None)
    assert view_from_url("/", "?tab=admin&range=999d") == (None, None, None)  # nothing invalid is applied
    assert view_from_url("/alerts/", "") == (None, None, None)
    for tab, rng in (("news", "24h"), ("tickers", "7d"), ("overview", "15m")):
        url = url_for_view(tab, rng)
        path, _, search = url.partition("?")
        assert view_from_url(path, "?" + search) == (tab, rng, None)
    assert url_for_view("alerts", "1h", "al/7") == "/alerts/al%2F7"
    # a key's page: /keys/<type>/<key>, with the range
    assert url_for_view("now", "24h", key=("topic", "Legal | Regulation")) == "/keys/topic/Legal%20%7C%20Regulation?range=24h"
    assert key_from_url("/keys/topic/Legal%20%7C%20Regulation") == ("topic", "Legal | Regulation")
    assert view_from_url("/keys/ticker/TSLA", "?range=24h") == ("now", "24h", None)
    assert key_from_url("/keys/sector/X") is None and key_from_url("/keys/ticker/") is None and key_from_url("/") is None


def test_alert_figures_read_as_words_whatever_the_detector_recorded() -> None:
    full = figures_in_words({"negative": 14, "count": 20, "negative_share": 0.7, "z": 9.84},
                            {"negative_share": 0.12, "negative_mean": 1.3, "negative_sd": 1.1})
    assert full == ("14 negative of 20 headlines in the window (70% negative, usually 12%); a usual window has "
                    "1.3 \u00b1 1.1 negative; 9.8 standard deviations above the usual.")
    assert figures_in_words({"negative": 3}, {}) == "3 negative headlines in the window."
    assert figures_in_words({}, {}) == "No figures recorded for this alert."


def test_feed_headlines_link_to_their_story_and_are_never_markup() -> None:
    from riskpulse.dashboard.app import headline_link

    assert headline_link("Apple beats", "https://news.example/1") == "[Apple beats](<https://news.example/1>)"
    assert headline_link("[click](javascript:alert(1))", None) == "\\[click\\]\\(javascript:alert\\(1\\)\\)"
    assert headline_link("Tesla *sued*", "javascript:alert(1)") == "Tesla \\*sued\\*"  # no link to a script
    assert headline_link("x", "https://a.example/> [y](javascript:z)") == "x"  # an address that would break out
