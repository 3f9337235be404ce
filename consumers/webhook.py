"""The webhook transport: each work-order event POSTed, signed, retried, then dead-lettered."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from arrears.config import WebhookTransport
from arrears.dlq import DELIVERY_FAILED
from schemas import Catalog, to_json

from .delivery import DeliveryFailure, DeliveryInterrupted, WorkOrder
from .metrics import AdapterMetrics
from .retry import Verdict, classify, parse_retry_after, retry_wait
from .signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

USER_AGENT = "arrears-adapter/1"


def render_body(catalog: Catalog, name: str, value: Mapping[str, Any]) -> bytes:
    """The webhook body: the JSON form, compact UTF-8. The same event always gives the same bytes."""
    return json.dumps(to_json(catalog, name, value), ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def webhook_headers(
    secret: str, body: bytes, event_id: str, record_name: str, attempt: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        IDEMPOTENCY_HEADER: event_id,
        "X-Arrears-Event-Type": record_name,
        "X-Arrears-Attempt": str(attempt),
        "User-Agent": USER_AGENT,
    }


class WebhookSender:
    """POSTs work orders to one agency's URL, one at a time, in partition order."""

    batch_size = 1  # commit after every event, so a crash re-sends at most the one in flight

    def __init__(
        self,
        transport: WebhookTransport,
        secret: SecretStr,
        catalog: Catalog,
        metrics: AdapterMetrics,
        *,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.transport = transport
        self._secret = secret
        self.catalog = catalog
        self.metrics = metrics
        self._client = client or httpx.Client(timeout=transport.timeout_seconds, follow_redirects=False)
        self._rng = rng or random.Random()  # jitter only; nothing depends on its values
        self._now = now

    def deliver(self, orders: Sequence[WorkOrder], stop: threading.Event) -> dict[int, DeliveryFailure]:
        failures: dict[int, DeliveryFailure] = {}
        for index, order in enumerate(orders):
            failure = self.post(order, stop)
            if failure is not None:
                failures[index] = failure
        return failures

    def post(self, order: WorkOrder, stop: threading.Event) -> DeliveryFailure | None:
        """Deliver one event within the retry budget; None when the agency accepted it."""
        body = render_body(self.catalog, order.name, order.value)
        cfg = self.transport
        started = time.monotonic()
        last_error = ""
        for attempt in range(1, cfg.max_attempts + 1):
            if stop.is_set():
                raise DeliveryInterrupted(order.event_id)
            headers = webhook_headers(
                self._secret.get_secret_value(), body, order.event_id, order.name, attempt
            )
            retry_after: float | None = None
            try:
                response = self._client.post(cfg.url, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                last_error, cause = (
                    f"timeout after {cfg.timeout_seconds:g}s ({type(exc).__name__})",
                    "timeout",
                )
            except httpx.TransportError as exc:
                last_error, cause = f"connection error: {type(exc).__name__}: {exc}", "connection"
            else:
                verdict = classify(response.status_code)
                if verdict is Verdict.DELIVERED:
                    self.metrics.delivered(order.name)
                    self.metrics.timed(time.monotonic() - started)
                    log.info(
                        "delivered %s %s: HTTP %d after %d attempt(s)",
                        order.name,
                        order.ids,
                        response.status_code,
                        attempt,
                    )
                    return None
                # The agency's body is not kept: it may echo the debtor's details.
                last_error = f"HTTP {response.status_code}"
                if verdict is Verdict.PERMANENT:
                    log.warning(
                        "agency refused %s %s: HTTP %d (permanent)",
                        order.name,
                        order.ids,
                        response.status_code,
                    )
                    self.metrics.timed(time.monotonic() - started)
                    return DeliveryFailure(DELIVERY_FAILED, f"{last_error} (permanent, attempt {attempt})")
                cause = str(response.status_code)
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._now())
            if attempt == cfg.max_attempts:
                break
            wait = retry_wait(
                attempt, cfg.backoff_initial_seconds, cfg.backoff_max_seconds, self._rng.random(), retry_after
            )
            self.metrics.retried(cause)
            log.info(
                "retrying %s %s in %.2fs: %s (attempt %d of %d)",
                order.name,
                order.ids,
                wait,
                last_error,
                attempt,
                cfg.max_attempts,
            )
            if stop.wait(wait):
                raise DeliveryInterrupted(order.event_id)
        self.metrics.timed(time.monotonic() - started)
        log.warning(
            "giving up on %s %s after %d attempts: %s", order.name, order.ids, cfg.max_attempts, last_error
        )
        return DeliveryFailure(DELIVERY_FAILED, f"{last_error} (after {cfg.max_attempts} attempts)")

    def close(self) -> None:
        self._client.close()
