"""The simulated agency's day: seeded, realistic, and rule-breaking exactly as often as asked."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from workorders import cancelled, issued, updated

from arrears.topics import RESULT_TYPES
from consumers.csvformat import check_result
from consumers.simplan import CaseBook, CaseFile, SimProfile, plan_book, plan_day
from schemas import from_json, get_codec

CATALOG = get_codec().catalog
DAY = dt.date(2026, 3, 2)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def book_of(n: int, **kw: object) -> CaseBook:
    book = CaseBook()
    for i in range(n):
        book.apply(issued(f"L{i}:1", **kw))  # type: ignore[arg-type]
    return book


def run(
    book: CaseBook, days: int, profile: SimProfile, seed: str = "s"
) -> tuple[list[dict], list[dict], Counter]:  # type: ignore[type-arg]
    results: list[dict] = []  # type: ignore[type-arg]
    pays: list[dict] = []  # type: ignore[type-arg]
    violations: Counter[str] = Counter()
    for d in range(days):
        plan, new = plan_book(
            book.active(), DAY + dt.timedelta(days=d), agency_id="AG1", seed=seed, profile=profile
        )
        for case in new:
            book.update(case)
        results += plan.results
        pays += plan.repayments
        violations.update(plan.violations)
    return results, pays, violations


def local(result: dict) -> dt.datetime:  # type: ignore[type-arg]
    return dt.datetime.fromisoformat(result["attempted_at"].replace("Z", "+00:00")).astimezone(SHANGHAI)


def in_quiet_hours(result: dict) -> bool:  # type: ignore[type-arg]
    t = local(result).time()
    return t >= dt.time(22) or t < dt.time(8)


def test_the_same_seed_gives_the_same_days_and_another_seed_different_ones() -> None:
    a = run(book_of(50), 5, SimProfile())
    assert a == run(book_of(50), 5, SimProfile())
    assert a[0] != run(book_of(50), 5, SimProfile(), seed="other")[0]


def test_a_cases_day_does_not_depend_on_the_other_cases_in_the_book() -> None:
    alone, _ = plan_book(book_of(1).active(), DAY, agency_id="AG1", seed="s")
    crowd, _ = plan_book(book_of(40).active(), DAY, agency_id="AG1", seed="s")
    assert alone.results == [r for r in crowd.results if r["case_id"] == "L0:1"]


def test_every_result_is_a_valid_result_record_of_this_agency() -> None:
    results, pays, _ = run(book_of(100), 10, SimProfile(violation_rate=0.2))
    kinds = Counter(r["type"] for r in results)
    assert set(kinds) >= {"ContactAttempted", "PromiseToPay"}
    assert len({r["event_id"] for r in results}) == len(results)
    for result in results:
        _, value = from_json(CATALOG, result, allowed=set(RESULT_TYPES))
        check_result(value, "AG1")
    for pay in pays:
        from_json(CATALOG, {"type": "RepaymentReceived", **pay})
        assert pay["channel"] == "AGENCY" and pay["amount"] > 0


def test_without_violations_every_contact_keeps_the_cn_rules() -> None:
    results, _, violations = run(book_of(200), 10, SimProfile(violation_rate=0.0))
    contacts = [r for r in results if r["type"] == "ContactAttempted"]
    assert contacts and not violations
    assert not [r for r in contacts if in_quiet_hours(r)]
    assert {r["party"] for r in contacts} == {"DEBTOR"}
    calls = Counter((r["case_id"], local(r).date()) for r in contacts if r["channel"] == "CALL")
    assert max(calls.values()) <= 6
    connected = Counter(
        (r["case_id"], local(r).date())
        for r in contacts
        if r["channel"] == "CALL" and r["outcome"] not in ("NO_ANSWER", "LEFT_MESSAGE")
    )
    assert max(connected.values()) <= 3


def test_the_share_of_rule_breaking_case_days_follows_the_configured_rate() -> None:
    book = book_of(400)
    worked = 0
    breaks = 0
    for d in range(5):
        plan_days = [
            plan_day(
                c,
                DAY + dt.timedelta(days=d),
                agency_id="AG1",
                seed="s",
                profile=SimProfile(violation_rate=0.1),
            )
            for c in book.active()
        ]
        for plan, new in plan_days:
            book.update(new)
            if plan.results or plan.repayments:
                worked += 1
            breaks += len(plan.violations)
    assert 0.07 < breaks / worked < 0.14


def test_injected_violations_break_the_rule_they_name() -> None:
    results, _, violations = run(book_of(150), 3, SimProfile(violation_rate=1.0))
    assert set(violations) == {"QUIET_HOURS", "DAILY_ATTEMPT_LIMIT", "THIRD_PARTY_CONTACT"}
    contacts = [r for r in results if r["type"] == "ContactAttempted"]
    assert sum(in_quiet_hours(r) for r in contacts) == violations["QUIET_HOURS"]
    assert sum(r["party"] == "THIRD_PARTY" for r in contacts) == violations["THIRD_PARTY_CONTACT"]
    calls = Counter((r["case_id"], local(r).date()) for r in contacts if r["channel"] == "CALL")
    assert sum(n > 6 for n in calls.values()) >= violations["DAILY_ATTEMPT_LIMIT"]


def test_quiet_hours_follow_the_debtors_timezone() -> None:
    book = book_of(60, timezone="America/New_York")
    results, _, violations = run(book, 3, SimProfile(violation_rate=1.0))
    ny = ZoneInfo("America/New_York")
    late = [
        r
        for r in results
        if r["type"] == "ContactAttempted"
        and not dt.time(8)
        <= dt.datetime.fromisoformat(r["attempted_at"].replace("Z", "+00:00")).astimezone(ny).time()
        < dt.time(22)
    ]
    assert len(late) == violations["QUIET_HOURS"] > 0


def test_kept_promises_are_paid_on_the_promised_date_and_broken_ones_are_not() -> None:
    results, pays, _ = run(book_of(300), 20, SimProfile(violation_rate=0.0, self_cure_rate=0.0))
    promises = [r for r in results if r["type"] == "PromiseToPay"]
    paid = {(p["reference"], p["value_date"]): p["amount"] for p in pays}
    kept = [p for p in promises if (p["work_order_id"], p["promised_date"]) in paid]
    assert promises and 0.4 < len(kept) / len(promises) < 0.8  # keep_rate 0.6
    for promise in kept:
        assert paid[(promise["work_order_id"], promise["promised_date"])] == promise["promised_amount"]
    assert len(pays) == len(kept)


def test_reg_f_cases_get_no_call_within_seven_days_of_a_conversation_and_at_most_seven_a_week() -> None:
    book = CaseBook()
    for i in range(100):
        wo = issued(f"L{i}:1", timezone="America/New_York")
        wo["contact_policy"] = {
            "profile": "US_REG_F",
            "quiet_hours_start": "21:00",
            "quiet_hours_end": "08:00",
            "max_connected_calls_per_day": None,
            "max_attempts_per_day": None,
            "max_attempts_per_week": 7,
            "emergency_contacts_allowed": False,
        }
        book.apply(wo)
    results, _, _ = run(book, 21, SimProfile(violation_rate=0.0, self_cure_rate=0.0))
    calls: dict[str, list[tuple[dt.date, str]]] = {}
    for r in results:
        if r["type"] == "ContactAttempted" and r["channel"] == "CALL":
            when = dt.datetime.fromisoformat(r["attempted_at"].replace("Z", "+00:00"))
            calls.setdefault(r["case_id"], []).append(
                (when.astimezone(ZoneInfo("America/New_York")).date(), r["outcome"])
            )
    for days in calls.values():
        talks = [d for d, o in days if o not in ("NO_ANSWER", "LEFT_MESSAGE")]
        for talk in talks:
            assert not [d for d, _ in days if talk < d <= talk + dt.timedelta(days=7)]
        for start, _ in days:
            assert sum(start <= d < start + dt.timedelta(days=7) for d, _ in days) <= 7


def test_case_book_applies_each_event_once_and_forgets_cancelled_work_orders() -> None:
    book = CaseBook()
    first = issued("L1:1")
    assert book.apply(first) and not book.apply(first)
    assert book.apply(updated("L1:1", overdue_amount=777))
    assert book.cases["WO-L1:1"].overdue_amount == 777
    assert book.apply(cancelled("L1:1"))
    assert book.active() == []
    book.apply(issued("L1:1"))  # a late re-issue of a cancelled work order is not worked
    assert book.active() == []


@pytest.mark.parametrize("stopped", [True, False])
def test_a_stopped_or_paid_case_gets_no_work(stopped: bool) -> None:
    case = CaseFile(
        "WO-1",
        "L1:1",
        "L1",
        "CNY",
        100,
        "Asia/Shanghai",
        issued()["contact_policy"],  # type: ignore[arg-type]
        stopped=stopped,
        paid_pending=0 if stopped else 100,
    )
    plan, after = plan_day(case, DAY, agency_id="AG1", seed="s", profile=SimProfile(violation_rate=1.0))
    assert (plan.results, plan.repayments, after) == ([], [], case)
