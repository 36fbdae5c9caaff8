"""HTTP ingest: ``POST /v1/news`` with one item or a batch, answered with the ids written to Kafka.

An id in ``accepted`` is durable (acks=all) before the answer leaves; an item that is not a
valid ``news`` record is refused at the door with its index and reason, so the sender can fix
it (nothing is dropped silently). A bearer token is required: there is no anonymous ingest.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from .core.validation import Invalid, parse_news

log = logging.getLogger(__name__)

REQUESTS = Counter("riskpulse_ingest_requests_total", "Requests to POST /v1/news, by HTTP status", ["status"])
ITEMS = Counter("riskpulse_ingest_items_total", "Items sent to /v1/news: accepted (on Kafka) or rejected (with a reason)",
                ["result"])

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 500

Send = Callable[[list[tuple[bytes, bytes]]], Awaitable[None]]  # (key, value) pairs, returns once durable


def _problem(status: int, detail: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="riskpulse-ingest"'} if status == 401 else None
    return web.json_response({"error": detail, **extra}, status=status, headers=headers)


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def build_app(send: Send, token: str) -> web.Application:
    if not token:
        raise ValueError("set RISKPULSE_INGEST_TOKEN: the ingest endpoint never runs without a bearer token")

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/v1/news":
            REQUESTS.labels(str(response.status)).inc()
        return response

    async def post_news(request: web.Request) -> web.Response:
        if not _authorized(request, token):
            return _problem(401, "missing or wrong bearer token")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _problem(413, f"body over {MAX_BODY_BYTES} bytes: split the batch")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _problem(413, f"body over {MAX_BODY_BYTES} bytes: split the batch")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, too deep, a number too long
            return _problem(400, f"body is not acceptable JSON: {str(exc)[:200]}")
        items = payload if isinstance(payload, list) else payload.get("items", [payload]) if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            return _problem(400, "send a news object, a JSON array of them, or {\"items\": [...]}")
        if len(items) > MAX_BATCH:
            return _problem(413, f"{len(items)} items in one request; at most {MAX_BATCH}")
        now = datetime.now(timezone.utc)
        accepted: list[tuple[bytes, bytes]] = []
        ids: list[str] = []
        rejected: list[dict[str, Any]] = []
        for index, raw in enumerate(items):
            try:  # surrogatepass: a lone surrogate reaches validation, which names it
                value = json.dumps(raw, ensure_ascii=False).encode("utf-8", "surrogatepass")
            except (ValueError, RecursionError) as exc:
                rejected.append({"index": index, "reason": f"not encodable: {str(exc)[:200]}"})
                continue
            parsed = parse_news(value, now)
            if isinstance(parsed, Invalid):
                rejected.append({"index": index, "reason": parsed.reason})
                continue
            assert parsed.id is not None  # completed() derived it
            accepted.append((parsed.id.encode(), json.dumps(parsed.to_json(), ensure_ascii=False).encode("utf-8")))
            ids.append(parsed.id)
        if accepted:
            try:
                await send(accepted)
            except Exception as exc:  # noqa: BLE001 - any producer failure: nothing was acknowledged
                log.error("ingest could not write to Kafka", extra={"error": str(exc), "items": len(accepted)})
                return _problem(503, "Kafka did not acknowledge the items; retry later", accepted=[])
        ITEMS.labels("accepted").inc(len(ids))
        ITEMS.labels("rejected").inc(len(rejected))
        log.info("ingested", extra={"accepted": len(ids), "rejected": len(rejected)})
        return web.json_response({"accepted": ids, "rejected": rejected}, status=200 if ids else 422)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(request: web.Request) -> web.Response:
        """Prometheus, no token: counts only, no content."""
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[count])
    app.router.add_post("/v1/news", post_news)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def serve(bootstrap: str, topic: str, token: str, host: str, port: int) -> None:
    """Run the endpoint with an idempotent aiokafka producer until interrupted."""
    from aiokafka import AIOKafkaProducer

    from . import kafka_clients

    producer: AIOKafkaProducer | None = None

    async def send(pairs: list[tuple[bytes, bytes]]) -> None:
        assert producer is not None
        futures = [await producer.send(topic, value=value, key=key) for key, value in pairs]
        for future in futures:
            await future

    app = build_app(send, token)

    async def start_producer(_: web.Application) -> None:
        nonlocal producer
        producer = AIOKafkaProducer(**kafka_clients.client_config(bootstrap=bootstrap), acks="all",
                                    enable_idempotence=True)
        await producer.start()

    async def stop_producer(_: web.Application) -> None:
        if producer is not None:
            await producer.stop()

    app.on_startup.append(start_producer)
    app.on_cleanup.append(stop_producer)
    web.run_app(app, host=host, port=port, print=lambda msg: log.info(msg), access_log=None)
