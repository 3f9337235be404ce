"""A collections case and its snapshot (SPEC §4, §7)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .events import CaseState, Promise

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
class PromiseRecord:
    """The latest promise to pay; repayments from ``repayments_seen`` on count towards it."""

    agency_id: str
    amount: int
    date: dt.date
    repayments_seen: int  # how many repayments the loan had when the promise was captured
    event_id: str


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

    @property
    def is_open(self) -> bool:
        return self.closed_on is None

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
        )


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """A closed case kept for the loan's history."""

    case_id: str
    opened_on: dt.date
    closed_on: dt.date
    close_reason: str
    path: tuple[str, ...] = ()
