"""What agencies report and the lender's commands, applied to a case (SPEC §6). Pure.

A result counts only from the agency holding the case's active work order; anything else is
rejected (``NOT_ASSIGNED``), and a contact among them is an ``UNAUTHORIZED_CONTACT``. Every
reported contact is judged by :mod:`arrears.domain.compliance` against the debtor's recent
attempts by every agency; a violating attempt is still recorded (it happened).
"""

from __future__ import annotations

from dataclasses import replace

from . import compliance
from . import events as ev
from .agencies import recall, try_assign
from .cases import Case, PromiseRecord
from .ledger import paid_total
from .state import NOT_ASSIGNED, NOT_HELD, Context, LoanState, Step

# Outcomes of a contact attempt that reached someone / the debtor (for agency KPIs).
REACHED = frozenset({"RIGHT_PARTY_CONTACT", "WRONG_PARTY", "REFUSED_TO_PAY", "PROMISE_TO_PAY", "CALLBACK_REQUESTED"})
RIGHT_PARTY = frozenset({"RIGHT_PARTY_CONTACT", "REFUSED_TO_PAY", "PROMISE_TO_PAY", "CALLBACK_REQUESTED"})
# A late report can still be judged against this much of the past (it only trims what is kept).
LATE_REPORT_MS = 7 * 86_400_000


def _holds(state: LoanState, result: ev.AgencyResult) -> Case | None:
    """The open case the result is about, if the reporting agency holds its active work order."""
    case = state.open_case
    if case is None or case.case_id != result.case_id or case.assignment is None:
        return None
    if case.assignment.work_order_id != result.work_order_id or case.assignment.agency_id != result.agency_id:
        return None
    return case


def apply_result(state: LoanState, result: ev.AgencyResult, ctx: Context, step: Step) -> tuple[LoanState, Case | None]:
    """Apply one agency result; returns the new state and the changed case (None if unchanged)."""
    case = _holds(state, result)
    if isinstance(result, ev.ContactAttempted):
        state, violations = _judge_contact(state, result, case, ctx, step)
        if case is None:
            step.reject(result, _not_assigned(result), NOT_ASSIGNED)
            return state, None
        return _record_contact(state, case, result, violations, ctx)
    if case is None:
        step.reject(result, _not_assigned(result), NOT_ASSIGNED)
        return state, None
    if isinstance(result, ev.PromiseToPay):
        promise = PromiseRecord(result.agency_id, result.promised_amount, result.promised_date,
                                len(state.repayments), result.event_id)
        return state.with_tally(result.agency_id, promises=1), replace(case, promise=promise)
    if isinstance(result, ev.CaseReturned):
        fig = state.figures(ctx.business_date, ctx.rules.buckets)
        case = recall(state, case, "RETURNED", step)
        return try_assign(state, case, fig, ctx, step, releasing=result.agency_id)
    hold_reason = ev.HOLD_REASONS[type(result)]
    step.emit(ev.CaseHeld(
        event_id=step.id("CaseHeld", case.case_id), occurred_at=step.occurred_at, case_id=case.case_id,
        loan_id=state.loan_id, business_date=step.date, hold_reason=hold_reason,
    ))
    case = recall(state, case, "HOLD", step)
    ceased = case.cease_contact or hold_reason == "CEASE_CONTACT"
    return state, replace(case, hold_reason=hold_reason, cease_contact=ceased)


def _not_assigned(result: ev.AgencyResult) -> str:
    return (f"{result.agency_id} does not hold an active work order {result.work_order_id} "
            f"for open case {result.case_id}")


def _judge_contact(state: LoanState, attempt: ev.ContactAttempted, case: Case | None, ctx: Context,
                   step: Step) -> tuple[LoanState, int]:
    """Check the attempt against the rules; every finding is a ComplianceViolation."""
    this_case = state.case if state.case is not None and state.case.case_id == attempt.case_id else None
    policy = ctx.rules.policy
    timezone = state.account.customer.timezone if state.account else policy.default_timezone
    findings = compliance.check_contact(
        compliance.ContactRecord.from_event(attempt), state.contacts, policy, timezone,
        authorized=case is not None,
        on_hold=this_case is not None and this_case.hold_reason is not None,
        ceased=this_case is not None and this_case.cease_contact,
    )
    for finding in findings:
        step.emit(ev.ComplianceViolation(
            event_id=step.id("ComplianceViolation", finding.rule), occurred_at=step.occurred_at,
            case_id=attempt.case_id, loan_id=state.loan_id, agency_id=attempt.agency_id, rule=finding.rule,
            details=finding.details, source_event_id=attempt.event_id,
        ))
    if findings:
        state = state.with_tally(attempt.agency_id, violations=len(findings))
    return state, len(findings)


def _record_contact(state: LoanState, case: Case, attempt: ev.ContactAttempted, violations: int,
                    ctx: Context) -> tuple[LoanState, Case]:
    record = compliance.ContactRecord.from_event(attempt)
    latest = max([attempt.attempted_at, *(c.attempted_at for c in state.contacts)])
    contacts = compliance.prune((*state.contacts, record), latest - LATE_REPORT_MS, ctx.rules.policy)
    reached = attempt.outcome in REACHED
    right_party = attempt.outcome in RIGHT_PARTY and attempt.party == "DEBTOR"
    state = replace(state, contacts=contacts).with_tally(
        attempt.agency_id, attempts=1, contacts=int(reached), right_party_contacts=int(right_party)
    )
    last = attempt.attempted_at if case.last_contact_at is None else max(case.last_contact_at, attempt.attempted_at)
    return state, replace(case, contact_attempts=case.contact_attempts + 1, last_contact_at=last,
                          violations=case.violations + violations)


def apply_release(state: LoanState, command: ev.ReleaseCase, ctx: Context, step: Step) -> tuple[LoanState, Case | None]:
    case = state.open_case
    if case is None or case.case_id != command.case_id or case.hold_reason is None:
        step.reject(command, f"case {command.case_id} is not an open case on hold", NOT_HELD)
        return state, None
    step.emit(ev.CaseReleased(
        event_id=step.id("CaseReleased", case.case_id), occurred_at=step.occurred_at, case_id=case.case_id,
        loan_id=state.loan_id, business_date=step.date, hold_reason=case.hold_reason,
    ))
    # The lender's release is its decision to work the case again, cease request included.
    case = replace(case, hold_reason=None, cease_contact=False)
    fig = state.figures(ctx.business_date, ctx.rules.buckets)
    return try_assign(state, case, fig, ctx, step)


def resolve_promise(state: LoanState, case: Case, step: Step) -> tuple[LoanState, Case]:
    """At the first tick after the promised date: kept if repayments since it reach the amount."""
    promise = case.promise
    if promise is None or step.date <= promise.date:
        return state, case
    paid = paid_total(state.repayments[promise.repayments_seen:])
    kept = paid >= promise.amount
    cls = ev.PromiseKept if kept else ev.PromiseBroken
    step.emit(cls(
        event_id=step.id(cls.record, case.case_id, promise.event_id), occurred_at=step.occurred_at,
        case_id=case.case_id, loan_id=state.loan_id, business_date=step.date, agency_id=promise.agency_id,
        promised_amount=promise.amount, promised_date=promise.date, paid_amount=paid,
    ))
    state = state.with_tally(promise.agency_id, promises_kept=int(kept), promises_broken=int(not kept))
    return state, replace(case, promise=None)
