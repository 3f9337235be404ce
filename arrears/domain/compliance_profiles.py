"""Contact-policy profiles: the numbers each jurisdiction's collection rules set (SPEC §6).

``CN``: GB/T 45251-2025 and the China Banking Association's collection guideline.
``US_REG_F``: the CFPB's Regulation F, 12 CFR 1006 (FDCPA).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ContactPolicy:
    """The contact rules in force; ``None`` means the rule does not apply."""

    profile: str
    quiet_hours_start: str  # local "HH:MM": contacts from here ...
    quiet_hours_end: str  # ... until here are in quiet hours
    max_connected_calls_per_day: int | None
    max_attempts_per_day: int | None  # call attempts to one party on one local day
    max_attempts_per_week: int | None  # call attempts in 7 consecutive days
    call_after_conversation_days: int | None  # no call within N days after a connected call
    emergency_contacts_allowed: bool
    visits_allowed: bool
    # The zone a debtor's local time is judged in when their timezone is not a known IANA name.
    default_timezone: str = "Asia/Shanghai"
    # Third parties may be contacted only after this many of the debtor's latest calls ended
    # NO_ANSWER or WRONG_PARTY (CBA guideline); None: never (every third-party contact is a violation).
    third_party_after_unreachable: int | None = None

    def with_overrides(self, **overrides: Any) -> ContactPolicy:
        return replace(self, **overrides)


PROFILES: dict[str, ContactPolicy] = {
    "CN": ContactPolicy(
        profile="CN",
        quiet_hours_start="22:00",
        quiet_hours_end="08:00",
        max_connected_calls_per_day=3,
        max_attempts_per_day=6,
        max_attempts_per_week=None,
        call_after_conversation_days=None,
        emergency_contacts_allowed=False,
        visits_allowed=False,
        third_party_after_unreachable=3,
    ),
    "US_REG_F": ContactPolicy(
        profile="US_REG_F",
        quiet_hours_start="21:00",
        quiet_hours_end="08:00",
        max_connected_calls_per_day=None,
        max_attempts_per_day=None,
        max_attempts_per_week=7,
        call_after_conversation_days=7,
        emergency_contacts_allowed=False,
        visits_allowed=True,
        default_timezone="America/New_York",
    ),
}
