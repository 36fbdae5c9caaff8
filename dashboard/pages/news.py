"""News feed: the scored headlines of the range, one row per story (its copies counted; tick
"every copy" or give a story id to see them), filtered, sorted, paged in SQL, exported as CSV.
Items the model cannot read (another language, no text) show as unscored, never as neutral."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dash_table, dcc, html, no_update
from sqlalchemy.exc import SQLAlchemyError

from .. import figures, ids, queries
from ..display import CARD, SENTIMENTS, corrected_note, headline_link, local_times, time_range
from . import PageContext

FEED_PAGE = 25
HIDDEN = ("id", "url", "story_id", "sentiment_status", "revision")


def tab() -> dcc.Tab:
    return dcc.Tab(label="News feed", value="news", children=[
        html.Div([
            dcc.Dropdown(id=ids.FEED_TOPIC, multi=True, placeholder="Topics", style={"minWidth": "260px"}),
            dcc.Dropdown(id=ids.FEED_SENTIMENT, multi=True, placeholder="Sentiment", style={"minWidth": "200px"},
                         options=[{"label": s, "value": s} for s in SENTIMENTS]),
            dcc.Input(id=ids.FEED_TICKER, placeholder="Ticker", debounce=True, style={"width": "90px"}),
            dcc.Input(id=ids.FEED_TEXT, placeholder="Words in headline", debounce=True, style={"width": "220px"}),
            dcc.Input(id=ids.FEED_STORY, placeholder="Story id", debounce=True, style={"width": "160px"}),
            dcc.Checklist(id=ids.FEED_COPIES, options=[{"label": " every copy", "value": "all"}], value=[]),
            html.Button("Export CSV", id=ids.FEED_EXPORT), dcc.Download(id=ids.FEED_DOWNLOAD),
            html.Span(id=ids.FEED_COUNT, style={"color": "#555"}),
        ], style={"display": "flex", "gap": "10px", "alignItems": "center", **CARD}),
        html.Div(dcc.Graph(id=ids.FEED_SPREAD, config={"displayModeBar": False}, style={"height": "220px"}),
                 id=ids.FEED_SPREAD_BOX, style={"display": "none", **CARD}),
        html.Div([dash_table.DataTable(
            id=ids.FEED_TABLE, page_current=0, page_size=FEED_PAGE, page_action="custom",
            sort_action="custom", sort_mode="single", sort_by=[{"column_id": "published_at", "direction": "desc"}],
            columns=[{"name": c, "id": c, **({"presentation": "markdown"} if c == "headline" else {})}
                     for c in queries.FEED_COLUMNS if c not in HIDDEN],
            markdown_options={"link_target": "_blank", "html": False},
            style_cell={"textAlign": "left", "whiteSpace": "normal", "fontSize": 13},
            style_data_conditional=[{"if": {"filter_query": '{sentiment} = "negative"', "column_id": "sentiment"},
                                     "color": "#c62828"},
                                    {"if": {"filter_query": '{sentiment} = "positive"', "column_id": "sentiment"},
                                     "color": "#2e7d32"}])], style=CARD),
    ])


def register(app: Dash, ctx: PageContext) -> None:
    engine = ctx.engine

    def feed_filter(rng: str, cs: str | None, ce: str | None, topics: list[str] | None, sentiments: list[str] | None,
                    ticker: str | None, text: str | None, story: str | None, every: list[str] | None,
                    sort_by: list[dict[str, str]] | None) -> queries.FeedFilter:
        start, end = time_range(engine, rng, cs, ce)
        sort = tuple((s["column_id"], s["direction"]) for s in (sort_by or []))
        return queries.FeedFilter(start=start, end=end, topics=tuple(topics or ()), sentiments=tuple(sentiments or ()),
                                  ticker=ticker or None, text=text or None, sort=sort or (("published_at", "desc"),),
                                  every_copy=bool(every), story=(story or "").strip() or None)

    feed_inputs = [Input(ids.RANGE, "value"), Input(ids.CUSTOM_START, "value"), Input(ids.CUSTOM_END, "value"),
                   Input(ids.FEED_TOPIC, "value"), Input(ids.FEED_SENTIMENT, "value"), Input(ids.FEED_TICKER, "value"),
                   Input(ids.FEED_TEXT, "value"), Input(ids.FEED_STORY, "value"), Input(ids.FEED_COPIES, "value"),
                   Input(ids.FEED_TABLE, "sort_by")]

    @app.callback(Output(ids.FEED_TABLE, "data"), Output(ids.FEED_TABLE, "page_count"), Output(ids.FEED_COUNT, "children"),
                  Input(ids.TICK, "n_intervals"), Input(ids.TZ_DONE, "data"), Input(ids.FEED_TABLE, "page_current"), *feed_inputs)
    def feed(_: Any, __: Any, page: int | None, *args: Any) -> Any:
        try:
            f = feed_filter(*args)
            frame, total = queries.news_page(engine, f, page or 0, FEED_PAGE)
        except SQLAlchemyError:
            return [], 1, "store unavailable"
        frame["published_at"] = local_times(frame["published_at"], "%Y-%m-%d %H:%M:%S")
        frame["headline"] = [headline_link(h, u) + corrected_note(r)
                             for h, u, r in zip(frame["headline"], frame["url"], frame["revision"])]
        for c in ("p_negative", "p_neutral", "p_positive", "sentiment_score"):
            frame[c] = frame[c].round(3)
        unread = frame["sentiment_status"].notna() & (frame["sentiment_status"] != "scored")
        frame.loc[unread, "sentiment"] = "unscored"  # the model cannot read it: no sentiment to show
        shown = f"{queries.COUNT_CAP:,}+" if total > queries.COUNT_CAP else f"{total:,}"
        what = f"{shown} headlines" if f.every_copy or f.story else f"{shown} stories"
        if f.story and (spread := queries.story_spread(engine, f.story)) is not None:
            minutes = (spread["last"] - spread["first"]).total_seconds() / 60
            what += f": {spread['copies']} copies from {spread['sources']} sources over {minutes:.0f} min"
        return frame.to_dict("records"), max(1, -(-min(total, queries.COUNT_CAP) // FEED_PAGE)), what

    @app.callback(Output(ids.FEED_STORY, "value"), Input(ids.FEED_TABLE, "active_cell"), State(ids.FEED_TABLE, "data"),
                  prevent_initial_call=True)
    def open_story(cell: dict[str, Any] | None, rows: list[dict[str, Any]] | None) -> Any:
        """A click on a story's copies opens the story: its copies, and its spread over time."""
        if not cell or cell.get("column_id") != "copies" or not rows or cell["row"] >= len(rows):
            return no_update
        row = rows[cell["row"]]
        return row.get("story_id") or no_update if (row.get("copies") or 1) > 1 else no_update

    @app.callback(Output(ids.FEED_SPREAD, "figure"), Output(ids.FEED_SPREAD_BOX, "style"), Input(ids.FEED_STORY, "value"),
                  Input(ids.TZ_DONE, "data"))
    def spread(story: str | None, _: Any) -> Any:
        hidden = {"display": "none", **CARD}
        if not story or not story.strip():
            return figures.empty(""), hidden
        try:
            copies = queries.story_copies(engine, story.strip())
        except SQLAlchemyError:
            return figures.empty("store unavailable"), CARD
        return figures.story_spread(copies), CARD

    @app.callback(Output(ids.FEED_TABLE, "page_current"), *feed_inputs[:-1], prevent_initial_call=True)
    def first_page(*_: Any) -> int:
        return 0  # a new filter starts at page one; a refresh keeps the page

    @app.callback(Output(ids.FEED_DOWNLOAD, "data"), Input(ids.FEED_EXPORT, "n_clicks"),
                  *(State(i.component_id, i.component_property) for i in feed_inputs), prevent_initial_call=True)
    def export(_: Any, *args: Any) -> Any:
        frame = figures.csv_safe(queries.news_export(engine, feed_filter(*args)))
        return dcc.send_data_frame(frame.to_csv, "riskpulse-news.csv", index=False)
