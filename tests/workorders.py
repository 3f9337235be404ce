"""Test helpers: work-order events in JSON form, and publishing them as the processor would."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from arrears.kafka import make_producer
from arrears.settings import Settings
from schemas import event_type_headers, from_json, get_codec


def issued(
    case_id: str = "L1:1",
    agency_id: str = "AG1",
    *,
    work_order_id: str | None = None,
    event_id: str | None = None,
    occurred_at: str = "2026-03-02T01:00:00.000Z",
    overdue_amount: int = 123_400,
    timezone: str = "Asia/Shanghai",
    national_id_masked: str = "**************1234",
    emergency_contacts: list[dict[str, str]] | None = None,
    emergency_contacts_allowed: bool = False,
) -> dict[str, Any]:
    """A WorkOrderIssued in JSON form with made-up (not real) personal data."""
    return {
        "type": "WorkOrderIssued",
        "event_id": event_id or str(uuid.uuid4()),
        "occurred_at": occurred_at,
        "work_order_id": work_order_id or f"WO-{case_id}",
        "case_id": case_id,
        "loan_id": case_id.rpartition(":")[0],
        "agency_id": agency_id,
        "debtor": {
            "name": "张三",
            "phone": "+8613800000000",
            "national_id_masked": national_id_masked,
            "province": "广东",
            "city": "深圳",
            "timezone": timezone,
        },
        "overdue_amount": overdue_amount,
        "currency": "CNY",
        "dpd": 35,
        "bucket": "M2",
        "oldest_due_date": "2026-01-26",
        "expires_on": "2026-04-01",
        "contact_policy": {
            "profile": "CN",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "08:00",
            "max_connected_calls_per_day": 3,
            "max_attempts_per_day": 6,
            "max_attempts_per_week": None,
            "emergency_contacts_allowed": emergency_contacts_allowed,
        },
        "emergency_contacts": emergency_contacts or [],
    }


def updated(
    case_id: str = "L1:1",
    *,
    overdue_amount: int = 50_000,
    event_id: str | None = None,
    occurred_at: str = "2026-03-03T01:00:00.000Z",
) -> dict[str, Any]:
    return {
        "type": "WorkOrderUpdated",
        "event_id": event_id or str(uuid.uuid4()),
        "occurred_at": occurred_at,
        "work_order_id": f"WO-{case_id}",
        "case_id": case_id,
        "overdue_amount": overdue_amount,
        "dpd": 36,
        "bucket": "M2",
    }


def cancelled(
    case_id: str = "L1:1",
    *,
    reason: str = "CLOSED",
    event_id: str | None = None,
    occurred_at: str = "2026-03-04T01:00:00.000Z",
) -> dict[str, Any]:
    return {
        "type": "WorkOrderCancelled",
        "event_id": event_id or str(uuid.uuid4()),
        "occurred_at": occurred_at,
        "work_order_id": f"WO-{case_id}",
        "case_id": case_id,
        "reason": reason,
    }


def publish_work_orders(settings: Settings, agency_id: str, orders: Iterable[Mapping[str, Any]]) -> None:
    """Publish work-order events (JSON form) to the agency's topic, keyed by case_id, acknowledged."""
    codec = get_codec(settings.schema_registry_url)
    topic = settings.topics.work_orders(agency_id)
    producer = make_producer(settings)
    failures: list[str] = []
    for obj in orders:
        name, value = from_json(codec.catalog, dict(obj))
        producer.produce(
            topic,
            codec.encode(name, value, topic=topic),
            value["case_id"].encode(),
            headers=event_type_headers(name),
            on_delivery=lambda err, _m: failures.append(str(err)) if err else None,
        )
    remaining = producer.flush(30)
    assert not remaining and not failures, failures
