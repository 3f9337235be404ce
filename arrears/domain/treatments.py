"""Treatments and agency economics (SPEC §10) applied to a loan: pauses, settlements, recoveries. Pure.

The rules themselves live in :mod:`.pauses`, :mod:`.settlements` and :mod:`.commission`;
this module applies them to a :class:`~.state.LoanState` and emits what they decide. The
loan aggregate (:mod:`.loan`) calls it from a few marked hooks:

* commands ``PauseDelinquency``/``ResumeDelinquency`` and ``ApproveSettlement``/
  ``RejectSettlement``, and the agency result ``SettlementProposed`` (through
  :mod:`.results`, which first checks the agency held the case at the result's time);
* every tick: a pause that begins recalls the case, one that ends lets it be assigned
  again; a settlement past its ``pay_by`` is broken (or, still pending, expires);
* every ledger change: a settlement whose repayments reached its amount is fulfilled;
* the end of every step (:func:`after_step`): the agencies' spans from the step's own
  assignments and recalls, the repayments now attributable to an agency, and the
  settlement limits on the work orders the step issued.

Every output id derives from the causing step (``Step.id``), and every decision depends
on the loan's own records and the business date only, so a replay gives the same records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from fractions import Fraction

from . import events as ev
from . import pauses as pz
from . import settlements as st
from .agencies import keep_agency_current, recall
from .cases import Case
from .commission import AgencySpan, Recovery, commission, holder_on, span_end
from .ledger import Figures
from .state import Context, LoanState, Step

# Dead-letter reasons of the commands (arrears.dlq lists them for operators).
NOT_PAUSED = "NOT_PAUSED"
NOT_PENDING = "NOT_PENDING"
MAKER_CHECKER = "MAKER_CHECKER"


# --------------------------------------------------------------------------- pauses
def contract_problem(event: ev.InputEvent) -> str | None:
    """Why a §10 input breaks the contract, or None."""
    if isinstance(event, ev.PauseDelinquency) and event.until_date is not None and event.until_date < event.from_date:
        return f"until_date {event.until_date} is before from_date {event.from_date}"
    if isinstance(event, ev.SettlementProposed) and event.amount <= 0:
        return f"amount must be > 0, got {event.amount}"
    return None


def apply_pause(state: LoanState, command: ev.PauseDelinquency, ctx: Context, step: Step) -> LoanState:
    """Record a pause; its effect on DPD (a backdated one included) applies at once."""
    pause = pz.Pause(command.event_id, command.from_date, command.until_date, command.reason, command.requested_by)
    state = state.with_treatments(pauses=(*state.pauses, pause))
    if ctx.business_date is None:
        return state  # before the first tick no case exists and no figure is due: recorded only
    fig = state.figures(ctx.business_date, ctx.rules.buckets)
    state = _refigure(state, fig)
    case = state.open_case
    step.emit(ev.DelinquencyPaused(
        event_id=step.id("DelinquencyPaused", command.event_id), occurred_at=step.occurred_at,
        case_id=case.case_id if case else None, loan_id=state.loan_id, business_date=step.date,
        from_date=command.from_date, until_date=command.until_date, dpd=fig.dpd, bucket=fig.bucket,
        requested_by=command.requested_by,
    ))
    return _follow_pause(state, fig, ctx, step, resumed_by=None)


def apply_resume(state: LoanState, command: ev.ResumeDelinquency, ctx: Context, step: Step) -> LoanState:
    """End every pause that reaches ``on_date`` the day before it (a backdated resume counts at once)."""
    pauses = pz.resume(state.pauses, command.on_date)
    if pauses is None:
        step.reject(command, f"loan {state.loan_id} has no pause that reaches {command.on_date}", NOT_PAUSED)
        return state
    state = state.with_treatments(pauses=pauses)
    if ctx.business_date is None:
        return state
    fig = state.figures(ctx.business_date, ctx.rules.buckets)
    state = _refigure(state, fig)
    case = state.open_case
    step.emit(ev.DelinquencyResumed(
        event_id=step.id("DelinquencyResumed", command.event_id), occurred_at=step.occurred_at,
        case_id=case.case_id if case else None, loan_id=state.loan_id, business_date=step.date,
        on_date=command.on_date, dpd=fig.dpd, bucket=fig.bucket, requested_by=command.requested_by,
    ))
    return _follow_pause(state, fig, ctx, step, resumed_by=command.requested_by)


def _refigure(state: LoanState, fig: Figures) -> LoanState:
    """The open case at figures a pause or resume changed; DelinquencyPaused/Resumed report them."""
    case = state.open_case
    if case is None:
        return state
    path = case.path if fig.bucket == case.reported_bucket else (*case.path, fig.bucket)
    return replace(state, case=replace(case, dpd=fig.dpd, bucket=fig.bucket, overdue_amount=fig.overdue_amount,
                                       reported_bucket=fig.bucket, path=path))


def _follow_pause(state: LoanState, fig: Figures, ctx: Context, step: Step, resumed_by: str | None) -> LoanState:
    """After the pauses changed: recall a case that is now paused, free one that no longer is."""
    now = pz.paused_until(state.pauses, step.date)
    state = state.with_treatments(paused_until=now)
    case = state.open_case
    if case is None:
        return state
    if now is not None:
        if case.paused_until is None:
            case = recall(state, case, "HOLD", step)
        return replace(state, case=case.with_treatment(paused_until=now))
    case = case.with_treatment(paused_until=None)
    # Not paused today: the agency hears of the new figures, or the case goes to one again.
    state, case = keep_agency_current(state, case, fig, ctx, step, at_tick=False)
    return replace(state, case=case)


def tick_pauses(state: LoanState, ctx: Context, step: Step) -> LoanState:
    """At a tick: a pause that begins today recalls the case; one that ended is announced.

    The case is assigned again by the tick's usual course (it is no longer paused).
    """
    before = state.paused_until
    now = pz.paused_until(state.pauses, step.date)
    if before == now:
        return state
    state = state.with_treatments(paused_until=now)
    case = state.open_case
    if now is None and before is not None:
        on_date = before + dt.timedelta(days=1)
        if not any(p.resumed_on == on_date for p in state.pauses):  # a ResumeDelinquency already said so
            fig = state.figures(step.date, ctx.rules.buckets)
            step.emit(ev.DelinquencyResumed(
                event_id=step.id("DelinquencyResumed", state.loan_id, on_date.isoformat()),
                occurred_at=step.occurred_at, case_id=case.case_id if case else None, loan_id=state.loan_id,
                business_date=step.date, on_date=on_date, dpd=fig.dpd, bucket=fig.bucket,
            ))
    if case is None:
        return state
    if now is not None and case.paused_until is None:
        case = recall(state, case, "HOLD", step)
    return replace(state, case=case.with_treatment(paused_until=now))


def is_paused(state: LoanState) -> bool:
    return state.paused_until is not None


def may_open_case(state: LoanState) -> bool:
    """§10: no case opens while the loan is paused, after a settlement paid it off, or while an
    approved settlement of its last case still runs (the debtor is paying it)."""
    if state.paused_until is not None or state.settled_by is not None:
        return False
    settlement = state.case.settlement if state.case is not None else None
    return settlement is None or settlement.status != st.APPROVED


# --------------------------------------------------------------------------- settlements
def propose_settlement(state: LoanState, case: Case, result: ev.SettlementProposed, ctx: Context,
                       step: Step) -> LoanState:
    """Decide a proposal from the agency that held the case at its time (the caller checked)."""
    number = case.settlements_proposed + 1
    settlement_id = f"{case.case_id}:S{number}"
    case = case.with_treatment(settlements_proposed=number)
    fig = state.figures(step.date, ctx.rules.buckets)
    outstanding = fig.outstanding_amount
    share = st.discount(result.amount, outstanding) if outstanding > 0 else Fraction(0)
    if not case.is_open:
        _reject(state, case.case_id, settlement_id, result.agency_id, result.amount, st.as_float(share),
                st.CASE_CLOSED, None, step, result.event_id)
        return state.with_case(case)
    decision = st.decide(ctx.rules.settlements, case.bucket, result.amount, outstanding, result.pay_by, step.date)
    if decision.status == st.REJECTED:
        assert decision.reason is not None
        _reject(state, case.case_id, settlement_id, result.agency_id, result.amount, st.as_float(decision.discount),
                decision.reason, st.POLICY, step, result.event_id)
        return state.with_case(case)  # a rejected proposal leaves a running settlement as it is
    old = case.settlement
    if old is not None and old.is_active:
        _reject(state, case.case_id, old.settlement_id, old.agency_id, old.amount, old.discount,
                st.SUPERSEDED, None, step, result.event_id)
    approved = decision.status == st.APPROVED
    counted = tuple(r.payment_id for r in state.repayments if not r.reversed and r.value_date >= step.date)
    settlement = st.Settlement(
        settlement_id, result.agency_id, result.work_order_id, result.amount, result.pay_by,
        st.as_float(decision.discount), decision.status, step.date, step.date if approved else None,
        st.POLICY if approved else None, counted, result.event_id,
    )
    if approved:
        _approved(state, case.case_id, settlement, step)
    else:
        step.emit(ev.SettlementPending(
            event_id=step.id("SettlementPending", settlement_id), occurred_at=step.occurred_at,
            case_id=case.case_id, loan_id=state.loan_id, business_date=step.date, settlement_id=settlement_id,
            agency_id=settlement.agency_id, amount=settlement.amount, pay_by=settlement.pay_by,
            discount=settlement.discount,
        ))
    return state.with_case(case.with_treatment(settlement=settlement))


def decide_settlement(state: LoanState, command: ev.SettlementDecision, ctx: Context, step: Step) -> LoanState:
    """A person approves or rejects a pending settlement (never the agency that proposed it)."""
    found = state.find_case(command.case_id)
    case = found if isinstance(found, Case) else None
    settlement = case.settlement if case is not None else None
    if case is None or settlement is None or settlement.settlement_id != command.settlement_id \
            or settlement.status != st.PENDING:
        if settlement is not None and settlement.settlement_id == command.settlement_id:
            why = f"it is {settlement.status}"
        else:
            why = "it is not the case's current settlement" if case is not None else "no such case"
        step.reject(command, f"settlement {command.settlement_id} of case {command.case_id} is not pending: {why}",
                    NOT_PENDING)
        return state
    if command.decided_by == settlement.agency_id:
        step.reject(command, f"{command.decided_by} proposed settlement {command.settlement_id}: the agency "
                             "cannot decide its own proposal", MAKER_CHECKER)
        return state
    if isinstance(command, ev.ApproveSettlement):
        settlement = replace(settlement, status=st.APPROVED, approved_on=step.date, approved_by=command.decided_by)
        _approved(state, case.case_id, settlement, step)
    else:
        settlement = replace(settlement, status=st.REJECTED)
        _reject(state, case.case_id, settlement.settlement_id, settlement.agency_id, settlement.amount,
                settlement.discount, st.BY_PERSON, command.decided_by, step, command.event_id)
    return state.with_case(case.with_treatment(settlement=settlement))


def _approved(state: LoanState, case_id: str, settlement: st.Settlement, step: Step) -> None:
    assert settlement.approved_by is not None
    step.emit(ev.SettlementApproved(
        event_id=step.id("SettlementApproved", settlement.settlement_id), occurred_at=step.occurred_at,
        case_id=case_id, loan_id=state.loan_id, business_date=step.date, settlement_id=settlement.settlement_id,
        agency_id=settlement.agency_id, amount=settlement.amount, pay_by=settlement.pay_by,
        discount=settlement.discount, approved_by=settlement.approved_by,
    ))


def _reject(state: LoanState, case_id: str, settlement_id: str, agency_id: str, amount: int, discount: float,
            reason: str, by: str | None, step: Step, cause: str) -> None:
    step.emit(ev.SettlementRejected(
        event_id=step.id("SettlementRejected", settlement_id, cause), occurred_at=step.occurred_at,
        case_id=case_id, loan_id=state.loan_id, business_date=step.date, settlement_id=settlement_id,
        agency_id=agency_id, amount=amount, discount=discount, reason=reason, rejected_by=by,
    ))


def fulfil(state: LoanState, step: Step) -> tuple[LoanState, str | None]:
    """Fulfil the case's approved settlement if its repayments reached the amount.

    Returns the state and the settlement id when the case is open and must now close
    ``PAID_OFF`` (the loan aggregate closes it); a case already closed (cured while the
    debtor paid the settlement) stays closed, and the loan is settled either way.
    """
    case = state.case
    settlement = case.settlement if case is not None else None
    if case is None or settlement is None or settlement.status != st.APPROVED:
        return state, None
    paid = st.paid_towards(settlement, state.repayments)
    if paid < settlement.amount:
        return state, None
    step.emit(ev.SettlementFulfilled(
        event_id=step.id("SettlementFulfilled", settlement.settlement_id), occurred_at=step.occurred_at,
        case_id=case.case_id, loan_id=state.loan_id, business_date=step.date,
        settlement_id=settlement.settlement_id, agency_id=settlement.agency_id, amount=settlement.amount,
        paid_amount=paid,
    ))
    done = replace(settlement, status=st.FULFILLED, paid_amount=paid)
    state = state.with_case(case.with_treatment(settlement=done)).with_treatments(settled_by=settlement.settlement_id)
    return state, settlement.settlement_id if case.is_open else None


def on_case_closed(state: LoanState, case: Case, step: Step) -> Case:
    """A case closing otherwise than by its settlement: a pending one ends with it; an approved
    one keeps running until its pay_by (the debtor may still pay it)."""
    settlement = case.settlement
    if settlement is None or settlement.status != st.PENDING:
        return case
    _reject(state, case.case_id, settlement.settlement_id, settlement.agency_id, settlement.amount,
            settlement.discount, st.CASE_CLOSED, None, step, "closed")
    return case.with_treatment(settlement=replace(settlement, status=st.REJECTED))


def tick_settlement(state: LoanState, step: Step) -> LoanState:
    """At the first tick after pay_by: an approved settlement not fulfilled is broken; a pending
    one nobody decided expires."""
    case = state.case
    settlement = case.settlement if case is not None else None
    if case is None or settlement is None or not settlement.is_active or step.date <= settlement.pay_by:
        return state
    if settlement.status == st.PENDING:
        _reject(state, case.case_id, settlement.settlement_id, settlement.agency_id, settlement.amount,
                settlement.discount, st.EXPIRED, None, step, "expired")
        return state.with_case(case.with_treatment(settlement=replace(settlement, status=st.REJECTED)))
    paid = st.paid_towards(settlement, state.repayments)
    step.emit(ev.SettlementBroken(
        event_id=step.id("SettlementBroken", settlement.settlement_id), occurred_at=step.occurred_at,
        case_id=case.case_id, loan_id=state.loan_id, business_date=step.date,
        settlement_id=settlement.settlement_id, agency_id=settlement.agency_id, amount=settlement.amount,
        paid_amount=paid,
    ))
    return state.with_case(case.with_treatment(settlement=replace(settlement, status=st.BROKEN, paid_amount=paid)))


def settlement_policy(ctx: Context, bucket: str, outstanding: int) -> ev.SettlementPolicyTerms | None:
    """The limits a work order tells its agency; None when the bucket has none."""
    terms = ctx.rules.settlements
    limit = terms.limit(bucket)
    if limit is None:
        return None
    return ev.SettlementPolicyTerms(
        max_discount=limit, approval_above=terms.approval_above, outstanding_amount=outstanding,
        min_amount=st.min_amount(outstanding, limit),
    )


# --------------------------------------------------------------------------- recoveries
def reverse_recovery(state: LoanState, payment_id: str, step: Step) -> LoanState:
    """A reversal of an attributed repayment takes back its recovery and commission."""
    found = next((r for r in state.recoveries if r.payment_id == payment_id and not r.reversed), None)
    if found is None or step.business_date is None:
        return state
    step.emit(ev.RecoveryReversed(
        event_id=step.id("RecoveryReversed", payment_id), occurred_at=step.occurred_at, case_id=found.case_id,
        loan_id=state.loan_id, agency_id=found.agency_id, work_order_id=found.work_order_id, payment_id=payment_id,
        amount=-found.amount, bucket=found.bucket, rate=found.rate, commission=-found.commission,
        business_date=step.date, currency=state.account.currency if state.account else None,
    ))
    recoveries = tuple(replace(r, reversed=True) if r is found else r for r in state.recoveries)
    state = state.with_treatments(recoveries=recoveries)
    return state.with_tally(found.agency_id, attributed=-found.amount, commission=-found.commission)


def _track_spans(state: LoanState, ctx: Context, step: Step) -> LoanState:
    """The agencies' spans, from the assignments and recalls this step emitted."""
    assigned_on = {o.work_order_id: o.assigned_on for o in step.outputs if isinstance(o, ev.CaseAssigned)}
    spans = list(state.agency_spans)
    known = {s.work_order_id for s in spans}
    changed = False
    for output in step.outputs:
        if isinstance(output, ev.WorkOrderIssued) and output.work_order_id not in known:
            start = assigned_on.get(output.work_order_id, step.date)
            rate = ctx.rules.commission.rate(output.agency_id, output.bucket)
            spans.append(AgencySpan(output.case_id, output.work_order_id, output.agency_id, output.bucket, rate,
                                    start))
            known.add(output.work_order_id)
            changed = True
        elif isinstance(output, ev.CaseRecalled):
            end = span_end(output.business_date, output.reason)
            for i, span in enumerate(spans):
                if span.work_order_id == output.work_order_id and span.end is None:
                    spans[i] = replace(span, end=end)
                    changed = True
    return state.with_treatments(agency_spans=tuple(spans)) if changed else state


def _attribute(state: LoanState, ctx: Context, step: Step, arrived: str | None) -> LoanState:
    """Attribute every repayment valued before the business date to the agency holding the case then."""
    today = step.business_date
    if today is None or not state.agency_spans:
        return state
    judged = state.recoveries_judged_before
    attributed = {r.payment_id for r in state.recoveries}
    moved = False
    for repayment in state.repayments:
        day = repayment.value_date
        if day >= today or repayment.reversed:
            continue
        fresh = judged is None or day >= judged
        moved = moved or fresh
        if not fresh and repayment.payment_id != arrived:
            continue  # judged at an earlier step
        if repayment.payment_id in attributed:
            continue
        span = holder_on(state.agency_spans, day)
        if span is None:
            continue
        amount = repayment.amount
        earned = commission(amount, span.rate)
        step.emit(ev.RecoveryAttributed(
            event_id=step.id("RecoveryAttributed", repayment.payment_id), occurred_at=step.occurred_at,
            case_id=span.case_id, loan_id=state.loan_id, agency_id=span.agency_id,
            work_order_id=span.work_order_id, payment_id=repayment.payment_id, amount=amount, bucket=span.bucket,
            rate=span.rate, commission=earned, business_date=day,
            currency=state.account.currency if state.account else None,
        ))
        recovery = Recovery(repayment.payment_id, span.case_id, span.agency_id, span.work_order_id, amount,
                            span.bucket, span.rate, earned, day)
        state = state.with_treatments(recoveries=(*state.recoveries, recovery))
        state = state.with_tally(span.agency_id, attributed=amount, commission=earned)
        attributed.add(repayment.payment_id)
    if moved:
        state = state.with_treatments(recoveries_judged_before=today)
    return state


def _annotate_work_orders(state: LoanState, ctx: Context, step: Step) -> None:
    """Tell the agency the settlement limits of the case in the work orders this step issued."""
    if not ctx.rules.settlements.offered or step.business_date is None:
        return
    outstanding: int | None = None
    for i, output in enumerate(step.outputs):
        if isinstance(output, (ev.WorkOrderIssued, ev.WorkOrderUpdated)) and output.settlement_policy is None:
            if outstanding is None:
                outstanding = state.figures(step.business_date, ctx.rules.buckets).outstanding_amount
            terms = settlement_policy(ctx, output.bucket, outstanding)
            if terms is not None:
                step.outputs[i] = replace(output, settlement_policy=terms)


def after_step(state: LoanState, ctx: Context, step: Step, event: ev.InputEvent | None = None) -> LoanState:
    """§10 bookkeeping at the end of every step (see the module docstring)."""
    if state.account is None:
        return state
    state = _track_spans(state, ctx, step)
    arrived = event.payment_id if isinstance(event, ev.RepaymentReceived) else None
    state = _attribute(state, ctx, step, arrived)
    _annotate_work_orders(state, ctx, step)
    return state
