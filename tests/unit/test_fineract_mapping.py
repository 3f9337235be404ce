"""The Fineract bridge without Kafka: schema loading, decoding the Java-encoded fixtures, the mapping.

The fixtures were written by Apache Avro's Java implementation (what Fineract uses), so decoding
them field for field against ``expected.json`` proves the schema preprocessing, the cross-file
named types and the fingerprints are Fineract's own.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from fineract_support import avro_ready, fineract_schemas, fixture, fixtures, plan_fixtures

from arrears import dlq
from arrears.domain import events as ev
from arrears.domain.book import LoanBook
from arrears.domain.loan import LoanState, Rules
from arrears.settings import load_settings
from producers.fineract.bridge import dlq_topic
from producers.fineract.errors import (
    ContractError,
    FineractDecodeError,
    FineractUnknownSchemaError,
    MappingError,
)
from producers.fineract.mapping import (
    ID_NAMESPACE,
    LOAN_ACCOUNT,
    LOAN_TRANSACTION,
    MappingOptions,
    channel_of,
    event_id,
    map_item,
    map_message,
    occurred_at_of,
    tick_event_id,
    to_minor,
    wanted,
)
from producers.fineract.messages import Envelope, EventItem, FineractMessage, decode_message
from producers.fineract.planner import Planner
from producers.fineract.schemas import BULK_PAYLOAD, ENVELOPE, FineractSchemas
from streams.records import to_domain

FIXTURES = fixtures()
SEQS = [f.seq for f in FIXTURES]


def decoded(seq: int, want: Any = lambda _t, _s: True) -> FineractMessage:
    return decode_message(fineract_schemas(), fixture(seq).value, want)


def mapped(seq: int, options: MappingOptions | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(record, value without event_id/occurred_at) of every record fixture *seq* maps to."""
    out = []
    for result in map_message(decoded(seq, wanted), options):
        for rec in result.records:
            value = {k: v for k, v in rec.value.items() if k not in ("event_id", "occurred_at")}
            out.append((rec.record, value))
    return out


# --------------------------------------------------------------------------- schemas
def test_every_fineract_schema_loads_after_bigdecimal_preprocessing() -> None:
    schemas = fineract_schemas()
    assert len(schemas) == 55  # SOURCE.md: the envelope + the closure of the loan payloads
    amount = next(f for f in schemas.schema(LOAN_TRANSACTION).parsed["fields"] if f["name"] == "amount")
    assert amount["type"][1] == {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 8}


def test_a_directory_without_the_envelope_is_refused_with_a_reason(tmp_path: Any) -> None:
    (tmp_path / "Foo.avsc").write_text('{"type": "record", "name": "Foo", "namespace": "x", "fields": []}')
    with pytest.raises(Exception, match="MessageV1"):
        FineractSchemas.load(tmp_path)


@pytest.mark.parametrize("seq", SEQS)
def test_fixture_fingerprints_are_the_ones_the_java_encoder_wrote(seq: int) -> None:
    fx = fixture(seq)
    schemas = fineract_schemas()
    assert fx.value[:2] == b"\xc3\x01"
    envelope_fp = schemas.schema(ENVELOPE).fingerprint.hex()
    assert fx.value[2:10].hex() == fx.index["envelopeFingerprint"] == envelope_fp
    _, envelope = schemas.decode(fx.value)
    data = envelope["data"]
    payload_fp = schemas.schema(fx.index["payloadSchema"]).fingerprint.hex()
    assert data[2:10].hex() == fx.index["payloadFingerprint"] == payload_fp
    if fx.index["payloadSchema"] == BULK_PAYLOAD:
        items = schemas.decode(data)[1]["datas"]
        assert [i["data"][2:10].hex() for i in items] == [i["fingerprint"] for i in fx.index["bulkItems"]]


# --------------------------------------------------------------------------- decoding, field for field
# expected.json names a few payload fields by what they are, not where they sit in the schema.
ALIASES: dict[str, dict[str, str]] = {
    "LoanAccountDataV1": {
        "loanId": "id",
        "currency": "repaymentSchedule.currency",
        "disbursementDate": "timeline.actualDisbursementDate",
        "periods": "repaymentSchedule.periods",
    },
    "LoanTransactionDataV1": {"transactionId": "id"},
}
NESTED = {"transactionToAdjust": "LoanTransactionDataV1", "newTransactionDetail": "LoanTransactionDataV1"}


def _lookup(value: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        value = value[part]
    return value


def assert_matches(expected: Any, actual: Any, path: str, schema: str | None = None) -> None:
    """Every field *expected* names has exactly that value (decimals compared as decimals)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a record, got {actual!r}"
        aliases = ALIASES.get(schema or "", {})
        for key, want in expected.items():
            got = _lookup(actual, aliases.get(key, key))
            assert_matches(want, got, f"{path}.{key}", NESTED.get(key))
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            assert_matches(want, got, f"{path}[{i}]")
    elif isinstance(actual, Decimal):
        assert isinstance(expected, str) and Decimal(expected) == actual, f"{path}: {actual} != {expected}"
        assert actual.as_tuple().exponent == -8, f"{path}: decoded at scale {-actual.as_tuple().exponent}"
    elif isinstance(expected, bool) or expected is None:
        assert actual is expected, f"{path}: {actual!r} is not {expected!r}"
    else:
        assert type(actual) is type(expected) and actual == expected, f"{path}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("seq", SEQS)
def test_every_fixture_decodes_field_for_field_as_expected(seq: int) -> None:
    fx = fixture(seq)
    schemas = fineract_schemas()
    schema, envelope = schemas.decode(fx.value)
    assert schema.full_name == ENVELOPE
    assert {k: v for k, v in envelope.items() if k != "data"} == fx.expected["envelope"]
    assert fx.key == fx.expected["key"].to_bytes(8, "big", signed=True)
    payload_schema, payload = schemas.decode(envelope["data"], expected=envelope["dataschema"])
    if "bulkItems" in fx.expected:
        items = payload["datas"]
        assert len(items) == len(fx.expected["bulkItems"])
        for i, (want, item) in enumerate(zip(fx.expected["bulkItems"], items, strict=True)):
            assert {k: item[k] for k in ("id", "type", "category", "dataschema")} == {
                k: want[k] for k in ("id", "type", "category", "dataschema")
            }
            item_schema, item_payload = schemas.decode(item["data"], expected=item["dataschema"])
            assert_matches(want["payload"], item_payload, f"bulk[{i}]", item_schema.name)
    else:
        assert_matches(fx.expected["payload"], payload, "payload", payload_schema.name)


def test_the_message_decoder_unpacks_bulk_items_in_order_and_leaves_unmapped_ones_undecoded() -> None:
    message = decoded(7, wanted)
    assert message.envelope.is_bulk
    assert [(i.index, i.type) for i in message.items] == [
        (1, "LoanDelinquencyRangeChangeBusinessEvent"), (2, "LoanRepaymentOverdueBusinessEvent")]
    assert message.items[0].payload is None  # a type the bridge skips needs no schema
    assert message.items[1].payload is not None and message.items[1].payload["loanId"] == 1003


# --------------------------------------------------------------------------- decode errors
def test_a_truncated_envelope_is_a_decode_error() -> None:
    with pytest.raises(FineractDecodeError, match="truncated") as err:
        decode_message(fineract_schemas(), fixture(6).value[:200])
    assert err.value.reason == dlq.DECODE_ERROR


@pytest.mark.parametrize("value, message", [
    (b"", "empty"),
    (b'{"json": true}', "not Avro single-object"),
    (b"\xc3\x01\x00", "truncated single-object header"),
])
def test_bytes_that_are_not_an_envelope_are_decode_errors(value: bytes, message: str) -> None:
    with pytest.raises(FineractDecodeError, match=message):
        decode_message(fineract_schemas(), value)


def test_trailing_bytes_after_the_envelope_are_a_decode_error() -> None:
    with pytest.raises(FineractDecodeError, match="trailing"):
        decode_message(fineract_schemas(), fixture(6).value + b"\x00")


def forge_payload_fingerprint(value: bytes, fingerprint: bytes = b"\x01" * 8) -> bytes:
    """The same envelope whose payload claims a writer schema nobody loaded."""
    schemas = fineract_schemas()
    envelope = dict(schemas.decode(value)[1])
    envelope["data"] = envelope["data"][:2] + fingerprint + envelope["data"][10:]
    return schemas.encode(ENVELOPE, envelope)


def test_an_unknown_payload_fingerprint_is_an_unknown_schema() -> None:
    with pytest.raises(FineractUnknownSchemaError, match="unknown schema fingerprint 01010101") as err:
        decode_message(fineract_schemas(), forge_payload_fingerprint(fixture(6).value))
    assert err.value.reason == dlq.UNKNOWN_SCHEMA


def test_a_payload_that_contradicts_its_dataschema_is_an_unknown_schema() -> None:
    schemas = fineract_schemas()
    envelope = dict(schemas.decode(fixture(6).value)[1])
    envelope["dataschema"] = LOAN_ACCOUNT
    with pytest.raises(FineractUnknownSchemaError, match="dataschema says"):
        decode_message(schemas, schemas.encode(ENVELOPE, envelope))


# --------------------------------------------------------------------------- money and ids
@pytest.mark.parametrize("amount, places, minor", [
    (Decimal("2100.50000000"), 2, 210050),
    (Decimal("0E-8"), 2, 0),
    (Decimal("12000.00000000"), 2, 1200000),
    (Decimal("1500.00000000"), 0, 1500),  # JPY, KRW: no minor unit
    (Decimal("1.23400000"), 3, 1234),  # KWD, BHD
    (Decimal("-5.25000000"), 2, -525),
])
def test_decimals_become_minor_units_by_the_currency_decimal_places(
    amount: Decimal, places: int, minor: int
) -> None:
    assert to_minor(amount, places, "amount") == minor


@pytest.mark.parametrize("amount, places", [
    (Decimal("2100.50500000"), 2),  # half a fen
    (Decimal("1500.50000000"), 0),
    (Decimal("0.00000001"), 2),
])
def test_more_precision_than_the_currency_allows_breaks_the_contract(amount: Decimal, places: int) -> None:
    with pytest.raises(ContractError, match="more precision") as err:
        to_minor(amount, places, "amount")
    assert err.value.reason == dlq.CONTRACT_VIOLATION


def test_event_ids_are_uuid5_of_the_idempotency_key_item_and_record() -> None:
    # Pinned: a change to the id rule would make a replay publish new events.
    assert event_id("3bf68510-494f-43f8-958d-7f6e77a2f0a0", 0, "RepaymentReceived", "9017") == \
        "34628704-03a9-5281-b0ad-2d3ce86c4e9f"
    assert tick_event_id("CN", dt.date(2024, 4, 2)) == "1e55fbf0-aae2-5c2f-91e1-96bcd52ea946"
    assert event_id("k", 2, "InstallmentScheduled", "1") == str(
        uuid.uuid5(ID_NAMESPACE, "k|2|InstallmentScheduled|1"))
    [result] = map_message(decoded(6, wanted))
    assert result.records[0].value["event_id"] == "34628704-03a9-5281-b0ad-2d3ce86c4e9f"


def test_the_dead_letter_topic_is_the_source_topic_prefixed_once() -> None:
    settings = load_settings(arrears_topic_prefix="prod.")
    assert dlq_topic(settings, "external-events") == "prod.external-events.dlq"
    assert dlq_topic(settings, "prod.external-events") == "prod.external-events.dlq"


def test_every_mapped_event_id_is_unique_and_the_same_on_every_mapping() -> None:
    first = [r.value["event_id"] for p in plan_fixtures() for r in p.records]
    again = [r.value["event_id"] for p in plan_fixtures() for r in p.records]
    assert first == again
    assert len(set(first)) == len(first) == 21


@pytest.mark.parametrize("created_at, millis", [
    ("2024-04-02T11:40:31", 1712058031000),
    ("2024-03-04T14:27:19.5", 1709562439500),
    ("2024-03-01T09:12:05.482913", 1709284325482),
    ("2024-03-01T09:12:05.482913999", 1709284325482),  # Java prints up to 9 fraction digits
])
def test_occurred_at_is_fineract_created_at_read_as_utc(created_at: str, millis: int) -> None:
    envelope = Envelope(1, "s", "T", "Loan", created_at, "2024-04-02", "default", "k", LOAN_TRANSACTION)
    assert occurred_at_of(envelope) == millis


# --------------------------------------------------------------------------- the fixtures' mapping
# Fineract's events carry the client's name and nothing else of the customer.
NO_CONTACT_DATA = {"phone": "", "national_id": "", "province": "", "city": "", "emergency_contacts": []}
Expected = tuple[str, dict[str, Any]]


def installment(loan: str, no: int, due: str, principal: int, interest: int, fee: int = 0) -> Expected:
    return ("InstallmentScheduled", {
        "loan_id": loan, "installment_no": no, "due_date": dt.date.fromisoformat(due),
        "principal_due": principal, "interest_due": interest, "fee_due": fee, "currency": "CNY"})


def opened(loan: str, client: str, principal: int, on: str, name: str) -> Expected:
    return ("LoanOpened", {
        "loan_id": loan, "customer_id": client, "product_code": "1", "currency": "CNY",
        "principal": principal, "opened_on": dt.date.fromisoformat(on),
        "customer": {"name": name, **NO_CONTACT_DATA}})


EXPECTED_RECORDS: dict[int, list[Expected]] = {
    # Disbursal snapshots: the loan and one installment per period (the disbursement row skipped).
    1: [opened("1001", "501", 1200000, "2024-03-01", "张伟"),
        installment("1001", 1, "2024-04-01", 396027, 12000),
        installment("1001", 2, "2024-05-01", 399987, 8040),
        installment("1001", 3, "2024-06-01", 403986, 4040)],
    2: [opened("1002", "502", 500000, "2024-03-02", "李娜"),
        installment("1002", 1, "2024-04-02", 248756, 5000),
        installment("1002", 2, "2024-05-02", 251244, 2512)],
    3: [opened("1003", "503", 600000, "2024-03-04", "王芳"),
        installment("1003", 1, "2024-04-04", 97529, 6000),
        installment("1003", 2, "2024-05-04", 98504, 5025),
        installment("1003", 3, "2024-06-04", 99489, 4040),
        installment("1003", 4, "2024-07-04", 100484, 3045),
        installment("1003", 5, "2024-08-04", 101489, 2040),
        installment("1003", 6, "2024-09-04", 102505, 1025)],
    # Due and overdue reminders restate the installment they name.
    4: [installment("1001", 1, "2024-04-01", 396027, 12000)],
    5: [installment("1001", 1, "2024-04-01", 396027, 12000)],
    6: [("RepaymentReceived", {"loan_id": "1002", "payment_id": "9017", "amount": 253756, "currency": "CNY",
                               "value_date": dt.date(2024, 4, 2), "channel": "MONEY_TRANSFER",
                               "reference": "RCPT-20240402-9017"})],
    # Bulk: item 1 (delinquency range change) is skipped, item 2 (overdue) maps.
    7: [installment("1003", 1, "2024-04-04", 97529, 6000)],
    8: [("RepaymentReceived", {"loan_id": "1001", "payment_id": "9024", "amount": 210050, "currency": "CNY",
                               "value_date": dt.date(2024, 4, 8), "channel": "MONEY_TRANSFER",
                               "reference": "RCPT-20240408-9024"})],
    9: [("RepaymentReversed", {"loan_id": "1001", "payment_id": "9024", "reason": "FINERACT_UNDO"})],
    10: [("LoanClosed", {"loan_id": "1003", "reason": "WRITTEN_OFF"})],
}


@pytest.mark.parametrize("seq", SEQS)
def test_each_fixture_maps_to_the_expected_arrears_records(seq: int) -> None:
    assert mapped(seq) == EXPECTED_RECORDS[seq]


@pytest.mark.parametrize("seq", SEQS)
def test_every_mapped_record_is_valid_against_the_contract(seq: int) -> None:
    for result in map_message(decoded(seq, wanted)):
        for record in result.records:
            value = avro_ready(record)
            assert value["occurred_at"] is not None
            if record.record == "LoanOpened":
                assert value["customer"]["timezone"] == "Asia/Shanghai"  # the contract default, not invented


def test_the_bulk_delinquency_range_change_is_counted_as_skipped() -> None:
    results = map_message(decoded(7, wanted))
    assert [(r.event_type, bool(r.records), r.skipped is not None) for r in results] == [
        ("LoanDelinquencyRangeChangeBusinessEvent", False, True),
        ("LoanRepaymentOverdueBusinessEvent", True, False),
    ]


def test_ids_of_bulk_items_differ_by_item_and_occurred_at_is_the_envelopes() -> None:
    [_, overdue] = map_message(decoded(7, wanted))
    rec = overdue.records[0].value
    assert rec["event_id"] == event_id("30735156-4e8d-4d08-bad8-e8de02857af2", 2, "InstallmentScheduled", "1")
    assert rec["occurred_at"] == 1712275521900  # 2024-04-05T00:05:21.90017 UTC


# --------------------------------------------------------------------------- variations on the fixtures
def with_payload(seq: int, change: Any, event_type: str | None = None) -> tuple[Envelope, EventItem]:
    """Fixture *seq*'s envelope and payload after *change* (a function editing a deep copy)."""
    message = decoded(seq)
    item = message.items[0]
    payload = copy.deepcopy(item.payload)
    change(payload)
    return message.envelope, EventItem(item.index, event_type or item.type, item.dataschema, payload)


def status(id_: int, code: str, **flags: bool) -> Any:
    return lambda p: p.update(status={"id": id_, "code": code, **flags})


@pytest.mark.parametrize("change, reason", [
    (status(600, "loanStatusType.closed.obligations.met", closedObligationsMet=True), "PAID_OFF"),
    (status(601, "loanStatusType.closed.written.off", closedWrittenOff=True), "WRITTEN_OFF"),
    (status(602, "loanStatusType.closed.reschedule.outstanding.amount", closedRescheduled=True), "CANCELLED"),
    (lambda p: p.update(chargedOff=True), "WRITTEN_OFF"),
    (lambda p: p.update(status={"closedWrittenOff": True}), "WRITTEN_OFF"),  # flags when the id is missing
])
def test_a_closed_or_charged_off_snapshot_closes_the_loan_with_the_matching_reason(
    change: Any, reason: str
) -> None:
    result = map_item(*with_payload(1, change, "LoanStatusChangedBusinessEvent"))
    closed = [(r.record, r.value["loan_id"], r.value["reason"]) for r in result.records]
    assert closed == [("LoanClosed", "1001", reason)]


@pytest.mark.parametrize("id_, code", [
    (100, "loanStatusType.submitted.and.pending.approval"),
    (200, "loanStatusType.approved"),
    (400, "loanStatusType.withdrawn.by.client"),
    (500, "loanStatusType.rejected"),
])
def test_a_snapshot_of_a_loan_not_yet_disbursed_is_skipped(id_: int, code: str) -> None:
    result = map_item(*with_payload(1, status(id_, code), "LoanApprovedBusinessEvent"))
    assert result.records == () and result.skipped is not None and code in result.skipped


def test_a_resent_snapshot_revises_installments_net_of_waivers_with_penalties_as_fees() -> None:
    def revise(p: dict[str, Any]) -> None:
        period = p["repaymentSchedule"]["periods"][1]
        period.update(interestWaived=Decimal("20.00000000"), feeChargesDue=Decimal("15.00000000"),
                      penaltyChargesDue=Decimal("30.00000000"), penaltyChargesWaived=Decimal("10.00000000"))

    result = map_item(*with_payload(1, revise, "LoanBalanceChangedBusinessEvent"))
    first = result.records[0].value
    assert (first["installment_no"], first["principal_due"], first["interest_due"], first["fee_due"]) == \
        (1, 396027, 10000, 3500)


@pytest.mark.parametrize("event_type", ["LoanBalanceChangedBusinessEvent", "LoanStatusChangedBusinessEvent",
                                        "LoanAccountCustomSnapshotBusinessEvent"])
def test_only_the_disbursal_snapshot_opens_the_loan_later_ones_revise_the_schedule(event_type: str) -> None:
    # A re-sent LoanOpened would refresh the customer with Fineract's empty contact fields.
    result = map_item(*with_payload(1, lambda p: None, event_type))
    assert [r.record for r in result.records] == ["InstallmentScheduled"] * 3


def test_a_snapshot_amount_with_sub_fen_precision_breaks_the_contract() -> None:
    change = lambda p: p["repaymentSchedule"]["periods"][2].update(interestDue=Decimal("80.40500000"))  # noqa: E731
    with pytest.raises(ContractError, match=r"periods\[2\]\.interestDue"):
        map_item(*with_payload(1, change))


def test_missing_contact_data_stays_empty_and_the_timezone_option_is_applied() -> None:
    env, item = with_payload(1, lambda p: p.update(clientName=None))
    plain = map_item(env, item).records[0].value["customer"]
    assert plain == {"name": "", **NO_CONTACT_DATA}
    zoned = map_item(env, item, MappingOptions(customer_timezone="America/New_York")).records[0]
    assert zoned.value["customer"]["timezone"] == "America/New_York"


def test_a_snapshot_without_a_client_cannot_be_mapped() -> None:
    with pytest.raises(MappingError, match="clientId"):
        map_item(*with_payload(1, lambda p: p.update(clientId=None)))


def test_due_events_can_be_ignored_because_their_amounts_are_what_is_outstanding() -> None:
    assert mapped(5, MappingOptions(schedule_from_due_events=False)) == []
    assert mapped(4, MappingOptions(schedule_from_due_events=True)) == EXPECTED_RECORDS[4]


@pytest.mark.parametrize("event_type, channel", [
    ("LoanTransactionGoodwillCreditPostBusinessEvent", "GOODWILL_CREDIT"),
    ("LoanTransactionMerchantIssuedRefundPostBusinessEvent", "MERCHANT_ISSUED_REFUND"),
    ("LoanTransactionPayoutRefundPostBusinessEvent", "PAYOUT_REFUND"),
    ("LoanTransactionDownPaymentPostBusinessEvent", "UNSPECIFIED"),
    ("LoanTransactionRecoveryPaymentPostBusinessEvent", "UNSPECIFIED"),
])
def test_repayment_like_transactions_without_a_payment_type_take_their_kind_as_channel(
    event_type: str, channel: str
) -> None:
    kind = event_type.removeprefix("LoanTransaction").removesuffix("PostBusinessEvent")
    flag = {"GoodwillCredit": "goodwillCredit", "MerchantIssuedRefund": "merchantIssuedRefund",
            "PayoutRefund": "payoutRefund", "DownPayment": "downPayment",
            "RecoveryPayment": "recoveryRepayment"}[kind]

    def change(p: dict[str, Any]) -> None:
        p.update(paymentDetailData=None, type={"id": 0, "code": f"loanTransactionType.{flag}", flag: True})

    result = map_item(*with_payload(6, change, event_type))
    [record] = result.records
    assert (record.record, record.value["channel"], record.value["amount"]) == \
        ("RepaymentReceived", channel, 253756)


@pytest.mark.parametrize("payment_type, channel", [
    ({"name": "Money Transfer"}, "MONEY_TRANSFER"),
    ({"name": "  cash / counter "}, "CASH_COUNTER"),
    ({"name": "银行转账"}, "银行转账"),
    ({"name": "Money Transfer", "codeName": "bank-transfer"}, "BANK_TRANSFER"),
    ({"name": "--"}, "UNSPECIFIED"),
])
def test_the_channel_is_the_payment_type_in_upper_snake_case(
    payment_type: dict[str, str], channel: str
) -> None:
    txn = {"paymentDetailData": {"paymentType": payment_type}, "type": {"repayment": True}}
    assert channel_of(txn) == channel


def test_a_transaction_that_arrives_manually_reversed_maps_to_the_reversal_alone() -> None:
    change = lambda p: p.update(manuallyReversed=True, reversedOnDate="2024-04-03")  # noqa: E731
    [record] = map_item(*with_payload(6, change)).records
    assert (record.record, record.value["payment_id"], record.value["reason"]) == \
        ("RepaymentReversed", "9017", "FINERACT_REVERSAL")


@pytest.mark.parametrize("amount", [Decimal("0E-8"), Decimal("-1.00000000")])
def test_a_repayment_that_is_not_positive_breaks_the_contract(amount: Decimal) -> None:
    with pytest.raises(ContractError, match="must be > 0"):
        map_item(*with_payload(6, lambda p: p.update(amount=amount)))


def test_a_repayment_without_currency_decimal_places_cannot_be_mapped() -> None:
    with pytest.raises(MappingError, match="decimalPlaces"):
        map_item(*with_payload(6, lambda p: p["currency"].update(decimalPlaces=None)))


def test_an_adjustment_with_a_replacement_reverses_the_old_repayment_and_receives_the_new() -> None:
    def replace(p: dict[str, Any]) -> None:
        new = copy.deepcopy(p["transactionToAdjust"])
        new.update(id=9030, amount=Decimal("2000.00000000"), manuallyReversed=False, reversedOnDate=None)
        p["newTransactionDetail"] = new

    result = map_item(*with_payload(9, replace))
    assert [(r.record, r.value["payment_id"]) for r in result.records] == [
        ("RepaymentReversed", "9024"), ("RepaymentReceived", "9030")]
    assert result.records[0].value["reason"] == "FINERACT_ADJUSTMENT"
    assert result.records[1].value["amount"] == 200000


def test_an_adjustment_of_a_transaction_that_is_not_a_repayment_is_skipped() -> None:
    def change(p: dict[str, Any]) -> None:
        p["transactionToAdjust"].update(type={"id": 1, "code": "loanTransactionType.disbursement"})

    result = map_item(*with_payload(9, change))
    assert result.records == () and result.skipped


@pytest.mark.parametrize("event_type", ["LoanUndoWrittenOffBusinessEvent", "LoanUndoChargeOffBusinessEvent",
                                        "LoanChargeRefundBusinessEvent"])
def test_undo_of_a_write_off_and_other_transactions_are_skipped(event_type: str) -> None:
    change = lambda p: p.update(type={"id": 27, "code": "loanTransactionType.chargeOff"})  # noqa: E731
    result = map_item(*with_payload(10, change, event_type))
    assert result.records == () and result.skipped


def test_a_charge_off_closes_the_loan_as_written_off() -> None:
    result = map_item(*with_payload(10, lambda p: None, "LoanChargeOffPostBusinessEvent"))
    assert [(r.record, r.value["reason"]) for r in result.records] == [("LoanClosed", "WRITTEN_OFF")]


# --------------------------------------------------------------------------- the planner
def test_ticks_follow_fineract_business_dates_only_forward_and_come_before_that_dates_records() -> None:
    planned = plan_fixtures()
    ticks = [(p.fixture.seq, p.tick.value["business_date"].isoformat()) for p in planned if p.tick]
    assert ticks == [(1, "2024-03-01"), (2, "2024-03-02"), (3, "2024-03-04"), (4, "2024-03-31"),
                     (5, "2024-04-02"), (7, "2024-04-05"), (8, "2024-04-08"), (9, "2024-04-09"),
                     (10, "2024-04-10")]
    tick = planned[4].tick
    assert tick is not None and tick.value == {
        "event_id": tick_event_id("CN", dt.date(2024, 4, 2)), "occurred_at": 1712016308614,  # 00:05:08.61402
        "calendar": "CN", "business_date": dt.date(2024, 4, 2)}


def test_a_resent_message_plans_nothing_and_an_older_business_date_no_tick() -> None:
    planner = Planner("CN", last_business_date=dt.date(2024, 4, 1))
    first = planner.plan(decoded(8, wanted))
    again = planner.plan(decoded(8, wanted))
    older = planner.plan(decoded(6, wanted))  # 2024-04-02 < 2024-04-08
    assert first.tick is not None and len(first.records) == 1
    assert again.duplicate and again.tick is None and again.records == []
    assert older.tick is None and len(older.records) == 1


def test_a_business_date_already_published_before_a_restart_is_not_ticked_again() -> None:
    planner = Planner("CN", last_business_date=dt.date(2024, 4, 10))
    assert all(planner.plan(decoded(seq, wanted)).tick is None for seq in SEQS)


def test_other_tenants_are_skipped_when_a_tenant_is_set() -> None:
    assert Planner("CN", tenant="other").plan(decoded(1, wanted)).other_tenant
    assert not Planner("CN", tenant="default").plan(decoded(1, wanted)).other_tenant


def test_a_payload_that_cannot_be_decoded_still_moves_the_business_date_of_its_envelope() -> None:
    planner = Planner("CN", last_business_date=dt.date(2024, 4, 1))
    error = FineractUnknownSchemaError("unknown schema fingerprint")
    plan = planner.failed(decoded(6).envelope, error)
    assert plan.error is error and plan.records == []
    assert plan.tick is not None and plan.tick.value["business_date"] == dt.date(2024, 4, 2)
    assert Planner("CN", tenant="other").failed(decoded(6).envelope, error).other_tenant


def test_a_message_that_cannot_be_mapped_keeps_its_tick_and_carries_the_error() -> None:
    env, item = with_payload(6, lambda p: p.update(amount=Decimal("1.00500000")))
    plan = Planner("CN").plan(FineractMessage(env, (item,)))
    assert plan.tick is not None and plan.records == []
    assert isinstance(plan.error, ContractError)
    assert "LoanTransactionMakeRepaymentPostBusinessEvent" in str(plan.error)


# --------------------------------------------------------------------------- the story, pure rules
class _Store:
    def __init__(self) -> None:
        self.loans: dict[str, LoanState] = {}

    def get(self, loan_id: str) -> LoanState | None:
        return self.loans.get(loan_id)

    def put(self, state: LoanState) -> None:
        self.loans[state.loan_id] = state


def test_the_three_loan_story_through_the_pure_rules_gives_the_case_events_a_reader_expects() -> None:
    """The same expectations as tests/e2e/test_fineract_story.py, without Kafka or a worker."""
    book = LoanBook(_Store(), Rules())
    out: list[Any] = []
    for planned in plan_fixtures():
        if planned.tick is not None:
            tick = planned.tick.value
            out += book.tick(ev.Tick(tick["event_id"], tick["occurred_at"], tick["business_date"]))
        for record in planned.records:
            out += book.apply(record.value["loan_id"], to_domain(record.record, avro_ready(record)))
    cases = [(type(o).__name__, o.case_id, o.business_date.isoformat(), *_case_fields(o))
             for o in out if type(o).__name__.startswith("Case") and type(o).__name__ != "CaseState"]
    assert [type(o).__name__ for o in out if isinstance(o, ev.Rejected)] == []
    assert cases == [
        # 1001 missed installment 1 (4080.27 due 2024-04-01): overdue from the 04-02 tick, DPD 1, M1.
        ("CaseOpened", "1001:1", "2024-04-02", 1, "M1", 408027),
        # 1003 missed installment 1 (1035.29 due 2024-04-04): its case opens at the 04-05 tick.
        ("CaseOpened", "1003:1", "2024-04-05", 1, "M1", 103529),
        # 1001 pays 2100.50 on 04-08: still overdue, the balance drops (DPD 7).
        ("CaseBalanceChanged", "1001:1", "2024-04-08", 7, "M1", 197977),
        # That payment is reversed on 04-09: the balance is back to the whole installment.
        ("CaseBalanceChanged", "1001:1", "2024-04-09", 8, "M1", 408027),
        # 1003 is written off on 04-10: its case closes with the loan's reason.
        ("CaseClosed", "1003:1", "2024-04-10", "WRITTEN_OFF"),
        # 1002 paid installment 1 on its due date: it never has a case.
    ]


def _case_fields(o: Any) -> tuple[Any, ...]:
    if type(o).__name__ == "CaseClosed":
        return (o.reason,)
    return (o.dpd, o.bucket, o.overdue_amount)
