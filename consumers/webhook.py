"""The webhook transport: each work-order event POSTed, signed, retried, paused or dead-lettered.

:meth:`WebhookSender.post` delivers one event: attempts in a tenacity loop (:mod:`consumers.retry`),
the request signed afresh at each attempt (``t`` is the attempt's time; the body and the
Idempotency-Key never change). Several events are in flight at once, one per case at most
(:mod:`consumers.lanes`); while the agency refuses our requests as a whole, the
:class:`~consumers.pause.DeliveryGate` holds every delivery back.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import tenacity

from arrears.config import WebhookTransport
from arrears.dlq import DELIVERY_FAILED
from schemas import Catalog, to_json

from .delivery import DeliveryFailure, DeliveryInterrupted, WorkOrder
from .metrics import AdapterMetrics
from .pause import DeliveryGate
from .retry import Outcome, Verdict, classify, parse_retry_after, retrying
from .signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)

USER_AGENT = "arrears-adapter/1"


def render_body(catalog: Catalog, name: str, value: Mapping[str, Any]) -> bytes:
    """The webhook body: the JSON form, compact UTF-8. The same event always gives the same bytes."""
    return json.dumps(to_json(catalog, name, value), ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def webhook_headers(
    secret: str, body: bytes, event_id: str, record_name: str, attempt: int, timestamp: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, timestamp),
        IDEMPOTENCY_HEADER: event_id,
        "X-Arrears-Event-Type": record_name,
        "X-Arrears-Attempt": str(attempt),
        "User-Agent": USER_AGENT,
    }


class WebhookSender:
    """POSTs work orders to one agency's URL; each call of :meth:`post` delivers one event."""

    batch_size = 1  # the sequential interface (deliver) commits after every event

    def __init__(
        self,
        transport: WebhookTransport,
        secrets: Sequence[str],
        catalog: Catalog,
        metrics: AdapterMetrics,
        *,
        agency_id: str = "",
        client: httpx.Client | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.transport = transport
        self._signing_secret = secrets[0]  # the first signs; the others are only accepted (rotation)
        self.catalog = catalog
        self.metrics = metrics
        self.max_in_flight = transport.max_in_flight
        lanes = transport.max_in_flight
        limits = httpx.Limits(max_connections=lanes, max_keepalive_connections=lanes)
        self._client = client or httpx.Client(timeout=transport.timeout_seconds, follow_redirects=False,
                                              limits=limits)
        self._now = now
        self.gate = DeliveryGate(agency_id, metrics)

    def deliver(self, orders: Sequence[WorkOrder], stop: threading.Event) -> dict[int, DeliveryFailure]:
        """Deliver *orders* one after the other (the :class:`~consumers.delivery.Transport` interface)."""
        failures: dict[int, DeliveryFailure] = {}
        for index, order in enumerate(orders):
            failure = self.post(order, stop)
            if failure is not None:
                failures[index] = failure
        return failures

    def post(self, order: WorkOrder, abort: threading.Event) -> DeliveryFailure | None:
        """Deliver one event; None when the agency took it, else why it is dead-lettered.

        Blocks while delivery to the agency is paused; raises
        :class:`~consumers.delivery.DeliveryInterrupted` when *abort* is set meanwhile.
        """
        body = render_body(self.catalog, order.name, order.value)
        started = time.monotonic()
        cfg = self.transport
        while True:
            if self.gate.acquire(abort):  # paused, and this lane tries the refused event again
                try:
                    if abort.wait(cfg.paused_retry_seconds):
                        raise DeliveryInterrupted(order.event_id)
                    outcome = self._attempts(order, body, abort)
                finally:
                    self.gate.release_probe()
                if outcome.verdict is not Verdict.DELIVERED:
                    log.info("agency %s still refuses %s %s: %s; delivery stays paused", self.gate.agency_id,
                             order.name, order.ids, outcome.error)
                    continue
                self.gate.resume()
            else:
                outcome = self._attempts(order, body, abort)
                if outcome.verdict is Verdict.PAUSE:
                    self.gate.pause(str(outcome.status), outcome.error, f"{order.name} {order.ids}")
                    continue
                if outcome.verdict is Verdict.REFUSED and self.gate.refused():
                    self.gate.pause(str(outcome.status), f"{outcome.error} for several events in a row",
                                    f"{order.name} {order.ids}")
                    continue
            return self._finish(order, outcome, started)

    def _finish(self, order: WorkOrder, outcome: Outcome, started: float) -> DeliveryFailure | None:
        self.metrics.timed(time.monotonic() - started)
        if outcome.verdict is Verdict.DELIVERED:
            self.gate.delivered()
            self.metrics.delivered(order.name)
            log.info("delivered %s %s: HTTP %s after %d attempt(s)", order.name, order.ids, outcome.status,
                     outcome.attempt)
            return None
        if outcome.verdict is Verdict.REFUSED:
            log.warning("agency refused %s %s: %s (permanent)", order.name, order.ids, outcome.error)
            return DeliveryFailure(DELIVERY_FAILED, f"{outcome.error} (permanent, attempt {outcome.attempt})")
        log.warning("giving up on %s %s after %d attempts: %s", order.name, order.ids, outcome.attempt,
                    outcome.error)
        return DeliveryFailure(DELIVERY_FAILED, f"{outcome.error} (after {outcome.attempt} attempts)")

    def _attempts(self, order: WorkOrder, body: bytes, abort: threading.Event) -> Outcome:
        """Attempts within the retry budget; the last outcome (tenacity decides when to stop)."""
        cfg = self.transport
        numbers = itertools.count(1)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            last: Outcome = state.outcome.result()  # type: ignore[union-attr]
            self.metrics.retried(last.cause)
            wait = state.next_action.sleep if state.next_action else 0.0
            log.info("retrying %s %s in %.2fs: %s (attempt %d of %d)", order.name, order.ids, wait, last.error,
                     last.attempt, cfg.max_attempts)

        loop = retrying(max_attempts=cfg.max_attempts, initial=cfg.backoff_initial_seconds,
                        maximum=cfg.backoff_max_seconds, abort=abort, what=order.event_id,
                        before_sleep=before_sleep)
        outcome: Outcome = loop(lambda: self._attempt(order, body, next(numbers), abort))
        return outcome

    def _attempt(self, order: WorkOrder, body: bytes, attempt: int, abort: threading.Event) -> Outcome:
        if abort.is_set():
            raise DeliveryInterrupted(order.event_id)
        cfg = self.transport
        now = self._now()
        headers = webhook_headers(self._signing_secret, body, order.event_id, order.name, attempt,
                                  int(now.timestamp()))
        try:
            response = self._client.post(cfg.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return Outcome(Verdict.RETRY, f"timeout after {cfg.timeout_seconds:g}s ({type(exc).__name__})",
                           "timeout", attempt=attempt)
        except httpx.TransportError as exc:
            return Outcome(Verdict.RETRY, f"connection error: {type(exc).__name__}: {exc}", "connection",
                           attempt=attempt)
        # The agency's body is not kept: it may echo the debtor's details.
        status = response.status_code
        return Outcome(classify(status), f"HTTP {status}", str(status), status,
                       parse_retry_after(response.headers.get("Retry-After"), now), attempt)

    def close(self) -> None:
        self._client.close()
