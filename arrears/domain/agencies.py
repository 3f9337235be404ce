"""A case's life with agencies: assignment, work orders, recalls (SPEC §5). Pure.

Every function takes the loan state and the case being changed and returns the new case;
outputs go to the step. Agencies see the least personal data that lets them work: the
debtor's name, phone, masked national id, province, city and timezone, and emergency
contacts only when the policy allows them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from . import events as ev
from .cases import Assignment, Case, WorkOrder
from .ledger import Figures
from .state import Context, LoanState, Rules, Step


def mask_national_id(national_id: str) -> str:
    """All but the last 4 characters replaced by ``*``; an id of 4 characters or fewer entirely.

    The same rule as :func:`arrears.privacy.mask_national_id` (the domain imports only the
    standard library, so it is written here too; a test keeps the two equal).
    """
    if len(national_id) <= 4:
        return "*" * len(national_id)
    return "*" * (len(national_id) - 4) + national_id[-4:]


def recall(state: LoanState, case: Case, reason: str, step: Step) -> Case:
    """End the case's assignment (CaseRecalled + WorkOrderCancelled); no-op when unassigned."""
    assignment = case.assignment
    if assignment is None:
        return case
    step.emit(ev.CaseRecalled(
        event_id=step.id("CaseRecalled", case.case_id, assignment.work_order_id),
        occurred_at=step.occurred_at, case_id=case.case_id, loan_id=state.loan_id, business_date=step.date,
        agency_id=assignment.agency_id, work_order_id=assignment.work_order_id, reason=reason,
    ))
    step.emit(ev.WorkOrderCancelled(
        event_id=step.id("WorkOrderCancelled", assignment.work_order_id),
        occurred_at=step.occurred_at, work_order_id=assignment.work_order_id, case_id=case.case_id,
        reason=reason, agency_id=assignment.agency_id,
    ))
    return replace(case.with_work_order_ended(step.occurred_at), assignment=None, work_order_figures=None)


def needs_agency(case: Case, rules: Rules) -> bool:
    """Whether the case waits for an agency: open, not on hold, unassigned, in a bucket some agency serves."""
    return (case.is_open and case.assignment is None and case.hold_reason is None
            and case.paused_until is None  # §10: a paused case goes to no agency until its pause ends
            and bool(rules.allocation.eligible(case.bucket)))


def assign(state: LoanState, case: Case, fig: Figures, agency_id: str, ctx: Context,
           step: Step) -> tuple[LoanState, Case]:
    """Give the case to *agency_id* (placement decided it: :mod:`arrears.domain.placement`)."""
    terms = ctx.rules.allocation.terms(agency_id)
    if not needs_agency(case, ctx.rules) or terms is None or fig.oldest_due_date is None or state.account is None:
        return state, case
    number = case.work_orders_issued + 1
    work_order_id = f"WO-{case.case_id}-{number}"
    expires_on = step.date + dt.timedelta(days=terms.assignment_days)
    step.emit(ev.CaseAssigned(
        event_id=step.id("CaseAssigned", case.case_id, work_order_id),
        occurred_at=step.occurred_at, case_id=case.case_id, loan_id=state.loan_id, business_date=step.date,
        agency_id=agency_id, work_order_id=work_order_id, assigned_on=step.date, expires_on=expires_on,
    ))
    step.emit(_work_order(state, case, fig, ctx, step, agency_id, work_order_id, expires_on))
    case = replace(
        case,
        assignment=Assignment(agency_id, work_order_id, step.date, expires_on),
        past_agencies=(*case.past_agencies, agency_id),
        work_orders_issued=number,
        work_order_figures=(fig.overdue_amount, fig.dpd, fig.bucket),
        work_orders=(*case.work_orders, WorkOrder(work_order_id, agency_id, step.occurred_at)),
    )
    return state.with_tally(agency_id, assignments=1), case


def _work_order(state: LoanState, case: Case, fig: Figures, ctx: Context, step: Step, agency_id: str,
                work_order_id: str, expires_on: dt.date) -> ev.WorkOrderIssued:
    assert state.account is not None and fig.oldest_due_date is not None
    customer = state.account.customer
    policy = ctx.rules.policy
    return ev.WorkOrderIssued(
        event_id=step.id("WorkOrderIssued", work_order_id),
        occurred_at=step.occurred_at,
        work_order_id=work_order_id,
        case_id=case.case_id,
        loan_id=state.loan_id,
        agency_id=agency_id,
        debtor=ev.Debtor(
            name=customer.name,
            phone=customer.phone,
            national_id_masked=mask_national_id(customer.national_id),
            province=customer.province,
            city=customer.city,
            timezone=customer.timezone,
        ),
        overdue_amount=fig.overdue_amount,
        currency=state.account.currency,
        dpd=fig.dpd,
        bucket=fig.bucket,
        oldest_due_date=fig.oldest_due_date,
        expires_on=expires_on,
        contact_policy=ev.ContactPolicyTerms(
            profile=policy.profile,
            quiet_hours_start=policy.quiet_hours_start,
            quiet_hours_end=policy.quiet_hours_end,
            max_connected_calls_per_day=policy.max_connected_calls_per_day,
            max_attempts_per_day=policy.max_attempts_per_day,
            max_attempts_per_week=policy.max_attempts_per_week,
            emergency_contacts_allowed=policy.emergency_contacts_allowed,
        ),
        emergency_contacts=customer.emergency_contacts if policy.emergency_contacts_allowed else (),
    )


def keep_agency_current(state: LoanState, case: Case, fig: Figures, ctx: Context, step: Step,
                        *, at_tick: bool) -> tuple[LoanState, Case]:
    """After the case's figures moved: end a term that expired (at ticks), recall the case when the
    agency no longer serves its bucket, or tell the agency what changed. A case left without an
    agency is placed again at the tick (SPEC §5: placement sees the whole book)."""
    assignment = case.assignment
    if assignment is None:
        return state, case
    if at_tick and assignment.expires_on <= step.date:
        return state, recall(state, case, "EXPIRED", step)
    if not ctx.rules.allocation.serves(assignment.agency_id, fig.bucket):
        return state, recall(state, case, "REALLOCATED", step)
    figures = (fig.overdue_amount, fig.dpd, fig.bucket)
    if figures != case.work_order_figures:
        step.emit(ev.WorkOrderUpdated(
            event_id=step.id("WorkOrderUpdated", assignment.work_order_id),
            occurred_at=step.occurred_at, work_order_id=assignment.work_order_id, case_id=case.case_id,
            overdue_amount=fig.overdue_amount, dpd=fig.dpd, bucket=fig.bucket, agency_id=assignment.agency_id,
        ))
        case = replace(case, work_order_figures=figures)
    return state, case
