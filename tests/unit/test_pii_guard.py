"""The adapter's last check: a work order with too much personal data is never sent."""

from __future__ import annotations

import pytest
from workorders import cancelled, issued

from consumers.guard import is_masked, work_order_problem
from schemas import from_json, get_codec

CATALOG = get_codec().catalog
CONTACT = {"name": "李四", "phone": "+8613900000000", "relation": "brother"}


def decoded(obj: dict[str, object]) -> tuple[str, dict[str, object]]:
    return from_json(CATALOG, obj)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("**************123X", True),
        ("****", True),  # an id of 4 characters or fewer is masked entirely
        ("1234", False),
        ("12", False),
        ("", True),
        ("*1234", True),
        ("440301199001011234", False),
        ("*************01234", False),
        ("**************123X ", False),
    ],
)
def test_masked_means_everything_but_the_last_four_is_a_star_and_short_ids_all_stars(value: str, masked: bool) -> None:
    assert is_masked(value) is masked


def test_a_minimal_work_order_for_this_agency_passes() -> None:
    assert work_order_problem(*decoded(issued()), "AG1") is None
    assert work_order_problem(*decoded(cancelled()), "AG1") is None
    allowed = issued(emergency_contacts=[CONTACT], emergency_contacts_allowed=True)
    assert work_order_problem(*decoded(allowed), "AG1") is None


@pytest.mark.parametrize(
    ("work_order", "problem"),
    [
        (issued(national_id_masked="440301199001011234"), "debtor.national_id_masked: not masked"),
        (issued(emergency_contacts=[CONTACT]), "emergency_contacts: present although"),
        (issued(agency_id="AG2"), "agency_id: work order for 'AG2'"),
    ],
)
def test_a_work_order_with_too_much_personal_data_or_for_another_agency_is_stopped(
    work_order: dict[str, object], problem: str
) -> None:
    found = work_order_problem(*decoded(work_order), "AG1")
    assert found is not None and found.startswith(problem)
