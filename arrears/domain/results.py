"""What agencies report and the lender's commands, applied to a case (SPEC §4, §6). Pure.

Every result is judged against the case **as it stood at the result's own time**
(``attempted_at`` for a contact, ``occurred_at`` for the rest), never against whatever
happened to be applied before it arrived:

* a result counts only from the agency that held the named work order at that time, on a
  case not yet closed then; anything else is ``NOT_ASSIGNED``;
* a contact reported by an agency that held the named work order at some time is always
  recorded against the case (it happened) and judged by its time: made after the work
  order ended or the case closed it is an ``UNAUTHORIZED_CONTACT``, made while the case was
  on hold a ``CONTACT_ON_HOLD``. When the case's history changes later with an earlier
  time (a cure or a dispute reported late), its recorded contacts are judged again and
  whatever the new judgement adds is emitted (:func:`rejudge`);
* every contact also counts in the debtor's budget, whose count limits are decided by rank
  in time order (:func:`arrears.domain.compliance.budget_findings`).

Violation ids derive from the contact's event id and the rule, and carry the contact's
``occurred_at``: the same violation is the same record whichever order found it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from . import compliance, treatments
from . import events as ev
from .agencies import recall
from .cases import Case, Hold, PromiseRecord, WorkOrder
from .state import NOT_ASSIGNED, NOT_HELD, Context, LoanState, Step

# Outcomes of a contact attempt that reached someone / the debtor (for agency KPIs).
REACHED = frozenset({"RIGHT_PARTY_CONTACT", "WRONG_PARTY", "REFUSED_TO_PAY", "PROMISE_TO_PAY", "CALLBACK_REQUESTED"})
RIGHT_PARTY = frozenset({"RIGHT_PARTY_CONTACT", "REFUSED_TO_PAY", "PROMISE_TO_PAY", "CALLBACK_REQUESTED"})
_DAY_MS = 86_400_000
_EPOCH = dt.date(1970, 1, 1)


def result_time(result: ev.AgencyResult) -> int:
    """The instant a result is judged at: when the contact was made, or when the rest happened."""
    return result.attempted_at if isinstance(result, ev.ContactAttempted) else result.occurred_at


def future_time_problem(event: ev.InputEvent, published_at_ms: int, skew_ms: int) -> str | None:
    """Why an agency result cannot be trusted in time (SPEC §4 FUTURE_TIME), or None.

    A result timed later than its Kafka timestamp plus the allowed clock skew claims to have
    happened after it was published: it would move every time window it touches.
    """
    if not isinstance(event, ev.AgencyResult.__args__) or published_at_ms <= 0:
        return None
    at = result_time(event)
    if at <= published_at_ms + skew_ms:
        return None
    field = "attempted_at" if isinstance(event, ev.ContactAttempted) else "occurred_at"
    return (f"{field} {_iso(at)} is later than the record's Kafka timestamp {_iso(published_at_ms)} "
            f"plus the allowed clock skew of {skew_ms} ms")


def apply_result(state: LoanState, result: ev.AgencyResult, ctx: Context, step: Step) -> LoanState:
    """Apply one agency result (judged at its own time); returns the new state."""
    found = state.find_case(result.case_id)
    case = found if isinstance(found, Case) else None
    order = case.work_order(result.work_order_id, result.agency_id) if case is not None else None
    if isinstance(result, ev.ContactAttempted):
        return _contact(state, result, case, order, ctx, step)
    at = result.occurred_at
    if case is None or order is None or not case.held_at(order, at):
        step.reject(result, _not_assigned(result, case, order), NOT_ASSIGNED)
        return state
    if isinstance(result, ev.PromiseToPay):
        return _promise(state, case, result, ctx)
    if isinstance(result, ev.SettlementProposed):  # §10 hook
        return treatments.propose_settlement(state, case, result, ctx, step)
    if not case.is_open:
        return state  # the agency held it then; a closed case takes no more holds or returns
    if isinstance(result, ev.CaseReturned):
        if case.assignment is None or case.assignment.work_order_id != result.work_order_id:
            return state  # that assignment has already ended
        # Placed again at the next tick, with another agency when one is eligible (SPEC §5).
        return state.with_case(recall(state, case, "RETURNED", step))
    return _hold(state, case, result, step)


def _not_assigned(result: ev.AgencyResult, case: Case | None, order: WorkOrder | None) -> str:
    if case is None:
        return f"{result.agency_id} reported on case {result.case_id}, which this loan does not have"
    if order is None:
        return f"{result.agency_id} never held work order {result.work_order_id} of case {result.case_id}"
    return (f"{result.agency_id} did not hold work order {result.work_order_id} of open case {result.case_id} "
            f"at {_iso(result_time(result))}")


def _promise(state: LoanState, case: Case, result: ev.PromiseToPay, ctx: Context) -> LoanState:
    made_on = _local_date(result.occurred_at, _timezone(state, ctx), ctx.rules.policy.default_timezone)
    promise = PromiseRecord(result.agency_id, result.promised_amount, result.promised_date, 0, result.event_id,
                            made_on, result.occurred_at)
    current = case.promise
    state = state.with_tally(result.agency_id, promises=1)
    if current is not None and (current.occurred_at, current.event_id) > (promise.occurred_at, promise.event_id):
        return state  # a later promise already stands
    return state.with_case(replace(case, promise=promise))


def _hold(state: LoanState, case: Case, result: ev.AgencyResult, step: Step) -> LoanState:
    reason = ev.HOLD_REASONS[type(result)]
    at = result.occurred_at
    holds = (*case.holds, Hold(reason, at))
    ceased = case.cease_contact or reason == "CEASE_CONTACT"
    if case.hold_reason is not None:  # already on hold: the new request is on record too
        return state.with_case(replace(case, holds=holds, cease_contact=ceased))
    step.emit(ev.CaseHeld(
        event_id=step.id("CaseHeld", case.case_id), occurred_at=step.occurred_at, case_id=case.case_id,
        loan_id=state.loan_id, business_date=step.date, hold_reason=reason,
    ))
    case = recall(state, case, "HOLD", step)
    return state.with_case(replace(case, hold_reason=reason, cease_contact=ceased, holds=holds))


# --------------------------------------------------------------------------- contacts
def _contact(state: LoanState, attempt: ev.ContactAttempted, case: Case | None, order: WorkOrder | None,
             ctx: Context, step: Step) -> LoanState:
    record = compliance.ContactRecord.from_event(attempt)
    recorded = case is not None and order is not None
    _count_in_budget(state, attempt, recorded, ctx, step)
    if case is None or order is None:
        on_hold, ceased = case.on_hold_at(record.attempted_at) if case is not None else (False, False)
        findings = compliance.judge_contact(record, ctx.rules.policy, _timezone(state, ctx), authorized=False,
                                            on_hold=on_hold, ceased=ceased)
        state, _ = _flag(state, frozenset(), record, findings, step)  # judged once: the agency never held it
        step.reject(attempt, _not_assigned(attempt, case, order), NOT_ASSIGNED)
        return state
    reached = attempt.outcome in REACHED
    right_party = attempt.outcome in RIGHT_PARTY and attempt.party == "DEBTOR"
    state = state.with_tally(attempt.agency_id, attempts=1, contacts=int(reached),
                             right_party_contacts=int(right_party))
    last = record.attempted_at if case.last_contact_at is None else max(case.last_contact_at, record.attempted_at)
    case = replace(case, contact_attempts=case.contact_attempts + 1, last_contact_at=last,
                   contacts=(*case.contacts, record) if case.is_open else case.contacts)
    state = state.with_case(case)
    return _judge_on_case(state, case, record, ctx, step)


def _count_in_budget(state: LoanState, attempt: ev.ContactAttempted, recorded: bool, ctx: Context,
                     step: Step) -> None:
    """Send the attempt to its debtor's budget (every loan of the debtor counts together: SPEC §6)."""
    customer = state.account.customer_id if state.account else f"loan:{state.loan_id}"
    step.emit(ev.ContactCounted(attempt, customer, state.loan_id, _timezone(state, ctx), ctx.business_date,
                                recorded))


def apply_verdict(state: LoanState, verdict: ev.BudgetVerdict, step: Step) -> LoanState:
    """The debtor's budget found one of this loan's attempts broke a count rule: count it."""
    state = state.with_tally(verdict.agency_id, violations=1)
    if not verdict.recorded:
        return state
    case = state.find_case(verdict.case_id)
    if not isinstance(case, Case):
        return state
    return state.with_case(replace(case, violations=case.violations + 1))


def _judge_on_case(state: LoanState, case: Case, record: compliance.ContactRecord, ctx: Context,
                   step: Step) -> LoanState:
    """Judge a contact recorded on *case* against the case's history at the contact's time."""
    order = case.work_order(record.work_order_id, record.agency_id)
    at = record.attempted_at
    authorized = order is not None and case.held_at(order, at)
    on_hold, ceased = case.on_hold_at(at)
    findings = compliance.judge_contact(record, ctx.rules.policy, _timezone(state, ctx), authorized=authorized,
                                        on_hold=on_hold, ceased=ceased)
    if not findings:
        return state
    state, added = _flag(state, case.flagged, record, findings, step)
    if not added:
        return state
    found = state.find_case(case.case_id)
    assert isinstance(found, Case)
    return state.with_case(replace(found, flagged=found.flagged | added, violations=found.violations + len(added)))


def rejudge(state: LoanState, ctx: Context, step: Step) -> LoanState:
    """Judge the current case's recorded contacts again after its history changed.

    Only additions come out (violations are never withdrawn). A closed case keeps no
    contacts afterwards: its history cannot change any more.
    """
    case = state.case
    if case is None or not case.contacts:
        return state
    for record in case.contacts:
        current = state.case
        assert current is not None
        state = _judge_on_case(state, current, record, ctx, step)
    if state.case is not None and not state.case.is_open:
        state = replace(state, case=replace(state.case, contacts=()))
    return state


def _flag(state: LoanState, already: frozenset[str], record: compliance.ContactRecord,
          findings: list[compliance.Finding], step: Step) -> tuple[LoanState, frozenset[str]]:
    """Emit the findings not in *already*; returns the state (agency tally counted) and their keys."""
    added = []
    for finding in findings:
        key = f"{record.event_id}|{finding.rule}"
        if key in already:
            continue
        added.append(key)
        step.emit(ev.ComplianceViolation(
            event_id=ev.derive_id(record.event_id, "ComplianceViolation", finding.rule),
            occurred_at=record.occurred_at, case_id=record.case_id, loan_id=state.loan_id,
            agency_id=record.agency_id, rule=finding.rule, details=finding.details, source_event_id=record.event_id,
        ))
    if added:
        state = state.with_tally(record.agency_id, violations=len(added))
    return state, frozenset(added)


# --------------------------------------------------------------------------- commands
def apply_release(state: LoanState, command: ev.ReleaseCase, ctx: Context, step: Step) -> LoanState:
    case = state.open_case
    if case is None or case.case_id != command.case_id or case.hold_reason is None:
        step.reject(command, f"case {command.case_id} is not an open case on hold", NOT_HELD)
        return state
    step.emit(ev.CaseReleased(
        event_id=step.id("CaseReleased", case.case_id), occurred_at=step.occurred_at, case_id=case.case_id,
        loan_id=state.loan_id, business_date=step.date, hold_reason=case.hold_reason,
    ))
    # The lender's release is its decision to work the case again, cease request included.
    holds = tuple(replace(h, end=step.occurred_at) if h.end is None else h for h in case.holds)
    # Assignable again: placed at the next tick (SPEC §5: placement sees the whole book).
    return state.with_case(replace(case, hold_reason=None, cease_contact=False, holds=holds))


# --------------------------------------------------------------------------- promises
def resolve_promise(state: LoanState, case: Case, step: Step) -> tuple[LoanState, Case]:
    """At the first tick after the promised date: kept if repayments valued from the promise's
    local date to the promised date (inclusive) reach the amount (SPEC §4)."""
    promise = case.promise
    if promise is None or step.date <= promise.date:
        return state, case
    if promise.made_on is not None:
        paid = sum(r.amount for r in state.repayments
                   if not r.reversed and promise.made_on <= r.value_date <= promise.date)
    else:  # a promise stored by an older version: repayments since it was captured
        paid = sum(r.amount for r in state.repayments[promise.repayments_seen:] if not r.reversed)
    kept = paid >= promise.amount
    cls = ev.PromiseKept if kept else ev.PromiseBroken
    step.emit(cls(
        event_id=step.id(cls.record, case.case_id, promise.event_id), occurred_at=step.occurred_at,
        case_id=case.case_id, loan_id=state.loan_id, business_date=step.date, agency_id=promise.agency_id,
        promised_amount=promise.amount, promised_date=promise.date, paid_amount=paid,
    ))
    state = state.with_tally(promise.agency_id, promises_kept=int(kept), promises_broken=int(not kept))
    return state, replace(case, promise=None)


# --------------------------------------------------------------------------- helpers
def _timezone(state: LoanState, ctx: Context) -> str:
    return state.account.customer.timezone if state.account else ctx.rules.policy.default_timezone


def _horizon(ctx: Context) -> int:
    """The earliest attempted_at the budget still needs (by business date: every run agrees)."""
    if ctx.business_date is None:
        return -(2**62)
    day = (ctx.business_date - _EPOCH).days - ctx.rules.late_report_days
    return day * _DAY_MS


def _local_date(at_ms: int, timezone: str, default: str) -> dt.date:
    zone, _ = compliance._resolve_zone(timezone, default)
    return dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC).astimezone(zone).date()


def _iso(at_ms: int) -> str:
    try:
        return dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{at_ms} ms"
