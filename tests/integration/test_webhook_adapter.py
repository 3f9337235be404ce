"""The webhook adapter against the real broker and a local simulated agency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import env_for
from kafkatools import read_topic
from workorders import cancelled, issued, publish_work_orders, updated

from arrears.broker import free_port
from arrears.kafka import create_topics
from arrears.settings import Settings
from consumers.adapter import Adapter
from consumers.simagency import HttpAgency, HttpBehaviour
from schemas import from_json, get_codec

pytestmark = pytest.mark.broker
SECRET = "ag1-webhook-secret"
ARREARS = str(Path(sys.executable).with_name("arrears"))  # the console script of this virtualenv


@pytest.fixture
def agency() -> Iterator[HttpAgency]:
    with HttpAgency("AG1", SECRET) as running:
        yield running


@pytest.fixture
def webhook_settings(
    make_settings: Callable[..., Settings], agency: HttpAgency, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    """Settings whose AG1 posts to the local agency, with fast retries; topics created."""
    monkeypatch.setenv("AG1_SECRET", SECRET)

    def make(**transport: Any) -> Settings:
        settings = make_settings(
            {
                "agencies": [
                    {
                        "id": "AG1",
                        "buckets": ["M2"],
                        "capacity": 100,
                        "transport": {
                            "type": "webhook",
                            "url": agency.webhook_url,
                            "allow_insecure_http": True,  # the local simulated agency serves http
                            "secret_env": "AG1_SECRET",
                            "timeout_seconds": 2,
                            "max_attempts": 4,
                            "backoff_initial_seconds": 0.05,
                            "backoff_max_seconds": 0.2,
                            **transport,
                        },
                    }
                ]
            },
            arrears_partitions=3,
        )
        create_topics(settings, settings.topics.specs(3, ["AG1"]))
        return settings

    return make


def accepted_keys(n: int) -> Callable[[HttpAgency], bool]:
    return lambda agency: len(agency.accepted()) >= n


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_agency_receives_signed_json_form_work_orders_keyed_by_event_id(
    agency: HttpAgency, webhook_settings: Callable[..., Settings]
) -> None:
    settings = webhook_settings()
    orders = [issued("L1:1"), updated("L1:1"), cancelled("L1:1"), issued("L2:1", agency_id="AG1")]
    with Adapter(settings, "AG1", port=free_port()) as adapter:
        adapter.wait_ready()
        publish_work_orders(settings, "AG1", orders)
        assert agency.wait_for(accepted_keys(4), timeout=20)
        health = httpx.get(f"{adapter.url}/health").json()
        metrics = httpx.get(f"{adapter.url}/metrics").text
    assert all(d.signature_ok for d in agency.deliveries)
    accepted = agency.accepted()
    catalog = get_codec().catalog
    for order in orders:
        (body,) = accepted[order["event_id"]]
        assert from_json(catalog, json.loads(body)) == from_json(catalog, order)
    # one partition (one case) is delivered in the order it was published
    l1 = [json.loads(d.body)["type"] for d in agency.deliveries if json.loads(d.body)["case_id"] == "L1:1"]
    assert l1 == ["WorkOrderIssued", "WorkOrderUpdated", "WorkOrderCancelled"]
    assert health["status"] == "ready" and health["partitions"] == [0, 1, 2]
    assert 'arrears_adapter_deliveries_total{agency="AG1",type="WorkOrderIssued"} 2.0' in metrics
    assert agency.active_work_orders() == {"WO-L2:1"}


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_an_agency_that_refuses_our_secret_pauses_delivery_and_it_resumes_after_the_rotation(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpAgency("AG1", "the-agencys-new-secret") as strict:
        monkeypatch.setenv("AG1_SECRET", SECRET)
        settings = make_settings(
            {
                "agencies": [
                    {
                        "id": "AG1",
                        "buckets": ["M2"],
                        "capacity": 100,
                        "transport": {
                            "type": "webhook",
                            "url": strict.webhook_url,
                            "allow_insecure_http": True,
                            "secret_env": "AG1_SECRET",
                            "max_attempts": 5,
                            "backoff_initial_seconds": 0.05,
                            "paused_retry_seconds": 0.5,
                        },
                    }
                ]
            },
            arrears_partitions=3,
        )
        create_topics(settings, settings.topics.specs(3, ["AG1"]))
        orders = [issued("L5:1"), cancelled("L5:1"), issued("L6:1"), cancelled("L6:1")]
        with Adapter(settings, "AG1", port=free_port()) as adapter:
            adapter.wait_ready()
            publish_work_orders(settings, "AG1", orders)
            assert strict.wait_for(lambda a: len(a.deliveries) >= 2, timeout=20)
            time.sleep(1.2)  # a few probes
            paused_metrics = httpx.get(f"{adapter.url}/metrics").text
            paused_health = httpx.get(f"{adapter.url}/health").json()
            refused = {d.status for d in strict.deliveries}
            # The agency rotates: it accepts our secret beside its own (as the adapter would, NEW,OLD).
            strict.secrets = ("the-agencys-new-secret", SECRET)
            assert strict.wait_for(accepted_keys(4), timeout=20)
            resumed_metrics = httpx.get(f"{adapter.url}/metrics").text
        dlq = read_topic(settings, settings.topics.dlq(settings.topics.work_orders("AG1")), timeout=2)
    assert refused == {401}
    assert 'arrears_adapter_paused{agency="AG1"} 1.0' in paused_metrics
    assert 'arrears_adapter_pauses_total{agency="AG1",status="401"} 1.0' in paused_metrics
    assert paused_health["status"] == "ready" and paused_health["delivery"] == "paused: HTTP 401"
    assert 'arrears_adapter_paused{agency="AG1"} 0.0' in resumed_metrics
    assert dlq == []  # nothing lost: the cancellations included
    for case in ("L5:1", "L6:1"):
        mine = [json.loads(d.body)["type"] for d in strict.deliveries
                if d.status == 200 and json.loads(d.body)["case_id"] == case]
        assert mine == ["WorkOrderIssued", "WorkOrderCancelled"]


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_a_slow_case_does_not_hold_up_the_other_cases_deliveries(
    agency: HttpAgency, webhook_settings: Callable[..., Settings]
) -> None:
    agency.behaviour = HttpBehaviour(delay_for=lambda obj: 3.0 if obj.get("case_id") == "SLOW:1" else 0.0)
    settings = webhook_settings(timeout_seconds=10, max_in_flight=4)
    slow = [issued("SLOW:1"), updated("SLOW:1")]
    others = [issued(f"Q{i}:1") for i in range(12)]
    with Adapter(settings, "AG1", port=free_port()) as adapter:
        adapter.wait_ready()
        publish_work_orders(settings, "AG1", slow + others)
        started = time.monotonic()
        assert agency.wait_for(lambda a: all(o["event_id"] in a.accepted() for o in others), timeout=20)
        others_done = time.monotonic() - started
        assert agency.wait_for(accepted_keys(len(slow) + len(others)), timeout=20)
    assert others_done < 2.5, f"the other cases waited {others_done:.1f}s behind the slow one"
    assert slow[0]["event_id"] in agency.accepted()
    order = [json.loads(d.body)["type"] for d in agency.deliveries if json.loads(d.body)["case_id"] == "SLOW:1"]
    assert order == ["WorkOrderIssued", "WorkOrderUpdated"]  # the slow case's own order is kept


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_503_then_success_is_retried_with_the_same_idempotency_key_and_body(
    agency: HttpAgency, webhook_settings: Callable[..., Settings]
) -> None:
    agency.behaviour = HttpBehaviour(fail_first=2, fail_status=503, retry_after="0")
    settings = webhook_settings()
    orders = [issued("L1:1"), issued("L2:1")]
    with Adapter(settings, "AG1", port=free_port()) as adapter:
        adapter.wait_ready()
        publish_work_orders(settings, "AG1", orders)
        assert agency.wait_for(accepted_keys(2), timeout=20)
        metrics = httpx.get(f"{adapter.url}/metrics").text
    for order in orders:
        tries = [d for d in agency.deliveries if d.key == order["event_id"]]
        assert [d.status for d in tries] == [503, 503, 200]
        assert [d.attempt for d in tries] == ["1", "2", "3"]
        assert len({d.body for d in tries}) == 1
    assert 'arrears_adapter_delivery_retries_total{agency="AG1",cause="503"} 4.0' in metrics
    assert read_topic(settings, settings.topics.dlq(settings.topics.work_orders("AG1")), timeout=2) == []


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_a_permanently_failing_event_is_dead_lettered_after_the_retry_budget_and_later_ones_still_delivered(
    agency: HttpAgency, webhook_settings: Callable[..., Settings]
) -> None:
    doomed, later = issued("L3:1"), updated("L3:1")  # same case: same partition, doomed first
    agency.behaviour = HttpBehaviour(
        status_for=lambda obj: 500 if obj["event_id"] == doomed["event_id"] else None
    )
    settings = webhook_settings(max_attempts=3)
    work_orders = settings.topics.work_orders("AG1")
    with Adapter(settings, "AG1", port=free_port()) as adapter:
        adapter.wait_ready()
        publish_work_orders(settings, "AG1", [doomed, later])
        assert agency.wait_for(lambda a: later["event_id"] in a.accepted(), timeout=20)
        dlq = read_topic(settings, settings.topics.dlq(work_orders), min_count=1, timeout=10)
        metrics = httpx.get(f"{adapter.url}/metrics").text
    assert [d.status for d in agency.deliveries if d.key == doomed["event_id"]] == [500, 500, 500]
    (dead,) = dlq
    source = [
        r for r in read_topic(settings, work_orders, min_count=2) if r.data["event_id"] == doomed["event_id"]
    ]
    assert dead.value == source[0].value and dead.key == b"L3:1"
    assert dead.headers["dlq.reason"] == b"DELIVERY_FAILED"
    assert dead.headers["dlq.error"] == b"HTTP 500 (after 3 attempts)"
    assert dead.headers["dlq.source.topic"] == work_orders.encode()
    assert dead.headers["dlq.source.partition"] == str(source[0].partition).encode()
    assert dead.headers["dlq.source.offset"] == str(source[0].offset).encode()
    assert dead.headers["event_type"] == b"WorkOrderIssued"
    assert 'arrears_adapter_dead_letters_total{agency="AG1",reason="DELIVERY_FAILED"} 1.0' in metrics


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_undecodable_bytes_and_over_sharing_work_orders_are_dead_lettered_never_sent_and_the_adapter_goes_on(
    agency: HttpAgency, webhook_settings: Callable[..., Settings]
) -> None:
    from arrears.kafka import make_producer

    settings = webhook_settings()
    topic = settings.topics.work_orders("AG1")
    leaking = issued("L4:1", national_id_masked="440301199001011234")
    good = issued("L4:1")
    with Adapter(settings, "AG1", port=free_port()) as adapter:
        adapter.wait_ready()
        producer = make_producer(settings)
        producer.produce(topic, b"not avro", b"L4:1")
        producer.flush(10)
        publish_work_orders(settings, "AG1", [leaking, good])
        assert agency.wait_for(lambda a: good["event_id"] in a.accepted(), timeout=20)
        dead = read_topic(settings, settings.topics.dlq(topic), min_count=2, decode=False)
    assert [(d.headers["dlq.reason"], d.value == b"not avro") for d in dead] == [
        (b"DECODE_ERROR", True),
        (b"CONTRACT_VIOLATION", False),
    ]
    assert dead[1].headers["dlq.error"].startswith(b"debtor.national_id_masked: not masked")
    assert leaking["event_id"] not in agency.received()


@pytest.mark.slow
def test_no_work_order_is_lost_when_the_adapter_is_killed_mid_delivery_and_restarted(
    agency: HttpAgency, webhook_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    agency.behaviour = HttpBehaviour(delay_seconds=0.15)  # slow enough to kill it mid-stream
    settings = webhook_settings(max_in_flight=2)
    orders = [issued(f"K{i}:1") for i in range(30)]
    port = free_port()
    env = env_for(settings, AG1_SECRET=SECRET, ARREARS_LOG_FORMAT="text")

    def start(log_name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / log_name).open("wb")
        return subprocess.Popen(
            [ARREARS, "adapter", "--agency", "AG1", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    first = start("first.log")
    try:
        _wait_ready(port)
        publish_work_orders(settings, "AG1", orders)
        assert agency.wait_for(accepted_keys(8), timeout=30)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        before_restart = len(agency.accepted())
        assert before_restart < len(orders), "killed too late to prove anything"
        second = start("second.log")
        try:
            assert agency.wait_for(accepted_keys(len(orders)), timeout=60), (
                tmp_path / "second.log"
            ).read_text()
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
    finally:
        if first.poll() is None:
            first.kill()
    accepted = agency.accepted()
    assert set(accepted) == {o["event_id"] for o in orders}
    for key, bodies in accepted.items():
        assert len(set(bodies)) == 1, f"different bodies for Idempotency-Key {key}"
    # offsets were committed as deliveries happened: the restart re-sent at most the few in flight
    # (max_in_flight 2) and those finished since the last commit
    duplicates = sum(len(b) - 1 for b in accepted.values())
    assert duplicates <= 4


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"adapter on port {port} not ready after {timeout}s")
