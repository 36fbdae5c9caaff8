"""Plotly figures from the aggregated frames of dashboard/queries.py (no I/O here).

``uirevision`` is constant, so a refresh redraws the data and keeps the analyst's zoom and
legend choices.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

UIREV = "keep"
SEVERITY_COLOUR = {"critical": "#c62828", "warning": "#ef6c00"}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (a headline starting '=HYPERLINK(...') get a
    leading apostrophe (OWASP's CSV-injection advice); numbers stay numbers."""
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return out


def empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#555"}, xref="paper", yref="paper",
                       x=0.5, y=0.5)
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=320, uirevision=UIREV,
                      margin={"l": 20, "r": 20, "t": 20, "b": 20}, plot_bgcolor="#fff")
    return fig


def busiest(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The rows of the ``n`` keys with the most items in the frame (all of them if fewer)."""
    if frame.empty:
        return frame
    return frame[frame["key"].isin(frame.groupby("key")["count"].sum().nlargest(n).index)]


def trend_lines(frame: pd.DataFrame, alerts: pd.DataFrame, what: str) -> go.Figure:
    """Net sentiment, negative share and volume per key over time, alerts marked on the share panel."""
    if frame.empty:
        return empty(f"No {what} trends in this time range yet. Start the worker and send news "
                     "(riskpulse replay FILE), or widen the range.")
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.38, 0.38, 0.24],
                        subplot_titles=("Net sentiment (p_pos - p_neg, mean)", "Negative share", "Volume"))
    for key, part in frame.groupby("key", sort=False):
        custom = part[["key"]].to_numpy()
        common = {"x": part["bucket"], "legendgroup": key, "customdata": custom}
        fig.add_trace(go.Scatter(y=part["net"], name=key, mode="lines+markers", marker={"size": 4},
                                 hovertemplate="%{customdata[0]}<br>%{x}<br>net %{y:.2f}<extra></extra>", **common), 1, 1)
        fig.add_trace(go.Scatter(y=part["negative_share"], name=key, showlegend=False, mode="lines+markers",
                                 marker={"size": 4}, hovertemplate="%{customdata[0]}<br>%{x}<br>negative %{y:.0%}<extra></extra>",
                                 **common), 2, 1)
        fig.add_trace(go.Bar(y=part["count"], name=key, showlegend=False,
                             hovertemplate="%{customdata[0]}<br>%{x}<br>%{y} items<extra></extra>", **common), 3, 1)
    if not alerts.empty:
        for severity, part in alerts.groupby("severity"):
            fig.add_trace(go.Scatter(
                x=part["window_start"], y=[1.0] * len(part), mode="markers", name=f"alert ({severity})",
                marker={"symbol": "triangle-down", "size": 13, "color": SEVERITY_COLOUR.get(severity, "#333")},
                customdata=part[["key", "id"]].to_numpy(),
                hovertemplate="ALERT %{customdata[0]}<br>%{x}<extra></extra>"), 2, 1)
    fig.update_layout(height=620, barmode="stack", uirevision=UIREV, hovermode="closest",
                      legend={"orientation": "h", "y": -0.08}, margin={"l": 50, "r": 20, "t": 40, "b": 40},
                      plot_bgcolor="#fafafa")
    fig.update_yaxes(range=[-1, 1], row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=2, col=1)
    return fig


def heatmap(frame: pd.DataFrame) -> go.Figure:
    """Topic x time, coloured by negative share; a cell's hover gives the volume too."""
    if frame.empty:
        return empty("No topic trends in this time range yet.")
    share = frame.pivot_table(index="key", columns="bucket", values="negative_share", aggfunc="mean")
    count = frame.pivot_table(index="key", columns="bucket", values="count", aggfunc="sum").reindex_like(share)
    fig = go.Figure(go.Heatmap(z=share.to_numpy(), x=list(share.columns), y=list(share.index), zmin=0, zmax=1,
                               colorscale="Reds", customdata=count.fillna(0).to_numpy(), colorbar={"title": "neg."},
                               hovertemplate="%{y}<br>%{x}<br>negative %{z:.0%} of %{customdata} items<extra></extra>"))
    fig.update_layout(height=max(260, 28 * len(share.index) + 80), uirevision=UIREV,
                      margin={"l": 180, "r": 20, "t": 20, "b": 40})
    return fig


def _zoned(ts: Any, tz: Any) -> pd.Timestamp:
    """A stored time (naive means UTC) in zone ``tz``."""
    t = pd.Timestamp(ts)
    return (t.tz_localize("UTC") if t.tzinfo is None else t).tz_convert(tz)


def key_chart(band: pd.DataFrame, alerts: pd.DataFrame, key_type: str, key: str, tz: Any = "UTC") -> go.Figure:
    """One key: negatives per window against its usual band, windows with an alert shaded, times
    in zone ``tz``. ``band``: window_ts, count, negative, usual, lower, upper (dashboard/movers.py)."""
    if band.empty or not band["count"].any():
        return empty(f"No news about {key_type} {key} in this time range.")
    x = pd.to_datetime(band["window_ts"], unit="s", utc=True).dt.tz_convert(tz)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=band["upper"], mode="lines", line={"width": 0}, showlegend=False,
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=band["lower"], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(120,120,120,0.18)", name="usual range", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=band["usual"], mode="lines", line={"color": "#555", "dash": "dot"},
                             name="usual negatives", hovertemplate="%{x}<br>usual %{y:.1f}<extra></extra>"))
    fig.add_trace(go.Bar(x=x, y=band["negative"], name="negative headlines", marker={"color": "#c62828"},
                         customdata=band[["count"]].to_numpy(),
                         hovertemplate="%{x}<br>%{y} negative of %{customdata[0]}<extra></extra>"))
    for row in alerts.itertuples():
        fig.add_vrect(x0=_zoned(row.window_start, tz), x1=_zoned(row.window_end, tz), fillcolor=SEVERITY_COLOUR.get(row.severity, "#333"),
                      opacity=0.15, line_width=0, annotation_text=f"{row.severity} alert", annotation_position="top left")
    fig.update_layout(height=360, uirevision=UIREV, hovermode="x", margin={"l": 50, "r": 20, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.15}, plot_bgcolor="#fafafa",
                      yaxis={"title": "negative headlines", "rangemode": "tozero"})
    return fig


def story_spread(copies: pd.DataFrame) -> go.Figure:
    """A story's pick-up: copies and distinct sources over time, one step per copy."""
    if copies.empty:
        return empty("no stored copies of this story")
    times = pd.to_datetime(copies["published_at"], utc=True)
    seen: set[str] = set()
    sources = []
    for s in copies["source"]:
        if s:
            seen.add(s)
        sources.append(len(seen))
    fig = go.Figure()
    fig.add_scatter(x=times, y=list(range(1, len(copies) + 1)), mode="lines+markers", line_shape="hv", name="copies",
                    text=copies["source"].fillna("").tolist(), hovertemplate="%{x}<br>%{text}<extra>copies: %{y}</extra>")
    fig.add_scatter(x=times, y=sources, mode="lines", line_shape="hv", name="distinct sources")
    fig.update_layout(margin={"l": 40, "r": 10, "t": 10, "b": 30}, legend={"orientation": "h"}, yaxis={"rangemode": "tozero"})
    return fig
