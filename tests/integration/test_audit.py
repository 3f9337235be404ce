"""collections.audit on the real broker: a PiiAccessed record acknowledged, or an error (never silence)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kafkatools import read_topic

from arrears.broker import free_port
from arrears.settings import load_settings
from schemas import get_codec
from streams.audit import AuditError, AuditLog

pytestmark = pytest.mark.broker


def test_an_access_is_on_the_audit_topic_keyed_by_customer_once_record_returns(topics: Any) -> None:
    settings = topics
    audit = AuditLog(settings, get_codec())
    try:
        written = asyncio.run(audit.record("compliance", "GET /loans/L-7", "C-7", loan_id="L-7"))
    finally:
        audit.close()
    (record,) = read_topic(settings, settings.topics.audit, min_count=1, timeout=10)
    assert record.name == "PiiAccessed" and record.key == b"C-7"
    assert record.headers["event_type"] == b"PiiAccessed"
    assert {k: record.data[k] for k in ("event_id", "token_name", "endpoint", "case_id", "loan_id", "customer_id")} == {
        "event_id": written["event_id"], "token_name": "compliance", "endpoint": "GET /loans/L-7", "case_id": None,
        "loan_id": "L-7", "customer_id": "C-7"}


def test_the_audit_topic_is_created_with_the_contracts_topics(topics: Any) -> None:
    specs = {s.name: s for s in topics.topics.specs(topics.arrears_partitions)}
    assert specs[topics.topics.audit].config["retention.ms"] == "-1"  # kept forever


def test_without_a_broker_the_access_is_refused_rather_than_left_unrecorded() -> None:
    nowhere = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
    audit = AuditLog(nowhere, get_codec(), ack_timeout=1.0)
    with pytest.raises(AuditError, match="collections.audit"):
        audit.append({"event_id": "e", "occurred_at": 0, "token_name": "t", "endpoint": "GET /x", "case_id": None,
                      "loan_id": None, "customer_id": "C"})
