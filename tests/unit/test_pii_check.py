"""The PII helper the end-to-end run applies to every work order (SPEC §5)."""

from __future__ import annotations

import json

import pytest
from piicheck import assert_minimal_pii
from workorders import cancelled, issued

from schemas import from_json, get_codec

CODEC = get_codec()
NATIONAL_ID = "440301199001011234"
CONTACT = {"name": "李四", "phone": "+8613900000000", "relation": "brother"}


def avro(obj: dict[str, object]) -> bytes:
    name, value = from_json(CODEC.catalog, obj)
    return CODEC.encode(name, value)


@pytest.mark.parametrize("form", ["avro", "json-bytes", "json-text", "mapping"])
def test_a_minimal_work_order_passes_in_any_form(form: str) -> None:
    wo = issued()
    message = {
        "avro": avro(wo),
        "json-bytes": json.dumps(wo).encode(),
        "json-text": json.dumps(wo),
        "mapping": wo,
    }[form]
    assert_minimal_pii(
        message,
        national_ids=[NATIONAL_ID],
        customer_ids=["CUST-000001"],
        emergency_contacts=[(CONTACT["name"], CONTACT["phone"])],
    )
    assert_minimal_pii(avro(cancelled()), national_ids=[NATIONAL_ID])


def test_a_full_national_id_is_caught_in_the_avro_bytes() -> None:
    leaked = avro(issued(national_id_masked=NATIONAL_ID))
    with pytest.raises(AssertionError, match="national_id_masked is not masked"):
        assert_minimal_pii(leaked)
    elsewhere = issued()
    elsewhere["debtor"]["city"] = f"深圳 {NATIONAL_ID}"  # type: ignore[index]
    with pytest.raises(AssertionError, match="a full national id"):
        assert_minimal_pii(avro(elsewhere), national_ids=[NATIONAL_ID])


def test_a_customer_id_is_caught_in_any_field() -> None:
    wo = issued(work_order_id="CUST-000001")
    with pytest.raises(AssertionError, match="customer id in field work_order_id"):
        assert_minimal_pii(avro(wo), customer_ids=["CUST-000001"])


def test_a_smuggled_customer_id_field_is_caught() -> None:
    wo = {**issued(), "customer_id": "C1"}
    with pytest.raises(AssertionError):
        assert_minimal_pii(json.dumps(wo))


def test_emergency_contacts_are_caught_unless_the_policy_allows_them() -> None:
    with pytest.raises(AssertionError, match="emergency_contacts sent"):
        assert_minimal_pii(avro(issued(emergency_contacts=[CONTACT])))
    allowed = avro(issued(emergency_contacts=[CONTACT], emergency_contacts_allowed=True))
    with pytest.raises(AssertionError, match="emergency_contacts sent"):
        assert_minimal_pii(allowed)  # the default policy does not allow them
    assert_minimal_pii(
        allowed, emergency_contacts_allowed=True, emergency_contacts=[(CONTACT["name"], CONTACT["phone"])]
    )


def test_an_emergency_contacts_phone_anywhere_else_is_caught() -> None:
    wo = issued()
    wo["debtor"]["phone"] = CONTACT["phone"]  # type: ignore[index]
    with pytest.raises(AssertionError, match="emergency contact detail"):
        assert_minimal_pii(avro(wo), emergency_contacts=[(CONTACT["name"], CONTACT["phone"])])


def test_something_that_is_not_a_work_order_fails() -> None:
    with pytest.raises(AssertionError, match="not a work order"):
        assert_minimal_pii({"type": "LoanOpened"})
