"""Cases with agencies (SPEC §5, §6): assignment, work orders, recalls, results, holds, promises."""

from __future__ import annotations

import datetime as dt
import itertools

from builders import installment, now, opened, repayment, tick

from arrears.config import parse_config
from arrears.domain import events as ev
from arrears.domain.pipeline import Pipeline

_ids = itertools.count()
CONFIG = {
    "internal_buckets": ["M1"],
    "agencies": [
        {"id": "AG1", "buckets": ["M2", "M3"], "capacity": 60, "weight": 1, "assignment_days": 30,
         "transport": {"type": "webhook", "url": "https://ag1.example/", "secret_env": "AG1_SECRET"}},
        {"id": "AG2", "buckets": ["M2", "M3", "M4"], "capacity": 60, "weight": 1, "assignment_days": 30,
         "transport": {"type": "webhook", "url": "https://ag2.example/", "secret_env": "AG2_SECRET"}},
    ],
}
HOUR = 3_600_000
T0 = int(dt.datetime(2026, 3, 5, 2, 0, tzinfo=dt.UTC).timestamp() * 1000)  # 10:00 in Shanghai


def book(config: dict | None = None) -> Pipeline:
    """The rules of every stage (loans, debtors' budgets, placement) over one partition."""
    return Pipeline(parse_config(config or CONFIG).rules(6))


def of(outputs: list[ev.Output], cls: type) -> list:
    return [o for o in outputs if isinstance(o, cls)]


def run(b: Pipeline, *steps: object) -> list[ev.Output]:
    out: list[ev.Output] = []
    for step in steps:
        if isinstance(step, ev.Tick):
            out += b.tick(step)
        else:
            loan_id = getattr(step, "loan_id", None) or step.case_id.rsplit(":", 1)[0]  # type: ignore[attr-defined]
            out += b.apply(loan_id, step)
    return out


def m2_case(b: Pipeline) -> tuple[str, ev.WorkOrderIssued]:
    """A loan 35 days late: its case opens in M2 and goes to an agency at once."""
    out = run(b, opened(), installment(1, "2026-01-10"), installment(2, "2026-03-01"), tick("2026-02-14"))
    (work_order,) = of(out, ev.WorkOrderIssued)
    return work_order.case_id, work_order


def result(cls: type, work_order: ev.WorkOrderIssued, **fields: object) -> ev.AgencyResult:
    base = dict(event_id=f"r{next(_ids)}", occurred_at=now(), agency_id=work_order.agency_id,
                case_id=work_order.case_id, work_order_id=work_order.work_order_id)
    return cls(**{**base, **fields})


def contact(work_order: ev.WorkOrderIssued, at: int = T0, **fields: object) -> ev.ContactAttempted:
    values = {"attempted_at": at, "channel": "CALL", "party": "DEBTOR", "outcome": "RIGHT_PARTY_CONTACT", **fields}
    return result(ev.ContactAttempted, work_order, **values)


def test_an_internal_bucket_case_stays_in_house_and_is_assigned_when_it_reaches_an_agency_bucket() -> None:
    b = book()
    out = run(b, opened(), installment(1, "2026-01-10"), tick("2026-01-12"))
    assert of(out, ev.CaseOpened) and not of(out, ev.CaseAssigned)
    out = run(b, tick("2026-02-10"))  # dpd 31: M2
    (assigned,) = of(out, ev.CaseAssigned)
    (issued,) = of(out, ev.WorkOrderIssued)
    assert assigned.agency_id == issued.agency_id and assigned.expires_on == dt.date(2026, 3, 12)
    assert [type(o).__name__ for o in out if not isinstance(o, ev.CaseState)] == [
        "CaseDelinquencyChanged", "CaseAssigned", "WorkOrderIssued"]


def test_a_work_order_carries_only_the_personal_data_the_agency_needs() -> None:
    _, work_order = m2_case(book())
    assert work_order.debtor.national_id_masked == "**************1234"
    assert work_order.debtor.name and work_order.debtor.phone
    assert work_order.emergency_contacts == ()
    assert not hasattr(work_order, "customer_id")
    assert work_order.contact_policy.max_connected_calls_per_day == 3
    policy = work_order.contact_policy
    assert (policy.quiet_hours_start, policy.quiet_hours_end) == ("22:00", "08:00")


def test_the_case_state_names_the_agency_and_work_order() -> None:
    b = book()
    case_id, work_order = m2_case(b)
    state = b.store.get("L1")
    assert state.case.status == "ASSIGNED" and state.case.assignment.work_order_id == work_order.work_order_id
    assert b.portfolio.load[work_order.agency_id] == 1


def test_a_balance_change_updates_the_work_order_and_a_cure_recalls_it() -> None:
    b = book()
    _, work_order = m2_case(b)
    out = run(b, repayment("P1", 1_000))
    (update,) = of(out, ev.WorkOrderUpdated)
    assert (update.overdue_amount, update.work_order_id) == (9_000, work_order.work_order_id)
    out = run(b, repayment("P2", 9_000))
    assert [type(o).__name__ for o in out if not isinstance(o, ev.CaseState)] == [
        "CaseClosed", "CaseRecalled", "WorkOrderCancelled"]
    assert of(out, ev.CaseRecalled)[0].reason == "CLOSED"
    assert b.portfolio.load[work_order.agency_id] == 0


def test_each_tick_tells_the_agency_the_new_dpd() -> None:
    b = book()
    _, work_order = m2_case(b)
    (update,) = of(run(b, tick("2026-02-15")), ev.WorkOrderUpdated)
    assert update.dpd == 36


def test_an_expired_term_is_recalled_and_rotated_to_the_other_agency() -> None:
    b = book()
    _, work_order = m2_case(b)
    out = run(b, tick("2026-03-16"))  # 30 days after 2026-02-14
    (recalled,) = of(out, ev.CaseRecalled)
    (assigned,) = of(out, ev.CaseAssigned)
    assert recalled.reason == "EXPIRED" and assigned.agency_id != work_order.agency_id


def test_a_bucket_no_longer_served_reallocates_the_case() -> None:
    b = book()
    _, work_order = m2_case(b)
    out = run(b, tick("2026-04-11"))  # dpd 91: M4, only AG2 serves it
    if work_order.agency_id == "AG1":
        assert of(out, ev.CaseRecalled)[0].reason in ("REALLOCATED", "EXPIRED")
    assert b.store.get("L1").case.assignment.agency_id == "AG2"


def test_a_contact_by_the_holding_agency_is_recorded_and_judged() -> None:
    b = book()
    _, work_order = m2_case(b)
    out = run(b, contact(work_order), contact(work_order, at=T0 + 14 * HOUR))  # 00:00 local: quiet hours
    (violation,) = of(out, ev.ComplianceViolation)
    assert (violation.rule, violation.agency_id, violation.loan_id) == ("QUIET_HOURS", work_order.agency_id, "L1")
    case = b.store.get("L1").case
    assert (case.contact_attempts, case.violations, case.last_contact_at) == (2, 1, T0 + 14 * HOUR)


def test_a_result_from_an_agency_without_the_work_order_is_rejected_and_a_contact_is_unauthorized() -> None:
    b = book()
    _, work_order = m2_case(b)
    other = "AG2" if work_order.agency_id == "AG1" else "AG1"
    out = run(b, contact(work_order, agency_id=other), result(ev.PromiseToPay, work_order, work_order_id="WO-old",
                                                              promised_amount=100, promised_date=dt.date(2026, 3, 1)))
    assert [r.reason for r in of(out, ev.Rejected)] == ["NOT_ASSIGNED", "NOT_ASSIGNED"]
    assert [v.rule for v in of(out, ev.ComplianceViolation)] == ["UNAUTHORIZED_CONTACT"]
    assert b.store.get("L1").case.contact_attempts == 0 and b.store.get("L1").case.promise is None


def test_results_for_an_unknown_loan_are_rejected() -> None:
    b = book()
    attempt = ev.ContactAttempted("x", 0, "AG1", "NOPE:1", "WO-NOPE:1-1", T0, "CALL", "DEBTOR", "NO_ANSWER")
    out = b.apply("NOPE", attempt)
    assert [r.reason for r in of(out, ev.Rejected)] == ["NOT_ASSIGNED"]
    assert [v.rule for v in of(out, ev.ComplianceViolation)] == ["UNAUTHORIZED_CONTACT"]


def test_a_dispute_holds_and_recalls_the_case_and_a_release_makes_it_assignable_again() -> None:
    b = book()
    case_id, work_order = m2_case(b)
    out = run(b, result(ev.DisputeRaised, work_order, details="not my loan"))
    assert [type(o).__name__ for o in out if not isinstance(o, ev.CaseState)] == [
        "CaseHeld", "CaseRecalled", "WorkOrderCancelled"]
    assert b.store.get("L1").case.status == "HOLD"
    assert not of(run(b, tick("2026-02-15")), ev.CaseAssigned)  # a held case is not reassigned
    late = run(b, contact(work_order))
    assert {v.rule for v in of(late, ev.ComplianceViolation)} == {"CONTACT_ON_HOLD", "UNAUTHORIZED_CONTACT"}
    release = ev.ReleaseCase("rel1", 0, case_id, "L1", "ops", "dispute resolved")
    out = b.apply("L1", release)
    assert [type(o).__name__ for o in out if not isinstance(o, ev.CaseState)] == ["CaseReleased"]
    assert of(out, ev.CaseReleased)[0].hold_reason == "DISPUTE"
    # Assignable again: placement (which sees the whole book) gives it an agency at the next tick.
    out = run(b, tick("2026-02-16"))
    assert [type(o).__name__ for o in out if type(o).__name__.startswith(("Case", "Work"))
            and not isinstance(o, ev.CaseState)] == ["CaseAssigned", "WorkOrderIssued"]


def test_releasing_a_case_that_is_not_held_is_refused() -> None:
    b = book()
    case_id, _ = m2_case(b)
    out = b.apply("L1", ev.ReleaseCase("rel1", 0, case_id, "L1", "ops", "why not"))
    assert [r.reason for r in of(out, ev.Rejected)] == ["NOT_HELD"]


def test_a_returned_case_goes_to_another_agency_at_the_next_tick() -> None:
    b = book()
    _, work_order = m2_case(b)
    out = run(b, result(ev.CaseReturned, work_order, reason="no capacity"))
    assert of(out, ev.CaseRecalled)[0].reason == "RETURNED" and not of(out, ev.CaseAssigned)
    out = run(b, tick("2026-02-15"))
    assert of(out, ev.CaseAssigned)[0].agency_id != work_order.agency_id


def promise(work_order: ev.WorkOrderIssued, amount: int, date: str) -> ev.PromiseToPay:
    return result(ev.PromiseToPay, work_order, promised_amount=amount, promised_date=dt.date.fromisoformat(date))


def test_a_promise_paid_exactly_is_kept_at_the_first_tick_after_its_date() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, promise(work_order, 4_000, "2026-02-20"), repayment("P1", 4_000, value_date="2026-02-20"))
    assert not of(run(b, tick("2026-02-20")), ev.PromiseKept)
    (kept,) = of(run(b, tick("2026-02-21")), ev.PromiseKept)
    assert (kept.promised_amount, kept.paid_amount, kept.agency_id) == (4_000, 4_000, work_order.agency_id)


def test_a_promise_short_by_one_fen_is_broken() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, promise(work_order, 4_000, "2026-02-20"), repayment("P1", 3_999, value_date="2026-02-16"))
    (broken,) = of(run(b, tick("2026-02-22")), ev.PromiseBroken)
    assert broken.paid_amount == 3_999


def test_a_newer_promise_replaces_the_earlier_one() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, promise(work_order, 9_000, "2026-02-16"), promise(work_order, 2_000, "2026-02-25"))
    assert not of(run(b, tick("2026-02-18")), ev.PromiseBroken)
    run(b, repayment("P1", 2_000, value_date="2026-02-24"))
    (kept,) = of(run(b, tick("2026-02-26")), ev.PromiseKept)
    assert kept.promised_amount == 2_000


def test_payments_received_while_assigned_count_as_recovered_for_the_agency() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, repayment("P1", 3_000), contact(work_order))
    totals = b.portfolio.tallies[work_order.agency_id]
    assert (totals["recovered"], totals["assignments"], totals["attempts"], totals["right_party_contacts"]) == (
        3_000, 1, 1, 1)
