"""Treatments and agency economics on a loan (SPEC §10): pauses, settlements, recoveries. Pure, no Kafka."""

from __future__ import annotations

import datetime as dt
import itertools

from builders import installment, now, opened, repayment, reversal, tick
from test_agency_rules import CONFIG, m2_case, of, run

from arrears.config import parse_config
from arrears.domain import events as ev
from arrears.domain.pauses import OPEN_ENDED
from arrears.domain.pipeline import Pipeline

D = dt.date.fromisoformat
_ids = itertools.count()
TREATED = {
    **CONFIG,
    "agencies": [{**a, "commission": {"M2": 0.15, "M3": 0.2, "M4": 0.25}} for a in CONFIG["agencies"]],
    "settlements": {"max_discount": {"M2": 0.10, "M3": 0.20, "M4": 0.40}, "approval_above": 0.15},
}


def book(config: dict | None = None) -> Pipeline:
    """Every stage of the rules (placement included) over one partition."""
    return Pipeline(parse_config(config or TREATED).rules(6))


def pause(from_date: str, until: str | None = None, loan_id: str = "L1") -> ev.PauseDelinquency:
    return ev.PauseDelinquency(f"pause-{next(_ids)}", now(), loan_id, D(from_date), D(until) if until else None,
                               "hardship", "ops-lead")


def resume(on_date: str, loan_id: str = "L1") -> ev.ResumeDelinquency:
    return ev.ResumeDelinquency(f"resume-{next(_ids)}", now(), loan_id, D(on_date), "ops-lead")


def propose(work_order: ev.WorkOrderIssued | tuple[str, str], amount: int, pay_by: str,
            case_id: str = "L1:1") -> ev.SettlementProposed:
    agency, order = ((work_order.agency_id, work_order.work_order_id) if isinstance(work_order, ev.WorkOrderIssued)
                     else work_order)
    return ev.SettlementProposed(f"offer-{next(_ids)}", now(), agency, case_id, order, amount, D(pay_by))


def decide(cls: type, settlement_id: str, by: str, case_id: str = "L1:1") -> ev.SettlementDecision:
    return cls(f"decision-{next(_ids)}", now(), "L1", case_id, settlement_id, by)  # type: ignore[no-any-return]


def last_state(outputs: list[ev.Output]) -> ev.CaseState:
    return of(outputs, ev.CaseState)[-1]


def kinds(outputs: list[ev.Output]) -> list[str]:
    return [type(o).__name__ for o in outputs if not isinstance(o, ev.CaseState)]


# --------------------------------------------------------------------------- pauses
def test_a_backdated_pause_lowers_dpd_at_once_and_recalls_the_assigned_case() -> None:
    b = book()
    case_id, work_order = m2_case(b)  # 2026-02-14: DPD 35, M2, with an agency
    out = run(b, pause("2026-01-25"))  # a hardship the lender learned of 20 days late, open-ended
    (paused,) = of(out, ev.DelinquencyPaused)
    assert (paused.case_id, paused.dpd, paused.bucket, paused.until_date) == (case_id, 15, "M1", None)
    (recalled,) = of(out, ev.CaseRecalled)
    assert (recalled.reason, recalled.work_order_id) == ("HOLD", work_order.work_order_id)
    assert of(out, ev.WorkOrderCancelled)[0].reason == "HOLD"
    state = last_state(out)
    assert (state.status, state.dpd, state.bucket, state.paused_until) == ("OPEN", 15, "M1", OPEN_ENDED)
    assert not of(out, ev.CaseDelinquencyChanged)  # the pause reports the new figures itself


def test_a_paused_case_neither_escalates_nor_goes_to_an_agency_until_its_pause_ends() -> None:
    b = book()
    m2_case(b)
    run(b, pause("2026-02-14", "2026-03-20"))
    during = run(b, tick("2026-02-20"), tick("2026-03-10"), tick("2026-03-20"))
    assert not of(during, ev.CaseDelinquencyChanged) and not of(during, ev.CaseAssigned)
    assert {s.dpd for s in of(during, ev.CaseState)} <= {35}  # frozen at the pause's first day
    out = run(b, tick("2026-03-21"))  # the first day that counts again
    (resumed,) = of(out, ev.DelinquencyResumed)
    assert (resumed.on_date, resumed.requested_by, resumed.dpd) == (D("2026-03-21"), None, 35)
    assert of(out, ev.CaseAssigned) and last_state(out).paused_until is None
    later = run(b, tick("2026-04-20"))  # 35 + 30 days: M3 now
    assert of(later, ev.CaseDelinquencyChanged)[0].bucket == "M3"


def test_a_resume_frees_the_case_for_the_next_placement_and_a_backdated_one_counts_the_days_again() -> None:
    b = book()
    m2_case(b)
    run(b, pause("2026-02-14"), tick("2026-03-01"))
    out = run(b, resume("2026-02-20"))  # the debtor was back at work on the 20th
    (resumed,) = of(out, ev.DelinquencyResumed)
    assert (resumed.dpd, resumed.requested_by, resumed.case_id) == (35 + 9, "ops-lead", "L1:1")
    assert not of(out, ev.CaseAssigned)  # agencies are given cases by placement, at ticks (SPEC §5)
    assert last_state(out).paused_until is None
    following = run(b, tick("2026-03-02"))
    assert of(following, ev.CaseAssigned)
    assert not of(following, ev.DelinquencyResumed)  # announced once


def test_no_case_opens_while_a_loan_is_paused_and_its_days_do_not_count_after() -> None:
    b = book({**TREATED, "grace_days": 5})
    run(b, opened(), installment(1, "2026-01-10"), pause("2026-01-12", "2026-01-31"))
    quiet = run(b, tick("2026-01-20"), tick("2026-01-31"))
    assert not of(quiet, ev.CaseOpened)
    assert not of(run(b, tick("2026-02-02")), ev.CaseOpened)  # Jan 10, 11 and Feb 1 count: DPD 3
    out = run(b, tick("2026-02-05"))  # DPD 6 > grace 5
    (case,) = of(out, ev.CaseOpened)
    assert (case.dpd, case.bucket) == (6, "M1")
    assert b.store.get("L1").wake_date(5) == dt.date.min  # an open case is looked at every tick


def test_a_loan_without_a_case_wakes_when_its_pause_ends_and_hears_of_it() -> None:
    b = book()
    run(b, opened(), installment(1, "2026-03-10"), tick("2026-01-05"))
    out = run(b, pause("2026-01-05", "2026-01-09"))
    (paused,) = of(out, ev.DelinquencyPaused)
    assert paused.case_id is None and paused.dpd == 0
    assert b.store.get("L1").wake_date(0) == D("2026-01-10")
    (resumed,) = of(run(b, tick("2026-01-12")), ev.DelinquencyResumed)
    assert (resumed.case_id, resumed.on_date) == (None, D("2026-01-10"))


def test_a_pause_that_begins_later_recalls_the_case_on_its_first_day() -> None:
    b = book()
    m2_case(b)
    out = run(b, pause("2026-02-20", "2026-02-28"))
    assert of(out, ev.DelinquencyPaused) and not of(out, ev.CaseRecalled)
    assert not of(run(b, tick("2026-02-19")), ev.CaseRecalled)
    out = run(b, tick("2026-02-21"))
    assert of(out, ev.CaseRecalled)[0].reason == "HOLD"
    assert last_state(out).paused_until == D("2026-02-28")


def test_a_resume_of_a_loan_without_a_pause_and_an_inverted_pause_are_dead_lettered() -> None:
    b = book()
    m2_case(b)
    (rejected,) = of(run(b, resume("2026-02-14")), ev.Rejected)
    assert rejected.reason == "NOT_PAUSED"
    bad = ev.PauseDelinquency("bad-pause", now(), "L1", D("2026-02-10"), D("2026-02-01"), "typo", "ops")
    (rejected,) = of(run(b, bad), ev.Rejected)
    assert rejected.reason == "CONTRACT_VIOLATION" and "until_date" in rejected.detail


def test_pauses_and_repayments_between_two_ticks_give_the_same_figures_in_either_order() -> None:
    finals = []
    for order in ((0, 1, 2), (2, 1, 0), (1, 2, 0)):
        b = book()
        m2_case(b)
        inputs = [pause("2026-02-01", "2026-02-10"), repayment("P1", 2_000, value_date="2026-02-14"),
                  pause("2026-02-05", "2026-02-12")]
        run(b, *(inputs[i] for i in order))
        run(b, tick("2026-02-20"))
        case = b.store.get("L1").case
        finals.append((case.dpd, case.bucket, case.overdue_amount, case.paused_until))
    assert finals[0] == finals[1] == finals[2] == (41 - 12, "M1", 8_000, None)


# --------------------------------------------------------------------------- settlements
def test_a_work_order_tells_the_agency_the_settlement_limits_of_its_case() -> None:
    _, work_order = m2_case(book())
    terms = work_order.settlement_policy
    assert terms is not None
    assert (terms.max_discount, terms.approval_above, terms.outstanding_amount, terms.min_amount) == (
        0.10, 0.15, 20_000, 18_000)
    _, plain = m2_case(book(CONFIG))
    assert plain.settlement_policy is None  # no settlements configured


def test_a_settlement_within_the_limit_is_approved_and_fulfilled_by_repayments_valued_up_to_pay_by() -> None:
    b = book()
    case_id, work_order = m2_case(b)
    out = run(b, propose(work_order, 18_000, "2026-02-28"))  # 10% of 20,000 outstanding: M2's limit
    (approved,) = of(out, ev.SettlementApproved)
    assert (approved.settlement_id, approved.approved_by, approved.discount) == (f"{case_id}:S1", "policy", 0.1)
    out = run(b, repayment("P1", 9_000, value_date="2026-02-15"))
    assert not of(out, ev.SettlementFulfilled) and not of(out, ev.CaseClosed)  # overdue 1,000 still
    out = run(b, repayment("P2", 9_000, value_date="2026-02-28"))
    (fulfilled,) = of(out, ev.SettlementFulfilled)
    assert (fulfilled.paid_amount, fulfilled.agency_id) == (18_000, work_order.agency_id)
    (closed,) = of(out, ev.CaseClosed)
    assert (closed.reason, closed.settlement_id) == ("PAID_OFF", f"{case_id}:S1")
    # The lender accepted the payoff: the forgiven installment never opens another case.
    assert not of(run(b, tick("2026-03-02"), tick("2026-04-30")), ev.CaseOpened)
    assert b.store.get("L1").wake_date(0) is None


def test_a_repayment_valued_after_pay_by_does_not_count_and_the_settlement_breaks_at_the_next_tick() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, propose(work_order, 18_500, "2026-02-20"))
    out = run(b, repayment("P1", 5_000, value_date="2026-02-20"), repayment("P2", 13_500, value_date="2026-02-21"))
    assert not of(out, ev.SettlementFulfilled)  # P2 is valued a day late
    assert not of(run(b, tick("2026-02-20")), ev.SettlementBroken)  # pay_by itself: not yet
    out = run(b, tick("2026-02-21"))
    (broken,) = of(out, ev.SettlementBroken)
    assert (broken.amount, broken.paid_amount) == (18_500, 5_000)
    assert not of(out, ev.CaseClosed)  # the case goes on as before


def test_a_discount_above_the_threshold_waits_for_a_person_and_the_agency_cannot_approve_it() -> None:
    b = book()
    case_id, work_order = m2_case(b)
    run(b, tick("2026-03-20"))  # DPD 69: M3, up to 20% with approval above 15%
    order = b.store.get("L1").case.assignment
    out = run(b, propose((order.agency_id, order.work_order_id), 16_000, "2026-04-10"))  # 20% of 20,000
    (pending,) = of(out, ev.SettlementPending)
    assert pending.discount == 0.2
    (refused,) = of(run(b, decide(ev.ApproveSettlement, pending.settlement_id, order.agency_id)), ev.Rejected)
    assert refused.reason == "MAKER_CHECKER"
    out = run(b, decide(ev.ApproveSettlement, pending.settlement_id, "credit-officer"))
    (approved,) = of(out, ev.SettlementApproved)
    assert (approved.approved_by, approved.business_date) == ("credit-officer", D("2026-03-20"))
    (again,) = of(run(b, decide(ev.RejectSettlement, pending.settlement_id, "someone")), ev.Rejected)
    assert again.reason == "NOT_PENDING"


def test_a_person_rejects_a_pending_settlement_and_a_new_proposal_supersedes_a_running_one() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, tick("2026-03-20"))
    order = b.store.get("L1").case.assignment
    held = (order.agency_id, order.work_order_id)
    first = of(run(b, propose(held, 16_000, "2026-04-10")), ev.SettlementPending)[0]
    (rejected,) = of(run(b, decide(ev.RejectSettlement, first.settlement_id, "credit-officer")),
                     ev.SettlementRejected)
    assert (rejected.reason, rejected.rejected_by) == ("REJECTED", "credit-officer")
    second = of(run(b, propose(held, 18_000, "2026-04-10")), ev.SettlementApproved)[0]  # 10%
    out = run(b, propose(held, 14_000, "2026-04-10"))  # 30%: above M3's 20%, rejected; the second stands
    assert of(out, ev.SettlementRejected)[0].reason == "ABOVE_MAX_DISCOUNT"
    out = run(b, propose(held, 17_000, "2026-04-15"))  # 15%: approved, supersedes the second
    superseded, = (r for r in of(out, ev.SettlementRejected) if r.reason == "SUPERSEDED")
    assert superseded.settlement_id == second.settlement_id
    assert of(out, ev.SettlementApproved)[0].settlement_id == "L1:1:S4"


def test_only_the_agency_holding_the_case_may_propose() -> None:
    b = book()
    _, work_order = m2_case(b)
    other = "AG2" if work_order.agency_id == "AG1" else "AG1"
    (rejected,) = of(run(b, propose((other, work_order.work_order_id), 19_000, "2026-02-28")), ev.Rejected)
    assert rejected.reason == "NOT_ASSIGNED"


def test_a_case_cured_while_the_debtor_pays_a_settlement_stays_cured_and_the_settlement_is_still_fulfilled() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, propose(work_order, 18_000, "2026-03-10"))
    out = run(b, repayment("P1", 10_000, value_date="2026-02-15"))  # all that was overdue
    assert of(out, ev.CaseClosed)[0].reason == "CURED"
    assert not of(run(b, tick("2026-03-02")), ev.CaseOpened)  # the settlement runs: no new case
    out = run(b, repayment("P2", 8_000, value_date="2026-03-05"))
    assert of(out, ev.SettlementFulfilled) and not of(out, ev.CaseClosed)
    assert not of(run(b, tick("2026-04-01")), ev.CaseOpened)


# --------------------------------------------------------------------------- recoveries and commission
def test_a_repayment_valued_while_an_agency_held_the_case_is_its_recovery_at_the_rate_of_the_bucket_at_assignment(
) -> None:
    b = book()
    case_id, work_order = m2_case(b)
    out = run(b, repayment("P1", 3_333, value_date="2026-02-14"))
    assert not of(out, ev.RecoveryAttributed)  # its day is not over: the case may still change hands today
    out = run(b, tick("2026-02-15"))
    (recovery,) = of(out, ev.RecoveryAttributed)
    assert (recovery.agency_id, recovery.work_order_id, recovery.case_id, recovery.payment_id) == (
        work_order.agency_id, work_order.work_order_id, case_id, "P1")
    assert (recovery.amount, recovery.bucket, recovery.rate, recovery.commission) == (3_333, "M2", 0.15, 500)
    assert recovery.business_date == D("2026-02-14")  # the day it counts for
    run(b, tick("2026-03-20"))  # the case moves to M3: the rate agreed at assignment stays
    out = run(b, repayment("P2", 1_000, value_date="2026-03-19"))  # valued yesterday: attributed at once
    assert of(out, ev.RecoveryAttributed)[0].rate == 0.15
    tally = b.store.get("L1").tally(work_order.agency_id)
    assert (tally.attributed, tally.commission) == (4_333, 650)


def test_a_reversal_takes_back_the_recovery_and_its_commission() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, repayment("P1", 2_000, value_date="2026-02-14"), tick("2026-02-15"))
    (back,) = of(run(b, reversal("P1")), ev.RecoveryReversed)
    assert (back.amount, back.commission, back.payment_id, back.business_date) == (-2_000, -300, "P1",
                                                                                    D("2026-02-15"))
    tally = b.store.get("L1").tally(work_order.agency_id)
    assert (tally.attributed, tally.commission) == (0, 0)
    assert not of(run(b, reversal("P1")), ev.RecoveryReversed)  # a second reversal changes nothing


def test_repayments_valued_outside_the_agency_s_hold_are_nobody_s_recovery_but_the_cure_is() -> None:
    b = book()
    _, work_order = m2_case(b)
    out = run(b, repayment("early", 500, value_date="2026-02-13"), tick("2026-02-16"))  # before assigned_on
    assert not of(out, ev.RecoveryAttributed)
    out = run(b, repayment("cure", 9_500, value_date="2026-02-16"))
    assert of(out, ev.CaseClosed)[0].reason == "CURED"
    (recovery,) = of(run(b, tick("2026-02-17")), ev.RecoveryAttributed)  # the closed case's loan still wakes
    assert (recovery.payment_id, recovery.agency_id) == ("cure", work_order.agency_id)
    assert not of(run(b, repayment("after", 100, value_date="2026-02-17"), tick("2026-02-18")),
                  ev.RecoveryAttributed)


def test_the_same_inputs_replayed_into_a_fresh_book_give_the_same_records() -> None:
    inputs: list[object] = [opened(), installment(1, "2026-01-10"), installment(2, "2026-03-01"), tick("2026-02-14")]
    probe = book()
    (work_order,) = of(run(probe, *inputs), ev.WorkOrderIssued)
    inputs += [propose(work_order, 19_000, "2026-03-05"), repayment("P1", 4_000, value_date="2026-02-14"),
               tick("2026-02-15"), pause("2026-02-01", "2026-02-16"), tick("2026-02-20"), reversal("P1"),
               resume("2026-02-18"), tick("2026-03-06")]
    first, second = run(book(), *inputs), run(book(), *inputs)
    assert first == second
    assert {type(o).__name__ for o in first} >= {"SettlementApproved", "DelinquencyPaused", "RecoveryAttributed",
                                                   "RecoveryReversed", "DelinquencyResumed", "SettlementBroken"}


def test_a_release_while_the_loan_is_paused_leaves_the_case_with_no_agency_until_the_pause_ends() -> None:
    b = book()
    _, work_order = m2_case(b)
    dispute = ev.DisputeRaised("dispute-1", now(), work_order.agency_id, work_order.case_id,
                               work_order.work_order_id, "not mine")
    run(b, dispute, pause("2026-02-14", "2026-02-20"))
    out = run(b, ev.ReleaseCase("release-1", now(), work_order.case_id, "L1", "ops", "resolved"))
    assert of(out, ev.CaseReleased) and not of(out, ev.CaseAssigned)
    assert of(run(b, tick("2026-02-21")), ev.CaseAssigned)


def test_a_pending_settlement_expires_after_pay_by_and_ends_with_a_case_that_cures() -> None:
    b = book()
    _, work_order = m2_case(b)
    run(b, tick("2026-03-20"))  # M3: 20% waits for a person
    order = b.store.get("L1").case.assignment
    held = (order.agency_id, order.work_order_id)
    run(b, propose(held, 16_000, "2026-03-25"))
    (expired,) = of(run(b, tick("2026-03-26")), ev.SettlementRejected)
    assert (expired.reason, expired.rejected_by) == ("EXPIRED", None)
    run(b, propose(held, 16_000, "2026-04-10"))
    out = run(b, repayment("P1", 20_000, value_date="2026-03-26"))
    assert of(out, ev.CaseClosed)[0].reason == "CURED"
    assert [r.reason for r in of(out, ev.SettlementRejected)] == ["CASE_CLOSED"]


def test_a_proposal_made_while_the_agency_held_the_case_but_reported_after_it_closed_is_rejected_case_closed(
) -> None:
    b = book()
    _, work_order = m2_case(b)
    made = now()
    run(b, repayment("P1", 10_000, value_date="2026-02-14"))  # cured
    late = ev.SettlementProposed("late-offer", made, work_order.agency_id, work_order.case_id,
                                 work_order.work_order_id, 9_000, D("2026-02-28"))
    (rejected,) = of(run(b, late), ev.SettlementRejected)
    assert rejected.reason == "CASE_CLOSED"
    after = ev.SettlementProposed("after-offer", now(), work_order.agency_id, work_order.case_id,
                                  work_order.work_order_id, 9_000, D("2026-02-28"))
    assert of(run(b, after), ev.Rejected)[0].reason == "NOT_ASSIGNED"  # made after the close


def test_the_day_of_a_handover_counts_for_the_agency_taking_over() -> None:
    b = book()
    _, work_order = m2_case(b)
    returned = ev.CaseReturned("return-1", now(), work_order.agency_id, work_order.case_id,
                               work_order.work_order_id, "unreachable")
    out = run(b, tick("2026-02-20"), returned, tick("2026-02-21"))  # placed again at the next tick
    (taken,) = of(out, ev.CaseAssigned)
    assert taken.agency_id != work_order.agency_id
    out = run(b, repayment("P1", 1_000, value_date="2026-02-21"), repayment("P0", 1_000, value_date="2026-02-19"))
    assert [r.payment_id for r in of(out, ev.RecoveryAttributed)] == ["P0"]  # its day is over: at once
    out += run(b, tick("2026-02-22"))
    by_payment = {r.payment_id: r.agency_id for r in of(out, ev.RecoveryAttributed)}
    assert by_payment == {"P1": taken.agency_id, "P0": work_order.agency_id}
