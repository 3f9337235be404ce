"""Webhook delivery decisions: which answers are retried, how long to wait, and the sender's loop."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading

import httpx
import pytest

from arrears.config import WebhookTransport
from consumers.delivery import DeliveryInterrupted, WorkOrder
from consumers.metrics import AdapterMetrics
from consumers.retry import (
    Verdict,
    backoff_delay,
    classify,
    parse_retry_after,
    retry_wait,
    worst_case_seconds,
)
from consumers.signing import verify
from consumers.webhook import WebhookSender, render_body
from schemas import from_json, get_codec

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (429, Verdict.RETRY),
        (408, Verdict.RETRY),
        (400, Verdict.PERMANENT),
        (401, Verdict.PERMANENT),
        (403, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (409, Verdict.PERMANENT),
        (422, Verdict.PERMANENT),
        (301, Verdict.PERMANENT),
        (302, Verdict.PERMANENT),
    ],
)
def test_only_server_errors_throttling_and_timeouts_are_retried(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    steps = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    for attempt, step in enumerate(steps, 1):
        assert backoff_delay(attempt, 0.5, 30.0, 0.0) == pytest.approx(step / 2)
        assert backoff_delay(attempt, 0.5, 30.0, 0.999999) == pytest.approx(step, rel=1e-5)
        assert step / 2 <= backoff_delay(attempt, 0.5, 30.0, random.random()) <= step


def test_backoff_survives_huge_attempt_numbers_and_rejects_attempt_zero() -> None:
    assert backoff_delay(10_000, 0.5, 30.0, 1.0) == 30.0
    with pytest.raises(ValueError):
        backoff_delay(0, 0.5, 30.0, 0.5)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Mon, 02 Mar 2026 12:00:30 GMT", 30.0),
        ("Mon, 02 Mar 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_wins_over_backoff_but_never_beyond_the_cap() -> None:
    assert retry_wait(1, 0.5, 30.0, 0.0, retry_after=12.0) == 12.0
    assert retry_wait(1, 0.5, 30.0, 0.0, retry_after=3600.0) == 30.0
    assert retry_wait(3, 0.5, 30.0, 0.0, retry_after=None) == 1.0


def test_worst_case_covers_every_attempt_timing_out_and_every_wait_at_the_cap() -> None:
    assert worst_case_seconds(6, 10.0, 30.0) == 6 * 10 + 5 * 30


# ------------------------------------------------------------- the sender, against a fake agency
class FakeAgency:
    """An httpx transport standing in for the agency's endpoint; records what it was sent."""

    def __init__(self, answers: list[int | type[Exception]], retry_after: str | None = None) -> None:
        self.answers = list(answers)
        self.retry_after = retry_after
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, type):
            raise answer("simulated", request=request)  # type: ignore[call-arg]
        headers = {"Retry-After": self.retry_after} if self.retry_after and answer >= 400 else {}
        return httpx.Response(answer, headers=headers)


def _sender(agency: FakeAgency, **overrides: object) -> tuple[WebhookSender, AdapterMetrics]:
    cfg = WebhookTransport.model_validate(
        {
            "type": "webhook",
            "url": "https://agency.example/arrears",
            "secret_env": "AG1_SECRET",
            "max_attempts": 4,
            "backoff_initial_seconds": 0.001,
            "backoff_max_seconds": 0.01,
            **overrides,
        }
    )
    metrics = AdapterMetrics("AG1")
    client = httpx.Client(transport=httpx.MockTransport(agency))
    from pydantic import SecretStr

    sender = WebhookSender(
        cfg,
        SecretStr("s3cret"),
        get_codec().catalog,
        metrics,
        client=client,
        rng=random.Random(1),
        now=lambda: NOW,
    )
    return sender, metrics


def _order() -> WorkOrder:
    from workorders import issued

    name, value = from_json(get_codec().catalog, issued("L9:1"))
    return WorkOrder("agency.AG1.work-orders", 3, 41, name, value)


def test_webhook_is_signed_json_form_with_the_event_id_as_idempotency_key() -> None:
    agency = FakeAgency([200])
    sender, _ = _sender(agency)
    order = _order()
    assert sender.post(order, threading.Event()) is None
    (request,) = agency.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == order.event_id
    assert verify("s3cret", request.content, request.headers["X-Arrears-Signature"])
    assert request.content == render_body(get_codec().catalog, order.name, order.value)
    assert json.loads(request.content)["type"] == "WorkOrderIssued"


def test_503_then_200_is_retried_with_identical_body_and_key() -> None:
    agency = FakeAgency([503, 503, 200])
    sender, metrics = _sender(agency)
    assert sender.post(_order(), threading.Event()) is None
    assert len(agency.requests) == 3
    assert len({r.content for r in agency.requests}) == 1
    assert len({r.headers["Idempotency-Key"] for r in agency.requests}) == 1
    assert [r.headers["X-Arrears-Attempt"] for r in agency.requests] == ["1", "2", "3"]
    assert b'arrears_adapter_delivery_retries_total{agency="AG1",cause="503"} 2.0' in metrics.render()


def test_timeouts_and_connection_errors_are_retried_until_the_budget_is_spent() -> None:
    agency = FakeAgency([httpx.ReadTimeout, httpx.ConnectError, 500, 429])
    sender, _ = _sender(agency)
    failure = sender.post(_order(), threading.Event())
    assert failure is not None
    assert failure.reason == "DELIVERY_FAILED"
    assert failure.error == "HTTP 429 (after 4 attempts)"
    assert len(agency.requests) == 4


def test_a_4xx_other_than_429_is_permanent_and_not_retried() -> None:
    agency = FakeAgency([422])
    sender, _ = _sender(agency)
    failure = sender.post(_order(), threading.Event())
    assert failure is not None and failure.error.startswith("HTTP 422 (permanent")
    assert len(agency.requests) == 1


def test_stopping_during_a_retry_wait_interrupts_without_a_verdict() -> None:
    agency = FakeAgency([503] * 10)
    sender, _ = _sender(agency, backoff_initial_seconds=5.0, backoff_max_seconds=5.0)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(DeliveryInterrupted):
        sender.post(_order(), stop)
    assert len(agency.requests) == 1
