"""Webhook delivery decisions: which answers are retried, how long to wait, and the sender's loop."""

from __future__ import annotations

import datetime as dt
import json
import threading

import httpx
import pytest
import tenacity

from arrears.config import WebhookTransport
from consumers.delivery import DeliveryInterrupted, WorkOrder
from consumers.metrics import AdapterMetrics
from consumers.retry import (
    Outcome,
    Verdict,
    backoff,
    classify,
    parse_retry_after,
    wait_retry_after,
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
        (400, Verdict.REFUSED),
        (409, Verdict.REFUSED),
        (413, Verdict.REFUSED),
        (422, Verdict.REFUSED),
        (401, Verdict.PAUSE),  # a rotated secret: every event would be refused the same way
        (403, Verdict.PAUSE),
        (404, Verdict.PAUSE),  # a moved endpoint
        (410, Verdict.PAUSE),
        (301, Verdict.PAUSE),  # a signed POST is never replayed elsewhere: the URL is wrong
        (302, Verdict.PAUSE),
    ],
)
def test_server_errors_throttling_and_timeouts_are_retried_refusals_of_us_pause(
    status: int, verdict: Verdict
) -> None:
    assert classify(status) is verdict


def wait_of(wait: object, attempt: int, outcome: Outcome | None = None) -> float:
    """What a tenacity wait says after failed attempt number *attempt* (with that attempt's outcome)."""
    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    if outcome is not None:
        state.set_result(outcome)
    return float(wait(state))  # type: ignore[operator]


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    steps = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    wait = backoff(0.5, 30.0)
    for attempt, step in enumerate(steps, 1):
        seen = [wait_of(wait, attempt) for _ in range(200)]
        assert all(step / 2 <= w <= step for w in seen), (attempt, min(seen), max(seen))
        assert max(seen) - min(seen) > step / 10  # jittered, not fixed


def test_backoff_survives_huge_attempt_numbers() -> None:
    assert 15.0 <= wait_of(backoff(0.5, 30.0), 10_000) <= 30.0


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
    wait = wait_retry_after(backoff(0.5, 30.0), 30.0)
    assert wait_of(wait, 1, Outcome(Verdict.RETRY, retry_after=12.0)) == 12.0
    assert wait_of(wait, 1, Outcome(Verdict.RETRY, retry_after=3600.0)) == 30.0
    assert 0.5 <= wait_of(wait, 3, Outcome(Verdict.RETRY)) <= 2.0


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
    sender = WebhookSender(cfg, ["s3cret", "old-secret"], get_codec().catalog, metrics, agency_id="AG1",
                           client=client, now=lambda: NOW)
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
    assert request.headers["X-Arrears-Signature"].startswith(f"t={int(NOW.timestamp())},sha256=")
    assert verify("s3cret", request.content, request.headers["X-Arrears-Signature"], now=NOW.timestamp())
    assert not verify("old-secret", request.content, request.headers["X-Arrears-Signature"], now=NOW.timestamp())
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


def test_a_refusal_of_the_event_is_not_retried_and_dead_lettered() -> None:
    agency = FakeAgency([422])
    sender, _ = _sender(agency)
    failure = sender.post(_order(), threading.Event())
    assert failure is not None and failure.error.startswith("HTTP 422 (permanent")
    assert len(agency.requests) == 1


def test_a_401_pauses_delivery_tries_the_same_event_again_and_resumes_once_accepted() -> None:
    agency = FakeAgency([401, 401, 401, 200])
    sender, metrics = _sender(agency, paused_retry_seconds=0.01)
    order = _order()
    assert sender.post(order, threading.Event()) is None  # delivered in the end, never dead-lettered
    assert len(agency.requests) == 4
    assert {r.headers["Idempotency-Key"] for r in agency.requests} == {order.event_id}
    text = metrics.render().decode()
    assert 'arrears_adapter_pauses_total{agency="AG1",status="401"} 1.0' in text
    assert 'arrears_adapter_paused{agency="AG1"} 0.0' in text  # resumed
    assert sender.gate.paused is None


def test_while_paused_no_other_delivery_starts_until_the_probe_is_accepted() -> None:
    agency = FakeAgency([401])
    sender, metrics = _sender(agency, paused_retry_seconds=0.3)
    first, second = _order(), _order()
    results: list[object] = []
    probe = threading.Thread(target=lambda: results.append(sender.post(first, threading.Event())))
    probe.start()
    deadline = 50
    while sender.gate.paused is None and deadline:
        threading.Event().wait(0.01)
        deadline -= 1
    assert sender.gate.paused == "HTTP 401"
    assert 'arrears_adapter_paused{agency="AG1"} 1.0' in metrics.render().decode()
    other = threading.Thread(target=lambda: results.append(sender.post(second, threading.Event())))
    other.start()
    threading.Event().wait(0.1)
    assert len(agency.requests) == 1  # the other lane waits for the pause to end
    probe.join(5)
    other.join(5)
    assert results == [None, None] and len(agency.requests) == 3


def test_several_refusals_in_a_row_pause_instead_of_dead_lettering_everything() -> None:
    agency = FakeAgency([400, 400, 400, 200])
    sender, metrics = _sender(agency, paused_retry_seconds=0.01)
    assert sender.post(_order(), threading.Event()) is not None
    assert sender.post(_order(), threading.Event()) is not None
    assert sender.post(_order(), threading.Event()) is None  # the third refusal paused; the probe got through
    assert 'arrears_adapter_pauses_total{agency="AG1",status="400"} 1.0' in metrics.render().decode()


def test_stopping_while_paused_interrupts_without_a_verdict() -> None:
    agency = FakeAgency([401] * 10)
    sender, _ = _sender(agency, paused_retry_seconds=5.0)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(DeliveryInterrupted):
        sender.post(_order(), stop)
    assert len(agency.requests) == 1


def test_stopping_during_a_retry_wait_interrupts_without_a_verdict() -> None:
    agency = FakeAgency([503] * 10)
    sender, _ = _sender(agency, backoff_initial_seconds=5.0, backoff_max_seconds=5.0)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(DeliveryInterrupted):
        sender.post(_order(), stop)
    assert len(agency.requests) == 1
