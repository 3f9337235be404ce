"""Masking of debtors' personal data (SPEC §5, §7): names, phones, national ids. Pure functions.

What a ``read`` token of the query API sees, what the case timeline stores, and what work orders
carry of the national id. Every function is idempotent: masking a masked value changes nothing,
so timelines journaled before masking existed and those journaled masked read the same.

- a name keeps its first character: ``王小明`` → ``王*``;
- a phone keeps at most its last four characters and hides at least four: ``13812348000`` →
  ``138****8000`` (for 11 characters or more, the first ``len - 8`` stay, so a ``+86`` number
  keeps its country code and mobile prefix); 8 characters or fewer: ``****`` + the last four;
- a national id keeps its last four characters, every other one becomes ``*``; one of four
  characters or fewer is masked entirely (its last four characters would be all of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MASK = "*"
#: JSON-form fields that hold a person (the debtor of a work order, the customer of LoanOpened)
PERSON_FIELDS = ("debtor", "customer")


def mask_name(name: str) -> str:
    """The first character and one ``*`` (the length of the name is hidden too)."""
    name = name.strip()
    if not name:
        return name
    return name[0] + MASK


def mask_phone(phone: str) -> str:
    """At least four characters hidden, at most the last four shown: ``138****8000``."""
    phone = phone.strip()
    if len(phone) <= 4:
        return MASK * len(phone)
    head = phone[: max(0, len(phone) - 8)]
    return head + MASK * (len(phone) - len(head) - 4) + phone[-4:]


def mask_national_id(national_id: str) -> str:
    """All but the last four characters replaced by ``*``; four characters or fewer: all of them."""
    if len(national_id) <= 4:
        return MASK * len(national_id)
    return MASK * (len(national_id) - 4) + national_id[-4:]


def is_masked_national_id(value: str) -> bool:
    """Whether *value* is a national id masked as :func:`mask_national_id` does it."""
    return value == mask_national_id(value)


def mask_contact(contact: Mapping[str, Any]) -> dict[str, Any]:
    """An emergency contact ``{name, phone, relation}`` with its name and phone masked."""
    out = dict(contact)
    if isinstance(out.get("name"), str):
        out["name"] = mask_name(out["name"])
    if isinstance(out.get("phone"), str):
        out["phone"] = mask_phone(out["phone"])
    return out


def mask_person(person: Mapping[str, Any]) -> dict[str, Any]:
    """A debtor or customer block with name, phone, national id and emergency contacts masked.

    Province, city and timezone stay: they are what contact rules and reports need, and they
    identify nobody.
    """
    out = dict(person)
    if isinstance(out.get("name"), str):
        out["name"] = mask_name(out["name"])
    if isinstance(out.get("phone"), str):
        out["phone"] = mask_phone(out["phone"])
    for key in ("national_id", "national_id_masked"):
        if isinstance(out.get(key), str):
            out[key] = mask_national_id(out[key])
    if isinstance(out.get("emergency_contacts"), list):
        out["emergency_contacts"] = [mask_contact(c) if isinstance(c, Mapping) else c
                                     for c in out["emergency_contacts"]]
    return out


def mask_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record in JSON form (SPEC §1) with every person in it masked; other fields untouched.

    Covers ``WorkOrderIssued`` (``debtor`` and ``emergency_contacts``) and ``LoanOpened``
    (``customer`` with its emergency contacts); any other record comes back equal.
    """
    out = dict(record)
    for key in PERSON_FIELDS:
        if isinstance(out.get(key), Mapping):
            out[key] = mask_person(out[key])
    if isinstance(out.get("emergency_contacts"), list):
        out["emergency_contacts"] = [mask_contact(c) if isinstance(c, Mapping) else c
                                     for c in out["emergency_contacts"]]
    return out
