"""Overview: every topic's negative trend and the negative share by topic, with a click on a
point or a cell for its headlines."""

from __future__ import annotations

from typing import Any

import dash
from dash import Dash, Input, Output, State, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from .. import figures, ids, queries
from ..display import CARD, drill_from_click, in_zone, time_range
from . import PageContext, guarded


def tab() -> dcc.Tab:
    return dcc.Tab(label="Overview", value="overview", children=[
        html.Div([dcc.Graph(id=ids.TOPIC_LINES)], style=CARD),
        html.Div([html.H4("Negative share by topic"), dcc.Graph(id=ids.TOPIC_HEATMAP)], style=CARD),
        html.Div(id=ids.OVERVIEW_DRILL, style=CARD, children="Click a point or a heatmap cell to see its headlines."),
    ])


def register(app: Dash, ctx: PageContext) -> None:
    engine = ctx.engine

    @app.callback(Output(ids.TOPIC_LINES, "figure"), Output(ids.TOPIC_HEATMAP, "figure"),
                  Input(ids.TICK, "n_intervals"), Input(ids.RANGE, "value"), Input(ids.CUSTOM_START, "value"),
                  Input(ids.CUSTOM_END, "value"), Input(ids.TZ_DONE, "data"))
    def overview(_: Any, rng: str, cs: str | None, ce: str | None, __: Any) -> tuple[Any, Any]:
        try:
            start, end = time_range(engine, rng, cs, ce)
            frame = queries.trend_series(engine, "topic", start, end, top_n=None)
            marks = queries.alert_rows(engine, start, end, key_type="topic")
        except SQLAlchemyError:
            return figures.empty("Store unavailable"), figures.empty("Store unavailable")
        frame["bucket"], marks["window_start"] = in_zone(frame["bucket"]), in_zone(marks["window_start"])
        return figures.trend_lines(figures.busiest(frame, 8), marks, "topic"), figures.heatmap(frame)

    @app.callback(Output(ids.OVERVIEW_DRILL, "children"), Input(ids.TOPIC_LINES, "clickData"),
                  Input(ids.TOPIC_HEATMAP, "clickData"), State(ids.RANGE, "value"), State(ids.CUSTOM_START, "value"),
                  State(ids.CUSTOM_END, "value"), prevent_initial_call=True)
    def overview_drill(lines: Any, heat: Any, rng: str, cs: str | None, ce: str | None) -> Any:
        source = heat if dash.ctx.triggered_id == ids.TOPIC_HEATMAP else lines
        return guarded(drill_from_click)(engine, source, "topic", rng, cs, ce)
