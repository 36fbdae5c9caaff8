"""The riskpulse dashboard: overview, tickers, alerts and the news feed, over the store.

Every callback reads through dashboard/queries.py (aggregated in SQL) and answers with a clear
message when the store is empty or unreachable. A refresh interval re-runs the data callbacks
only; zoom (``uirevision``), filters, page and selection live in components it never resets.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

import dash
import pandas as pd
from dash import Dash, Input, Output, State, dash_table, dcc, html
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from riskpulse.alerts.silences import Silences
from riskpulse.settings import Settings
from riskpulse.store.news import Store
from riskpulse.store.users import Users

from . import auth, figures, movers, queries

log = logging.getLogger(__name__)

WARNING_TEXT = "#b45309"  # amber dark enough for text on white (WCAG AA, 5:1); #ef6c00 was 3:1
RANGES = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
SENTIMENTS = ["negative", "neutral", "positive"]
FEED_PAGE = 25
CARD = {"background": "#fff", "borderRadius": "6px", "padding": "12px 16px", "marginBottom": "14px",
        "boxShadow": "0 1px 3px #0002"}


def when(ts: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as the signed-in user reads it: in their zone, with the zone's abbreviation."""
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    if isinstance(ts, pd.Timestamp):
        ts = ts.to_pydatetime()
    ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    local = ts.astimezone(auth.current_tz())
    return f"{local.strftime(fmt)} {local.tzname()}"


def local_times(column: pd.Series, fmt: str = "%Y-%m-%d %H:%M") -> pd.Series:
    """A column of UTC times (naive or aware) as text in the signed-in user's zone."""
    times = pd.to_datetime(column, utc=True, format="mixed")
    return times.dt.tz_convert(auth.current_tz()).dt.strftime(fmt)


def in_zone(column: pd.Series) -> pd.Series:
    """UTC times for a chart's axis, shown as the user's wall-clock times."""
    return pd.to_datetime(column, utc=True).dt.tz_convert(auth.current_tz())


ZONES = ["UTC", "America/New_York", "America/Chicago", "Europe/London", "Europe/Frankfurt", "Europe/Zurich",
         "Asia/Hong_Kong", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney"]


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def headline_link(headline: str, url: str | None) -> str:
    """A feed headline as a Markdown link to its story: the text escaped (a headline is data, not
    markup), and only http(s) addresses linked (never javascript: or data:)."""
    text = MARKDOWN_SPECIAL.sub(r"\\\1", headline)
    if url and url.lower().startswith(("http://", "https://")) and not re.search(r"[\s<>]", url):
        return f"[{text}](<{url}>)"
    return text


def time_range(engine: Any, choice: str, custom_start: str | None, custom_end: str | None) -> tuple[datetime, datetime]:
    """The selected range, ending at the newest data (so a replay of past news is visible); a
    custom range is read in the user's zone."""
    if choice == "custom" and custom_start and custom_end:
        start = datetime.fromisoformat(custom_start).replace(tzinfo=auth.current_tz())
        end = datetime.fromisoformat(custom_end).replace(tzinfo=auth.current_tz())
        if end > start:
            return start, end
    end = queries.latest_time(engine) or datetime.now(timezone.utc)
    return end - RANGES.get(choice, RANGES["1h"]), end


def _headline_table(frame: pd.DataFrame, table_id: str) -> dash_table.DataTable:
    data = frame.assign(published_at=local_times(frame["published_at"], "%Y-%m-%d %H:%M:%S"),
                        p_negative=frame["p_negative"].round(3), sentiment_score=frame["sentiment_score"].round(3))
    cols = ["published_at", "headline", "sentiment", "p_negative", "sentiment_score", "tickers", "source", "url"]
    return dash_table.DataTable(id=table_id, data=data[cols].to_dict("records"), columns=[{"name": c, "id": c} for c in cols],
                                page_size=10, style_cell={"textAlign": "left", "whiteSpace": "normal", "fontSize": 13},
                                style_table={"overflowX": "auto"})


def _drill_panel(engine: Any, key_type: str, key: str, start: datetime, end: datetime, title: str) -> html.Div:
    frame = queries.headlines_for(engine, key_type, key, start, end)
    if frame.empty:
        return html.Div(f"No headlines for {key_type} {key} between {when(start)} and {when(end)}.")
    return html.Div([html.H4(title), _headline_table(frame, f"drill-{key_type}-table")])


TABS = ("now", "overview", "tickers", "alerts", "news")
KEY_TYPES = ("topic", "ticker")


def key_from_url(path: str | None) -> tuple[str, str] | None:
    """(key type, key) of a key's page, /keys/<type>/<key>; None for any other path."""
    if not path or not path.startswith("/keys/"):
        return None
    key_type, _, key = path[len("/keys/"):].partition("/")
    return (key_type, unquote(key)) if key_type in KEY_TYPES and key else None


def view_from_url(path: str | None, search: str | None) -> tuple[str | None, str | None, str | None]:
    """(tab, range, alert id) a URL names; None where it names nothing (or nothing valid)."""
    if path and path.startswith("/alerts/") and len(path) > len("/alerts/"):
        return "alerts", None, unquote(path[len("/alerts/"):])
    query = parse_qs((search or "").lstrip("?"))
    tab = "now" if key_from_url(path) else (query.get("tab") or [None])[0]
    rng = (query.get("range") or [None])[0]
    return (tab if tab in TABS else None), (rng if rng in RANGES else None), None


def url_for_view(tab: str | None, rng: str | None, alert_id: str | None = None,
                 key: tuple[str, str] | None = None) -> str:
    """The link that reopens this view: an alert's page, a key's page (with the range), or the tab and range."""
    if alert_id:
        return f"/alerts/{quote(alert_id, safe='')}"
    if key:
        query = f"?{urlencode({'range': rng})}" if rng and rng != "custom" else ""
        return f"/keys/{key[0]}/{quote(key[1], safe='')}{query}"
    return "/?" + urlencode({k: v for k, v in (("tab", tab), ("range", rng)) if v and v != "custom"})


def figures_in_words(observed: dict[str, float], baseline: dict[str, float]) -> str:
    """The detector's figures as a sentence an analyst reads at a glance (the keys present vary by version)."""
    parts = []
    if "negative" in observed:
        of = f" of {int(observed['count'])} headlines" if "count" in observed else " headlines"
        share = ""
        if "negative_share" in observed:
            usual = f", usually {baseline['negative_share']:.0%}" if "negative_share" in baseline else ""
            share = f" ({observed['negative_share']:.0%} negative{usual})"
        parts.append(f"{int(observed['negative'])} negative{of} in the window{share}")
    if "negative_mean" in baseline:
        spread = f" ± {baseline['negative_sd']:.1f}" if "negative_sd" in baseline else ""
        parts.append(f"a usual window has {baseline['negative_mean']:.1f}{spread} negative")
    if "z" in observed:
        parts.append(f"{observed['z']:.1f} standard deviations above the usual")
    return "; ".join(parts) + "." if parts else "No figures recorded for this alert."


def _alert_chart(engine: Any, detail: dict[str, Any], start: datetime, end: datetime) -> Any:
    """The alert's key around its window: negatives against the usual band, the alert shaded."""
    try:
        band = movers.baseline_band(queries.key_series(engine, detail["key_type"], detail["key"],
                                                       start - timedelta(hours=2), end + timedelta(minutes=30)))
    except SQLAlchemyError:
        return html.Div()
    marks = pd.DataFrame([{"window_start": start, "window_end": end, "severity": detail["severity"]}])
    fig = figures.key_chart(band, marks, detail["key_type"], detail["key"], auth.current_tz())
    fig.update_layout(height=240, margin={"l": 50, "r": 20, "t": 10, "b": 30})
    return dcc.Graph(id="alert-chart", figure=fig, config={"displayModeBar": False})


SILENCE_FOR = {"1h": 3600, "4h": 4 * 3600, "24h": 86400, "7d": 7 * 86400}


def _silence_controls(silence: Any) -> html.Div:
    """Mute this key's webhooks (the alert stays listed and shown), or say who muted it and until when."""
    if silence is not None:
        until = datetime.fromtimestamp(silence.ends_at, timezone.utc)
        state = f"Silenced by {silence.created_by} until {when(until)}: {silence.comment}"
    else:
        state = "Not silenced: webhooks are sent"
    return html.Div([
        dcc.Dropdown(id="silence-for", value="4h", clearable=False, style={"width": "90px"},
                     options=[{"label": k, "value": k} for k in SILENCE_FOR]),
        dcc.Input(id="silence-comment", placeholder="Why (required)", style={"width": "280px"}),
        html.Button("Silence this key", id="silence-button", disabled=not auth.may("analyst"),
                    title="" if auth.may("analyst") else f"your role ({auth.current_role()}) can read only"),
        html.Span(state, id="silence-status", style={"marginLeft": "8px", "color": "#555"}),
    ], style={"display": "flex", "gap": "8px", "alignItems": "center", "marginTop": "10px"})


def _range_controls() -> html.Div:
    return html.Div([
        dcc.RadioItems(id="range", value="1h", inline=True,
                       options=[{"label": f" {k}", "value": k} for k in (*RANGES, "custom")],
                       inputStyle={"marginLeft": "12px"}, labelStyle={"display": "inline-block"},
                       style={"display": "flex"}),
        dcc.Input(id="custom-start", type="datetime-local", style={"marginLeft": "12px"}),
        dcc.Input(id="custom-end", type="datetime-local", style={"marginLeft": "6px"}),
        html.Span(id="as-of", style={"marginLeft": "18px", "color": "#555", "whiteSpace": "nowrap"}),
    ], style={"display": "flex", "alignItems": "center"})


def layout(refresh_ms: int) -> html.Div:
    return html.Div([
        dcc.Location(id="url", refresh=False),
        html.Div([html.H2("riskpulse", style={"margin": "0 18px 0 0"}), _range_controls(),
                  html.A("Link to this view", id="share-link", href="/", style={"marginLeft": "auto", "whiteSpace": "nowrap"}),
                  html.Span(id="signed-in", style={"marginLeft": "16px", "color": "#444", "whiteSpace": "nowrap"}),
                  dcc.Dropdown(id="tz-pick", options=ZONES, clearable=False, searchable=True,
                               style={"width": "190px", "marginLeft": "12px"}),
                  dcc.Store(id="tz-done"),
                  html.A("Sign out", href="/logout", style={"marginLeft": "16px", "whiteSpace": "nowrap"})],
                 style={"display": "flex", "alignItems": "center", **CARD}),
        html.Div(id="banner"),
        dcc.Interval(id="tick", interval=refresh_ms),
        dcc.Store(id="ack-done"),
        dcc.Store(id="silence-done"),
        dcc.Store(id="alert-focus"),  # an alert asked for by its URL, /alerts/<id>
        dcc.Store(id="alert-shown"),  # the alert whose page is open: what Acknowledge and Silence act on
        dcc.Store(id="key-focus"),  # a key asked for by its URL, /keys/<type>/<key>
        dcc.Store(id="key-shown"),  # the key whose page is open
        dcc.Tabs(id="tabs", value="now", children=[
            dcc.Tab(label="Now", value="now", children=[
                html.Div([html.H4("What is burning now", style={"margin": "0 0 4px"}),
                          html.P("Keys ranked by how unusual their last windows are (the detector's own figure: "
                                 "standard deviations above their usual negatives), firing alerts first. "
                                 "Select a row for the key's page.", style={"color": "#444", "margin": "0 0 8px"}),
                          dash_table.DataTable(
                              id="movers-table", row_selectable="single", page_size=15,
                              columns=[{"name": n, "id": c} for c, n in (
                                  ("firing", "alert"), ("key_type", "type"), ("key", "key"),
                                  ("unusual", "unusual (z)"), ("negatives", "negatives"), ("usual", "usual"),
                                  ("headlines", "headlines"), ("last_windows", "negatives, last windows"))],
                              style_cell={"textAlign": "left", "fontSize": 13},
                              style_data_conditional=[
                                  {"if": {"filter_query": '{firing} = "critical"'}, "backgroundColor": "#fdecea"},
                                  {"if": {"filter_query": '{firing} = "warning"'}, "backgroundColor": "#fff4e5"},
                                  {"if": {"column_id": "last_windows"}, "fontFamily": "monospace",
                                   "letterSpacing": "-1px"}])], style=CARD),
                html.Div(id="key-page", style=CARD, children="Select a key to see its page."),
            ]),
            dcc.Tab(label="Overview", value="overview", children=[
                html.Div([dcc.Graph(id="topic-lines")], style=CARD),
                html.Div([html.H4("Negative share by topic"), dcc.Graph(id="topic-heatmap")], style=CARD),
                html.Div(id="overview-drill", style=CARD, children="Click a point or a heatmap cell to see its headlines."),
            ]),
            dcc.Tab(label="Tickers", value="tickers", children=[
                html.Div([dcc.Dropdown(id="ticker-pick", multi=True, placeholder="Search tickers (busiest shown by default)")],
                         style=CARD),
                html.Div([dcc.Graph(id="ticker-lines")], style=CARD),
                html.Div(id="ticker-drill", style=CARD, children="Click a point to see its headlines."),
            ]),
            dcc.Tab(label="Alerts", value="alerts", children=[
                html.Div([dcc.RadioItems(id="alert-status", value="all", inline=True,
                                         options=[{"label": f" {s}", "value": s} for s in ("all", "firing", "resolved")]),
                          dash_table.DataTable(
                              id="alerts-table", row_selectable="single", page_size=15, sort_action="native",
                              columns=[{"name": c, "id": c} for c in ("fired_at", "severity", "status", "key_type", "key",
                                                                      "summary", "acked_by", "silenced")],
                              style_cell={"textAlign": "left", "whiteSpace": "normal", "fontSize": 13},
                              style_data_conditional=[
                                  {"if": {"filter_query": '{severity} = "critical"', "column_id": "severity"},
                                   "color": "#c62828", "fontWeight": "bold"},
                                  {"if": {"filter_query": '{severity} = "warning"', "column_id": "severity"},
                                   "color": WARNING_TEXT, "fontWeight": "bold"}])], style=CARD),
                html.Div(id="alert-detail", style=CARD, children="Select an alert to see its evidence."),
            ]),
            dcc.Tab(label="News feed", value="news", children=[
                html.Div([
                    dcc.Dropdown(id="feed-topic", multi=True, placeholder="Topics", style={"minWidth": "260px"}),
                    dcc.Dropdown(id="feed-sentiment", multi=True, placeholder="Sentiment", style={"minWidth": "200px"},
                                 options=[{"label": s, "value": s} for s in SENTIMENTS]),
                    dcc.Input(id="feed-ticker", placeholder="Ticker", debounce=True, style={"width": "90px"}),
                    dcc.Input(id="feed-text", placeholder="Words in headline", debounce=True, style={"width": "220px"}),
                    html.Button("Export CSV", id="feed-export"), dcc.Download(id="feed-download"),
                    html.Span(id="feed-count", style={"color": "#555"}),
                ], style={"display": "flex", "gap": "10px", "alignItems": "center", **CARD}),
                html.Div([dash_table.DataTable(
                    id="feed-table", page_current=0, page_size=FEED_PAGE, page_action="custom",
                    sort_action="custom", sort_mode="single", sort_by=[{"column_id": "published_at", "direction": "desc"}],
                    columns=[{"name": c, "id": c, **({"presentation": "markdown"} if c == "headline" else {})}
                             for c in queries.FEED_COLUMNS if c not in ("id", "url")],
                    markdown_options={"link_target": "_blank", "html": False},
                    style_cell={"textAlign": "left", "whiteSpace": "normal", "fontSize": 13},
                    style_data_conditional=[{"if": {"filter_query": '{sentiment} = "negative"', "column_id": "sentiment"},
                                             "color": "#c62828"},
                                            {"if": {"filter_query": '{sentiment} = "positive"', "column_id": "sentiment"},
                                             "color": "#2e7d32"}])], style=CARD),
            ]),
        ]),
    ], style={"background": "#f4f5f7", "padding": "14px", "fontFamily": "system-ui, sans-serif", "minHeight": "100vh"})


_METRICS: dict[str, Any] = {}


def install_metrics(server: Any) -> None:
    """/metrics (Prometheus): callback latency per output and sign-ins; no data, so no login."""
    import time as _time

    from flask import Response, g, request
    from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

    if not _METRICS:  # once per process, however many apps it builds
        _METRICS["callback"] = Histogram("riskpulse_dashboard_callback_seconds", "Dash callback latency", ["output"],
                                         buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5))
        _METRICS["requests"] = Counter("riskpulse_dashboard_requests_total", "HTTP requests", ["status"])
    callback_seconds, requests_total = _METRICS["callback"], _METRICS["requests"]

    @server.before_request
    def _start() -> None:
        g.started = _time.perf_counter()

    @server.after_request
    def _observe(response: Any) -> Any:
        requests_total.labels(str(response.status_code)).inc()
        if request.path == "/_dash-update-component" and "started" in g:
            output = (request.get_json(silent=True) or {}).get("output", "?")
            callback_seconds.labels(output.strip(".").split("...")[0]).observe(_time.perf_counter() - g.started)
        return response

    @server.route("/metrics")
    def _metrics() -> Any:
        return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)


def install_silences_api(server: Any, silences: Silences) -> None:
    """/api/silences for tools and scripts: GET lists those holding, POST makes one (JSON body:
    key_type, key, severity, duration_s, comment; the signed-in user is its author), DELETE
    /api/silences/<id> ends one. Signed in like every other page; JSON bodies only, which a
    cross-site form cannot send."""
    from flask import jsonify, request

    @server.route("/api/silences", methods=["GET", "POST"])
    def _silences() -> Any:
        if request.method == "GET":
            return jsonify([s.to_json() for s in silences.active()])
        if not auth.may("analyst"):
            return jsonify(error=f"your role ({auth.current_role()}) can read only"), 403
        if not request.is_json:
            return jsonify(error="send a JSON body (content-type: application/json)"), 415
        body = request.get_json(silent=True) or {}
        try:
            duration = float(body.get("duration_s", SILENCE_FOR["4h"]))
            made = silences.add(auth.current_user(), str(body.get("comment") or ""),
                                datetime.now(timezone.utc).timestamp() + duration, key_type=body.get("key_type"),
                                key=body.get("key"), severity=body.get("severity"))
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        log.info("silence created", extra={"silence": made.id, "user": made.created_by, "key": made.key})
        return jsonify(made.to_json()), 201

    @server.route("/api/silences/<silence_id>", methods=["DELETE"])
    def _expire(silence_id: str) -> Any:
        holding = {s.id: s for s in silences.active()}
        if silence_id in holding and not (auth.may("admin") or (
                auth.may("analyst") and holding[silence_id].created_by == auth.current_user())):
            return jsonify(error="an analyst ends their own silences; an admin ends anyone's"), 403
        if not silences.expire(silence_id):
            return jsonify(error=f"no silence {silence_id} is holding"), 404
        return "", 204


def create_app(settings: Settings, refresh_ms: int = 5000) -> Dash:
    try:
        store = Store(settings.store_url, settings.store_migrate)
    except SQLAlchemyError as exc:  # the dashboard still starts, and says so on every page
        log.error("store unavailable at start-up", extra={"error": str(exc)[:300]})
        store = Store.__new__(Store)
        store.engine = create_engine(settings.store_url, pool_pre_ping=True)
    engine = store.engine
    silences = Silences(engine)
    safe_url = make_url(settings.store_url).render_as_string(hide_password=True)
    app = Dash(__name__, title="riskpulse", suppress_callback_exceptions=True, update_title=None)
    if settings.dashboard_password_hash is not None:
        pw_hash = settings.dashboard_password_hash.get_secret_value()
    else:
        pw_hash = auth.hash_password(settings.dashboard_password.get_secret_value())
        if settings.dashboard_password.get_secret_value() == "riskpulse":
            log.warning("dashboard uses the demo password; set RISKPULSE_DASHBOARD_PASSWORD_HASH for real use")
    auth.install(app.server, settings.dashboard_user, pw_hash, auth.secret_key(settings.home),
                 session_hours=settings.dashboard_session_hours, secure_cookie=settings.dashboard_secure_cookie,
                 users=Users(engine), proxy=auth.ProxyAuth.from_settings(
                     settings.dashboard_proxy_header, settings.dashboard_trusted_proxies,
                     settings.dashboard_proxy_default_role))
    install_metrics(app.server)

    @app.server.route("/readyz")
    def _readyz() -> Any:
        """Readiness: the store answers."""
        from sqlalchemy import text

        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return {"ready": False, "store": type(exc).__name__}, 503
        return {"ready": True}, 200
    app.layout = layout(refresh_ms)
    install_silences_api(app.server, silences)

    def guarded(fn: Any) -> Any:
        """A store outage is a message on the page, not a broken dashboard."""
        def wrapper(*args: Any) -> Any:
            try:
                return fn(*args)
            except SQLAlchemyError as exc:
                log.warning("store unavailable", extra={"error": str(exc)[:300]})
                return None
        return wrapper

    def feed_filter(rng: str, cs: str | None, ce: str | None, topics: list[str] | None, sentiments: list[str] | None,
                    ticker: str | None, text: str | None, sort_by: list[dict[str, str]] | None) -> queries.FeedFilter:
        start, end = time_range(engine, rng, cs, ce)
        sort = tuple((s["column_id"], s["direction"]) for s in (sort_by or []))
        return queries.FeedFilter(start=start, end=end, topics=tuple(topics or ()), sentiments=tuple(sentiments or ()),
                                  ticker=ticker or None, text=text or None, sort=sort or (("published_at", "desc"),))

    @app.callback(Output("signed-in", "children"), Output("tz-pick", "value"), Output("tz-pick", "options"),
                  Input("url", "pathname"))
    def signed_in(_: Any) -> Any:
        zone = str(auth.current_tz())
        return f"{auth.current_user()} ({auth.current_role()})", zone, ZONES if zone in ZONES else [zone, *ZONES]

    @app.callback(Output("tz-done", "data"), Input("tz-pick", "value"), prevent_initial_call=True)
    def choose_zone(zone: str | None) -> Any:
        """Every time on every view follows the chosen zone: kept for the user; the views that show
        times listen to ``tz-done`` and draw themselves again."""
        if not zone or zone == str(auth.current_tz()):
            return dash.no_update
        try:
            auth.set_time_zone(zone)
        except ValueError:
            return dash.no_update
        return zone

    @app.callback(Output("banner", "children"), Output("as-of", "children"), Input("tick", "n_intervals"),
                  Input("tz-done", "data"))
    def banner(_: Any, __: Any) -> tuple[Any, str]:
        try:
            latest = queries.latest_time(engine)
        except SQLAlchemyError as exc:
            return (html.Div(f"Store unavailable ({safe_url}): {type(exc).__name__}. Charts resume when it is back.",
                             id="store-error", style={**CARD, "background": "#fdecea", "color": "#b00020"}), "")
        if latest is None:
            return (html.Div("No data yet: start the worker (riskpulse worker) and send news "
                             "(riskpulse replay FILE, riskpulse rss URL or the ingest endpoint).",
                             id="empty-state", style={**CARD, "background": "#fff8e1"}), "")
        return None, f"data up to {when(latest)}"

    @app.callback(Output("topic-lines", "figure"), Output("topic-heatmap", "figure"),
                  Input("tick", "n_intervals"), Input("range", "value"), Input("custom-start", "value"),
                  Input("custom-end", "value"), Input("tz-done", "data"))
    def overview(_: Any, rng: str, cs: str | None, ce: str | None, __: Any) -> tuple[Any, Any]:
        try:
            start, end = time_range(engine, rng, cs, ce)
            frame = queries.trend_series(engine, "topic", start, end, top_n=None)
            marks = queries.alert_rows(engine, start, end, key_type="topic")
        except SQLAlchemyError:
            return figures.empty("Store unavailable"), figures.empty("Store unavailable")
        frame["bucket"], marks["window_start"] = in_zone(frame["bucket"]), in_zone(marks["window_start"])
        return figures.trend_lines(figures.busiest(frame, 8), marks, "topic"), figures.heatmap(frame)

    @app.callback(Output("ticker-pick", "options"), Input("ticker-pick", "search_value"), Input("range", "value"),
                  State("ticker-pick", "value"), State("custom-start", "value"), State("custom-end", "value"))
    def ticker_options(search: str | None, rng: str, chosen: list[str] | None, cs: str | None, ce: str | None) -> Any:
        try:
            start, end = time_range(engine, rng, cs, ce)
            keys = queries.ticker_keys(engine, start, end, search)
        except SQLAlchemyError:
            keys = []
        return [{"label": k, "value": k} for k in sorted(set(keys) | set(chosen or []))]

    @app.callback(Output("ticker-lines", "figure"), Input("tick", "n_intervals"), Input("range", "value"),
                  Input("ticker-pick", "value"), Input("custom-start", "value"), Input("custom-end", "value"),
                  Input("tz-done", "data"))
    def tickers(_: Any, rng: str, chosen: list[str] | None, cs: str | None, ce: str | None, __: Any) -> Any:
        try:
            start, end = time_range(engine, rng, cs, ce)
            frame = queries.trend_series(engine, "ticker", start, end, keys=chosen or None, top_n=8)
            marks = queries.alert_rows(engine, start, end, key_type="ticker")
        except SQLAlchemyError:
            return figures.empty("Store unavailable")
        frame["bucket"], marks["window_start"] = in_zone(frame["bucket"]), in_zone(marks["window_start"])
        if chosen:
            marks = marks[marks["key"].isin(chosen)]
        return figures.trend_lines(frame, marks, "ticker")

    def _drill(click: dict[str, Any] | None, key_type: str, rng: str, cs: str | None, ce: str | None) -> Any:
        if not click or not click.get("points"):
            return dash.no_update
        point = click["points"][0]
        custom = point.get("customdata")
        key = custom[0] if isinstance(custom, list) and custom else point.get("y") if key_type == "topic" else None
        if not key:
            return dash.no_update
        start, end = time_range(engine, rng, cs, ce)
        bucket = timedelta(seconds=queries.bucket_seconds(end - start))
        at = pd.Timestamp(point["x"]).to_pydatetime()
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
        return _drill_panel(engine, key_type, key, at, at + bucket,
                            f"{key_type} {key}: {when(at)} to {when(at + bucket, '%H:%M')}, most negative first")

    @app.callback(Output("overview-drill", "children"), Input("topic-lines", "clickData"),
                  Input("topic-heatmap", "clickData"), State("range", "value"), State("custom-start", "value"),
                  State("custom-end", "value"), prevent_initial_call=True)
    def overview_drill(lines: Any, heat: Any, rng: str, cs: str | None, ce: str | None) -> Any:
        source = heat if dash.ctx.triggered_id == "topic-heatmap" else lines
        return guarded(_drill)(source, "topic", rng, cs, ce)

    @app.callback(Output("ticker-drill", "children"), Input("ticker-lines", "clickData"), State("range", "value"),
                  State("custom-start", "value"), State("custom-end", "value"), prevent_initial_call=True)
    def ticker_drill(click: Any, rng: str, cs: str | None, ce: str | None) -> Any:
        return guarded(_drill)(click, "ticker", rng, cs, ce)

    @app.callback(Output("tabs", "value"), Output("range", "value"), Output("alert-focus", "data"),
                  Output("key-focus", "data"), Input("url", "pathname"), State("url", "search"))
    def from_url(path: str | None, search: str | None) -> Any:
        """A shared link opens the view it names: /alerts/<id>, /keys/<type>/<key>, or /?tab=...&range=..."""
        tab, rng, focus = view_from_url(path, search)
        key = key_from_url(path)
        return (tab or dash.no_update, rng or dash.no_update, focus or dash.no_update,
                list(key) if key else dash.no_update)

    @app.callback(Output("share-link", "href"), Input("tabs", "value"), Input("range", "value"),
                  Input("alert-shown", "data"), Input("key-shown", "data"))
    def share(tab: str, rng: str, shown: dict[str, str] | None, key: list[str] | None) -> str:
        return url_for_view(tab, rng, shown["id"] if shown and tab == "alerts" else None,
                            (key[0], key[1]) if key and tab == "now" else None)

    window_s = settings.window_s

    @app.callback(Output("movers-table", "data"), Input("tick", "n_intervals"))
    def movers_table(_: Any) -> Any:
        try:
            end = queries.latest_time(engine)
            if end is None:
                return []
            last = (int(end.timestamp()) // window_s) * window_s - window_s  # the newest closed window
            windows = [last - window_s * i for i in range(movers.BASELINE + movers.RECENT - 1, -1, -1)]
            frame = queries.window_counts(engine, windows)
            firing = queries.firing_keys(engine, end - timedelta(days=7))
        except SQLAlchemyError:
            return []
        return [m.row() for m in movers.rank(frame, windows, firing)]

    @app.callback(Output("key-page", "children"), Output("key-shown", "data"),
                  Input("movers-table", "selected_rows"), Input("key-focus", "data"), Input("range", "value"),
                  Input("custom-start", "value"), Input("custom-end", "value"), Input("tz-done", "data"),
                  State("movers-table", "data"), State("key-shown", "data"), prevent_initial_call=True)
    def key_page(selected: list[int] | None, focus: list[str] | None, rng: str, cs: str | None, ce: str | None,
                 _: Any, rows: list[dict[str, Any]] | None, shown: list[str] | None) -> Any:
        triggered = {t["prop_id"].split(".")[0] for t in dash.ctx.triggered}  # a shared link sets range and key at once
        if "key-focus" in triggered:
            key = focus
        elif "movers-table" in triggered:  # a row selected (a click, or Space on its radio button)
            key = [rows[selected[0]]["key_type"], rows[selected[0]]["key"]] if selected and rows and selected[0] < len(rows) else None
        else:  # a new range: the same key again
            key = shown
        if not key:
            return "Select a key to see its page.", None
        key_type, name = key
        try:
            start, end = time_range(engine, rng, cs, ce)
            band = movers.baseline_band(queries.key_series(engine, key_type, name, start, end))
            marks = queries.alert_rows(engine, start, end, key_type=key_type)
            marks = marks[marks["key"] == name]
            evidence = queries.headlines_for(engine, key_type, name, start, end, limit=15)
        except SQLAlchemyError:
            return "Store unavailable.", key
        items = [html.Li([html.A(h.headline, href=h.url, target="_blank", rel="noopener") if h.url else h.headline,
                          f"  ({h.sentiment_score:+.2f}, {when(h.published_at)})"])
                 for h in evidence.itertuples()]
        return html.Div([
            html.H4(f"{key_type} {name}", id="key-title"),
            html.P(f"{int(band['negative'].sum())} negative of {int(band['count'].sum())} headlines in the range; "
                   f"{len(marks)} alert{'s' if len(marks) != 1 else ''}.", style={"color": "#444"}),
            dcc.Graph(id="key-chart", figure=figures.key_chart(band, marks, key_type, name, auth.current_tz())),
            html.H5("Evidence: the most negative headlines of the range"),
            html.Ul(items or [html.Li("No headlines in this range.")], id="key-evidence"),
        ]), [key_type, name]

    @app.callback(Output("alerts-table", "data"), Input("tick", "n_intervals"), Input("range", "value"),
                  Input("alert-status", "value"), Input("ack-done", "data"), Input("silence-done", "data"),
                  Input("custom-start", "value"), Input("custom-end", "value"), Input("tz-done", "data"))
    def alert_table(_: Any, rng: str, status: str, __: Any, ___: Any, cs: str | None, ce: str | None, ____: Any) -> Any:
        try:
            start, end = time_range(engine, rng, cs, ce)
            # alerts stay listed for a week past the chart range: an analyst must not miss one
            frame = queries.alert_rows(engine, start - timedelta(days=7), end + timedelta(days=1),
                                       status=None if status == "all" else status)
            holding = silences.active()
        except SQLAlchemyError:
            return []
        now = datetime.now(timezone.utc).timestamp()
        frame["silenced"] = ["yes" if any(s.matches(kt, k, sev, now) for s in holding) else ""
                             for kt, k, sev in zip(frame["key_type"], frame["key"], frame["severity"])]
        frame["fired_at"] = local_times(frame["fired_at"])
        return frame.to_dict("records")

    @app.callback(Output("alert-detail", "children"), Output("alert-shown", "data"),
                  Input("alerts-table", "selected_rows"), Input("ack-done", "data"), Input("silence-done", "data"),
                  Input("alert-focus", "data"), Input("tz-done", "data"), State("alerts-table", "data"),
                  State("alert-shown", "data"), prevent_initial_call=True)
    def alert_detail(selected: list[int] | None, _: Any, __: Any, focus: str | None, ___: Any,
                     rows: list[dict[str, Any]] | None, shown: dict[str, str] | None) -> Any:
        # every input that changed, not triggered_id (the first of them only): a shared link's
        # page load changes the focus and the time zone at once, and the focus must win
        triggered = {t["prop_id"].split(".")[0] for t in dash.ctx.triggered}
        if "alert-focus" in triggered:
            alert_id = focus
        elif "alerts-table" in triggered:
            alert_id = rows[selected[0]]["id"] if selected and rows and selected[0] < len(rows) else None
        else:  # acknowledged or silenced: the same page again
            alert_id = shown["id"] if shown else None
        if not alert_id:
            return "Select an alert to see its evidence.", None
        detail = guarded(queries.alert_detail)(engine, alert_id)
        if detail is None:
            return f"Alert {alert_id} is not in the store (it may have passed the retention period).", None
        start = detail["window_start"] if detail["window_start"].tzinfo else detail["window_start"].replace(tzinfo=timezone.utc)
        end = detail["window_end"] if detail["window_end"].tzinfo else detail["window_end"].replace(tzinfo=timezone.utc)
        evidence = [html.Li([html.A(h["headline"], href=h["url"], target="_blank") if h.get("url") else h["headline"],
                             f"  ({h['sentiment_score']:+.2f})"]) for h in detail["top_headlines"]]
        acked = (f"Acknowledged by {detail['acked_by']} at {when(detail['acked_at'])}"
                 if detail.get("acked_by") else "Not acknowledged")
        return html.Div([
            html.H4(detail["summary"], id="alert-summary"),
            html.P(f"{detail['severity']} · {detail['status']} · {detail['key_type']} {detail['key']} · window "
                   f"{when(start)} to {when(end, '%H:%M')} · rule {detail['rule']}"),
            html.P(figures_in_words(detail["observed"], detail["baseline"]), id="alert-figures", style={"color": "#555"}),
            _alert_chart(engine, detail, start, end),
            html.H5("Evidence: the most negative headlines of the window"), html.Ul(evidence, id="alert-evidence"),
            html.Div([html.Button("Acknowledge", id="ack-button", disabled=not auth.may("analyst"),
                                  title="" if auth.may("analyst") else f"your role ({auth.current_role()}) can read only"),
                      html.Span(acked, id="ack-status", style={"marginLeft": "12px"})]),
            _silence_controls(guarded(silences.matching)(detail["key_type"], detail["key"], detail["severity"])),
            html.Div(_drill_panel(engine, detail["key_type"], detail["key"], start, end,
                                  "All headlines of this key and window"), style={"marginTop": "12px"}),
        ]), {"id": detail["id"], "key_type": detail["key_type"], "key": detail["key"]}

    @app.callback(Output("ack-done", "data"), Input("ack-button", "n_clicks"), State("alert-shown", "data"),
                  prevent_initial_call=True)
    def acknowledge(clicks: int | None, shown: dict[str, str] | None) -> Any:
        if not clicks or not shown or not auth.may("analyst"):
            return dash.no_update
        alert_id = shown["id"]
        when = datetime.now(timezone.utc)
        store.acknowledge(alert_id, auth.current_user(), when)
        log.info("alert acknowledged", extra={"alert_id": alert_id, "user": auth.current_user()})
        return {"id": alert_id, "at": when.isoformat()}

    @app.callback(Output("silence-done", "data"), Output("silence-status", "children"),
                  Input("silence-button", "n_clicks"), State("silence-for", "value"), State("silence-comment", "value"),
                  State("alert-shown", "data"), prevent_initial_call=True)
    def silence(clicks: int | None, duration: str, comment: str | None, row: dict[str, str] | None) -> Any:
        if not clicks or not row:
            return dash.no_update, dash.no_update
        if not auth.may("analyst"):
            return dash.no_update, f"Not silenced: your role ({auth.current_role()}) can read only"
        try:
            made = silences.add(auth.current_user(), comment or "", datetime.now(timezone.utc).timestamp()
                                + SILENCE_FOR.get(duration, SILENCE_FOR["4h"]), key_type=row["key_type"], key=row["key"])
        except ValueError as exc:
            return dash.no_update, f"Not silenced: {exc}"
        log.info("silence created", extra={"silence": made.id, "user": made.created_by, "key": row["key"]})
        return {"id": made.id}, dash.no_update

    @app.callback(Output("feed-topic", "options"), Input("range", "value"), Input("tick", "n_intervals"),
                  State("custom-start", "value"), State("custom-end", "value"))
    def feed_topics(rng: str, _: Any, cs: str | None, ce: str | None) -> Any:
        try:
            start, end = time_range(engine, rng, cs, ce)
            return [{"label": t, "value": t} for t in queries.topics_in_range(engine, start, end)]
        except SQLAlchemyError:
            return []

    feed_inputs = [Input("range", "value"), Input("custom-start", "value"), Input("custom-end", "value"),
                   Input("feed-topic", "value"), Input("feed-sentiment", "value"), Input("feed-ticker", "value"),
                   Input("feed-text", "value"), Input("feed-table", "sort_by")]

    @app.callback(Output("feed-table", "data"), Output("feed-table", "page_count"), Output("feed-count", "children"),
                  Input("tick", "n_intervals"), Input("tz-done", "data"), Input("feed-table", "page_current"), *feed_inputs)
    def feed(_: Any, __: Any, page: int | None, *args: Any) -> Any:
        try:
            f = feed_filter(*args)
            frame, total = queries.news_page(engine, f, page or 0, FEED_PAGE)
        except SQLAlchemyError:
            return [], 1, "store unavailable"
        frame["published_at"] = local_times(frame["published_at"], "%Y-%m-%d %H:%M:%S")
        frame["headline"] = [headline_link(h, u) for h, u in zip(frame["headline"], frame["url"])]
        for c in ("p_negative", "p_neutral", "p_positive", "sentiment_score"):
            frame[c] = frame[c].round(3)
        shown = f"{queries.COUNT_CAP:,}+" if total > queries.COUNT_CAP else f"{total:,}"
        return frame.to_dict("records"), max(1, -(-min(total, queries.COUNT_CAP) // FEED_PAGE)), f"{shown} headlines"

    @app.callback(Output("feed-table", "page_current"), *feed_inputs[:-1], prevent_initial_call=True)
    def first_page(*_: Any) -> int:
        return 0  # a new filter starts at page one; a refresh keeps the page

    @app.callback(Output("feed-download", "data"), Input("feed-export", "n_clicks"),
                  *(State(i.component_id, i.component_property) for i in feed_inputs), prevent_initial_call=True)
    def export(_: Any, *args: Any) -> Any:
        frame = figures.csv_safe(queries.news_export(engine, feed_filter(*args)))
        return dcc.send_data_frame(frame.to_csv, "riskpulse-news.csv", index=False)

    return app


def serve(settings: Settings, port: int | None = None, host: str = "127.0.0.1") -> None:
    """Werkzeug's threaded server: enough for a desk of analysts; behind gunicorn use dashboard.wsgi:server."""
    from werkzeug.serving import run_simple

    app = create_app(settings, int(settings.dashboard_refresh_s * 1000))
    run_simple(host, port or settings.dashboard_port, app.server, threaded=True, use_reloader=False)
