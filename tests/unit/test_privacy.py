"""Masking of names, phones and national ids (SPEC §7): what a `read` token and the timeline show."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from workorders import issued

from arrears.privacy import (
    is_masked_national_id,
    mask_name,
    mask_national_id,
    mask_phone,
    mask_record,
)
from schemas import from_json, get_codec


@pytest.mark.parametrize(
    ("name", "masked"),
    [("王小明", "王*"), ("王明", "王*"), ("欧阳娜娜", "欧*"), ("Zhang Wei", "Z*"), ("王", "王*"), ("", "")],
)
def test_a_name_keeps_its_first_character_only(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812348000", "138****8000"),  # SPEC §7's example
        ("+8613812345678", "+86138****5678"),
        ("010-62345678", "010-****5678"),
        ("62345678", "****5678"),
        ("12345", "*2345"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_a_phone_hides_at_least_four_characters_and_shows_at_most_the_last_four(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("national_id", "masked"),
    [
        ("44030119900101123X", "**************123X"),
        ("12345", "*2345"),
        ("1234", "****"),  # 4 characters or fewer: masked entirely
        ("12", "**"),
        ("", ""),
    ],
)
def test_a_national_id_keeps_its_last_four_characters_and_a_short_one_none(national_id: str, masked: str) -> None:
    assert mask_national_id(national_id) == masked
    assert is_masked_national_id(masked)
    assert national_id == masked or not is_masked_national_id(national_id)


@given(st.text(max_size=30))
def test_masking_twice_is_masking_once(value: str) -> None:
    for mask in (mask_name, mask_phone, mask_national_id):
        assert mask(mask(value)) == mask(value)


@given(st.text(alphabet="0123456789+-X", max_size=30))
def test_a_masked_phone_or_national_id_shows_at_most_its_last_four_and_hides_at_least_four(value: str) -> None:
    for masked in (mask_phone(value), mask_national_id(value)):
        assert len(masked) == len(value)
        if len(value) <= 4:
            assert masked == "*" * len(value)
        else:
            assert masked.endswith(value[-4:]) and masked.count("*") >= min(4, len(value) - 4)
    assert set(mask_national_id(value)[:-4]) <= {"*"}


def test_a_work_order_in_json_form_is_masked_and_stays_a_valid_record() -> None:
    contact = {"name": "李四", "phone": "+8613900000000", "relation": "brother"}
    work_order = issued("L1:1", emergency_contacts=[contact], emergency_contacts_allowed=True)
    work_order["debtor"]["name"] = "王小明"
    work_order["debtor"]["phone"] = "13812348000"
    masked = mask_record(work_order)
    assert masked["debtor"]["name"] == "王*" and masked["debtor"]["phone"] == "138****8000"
    assert masked["debtor"]["national_id_masked"] == work_order["debtor"]["national_id_masked"]
    assert masked["debtor"]["city"] == work_order["debtor"]["city"]
    assert masked["emergency_contacts"] == [{"name": "李*", "phone": "+86139****0000", "relation": "brother"}]
    assert {k: v for k, v in masked.items() if k not in ("debtor", "emergency_contacts")} == {
        k: v for k, v in work_order.items() if k not in ("debtor", "emergency_contacts")}
    from_json(get_codec().catalog, masked)  # still exactly its schema
    assert work_order["debtor"]["name"] == "王小明"  # the input is not changed


def test_a_loan_opened_record_has_its_customer_and_emergency_contacts_masked() -> None:
    record = {"type": "LoanOpened", "loan_id": "L1", "customer_id": "C1",
              "customer": {"name": "王小明", "phone": "13812348000", "national_id": "44030119900101123X",
                           "province": "广东省", "city": "深圳市", "timezone": "Asia/Shanghai",
                           "emergency_contacts": [{"name": "李四", "phone": "13900001111", "relation": "spouse"}]}}
    customer = mask_record(record)["customer"]
    assert (customer["name"], customer["phone"], customer["national_id"]) == ("王*", "138****8000",
                                                                               "**************123X")
    assert customer["emergency_contacts"] == [{"name": "李*", "phone": "139****1111", "relation": "spouse"}]
    assert mask_record(record)["customer_id"] == "C1"


def test_a_record_without_personal_data_comes_back_equal() -> None:
    record = {"type": "CaseOpened", "case_id": "L1:1", "loan_id": "L1", "customer_id": "C1", "dpd": 3}
    assert mask_record(record) == record


@pytest.mark.parametrize("national_id", ["", "1", "1234", "12345", "110101199001011234", "44030119900101123X"])
def test_work_orders_mask_national_ids_by_the_same_rule_as_the_query_api(national_id: str) -> None:
    from arrears.domain.agencies import mask_national_id as in_work_orders

    assert in_work_orders(national_id) == mask_national_id(national_id)
