"""The compliance rules (SPEC §6) at their edges: local times, local days, counters, holds."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arrears.config import parse_config
from arrears.domain.compliance import (
    CALL_AFTER_CONVERSATION,
    CONTACT_ON_HOLD,
    DAILY_ATTEMPT_LIMIT,
    DAILY_CONNECTED_LIMIT,
    EMERGENCY_CONTACT,
    QUIET_HOURS,
    RULES,
    THIRD_PARTY_CONTACT,
    UNAUTHORIZED_CONTACT,
    VISIT_WITHOUT_CONSENT,
    WEEKLY_ATTEMPT_LIMIT,
    ContactRecord,
    Finding,
    budget_findings,
    check_contact,
    prune,
)
from arrears.domain.compliance_profiles import PROFILES, ContactPolicy
from arrears.domain.events import ContactAttempted
from arrears.errors import ConfigError

CN = PROFILES["CN"]
US = PROFILES["US_REG_F"]
SH = "Asia/Shanghai"
URUMQI = "Asia/Urumqi"
NY = "America/New_York"
LA = "America/Los_Angeles"

_ids = itertools.count()


def local_ms(text: str, tz: str) -> int:
    """Epoch millis of a wall-clock time in *tz* (never a skipped or repeated one in these tests)."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def utc_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def rec(
    at: int,
    channel: str = "CALL",
    party: str = "DEBTOR",
    outcome: str = "NO_ANSWER",
    agency: str = "AG1",
    event_id: str | None = None,
) -> ContactRecord:
    return ContactRecord(event_id or f"ev-{next(_ids)}", agency, at, channel, party, outcome)


def check(
    attempt: ContactRecord,
    history: Sequence[ContactRecord] = (),
    policy: ContactPolicy = CN,
    tz: str = SH,
    **case: bool,
) -> list[str]:
    return [f.rule for f in check_contact(attempt, history, policy, tz, **case)]


def find(findings: list[Finding], rule: str) -> Finding:
    matches = [f for f in findings if f.rule == rule]
    assert len(matches) == 1, findings
    return matches[0]


# --------------------------------------------------------------------------- quiet hours
@pytest.mark.parametrize(
    ("local", "channel", "expected"),
    [
        ("2026-03-02T12:00", "CALL", []),
        ("2026-03-02T21:59", "CALL", []),
        ("2026-03-02T21:59:59.999", "CALL", []),
        ("2026-03-02T22:00", "CALL", [QUIET_HOURS]),
        ("2026-03-02T23:30", "SMS", [QUIET_HOURS]),
        ("2026-03-03T00:00", "APP", [QUIET_HOURS]),
        ("2026-03-03T03:00", "VISIT", [QUIET_HOURS, VISIT_WITHOUT_CONSENT]),
        ("2026-03-03T07:59", "CALL", [QUIET_HOURS]),
        ("2026-03-03T07:59:59.999", "SMS", [QUIET_HOURS]),
        ("2026-03-03T08:00", "CALL", []),
        ("2026-03-02T23:00", "LETTER", []),
        ("2026-03-02T23:00", "EMAIL", []),
    ],
)
def test_cn_quiet_hours_run_from_22_00_to_08_00_local_for_calls_sms_visits_and_app(
    local: str, channel: str, expected: list[str]
) -> None:
    assert check(rec(local_ms(local, SH), channel), policy=CN, tz=SH) == expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-03-02T08:00", []),
        ("2026-03-02T20:59", []),
        ("2026-03-02T21:00", [QUIET_HOURS]),
        ("2026-03-02T23:59", [QUIET_HOURS]),
        ("2026-03-03T07:59", [QUIET_HOURS]),
    ],
)
def test_us_quiet_hours_run_from_21_00_to_08_00_local(local: str, expected: list[str]) -> None:
    assert check(rec(local_ms(local, NY)), policy=US, tz=NY) == expected


def test_local_ms_helper_applies_daylight_saving_time() -> None:
    assert local_ms("2026-03-08T21:00", NY) == utc_ms("2026-03-09T01:00Z")  # EDT, UTC-4
    assert local_ms("2026-11-01T21:00", NY) == utc_ms("2026-11-02T02:00Z")  # EST, UTC-5


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # 2026-03-08: clocks go forward at 02:00; the evening is EDT (UTC-4).
        ("2026-03-09T00:30Z", []),  # 20:30 EDT
        ("2026-03-09T00:59Z", []),  # 20:59 EDT
        ("2026-03-09T01:00Z", [QUIET_HOURS]),  # 21:00 EDT
        ("2026-03-09T01:30Z", [QUIET_HOURS]),  # 21:30 EDT (20:30 if EST were wrongly kept)
        ("2026-03-08T11:59Z", [QUIET_HOURS]),  # 07:59 EDT
        ("2026-03-08T12:00Z", []),  # 08:00 EDT (07:00 if EST were wrongly kept)
        # 2026-11-01: clocks go back at 02:00; the evening is EST (UTC-5).
        ("2026-11-02T01:30Z", []),  # 20:30 EST (21:30 if EDT were wrongly kept)
        ("2026-11-02T01:59Z", []),  # 20:59 EST
        ("2026-11-02T02:00Z", [QUIET_HOURS]),  # 21:00 EST
        ("2026-11-01T12:59Z", [QUIET_HOURS]),  # 07:59 EST
        ("2026-11-01T13:00Z", []),  # 08:00 EST
    ],
)
def test_us_quiet_hours_follow_new_york_daylight_saving_changes(instant: str, expected: list[str]) -> None:
    assert check(rec(utc_ms(instant)), policy=US, tz=NY) == expected


@pytest.mark.parametrize(
    ("instant", "policy", "tz", "expected"),
    [
        ("2026-03-02T14:30Z", CN, SH, [QUIET_HOURS]),  # 22:30 in Shanghai
        ("2026-03-02T14:30Z", CN, URUMQI, []),  # 20:30 in Urumqi (UTC+6)
        ("2026-03-02T01:00Z", CN, SH, []),  # 09:00 in Shanghai
        ("2026-03-02T01:00Z", CN, URUMQI, [QUIET_HOURS]),  # 07:00 in Urumqi
        ("2026-03-03T02:30Z", US, NY, [QUIET_HOURS]),  # 21:30 in New York
        ("2026-03-03T02:30Z", US, LA, []),  # 18:30 in Los Angeles
        ("2026-03-03T15:30Z", US, NY, []),  # 10:30 in New York
        ("2026-03-03T15:30Z", US, LA, [QUIET_HOURS]),  # 07:30 in Los Angeles
    ],
)
def test_quiet_hours_are_judged_in_the_debtors_own_timezone(
    instant: str, policy: ContactPolicy, tz: str, expected: list[str]
) -> None:
    assert check(rec(utc_ms(instant)), policy=policy, tz=tz) == expected


@pytest.mark.parametrize(
    ("start", "end", "local", "expected"),
    [
        ("21:00", "08:00", "2026-03-02T20:59", []),
        ("21:00", "08:00", "2026-03-02T21:00", [QUIET_HOURS]),
        ("12:00", "14:00", "2026-03-02T11:59", []),  # an interval that does not wrap midnight
        ("12:00", "14:00", "2026-03-02T12:00", [QUIET_HOURS]),
        ("12:00", "14:00", "2026-03-02T14:00", []),
        ("22:00", "22:00", "2026-03-02T23:00", []),  # start == end: no quiet hours
    ],
)
def test_quiet_hours_overrides_change_the_interval(
    start: str, end: str, local: str, expected: list[str]
) -> None:
    policy = CN.with_overrides(quiet_hours_start=start, quiet_hours_end=end)
    assert check(rec(local_ms(local, SH)), policy=policy) == expected


def test_quiet_hours_details_give_the_local_time_zone_and_offset() -> None:
    findings = check_contact(rec(utc_ms("2026-03-09T01:00Z")), [], US, NY)
    assert findings == [
        Finding(
            QUIET_HOURS,
            "CALL at 2026-03-08 21:00 America/New_York (UTC-04:00), "
            "inside the quiet hours 21:00-08:00 local time",
        )
    ]


# --------------------------------------------------------------------------- timezone fallback
@pytest.mark.parametrize("bad_zone", ["Mars/Olympus_Mons", "", "Asia/Atlantis", "../etc/passwd", "Asia"])
def test_an_unknown_timezone_falls_back_to_the_cn_default_zone(bad_zone: str) -> None:
    findings = check_contact(rec(utc_ms("2026-03-02T14:30Z")), [], CN, bad_zone)  # 22:30 in Shanghai
    assert [f.rule for f in findings] == [QUIET_HOURS]
    assert "Asia/Shanghai (UTC+08:00; the profile's default zone" in findings[0].details
    assert "Olympus" not in findings[0].details and "Atlantis" not in findings[0].details


def test_an_unknown_timezone_falls_back_to_new_york_under_reg_f() -> None:
    assert check(rec(utc_ms("2026-03-09T01:00Z")), policy=US, tz="Nowhere/City") == [QUIET_HOURS]
    assert check(rec(utc_ms("2026-03-09T00:30Z")), policy=US, tz="Nowhere/City") == []


def test_the_fallback_zone_can_be_overridden() -> None:
    policy = CN.with_overrides(default_timezone=URUMQI)
    assert check(rec(utc_ms("2026-03-02T14:30Z")), policy=policy, tz="bogus") == []  # 20:30 in Urumqi
    assert check(rec(utc_ms("2026-03-02T14:30Z")), policy=policy, tz=SH) == [QUIET_HOURS]


# --------------------------------------------------------------------------- daily connected calls (CN)
def _calls_at(times: Sequence[str], tz: str = SH, **fields: str) -> list[ContactRecord]:
    return [rec(local_ms(t, tz), **fields) for t in times]


@pytest.mark.parametrize(
    ("history_outcomes", "attempt_outcome", "expected"),
    [
        (["RIGHT_PARTY_CONTACT"] * 2, "RIGHT_PARTY_CONTACT", []),
        (["RIGHT_PARTY_CONTACT"] * 3, "PROMISE_TO_PAY", [DAILY_CONNECTED_LIMIT]),
        (
            ["RIGHT_PARTY_CONTACT", "REFUSED_TO_PAY", "CALLBACK_REQUESTED"],
            "WRONG_PARTY",
            [DAILY_CONNECTED_LIMIT],
        ),
        (["RIGHT_PARTY_CONTACT"] * 3, "NO_ANSWER", []),
        (["RIGHT_PARTY_CONTACT"] * 3, "LEFT_MESSAGE", []),
        (["NO_ANSWER", "LEFT_MESSAGE", "RIGHT_PARTY_CONTACT", "PROMISE_TO_PAY"], "RIGHT_PARTY_CONTACT", []),
    ],
)
def test_the_fourth_connected_call_to_the_debtor_on_one_local_day_breaks_the_cn_limit(
    history_outcomes: list[str], attempt_outcome: str, expected: list[str]
) -> None:
    history = [
        rec(local_ms(f"2026-03-02T{9 + i:02d}:00", SH), outcome=o, agency=f"AG{i % 3}")
        for i, o in enumerate(history_outcomes)
    ]
    attempt = rec(local_ms("2026-03-02T17:00", SH), outcome=attempt_outcome, agency="AG9")
    assert check(attempt, history) == expected


def test_connected_call_details_give_the_count_the_limit_and_the_local_day() -> None:
    history = _calls_at(
        ["2026-03-02T09:00", "2026-03-02T10:00", "2026-03-02T10:30"], outcome="RIGHT_PARTY_CONTACT"
    )
    attempt = rec(local_ms("2026-03-02T11:00", SH), outcome="RIGHT_PARTY_CONTACT")
    finding = find(check_contact(attempt, history, CN, SH), DAILY_CONNECTED_LIMIT)
    assert "2026-03-02 11:00 Asia/Shanghai (UTC+08:00)" in finding.details
    assert "comes after the 3 connected calls to the debtor allowed on local day 2026-03-02" in finding.details
    assert "counted in time order across all agencies and loans" in finding.details


@pytest.mark.parametrize(
    ("attempt_at", "expected"),
    [
        ("2026-03-02T15:59:59Z", [QUIET_HOURS, DAILY_CONNECTED_LIMIT]),  # 23:59:59 on 2 March in Shanghai
        ("2026-03-02T16:00:00Z", [QUIET_HOURS]),  # 00:00 on 3 March in Shanghai, same UTC day
        ("2026-03-03T01:00:00Z", []),  # 09:00 on 3 March
    ],
)
def test_connected_calls_are_counted_per_local_day_not_per_utc_day(
    attempt_at: str, expected: list[str]
) -> None:
    history = _calls_at(
        ["2026-03-02T09:00", "2026-03-02T10:00", "2026-03-02T11:00"], outcome="RIGHT_PARTY_CONTACT"
    )
    assert check(rec(utc_ms(attempt_at), outcome="RIGHT_PARTY_CONTACT"), history) == expected


def test_connected_calls_the_day_before_local_midnight_do_not_count_today() -> None:
    history = _calls_at(
        ["2026-03-01T21:00", "2026-03-01T21:30", "2026-03-01T21:59"], outcome="RIGHT_PARTY_CONTACT"
    )
    assert check(rec(local_ms("2026-03-02T09:00", SH), outcome="RIGHT_PARTY_CONTACT"), history) == []


def test_connected_calls_to_emergency_contacts_and_by_sms_do_not_count_as_calls_to_the_debtor() -> None:
    policy = CN.with_overrides(emergency_contacts_allowed=True)
    history = [
        *_calls_at(
            ["2026-03-02T09:00", "2026-03-02T10:00"], party="EMERGENCY_CONTACT", outcome="RIGHT_PARTY_CONTACT"
        ),
        *_calls_at(["2026-03-02T11:00", "2026-03-02T12:00"], channel="SMS", outcome="RIGHT_PARTY_CONTACT"),
        *_calls_at(["2026-03-02T13:00", "2026-03-02T14:00"], outcome="RIGHT_PARTY_CONTACT"),
    ]
    assert check(rec(local_ms("2026-03-02T15:00", SH), outcome="RIGHT_PARTY_CONTACT"), history, policy) == []


def test_calls_that_broke_a_rule_still_count_towards_the_limits() -> None:
    history = _calls_at(
        ["2026-03-02T07:00", "2026-03-02T09:00", "2026-03-02T10:00"], outcome="RIGHT_PARTY_CONTACT"
    )
    assert check(history[0]) == [QUIET_HOURS]
    assert check(rec(local_ms("2026-03-02T11:00", SH), outcome="RIGHT_PARTY_CONTACT"), history) == [
        DAILY_CONNECTED_LIMIT
    ]


def test_a_late_report_earlier_in_the_day_makes_the_last_call_of_the_day_the_violating_one() -> None:
    history = _calls_at(
        ["2026-03-02T14:00", "2026-03-02T15:00", "2026-03-02T16:00"], outcome="RIGHT_PARTY_CONTACT"
    )
    late = rec(local_ms("2026-03-02T09:00", SH), outcome="RIGHT_PARTY_CONTACT")
    assert budget_findings(history, CN, SH) == {}
    assert check(late, history) == []  # it ranks first in time order
    after = budget_findings([*history, late], CN, SH)
    assert {e: [f.rule for f in fs] for e, fs in after.items()} == {history[2].event_id: [DAILY_CONNECTED_LIMIT]}


@pytest.mark.parametrize(("in_history", "expected"), [(2, []), (3, [DAILY_CONNECTED_LIMIT])])
def test_the_attempt_itself_and_duplicates_in_history_count_once(
    in_history: int, expected: list[str]
) -> None:
    history = _calls_at(
        [f"2026-03-02T{9 + i:02d}:00" for i in range(in_history)], outcome="RIGHT_PARTY_CONTACT"
    )
    attempt = rec(local_ms("2026-03-02T15:00", SH), outcome="RIGHT_PARTY_CONTACT")
    assert check(attempt, [*history, *history, attempt, attempt]) == expected


@pytest.mark.parametrize(
    ("overrides", "connected_before", "expected"),
    [
        ({"max_connected_calls_per_day": 2}, 1, []),
        ({"max_connected_calls_per_day": 2}, 2, [DAILY_CONNECTED_LIMIT]),
        ({"max_connected_calls_per_day": None}, 10, []),
    ],
)
def test_the_connected_call_limit_can_be_overridden_or_switched_off(
    overrides: dict[str, int | None], connected_before: int, expected: list[str]
) -> None:
    policy = CN.with_overrides(max_attempts_per_day=None, **overrides)
    history = [
        rec(local_ms("2026-03-02T09:00", SH) + i * 60_000, outcome="RIGHT_PARTY_CONTACT")
        for i in range(connected_before)
    ]
    assert (
        check(rec(local_ms("2026-03-02T15:00", SH), outcome="RIGHT_PARTY_CONTACT"), history, policy)
        == expected
    )


# --------------------------------------------------------------------------- daily attempts per party (CN)
@pytest.mark.parametrize(
    ("history_party", "history_channel", "count", "attempt_party", "expected"),
    [
        ("DEBTOR", "CALL", 5, "DEBTOR", []),
        ("DEBTOR", "CALL", 6, "DEBTOR", [DAILY_ATTEMPT_LIMIT]),
        ("DEBTOR", "CALL", 9, "DEBTOR", [DAILY_ATTEMPT_LIMIT]),
        ("DEBTOR", "CALL", 6, "EMERGENCY_CONTACT", []),
        ("EMERGENCY_CONTACT", "CALL", 6, "DEBTOR", []),
        ("EMERGENCY_CONTACT", "CALL", 5, "EMERGENCY_CONTACT", []),
        ("EMERGENCY_CONTACT", "CALL", 6, "EMERGENCY_CONTACT", [DAILY_ATTEMPT_LIMIT]),
        ("DEBTOR", "SMS", 6, "DEBTOR", []),
        ("DEBTOR", "VISIT", 6, "DEBTOR", []),
    ],
)
def test_the_seventh_call_attempt_to_the_same_party_on_one_local_day_breaks_the_cn_limit(
    history_party: str, history_channel: str, count: int, attempt_party: str, expected: list[str]
) -> None:
    policy = CN.with_overrides(emergency_contacts_allowed=True, visits_allowed=True)
    history = [
        rec(
            local_ms("2026-03-02T09:00", SH) + i * 600_000,
            history_channel,
            history_party,
            agency=f"AG{i % 2}",
        )
        for i in range(count)
    ]
    attempt = rec(local_ms("2026-03-02T18:00", SH), party=attempt_party)
    assert check(attempt, history, policy) == expected


def test_a_text_message_is_never_a_call_attempt() -> None:
    history = [rec(local_ms("2026-03-02T09:00", SH) + i * 60_000) for i in range(10)]
    assert check(rec(local_ms("2026-03-02T18:00", SH), channel="SMS"), history) == []


def test_call_attempts_just_before_local_midnight_count_on_the_previous_day() -> None:
    history = [rec(local_ms("2026-03-02T21:00", SH) + i * 60_000) for i in range(6)]
    assert check(rec(local_ms("2026-03-02T21:59", SH)), history) == [DAILY_ATTEMPT_LIMIT]
    assert check(rec(local_ms("2026-03-03T08:00", SH)), history) == []


def test_attempt_limit_details_name_the_party_and_the_limit() -> None:
    history = [rec(local_ms("2026-03-02T09:00", SH) + i * 60_000) for i in range(6)]
    finding = find(check_contact(rec(local_ms("2026-03-02T18:00", SH)), history, CN, SH), DAILY_ATTEMPT_LIMIT)
    assert "comes after the 6 call attempts to the debtor allowed on local day 2026-03-02" in finding.details


# --------------------------------------------------------------------------- weekly attempts (US)
_NOON_MAR_7_TO_11 = [f"2026-03-{d:02d}T12:00" for d in range(7, 12)]


@pytest.mark.parametrize(
    ("first_call", "expected"),
    [
        ("2026-03-05T23:59", []),  # outside the 7 local days 6-12 March: 7 in the window
        ("2026-03-06T00:00", [WEEKLY_ATTEMPT_LIMIT]),  # inside: 8 in the window
    ],
)
def test_the_eighth_call_in_seven_consecutive_local_days_breaks_reg_f(
    first_call: str, expected: list[str]
) -> None:
    # The window 6-12 March crosses the daylight-saving change of 8 March.
    history = _calls_at([first_call, *_NOON_MAR_7_TO_11, "2026-03-12T09:00"], tz=NY)
    assert check(rec(local_ms("2026-03-12T12:00", NY)), history, US, NY) == expected


@pytest.mark.parametrize(("calls_before", "expected"), [(6, []), (7, [WEEKLY_ATTEMPT_LIMIT])])
def test_seven_calls_in_seven_days_are_allowed_and_the_eighth_is_not(
    calls_before: int, expected: list[str]
) -> None:
    history = [rec(local_ms(f"2026-04-{d:02d}T10:00", NY)) for d in range(1, 1 + calls_before)]
    assert check(rec(local_ms("2026-04-07T15:00", NY)), history, US, NY) == expected


def test_the_weekly_window_slides_day_by_day() -> None:
    # 4 calls on 1 April and 3 on 7 April: 8 April's call sees only the 3 (window 2-8 April).
    history = [
        *(rec(local_ms("2026-04-01T10:00", NY) + i * 60_000) for i in range(4)),
        *(rec(local_ms("2026-04-07T10:00", NY) + i * 60_000) for i in range(3)),
    ]
    assert check(rec(local_ms("2026-04-07T15:00", NY)), history, US, NY) == [WEEKLY_ATTEMPT_LIMIT]
    assert check(rec(local_ms("2026-04-08T15:00", NY)), history, US, NY) == []


@pytest.mark.parametrize(("later_calls", "flagged"), [(6, False), (7, True)])
def test_a_late_call_report_can_make_a_later_call_the_violating_one(later_calls: int, flagged: bool) -> None:
    # Calls on 13-18 April (and one more on 14 April) were reported before the call of 12 April.
    days = [13, 14, 15, 16, 17, 18, 14][:later_calls]
    history = [rec(local_ms(f"2026-04-{d:02d}T1{i}:00", NY)) for i, d in enumerate(days)]
    late = rec(local_ms("2026-04-12T10:00", NY))
    assert budget_findings(history, US, NY) == {}
    assert check(late, history, US, NY) == []  # the earliest call ranks first
    latest = max(history, key=lambda r: r.attempted_at)
    after = budget_findings([*history, late], US, NY)
    assert {e: [f.rule for f in fs] for e, fs in after.items()} == (
        {latest.event_id: [WEEKLY_ATTEMPT_LIMIT]} if flagged else {})


def test_weekly_attempts_are_counted_per_party_and_only_for_calls() -> None:
    policy = US.with_overrides(emergency_contacts_allowed=True)
    history = [
        *(rec(local_ms(f"2026-04-0{d}T10:00", NY), party="EMERGENCY_CONTACT") for d in range(1, 8)),
        *(rec(local_ms(f"2026-04-0{d}T11:00", NY), channel="SMS") for d in range(1, 8)),
    ]
    assert check(rec(local_ms("2026-04-07T15:00", NY)), history, policy, NY) == []
    assert check(rec(local_ms("2026-04-07T15:00", NY), party="EMERGENCY_CONTACT"), history, policy, NY) == [
        WEEKLY_ATTEMPT_LIMIT
    ]


def test_weekly_details_give_the_window_and_the_limit() -> None:
    history = [rec(local_ms(f"2026-04-0{d}T10:00", NY)) for d in range(1, 8)]
    finding = find(
        check_contact(rec(local_ms("2026-04-07T15:00", NY)), history, US, NY), WEEKLY_ATTEMPT_LIMIT
    )
    assert ("comes after the 7 call attempts to the debtor allowed in the 7 local days 2026-04-01 to 2026-04-07"
            in finding.details)


def test_the_weekly_limit_can_be_overridden_or_switched_off() -> None:
    history = [rec(local_ms(f"2026-04-0{d}T10:00", NY)) for d in range(1, 4)]
    attempt = rec(local_ms("2026-04-04T15:00", NY))
    assert check(attempt, history, US.with_overrides(max_attempts_per_week=3), NY) == [WEEKLY_ATTEMPT_LIMIT]
    assert check(attempt, history * 5, US.with_overrides(max_attempts_per_week=None), NY) == []


def test_cn_has_no_weekly_limit() -> None:
    history = [rec(local_ms(f"2026-04-{d:02d}T10:00", SH)) for d in range(1, 15)]
    assert check(rec(local_ms("2026-04-07T15:00", SH)), history, CN, SH) == []


# --------------------------------------------------------------------------- call after a conversation (US)
@pytest.mark.parametrize(
    ("conversation", "call", "expected"),
    [
        ("2026-03-02T10:00", "2026-03-02T09:00", []),  # before the conversation
        ("2026-03-02T10:00", "2026-03-02T15:00", [CALL_AFTER_CONVERSATION]),  # same day: day 1
        ("2026-03-02T10:00", "2026-03-03T09:00", [CALL_AFTER_CONVERSATION]),
        ("2026-03-02T10:00", "2026-03-08T10:00", [CALL_AFTER_CONVERSATION]),  # 6 days after (DST day)
        ("2026-03-02T10:00", "2026-03-08T20:59", [CALL_AFTER_CONVERSATION]),
        ("2026-03-02T10:00", "2026-03-09T08:00", []),  # 7 days after: day 8, allowed
        ("2026-03-02T10:00", "2026-03-10T10:00", []),  # 8 days after
        # Counted in local days, not 24-hour periods: 6 days 22.5 hours across the DST change.
        ("2026-03-05T10:00", "2026-03-11T20:59", [CALL_AFTER_CONVERSATION]),
        ("2026-03-05T10:00", "2026-03-12T09:30", []),
    ],
)
def test_reg_f_forbids_calls_for_seven_days_counting_the_day_of_a_conversation(
    conversation: str, call: str, expected: list[str]
) -> None:
    history = [rec(local_ms(conversation, NY), outcome="RIGHT_PARTY_CONTACT")]
    assert check(rec(local_ms(call, NY)), history, US, NY) == expected


@pytest.mark.parametrize("outcome", ["NO_ANSWER", "LEFT_MESSAGE"])
def test_a_call_that_connected_no_one_is_not_a_conversation(outcome: str) -> None:
    history = [rec(local_ms("2026-03-02T10:00", NY), outcome=outcome)]
    assert check(rec(local_ms("2026-03-03T10:00", NY)), history, US, NY) == []


def test_a_conversation_with_an_emergency_contact_does_not_block_calls_to_the_debtor() -> None:
    policy = US.with_overrides(emergency_contacts_allowed=True)
    history = [
        rec(local_ms("2026-03-02T10:00", NY), party="EMERGENCY_CONTACT", outcome="RIGHT_PARTY_CONTACT")
    ]
    assert check(rec(local_ms("2026-03-03T10:00", NY)), history, policy, NY) == []
    assert check(rec(local_ms("2026-03-03T10:00", NY), party="EMERGENCY_CONTACT"), history, policy, NY) == [
        CALL_AFTER_CONVERSATION
    ]


@pytest.mark.parametrize("channel", ["SMS", "EMAIL", "LETTER"])
def test_only_calls_are_restricted_after_a_conversation(channel: str) -> None:
    history = [rec(local_ms("2026-03-02T10:00", NY), outcome="RIGHT_PARTY_CONTACT")]
    assert check(rec(local_ms("2026-03-03T10:00", NY), channel=channel), history, US, NY) == []


def test_a_conversation_reported_after_the_call_that_followed_it_makes_that_call_violating() -> None:
    call = rec(local_ms("2026-03-04T10:00", NY))
    conversation = rec(local_ms("2026-03-02T10:00", NY), outcome="RIGHT_PARTY_CONTACT")
    assert check(call, [], US, NY) == []
    assert check(conversation, [call], US, NY) == []  # the conversation itself broke nothing
    after = budget_findings([call, conversation], US, NY)
    assert {e: [f.rule for f in fs] for e, fs in after.items()} == {call.event_id: [CALL_AFTER_CONVERSATION]}
    assert budget_findings([conversation, rec(local_ms("2026-03-09T10:00", NY))], US, NY) == {}


def test_conversation_details_give_the_gap_and_the_period() -> None:
    talk = rec(local_ms("2026-03-02T10:00", NY), outcome="RIGHT_PARTY_CONTACT")
    finding = find(
        check_contact(rec(local_ms("2026-03-08T10:00", NY)), [talk], US, NY), CALL_AFTER_CONVERSATION
    )
    assert "comes within 7 days of a telephone conversation with the debtor" in finding.details
    assert talk.event_id not in finding.details  # a later report could name a nearer one: keep it order-free
    assert "no calls for 7 days counting the conversation's day" in finding.details


@pytest.mark.parametrize(
    ("days", "call", "expected"),
    [
        (3, "2026-03-04T10:00", [CALL_AFTER_CONVERSATION]),
        (3, "2026-03-05T10:00", []),
        (None, "2026-03-02T15:00", []),
        (0, "2026-03-02T15:00", []),
    ],
)
def test_the_conversation_period_can_be_overridden_or_switched_off(
    days: int | None, call: str, expected: list[str]
) -> None:
    history = [rec(local_ms("2026-03-02T10:00", NY), outcome="RIGHT_PARTY_CONTACT")]
    policy = US.with_overrides(call_after_conversation_days=days)
    assert check(rec(local_ms(call, NY)), history, policy, NY) == expected


def test_cn_does_not_restrict_calls_after_a_conversation() -> None:
    history = [rec(local_ms("2026-03-02T10:00", SH), outcome="RIGHT_PARTY_CONTACT")]
    assert check(rec(local_ms("2026-03-02T15:00", SH)), history, CN, SH) == []


# --------------------------------------------------------------------------- who, how, and when at all
@pytest.mark.parametrize(
    ("policy", "tz", "party", "channel", "expected"),
    [
        (CN, SH, "THIRD_PARTY", "CALL", [THIRD_PARTY_CONTACT]),
        (CN, SH, "THIRD_PARTY", "LETTER", [THIRD_PARTY_CONTACT]),
        (US, NY, "THIRD_PARTY", "SMS", [THIRD_PARTY_CONTACT]),
        (CN, SH, "EMERGENCY_CONTACT", "CALL", [EMERGENCY_CONTACT]),
        (US, NY, "EMERGENCY_CONTACT", "EMAIL", [EMERGENCY_CONTACT]),
        (CN.with_overrides(emergency_contacts_allowed=True), SH, "EMERGENCY_CONTACT", "CALL", []),
        (US.with_overrides(emergency_contacts_allowed=True), NY, "EMERGENCY_CONTACT", "CALL", []),
        (
            CN.with_overrides(emergency_contacts_allowed=True),
            SH,
            "THIRD_PARTY",
            "CALL",
            [THIRD_PARTY_CONTACT],
        ),
        (CN, SH, "DEBTOR", "VISIT", [VISIT_WITHOUT_CONSENT]),
        (US, NY, "DEBTOR", "VISIT", []),
        (CN.with_overrides(visits_allowed=True), SH, "DEBTOR", "VISIT", []),
        (CN, SH, "DEBTOR", "LETTER", []),
    ],
)
def test_who_may_be_contacted_and_by_which_channel_depends_on_the_profile(
    policy: ContactPolicy, tz: str, party: str, channel: str, expected: list[str]
) -> None:
    assert check(rec(local_ms("2026-03-02T11:00", tz), channel, party), policy=policy, tz=tz) == expected


@pytest.mark.parametrize(
    ("on_hold", "ceased", "channel", "expected", "reason"),
    [
        (False, False, "CALL", [], None),
        (True, False, "CALL", [CONTACT_ON_HOLD], "while the case was on hold"),
        (True, False, "LETTER", [CONTACT_ON_HOLD], "while the case was on hold"),
        (False, True, "EMAIL", [CONTACT_ON_HOLD], "while the debtor had asked to cease contact"),
        (True, True, "CALL", [CONTACT_ON_HOLD], "on hold and the debtor had asked to cease contact"),
    ],
)
def test_any_contact_on_hold_or_after_cease_contact_is_a_violation(
    on_hold: bool, ceased: bool, channel: str, expected: list[str], reason: str | None
) -> None:
    for policy, tz in ((CN, SH), (US, NY)):
        findings = check_contact(
            rec(local_ms("2026-03-02T11:00", tz), channel), [], policy, tz, on_hold=on_hold, ceased=ceased
        )
        assert [f.rule for f in findings] == expected
        if reason:
            assert reason in findings[0].details


def test_a_contact_by_an_agency_without_the_active_work_order_is_unauthorized() -> None:
    attempt = rec(local_ms("2026-03-02T11:00", SH), agency="AG7")
    assert check(attempt, authorized=True) == []
    findings = check_contact(attempt, [], CN, SH, authorized=False)
    assert [f.rule for f in findings] == [UNAUTHORIZED_CONTACT]
    assert "by agency AG7, which did not hold the case's work order at that time" in findings[0].details


def test_one_attempt_can_break_several_rules_reported_in_table_order() -> None:
    history = [rec(local_ms("2026-03-02T09:00", SH) + i * 60_000, party="THIRD_PARTY") for i in range(6)]
    attempt = rec(local_ms("2026-03-02T23:00", SH), party="THIRD_PARTY", agency="AG2")
    assert check(attempt, history, authorized=False, on_hold=True) == [
        QUIET_HOURS,
        DAILY_ATTEMPT_LIMIT,
        THIRD_PARTY_CONTACT,
        CONTACT_ON_HOLD,
        UNAUTHORIZED_CONTACT,
    ]


def test_every_rule_can_fire_and_rules_are_listed_in_spec_order() -> None:
    assert RULES == (
        "QUIET_HOURS",
        "DAILY_CONNECTED_LIMIT",
        "DAILY_ATTEMPT_LIMIT",
        "WEEKLY_ATTEMPT_LIMIT",
        "CALL_AFTER_CONVERSATION",
        "THIRD_PARTY_CONTACT",
        "EMERGENCY_CONTACT",
        "VISIT_WITHOUT_CONSENT",
        "CONTACT_ON_HOLD",
        "UNAUTHORIZED_CONTACT",
    )


def test_a_contact_record_is_built_from_the_contact_attempted_event() -> None:
    event = ContactAttempted("e1", 5, "AG1", "L1:1", "WO1", 1_000, "CALL", "DEBTOR", "PROMISE_TO_PAY")
    record = ContactRecord.from_event(event)
    assert record == ContactRecord("e1", "AG1", 1_000, "CALL", "DEBTOR", "PROMISE_TO_PAY", "L1:1", 5, "WO1")
    assert record.connected and record.is_call


# --------------------------------------------------------------------------- configuration
def test_yaml_policy_overrides_reach_the_rules() -> None:
    config = parse_config(
        {"policy": {"profile": "CN", "quiet_hours_start": "21:00", "max_connected_calls_per_day": 2}}
    )
    policy = config.policy.contact_policy()
    assert check(rec(local_ms("2026-03-02T21:00", SH)), policy=policy) == [QUIET_HOURS]
    history = _calls_at(["2026-03-02T09:00", "2026-03-02T10:00"], outcome="RIGHT_PARTY_CONTACT")
    assert check(rec(local_ms("2026-03-02T11:00", SH), outcome="RIGHT_PARTY_CONTACT"), history, policy) == [
        DAILY_CONNECTED_LIMIT
    ]


def test_the_profiles_are_what_the_config_gives_without_overrides() -> None:
    assert parse_config({}).policy.contact_policy() == CN
    assert parse_config({"policy": {"profile": "US_REG_F"}}).policy.contact_policy() == US
    assert US.default_timezone == "America/New_York" and CN.default_timezone == "Asia/Shanghai"


def test_the_config_accepts_a_fallback_zone_and_names_a_bad_one() -> None:
    policy = parse_config({"policy": {"default_timezone": URUMQI}}).policy.contact_policy()
    assert policy.default_timezone == URUMQI
    with pytest.raises(ConfigError, match=r"policy\.default_timezone: expected an IANA timezone name"):
        parse_config({"policy": {"default_timezone": "Mars/Base"}})


# --------------------------------------------------------------------------- prune
def test_prune_keeps_the_last_eight_days_of_calls_in_time_order_without_duplicates() -> None:
    now = utc_ms("2026-04-20T12:00Z")
    old = rec(now - 8 * 86_400_000 - 1)
    edge = rec(now - 8 * 86_400_000)
    recent = rec(now - 3_600_000)
    future = rec(now + 3_600_000)
    sms = rec(now - 60_000, channel="SMS")
    assert prune([future, sms, recent, old, edge, recent], now, US) == (edge, recent, future)


def test_prune_keeps_eight_days_for_the_cn_third_party_rule_and_two_without_it() -> None:
    now = utc_ms("2026-04-20T12:00Z")
    kept = rec(now - 8 * 86_400_000)
    assert prune([rec(now - 8 * 86_400_000 - 1), kept], now, CN) == (kept,)
    daily_only = CN.with_overrides(third_party_after_unreachable=None)
    kept = rec(now - 2 * 86_400_000)
    assert prune([rec(now - 2 * 86_400_000 - 1), kept], now, daily_only) == (kept,)


# --------------------------------------------------------------------------- properties
_BASE = utc_ms("2026-03-01T00:00Z")
_records = st.builds(
    ContactRecord,
    event_id=st.uuids().map(str),
    agency_id=st.sampled_from(["AG1", "AG2"]),
    attempted_at=st.integers(_BASE, _BASE + 20 * 86_400_000).map(lambda ms: ms - ms % 60_000),
    channel=st.sampled_from(["CALL", "CALL", "CALL", "SMS", "VISIT", "LETTER", "APP", "EMAIL"]),
    party=st.sampled_from(["DEBTOR", "DEBTOR", "DEBTOR", "EMERGENCY_CONTACT", "THIRD_PARTY"]),
    outcome=st.sampled_from(
        ["NO_ANSWER", "LEFT_MESSAGE", "RIGHT_PARTY_CONTACT", "PROMISE_TO_PAY", "WRONG_PARTY"]
    ),
)
_policies = st.sampled_from(
    [CN, US, CN.with_overrides(emergency_contacts_allowed=True), US.with_overrides(max_attempts_per_week=2)]
)
_zones = st.sampled_from([SH, URUMQI, NY, LA, "not/a_zone"])


@settings(max_examples=300, deadline=None)
@given(
    attempt=_records,
    history=st.lists(_records, max_size=30),
    policy=_policies,
    tz=_zones,
    data=st.data(),
)
def test_findings_do_not_depend_on_the_order_of_the_history(
    attempt: ContactRecord, history: list[ContactRecord], policy: ContactPolicy, tz: str, data: st.DataObject
) -> None:
    expected = check_contact(attempt, history, policy, tz)
    shuffled = data.draw(st.permutations(history))
    assert check_contact(attempt, shuffled, policy, tz) == expected
    assert check_contact(attempt, [*shuffled, *history[:3], attempt], policy, tz) == expected


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.lists(st.integers(8 * 60, 21 * 60 + 59), min_size=1, max_size=10, unique=True),
    data=st.data(),
)
def test_in_any_arrival_order_a_day_with_n_connected_calls_yields_n_minus_3_findings(
    minutes: list[int], data: st.DataObject
) -> None:
    day_start = local_ms("2026-03-02T00:00", SH)
    calls = [rec(day_start + m * 60_000, outcome="RIGHT_PARTY_CONTACT") for m in minutes]
    arrival = data.draw(st.permutations(calls))
    policy = CN.with_overrides(max_attempts_per_day=None)
    # What a processor emits: after each report, the findings not emitted before.
    emitted: set[str] = set()
    for i in range(1, len(arrival) + 1):
        emitted |= set(budget_findings(arrival[:i], policy, SH))
    in_time_order = sorted(calls, key=lambda c: c.attempted_at)
    assert emitted == {c.event_id for c in in_time_order[3:]}
    in_time_order = sorted(calls, key=lambda c: c.attempted_at)
    assert [
        DAILY_CONNECTED_LIMIT in check(c, in_time_order[:i], policy) for i, c in enumerate(in_time_order)
    ] == [i >= 3 for i in range(len(calls))]


@settings(max_examples=300, deadline=None)
@given(
    attempt=_records,
    history=st.lists(_records, max_size=30),
    policy=_policies,
    tz=_zones,
    lag_ms=st.integers(0, 3 * 86_400_000),
)
def test_pruning_never_changes_the_findings_for_attempts_from_now_on(
    attempt: ContactRecord, history: list[ContactRecord], policy: ContactPolicy, tz: str, lag_ms: int
) -> None:
    now = attempt.attempted_at - lag_ms
    assert check_contact(attempt, prune(history, now, policy), policy, tz) == check_contact(
        attempt, history, policy, tz
    )
