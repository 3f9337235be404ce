"""Order across topics (SPEC §4): results are judged by their own time, never by arrival order.

Between two ticks (which are barriers, so every run applies them at the same place), agency
results and the loan's repayments may reach the processor in any interleaving. These tests
apply the same records in different interleavings to the pure rules and require the same set
of case records and violations and the same final case state.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from builders import day_ms, installment, opened, repayment, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from arrears.config import parse_config
from arrears.domain import events as ev
from arrears.domain.pipeline import Pipeline
from arrears.domain.results import future_time_problem

HOUR = 3_600_000
MINUTE = 60_000
CONFIG = {
    "internal_buckets": ["M1"],
    "agencies": [
        {"id": "AG1", "buckets": ["M2", "M3"], "capacity": 60, "weight": 1, "assignment_days": 30,
         "transport": {"type": "webhook", "url": "https://ag1.example/", "secret_env": "AG1_SECRET"}},
    ],
}
_ids = itertools.count()
TICK_DAY = "2026-02-14"  # the case opens in M2 and goes to AG1 at this tick
T_TICK = day_ms(TICK_DAY)  # 2026-02-14T00:00Z = 08:00 in Shanghai


def book() -> Pipeline:
    return Pipeline(parse_config(CONFIG).rules(6))


def setup(b: Pipeline) -> ev.WorkOrderIssued:
    """A loan 35 days late at the tick: its case L1:1 opens in M2 and AG1 holds WO-L1:1-1."""
    out = run(b, [opened(), installment(1, "2026-01-10", principal=50_000), installment(2, "2026-03-01"),
                  tick(TICK_DAY)])
    (work_order,) = [o for o in out if isinstance(o, ev.WorkOrderIssued)]
    return work_order


def run(b: Pipeline, steps: list[Any]) -> list[ev.Output]:
    out: list[ev.Output] = []
    for step in steps:
        if isinstance(step, ev.Tick):
            out += b.tick(step)
        else:
            loan_id = getattr(step, "loan_id", None) or step.case_id.rsplit(":", 1)[0]
            out += b.apply(loan_id, step)
    return out


def contact(at: int, *, reported: int | None = None, agency: str = "AG1", work_order: str = "WO-L1:1-1",
            party: str = "DEBTOR", outcome: str = "RIGHT_PARTY_CONTACT", channel: str = "CALL") -> ev.ContactAttempted:
    return ev.ContactAttempted(f"c{next(_ids)}", reported or at, agency, "L1:1", work_order, at, channel, party,
                               outcome)


def cure(at: int, amount: int = 50_000, value_date: str = "2026-02-14") -> ev.RepaymentReceived:
    return ev.RepaymentReceived(f"p{next(_ids)}", at, "L1", f"PAY-{next(_ids)}", amount, "CNY",
                                dt.date.fromisoformat(value_date), "BANK_TRANSFER")


def dispute(at: int) -> ev.DisputeRaised:
    return ev.DisputeRaised(f"d{next(_ids)}", at, "AG1", "L1:1", "WO-L1:1-1", "not my loan")


def promise(at: int, amount: int, date: str) -> ev.PromiseToPay:
    return ev.PromiseToPay(f"pr{next(_ids)}", at, "AG1", "L1:1", "WO-L1:1-1", amount, dt.date.fromisoformat(date))


def outcome(steps: list[Any], then: list[Any] = ()) -> tuple[set[tuple[str, str]], dict[str, Any], list[str]]:
    """(the set of (record, event id) emitted except snapshots, the final snapshot's fields, violation rules)."""
    b = book()
    setup(b)
    out = run(b, [*steps, *then])
    records = {(type(o).__name__, o.event_id) for o in out if not isinstance(o, (ev.CaseState, ev.Rejected))}
    state = b.store.get("L1")
    assert state is not None and state.case is not None
    last = state.case.snapshot("", 0, "L1", "C1", "CNY")
    rules = sorted(o.rule for o in out if isinstance(o, ev.ComplianceViolation))
    return records, {k: getattr(last, k) for k in last.__slots__ if k not in ("event_id", "occurred_at")}, rules


# --------------------------------------------------------------------------- contacts and closes
def test_a_contact_made_while_the_agency_held_the_case_is_authorized_even_if_reported_after_the_cure() -> None:
    at_11, at_12 = T_TICK + 3 * HOUR, T_TICK + 4 * HOUR
    c, p = contact(at_11, reported=at_12 + HOUR), cure(at_12)
    before = outcome([c, p])
    reported_late = outcome([p, c])
    assert before[2] == reported_late[2] == []
    assert before[0] == reported_late[0]
    assert before[1] == reported_late[1]
    assert reported_late[1]["status"] == "CLOSED" and reported_late[1]["contact_attempts"] == 1


def test_a_contact_made_after_the_cure_is_unauthorized_whichever_arrives_first() -> None:
    at_12, at_13 = T_TICK + 4 * HOUR, T_TICK + 5 * HOUR
    c = contact(at_13)
    p = cure(at_12)
    in_time_order = outcome([p, c])
    cure_reported_late = outcome([c, p])  # the contact was judged authorized, then the cure arrived
    assert in_time_order[2] == cure_reported_late[2] == ["UNAUTHORIZED_CONTACT"]
    assert in_time_order[0] == cure_reported_late[0]
    assert in_time_order[1] == cure_reported_late[1]
    assert in_time_order[1]["violations"] == 1 and in_time_order[1]["contact_attempts"] == 1


def test_a_dispute_reported_late_puts_later_contacts_on_hold_and_out_of_the_agencys_hands() -> None:
    at_10, at_14 = T_TICK + 2 * HOUR, T_TICK + 6 * HOUR
    c = contact(at_14)
    d = dispute(at_10)
    first = outcome([d, c])
    late = outcome([c, d])
    assert first[2] == late[2] == ["CONTACT_ON_HOLD", "UNAUTHORIZED_CONTACT"]
    assert first[0] == late[0] and first[1] == late[1]


def test_a_work_order_the_agency_never_held_is_not_assigned_and_still_counts_in_the_budget() -> None:
    b = book()
    setup(b)
    stranger = contact(T_TICK + 2 * HOUR, agency="AG9", work_order="WO-L1:1-1")
    out = run(b, [stranger])
    assert [r.reason for r in out if isinstance(r, ev.Rejected)] == ["NOT_ASSIGNED"]
    assert [o.rule for o in out if isinstance(o, ev.ComplianceViolation)] == ["UNAUTHORIZED_CONTACT"]
    # Three more connected calls by the holder the same day: the fourth connected call of the day
    # (the stranger's was the first) breaks the CN limit.
    out = run(b, [contact(T_TICK + (3 + i) * HOUR) for i in range(3)])
    assert [o.rule for o in out if isinstance(o, ev.ComplianceViolation)] == ["DAILY_CONNECTED_LIMIT"]
    state = b.store.get("L1")
    assert state is not None and state.case is not None
    assert (state.case.contact_attempts, state.case.violations) == (3, 1)  # the stranger's is not on the case


# --------------------------------------------------------------------------- promises
def test_a_promise_is_judged_by_value_dates_whatever_the_arrival_order() -> None:
    made = T_TICK + 3 * HOUR  # 2026-02-14 11:00 in Shanghai
    pay = cure(T_TICK + 2 * HOUR, amount=4_000, value_date="2026-02-15")
    pr = promise(made, 4_000, "2026-02-16")
    kept = [outcome([pr, pay], [tick("2026-02-17")]), outcome([pay, pr], [tick("2026-02-17")])]
    assert kept[0][0] == kept[1][0]
    assert any(name == "PromiseKept" for name, _ in kept[0][0])


def test_money_valued_before_the_promise_or_after_its_date_does_not_keep_it() -> None:
    made = T_TICK + 3 * HOUR
    early = cure(T_TICK + HOUR, amount=2_000, value_date="2026-02-13")
    late = cure(T_TICK + 4 * HOUR, amount=2_000, value_date="2026-02-17")
    b = book()
    setup(b)
    out = run(b, [early, promise(made, 2_000, "2026-02-16"), late, tick("2026-02-17")])
    (broken,) = [o for o in out if isinstance(o, ev.PromiseBroken)]
    assert broken.paid_amount == 0


def test_the_latest_promise_by_its_own_time_stands_whichever_arrives_last() -> None:
    older, newer = promise(T_TICK + HOUR, 9_000, "2026-02-15"), promise(T_TICK + 2 * HOUR, 2_000, "2026-02-20")
    for order in ([older, newer], [newer, older]):
        b = book()
        setup(b)
        run(b, order)
        state = b.store.get("L1")
        assert state is not None and state.case is not None and state.case.promise is not None
        assert state.case.promise.amount == 2_000


# --------------------------------------------------------------------------- count limits by rank
def test_a_late_report_of_an_earlier_call_makes_the_days_fourth_connected_call_the_violating_one() -> None:
    calls = [contact(T_TICK + (2 + i) * HOUR) for i in range(4)]  # 10:00 ... 13:00 local
    b = book()
    setup(b)
    out = run(b, [calls[1], calls[2], calls[3]])
    assert not [o for o in out if isinstance(o, ev.ComplianceViolation)]
    out = run(b, [calls[0]])  # the 10:00 call, reported last
    (violation,) = [o for o in out if isinstance(o, ev.ComplianceViolation)]
    assert (violation.rule, violation.source_event_id) == ("DAILY_CONNECTED_LIMIT", calls[3].event_id)
    assert violation.event_id == ev.derive_id(calls[3].event_id, "ComplianceViolation", "DAILY_CONNECTED_LIMIT")
    assert violation.occurred_at == calls[3].occurred_at
    state = b.store.get("L1")
    assert state is not None and state.case is not None and state.case.violations == 1


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_records_do_not_depend_on_how_results_interleave_with_repayments(data: st.DataObject) -> None:
    # Calls through the day (some after the cure at 15:00), a promise, and two repayments.
    calls = [contact(T_TICK + h * HOUR, outcome=o) for h, o in
             zip(range(1, 9), ["RIGHT_PARTY_CONTACT", "NO_ANSWER", "PROMISE_TO_PAY", "RIGHT_PARTY_CONTACT",
                               "REFUSED_TO_PAY", "RIGHT_PARTY_CONTACT", "NO_ANSWER", "RIGHT_PARTY_CONTACT"],
                 strict=True)]
    results = [*calls, promise(T_TICK + 90 * MINUTE, 10_000, "2026-02-16")]
    repayments = [cure(T_TICK + 5 * HOUR, amount=10_000), cure(T_TICK + 7 * HOUR, amount=40_000)]
    shuffled = data.draw(st.permutations(results))
    # Repayments keep their own (offset) order; results fall anywhere between them.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), min_size=2, max_size=2)))
    interleaved = [*shuffled[:cuts[0]], repayments[0], *shuffled[cuts[0]:cuts[1]], repayments[1],
                   *shuffled[cuts[1]:]]
    reference = outcome([*results, *repayments], [tick("2026-02-17")])
    assert outcome(interleaved, [tick("2026-02-17")]) == reference


# --------------------------------------------------------------------------- the CBA third-party rule
def test_a_third_party_may_be_called_once_the_debtor_was_unreachable_three_times_in_a_row() -> None:
    b = book()
    setup(b)
    misses = [contact(T_TICK + h * HOUR, outcome="NO_ANSWER") for h in (1, 2, 3)]
    out = run(b, [*misses, contact(T_TICK + 4 * HOUR, party="THIRD_PARTY", outcome="RIGHT_PARTY_CONTACT"),
                  tick("2026-02-15")])  # the verdict comes at the barrier tick
    assert not [o for o in out if isinstance(o, ev.ComplianceViolation)]
    debtor = b.debtor("C1")
    assert debtor is not None and not debtor.held  # judged, not still waiting


def test_a_third_party_called_before_the_debtor_was_unreachable_three_times_is_a_violation() -> None:
    b = book()
    setup(b)
    calls = [contact(T_TICK + HOUR, outcome="NO_ANSWER"), contact(T_TICK + 2 * HOUR, outcome="RIGHT_PARTY_CONTACT"),
             contact(T_TICK + 3 * HOUR, outcome="NO_ANSWER")]
    third_party = contact(T_TICK + 4 * HOUR, party="THIRD_PARTY", outcome="RIGHT_PARTY_CONTACT")
    assert not [o for o in run(b, [*calls, third_party]) if isinstance(o, ev.ComplianceViolation)]
    out = run(b, [tick("2026-02-15")])  # the barrier: judged with every call counted before it
    assert [(o.rule, o.source_event_id) for o in out if isinstance(o, ev.ComplianceViolation)] == [
        ("THIRD_PARTY_CONTACT", third_party.event_id)]


# --------------------------------------------------------------------------- times that cannot be trusted
def test_a_result_timed_after_its_kafka_timestamp_plus_the_skew_is_future_time() -> None:
    published = T_TICK + HOUR
    skew = 300_000
    assert future_time_problem(contact(published + skew), published, skew) is None
    problem = future_time_problem(contact(published + skew + 1), published, skew)
    assert problem is not None and "attempted_at" in problem and "clock skew of 300000 ms" in problem
    assert future_time_problem(dispute(published + skew + 1), published, skew) is not None
    assert future_time_problem(cure(published + 10 * skew), published, skew) is None  # only agency results


def test_one_report_dated_2099_cannot_switch_off_the_limits_because_it_never_counts() -> None:
    far = contact(int(dt.datetime(2099, 1, 1, tzinfo=dt.UTC).timestamp() * 1000))
    assert future_time_problem(far, T_TICK + HOUR, 300_000) is not None  # the processor dead-letters it
    b = book()
    setup(b)
    out = run(b, [contact(T_TICK + h * HOUR) for h in range(1, 6)])
    assert [o.rule for o in out if isinstance(o, ev.ComplianceViolation)] == ["DAILY_CONNECTED_LIMIT"] * 2


# --------------------------------------------------------------------------- corrections
def test_a_record_that_broke_the_contract_is_not_recorded_and_its_corrected_form_is_applied() -> None:
    b = book()
    setup(b)
    bad = ev.RepaymentReceived("fix-me", T_TICK + HOUR, "L1", "PAY-X", 50_000, "USD", dt.date(2026, 2, 14),
                               "BANK_TRANSFER")
    out = run(b, [bad])
    assert [r.reason for r in out if isinstance(r, ev.Rejected)] == ["CONTRACT_VIOLATION"]
    fixed = ev.RepaymentReceived("fix-me", T_TICK + HOUR, "L1", "PAY-X", 50_000, "CNY", dt.date(2026, 2, 14),
                                 "BANK_TRANSFER")
    out = run(b, [fixed])
    assert [type(o).__name__ for o in out if isinstance(o, ev.CaseClosed)] == ["CaseClosed"]


def test_a_kept_record_rejected_when_its_loan_opens_is_not_recorded_either() -> None:
    b = book()
    early = repayment("PAY-Y", 1_000, loan_id="L7", currency="USD", event_id="kept")
    run(b, [early])
    out = run(b, [opened(loan_id="L7")])
    assert [r.reason for r in out if isinstance(r, ev.Rejected)] == ["CONTRACT_VIOLATION"]
    out = run(b, [repayment("PAY-Y", 1_000, loan_id="L7", currency="CNY", event_id="kept")])
    state = b.store.get("L7")
    assert state is not None and [r.payment_id for r in state.repayments] == ["PAY-Y"]
    assert not [r for r in out if isinstance(r, ev.Rejected)]
