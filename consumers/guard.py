"""Last checks before a work order leaves the lender: minimal personal data, the right agency.

The processor builds work orders with exactly the data SPEC §5 allows; the adapter checks again,
because what it sends cannot be called back. A work order that fails is dead-lettered
(``CONTRACT_VIOLATION``), never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arrears.privacy import is_masked_national_id


def is_masked(national_id_masked: str) -> bool:
    """All but the last four characters are ``*``; an id of four characters or fewer is all ``*``."""
    return is_masked_national_id(national_id_masked)


def work_order_problem(name: str, value: Mapping[str, Any], agency_id: str) -> str | None:
    """Why this decoded work order must not go to *agency_id*, or None when it may."""
    if name != "WorkOrderIssued":
        return None  # updates and cancellations carry no personal data
    if value.get("agency_id") != agency_id:
        return f"agency_id: work order for {value.get('agency_id')!r} on the topic of {agency_id}"
    if not is_masked(str(value["debtor"]["national_id_masked"])):
        return ("debtor.national_id_masked: not masked (all but the last 4 characters must be *, "
                "and all of an id of 4 characters or fewer)")
    if value.get("emergency_contacts") and not value["contact_policy"]["emergency_contacts_allowed"]:
        return "emergency_contacts: present although contact_policy.emergency_contacts_allowed is false"
    return None
