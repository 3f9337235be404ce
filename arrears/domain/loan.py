"""The loan aggregate: ledger + case lifecycle as pure functions (SPEC §4).

``apply_event(state, event, ctx)`` and ``apply_tick(state, tick, ctx)`` return the new state
and the output events, in order. Nothing here reads a clock: the business date comes from
the context (the partition's last applied tick) and from the tick itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace

from . import events as ev
from .buckets import DEFAULT_BUCKETS, BucketScheme
from .cases import Case, CaseSummary
from .ledger import Figures, Installment, Repayment, figures, first_unpaid_due_date

CONTRACT_VIOLATION = "CONTRACT_VIOLATION"


@dataclass(frozen=True)
class Rules:
    """The configuration the rules depend on."""

    buckets: BucketScheme = DEFAULT_BUCKETS
    grace_days: int = 0


@dataclass(frozen=True)
class Context:
    """What the partition knows when an event is applied."""

    business_date: dt.date | None
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True, slots=True)
class LoanState:
    """Everything the processor keeps about one loan."""

    loan_id: str
    account: ev.LoanOpened | None = None
    closed_reason: str | None = None
    installments: tuple[Installment, ...] = ()  # sorted by number
    repayments: tuple[Repayment, ...] = ()  # in arrival order
    pending_reversals: tuple[str, ...] = ()  # payment ids reversed before they arrived
    waiting: tuple[ev.InputEvent, ...] = ()  # events that came before LoanOpened
    applied: frozenset[int] = frozenset()  # fingerprints of the event ids already applied
    case_count: int = 0
    case: Case | None = None  # the current case: open, or the last one closed
    history: tuple[CaseSummary, ...] = ()
    # The business date of the last change: every tick up to it has been applied to this loan.
    # A restart may replay ticks the loan already saw; they must not apply twice.
    as_of: dt.date | None = None

    @property
    def open_case(self) -> Case | None:
        return self.case if self.case is not None and self.case.is_open else None

    def figures(self, business_date: dt.date | None, buckets: BucketScheme) -> Figures:
        return figures(self.installments, self.repayments, business_date, buckets)

    def wake_date(self, grace_days: int) -> dt.date | None:
        """The first business date at which a tick can change this loan; None if no tick can.

        A loan with an open case is looked at every tick (its DPD and bucket move); one
        without opens a case once its oldest unpaid installment is more than grace days late.
        """
        if self.account is None or self.closed_reason is not None:
            return None
        if self.open_case is not None:
            return dt.date.min
        due = first_unpaid_due_date(self.installments, self.repayments)
        return None if due is None else due + dt.timedelta(days=grace_days + 1)


# --------------------------------------------------------------------------- helpers
def event_fingerprint(event_id: str) -> int:
    """64 bits of the event id: enough to tell a loan's events apart, a tenth of the bytes."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


class _Step:
    """Accumulates the outputs of one input event or tick."""

    def __init__(self, cause_id: str, occurred_at: int) -> None:
        self.cause_id = cause_id
        self.occurred_at = occurred_at
        self.outputs: list[ev.Output] = []

    def id(self, *parts: str) -> str:
        return ev.derive_id(self.cause_id, *parts)


def _reject(event: ev.InputEvent, detail: str, reason: str = CONTRACT_VIOLATION) -> ev.Rejected:
    return ev.Rejected(event, reason, detail)


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
        amounts = (event.principal_due, event.interest_due, event.fee_due)
        if min(amounts) < 0:
            return "principal_due, interest_due and fee_due must be >= 0"
        if currency is not None and event.currency != currency:
            return f"currency {event.currency} differs from the loan's {currency}"
    return None


# --------------------------------------------------------------------------- events
def apply_event(state: LoanState, event: ev.InputEvent, ctx: Context) -> tuple[LoanState, list[ev.Output]]:
    """Apply one input event of this loan; an event id already applied changes nothing."""
    fingerprint = event_fingerprint(event.event_id)
    if fingerprint in state.applied:
        return state, []
    step = _Step(event.event_id, event.occurred_at)
    state = replace(state, applied=state.applied | {fingerprint}, as_of=ctx.business_date or state.as_of)
    state = _apply(state, event, ctx, step)
    return state, step.outputs


def _apply(state: LoanState, event: ev.InputEvent, ctx: Context, step: _Step) -> LoanState:
    problem = _contract_problem(state, event)
    if problem is not None:
        step.outputs.append(_reject(event, problem))
        return state
    if isinstance(event, ev.LoanOpened):
        return _open_loan(state, event, ctx, step)
    if state.account is None:
        # Kept until the loan is known (SPEC §4); no case can exist before that.
        return replace(state, waiting=(*state.waiting, event))
    if isinstance(event, ev.LoanClosed):
        return _close_loan(state, event, ctx, step)
    if isinstance(event, (ev.InstallmentScheduled, ev.RepaymentReceived, ev.RepaymentReversed)):
        return _apply_ledger(state, event, ctx, step)
    step.outputs.append(_reject(event, f"no case {getattr(event, 'case_id', '?')} is held by this sender",
                                "NOT_ASSIGNED"))
    return state


def _open_loan(state: LoanState, event: ev.LoanOpened, ctx: Context, step: _Step) -> LoanState:
    if state.account is not None:
        # A re-sent LoanOpened refreshes the customer's contact data; the terms stay.
        return replace(state, account=replace(state.account, customer=event.customer))
    waiting = state.waiting
    state = replace(state, account=event, waiting=())
    for held in waiting:  # in arrival order, each as its own cause
        held_step = _Step(held.event_id, held.occurred_at)
        state = _apply(state, held, ctx, held_step)
        step.outputs.extend(held_step.outputs)
    return state


def _close_loan(state: LoanState, event: ev.LoanClosed, ctx: Context, step: _Step) -> LoanState:
    if state.closed_reason is not None:
        return state
    state = replace(state, closed_reason=event.reason)
    case = state.open_case
    if case is not None:
        state = _close_case(state, case, event.reason, ctx, step)
    return state


def _apply_ledger(
    state: LoanState, event: ev.LedgerEvent, ctx: Context, step: _Step
) -> LoanState:
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
        reversed_early = event.payment_id in state.pending_reversals
        repayment = Repayment(event.payment_id, event.amount, event.value_date, event.channel, reversed_early)
        state = replace(
            state,
            repayments=(*state.repayments, repayment),
            pending_reversals=tuple(p for p in state.pending_reversals if p != event.payment_id),
        )
        payment_id = event.payment_id
    else:
        known = next((r for r in state.repayments if r.payment_id == event.payment_id), None)
        if known is None:
            if event.payment_id not in state.pending_reversals:
                state = replace(state, pending_reversals=(*state.pending_reversals, event.payment_id))
            return state
        if known.reversed:
            return state
        state = replace(
            state,
            repayments=tuple(replace(r, reversed=True) if r is known else r for r in state.repayments),
        )
        payment_id = event.payment_id
    return _after_ledger_change(before, state, ctx, step, payment_id)


def _after_ledger_change(
    before: LoanState, state: LoanState, ctx: Context, step: _Step, payment_id: str | None
) -> LoanState:
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
    step.outputs.append(
        ev.CaseBalanceChanged(
            event_id=step.id("CaseBalanceChanged", case.case_id),
            occurred_at=step.occurred_at,
            case_id=case.case_id,
            loan_id=state.loan_id,
            business_date=_date(ctx),
            overdue_amount=new.overdue_amount,
            previous_overdue_amount=old.overdue_amount,
            dpd=new.dpd,
            bucket=new.bucket,
            payment_id=payment_id,
        )
    )
    case = replace(case, reported_bucket=new.bucket, dpd=new.dpd, bucket=new.bucket, overdue_amount=new.overdue_amount)
    return _with_case(state, case, step)


def _date(ctx: Context) -> dt.date:
    if ctx.business_date is None:  # pragma: no cover - no case exists before the first tick
        raise AssertionError("a case event needs a business date")
    return ctx.business_date


def _close_case(state: LoanState, case: Case, reason: str, ctx: Context, step: _Step) -> LoanState:
    step.outputs.append(
        ev.CaseClosed(
            event_id=step.id("CaseClosed", case.case_id),
            occurred_at=step.occurred_at,
            case_id=case.case_id,
            loan_id=state.loan_id,
            business_date=_date(ctx),
            reason=reason,
        )
    )
    fig = state.figures(ctx.business_date, ctx.rules.buckets)
    closed = replace(
        case, closed_on=_date(ctx), close_reason=reason, dpd=fig.dpd, bucket=fig.bucket, overdue_amount=fig.overdue_amount
    )
    return _with_case(state, closed, step)


def _with_case(state: LoanState, case: Case, step: _Step) -> LoanState:
    """Store the changed case and emit its snapshot (one version per change)."""
    case = replace(case, version=case.version + 1)
    assert state.account is not None
    step.outputs.append(
        case.snapshot(step.id("CaseState", case.case_id, str(case.version)), step.occurred_at, state.loan_id,
                      state.account.customer_id, state.account.currency)
    )
    return replace(state, case=case)


# --------------------------------------------------------------------------- ticks
def apply_tick(state: LoanState, tick: ev.Tick, ctx: Context) -> tuple[LoanState, list[ev.Output]]:
    """Move this loan to the tick's business date: escalate or open a case."""
    if state.account is None or state.closed_reason is not None:
        return state, []
    if state.as_of is not None and tick.business_date <= state.as_of:
        return state, []
    step = _Step(tick.event_id, tick.occurred_at)
    date = tick.business_date
    rules = ctx.rules
    fig = state.figures(date, rules.buckets)
    case = state.open_case
    if case is not None:
        if fig.bucket != case.reported_bucket:
            step.outputs.append(
                ev.CaseDelinquencyChanged(
                    event_id=step.id("CaseDelinquencyChanged", case.case_id),
                    occurred_at=step.occurred_at,
                    case_id=case.case_id,
                    loan_id=state.loan_id,
                    business_date=date,
                    dpd=fig.dpd,
                    bucket=fig.bucket,
                    previous_bucket=case.reported_bucket,
                    overdue_amount=fig.overdue_amount,
                )
            )
        moved = replace(case, reported_bucket=fig.bucket, dpd=fig.dpd, bucket=fig.bucket, overdue_amount=fig.overdue_amount)
        if moved != case:
            state = replace(_with_case(state, moved, step), as_of=date)
        return state, step.outputs
    if fig.dpd > rules.grace_days and fig.oldest_due_date is not None:
        state = replace(_open_case(state, fig, date, step), as_of=date)
    return state, step.outputs


def _open_case(state: LoanState, fig: Figures, date: dt.date, step: _Step) -> LoanState:
    assert state.account is not None and fig.oldest_due_date is not None
    number = state.case_count + 1
    case_id = f"{state.loan_id}:{number}"
    step.outputs.append(
        ev.CaseOpened(
            event_id=step.id("CaseOpened", case_id),
            occurred_at=step.occurred_at,
            case_id=case_id,
            loan_id=state.loan_id,
            business_date=date,
            customer_id=state.account.customer_id,
            dpd=fig.dpd,
            bucket=fig.bucket,
            overdue_amount=fig.overdue_amount,
            currency=state.account.currency,
            oldest_due_date=fig.oldest_due_date,
        )
    )
    history = state.history
    if state.case is not None and state.case.closed_on is not None and state.case.close_reason is not None:
        old = state.case
        history = (*history, CaseSummary(old.case_id, old.opened_on, old.closed_on, old.close_reason))  # type: ignore[arg-type]
    case = Case(case_id, number, date, fig.bucket, fig.dpd, fig.bucket, fig.overdue_amount)
    state = replace(state, case_count=number, history=history)
    return _with_case(state, case, step)
