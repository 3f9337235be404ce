"""The loan aggregate: ledger and case lifecycle as pure functions (SPEC §4-§6).

``apply_event(state, event, ctx)`` and ``apply_tick(state, tick, ctx)`` return the new state
and the output events, in order. Nothing here reads a clock: the business date comes from
the context (the partition's last applied tick) and from the tick itself.
"""

from __future__ import annotations

from dataclasses import replace

from . import events as ev
from . import treatments
from .agencies import assign, keep_agency_current, needs_agency, recall
from .cases import Case
from .ledger import Figures, Installment, Repayment
from .results import apply_release, apply_result, apply_verdict, rejudge, resolve_promise
from .state import (
    CONTRACT_VIOLATION,
    NOT_ASSIGNED,
    AgencyTally,
    Context,
    LoanState,
    Rules,
    Step,
    event_fingerprint,
)

__all__ = [
    "AgencyTally", "CONTRACT_VIOLATION", "NOT_ASSIGNED", "Context", "LoanState", "Rules", "apply_event",
    "apply_tick", "event_fingerprint",
]

_RESULTS = (ev.ContactAttempted, ev.PromiseToPay, ev.DisputeRaised, ev.ComplaintReceived, ev.CeaseContactRequested,
            ev.CaseReturned, ev.SettlementProposed)
_DECISIONS = (ev.ApproveSettlement, ev.RejectSettlement)


def _contract_problem(state: LoanState, event: ev.InputEvent) -> str | None:
    """Why an event breaks the contract for this loan, or None."""
    currency = state.account.currency if state.account else None
    if isinstance(event, ev.RepaymentReceived):
        if event.amount <= 0:
            return f"amount must be > 0, got {event.amount}"
        if currency is not None and event.currency != currency:
            return f"currency {event.currency} differs from the loan's {currency}"
    elif isinstance(event, ev.InstallmentScheduled):
        if event.installment_no < 1:
            return f"installment_no must be >= 1, got {event.installment_no}"
        if min(event.principal_due, event.interest_due, event.fee_due) < 0:
            return "principal_due, interest_due and fee_due must be >= 0"
        if currency is not None and event.currency != currency:
            return f"currency {event.currency} differs from the loan's {currency}"
    elif isinstance(event, ev.PromiseToPay) and event.promised_amount <= 0:
        return f"promised_amount must be > 0, got {event.promised_amount}"
    return treatments.contract_problem(event)  # §10 hook


# --------------------------------------------------------------------------- events
def apply_event(state: LoanState, event: ev.InputEvent, ctx: Context) -> tuple[LoanState, list[ev.Output]]:
    """Apply one input event of this loan; an event id already applied changes nothing.

    A record that breaks the contract is rejected and *not* recorded as applied, so the same
    event id republished in a corrected form is applied (SPEC §4).
    """
    fingerprint = event_fingerprint(event.event_id)
    if fingerprint in state.applied:
        return state, []
    step = Step(event.event_id, event.occurred_at, ctx.business_date)
    problem = _contract_problem(state, event)
    if problem is not None:
        step.reject(event, problem)
        return state, step.outputs
    before = state
    state = replace(state, applied=state.applied | {fingerprint}, as_of=ctx.business_date or state.as_of)
    state = _apply(state, event, ctx, step)
    state = _settle_if_fulfilled(state, ctx, step)  # §10 hook: an approval may find the money already paid
    if state.case is not before.case:
        state = rejudge(state, ctx, step)
    state = treatments.after_step(state, ctx, step, event)  # §10 hook: spans, recoveries, work-order limits
    return _finish(before, state, step), step.outputs


def _apply(state: LoanState, event: ev.InputEvent, ctx: Context, step: Step) -> LoanState:
    problem = _contract_problem(state, event)
    if problem is not None:
        step.reject(event, problem)
        return state
    if isinstance(event, _RESULTS):
        return apply_result(state, event, ctx, step)
    if isinstance(event, ev.ReleaseCase):
        return apply_release(state, event, ctx, step)
    if isinstance(event, ev.BudgetVerdict):
        return apply_verdict(state, event, step)
    if isinstance(event, _DECISIONS):  # §10 hook
        return treatments.decide_settlement(state, event, ctx, step)
    if isinstance(event, ev.LoanOpened):
        return _open_loan(state, event, ctx, step)
    if state.account is None:
        # Kept until the loan is known (SPEC §4); no case can exist before that.
        return replace(state, waiting=(*state.waiting, event))
    if isinstance(event, ev.LoanClosed):
        return _close_loan(state, event, ctx, step)
    if isinstance(event, ev.PauseDelinquency):  # §10 hooks
        return treatments.apply_pause(state, event, ctx, step)
    if isinstance(event, ev.ResumeDelinquency):
        return treatments.apply_resume(state, event, ctx, step)
    return _apply_ledger(state, event, ctx, step)


def _open_loan(state: LoanState, event: ev.LoanOpened, ctx: Context, step: Step) -> LoanState:
    if state.account is not None:
        # A re-sent LoanOpened refreshes the customer's contact data; the terms stay.
        return replace(state, account=replace(state.account, customer=event.customer))
    waiting = state.waiting
    state = replace(state, account=event, waiting=())
    for held in waiting:  # in arrival order, each as its own cause
        held_step = Step(held.event_id, held.occurred_at, ctx.business_date)
        state = _apply(state, held, ctx, held_step)
        if any(isinstance(o, ev.Rejected) and o.reason == CONTRACT_VIOLATION for o in held_step.outputs):
            # Not applied after all: a corrected record with this id must be applied.
            state = replace(state, applied=state.applied - {event_fingerprint(held.event_id)})
        step.outputs.extend(held_step.outputs)
    return state


def _close_loan(state: LoanState, event: ev.LoanClosed, ctx: Context, step: Step) -> LoanState:
    if state.closed_reason is not None:
        return state
    state = replace(state, closed_reason=event.reason)
    case = state.open_case
    if case is not None:
        state = _close_case(state, case, event.reason, ctx, step)
    return state


def _apply_ledger(state: LoanState, event: ev.LedgerEvent, ctx: Context, step: Step) -> LoanState:
    before = state
    payment_id: str | None = None
    if isinstance(event, ev.InstallmentScheduled):
        installment = Installment(
            event.installment_no, event.due_date, event.principal_due, event.interest_due, event.fee_due
        )
        others = tuple(i for i in state.installments if i.number != event.installment_no)
        state = replace(state, installments=tuple(sorted((*others, installment), key=lambda i: i.number)))
    elif isinstance(event, ev.RepaymentReceived):
        if any(r.payment_id == event.payment_id for r in state.repayments):
            return state  # a re-delivery: the first one stands
        state = _receive(state, event)
        payment_id = event.payment_id
    else:
        known = next((r for r in state.repayments if r.payment_id == event.payment_id), None)
        if known is None:
            if event.payment_id not in state.pending_reversals:
                state = replace(state, pending_reversals=(*state.pending_reversals, event.payment_id))
            return state
        if known.reversed:
            return state
        state = replace(state, repayments=tuple(replace(r, reversed=True) if r is known else r
                                                for r in state.repayments))
        if known.credited_agency is not None:
            state = state.with_tally(known.credited_agency, recovered=-known.amount)
        state = treatments.reverse_recovery(state, event.payment_id, step)  # §10 hook
        payment_id = event.payment_id
    return _after_ledger_change(before, state, ctx, step, payment_id)


def _receive(state: LoanState, event: ev.RepaymentReceived) -> LoanState:
    reversed_early = event.payment_id in state.pending_reversals
    case = state.open_case
    agency = case.assignment.agency_id if case is not None and case.assignment is not None else None
    credited = None if reversed_early else agency
    repayment = Repayment(event.payment_id, event.amount, event.value_date, event.channel, reversed_early, credited)
    state = replace(
        state,
        repayments=(*state.repayments, repayment),
        pending_reversals=tuple(p for p in state.pending_reversals if p != event.payment_id),
    )
    return state.with_tally(credited, recovered=event.amount) if credited else state


def _after_ledger_change(
    before: LoanState, state: LoanState, ctx: Context, step: Step, payment_id: str | None
) -> LoanState:
    state = _settle_if_fulfilled(state, ctx, step)  # §10 hook: before the cure, a settlement pays it off
    case = state.open_case
    if case is None or state.closed_reason is not None:
        return state
    buckets = ctx.rules.buckets
    old = before.figures(ctx.business_date, buckets)
    new = state.figures(ctx.business_date, buckets)
    if new.overdue_amount == 0:
        return _close_case(state, case, "CURED", ctx, step)
    if new.overdue_amount == old.overdue_amount:
        return state
    step.emit(ev.CaseBalanceChanged(
        event_id=step.id("CaseBalanceChanged", case.case_id), occurred_at=step.occurred_at, case_id=case.case_id,
        loan_id=state.loan_id, business_date=step.date, overdue_amount=new.overdue_amount,
        previous_overdue_amount=old.overdue_amount, dpd=new.dpd, bucket=new.bucket, payment_id=payment_id,
    ))
    case = _move(case, new)
    state, case = keep_agency_current(state, case, new, ctx, step, at_tick=False)
    return replace(state, case=case)


def _move(case: Case, fig: Figures) -> Case:
    """The case at new figures, with the bucket now reported (and its path extended)."""
    path = case.path if fig.bucket == case.reported_bucket else (*case.path, fig.bucket)
    return replace(case, reported_bucket=fig.bucket, dpd=fig.dpd, bucket=fig.bucket,
                   overdue_amount=fig.overdue_amount, path=path)


def _settle_if_fulfilled(state: LoanState, ctx: Context, step: Step) -> LoanState:
    """§10: an approved settlement whose repayments reached its amount closes the case PAID_OFF."""
    state, settlement_id = treatments.fulfil(state, step)
    case = state.open_case
    if settlement_id is None or case is None:
        return state
    return _close_case(state, case, "PAID_OFF", ctx, step, settlement_id)


def _close_case(state: LoanState, case: Case, reason: str, ctx: Context, step: Step,
                settlement_id: str | None = None) -> LoanState:
    step.emit(ev.CaseClosed(
        event_id=step.id("CaseClosed", case.case_id), occurred_at=step.occurred_at, case_id=case.case_id,
        loan_id=state.loan_id, business_date=step.date, reason=reason, settlement_id=settlement_id,
    ))
    case = treatments.on_case_closed(state, case, step)  # §10 hook: a pending settlement ends with the case
    case = recall(state, case, "CLOSED", step)
    fig = state.figures(ctx.business_date, ctx.rules.buckets)
    closed = replace(case, closed_on=step.date, close_reason=reason, dpd=fig.dpd, bucket=fig.bucket,
                     overdue_amount=fig.overdue_amount, closed_at=step.occurred_at)
    return replace(state, case=closed)


def _finish(before: LoanState, state: LoanState, step: Step) -> LoanState:
    """Emit the snapshot of every case this step changed as CaseState shows it (one version per step)."""
    if state.account is None:
        return state
    earlier = {c.case_id: c for c in _cases(before)}
    for case in _cases(state):
        old = earlier.get(case.case_id)
        if old is not None and old.visible() == case.visible():
            continue
        version = case.version + 1
        event_id = step.id("CaseState", case.case_id, str(version))
        case = replace(case, version=version, state_event_id=event_id, state_at=step.occurred_at)
        step.emit(case.snapshot(event_id, step.occurred_at, state.loan_id, state.account.customer_id,
                                state.account.currency))
        state = state.with_case(case)
    return state


def _cases(state: LoanState) -> list[Case]:
    cases = [c for c in state.history if isinstance(c, Case)]
    if state.case is not None:
        cases.append(state.case)
    return cases


# --------------------------------------------------------------------------- ticks
def apply_tick(state: LoanState, tick: ev.Tick, ctx: Context) -> tuple[LoanState, list[ev.Output]]:
    """Move this loan to the tick's business date: judge promises, escalate, open, (re)assign."""
    date = tick.business_date
    if state.account is None or (state.as_of is not None and date <= state.as_of):
        return state, []
    step = Step(tick.event_id, tick.occurred_at, date)
    before = state
    state = treatments.tick_pauses(state, ctx, step)  # §10 hook: a pause begins (recall) or ends
    state = treatments.tick_settlement(state, step)  # §10 hook: a settlement past its pay_by
    case = state.case
    if case is not None and not case.is_open:
        state, case = resolve_promise(state, case, step)
        state = replace(state, case=case)
    if state.closed_reason is None:
        fig = state.figures(date, ctx.rules.buckets)
        case = state.open_case
        if case is not None and treatments.is_paused(state):
            state = _keep_paused(state, case, fig, step)
        elif case is not None:
            state = _escalate(state, case, fig, ctx, step)
            if state.case is not case:
                state = rejudge(state, ctx, step)
        elif fig.dpd > ctx.rules.grace_days and fig.oldest_due_date is not None and treatments.may_open_case(state):
            state = _open_case(state, fig, ctx, step)
    state = treatments.after_step(state, ctx, step)  # §10 hook: spans, recoveries, work-order limits
    state = _finish(before, state, step)
    if state != before:
        state = replace(state, as_of=date)
    return state, step.outputs


def apply_placement(state: LoanState, case_id: str, agency_id: str, tick: ev.Tick,
                    ctx: Context) -> tuple[LoanState, list[ev.Output]]:
    """Give the loan's case to the agency placement chose for it at *tick* (SPEC §5)."""
    case = state.open_case
    if case is None or case.case_id != case_id or state.account is None or not needs_agency(case, ctx.rules):
        return state, []
    step = Step(tick.event_id, tick.occurred_at, tick.business_date)
    before = state
    fig = state.figures(tick.business_date, ctx.rules.buckets)
    state, case = assign(state, case, fig, agency_id, ctx, step)
    state = treatments.after_step(replace(state, case=case), ctx, step)  # §10 hook: spans, work-order limits
    state = _finish(before, state, step)
    return state, step.outputs


def _escalate(state: LoanState, case: Case, fig: Figures, ctx: Context, step: Step) -> LoanState:
    if fig.bucket != case.reported_bucket:
        step.emit(ev.CaseDelinquencyChanged(
            event_id=step.id("CaseDelinquencyChanged", case.case_id), occurred_at=step.occurred_at,
            case_id=case.case_id, loan_id=state.loan_id, business_date=step.date, dpd=fig.dpd, bucket=fig.bucket,
            previous_bucket=case.reported_bucket, overdue_amount=fig.overdue_amount,
        ))
    case = _move(case, fig)
    state, case = resolve_promise(state, case, step)
    state, case = keep_agency_current(state, case, fig, ctx, step, at_tick=True)
    return replace(state, case=case)


def _keep_paused(state: LoanState, case: Case, fig: Figures, step: Step) -> LoanState:
    """§10: a paused case does not escalate and goes to no agency; its figures and promise move on."""
    case = replace(case, dpd=fig.dpd, bucket=fig.bucket, overdue_amount=fig.overdue_amount)
    state, case = resolve_promise(state, case, step)
    return replace(state, case=case)


def _open_case(state: LoanState, fig: Figures, ctx: Context, step: Step) -> LoanState:
    assert state.account is not None and fig.oldest_due_date is not None
    number = state.case_count + 1
    case_id = f"{state.loan_id}:{number}"
    step.emit(ev.CaseOpened(
        event_id=step.id("CaseOpened", case_id), occurred_at=step.occurred_at, case_id=case_id,
        loan_id=state.loan_id, business_date=step.date, customer_id=state.account.customer_id, dpd=fig.dpd,
        bucket=fig.bucket, overdue_amount=fig.overdue_amount, currency=state.account.currency,
        oldest_due_date=fig.oldest_due_date,
    ))
    history = state.history
    old = state.case
    if old is not None and old.closed_on is not None and old.close_reason is not None:
        history = (*history, replace(old, contacts=()))
    case = Case(case_id, number, step.date, fig.bucket, fig.dpd, fig.bucket, fig.overdue_amount, path=(fig.bucket,))
    return replace(state, case_count=number, history=history, case=case)

