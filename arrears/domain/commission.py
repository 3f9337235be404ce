"""Agency commission (SPEC §10): which agency a repayment is attributed to, and what it earns. Pure.

An agency holds a case from its ``CaseAssigned.assigned_on`` to the business date of its
``CaseRecalled`` (exclusive): the day of a handover belongs to the agency that takes over.
A recall because the case **closed** hands nothing over, so the closing day stays with the
agency that held it: the payment that cured or paid off the case counts as its recovery.

A repayment valued on a day some agency held one of the loan's cases is that agency's
recovery, at the commission rate of the case's bucket when it was assigned. Which agency
held a case on a day before the current business date can no longer change (assignments and
recalls happen at the current date), so a repayment is attributed once the business date has
passed its value date, and the same repayments are attributed alike in every run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal


@dataclass(frozen=True)
class CommissionRates:
    """Each agency's commission rate by bucket (config ``agencies[].commission``)."""

    by_agency: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()

    def rate(self, agency_id: str, bucket: str) -> float:
        """The agency's rate for *bucket*; 0.0 when it has none (the recovery still counts)."""
        rates = next((r for a, r in self.by_agency if a == agency_id), ())
        return next((rate for name, rate in rates if name == bucket), 0.0)


@dataclass(frozen=True, slots=True)
class AgencySpan:
    """One work order's hold of a case, in business dates: [start, end)."""

    case_id: str
    work_order_id: str
    agency_id: str
    bucket: str  # the case's bucket at assignment
    rate: float  # the agency's rate for that bucket at assignment
    start: dt.date  # CaseAssigned.assigned_on
    end: dt.date | None = None  # exclusive; None while the agency holds the case

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True, slots=True)
class Recovery:
    """A repayment attributed to an agency (and, once reversed, taken back)."""

    payment_id: str
    case_id: str
    agency_id: str
    work_order_id: str
    amount: int
    bucket: str
    rate: float
    commission: int
    value_date: dt.date
    reversed: bool = False


def commission(amount: int, rate: float) -> int:
    """amount × rate in minor units, rounded half to even (the rate as the decimal configured)."""
    exact = Decimal(amount) * Decimal(repr(rate))
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def span_end(recall_date: dt.date, reason: str) -> dt.date:
    """Where a recall ends the agency's span: its business date, or the day after for a close."""
    return recall_date + dt.timedelta(days=1) if reason == "CLOSED" else recall_date


def holder_on(spans: Iterable[AgencySpan], day: dt.date) -> AgencySpan | None:
    """The span covering *day* (spans of one loan do not overlap; the latest wins if they did)."""
    found = None
    for span in spans:
        if span.covers(day) and (found is None or span.start >= found.start):
            found = span
    return found
