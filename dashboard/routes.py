"""The dashboard's plain HTTP routes beside its pages: /metrics, /readyz and the silences API."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from riskpulse.alerts.silences import Silences

from . import auth
from .display import SILENCE_FOR

log = logging.getLogger("riskpulse.dashboard.app")

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


def install_readiness(server: Any, engine: Any) -> None:
    @server.route("/readyz")
    def _readyz() -> Any:
        """Readiness: the store answers."""
        from sqlalchemy import text

        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return {"ready": False, "store": type(exc).__name__}, 503
        return {"ready": True}, 200
