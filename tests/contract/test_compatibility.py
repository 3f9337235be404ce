"""Schema evolution guard: the contract may grow (defaulted fields, new types) but must not break."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import NAMESPACE, RELEASED_DIR, SCHEMA_DIR, expand, read_definitions
from schemas.compatibility import check_directory, check_full_compatibility

CURRENT = read_definitions(SCHEMA_DIR)
RELEASED = read_definitions(RELEASED_DIR)


def current(name: str) -> dict[str, Any]:
    return expand(f"{NAMESPACE}.{name}", CURRENT)


def with_field(schema: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    changed["fields"].append(field)
    return changed


def without_field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    changed["fields"] = [f for f in changed["fields"] if f["name"] != name]
    assert len(changed["fields"]) == len(schema["fields"]) - 1
    return changed


def with_symbols(schema: dict[str, Any], field: str, symbols: list[str]) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    enum = next(f for f in changed["fields"] if f["name"] == field)["type"]
    enum["symbols"] = symbols
    return changed


def test_every_released_type_is_still_in_the_contract() -> None:
    assert RELEASED, "schemas/released/ holds the released contract"
    assert set(RELEASED) <= set(CURRENT)


@pytest.mark.parametrize("name", sorted(set(CURRENT) & set(RELEASED)))
def test_current_schema_is_fully_compatible_with_its_released_version(name: str) -> None:
    assert check_full_compatibility(expand(name, CURRENT), expand(name, RELEASED), name) == []


def test_the_whole_schema_directory_passes_the_guard() -> None:
    assert check_directory() == {}


def test_a_field_added_without_a_default_fails_the_guard() -> None:
    released = current("RepaymentReceived")
    changed = with_field(released, {"name": "branch_code", "type": "string"})

    problems = check_full_compatibility(changed, released)

    assert len(problems) == 1
    assert "backward" in problems[0] and "branch_code" in problems[0]
    assert "reader_field_missing_default_value" in problems[0]


def test_a_field_added_with_a_default_passes_the_guard() -> None:
    released = current("RepaymentReceived")
    optional = with_field(released, {"name": "branch_code", "type": ["null", "string"], "default": None})
    defaulted = with_field(released, {"name": "channel_detail", "type": "string", "default": ""})

    assert check_full_compatibility(optional, released) == []
    assert check_full_compatibility(defaulted, released) == []


def test_a_field_removed_without_a_default_fails_the_guard() -> None:
    released = current("RepaymentReceived")
    problems = check_full_compatibility(without_field(released, "channel"), released)

    assert len(problems) == 1
    assert "forward" in problems[0] and "channel" in problems[0]


def test_a_field_removed_that_had_a_default_passes_the_guard() -> None:
    released = current("RepaymentReceived")
    assert check_full_compatibility(without_field(released, "reference"), released) == []


def test_an_enum_symbol_removed_fails_the_guard() -> None:
    released = current("LoanClosed")
    changed = with_symbols(released, "reason", ["PAID_OFF", "WRITTEN_OFF", "CANCELLED"])

    problems = check_full_compatibility(changed, released)

    assert problems and "missing_enum_symbols" in problems[0] and "SOLD" in problems[0]


def test_an_enum_symbol_added_fails_the_guard_because_released_readers_cannot_read_it() -> None:
    released = current("LoanClosed")
    changed = with_symbols(released, "reason", ["PAID_OFF", "WRITTEN_OFF", "SOLD", "CANCELLED", "MERGED"])

    problems = check_full_compatibility(changed, released)

    assert len(problems) == 1 and "forward" in problems[0] and "MERGED" in problems[0]


def test_a_field_type_change_fails_the_guard() -> None:
    released = current("RepaymentReceived")
    changed = copy.deepcopy(released)
    next(f for f in changed["fields"] if f["name"] == "amount")["type"] = "string"

    assert check_full_compatibility(changed, released)


def test_a_change_in_a_nested_type_file_fails_the_record_that_uses_it(tmp_path: Path) -> None:
    released_dir, current_dir = tmp_path / "released", tmp_path / "current"
    for directory in (released_dir, current_dir):
        directory.mkdir()
        for full, schema in CURRENT.items():
            (directory / f"{full.rsplit('.', 1)[1]}.avsc").write_text(json.dumps(schema), encoding="utf-8")
    customer = copy.deepcopy(CURRENT[f"{NAMESPACE}.Customer"])
    customer["fields"].append({"name": "employer", "type": "string"})
    (current_dir / "Customer.avsc").write_text(json.dumps(customer), encoding="utf-8")
    (current_dir / "RepaymentReversed.avsc").unlink()

    problems = check_directory(current_dir, released_dir)

    assert set(problems) == {
        f"{NAMESPACE}.Customer", f"{NAMESPACE}.LoanOpened", f"{NAMESPACE}.RepaymentReversed",
    }
    assert "employer" in problems[f"{NAMESPACE}.LoanOpened"][0]
    assert "removed" in problems[f"{NAMESPACE}.RepaymentReversed"][0]


# --------------------------------------------------------------------------- SPEC §10 treatments
TREATMENT_FIELDS = {  # released record -> the optional fields §10 gave it
    "CaseState": ["paused_until"],
    "CaseClosed": ["settlement_id"],
    "WorkOrderIssued": ["settlement_policy"],
    "WorkOrderUpdated": ["settlement_policy"],
}


@pytest.mark.parametrize("name", sorted(TREATMENT_FIELDS))
def test_treatments_add_only_null_defaulted_fields_at_the_end_of_released_records(name: str) -> None:
    released = RELEASED[f"{NAMESPACE}.{name}"]["fields"]
    now = CURRENT[f"{NAMESPACE}.{name}"]["fields"]
    assert now[:len(released)] == released  # nothing before them changed
    added = now[len(released):]
    assert [f["name"] for f in added] == TREATMENT_FIELDS[name]
    assert all(f["type"][0] == "null" and f["default"] is None for f in added)


def test_no_enum_gained_or_lost_a_symbol() -> None:
    enums = {n for n, s in RELEASED.items() if s["type"] == "enum"}
    assert enums and all(CURRENT[n]["symbols"] == RELEASED[n]["symbols"] for n in enums)
    # A paused case is OPEN with a paused_until, a settled one CLOSED PAID_OFF with a settlement_id.
    assert "PAUSED" not in CURRENT[f"{NAMESPACE}.CaseStatus"]["symbols"]


def test_every_new_treatment_record_is_released_as_it_is() -> None:
    for name in ("PauseDelinquency", "ResumeDelinquency", "DelinquencyPaused", "DelinquencyResumed",
                 "SettlementProposed", "SettlementApproved", "SettlementRejected", "SettlementPending",
                 "ApproveSettlement", "RejectSettlement", "SettlementFulfilled", "SettlementBroken",
                 "RecoveryAttributed", "RecoveryReversed", "SettlementPolicy"):
        assert CURRENT[f"{NAMESPACE}.{name}"] == RELEASED[f"{NAMESPACE}.{name}"], name
