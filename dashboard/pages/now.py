"""Now: the keys burning now, ranked by how unusual their last windows are, and a key's page
(its negatives against the usual band, its alerts, its most negative headlines)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dash
from dash import Dash, Input, Output, State, dash_table, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from .. import auth, figures, ids, movers, queries
from ..display import CARD, time_range, when
from . import PageContext


def tab() -> dcc.Tab:
    return dcc.Tab(label="Now", value="now", children=[
        html.Div([html.H4("What is burning now", style={"margin": "0 0 4px"}),
                  html.P("Keys ranked by how unusual their last windows are (the detector's own figure: "
                         "standard deviations above their usual negatives), firing alerts first. "
                         "Select a row for the key's page.", style={"color": "#444", "margin": "0 0 8px"}),
                  dash_table.DataTable(
                      id=ids.MOVERS_TABLE, row_selectable="single", page_size=15,
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
        html.Div(id=ids.KEY_PAGE, style=CARD, children="Select a key to see its page."),
    ])


def register(app: Dash, ctx: PageContext) -> None:
    engine, window_s = ctx.engine, ctx.settings.window_s

    @app.callback(Output(ids.MOVERS_TABLE, "data"), Input(ids.TICK, "n_intervals"))
    def movers_table(_: Any) -> Any:
        try:
            end = queries.latest_time(engine)
            if end is None:
                return []
            last = (int(end.timestamp()) // window_s) * window_s - window_s  # the newest closed window
            windows = [last - window_s * i for i in range(movers.BASELINE + movers.RECENT - 1, -1, -1)]
            frame = queries.window_counts(engine, windows)
            firing = queries.firing_keys(engine, end - timedelta(days=7))
            fired = queries.fired_figures(engine, end - timedelta(days=7))
        except SQLAlchemyError:
            return []
        return [m.row() for m in movers.rank(frame, windows, firing, fired=fired)]

    @app.callback(Output(ids.KEY_PAGE, "children"), Output(ids.KEY_SHOWN, "data"),
                  Input(ids.MOVERS_TABLE, "selected_rows"), Input(ids.KEY_FOCUS, "data"), Input(ids.RANGE, "value"),
                  Input(ids.CUSTOM_START, "value"), Input(ids.CUSTOM_END, "value"), Input(ids.TZ_DONE, "data"),
                  State(ids.MOVERS_TABLE, "data"), State(ids.KEY_SHOWN, "data"), prevent_initial_call=True)
    def key_page(selected: list[int] | None, focus: list[str] | None, rng: str, cs: str | None, ce: str | None,
                 _: Any, rows: list[dict[str, Any]] | None, shown: list[str] | None) -> Any:
        triggered = {t["prop_id"].split(".")[0] for t in dash.ctx.triggered}  # a shared link sets range and key at once
        if ids.KEY_FOCUS in triggered:
            key = focus
        elif ids.MOVERS_TABLE in triggered:  # a row selected (a click, or Space on its radio button)
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
            html.H4(f"{key_type} {name}", id=ids.KEY_TITLE),
            html.P(f"{int(band['negative'].sum())} negative of {int(band['count'].sum())} headlines in the range; "
                   f"{len(marks)} alert{'s' if len(marks) != 1 else ''}.", style={"color": "#444"}),
            dcc.Graph(id=ids.KEY_CHART, figure=figures.key_chart(band, marks, key_type, name, auth.current_tz())),
            html.H5("Evidence: the most negative headlines of the range"),
            html.Ul(items or [html.Li("No headlines in this range.")], id=ids.KEY_EVIDENCE),
        ]), [key_type, name]
