"""The dashboard in a real headless browser (Debian's chromium + chromium-driver, via Selenium).

Screenshots of every view go to test-artifacts/screenshots/ (or $RISKPULSE_SCREENSHOTS).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from riskpulse.dashboard.sample_store import populate
from riskpulse.stream.local_broker import free_port
from riskpulse.store.news import Store
from riskpulse.store.schema import alerts
from tests.helpers import REPO

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("RISKPULSE_SCREENSHOTS", REPO / "test-artifacts" / "screenshots"))
PASSWORD = "correct horse battery"


class Dashboard:
    def __init__(self, tmp: Path, store_url: str) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.store_url = store_url
        env = {**os.environ, "RISKPULSE_HOME": str(tmp / "home"), "RISKPULSE_STORE_URL": store_url,
               "RISKPULSE_DASHBOARD_PASSWORD": PASSWORD, "RISKPULSE_DASHBOARD_REFRESH_S": "2"}
        self.log = open(tmp / "dashboard.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "riskpulse.cli", "dashboard", "--port", str(self.port)],
                                     env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.base + "/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp / "dashboard.log").read_text())
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    tmp = tmp_path_factory.mktemp("dash")
    url = f"sqlite:///{tmp / 'store.db'}"
    populate(Store(url), n_news=20000, days=1.0, end=datetime.now(timezone.utc).replace(second=0, microsecond=0))
    dash = Dashboard(tmp, url)
    yield dash
    dash.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("Debian's chromium and chromium-driver are needed: bash scripts/install-system.sh")
    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100", "--disable-gpu"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    b = webdriver.Chrome(service=Service(driver), options=opts)
    b.downloads = downloads
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield b
    b.quit()


def wait(what: Callable[[], Any], timeout_s: float = 30.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = what()
            if value:
                return value
        except Exception:  # noqa: BLE001 - the page is still rendering
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {message or what}")


def login(b: Any, base: str, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    b.get(base + "/")
    wait(lambda: b.find_element(By.ID, "username"), message="the login form")
    b.find_element(By.ID, "username").send_keys("analyst")
    b.find_element(By.ID, "password").send_keys(password)
    b.find_element(By.ID, "login").click()


def visit(b: Any, base: str, path: str = "/") -> None:
    """Open ``path``, signing in first where the browser has no session yet: each test runs alone
    (they once relied on the first test's sign-in)."""
    b.get(base + path)
    if "/login" in b.current_url:
        login(b, base)
        wait(lambda: "/login" not in b.current_url, message="the signed-in page")
        b.get(base + path)


def open_tab(b: Any, label: str) -> None:
    from selenium.webdriver.common.by import By

    wait(lambda: [t for t in b.find_elements(By.CSS_SELECTOR, ".tab") if t.text == label], message=label)[0].click()


def pick(b: Any, dropdown_id: str, typed: str, option: str) -> None:
    """Dash 4 dropdowns: open, type into the search box, click the option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    b.find_element(By.ID, dropdown_id).click()
    search = wait(lambda: b.find_element(By.CSS_SELECTOR, "input.dash-dropdown-search"), message="the search box")
    search.send_keys(typed)

    def laid_out() -> list[Any]:
        """The option once the list has been placed under the search box: while the popover is
        still being positioned its options sit under the search box, and a click there lands on
        the search box (seen in CI: ElementClickInterceptedException)."""
        below = search.rect["y"] + search.rect["height"] - 1
        return [o for o in b.find_elements(By.CSS_SELECTOR, "[role='option']")
                if o.text.strip() == option and o.rect["y"] >= below]
    wait(laid_out, message=f"option {option} laid out")[0].click()
    b.switch_to.active_element.send_keys(Keys.ESCAPE)


def page_number(b: Any) -> str:
    from selenium.webdriver.common.by import By

    box = b.find_element(By.CSS_SELECTOR, "#feed-table .current-page")
    return box.get_attribute("value") or box.get_attribute("placeholder") or ""


def test_nothing_answers_without_login(populated: Dashboard) -> None:
    assert httpx.get(populated.base + "/readyz").json() == {"ready": True}
    page = httpx.get(populated.base + "/", follow_redirects=False)
    assert page.status_code == 302 and page.headers["location"].startswith("/login")
    assert httpx.get(populated.base + "/_dash-layout").status_code == 401
    assert httpx.post(populated.base + "/_dash-update-component", json={}).status_code == 401
    bad = httpx.post(populated.base + "/login", data={"username": "analyst", "password": "guess"})
    assert bad.status_code == 200 and "Wrong user or password" in bad.text


def test_overview_draws_charts_and_drills_down(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    b = browser
    login(b, populated.base, "wrong")
    wait(lambda: b.find_element(By.ID, "login-error"), message="a refused login")
    login(b, populated.base)
    open_tab(b, "Overview")
    wait(lambda: len(b.find_elements(By.CSS_SELECTOR, "#topic-lines .scatterlayer .trace")) >= 3, message="topic lines")
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#topic-heatmap .heatmaplayer image, #topic-heatmap .hm"),
         message="the heatmap")
    assert "data up to" in b.find_element(By.ID, "as-of").text
    b.save_screenshot(str(SHOTS / "overview.png"))
    # over 24 h every heatmap cell holds news; clicking one lists that topic's headlines of that bucket
    b.find_element(By.CSS_SELECTOR, "#range input[value='24h']").click()
    time.sleep(2)
    drag = b.find_element(By.CSS_SELECTOR, "#topic-heatmap .nsewdrag")
    b.execute_script("arguments[0].scrollIntoView({block: 'center'});", drag)
    ActionChains(b).move_to_element(drag).click().perform()
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#drill-topic-table td"), message="drill-down headlines")
    assert "most negative first" in b.find_element(By.ID, "overview-drill").text
    b.save_screenshot(str(SHOTS / "overview-drilldown.png"))
    metrics = httpx.get(populated.base + "/metrics").text  # Prometheus, no login: counts, no data
    assert 'riskpulse_dashboard_callback_seconds_count{output="topic-lines.figure"}' in metrics


def test_tickers_search_and_chart(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b = browser
    visit(b, populated.base, "/")
    open_tab(b, "Tickers")
    wait(lambda: len(b.find_elements(By.CSS_SELECTOR, "#ticker-lines .scatterlayer .trace")) >= 3, message="ticker lines")
    pick(b, "ticker-pick", "TSL", "TSLA")
    wait(lambda: len(b.find_elements(By.CSS_SELECTOR, "#ticker-lines .legend .traces")) <= 3, message="TSLA alone")
    assert "TSLA" in b.find_element(By.CSS_SELECTOR, "#ticker-lines .legend").text
    b.save_screenshot(str(SHOTS / "tickers.png"))


def test_news_feed_filters_pages_and_exports(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    b = browser
    visit(b, populated.base, "/")
    open_tab(b, "News feed")
    b.find_element(By.CSS_SELECTOR, "#range input[value='24h']").click()
    wait(lambda: len(b.find_elements(By.CSS_SELECTOR, "#feed-table tbody tr")) > 20, message="feed rows")
    pick(b, "feed-sentiment", "neg", "negative")
    ticker = b.find_element(By.ID, "feed-ticker")
    ticker.send_keys("TSLA")
    ticker.send_keys(Keys.ENTER)

    def sentiments() -> set[str]:
        cells = b.find_elements(By.CSS_SELECTOR, "#feed-table td[data-dash-column='sentiment']")
        tickers = {c.text for c in b.find_elements(By.CSS_SELECTOR, "#feed-table td[data-dash-column='tickers']")}
        return {c.text for c in cells} if cells and tickers == {"TSLA"} else set()
    assert wait(sentiments, message="filtered rows") == {"negative"}
    count = b.find_element(By.ID, "feed-count").text
    # one row per story: the burst's 40 headlines are four stories carried by ten outlets each
    assert count.endswith("stories")
    stories = int(count.split()[0].replace(",", ""))
    copies = wait(lambda: [c.text for c in b.find_elements(By.CSS_SELECTOR, "#feed-table td[data-dash-column='copies']")
                           if c.text == "10"], message="a story's copies")
    assert copies
    b.find_element(By.CSS_SELECTOR, "#feed-copies input").click()  # every copy
    count = wait(lambda: (t := b.find_element(By.ID, "feed-count").text).endswith("headlines") and t, message="every copy")
    assert int(count.split()[0].replace(",", "")) == stories + 36 > 40  # the burst alone has 40
    links = wait(lambda: b.find_elements(By.CSS_SELECTOR, "#feed-table td[data-dash-column='headline'] a"),
                 message="headlines linked to their stories")
    assert all(a.get_attribute("href").startswith("https://news.example/") and a.get_attribute("target") == "_blank"
               for a in links)
    b.save_screenshot(str(SHOTS / "news-feed.png"))
    b.find_element(By.ID, "feed-export").click()
    exported = wait(lambda: list(b.downloads.glob("riskpulse-news*.csv")), message="the CSV download")[0]
    time.sleep(0.5)
    rows = list(csv.DictReader(exported.open()))
    assert len(rows) == int(count.split()[0].replace(",", ""))
    assert {r["sentiment"] for r in rows} == {"negative"} and {r["tickers"] for r in rows} == {"TSLA"}
    # a click on a story's copies opens it: its copies, and its pick-up over time
    b.find_element(By.CSS_SELECTOR, "#feed-copies input").click()  # one row per story again
    cell = wait(lambda: [c for c in b.find_elements(By.CSS_SELECTOR, "#feed-table td[data-dash-column='copies']")
                         if c.text == "10"], message="the story row")[0]
    cell.click()
    wait(lambda: b.find_element(By.ID, "feed-spread-box").is_displayed(), message="the story's spread chart")
    wait(lambda: "10 copies from 10 sources" in b.find_element(By.ID, "feed-count").text, message="the story's spread")
    b.save_screenshot(str(SHOTS / "story-spread.png"))


def test_alert_evidence_and_acknowledge(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b = browser
    visit(b, populated.base, "/")
    open_tab(b, "Alerts")
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#alerts-table td input[type='radio']"), message="alert rows")[0].click()
    summary = wait(lambda: b.find_element(By.ID, "alert-summary").text, message="the alert's detail")
    assert summary.startswith("CRITICAL: negative news on ticker TSLA")
    assert len(b.find_elements(By.CSS_SELECTOR, "#alert-evidence li")) == 5
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#alert-chart .barlayer .point"), message="the alert's small chart")
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#drill-ticker-table td"), message="the window's headlines")
    b.save_screenshot(str(SHOTS / "alert-detail.png"))
    b.find_element(By.ID, "ack-button").click()
    wait(lambda: "Acknowledged by analyst" in b.find_element(By.ID, "ack-status").text, message="the acknowledgement")
    with Store(populated.store_url).engine.connect() as conn:
        row = conn.execute(alerts.select().where(alerts.c.id == "sample-alert-1")).mappings().one()
    assert row["acked_by"] == "analyst" and row["acked_at"] is not None
    b.save_screenshot(str(SHOTS / "alert-acknowledged.png"))


def test_refresh_keeps_filters_and_selection(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b = browser
    visit(b, populated.base, "/")
    open_tab(b, "News feed")
    b.find_element(By.CSS_SELECTOR, "#range input[value='24h']").click()

    def on_page_2() -> bool:
        # a range change sends the feed back to page 1 once its callback answers; click again until
        # that answer has arrived and the click holds
        if page_number(b) != "2":
            b.find_element(By.CSS_SELECTOR, "#feed-table .next-page").click()
            time.sleep(1.0)
        return page_number(b) == "2"
    wait(on_page_2, message="page 2")
    time.sleep(2.5)
    assert page_number(b) == "2"
    # new data arrives and several refreshes pass: the analyst stays on page 2 of the same view
    populate(Store(populated.store_url), n_news=50, days=0.01, end=datetime.now(timezone.utc) + timedelta(minutes=40), seed=9,
             burst_ticker="NVDA", id_prefix="late")
    time.sleep(5)
    assert page_number(b) == "2"
    assert b.find_element(By.CSS_SELECTOR, "#range input[value='24h']").is_selected()


def test_empty_and_unavailable_store_say_so(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b = browser
    empty = Dashboard(tmp_path / "e", f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        login(b, empty.base)
        assert "No data yet" in wait(lambda: b.find_element(By.ID, "empty-state").text, message="the empty state")
        b.save_screenshot(str(SHOTS / "empty-store.png"))
        # signed out in another tab (the session is revoked server-side): the next refresh goes to sign-in
        b.execute_script("fetch('/logout', {redirect: 'manual'})")
        wait(lambda: "/login?next=" in b.current_url and b.find_element(By.ID, "username"), message="the sign-in page")
    finally:
        empty.stop()
    gone = Dashboard(tmp_path / "g", f"sqlite:///{tmp_path / 'no-such-dir' / 'store.db'}")
    try:
        login(b, gone.base)
        assert "Store unavailable" in wait(lambda: b.find_element(By.ID, "store-error").text, message="the store error")
        assert httpx.get(gone.base + "/readyz").status_code == 503
        b.save_screenshot(str(SHOTS / "store-unavailable.png"))
    finally:
        gone.stop()


def test_an_alert_reads_in_words_and_its_key_is_silenced_from_its_page(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    from riskpulse.alerts.silences import Silences

    b = browser
    visit(b, populated.base, "/")
    open_tab(b, "Alerts")
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#alerts-table td input[type='radio']"), message="alert rows")[0].click()
    figures = wait(lambda: b.find_element(By.ID, "alert-figures").text, message="the alert's figures")
    assert "negative headlines in the window" in figures and "standard deviations above the usual" in figures
    assert "{" not in figures  # words, not a dict
    assert b.find_element(By.ID, "silence-status").text == "Not silenced: webhooks are sent"
    b.find_element(By.ID, "silence-button").click()  # without a reason: refused, and says why
    wait(lambda: "comment saying why" in b.find_element(By.ID, "silence-status").text, message="the refusal")
    b.find_element(By.ID, "silence-comment").send_keys("recall story, desk informed")
    b.find_element(By.ID, "silence-button").click()
    status = wait(lambda: (t := b.find_element(By.ID, "silence-status").text).startswith("Silenced by") and t,
                  message="the silence")
    assert "Silenced by analyst until" in status and "recall story, desk informed" in status
    key_type, key = re.search(r"negative news on (ticker|topic) (.+?):", b.find_element(By.ID, "alert-summary").text).groups()
    [made] = [s for s in Silences(Store(populated.store_url).engine).all() if s.comment == "recall story, desk informed"]
    assert (made.key_type, made.key, made.severity) == (key_type, key, None)  # the key of the alert on the page
    assert made.created_by == "analyst" and 4 * 3600 - 60 < made.ends_at - made.created_at <= 4 * 3600
    wait(lambda: "yes" in [td.text for td in b.find_elements(By.CSS_SELECTOR, "#alerts-table td[data-dash-column='silenced']")],
         message="the alert listed as silenced")
    b.save_screenshot(str(SHOTS / "alert-silenced.png"))


def test_an_alert_has_a_page_and_every_view_a_link(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b = browser
    visit(b, populated.base, "/alerts/sample-alert-1")  # as a webhook or Slack message links it
    summary = wait(lambda: b.find_element(By.ID, "alert-summary").text, message="the alert's page")
    assert summary.startswith("CRITICAL: negative news on ticker TSLA")
    assert [t.text for t in b.find_elements(By.CSS_SELECTOR, ".tab--selected")] == ["Alerts"]
    wait(lambda: b.find_element(By.ID, "share-link").get_attribute("href").endswith("/alerts/sample-alert-1"),
         message="the page's own link")
    b.find_element(By.ID, "ack-button").click()  # the page acts on its alert, selected in no table
    wait(lambda: "Acknowledged by analyst" in b.find_element(By.ID, "ack-status").text, message="the acknowledgement")

    visit(b, populated.base, "/alerts/no-such-alert")
    wait(lambda: "no-such-alert is not in the store" in b.find_element(By.ID, "alert-detail").text,
         message="a missing alert said as such")

    visit(b, populated.base, "/?tab=news&range=24h")  # a shared view: its tab and range
    wait(lambda: [t.text for t in b.find_elements(By.CSS_SELECTOR, ".tab--selected")] == ["News feed"], message="tab")
    assert b.find_element(By.CSS_SELECTOR, "#range input[value='24h']").is_selected()
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#feed-table td"), message="the feed")
    b.find_element(By.CSS_SELECTOR, "#range input[value='7d']").click()
    wait(lambda: b.find_element(By.ID, "share-link").get_attribute("href").endswith("/?tab=news&range=7d"),
         message="the link following the view")


def test_silences_have_an_api_for_tools_signed_in_like_the_pages(populated: Dashboard) -> None:
    assert httpx.get(populated.base + "/api/silences").status_code == 401  # no session: no silences
    with httpx.Client(base_url=populated.base) as client:
        signed = client.post("/login", data={"username": "analyst", "password": PASSWORD, "next": "/"})
        assert signed.status_code in (200, 302)
        made = client.post("/api/silences", json={"key_type": "topic", "key": "Energy | Oil", "duration_s": 3600,
                                                  "comment": "OPEC meeting, expected"})
        assert made.status_code == 201, made.text
        silence = made.json()
        assert silence["created_by"] == "analyst" and 3590 < silence["ends_at"] - silence["starts_at"] <= 3600
        assert silence["id"] in {s["id"] for s in client.get("/api/silences").json()}
        # a form post (what a cross-site page could send) is refused; so is a silence without a reason
        assert client.post("/api/silences", data={"key": "TSLA", "comment": "x"}).status_code == 415
        refused = client.post("/api/silences", json={"key": "TSLA"})
        assert refused.status_code == 400 and "comment" in refused.json()["error"]
        assert client.delete(f"/api/silences/{silence['id']}").status_code == 204
        assert client.delete(f"/api/silences/{silence['id']}").status_code == 404
        assert silence["id"] not in {s["id"] for s in client.get("/api/silences").json()}


def test_the_first_view_ranks_what_is_burning_and_a_key_has_a_page(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b = browser
    visit(b, populated.base, "/")
    assert [t.text for t in wait(lambda: b.find_elements(By.CSS_SELECTOR, ".tab--selected"), message="tabs")] == ["Now"]
    def table() -> list[list[str]]:  # read whole between refreshes (every 2 s the rows are drawn anew)
        return [[c.text for c in r.find_elements(By.CSS_SELECTOR, "td")]
                for r in b.find_elements(By.CSS_SELECTOR, "#movers-table tbody tr")[1:]]

    rows = wait(table, message="the movers")
    firing = [r for r in rows if "critical" in r]
    assert rows[0] in firing and ["TSLA" in r for r in rows].index(True) < len(firing), rows  # firing first, whatever their z
    tsla = ["TSLA" in r for r in rows].index(True) + 2  # its row in the table (the header is row 1)
    assert len(rows) >= 10 and all(re.fullmatch("[▁▂▃▄▅▆▇█]{30}", r[-1]) for r in rows)
    b.save_screenshot(str(SHOTS / "now.png"))

    def select_first() -> bool:
        b.find_element(By.CSS_SELECTOR, f"#movers-table tbody tr:nth-child({tsla}) input[type='radio']").click()
        return True

    wait(select_first, message="a row selected")
    wait(lambda: b.find_element(By.ID, "key-title").text == "ticker TSLA", message="the key's page")
    b.find_element(By.CSS_SELECTOR, "#range input[value='24h']").click()
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#key-chart .barlayer .point"), message="negatives per window")
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#key-chart .shapelayer path"), message="the alert's window shaded")
    # read whole between renders: the page is drawn anew on its refresh, and an element found
    # before it is stale after it (seen: StaleElementReferenceException)
    evidence = wait(lambda: [a.get_attribute("href") for a in b.find_elements(By.CSS_SELECTOR, "#key-evidence a")],
                    message="the key's evidence")
    assert all(href.startswith("https://news.example/") for href in evidence)
    wait(lambda: b.find_element(By.ID, "share-link").get_attribute("href").endswith("/keys/ticker/TSLA?range=24h"),
         message="the key page's own link")
    b.execute_script("document.getElementById('key-page').scrollIntoView()")
    b.save_screenshot(str(SHOTS / "key-page.png"))

    visit(b, populated.base, "/keys/topic/Legal%20%7C%20Regulation?range=24h")  # a shared key page
    wait(lambda: b.find_element(By.ID, "key-title").text == "topic Legal | Regulation", message="a shared key page")
    assert b.find_element(By.CSS_SELECTOR, "#range input[value='24h']").is_selected()


def test_times_are_shown_in_the_zone_the_analyst_chooses(populated: Dashboard, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b = browser
    visit(b, populated.base, "/?tab=alerts&range=24h")
    utc = wait(lambda: b.find_element(By.ID, "as-of").text, message="the data's time")
    assert utc.endswith(" UTC")
    fired_utc = wait(lambda: [c.text for c in b.find_elements(By.CSS_SELECTOR, "#alerts-table td[data-dash-column='fired_at']")],
                     message="the alerts")
    wait(lambda: b.find_element(By.ID, "signed-in").text, message="the header drawn (it sets the picker's zone)")
    try:
        pick(b, "tz-pick", "Tokyo", "Asia/Tokyo")
        wait(lambda: b.find_element(By.ID, "as-of").text.endswith(" JST"), message="times in Tokyo's zone")
        # the header and the table are drawn by callbacks of their own: the header's zone can show
        # while the table still holds its UTC times (seen once in CI, 2026-12-07), so wait for the table
        fired_tokyo = wait(lambda: (cells := [c.text for c in b.find_elements(
            By.CSS_SELECTOR, "#alerts-table td[data-dash-column='fired_at']")]) != fired_utc and cells,
            message="the alerts redrawn in Tokyo's zone")
        shift = [datetime.strptime(t, "%Y-%m-%d %H:%M") - datetime.strptime(u, "%Y-%m-%d %H:%M")
                 for t, u in zip(fired_tokyo, fired_utc)]
        assert shift and set(shift) == {timedelta(hours=9)}
        b.save_screenshot(str(SHOTS / "time-zone.png"))
    finally:
        wait(lambda: b.find_element(By.ID, "signed-in").text, message="the header drawn again")
        pick(b, "tz-pick", "UTC", "UTC")
        wait(lambda: b.find_element(By.ID, "as-of").text.endswith(" UTC"), message="back to UTC")


def test_the_first_view_works_from_the_keyboard(populated: Dashboard, browser: Any) -> None:
    """Tab to a key's row, Space selects it, its page opens; every control is reachable without a mouse."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    b = browser
    visit(b, populated.base, "/")
    wait(lambda: b.find_elements(By.CSS_SELECTOR, "#movers-table tbody tr input[type='radio']"), message="the movers")
    b.execute_script("document.activeElement && document.activeElement.blur()")  # start at the top of the page
    reached = []
    for _ in range(60):  # the header's controls, the tabs, then into the table (its cells take the keys)
        ActionChains(b).send_keys(Keys.TAB).perform()
        name, in_table = b.execute_script("const a = document.activeElement; "  # one call: the table redraws itself
                                          "return [a.id || a.tagName.toLowerCase(), a.closest('#movers-table') !== null]")
        reached.append(name)
        if in_table:
            break
    else:
        raise AssertionError(f"the movers not reached by Tab: {reached}")
    assert "share-link" in reached, reached  # the header's link to this view is on the way
    assert reached[-1] == "input", reached
    ActionChains(b).send_keys(Keys.SPACE).perform()  # the first row selected: its key's page opens
    wait(lambda: b.find_element(By.ID, "key-title").text.startswith(("ticker ", "topic ")), message="the key's page")


def test_a_viewer_reads_but_cannot_acknowledge_or_silence(populated: Dashboard, browser: Any) -> None:
    """Last in the module: once the store has users, the configured (break-glass) user no longer signs in."""
    from selenium.webdriver.common.by import By

    from riskpulse.dashboard.auth import hash_password
    from riskpulse.store.users import Users

    users = Users(populated.store_url)
    users.add("vera", "viewer", hash_password("a viewer's password"), created_by="test")
    b = browser
    try:
        b.get(populated.base + "/logout")
        b.get(populated.base + "/alerts/sample-alert-1")
        wait(lambda: b.find_element(By.ID, "username"), message="the login form")
        b.find_element(By.ID, "username").send_keys("vera")
        b.find_element(By.ID, "password").send_keys("a viewer's password")
        b.find_element(By.ID, "login").click()
        wait(lambda: b.find_element(By.ID, "alert-summary").text, message="the alert's page, after sign-in")
        assert b.find_element(By.ID, "signed-in").text == "vera (viewer)"
        assert not b.find_element(By.ID, "ack-button").is_enabled()
        assert not b.find_element(By.ID, "silence-button").is_enabled()
        assert "can read only" in b.find_element(By.ID, "ack-button").get_attribute("title")
        b.save_screenshot(str(SHOTS / "viewer.png"))
    finally:
        users.remove("vera")
        b.get(populated.base + "/logout")
