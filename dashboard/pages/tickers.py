"""Tickers: the busiest tickers' trends (or those picked), with a click on a point for its headlines."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from .. import figures, ids, queries
from ..display import CARD, drill_from_click, in_zone, time_range
from . import PageContext, guarded


def tab() -> dcc.Tab:
    return dcc.Tab(label="Tickers", value="tickers", children=[
        html.Div([dcc.Dropdown(id=ids.TICKER_PICK, multi=True, placeholder="Search tickers (busiest shown by default)")],
                 style=CARD),
        html.Div([dcc.Graph(id=ids.TICKER_LINES)], style=CARD),
        html.Div(id=ids.TICKER_DRILL, style=CARD, children="Click a point to see its headlines."),
    ])


def register(app: Dash, ctx: PageContext) -> None:
    engine = ctx.engine

    @app.callback(Output(ids.TICKER_PICK, "options"), Input(ids.TICKER_PICK, "search_value"), Input(ids.RANGE, "value"),
                  State(ids.TICKER_PICK, "value"), State(ids.CUSTOM_START, "value"), State(ids.CUSTOM_END, "value"))
    def ticker_options(search: str | None, rng: str, chosen: list[str] | None, cs: str | None, ce: str | None) -> Any:
        try:
            start, end = time_range(engine, rng, cs, ce)
            keys = queries.ticker_keys(engine, start, end, search)
        except SQLAlchemyError:
            keys = []
        return [{"label": k, "value": k} for k in sorted(set(keys) | set(chosen or []))]

    @app.callback(Output(ids.TICKER_LINES, "figure"), Input(ids.TICK, "n_intervals"), Input(ids.RANGE, "value"),
                  Input(ids.TICKER_PICK, "value"), Input(ids.CUSTOM_START, "value"), Input(ids.CUSTOM_END, "value"),
                  Input(ids.TZ_DONE, "data"))
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

    @app.callback(Output(ids.TICKER_DRILL, "children"), Input(ids.TICKER_LINES, "clickData"), State(ids.RANGE, "value"),
                  State(ids.CUSTOM_START, "value"), State(ids.CUSTOM_END, "value"), prevent_initial_call=True)
    def ticker_drill(click: Any, rng: str, cs: str | None, ce: str | None) -> Any:
        return guarded(drill_from_click)(engine, click, "ticker", rng, cs, ce)
