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
from .allocation import choose_agency
from .cases import Assignment, Case, WorkOrder
from .ledger import Figures
from .state import Context, LoanState, Step


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


def try_assign(state: LoanState, case: Case, fig: Figures, ctx: Context, step: Step,
               releasing: str | None = None) -> tuple[LoanState, Case]:
    """Give an open, unheld, unassigned case to an agency with room, if one is eligible.

    *releasing* is the agency whose assignment of this case ended in the same step: the
    partition's load still counts it.
    """
    if not case.is_open or case.assignment is not None or case.hold_reason is not None:
        return state, case
    if case.paused_until is not None:  # §10: a paused case goes to no agency until its pause ends
        return state, case
    load = dict(ctx.load)
    if releasing is not None and load.get(releasing, 0) > 0:
        load[releasing] -= 1
    choice = choose_agency(case.case_id, case.bucket, ctx.rules.allocation, load, ctx.partition, case.past_agencies)
    if choice.agency is None or fig.oldest_due_date is None or state.account is None:
        return state, case
    agency = choice.agency
    number = case.work_orders_issued + 1
    work_order_id = f"WO-{case.case_id}-{number}"
    expires_on = step.date + dt.timedelta(days=agency.assignment_days)
    step.emit(ev.CaseAssigned(
        event_id=step.id("CaseAssigned", case.case_id, work_order_id),
        occurred_at=step.occurred_at, case_id=case.case_id, loan_id=state.loan_id, business_date=step.date,
        agency_id=agency.agency_id, work_order_id=work_order_id, assigned_on=step.date, expires_on=expires_on,
    ))
    step.emit(_work_order(state, case, fig, ctx, step, agency.agency_id, work_order_id, expires_on))
    case = replace(
        case,
        assignment=Assignment(agency.agency_id, work_order_id, step.date, expires_on),
        past_agencies=(*case.past_agencies, agency.agency_id),
        work_orders_issued=number,
        work_order_figures=(fig.overdue_amount, fig.dpd, fig.bucket),
        work_orders=(*case.work_orders, WorkOrder(work_order_id, agency.agency_id, step.occurred_at)),
    )
    return state.with_tally(agency.agency_id, assignments=1), case


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
    """After the case's figures moved: end a term that expired (at ticks), reallocate when the
    agency no longer serves the bucket, tell the agency what changed, or find an agency."""
    assignment = case.assignment
    if assignment is not None and at_tick and assignment.expires_on <= step.date:
        case = recall(state, case, "EXPIRED", step)
        return try_assign(state, case, fig, ctx, step, releasing=assignment.agency_id)
    if assignment is not None and not ctx.rules.allocation.serves(assignment.agency_id, fig.bucket):
        case = recall(state, case, "REALLOCATED", step)
        return try_assign(state, case, fig, ctx, step, releasing=assignment.agency_id)
    if assignment is not None:
        figures = (fig.overdue_amount, fig.dpd, fig.bucket)
        if figures != case.work_order_figures:
            step.emit(ev.WorkOrderUpdated(
                event_id=step.id("WorkOrderUpdated", assignment.work_order_id),
                occurred_at=step.occurred_at, work_order_id=assignment.work_order_id, case_id=case.case_id,
                overdue_amount=fig.overdue_amount, dpd=fig.dpd, bucket=fig.bucket, agency_id=assignment.agency_id,
            ))
            case = replace(case, work_order_figures=figures)
        return state, case
    return try_assign(state, case, fig, ctx, step)
