"""The riskpulse dashboard's shell: the header (range, time zone, sign-in, a link to the view),
the banner, the address bar, and the pages in order (dashboard/pages/, one module per tab).

Every callback reads through dashboard/queries.py (aggregated in SQL) and answers with a clear
message when the store is empty or unreachable. A refresh interval re-runs the data callbacks
only; zoom (``uirevision``), filters, page and selection live in components it never resets.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
from dash import Dash, Input, Output, State, dcc, html
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from riskpulse.alerts.silences import Silences
from riskpulse.settings import Settings
from riskpulse.store.news import Store
from riskpulse.store.users import Users

from . import auth, ids, queries
from .display import CARD, RANGES, ZONES, when
from .pages import PageContext, alerts, news, now, overview, tickers
from .routes import install_metrics, install_readiness, install_silences_api
from .urls import key_from_url, url_for_view, view_from_url

log = logging.getLogger(__name__)

PAGES = (now, overview, tickers, alerts, news)  # in the order of their tabs


def _range_controls() -> html.Div:
    return html.Div([
        dcc.RadioItems(id=ids.RANGE, value="1h", inline=True,
                       options=[{"label": f" {k}", "value": k} for k in (*RANGES, "custom")],
                       inputStyle={"marginLeft": "12px"}, labelStyle={"display": "inline-block"},
                       style={"display": "flex"}),
        dcc.Input(id=ids.CUSTOM_START, type="datetime-local", style={"marginLeft": "12px"}),
        dcc.Input(id=ids.CUSTOM_END, type="datetime-local", style={"marginLeft": "6px"}),
        html.Span(id=ids.AS_OF, style={"marginLeft": "18px", "color": "#555", "whiteSpace": "nowrap"}),
    ], style={"display": "flex", "alignItems": "center"})


def layout(refresh_ms: int) -> html.Div:
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        html.Div([html.H2("riskpulse", style={"margin": "0 18px 0 0"}), _range_controls(),
                  html.A("Link to this view", id=ids.SHARE_LINK, href="/", style={"marginLeft": "auto", "whiteSpace": "nowrap"}),
                  html.Span(id=ids.SIGNED_IN, style={"marginLeft": "16px", "color": "#444", "whiteSpace": "nowrap"}),
                  dcc.Dropdown(id=ids.TZ_PICK, options=ZONES, clearable=False, searchable=True,
                               style={"width": "190px", "marginLeft": "12px"}),
                  dcc.Store(id=ids.TZ_DONE),
                  html.A("Sign out", href="/logout", style={"marginLeft": "16px", "whiteSpace": "nowrap"})],
                 style={"display": "flex", "alignItems": "center", **CARD}),
        html.Div(id=ids.BANNER),
        dcc.Interval(id=ids.TICK, interval=refresh_ms),
        dcc.Store(id=ids.ACK_DONE),
        dcc.Store(id=ids.SILENCE_DONE),
        dcc.Store(id=ids.ALERT_FOCUS),  # an alert asked for by its URL, /alerts/<id>
        dcc.Store(id=ids.ALERT_SHOWN),  # the alert whose page is open: what Acknowledge and Silence act on
        dcc.Store(id=ids.KEY_FOCUS),  # a key asked for by its URL, /keys/<type>/<key>
        dcc.Store(id=ids.KEY_SHOWN),  # the key whose page is open
        dcc.Tabs(id=ids.TABS, value="now", children=[page.tab() for page in PAGES]),
    ], style={"background": "#f4f5f7", "padding": "14px", "fontFamily": "system-ui, sans-serif", "minHeight": "100vh"})


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
                     settings.dashboard_proxy_default_role), trusted_proxies=settings.dashboard_trusted_proxies)
    install_metrics(app.server)
    install_readiness(app.server, engine)
    app.layout = layout(refresh_ms)
    install_silences_api(app.server, silences)
    ctx = PageContext(settings, store, engine, silences)
    for page in PAGES:
        page.register(app, ctx)

    @app.callback(Output(ids.SIGNED_IN, "children"), Output(ids.TZ_PICK, "value"), Output(ids.TZ_PICK, "options"),
                  Input(ids.URL, "pathname"))
    def signed_in(_: Any) -> Any:
        zone = str(auth.current_tz())
        return f"{auth.current_user()} ({auth.current_role()})", zone, ZONES if zone in ZONES else [zone, *ZONES]

    @app.callback(Output(ids.TZ_DONE, "data"), Input(ids.TZ_PICK, "value"), prevent_initial_call=True)
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

    @app.callback(Output(ids.BANNER, "children"), Output(ids.AS_OF, "children"), Input(ids.TICK, "n_intervals"),
                  Input(ids.TZ_DONE, "data"))
    def banner(_: Any, __: Any) -> tuple[Any, str]:
        try:
            latest = queries.latest_time(engine)
        except SQLAlchemyError as exc:
            return (html.Div(f"Store unavailable ({safe_url}): {type(exc).__name__}. Charts resume when it is back.",
                             id=ids.STORE_ERROR, style={**CARD, "background": "#fdecea", "color": "#b00020"}), "")
        if latest is None:
            return (html.Div("No data yet: start the worker (riskpulse worker) and send news "
                             "(riskpulse replay FILE, riskpulse rss URL or the ingest endpoint).",
                             id=ids.EMPTY_STATE, style={**CARD, "background": "#fff8e1"}), "")
        return None, f"data up to {when(latest)}"

    @app.callback(Output(ids.TABS, "value"), Output(ids.RANGE, "value"), Output(ids.ALERT_FOCUS, "data"),
                  Output(ids.KEY_FOCUS, "data"), Input(ids.URL, "pathname"), State(ids.URL, "search"))
    def from_url(path: str | None, search: str | None) -> Any:
        """A shared link opens the view it names: /alerts/<id>, /keys/<type>/<key>, or /?tab=...&range=..."""
        tab, rng, focus = view_from_url(path, search)
        key = key_from_url(path)
        return (tab or dash.no_update, rng or dash.no_update, focus or dash.no_update,
                list(key) if key else dash.no_update)

    @app.callback(Output(ids.SHARE_LINK, "href"), Input(ids.TABS, "value"), Input(ids.RANGE, "value"),
                  Input(ids.ALERT_SHOWN, "data"), Input(ids.KEY_SHOWN, "data"))
    def share(tab: str, rng: str, shown: dict[str, str] | None, key: list[str] | None) -> str:
        return url_for_view(tab, rng, shown["id"] if shown and tab == "alerts" else None,
                            (key[0], key[1]) if key and tab == "now" else None)

    return app


def serve(settings: Settings, port: int | None = None, host: str = "127.0.0.1") -> None:
    """Werkzeug's threaded server: enough for a desk of analysts; behind gunicorn use dashboard.wsgi:server."""
    from werkzeug.serving import run_simple

    app = create_app(settings, int(settings.dashboard_refresh_s * 1000))
    run_simple(host, port or settings.dashboard_port, app.server, threaded=True, use_reloader=False)
