"""The arrears.v1 contract: every record round-trips, frames as SPEC §1 says, and matches SPEC §1-§7."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from typing import Any

import fastavro
import pytest
from fastavro.schema import expand_schema, fingerprint, parse_schema, to_parsing_canonical_form

from schemas import (
    Codec,
    MalformedMessageError,
    SchemaViolationError,
    UnknownSchemaError,
    default_catalog,
    from_json,
    to_json,
)
from schemas.catalog import NAMESPACE, SCHEMA_DIR, read_definitions
from schemas.codec import registry_client

CATALOG = default_catalog()
DEFINITIONS = read_definitions(SCHEMA_DIR)
EVENTS = CATALOG.event_names
UTC = dt.UTC

# --------------------------------------------------------------------------- the contract, from SPEC
BASE = ("event_id", "occurred_at")
CASE = (*BASE, "case_id", "loan_id", "business_date")
RESULT = (*BASE, "agency_id", "case_id", "work_order_id")
SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    # §3 input records
    "LoanOpened": (
        *BASE, "loan_id", "customer_id", "product_code", "currency", "principal", "opened_on", "customer",
    ),
    "Customer": ("name", "phone", "national_id", "province", "city", "timezone", "emergency_contacts"),
    "EmergencyContact": ("name", "phone", "relation"),
    "LoanClosed": (*BASE, "loan_id", "reason"),
    "InstallmentScheduled": (
        *BASE, "loan_id", "installment_no", "due_date", "principal_due", "interest_due", "fee_due",
        "currency",
    ),
    "RepaymentReceived": (
        *BASE, "loan_id", "payment_id", "amount", "currency", "value_date", "channel", "reference",
    ),
    "RepaymentReversed": (*BASE, "loan_id", "payment_id", "reason"),
    "BusinessDateChanged": (*BASE, "calendar", "business_date", "barrier"),
    "Offset": ("topic", "partition", "offset"),
    # §4 case events
    "CaseOpened": (*CASE, "customer_id", "dpd", "bucket", "overdue_amount", "currency", "oldest_due_date"),
    "CaseDelinquencyChanged": (*CASE, "dpd", "bucket", "previous_bucket", "overdue_amount"),
    "CaseBalanceChanged": (*CASE, "overdue_amount", "previous_overdue_amount", "dpd", "bucket", "payment_id"),
    "CaseClosed": (*CASE, "reason"),
    "CaseAssigned": (*CASE, "agency_id", "work_order_id", "assigned_on", "expires_on"),
    "CaseRecalled": (*CASE, "agency_id", "work_order_id", "reason"),
    "CaseHeld": (*CASE, "hold_reason"),
    "CaseReleased": (*CASE, "hold_reason"),
    "PromiseKept": (*CASE, "agency_id", "promised_amount", "promised_date", "paid_amount"),
    "PromiseBroken": (*CASE, "agency_id", "promised_amount", "promised_date", "paid_amount"),
    # §5 work orders
    "WorkOrderIssued": (
        *BASE, "work_order_id", "case_id", "loan_id", "agency_id", "debtor", "overdue_amount", "currency",
        "dpd", "bucket", "oldest_due_date", "expires_on", "contact_policy",
    ),
    "Debtor": ("name", "phone", "national_id_masked", "province", "city", "timezone"),
    "ContactPolicy": (
        "profile", "quiet_hours_start", "quiet_hours_end", "max_connected_calls_per_day",
        "max_attempts_per_day", "max_attempts_per_week", "emergency_contacts_allowed",
    ),
    "WorkOrderUpdated": (*BASE, "work_order_id", "case_id", "overdue_amount", "dpd", "bucket"),
    "WorkOrderCancelled": (*BASE, "work_order_id", "case_id", "reason"),
    # §6 results and compliance
    "ContactAttempted": (*RESULT, "attempted_at", "channel", "party", "outcome"),
    "PromiseToPay": (*RESULT, "promised_amount", "promised_date"),
    "DisputeRaised": (*RESULT, "details"),
    "ComplaintReceived": (*RESULT, "details"),
    "CeaseContactRequested": (*RESULT, "details"),
    "CaseReturned": (*RESULT, "reason"),
    "ComplianceViolation": (*BASE, "case_id", "loan_id", "agency_id", "rule", "details", "source_event_id"),
    # §7 case state, §2 commands
    "CaseState": (
        *BASE, "case_id", "loan_id", "customer_id", "status", "dpd", "bucket", "overdue_amount", "currency",
        "opened_on", "closed_on", "close_reason", "agency_id", "work_order_id", "hold_reason", "promise",
        "contact_attempts", "last_contact_at", "violations", "version",
    ),
    "Promise": ("amount", "date"),
    "ReleaseCase": (*BASE, "case_id", "loan_id", "requested_by", "reason"),
    # §7 access to personal data, on collections.audit
    "PiiAccessed": (*BASE, "token_name", "endpoint", "case_id", "loan_id", "customer_id"),
    # §10 treatments and agency economics
    "PauseDelinquency": (*BASE, "loan_id", "from_date", "until_date", "reason", "requested_by"),
    "ResumeDelinquency": (*BASE, "loan_id", "on_date", "requested_by"),
    "DelinquencyPaused": (
        *BASE, "case_id", "loan_id", "business_date", "from_date", "until_date", "dpd", "bucket", "requested_by",
    ),
    "DelinquencyResumed": (*BASE, "case_id", "loan_id", "business_date", "on_date", "dpd", "bucket"),
    "SettlementProposed": (*RESULT, "amount", "pay_by"),
    "SettlementApproved": (
        *CASE, "settlement_id", "agency_id", "amount", "pay_by", "discount", "approved_by",
    ),
    "SettlementRejected": (*CASE, "settlement_id", "agency_id", "amount", "discount", "reason"),
    "SettlementPending": (*CASE, "settlement_id", "agency_id", "amount", "pay_by", "discount"),
    "ApproveSettlement": (*BASE, "loan_id", "case_id", "settlement_id", "decided_by"),
    "RejectSettlement": (*BASE, "loan_id", "case_id", "settlement_id", "decided_by"),
    "SettlementFulfilled": (*CASE, "settlement_id", "agency_id", "amount", "paid_amount"),
    "SettlementBroken": (*CASE, "settlement_id", "agency_id", "amount", "paid_amount"),
    "RecoveryAttributed": (
        *BASE, "case_id", "loan_id", "agency_id", "work_order_id", "payment_id", "amount", "bucket", "rate",
        "commission", "business_date",
    ),
    "RecoveryReversed": (
        *BASE, "case_id", "loan_id", "agency_id", "work_order_id", "payment_id", "amount", "bucket", "rate",
        "commission", "business_date",
    ),
    "SettlementPolicy": ("max_discount", "approval_above", "outstanding_amount", "min_amount"),
}
SPEC_ENUMS = {
    "LoanCloseReason": ["PAID_OFF", "WRITTEN_OFF", "SOLD", "CANCELLED"],
    "CaseCloseReason": ["CURED", "PAID_OFF", "WRITTEN_OFF", "SOLD", "CANCELLED"],
    "RecallReason": ["CLOSED", "EXPIRED", "HOLD", "RETURNED", "REALLOCATED"],
    "HoldReason": ["DISPUTE", "COMPLAINT", "CEASE_CONTACT"],
    "ContactChannel": ["CALL", "SMS", "LETTER", "VISIT", "APP", "EMAIL"],
    "ContactParty": ["DEBTOR", "EMERGENCY_CONTACT", "THIRD_PARTY"],
    "ContactOutcome": [
        "NO_ANSWER", "RIGHT_PARTY_CONTACT", "WRONG_PARTY", "REFUSED_TO_PAY", "PROMISE_TO_PAY",
        "CALLBACK_REQUESTED", "LEFT_MESSAGE",
    ],
    "CaseStatus": ["OPEN", "ASSIGNED", "HOLD", "CLOSED"],
}
NESTED_RECORDS = {"Customer", "EmergencyContact", "Debtor", "ContactPolicy", "Promise", "Offset", "SettlementPolicy"}
MONEY = {
    "principal", "principal_due", "interest_due", "fee_due", "amount", "overdue_amount",
    "previous_overdue_amount", "promised_amount", "paid_amount", "commission", "outstanding_amount", "min_amount",
}
DATES = {
    "opened_on", "due_date", "value_date", "business_date", "oldest_due_date", "assigned_on", "expires_on",
    "promised_date", "date", "closed_on", "from_date", "until_date", "on_date", "pay_by", "paused_until",
}
SHARES = {"rate", "discount", "max_discount", "approval_above"}  # fractions (0.15 is 15%): double, never money
INSTANTS = {"occurred_at", "attempted_at", "last_contact_at"}
NULLABLE = {
    ("RepaymentReceived", "reference"), ("CaseBalanceChanged", "payment_id"),
    ("ContactPolicy", "max_connected_calls_per_day"), ("ContactPolicy", "max_attempts_per_day"),
    ("ContactPolicy", "max_attempts_per_week"), ("CaseState", "closed_on"), ("CaseState", "close_reason"),
    ("CaseState", "agency_id"), ("CaseState", "work_order_id"), ("CaseState", "hold_reason"),
    ("CaseState", "promise"), ("CaseState", "last_contact_at"),
    # §10: new fields of released records, and the nullable fields of the new ones
    ("CaseState", "paused_until"), ("CaseClosed", "settlement_id"), ("WorkOrderIssued", "settlement_policy"),
    ("WorkOrderUpdated", "settlement_policy"), ("PauseDelinquency", "until_date"), ("DelinquencyPaused", "case_id"),
    ("DelinquencyPaused", "until_date"), ("DelinquencyResumed", "case_id"), ("SettlementPolicy", "approval_above"),
}
NAMED_FIELD_TYPES = [
    ("LoanOpened", "customer", "Customer"),
    ("Customer", "emergency_contacts", "EmergencyContact"),
    ("LoanClosed", "reason", "LoanCloseReason"),
    ("BusinessDateChanged", "barrier", "Offset"),
    ("CaseClosed", "reason", "CaseCloseReason"),
    ("CaseRecalled", "reason", "RecallReason"),
    ("CaseHeld", "hold_reason", "HoldReason"),
    ("CaseReleased", "hold_reason", "HoldReason"),
    ("WorkOrderIssued", "debtor", "Debtor"),
    ("WorkOrderIssued", "contact_policy", "ContactPolicy"),
    ("ContactAttempted", "channel", "ContactChannel"),
    ("ContactAttempted", "party", "ContactParty"),
    ("ContactAttempted", "outcome", "ContactOutcome"),
    ("CaseState", "status", "CaseStatus"),
    ("CaseState", "close_reason", "CaseCloseReason"),
    ("CaseState", "hold_reason", "HoldReason"),
    ("CaseState", "promise", "Promise"),
    ("WorkOrderIssued", "settlement_policy", "SettlementPolicy"),
    ("WorkOrderUpdated", "settlement_policy", "SettlementPolicy"),
]


def definition(name: str) -> dict[str, Any]:
    return DEFINITIONS[f"{NAMESPACE}.{name}"]


def field_of(record: str, field: str) -> dict[str, Any]:
    return next(f for f in definition(record)["fields"] if f["name"] == field)


def without_null(schema: Any) -> Any:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        assert len(branches) == 1, schema
        return branches[0]
    return schema


# --------------------------------------------------------------------------- values from the schema
def full_name(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    return name if "." in name else f"{schema.get('namespace', NAMESPACE)}.{name}"


SAMPLE_DATE = dt.date(2026, 2, 28)
SAMPLE_INSTANT = dt.datetime(2026, 3, 1, 8, 30, 15, 123000, tzinfo=UTC)


def sample(schema: Any, path: str, *, nulls: bool, named: dict[str, Any]) -> Any:
    """A representative value of *schema*; with *nulls*, every nullable is null and arrays are empty."""
    if isinstance(schema, list):
        if nulls and "null" in schema:
            return None
        return sample(without_null(schema), path, nulls=nulls, named=named)
    if isinstance(schema, str):
        if schema in named:
            return sample(named[schema], path, nulls=nulls, named=named)
        return {
            # Non-ASCII text, a long beyond float precision and a negative int catch sloppy encoders.
            "string": f"{path}·值",
            "int": -1234567,
            "long": 2**53 + 7,
            "boolean": True,
            "double": 0.1 + 0.2,  # a share no decimal writes exactly: it must round-trip bit for bit
        }[schema]
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "date":
        return SAMPLE_DATE
    if logical == "timestamp-millis":
        return SAMPLE_INSTANT
    if kind == "enum":
        named[full_name(schema)] = schema
        return schema["symbols"][-1]
    if kind == "array":
        return [] if nulls else [
            sample(schema["items"], f"{path}[{i}]", nulls=nulls, named=named) for i in range(2)
        ]
    if kind == "record":
        named[full_name(schema)] = schema
        return {f["name"]: sample(f["type"], f["name"], nulls=nulls, named=named) for f in schema["fields"]}
    return sample(kind, path, nulls=nulls, named=named)


def sample_value(name: str, *, nulls: bool = False) -> dict[str, Any]:
    value = sample(CATALOG.record(name).expanded, name, nulls=nulls, named={})
    value["event_id"] = str(uuid.UUID(int=0xA11))
    return value


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("nulls", [False, True], ids=["filled", "nulls"])
@pytest.mark.parametrize("name", EVENTS)
def test_every_record_round_trips_in_single_object_encoding(name: str, nulls: bool) -> None:
    codec = Codec(CATALOG)
    value = sample_value(name, nulls=nulls)

    decoded = codec.decode(codec.encode_single_object(name, value))

    assert (decoded.name, decoded.framing) == (name, "single-object")
    assert decoded.value == value


@pytest.mark.parametrize("nulls", [False, True], ids=["filled", "nulls"])
@pytest.mark.parametrize("name", EVENTS)
def test_every_record_round_trips_through_its_json_form(name: str, nulls: bool) -> None:
    value = sample_value(name, nulls=nulls)

    text = json.dumps(to_json(CATALOG, name, value))
    assert from_json(CATALOG, json.loads(text)) == (name, value)


def test_json_form_writes_dates_instants_money_enums_and_nulls_as_spec_says() -> None:
    value = {
        "event_id": "e-1", "occurred_at": SAMPLE_INSTANT, "loan_id": "L1", "payment_id": "P1",
        "amount": 120000, "currency": "CNY", "value_date": SAMPLE_DATE, "channel": "BANK_TRANSFER",
        "reference": None,
    }
    assert to_json(CATALOG, "RepaymentReceived", value) == {
        "type": "RepaymentReceived", "event_id": "e-1", "occurred_at": "2026-03-01T08:30:15.123Z",
        "loan_id": "L1", "payment_id": "P1", "amount": 120000, "currency": "CNY", "value_date": "2026-02-28",
        "channel": "BANK_TRANSFER", "reference": None,
    }
    closed = to_json(
        CATALOG, "LoanClosed", {"event_id": "e", "occurred_at": 0, "loan_id": "L", "reason": "SOLD"}
    )
    assert closed["reason"] == "SOLD" and closed["occurred_at"] == "1970-01-01T00:00:00.000Z"


def test_every_named_type_is_covered_by_some_event_round_trip() -> None:
    covered: dict[str, Any] = {}
    for name in EVENTS:
        sample(CATALOG.record(name).expanded, name, nulls=False, named=covered)
    assert set(DEFINITIONS) == set(covered)


# --------------------------------------------------------------------------- framing
def crc64_avro(data: bytes) -> bytes:
    """CRC-64-AVRO exactly as the Avro specification writes it, little-endian (independent of fastavro)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def independent_canonical_form(name: str) -> str:
    """Resolve named types with fastavro's own machinery, not catalog.expand, and canonicalise."""
    named: dict[str, Any] = {}
    for schema in DEFINITIONS.values():
        if schema["type"] == "enum":
            parse_schema(schema, named_schemas=named)
    for nested in ("EmergencyContact", "Customer", "Debtor", "ContactPolicy", "Promise", "Offset", "SettlementPolicy"):
        parse_schema(definition(nested), named_schemas=named)
    schema = parse_schema(definition(name), named_schemas=dict(named))
    # expand_schema inlines one level; LoanOpened -> Customer -> EmergencyContact needs two.
    schema = expand_schema(parse_schema(expand_schema(schema), named_schemas=dict(named)))
    return str(to_parsing_canonical_form(schema))


@pytest.mark.parametrize("name", EVENTS)
def test_single_object_header_is_marker_and_crc64_fingerprint_of_the_canonical_form(name: str) -> None:
    canonical = independent_canonical_form(name)
    data = Codec(CATALOG).encode_single_object(name, sample_value(name))

    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    assert data[2:10] == crc64_avro(canonical.encode())
    assert data[10:] == _schemaless(name, sample_value(name))


def _schemaless(name: str, value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, CATALOG.record(name).parsed, value)
    return out.getvalue()


def test_parsing_canonical_form_keeps_only_what_parsing_needs() -> None:
    assert CATALOG.record("LoanClosed").canonical == (
        '{"name":"arrears.v1.LoanClosed","type":"record","fields":['
        '{"name":"event_id","type":"string"},{"name":"occurred_at","type":"long"},'
        '{"name":"loan_id","type":"string"},{"name":"reason","type":{"name":"arrears.v1.LoanCloseReason",'
        '"type":"enum","symbols":["PAID_OFF","WRITTEN_OFF","SOLD","CANCELLED"]}}]}'
    )


def test_every_event_type_has_its_own_fingerprint() -> None:
    fingerprints = {CATALOG.record(name).fingerprint for name in EVENTS}
    assert len(fingerprints) == len(EVENTS)


# --------------------------------------------------------------------------- typed decoding errors
def _closed(reason: str = "SOLD") -> bytes:
    value = {"event_id": "e", "occurred_at": SAMPLE_INSTANT, "loan_id": "L1", "reason": reason}
    return Codec(CATALOG).encode_single_object("LoanClosed", value)


@pytest.mark.parametrize("name", ["RepaymentReceived", "LoanOpened", "BusinessDateChanged"])
def test_every_truncation_of_a_message_is_a_malformed_message_error(name: str) -> None:
    data = Codec(CATALOG).encode_single_object(name, sample_value(name))
    for cut in range(1, len(data)):
        with pytest.raises(MalformedMessageError):
            Codec(CATALOG).decode(data[:cut])


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"hello world", b"\xc3", b"\xc3\x02" + bytes(8) + b"\x00", b"{\"type\": \"LoanClosed\"}"],
    ids=["empty", "confluent-header-cut", "text", "half-marker", "wrong-marker", "json"],
)
def test_garbage_is_a_malformed_message_error(data: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        Codec(CATALOG).decode(data)


def test_trailing_bytes_are_a_malformed_message_error() -> None:
    with pytest.raises(MalformedMessageError, match="trailing"):
        Codec(CATALOG).decode(_closed() + b"\x00")


def test_an_unknown_fingerprint_is_an_unknown_schema_error() -> None:
    data = _closed()
    with pytest.raises(UnknownSchemaError, match="fingerprint"):
        Codec(CATALOG).decode(data[:2] + bytes(8) + data[10:])


def test_an_out_of_range_enum_index_is_a_schema_violation() -> None:
    data = _closed("CANCELLED")
    assert data[-1:] == b"\x06"  # zigzag(3): the enum index is the last field's only byte
    with pytest.raises(SchemaViolationError):
        Codec(CATALOG).decode(data[:-1] + b"\xc6\x01")  # zigzag(99)


def test_codec_errors_carry_their_dead_letter_reasons() -> None:
    assert (MalformedMessageError.reason, UnknownSchemaError.reason, SchemaViolationError.reason) == (
        "DECODE_ERROR", "UNKNOWN_SCHEMA", "SCHEMA_VIOLATION",
    )


def test_encoding_a_value_that_breaks_its_schema_is_a_schema_violation() -> None:
    with pytest.raises(SchemaViolationError):
        Codec(CATALOG).encode_single_object("LoanClosed", {"event_id": "e", "occurred_at": 0, "loan_id": "L"})
    with pytest.raises(SchemaViolationError, match="amount"):
        value = sample_value("RepaymentReceived") | {"amount": "12.50"}
        Codec(CATALOG).validate("RepaymentReceived", value)


# --------------------------------------------------------------------------- Confluent framing
def test_confluent_framing_round_trips_through_a_registry_under_the_topic_record_subject() -> None:
    registry = registry_client(f"mock://contract-{uuid.uuid4().hex[:8]}")
    codec = Codec(CATALOG, registry)
    value = sample_value("RepaymentReceived")

    data = codec.encode("RepaymentReceived", value, topic="loan.repayments")

    assert data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    assert registry.get_schema(schema_id) is not None
    assert "loan.repayments-arrears.v1.RepaymentReceived" in registry.get_subjects()
    decoded = codec.decode(data)
    assert (decoded.name, decoded.framing, decoded.value) == ("RepaymentReceived", "confluent", value)


def test_a_codec_without_a_registry_still_writes_single_object_and_refuses_confluent_bytes() -> None:
    registry_codec = Codec(CATALOG, registry_client(f"mock://contract-{uuid.uuid4().hex[:8]}"))
    data = registry_codec.encode("LoanClosed", sample_value("LoanClosed"), topic="loan.accounts")

    with pytest.raises(UnknownSchemaError, match="SCHEMA_REGISTRY_URL"):
        Codec(CATALOG).decode(data)
    assert Codec(CATALOG).encode("LoanClosed", sample_value("LoanClosed"))[:2] == b"\xc3\x01"


def test_a_registry_codec_decodes_single_object_messages_too() -> None:
    registry_codec = Codec(CATALOG, registry_client(f"mock://contract-{uuid.uuid4().hex[:8]}"))
    assert registry_codec.decode(_closed()).framing == "single-object"


def test_an_unknown_registry_schema_id_is_an_unknown_schema_error() -> None:
    codec = Codec(CATALOG, registry_client(f"mock://contract-{uuid.uuid4().hex[:8]}"))
    with pytest.raises(UnknownSchemaError):
        codec.decode(b"\x00" + (987654).to_bytes(4, "big") + b"\x02e")


# --------------------------------------------------------------------------- names, fields and types
def test_every_type_is_in_the_arrears_v1_namespace_with_the_names_spec_lists() -> None:
    for full, schema in DEFINITIONS.items():
        assert schema.get("namespace") == NAMESPACE and "." not in schema["name"], full
    records = {full.rsplit(".", 1)[1] for full, s in DEFINITIONS.items() if s["type"] == "record"}
    enums = {full.rsplit(".", 1)[1] for full, s in DEFINITIONS.items() if s["type"] == "enum"}
    assert records == set(SPEC_FIELDS)
    assert enums == set(SPEC_ENUMS)
    assert set(EVENTS) == set(SPEC_FIELDS) - NESTED_RECORDS


@pytest.mark.parametrize("name", sorted(SPEC_FIELDS))
def test_record_carries_the_fields_spec_names_and_only_defaulted_extras(name: str) -> None:
    fields = definition(name)["fields"]
    names = [f["name"] for f in fields]
    assert [n for n in names if n in SPEC_FIELDS[name]] == list(SPEC_FIELDS[name])
    extras = [f["name"] for f in fields if f["name"] not in SPEC_FIELDS[name]]
    assert all("default" in field_of(name, extra) for extra in extras), extras


@pytest.mark.parametrize("name", sorted(SPEC_ENUMS))
def test_enum_has_exactly_the_symbols_spec_lists(name: str) -> None:
    assert definition(name)["symbols"] == SPEC_ENUMS[name]


@pytest.mark.parametrize(("record", "field", "type_name"), NAMED_FIELD_TYPES)
def test_nested_and_enum_fields_refer_to_their_named_types(record: str, field: str, type_name: str) -> None:
    schema = without_null(field_of(record, field)["type"])
    if isinstance(schema, dict) and schema.get("type") == "array":
        schema = schema["items"]
    assert schema == f"{NAMESPACE}.{type_name}"


def test_money_is_long_dates_are_int_date_and_instants_are_long_timestamp_millis() -> None:
    checked = {"money": 0, "date": 0, "instant": 0, "share": 0}
    for name in SPEC_FIELDS:
        for field in definition(name)["fields"]:
            schema = without_null(field["type"])
            if field["name"] in MONEY:
                assert schema == "long", (name, field["name"])
                checked["money"] += 1
            elif field["name"] in DATES:
                assert schema == {"type": "int", "logicalType": "date"}, (name, field["name"])
                checked["date"] += 1
            elif field["name"] in INSTANTS:
                assert schema == {"type": "long", "logicalType": "timestamp-millis"}, (name, field["name"])
                checked["instant"] += 1
            elif field["name"] in SHARES:
                assert schema == "double", (name, field["name"])
                checked["share"] += 1
    assert checked["money"] >= 15 and checked["date"] >= 20 and checked["instant"] >= len(EVENTS)
    assert checked["share"] >= 7


def test_every_event_has_a_string_event_id_and_an_occurred_at_instant() -> None:
    for name in EVENTS:
        assert field_of(name, "event_id")["type"] == "string"
        assert field_of(name, "occurred_at")["type"] == {"type": "long", "logicalType": "timestamp-millis"}


@pytest.mark.parametrize(("record", "field"), sorted(NULLABLE))
def test_nullable_fields_are_null_unions_defaulting_to_null(record: str, field: str) -> None:
    spec = field_of(record, field)
    assert isinstance(spec["type"], list) and spec["type"][0] == "null"
    assert spec["default"] is None


def test_spec_defaults_for_calendar_barrier_and_timezone() -> None:
    assert field_of("BusinessDateChanged", "calendar")["default"] == "CN"
    assert field_of("BusinessDateChanged", "barrier")["default"] == []
    assert field_of("Customer", "timezone")["default"] == "Asia/Shanghai"
    assert field_of("Offset", "partition")["type"] == "int"
    assert field_of("Offset", "offset")["type"] == "long"
    assert field_of("InstallmentScheduled", "installment_no")["type"] == "int"
    assert field_of("ContactPolicy", "emergency_contacts_allowed")["type"] == "boolean"
