"""The Fineract bridge against the embedded broker: Java-encoded Fineract messages in, contract records out.

The bridge runs in a thread of the test (its counters are then visible) except in the last test,
which runs the ``arrears fineract-bridge`` command.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from conftest import env_for
from fineract_support import (
    FINERACT_AVRO_DIR,
    avro_ready,
    fineract_schemas,
    fixture,
    fixtures,
    json_form,
    plan_fixtures,
)
from kafkatools import Record, read_topic

from arrears.settings import Settings
from producers.fineract.bridge import BridgeConfig, FineractBridge, dlq_topic, ensure_topics
from producers.fineract.mapping import tick_event_id
from producers.fineract.schemas import ENVELOPE

pytestmark = pytest.mark.broker

LOAN_TOPICS = ("loan_accounts", "loan_schedules", "loan_repayments")


# --------------------------------------------------------------------------- helpers
def external_topic(settings: Settings) -> str:
    """Fineract's topic under this test's prefix (the bridge takes --topic literally)."""
    topic = f"{settings.arrears_topic_prefix}external-events"
    ensure_topics(settings, topic)  # also the DLQ and the contract topics the bridge writes
    return topic


def send_raw(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Publish (key, value) pairs exactly as Fineract's Kafka producer would, in order."""
    producer = Producer({**settings.kafka_config(), "enable.idempotence": True, "acks": "all"})
    for key, value in messages:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0


def wait_until(predicate: Callable[[], Any], timeout: float = 60, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@contextmanager
def running_bridge(settings: Settings, topic: str) -> Iterator[FineractBridge]:
    """The bridge in a thread of this process; stopped (with its final commit) on exit."""
    config = BridgeConfig(schema_dirs=(FINERACT_AVRO_DIR,), topic=topic, commit_interval=0.2)
    bridge = FineractBridge(settings, fineract_schemas(), config)
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            bridge.run(stop)
        except BaseException as exc:  # surfaced in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="fineract-bridge", daemon=True)
    thread.start()
    try:
        yield bridge
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the bridge did not stop"
    if failures:
        raise failures[0]


def bridge_messages(settings: Settings, topic: str, count: int) -> FineractBridge:
    """Run a bridge until it has handled *count* messages; return it (stopped, offsets committed)."""
    with running_bridge(settings, topic) as bridge:
        wait_until(lambda: bridge.stats.messages >= count or not bridge_alive(), message=f"{count} messages")
    return bridge


def bridge_alive() -> bool:
    return any(t.name == "fineract-bridge" and t.is_alive() for t in threading.enumerate())


def loan_records(settings: Settings, min_count: int = 0) -> list[Record]:
    out: list[Record] = []
    for name in LOAN_TOPICS:
        out += read_topic(settings, getattr(settings.topics, name), timeout=20)
    assert len(out) >= min_count
    return out


def committed_offset(settings: Settings, topic: str) -> int:
    group = f"{settings.arrears_topic_prefix}arrears-fineract-bridge"
    consumer = Consumer({**settings.kafka_config(), "group.id": group, "enable.auto.commit": False})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


ALL = [(f.key, f.value) for f in fixtures()]


# --------------------------------------------------------------------------- the fixtures, exactly
@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_the_fixtures_become_exactly_the_mapped_records_with_ticks_placed_after_earlier_dates(
    settings: Settings,
) -> None:
    topic = external_topic(settings)
    send_raw(settings, topic, ALL)
    bridge = bridge_messages(settings, topic, len(ALL))
    assert bridge.stats.messages == 10 and not bridge.stats.dead_lettered
    assert bridge.stats.skipped == {"LoanDelinquencyRangeChangeBusinessEvent": 1}

    planned = plan_fixtures()
    expected = {r.value["event_id"]: (r, p.business_date) for p in planned for r in p.records}
    records = loan_records(settings, min_count=len(expected))
    # Every mapped record, once, exactly as mapped, keyed by its loan and with its event_type header.
    assert sorted(r.data["event_id"] for r in records) == sorted(expected)
    for rec in records:
        mapped, _ = expected[rec.data["event_id"]]
        assert rec.name == mapped.record
        assert json_form(rec.name, rec.data) == json_form(mapped.record, avro_ready(mapped))
        assert rec.key == mapped.value["loan_id"].encode()
        assert rec.headers["event_type"] == mapped.record.encode()
        assert rec.topic == settings.topics.for_record(mapped.record)
    # Per loan and topic, in Fineract's order.
    for topic_name in {r.topic for r in records}:
        for loan in ("1001", "1002", "1003"):
            got = [r.data["event_id"] for r in sorted(records, key=lambda r: r.offset)
                   if r.topic == topic_name and r.key == loan.encode()]
            want = [r.value["event_id"] for p in planned for r in p.records
                    if r.value["loan_id"] == loan and settings.topics.for_record(r.record) == topic_name]
            assert got == want

    # One tick per new Fineract business date, in order, with deterministic ids and occurred_at.
    ticks = read_topic(settings, settings.topics.business_date, min_count=9, timeout=20)
    assert [(t.data["business_date"].isoformat(), t.data["calendar"]) for t in ticks] == [
        (p.tick.value["business_date"].isoformat(), "CN") for p in planned if p.tick is not None]
    for tick, plan in zip(ticks, [p for p in planned if p.tick is not None], strict=True):
        assert tick.data["event_id"] == tick_event_id("CN", plan.business_date)
        assert json_form("BusinessDateChanged", tick.data)["occurred_at"] == \
            json_form("BusinessDateChanged", avro_ready(plan.tick))["occurred_at"]  # type: ignore[arg-type]

    # Each tick's barrier cuts every loan partition exactly: earlier dates before it, its own after.
    for tick in ticks:
        barrier = {(o["topic"], o["partition"]): o["offset"] for o in tick.data["barrier"]}
        for rec in records:
            _, date = expected[rec.data["event_id"]]
            place = barrier[(rec.topic, rec.partition)]
            if date < tick.data["business_date"]:
                assert rec.offset < place, (rec.name, date, tick.data["business_date"])
            else:
                assert rec.offset >= place, (rec.name, date, tick.data["business_date"])

    # Offsets were committed after the records were acknowledged: a restart re-reads nothing.
    assert committed_offset(settings, topic) == len(ALL)


# --------------------------------------------------------------------------- dead letters
@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_a_truncated_envelope_and_an_unknown_payload_fingerprint_are_dead_lettered_and_the_bridge_goes_on(
    settings: Settings,
) -> None:
    topic = external_topic(settings)
    schemas = fineract_schemas()
    truncated = fixture(6).value[:200]
    envelope = dict(schemas.decode(fixture(6).value)[1])
    envelope["data"] = envelope["data"][:2] + b"\x01" * 8 + envelope["data"][10:]
    unknown = schemas.encode(ENVELOPE, envelope)
    key = fixture(6).key
    send_raw(settings, topic, [ALL[0], (key, truncated), (key, unknown), ALL[1]])

    bridge = bridge_messages(settings, topic, 4)
    assert bridge.stats.dead_lettered == {"DECODE_ERROR": 1, "UNKNOWN_SCHEMA": 1}

    dead = read_topic(settings, dlq_topic(settings, topic), min_count=2, timeout=20, decode=False)
    assert dlq_topic(settings, topic) == f"{topic}.dlq"
    assert [(d.value, d.key) for d in dead] == [(truncated, key), (unknown, key)]  # the original bytes
    first, second = (d.headers for d in dead)
    assert (first["dlq.reason"], first["dlq.source.offset"]) == (b"DECODE_ERROR", b"1")
    assert b"truncated" in first["dlq.error"]
    assert (second["dlq.reason"], second["dlq.source.offset"]) == (b"UNKNOWN_SCHEMA", b"2")
    assert b"unknown schema fingerprint 0101010101010101" in second["dlq.error"]
    for headers in (first, second):
        assert (headers["dlq.source.topic"], headers["dlq.source.partition"]) == (topic.encode(), b"0")

    # The good messages around them were bridged; the unknown payload's envelope still moved the date.
    opened = read_topic(settings, settings.topics.loan_accounts, min_count=2, timeout=20)
    assert sorted(r.data["loan_id"] for r in opened) == ["1001", "1002"]
    ticks = read_topic(settings, settings.topics.business_date, min_count=2, timeout=20)
    assert [t.data["business_date"].isoformat() for t in ticks] == ["2024-03-01", "2024-04-02"]
    assert committed_offset(settings, topic) == 4


# --------------------------------------------------------------------------- re-sends
@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_a_resent_message_produces_nothing_new_in_the_same_run_or_after_a_restart(settings: Settings) -> None:
    topic = external_topic(settings)
    resent = (fixture(8).key, fixture(8).value)  # same bytes, same idempotencyKey
    send_raw(settings, topic, [*ALL, resent])
    bridge = bridge_messages(settings, topic, len(ALL) + 1)
    assert bridge.stats.duplicates == 1
    records = loan_records(settings, min_count=21)
    assert len(records) == 21  # the re-send published nothing
    ticks = read_topic(settings, settings.topics.business_date, min_count=9, timeout=20)
    assert len(ticks) == 9

    # A restarted bridge has forgotten which keys it saw: it maps the re-sends to the same ids
    # (which the processor applies once) and ticks no business date already on the calendar topic.
    send_raw(settings, topic, [resent, (fixture(5).key, fixture(5).value)])
    again = bridge_messages(settings, topic, 2)
    assert again.stats.messages == 2 and again.stats.ticks == 0
    after = loan_records(settings, min_count=23)
    assert {r.data["event_id"] for r in after} == {r.data["event_id"] for r in records}
    assert len(read_topic(settings, settings.topics.business_date, timeout=10)) == 9


# --------------------------------------------------------------------------- the command
@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_the_fineract_bridge_command_bridges_until_sigterm(settings: Settings, tmp_path: Any) -> None:
    topic = external_topic(settings)
    send_raw(settings, topic, ALL)
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "arrears", "fineract-bridge", "--schemas", str(FINERACT_AVRO_DIR),
             "--topic", topic],
            env=env_for(settings), stdout=out, stderr=subprocess.STDOUT,
        )

    def bridged() -> bool:
        # The last fixture's record (1003's LoanClosed): every message was handled.
        accounts = read_topic(settings, settings.topics.loan_accounts, timeout=2, idle=0.3)
        return any(r.name == "LoanClosed" for r in accounts) or proc.poll() is not None

    try:
        wait_until(bridged, timeout=90, message="the bridge's last record")
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "fineract-bridge: 10 messages" in log.read_text()
    assert len(read_topic(settings, settings.topics.business_date, min_count=9, timeout=20)) == 9
    assert committed_offset(settings, topic) == len(ALL)
