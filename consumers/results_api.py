"""The adapter's HTTP side: ``POST /results`` for the agency, ``/health`` and ``/metrics`` for operators."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from arrears.errors import PublishError
from schemas import Catalog, CodecError

from .metrics import AdapterMetrics
from .results import InvalidResults, ResultSink, parse_results
from .signing import SIGNATURE_HEADER, TOLERANCE_SECONDS, verify

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # a batch of results, not a bulk upload: files go through the inbox


def make_app(
    *,
    agency_id: str,
    secrets: Sequence[str] | None,
    catalog: Catalog,
    sink: ResultSink,
    metrics: AdapterMetrics,
    health: Callable[[], tuple[int, dict[str, Any]]],
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The aiohttp application of one adapter.

    *secrets*: the agency's secret, or two during a rotation (either verifies); None disables
    ``POST /results``. *clock*: unix seconds, against which a signature's ``t`` is checked.
    """

    def refuse(status: int, cause: str, reason: str, **extra: Any) -> web.Response:
        metrics.rejected("http", cause)
        # Only the field path goes to the log: the rest of a reason may quote the agency's values.
        log.info("results refused (%d %s) for %s at %s", status, cause, agency_id, reason.split(":")[0])
        return web.json_response({"error": reason, **extra}, status=status)

    async def post_results(request: web.Request) -> web.Response:
        if secrets is None:
            return refuse(
                404,
                "disabled",
                f"agency {agency_id} reports results through its inbox "
                "(set transport.secret_env to enable POST /results)",
            )
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return refuse(413, "too_large", f"body: larger than {MAX_BODY_BYTES} bytes; split the batch")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return refuse(413, "too_large", f"body: larger than {MAX_BODY_BYTES} bytes; split the batch")
        checked = verify(secrets, body, request.headers.get(SIGNATURE_HEADER), clock(), TOLERANCE_SECONDS)
        if not checked:
            return refuse(401, "stale" if checked.stale else "signature", f"signature: {checked.problem}")
        try:
            results = parse_results(catalog, body, agency_id)
        except InvalidResults as exc:
            extra = {"index": exc.index} if exc.index is not None else {}
            return refuse(400, "invalid", exc.reason, **extra)
        loop = asyncio.get_running_loop()
        try:
            # Flushing blocks until the broker acknowledges; keep it off the event loop.
            await loop.run_in_executor(None, sink.publish_batch, results)
        except PublishError as exc:
            log.error("results from agency %s not acknowledged by the broker: %s", agency_id, exc)
            metrics.rejected("http", "broker", len(results))
            return web.json_response(
                {"error": "broker: the results were not all acknowledged; retry the same request"}, status=503
            )
        except CodecError as exc:  # parse_results validated everything; this is the last guard
            return refuse(400, "invalid", str(exc))
        metrics.accepted("http", len(results))
        return web.json_response({"accepted": len(results)}, status=202)

    async def get_health(_request: web.Request) -> web.Response:
        status, body = health()
        return web.json_response(body, status=status)

    async def get_metrics(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.content_type})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/results", post_results)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    return app
