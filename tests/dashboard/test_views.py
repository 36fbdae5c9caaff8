"""Views named by URLs: an alert's page and shareable tab + range links (no browser needed: the
Flask test client calls the callbacks the way the browser does)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from riskpulse.dashboard.app import create_app
from riskpulse.dashboard.pages.alerts import figures_in_words
from riskpulse.dashboard.urls import key_from_url, url_for_view, view_from_url
from riskpulse.dashboard.sample_store import populate
from riskpulse.settings import Settings
from riskpulse.store.news import Store


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
    from riskpulse.dashboard.display import headline_link

    assert headline_link("Apple beats", "https://news.example/1") == "[Apple beats](<https://news.example/1>)"
    assert headline_link("[click](javascript:alert(1))", None) == "\\[click\\]\\(javascript:alert\\(1\\)\\)"
    assert headline_link("Tesla *sued*", "javascript:alert(1)") == "Tesla \\*sued\\*"  # no link to a script
    assert headline_link("x", "https://a.example/> [y](javascript:z)") == "x"  # an address that would break out


def test_a_corrected_item_says_so_beside_its_headline() -> None:
    from riskpulse.dashboard.display import corrected_note

    assert corrected_note(2) == " *(corrected: revision 2)*"
    assert corrected_note(1) == corrected_note(None) == corrected_note(float("nan")) == ""  # NaN: a row before revisions


def test_an_alert_named_by_a_link_is_shown_whatever_else_changes_with_it(tmp_path: Path) -> None:
    """The page load of a shared alert link changes the alert focus and the time zone together;
    the alert page must show the named alert, not "Select an alert" (dash.ctx.triggered_id names
    only the first input that changed)."""
    store_url = f"sqlite:///{tmp_path}/store.db"
    populate(Store(store_url), n_news=300, days=0.2, end=datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))
    app = create_app(Settings(home=tmp_path, store_url=store_url, dashboard_password="pw"))
    client = app.server.test_client()
    assert client.post("/login", data={"username": "analyst", "password": "pw"}).status_code == 302
    output = next(o for o in app.callback_map if o.startswith("..alert-detail.children"))
    spec = app.callback_map[output]
    values = {("alert-focus", "data"): "sample-alert-1", ("tz-done", "data"): 1}
    for changed in (["tz-done.data", "alert-focus.data"], ["alert-focus.data", "tz-done.data"]):
        body = {"output": output, "outputs": [{"id": o.split(".")[0], "property": o.split(".")[1]}
                                              for o in output.strip(".").split("...")],
                "inputs": [{**i, "value": values.get((i["id"], i["property"]))} for i in spec["inputs"]],
                "state": [{**i, "value": None} for i in spec["state"]], "changedPropIds": changed}
        response = client.post("/_dash-update-component", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        shown = response.get_json()["response"]["alert-shown"]["data"]
        assert shown["id"] == "sample-alert-1", changed


def test_evidence_names_a_storys_spread_and_a_timelines_source() -> None:
    from riskpulse.dashboard.pages.alerts import spread_note

    assert spread_note({"headline": "x", "sentiment_score": -0.8}) == ""  # an alert from before stories
    assert spread_note({"copies": 1, "sources": 1}) == ""
    assert spread_note({"copies": 12, "sources": 9, "story_id": "n0"}) == "  · 12 copies from 9 sources · story n0"
    assert spread_note({"source": "reuters", "published_at": "2026-12-05T14:03:00Z"}) == "  · reuters at 14:03 UTC"


def test_a_storys_spread_chart_steps_once_per_copy() -> None:
    import pandas as pd

    from riskpulse.dashboard import figures

    copies = pd.DataFrame({"published_at": pd.to_datetime(["2026-12-05T14:00Z", "2026-12-05T14:03Z", "2026-12-05T14:05Z"]),
                           "source": ["reuters", "bloomberg", "reuters"], "headline": ["a", "b", "c"]})
    fig = figures.story_spread(copies)
    assert list(fig.data[0].y) == [1, 2, 3] and list(fig.data[1].y) == [1, 2, 2]
    assert figures.story_spread(copies.iloc[0:0]).layout.annotations


def test_the_alerts_view_places_each_alert_in_its_incident_and_names_who_mutes_it(tmp_path: Path) -> None:
    """The issue's burst as stored alerts: one incident of three, the topics muted by the ticker;
    acknowledging or silencing one alert of an incident acts on all of them."""
    from riskpulse.dashboard.incidents_view import current_places, incidents_spec
    from riskpulse.store.news import Store as NewsStore
    from tests.alerts.test_incidents import burst

    store = NewsStore(f"sqlite:///{tmp_path}/store.db")
    store.upsert_alerts([a.to_json() for a in burst()])
    rules = tmp_path / "rules.yaml"
    rules.write_text("incidents: {window_minutes: 10}\n")
    placed = current_places(store, incidents_spec(rules))
    ticker, *topics = burst()
    assert {placed[a.id].incident for a in burst()} == {placed[ticker.id].incident}
    assert placed[ticker.id].muted_by is None
    assert [placed[t.id].named(placed[t.id].muted_by) for t in topics] == ["ticker TSLA", "ticker TSLA"]
    assert sorted(placed[ticker.id].keys()) == sorted((a.key_type, a.key) for a in burst())  # what silencing it mutes
    assert incidents_spec(tmp_path / "missing.yaml").enabled  # unreadable rules: the defaults, with a warning
