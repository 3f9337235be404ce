"""POST /results on the real broker: refused posts publish nothing; a good batch is acknowledged."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kafkatools import read_topic

from arrears.broker import free_port
from arrears.kafka import create_topics
from arrears.settings import Settings
from consumers.adapter import Adapter
from consumers.signing import sign

pytestmark = pytest.mark.broker
SECRET = "ag1-results-secret"
OLD_SECRET = "ag1-results-secret-before-the-rotation"


def now() -> int:
    return int(time.time())


def contact(n: int, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "ContactAttempted",
        "event_id": f"res-{n}",
        "occurred_at": "2026-03-02T02:15:00Z",
        "agency_id": "AG1",
        "case_id": f"LOAN-{n}:1",
        "work_order_id": f"WO-{n}",
        "attempted_at": "2026-03-02T02:15:00Z",
        "channel": "CALL",
        "party": "DEBTOR",
        "outcome": "NO_ANSWER",
        **overrides,
    }


@pytest.fixture
def adapter(make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> Iterator[Adapter]:
    monkeypatch.setenv("AG1_SECRET", f"{SECRET},{OLD_SECRET}")  # in the middle of a rotation
    settings = make_settings(
        {
            "agencies": [
                {
                    "id": "AG1",
                    "buckets": ["M2"],
                    "capacity": 10,
                    "transport": {
                        "type": "webhook",
                        "url": f"http://127.0.0.1:{free_port()}/none",
                        "allow_insecure_http": True,
                        "secret_env": "AG1_SECRET",
                    },
                }
            ]
        },
        arrears_partitions=3,
    )
    create_topics(settings, settings.topics.specs(3, ["AG1"]))
    with Adapter(settings, "AG1", port=free_port()) as running:
        yield running


def post(adapter: Adapter, body: bytes, signature: str | None = "sign") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        headers["X-Arrears-Signature"] = sign(SECRET, body, now())
    elif signature is not None:
        headers["X-Arrears-Signature"] = signature
    return httpx.post(f"{adapter.url}/results", content=body, headers=headers, timeout=30)


def test_unsigned_badly_signed_malformed_and_foreign_posts_are_refused_and_nothing_is_published(
    adapter: Adapter,
) -> None:
    good = json.dumps([contact(1), contact(2)]).encode()
    refused = {
        "unsigned": post(adapter, good, signature=None),
        "badly signed": post(adapter, good, signature=sign("another-secret", good, now())),
        "signed other bytes": post(adapter, good, signature=sign(SECRET, good + b" ", now())),
        "untimed (the old scheme)": post(adapter, good, signature=sign(SECRET, good, now()).split(",")[1]),
        "replayed": post(adapter, good, signature=sign(SECRET, good, now() - 301)),
        "from the future": post(adapter, good, signature=sign(SECRET, good, now() + 400)),
        "not JSON": post(adapter, b"{oops"),
        "invalid item": post(adapter, json.dumps([contact(1), contact(2, outcome="SHRUG")]).encode()),
        "another agency": post(adapter, json.dumps([contact(1), contact(2, agency_id="AG2")]).encode()),
        "too large": post(adapter, b"[" + b" " * (1024 * 1024) + b"]"),
    }
    status = {name: r.status_code for name, r in refused.items()}
    assert status == {
        "unsigned": 401,
        "badly signed": 401,
        "signed other bytes": 401,
        "untimed (the old scheme)": 401,
        "replayed": 401,
        "from the future": 401,
        "not JSON": 400,
        "invalid item": 400,
        "another agency": 400,
        "too large": 413,
    }
    assert refused["unsigned"].json() == {"error": "signature: missing X-Arrears-Signature header"}
    assert refused["replayed"].json()["error"].startswith("signature: t is 30")
    assert "(at most 300 s): a replay or a wrong clock" in refused["replayed"].json()["error"]
    assert refused["untimed (the old scheme)"].json()["error"].startswith("signature: malformed")
    assert refused["invalid item"].json()["error"].startswith("[1] outcome: 'SHRUG' is not one of")
    assert refused["invalid item"].json()["index"] == 1
    assert (
        refused["another agency"].json()["error"] == "[1] agency_id: 'AG2' is not this adapter's agency (AG1)"
    )
    assert read_topic(adapter.settings, adapter.settings.topics.agency_results, timeout=3) == []
    metrics = httpx.get(f"{adapter.url}/metrics").text
    assert (
        'arrears_adapter_results_rejected_total{agency="AG1",cause="signature",source="http"} 4.0' in metrics
    )
    assert 'arrears_adapter_results_rejected_total{agency="AG1",cause="stale",source="http"} 2.0' in metrics


def test_a_signed_batch_is_published_keyed_by_loan_and_acknowledged(adapter: Adapter) -> None:
    promise = {**contact(3), "type": "PromiseToPay", "promised_amount": 50_000, "promised_date": "2026-03-09"}
    for key in ("attempted_at", "channel", "party", "outcome"):
        promise.pop(key)
    batch = [contact(1), contact(2), promise]
    response = post(adapter, json.dumps(batch, ensure_ascii=False).encode())
    assert (response.status_code, response.json()) == (202, {"accepted": 3})
    records = read_topic(adapter.settings, adapter.settings.topics.agency_results, min_count=3, timeout=10)
    assert sorted((r.key, r.name, r.data["event_id"]) for r in records) == [  # type: ignore[index]
        (b"LOAN-1", "ContactAttempted", "res-1"),
        (b"LOAN-2", "ContactAttempted", "res-2"),
        (b"LOAN-3", "PromiseToPay", "res-3"),
    ]
    assert {r.headers["event_type"] for r in records} == {b"ContactAttempted", b"PromiseToPay"}
    single = post(adapter, json.dumps(contact(4)).encode())
    assert (single.status_code, single.json()) == (202, {"accepted": 1})
    body = json.dumps(contact(5)).encode()
    old = post(adapter, body, signature=sign(OLD_SECRET, body, now()))  # the agency has not switched yet
    assert (old.status_code, old.json()) == (202, {"accepted": 1})
    health = httpx.get(f"{adapter.url}/health")
    assert health.json()["agency"] == "AG1"
