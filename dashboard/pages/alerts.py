"""Alerts: every alert of the range (and a week before it) with the incident it belongs to, an
alert's page with its evidence and its incident's other alerts, and the analyst's actions:
acknowledge (every alert of the incident), silence its key's webhooks."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import dash
import pandas as pd
from dash import Dash, Input, Output, State, dash_table, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from .. import auth, figures, ids, movers, queries
from ..incidents_view import current_places, incidents_spec
from ..display import CARD, SILENCE_FOR, WARNING_TEXT, drill_panel, local_times, time_range, when
from . import PageContext, guarded

log = logging.getLogger("riskpulse.dashboard.app")


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
    return dcc.Graph(id=ids.ALERT_CHART, figure=fig, config={"displayModeBar": False})


def _silence_controls(silence: Any, keys: int = 1) -> html.Div:
    """Mute this key's webhooks (the alert stays listed and shown), or say who muted it and until when."""
    if silence is not None:
        until = datetime.fromtimestamp(silence.ends_at, timezone.utc)
        state = f"Silenced by {silence.created_by} until {when(until)}: {silence.comment}"
    else:
        state = "Not silenced: webhooks are sent"
    return html.Div([
        dcc.Dropdown(id=ids.SILENCE_FOR, value="4h", clearable=False, style={"width": "90px"},
                     options=[{"label": k, "value": k} for k in SILENCE_FOR]),
        dcc.Input(id=ids.SILENCE_COMMENT, placeholder="Why (required)", style={"width": "280px"}),
        html.Button("Silence this key" if keys == 1 else f"Silence the incident's {keys} keys", id=ids.SILENCE_BUTTON,
                    disabled=not auth.may("analyst"),
                    title="" if auth.may("analyst") else f"your role ({auth.current_role()}) can read only"),
        html.Span(state, id=ids.SILENCE_STATUS, style={"marginLeft": "8px", "color": "#555"}),
    ], style={"display": "flex", "gap": "8px", "alignItems": "center", "marginTop": "10px"})



def tab() -> dcc.Tab:
    return dcc.Tab(label="Alerts", value="alerts", children=[
        html.Div([dcc.RadioItems(id=ids.ALERT_STATUS, value="all", inline=True,
                                 options=[{"label": f" {s}", "value": s} for s in ("all", "firing", "resolved")]),
                  dash_table.DataTable(
                      id=ids.ALERTS_TABLE, row_selectable="single", page_size=15, sort_action="native",
                      columns=[{"name": c, "id": c} for c in ("fired_at", "severity", "status", "key_type", "key",
                                                              "summary", "incident", "muted_by", "acked_by",
                                                              "silenced")],
                      style_cell={"textAlign": "left", "whiteSpace": "normal", "fontSize": 13},
                      style_data_conditional=[
                          {"if": {"filter_query": '{severity} = "critical"', "column_id": "severity"},
                           "color": "#c62828", "fontWeight": "bold"},
                          {"if": {"filter_query": '{severity} = "warning"', "column_id": "severity"},
                           "color": WARNING_TEXT, "fontWeight": "bold"}])], style=CARD),
        html.Div(id=ids.ALERT_DETAIL, style=CARD, children="Select an alert to see its evidence."),
    ])


def spread_note(headline: dict[str, Any]) -> str:
    """How far an evidence story had spread (absent on alerts from before stories), or for a
    spread alert's timeline, who carried this copy and when."""
    if headline.get("published_at"):  # a spread alert's pick-up timeline: who carried it, when
        return f"  · {headline.get('source') or 'unknown source'} at {str(headline['published_at'])[11:16]} UTC"
    copies, sources = headline.get("copies"), headline.get("sources")
    if not copies or copies <= 1:
        return ""
    return f"  · {copies} copies" + (f" from {sources} sources" if sources else "") + \
        (f" · story {headline['story_id'][:12]}" if headline.get("story_id") else "")


def register(app: Dash, ctx: PageContext) -> None:
    engine, store, silences = ctx.engine, ctx.store, ctx.silences
    spec = incidents_spec(ctx.settings.alert_rules)

    @app.callback(Output(ids.ALERTS_TABLE, "data"), Input(ids.TICK, "n_intervals"), Input(ids.RANGE, "value"),
                  Input(ids.ALERT_STATUS, "value"), Input(ids.ACK_DONE, "data"), Input(ids.SILENCE_DONE, "data"),
                  Input(ids.CUSTOM_START, "value"), Input(ids.CUSTOM_END, "value"), Input(ids.TZ_DONE, "data"))
    def alert_table(_: Any, rng: str, status: str, __: Any, ___: Any, cs: str | None, ce: str | None, ____: Any) -> Any:
        try:
            start, end = time_range(engine, rng, cs, ce)
            # alerts stay listed for a week past the chart range: an analyst must not miss one
            frame = queries.alert_rows(engine, start - timedelta(days=7), end + timedelta(days=1),
                                       status=None if status == "all" else status)
            holding = silences.active()
            placed = current_places(store, spec)
        except SQLAlchemyError:
            return []
        now = datetime.now(timezone.utc).timestamp()
        # the incident by its short id, and for a muted alert the alert that mutes it
        frame["incident"] = [placed[i].incident[4:12] if i in placed else "" for i in frame["id"]]
        frame["muted_by"] = [placed[i].named(placed[i].muted_by) if i in placed and placed[i].muted_by else ""
                             for i in frame["id"]]
        frame["silenced"] = ["yes" if any(s.matches(kt, k, sev, now) for s in holding) else ""
                             for kt, k, sev in zip(frame["key_type"], frame["key"], frame["severity"])]
        frame["fired_at"] = local_times(frame["fired_at"])
        return frame.to_dict("records")

    @app.callback(Output(ids.ALERT_DETAIL, "children"), Output(ids.ALERT_SHOWN, "data"),
                  Input(ids.ALERTS_TABLE, "selected_rows"), Input(ids.ACK_DONE, "data"), Input(ids.SILENCE_DONE, "data"),
                  Input(ids.ALERT_FOCUS, "data"), Input(ids.TZ_DONE, "data"), State(ids.ALERTS_TABLE, "data"),
                  State(ids.ALERT_SHOWN, "data"), prevent_initial_call=True)
    def alert_detail(selected: list[int] | None, _: Any, __: Any, focus: str | None, ___: Any,
                     rows: list[dict[str, Any]] | None, shown: dict[str, str] | None) -> Any:
        # every input that changed, not triggered_id (the first of them only): a shared link's
        # page load changes the focus and the time zone at once, and the focus must win
        triggered = {t["prop_id"].split(".")[0] for t in dash.ctx.triggered}
        if ids.ALERT_FOCUS in triggered:
            alert_id = focus
        elif ids.ALERTS_TABLE in triggered:
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
                             f"  ({h['sentiment_score']:+.2f})", spread_note(h)]) for h in detail["top_headlines"]]
        acked = (f"Acknowledged by {detail['acked_by']} at {when(detail['acked_at'])}"
                 if detail.get("acked_by") else "Not acknowledged")
        place = (guarded(current_places)(store, spec) or {}).get(detail["id"])
        others = [a for a in place.members if a != detail["id"]] if place else []
        incident = html.P(
            [f"Incident {place.incident[4:12]}: " + (f"with {len(others)} other alert{'s' if len(others) != 1 else ''} "
                                                     f"({', '.join(place.named(a) for a in others[:6])}"
                                                     f"{', ...' if len(others) > 6 else ''})"
                                                     if others else "this alert alone"),
             f" · muted by {place.named(place.muted_by)} (its evidence is that alert's news): not notified on its own"
             if place.muted_by else ""] if place else "Incident: not among the last day's alerts",
            id=ids.ALERT_INCIDENT, style={"color": "#555"})
        return html.Div([
            html.H4(detail["summary"], id=ids.ALERT_SUMMARY),
            html.P(f"{detail['severity']} · {detail['status']} · {detail['key_type']} {detail['key']} · window "
                   f"{when(start)} to {when(end, '%H:%M')} · rule {detail['rule']}"),
            html.P(figures_in_words(detail["observed"], detail["baseline"]), id=ids.ALERT_FIGURES, style={"color": "#555"}),
            incident,
            _alert_chart(engine, detail, start, end),
            html.H5("Evidence: the most negative stories of the window, one headline each"), html.Ul(evidence, id=ids.ALERT_EVIDENCE),
            html.Div([html.Button("Acknowledge" + (f" the incident ({len(others) + 1} alerts)" if others else ""),
                                  id=ids.ACK_BUTTON, disabled=not auth.may("analyst"),
                                  title="" if auth.may("analyst") else f"your role ({auth.current_role()}) can read only"),
                      html.Span(acked, id=ids.ACK_STATUS, style={"marginLeft": "12px"})]),
            _silence_controls(guarded(silences.matching)(detail["key_type"], detail["key"], detail["severity"]),
                              len(place.keys()) if place else 1),
            html.Div(drill_panel(engine, detail["key_type"], detail["key"], start, end,
                                  "All headlines of this key and window"), style={"marginTop": "12px"}),
        ]), {"id": detail["id"], "key_type": detail["key_type"], "key": detail["key"]}

    @app.callback(Output(ids.ACK_DONE, "data"), Input(ids.ACK_BUTTON, "n_clicks"), State(ids.ALERT_SHOWN, "data"),
                  prevent_initial_call=True)
    def acknowledge(clicks: int | None, shown: dict[str, str] | None) -> Any:
        if not clicks or not shown or not auth.may("analyst"):
            return dash.no_update
        alert_id = shown["id"]
        when = datetime.now(timezone.utc)
        place = (guarded(current_places)(store, spec) or {}).get(alert_id)
        for member in (place.members if place else (alert_id,)):  # one event: acknowledged as one
            store.acknowledge(member, auth.current_user(), when)
        log.info("alert acknowledged", extra={"alert_id": alert_id, "user": auth.current_user(),
                                              "incident": place.incident if place else None})
        return {"id": alert_id, "at": when.isoformat()}

    @app.callback(Output(ids.SILENCE_DONE, "data"), Output(ids.SILENCE_STATUS, "children"),
                  Input(ids.SILENCE_BUTTON, "n_clicks"), State(ids.SILENCE_FOR, "value"), State(ids.SILENCE_COMMENT, "value"),
                  State(ids.ALERT_SHOWN, "data"), prevent_initial_call=True)
    def silence(clicks: int | None, duration: str, comment: str | None, row: dict[str, str] | None) -> Any:
        if not clicks or not row:
            return dash.no_update, dash.no_update
        if not auth.may("analyst"):
            return dash.no_update, f"Not silenced: your role ({auth.current_role()}) can read only"
        place = (guarded(current_places)(store, spec) or {}).get(row.get("id", ""))
        keys = place.keys() if place else [(row["key_type"], row["key"])]  # an incident: every key in it
        ends = datetime.now(timezone.utc).timestamp() + SILENCE_FOR.get(duration, SILENCE_FOR["4h"])
        try:
            made = [silences.add(auth.current_user(), comment or "", ends, key_type=key_type, key=key)
                    for key_type, key in keys]
        except ValueError as exc:
            return dash.no_update, f"Not silenced: {exc}"
        log.info("silence created", extra={"silences": [m.id for m in made], "user": auth.current_user(),
                                           "keys": [k for _, k in keys]})
        return {"id": made[0].id}, dash.no_update
