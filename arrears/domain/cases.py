"""A collections case, its history in time, and its snapshot (SPEC §4, §7).

A case keeps the times of its own records — who held which work order from when to when
(``CaseAssigned`` to ``CaseRecalled``), when it was on hold (``CaseHeld`` to ``CaseReleased``),
when it closed — so that a result is judged against the case as it stood at the result's
own time, whichever arrived first (SPEC §4, order across topics).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from .compliance import ContactRecord
from .events import CaseState, Promise
from .settlements import Settlement

OPEN = "OPEN"
ASSIGNED = "ASSIGNED"
HOLD = "HOLD"
CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Assignment:
    """The case's active work order with one agency."""

    agency_id: str
    work_order_id: str
    assigned_on: dt.date
    expires_on: dt.date


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """A work order the case was given: which agency held it, from when until when (epoch ms)."""

    work_order_id: str
    agency_id: str
    start: int  # CaseAssigned.occurred_at
    end: int | None = None  # CaseRecalled.occurred_at; None while active


@dataclass(frozen=True, slots=True)
class Hold:
    """A time the case was on hold (epoch ms), from CaseHeld until CaseReleased."""

    reason: str
    start: int
    end: int | None = None

    def covers(self, at: int) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True, slots=True)
class PromiseRecord:
    """The latest promise to pay; repayments valued from ``made_on`` to ``date`` count towards it."""

    agency_id: str
    amount: int
    date: dt.date
    repayments_seen: int  # unused (kept so that stored promises still decode)
    event_id: str
    made_on: dt.date | None = None  # the promise's local date (the debtor's timezone)
    occurred_at: int = 0  # of the PromiseToPay: the latest one (by time, then event id) stands


@dataclass(frozen=True, slots=True)
class CaseTreatment:
    """What SPEC §10 keeps of a case: one field of Case, absent for the many cases without any."""

    paused_until: dt.date | None = None  # the last day of the loan's pause in effect; None: not paused
    settlement: Settlement | None = None  # the latest settlement proposed on the case
    settlements_proposed: int = 0  # numbers settlement ids <case_id>:S<n>


NO_TREATMENT = CaseTreatment()


@dataclass(frozen=True, slots=True)
class Case:
    """One overdue episode of a loan: it opens at a tick and never reopens once closed."""

    case_id: str
    number: int
    opened_on: dt.date
    reported_bucket: str  # the bucket last reported in CaseOpened/DelinquencyChanged/BalanceChanged
    dpd: int
    bucket: str
    overdue_amount: int
    closed_on: dt.date | None = None
    close_reason: str | None = None
    assignment: Assignment | None = None
    past_agencies: tuple[str, ...] = ()  # agencies that held it, oldest first
    work_orders_issued: int = 0
    hold_reason: str | None = None
    cease_contact: bool = False
    promise: PromiseRecord | None = None
    contact_attempts: int = 0
    last_contact_at: int | None = None
    violations: int = 0
    version: int = 0
    path: tuple[str, ...] = ()  # the buckets the case went through, in order (for roll rates)
    work_order_figures: tuple[int, int, str] | None = None  # (overdue, dpd, bucket) last sent to the agency
    work_orders: tuple[WorkOrder, ...] = ()  # every work order issued, oldest first
    holds: tuple[Hold, ...] = ()  # every hold, oldest first (a cease-contact request is a hold too)
    closed_at: int | None = None  # CaseClosed.occurred_at
    contacts: tuple[ContactRecord, ...] = ()  # contacts recorded while open: judged again if history changes
    flagged: frozenset[str] = frozenset()  # "<contact event id>|<rule>" of violations emitted on this case
    state_event_id: str | None = None  # the event_id of the last CaseState emitted (the query API shows it)
    state_at: int | None = None  # and its occurred_at
    treatment: CaseTreatment | None = None  # §10 (arrears.domain.treatments); None for most cases

    @property
    def is_open(self) -> bool:
        return self.closed_on is None

    # §10: the treatment's fields, read through the one Case field that holds them
    @property
    def paused_until(self) -> dt.date | None:
        return self.treatment.paused_until if self.treatment is not None else None

    @property
    def settlement(self) -> Settlement | None:
        return self.treatment.settlement if self.treatment is not None else None

    @property
    def settlements_proposed(self) -> int:
        return self.treatment.settlements_proposed if self.treatment is not None else 0

    def with_treatment(self, **changes: object) -> Case:
        """The case with these §10 fields changed."""
        treated = replace(self.treatment or NO_TREATMENT, **changes)  # type: ignore[arg-type]
        return replace(self, treatment=None if treated == NO_TREATMENT else treated)

    def visible(self) -> tuple[object, ...]:
        """What CaseState shows of the case (but its version): a change here is a new snapshot."""
        promise = (self.promise.amount, self.promise.date) if self.promise else None
        agency = (self.assignment.agency_id, self.assignment.work_order_id) if self.assignment else None
        return (self.status, self.dpd, self.bucket, self.overdue_amount, self.opened_on, self.closed_on,
                self.close_reason, agency, self.hold_reason, promise, self.contact_attempts, self.last_contact_at,
                self.violations, self.paused_until)

    def work_order(self, work_order_id: str, agency_id: str) -> WorkOrder | None:
        """The work order if *agency_id* ever held it on this case."""
        for order in self.work_orders:
            if order.work_order_id == work_order_id and order.agency_id == agency_id:
                return order
        return None

    def held_at(self, order: WorkOrder, at: int) -> bool:
        """Whether *order* was active and the case open at instant *at*."""
        if at < order.start or (order.end is not None and at >= order.end):
            return False
        return self.closed_at is None or at < self.closed_at

    def on_hold_at(self, at: int) -> tuple[bool, bool]:
        """(on hold, after a cease-contact request) at instant *at*."""
        holds = [h for h in self.holds if h.covers(at)]
        return bool(holds), any(h.reason == "CEASE_CONTACT" for h in holds)

    def with_work_order_ended(self, at: int) -> Case:
        """The active work order ends at *at* (its recall's time)."""
        if self.assignment is None:
            return self
        active = self.assignment.work_order_id
        orders = tuple(replace(o, end=at) if o.work_order_id == active and o.end is None else o
                       for o in self.work_orders)
        return replace(self, work_orders=orders)

    @property
    def status(self) -> str:
        if not self.is_open:
            return CLOSED
        if self.hold_reason is not None:
            return HOLD
        if self.assignment is not None:
            return ASSIGNED
        return OPEN

    def snapshot(self, event_id: str, occurred_at: int, loan_id: str, customer_id: str, currency: str) -> CaseState:
        return CaseState(
            event_id=event_id,
            occurred_at=occurred_at,
            case_id=self.case_id,
            loan_id=loan_id,
            customer_id=customer_id,
            status=self.status,
            dpd=self.dpd,
            bucket=self.bucket,
            overdue_amount=self.overdue_amount,
            currency=currency,
            opened_on=self.opened_on,
            closed_on=self.closed_on,
            close_reason=self.close_reason,
            agency_id=self.assignment.agency_id if self.assignment else None,
            work_order_id=self.assignment.work_order_id if self.assignment else None,
            hold_reason=self.hold_reason,
            promise=Promise(self.promise.amount, self.promise.date) if self.promise else None,
            contact_attempts=self.contact_attempts,
            last_contact_at=self.last_contact_at,
            violations=self.violations,
            version=self.version,
            paused_until=self.paused_until,
        )


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """A closed case kept for the loan's history."""

    case_id: str
    opened_on: dt.date
    closed_on: dt.date
    close_reason: str
    path: tuple[str, ...] = ()
