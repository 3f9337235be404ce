"""The publishing library against the session's broker: validated, keyed, murmur2-partitioned, delivered."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Producer
from kafkatools import Record, read_topic

from arrears.errors import PublishError
from arrears.kafka import OffsetReader, create_topics, make_producer, producer_config
from arrears.settings import Settings
from arrears.topics import INPUT_ROUTES
from producers.publisher import LoanEventPublisher
from schemas import Codec, UnknownSchemaError, default_catalog, get_codec

pytestmark = pytest.mark.broker

UTC = dt.UTC
AT = dt.datetime(2026, 2, 27, 9, 30, 0, 250000, tzinfo=UTC)
RESULT_TYPES = (
    "ContactAttempted", "PromiseToPay", "DisputeRaised", "ComplaintReceived", "CeaseContactRequested",
    "CaseReturned",
)


def faust_partition(key: bytes, partitions: int) -> int:
    """The partition Faust (aiokafka's default partitioner: murmur2) puts *key* in."""
    return int(DefaultPartitioner()(key, list(range(partitions)), list(range(partitions))))


def eid() -> str:
    return str(uuid.uuid4())


def loan_records(loan_id: str) -> list[tuple[str, dict[str, Any]]]:
    """One of every input record type for *loan_id*, as a loan system, an adapter and tooling send them."""
    case_id = f"{loan_id}:1"
    base = {"occurred_at": AT}
    result = {**base, "agency_id": "AG1", "case_id": case_id, "work_order_id": f"WO-{loan_id}"}
    return [
        ("LoanOpened", {
            **base, "event_id": eid(), "loan_id": loan_id, "customer_id": f"C-{loan_id}",
            "product_code": "CASH-12M", "currency": "CNY", "principal": 1_200_000,
            "opened_on": dt.date(2025, 12, 1),
            "customer": {
                "name": "张三", "phone": "+8613800000000", "national_id": "110101199003071234",
                "province": "北京市", "city": "北京", "timezone": "Asia/Shanghai",
                "emergency_contacts": [
                    {"name": "李四", "phone": "+8613900000000", "relation": "SPOUSE"},
                    {"name": "王五", "phone": "+8613700000000", "relation": "FRIEND"},
                ],
            },
        }),
        ("InstallmentScheduled", {
            **base, "event_id": eid(), "loan_id": loan_id, "installment_no": 1,
            "due_date": dt.date(2026, 1, 1), "principal_due": 100_000, "interest_due": 7_500, "fee_due": 500,
            "currency": "CNY",
        }),
        ("RepaymentReceived", {
            **base, "event_id": eid(), "loan_id": loan_id, "payment_id": f"P-{loan_id}", "amount": 50_000,
            "currency": "CNY", "value_date": dt.date(2026, 1, 3), "channel": "BANK_TRANSFER",
            "reference": "wx-991",
        }),
        ("RepaymentReceived", {
            **base, "event_id": eid(), "loan_id": loan_id, "payment_id": f"P2-{loan_id}", "amount": 1,
            "currency": "CNY", "value_date": dt.date(2026, 1, 4), "channel": "AUTO_DEBIT", "reference": None,
        }),
        ("RepaymentReversed", {
            **base, "event_id": eid(), "loan_id": loan_id, "payment_id": f"P-{loan_id}", "reason": "BOUNCED",
        }),
        ("ContactAttempted", {
            **result, "event_id": eid(), "attempted_at": AT, "channel": "CALL", "party": "DEBTOR",
            "outcome": "PROMISE_TO_PAY",
        }),
        ("PromiseToPay", {
            **result, "event_id": eid(), "promised_amount": 58_000, "promised_date": dt.date(2026, 3, 5),
        }),
        ("DisputeRaised", {**result, "event_id": eid(), "details": "amount is wrong"}),
        ("ComplaintReceived", {**result, "event_id": eid(), "details": "rude caller"}),
        ("CeaseContactRequested", {**result, "event_id": eid(), "details": "in writing"}),
        ("CaseReturned", {**result, "event_id": eid(), "reason": "unreachable"}),
        ("ReleaseCase", {
            **base, "event_id": eid(), "case_id": case_id, "loan_id": loan_id, "requested_by": "ops@lender",
            "reason": "dispute resolved",
        }),
        # SPEC §10: an agency's settlement proposal and the lender's treatment commands
        ("SettlementProposed", {**result, "event_id": eid(), "amount": 90_000, "pay_by": dt.date(2026, 3, 20)}),
        ("ApproveSettlement", {**base, "event_id": eid(), "loan_id": loan_id, "case_id": case_id,
                               "settlement_id": f"{case_id}:S1", "decided_by": "credit-officer"}),
        ("RejectSettlement", {**base, "event_id": eid(), "loan_id": loan_id, "case_id": case_id,
                              "settlement_id": f"{case_id}:S2", "decided_by": "credit-officer"}),
        ("PauseDelinquency", {**base, "event_id": eid(), "loan_id": loan_id, "from_date": dt.date(2026, 2, 1),
                              "until_date": None, "reason": "hardship", "requested_by": "hardship-desk"}),
        ("ResumeDelinquency", {**base, "event_id": eid(), "loan_id": loan_id, "on_date": dt.date(2026, 3, 1),
                               "requested_by": "hardship-desk"}),
        ("LoanClosed", {**base, "event_id": eid(), "loan_id": loan_id, "reason": "WRITTEN_OFF"}),
    ]


def read_all(settings: Settings, topics: list[str], expected: Counter[str]) -> dict[str, Record]:
    """Every record of *topics*, by event id (each read waits for the count it expects)."""
    records: dict[str, Record] = {}
    for topic in topics:
        for rec in read_topic(settings, topic, min_count=expected[topic], idle=0.3):
            assert rec.data is not None
            records[rec.data["event_id"]] = rec
    return records


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_every_input_record_type_is_published_keyed_partitioned_and_decodes_field_for_field(
    topics: Settings,
) -> None:
    settings = topics
    names = settings.topics
    loans = [f"LN-{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(6)]
    sent: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    with LoanEventPublisher(settings) as publisher:
        for loan_id in loans:
            for name, value in loan_records(loan_id):
                sent.append((name, value, publisher.publish(name, value)))
        tick = publisher.end_of_day(dt.date(2026, 3, 1))

    per_topic = Counter(names.for_record(name) for name, _, _ in sent)
    per_topic[names.business_date] += 1
    got = read_all(settings, [*names.inputs, names.business_date], per_topic)
    assert len(got) == len(sent) + 1
    assert {name for name, _, _ in sent} | {"BusinessDateChanged"} == set(INPUT_ROUTES)  # every input type

    for name, value, prepared in sent:
        rec = got[value["event_id"]]
        loan_id = value["loan_id"] if "loan_id" in value else value["case_id"].rsplit(":", 1)[0]
        assert rec.topic == names.for_record(name)
        assert rec.name == name
        assert rec.data == prepared
        assert {field: rec.data[field] for field in value} == value, name  # field for field, as sent
        assert rec.value is not None and rec.value[:2] == b"\xc3\x01"
        assert rec.key == loan_id.encode()
        assert rec.partition == faust_partition(rec.key, settings.arrears_partitions)
        assert rec.headers["event_type"] == name.encode()

    assert len({rec.partition for rec in got.values() if rec.topic == names.loan_accounts}) > 1
    tick_rec = got[tick["event_id"]]
    assert (tick_rec.name, tick_rec.topic, tick_rec.partition, tick_rec.key) == (
        "BusinessDateChanged", names.business_date, 0, b"CN",
    )
    assert tick_rec.headers["event_type"] == b"BusinessDateChanged"
    assert tick_rec.data == tick
    assert tick["business_date"] == dt.date(2026, 3, 1) and tick["calendar"] == "CN"


def true_end_offsets(settings: Settings, exclude_key: bytes | None = None) -> Counter[tuple[str, int]]:
    """Each input partition's end offset, counted from what publish_then_tick sent."""
    names = settings.topics
    counts = Counter({names.loan_accounts: 9 + 1, names.loan_schedules: 9, names.loan_repayments: 9,
                      names.agency_results: 9})
    ends: Counter[tuple[str, int]] = Counter()
    for topic in names.inputs:
        for rec in read_topic(settings, topic, min_count=counts[topic], idle=0.3):
            if rec.key != exclude_key:
                ends[(rec.topic, rec.partition)] = max(ends[(rec.topic, rec.partition)], rec.offset + 1)
    return ends


def publish_then_tick(publisher: LoanEventPublisher, loans: int) -> dict[str, Any]:
    for loan_id in (f"EOD-{i}" for i in range(loans)):
        records = loan_records(loan_id)
        for name, value in records[:3] + records[5:6]:
            publisher.publish(name, value)  # not waited for: end_of_day must flush first
    tick = publisher.end_of_day("2026-03-02", calendar="CN")
    publisher.publish(*loan_records("AFTER-TICK")[0])
    return tick


def assert_barrier_is(tick: dict[str, Any], settings: Settings, ends: Counter[tuple[str, int]]) -> None:
    partitions = range(settings.arrears_partitions)
    expected = {(t, p): ends[(t, p)] for t in settings.topics.inputs for p in partitions}
    barrier = {(o["topic"], o["partition"]): o["offset"] for o in tick["barrier"]}
    assert len(barrier) == len(tick["barrier"])
    assert barrier == expected


def test_end_of_day_barrier_equals_the_end_offsets_after_the_preceding_publishes(topics: Settings) -> None:
    # One record per produce request, so the broker's end offsets are exact even on the embedded broker
    # (see the next test).
    producer = make_producer(topics, **{"batch.num.messages": 1})
    with LoanEventPublisher(topics, producer=producer) as publisher:
        tick = publish_then_tick(publisher, loans=9)

    ends = true_end_offsets(topics, exclude_key=b"AFTER-TICK")
    assert sum(ends.values()) == 9 * 4
    assert_barrier_is(tick, topics, ends)
    assert tick["business_date"] == dt.date(2026, 3, 2)


def test_end_of_day_barrier_counts_records_the_producer_batched_together(topics: Settings) -> None:
    # The embedded broker reports a batch's base offset + 1 as a partition's end; the barrier
    # reads the last batch back, so batching does not make it too low.
    with LoanEventPublisher(topics) as publisher:
        tick = publish_then_tick(publisher, loans=9)

    ends = true_end_offsets(topics, exclude_key=b"AFTER-TICK")
    assert_barrier_is(tick, topics, ends)


def test_end_offsets_read_back_only_the_partitions_a_caller_needs_exact(topics: Settings) -> None:
    # A tick's fan-out only checks its barrier against the ends: a partition whose reported end
    # reaches the barrier's offset need not be read back (what the embedded broker reports can
    # be low: it counts batches), the others are exact.
    accounts = topics.topics.loan_accounts
    producer = make_producer(topics, **{"linger.ms": 50})
    for i in range(20):
        for partition in (0, 1):
            producer.produce(accounts, b"v", f"K{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    reader = OffsetReader(topics)
    exact = reader.end_offsets([accounts], topics.arrears_partitions)
    assert exact[(accounts, 0)] == exact[(accounts, 1)] == 20
    checked = reader.end_offsets([accounts], topics.arrears_partitions,
                                 reaching={(accounts, 0): 1, (accounts, 1): 20})
    assert 1 <= checked[(accounts, 0)] <= 20
    assert checked[(accounts, 1)] == 20
    assert {tp: end for tp, end in checked.items() if tp[1] > 0} == {tp: end for tp, end in exact.items() if tp[1] > 0}


class RecordingProducer(Producer):  # type: ignore[misc]
    """A real producer that also records what it was asked to send."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.produced: list[tuple[str, bytes | None]] = []

    def produce(self, topic: str, value: bytes | None = None, *args: Any, **kwargs: Any) -> None:
        self.produced.append((topic, value))
        super().produce(topic, value, *args, **kwargs)


def _broken(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    value = dict(next(v for n, v in loan_records("BAD-1") if n == name))
    change(value)
    return value


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("RepaymentReceived", _broken("RepaymentReceived", lambda v: v.update(amount="12.50")), "amount"),
        ("RepaymentReceived", _broken("RepaymentReceived", lambda v: v.pop("currency")), "currency"),
        ("LoanClosed", _broken("LoanClosed", lambda v: v.update(reason="BANKRUPT")), "reason"),
        ("InstallmentScheduled", _broken("InstallmentScheduled", lambda v: v.update(due_date="01/03/2026")),
         "due_date"),
        ("LoanOpened",
         _broken("LoanOpened", lambda v: v["customer"]["emergency_contacts"][1].pop("relation")),
         "customer.emergency_contacts[1].relation"),
        ("RepaymentReceived", _broken("RepaymentReceived", lambda v: v.update(amount=2**63)), "amount"),
        ("ContactAttempted", _broken("ContactAttempted", lambda v: v.update(case_id="no-case-number")),
         "no-case-number"),
        ("CaseOpened", {"loan_id": "L1"}, "not an input record"),
    ],
    ids=["text-amount", "missing-currency", "unknown-enum", "bad-date", "nested-missing", "long-overflow",
         "bad-case-id", "output-record"],
)
def test_a_record_that_breaks_its_schema_raises_publish_error_naming_the_field_before_sending(
    settings: Settings, name: str, value: dict[str, Any], named: str
) -> None:
    producer = RecordingProducer(producer_config(settings))
    publisher = LoanEventPublisher(settings, producer=producer)

    with pytest.raises(PublishError, match=named.replace("[", r"\[").replace("]", r"\]")):
        publisher.publish(name, value, wait=True)

    assert producer.produced == []


def test_the_recording_producer_does_record_a_valid_record(topics: Settings) -> None:
    producer = RecordingProducer(producer_config(topics))
    with LoanEventPublisher(topics, producer=producer) as publisher:
        publisher.publish(*loan_records("GOOD-1")[0])
    assert [topic for topic, _ in producer.produced] == [topics.topics.loan_accounts]


@pytest.mark.slow  # a few seconds: runs in `make test`, not `make test-fast`
def test_a_delivery_failure_surfaces_as_publish_error_on_flush(settings: Settings) -> None:
    # No topics under this test's prefix, and the producer may not auto-create them.
    producer = make_producer(settings, **{"message.timeout.ms": 1000, "allow.auto.create.topics": False})
    publisher = LoanEventPublisher(settings, producer=producer)
    name, value = loan_records("LOST-1")[0]

    publisher.publish(name, value)
    with pytest.raises(PublishError, match=f"1 record.*{value['event_id']}.*{settings.topics.loan_accounts}"):
        publisher.flush(timeout=30)

    name, value = loan_records("LOST-2")[-1]
    with pytest.raises(PublishError, match=value["event_id"]):
        with LoanEventPublisher(settings, producer=make_producer(
            settings, **{"message.timeout.ms": 1000, "allow.auto.create.topics": False}
        )) as failing:
            failing.publish(name, value)  # not waited for: leaving the block must still surface it


def test_confluent_framing_is_published_and_decoded_through_the_registry(
    make_settings: Callable[..., Settings], unique: str
) -> None:
    settings = make_settings(schema_registry_url=f"mock://publisher-{unique}")
    create_topics(settings, settings.topics.specs(settings.arrears_partitions))
    records = loan_records("CONF-1")[:3]

    with LoanEventPublisher(settings) as publisher:
        sent = [publisher.publish(name, value) for name, value in records]
        tick = publisher.end_of_day(dt.date(2026, 3, 1))

    got = read_all(
        settings, [settings.topics.loan_accounts, settings.topics.loan_schedules,
                   settings.topics.loan_repayments, settings.topics.business_date],
        Counter({settings.topics.loan_accounts: 1, settings.topics.loan_schedules: 1,
                 settings.topics.loan_repayments: 1, settings.topics.business_date: 1}),
    )
    registry_codec = get_codec(settings.schema_registry_url)
    for (name, _), prepared in zip([*records, ("BusinessDateChanged", {})], [*sent, tick], strict=True):
        rec = got[prepared["event_id"]]
        assert rec.value is not None and rec.value[0] == 0  # magic byte + 4-byte schema id
        decoded = registry_codec.decode(rec.value)
        assert (decoded.framing, decoded.name, decoded.value) == ("confluent", name, prepared)
        assert rec.headers["event_type"] == name.encode()
        with pytest.raises(UnknownSchemaError, match="SCHEMA_REGISTRY_URL"):
            Codec(default_catalog()).decode(rec.value)
