"""A loan's ledger: installments, repayments, and the figures derived from them (SPEC §4).

Every figure is a pure function of (installments, non-reversed repayments, business date D),
so it does not depend on the order in which the loan's events arrived.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from .buckets import BucketScheme
from .pauses import Pause, paused_days


@dataclass(frozen=True, slots=True)
class Installment:
    """One scheduled installment; re-sending the same number replaces it."""

    number: int
    due_date: dt.date
    principal_due: int
    interest_due: int
    fee_due: int

    @property
    def amount_due(self) -> int:
        return self.principal_due + self.interest_due + self.fee_due


@dataclass(frozen=True, slots=True)
class Repayment:
    """Money received; reversed repayments stay on the ledger but count for nothing."""

    payment_id: str
    amount: int
    value_date: dt.date
    channel: str
    reversed: bool = False
    credited_agency: str | None = None  # the agency holding the case when it arrived (its KPIs)


@dataclass(frozen=True, slots=True)
class InstallmentAllocation:
    """How much of one installment the repayments covered, fee first, then interest, then principal."""

    installment: Installment
    fee_paid: int
    interest_paid: int
    principal_paid: int

    @property
    def paid(self) -> int:
        return self.fee_paid + self.interest_paid + self.principal_paid

    @property
    def outstanding(self) -> int:
        return self.installment.amount_due - self.paid


@dataclass(frozen=True, slots=True)
class Figures:
    """What the ledger says at business date D."""

    overdue_amount: int
    dpd: int
    bucket: str
    oldest_due_date: dt.date | None  # earliest due date among overdue unpaid installments
    outstanding_amount: int  # everything scheduled and unpaid, due or not
    credit: int  # money beyond every installment


_OLDEST_FIRST = attrgetter("due_date", "number")


def allocate(installments: Iterable[Installment], paid_total: int) -> tuple[list[InstallmentAllocation], int]:
    """Pour *paid_total* over installments oldest first; return the allocations and the credit left."""
    remaining = paid_total
    out: list[InstallmentAllocation] = []
    for inst in sorted(installments, key=_OLDEST_FIRST):
        fee = min(remaining, inst.fee_due)
        remaining -= fee
        interest = min(remaining, inst.interest_due)
        remaining -= interest
        principal = min(remaining, inst.principal_due)
        remaining -= principal
        out.append(InstallmentAllocation(inst, fee, interest, principal))
    return out, remaining


def paid_total(repayments: Iterable[Repayment]) -> int:
    return sum(r.amount for r in repayments if not r.reversed)


def figures(
    installments: Iterable[Installment],
    repayments: Iterable[Repayment],
    business_date: dt.date | None,
    buckets: BucketScheme,
    pauses: Iterable[Pause] = (),
) -> Figures:
    """Overdue amount, DPD and bucket at *business_date* (nothing is overdue before the first tick).

    Paused days (SPEC §10) do not count: DPD is the number of days d with oldest_due_date <= d < D
    that no pause covers.
    """
    allocations, credit = allocate(installments, paid_total(repayments))
    overdue = 0
    oldest: dt.date | None = None
    outstanding_total = 0
    for alloc in allocations:
        outstanding = alloc.outstanding
        outstanding_total += outstanding
        due = alloc.installment.due_date
        if business_date is not None and due < business_date and outstanding > 0:
            overdue += outstanding
            if oldest is None:  # allocations are sorted by due date
                oldest = due
    dpd = 0
    if business_date is not None and oldest is not None:
        dpd = (business_date - oldest).days
        if pauses:  # §10: paused days do not count
            dpd -= paused_days(pauses, oldest, business_date)
    return Figures(overdue, dpd, buckets.bucket_for(dpd), oldest, outstanding_total, credit)


def first_unpaid_due_date(installments: Iterable[Installment], repayments: Iterable[Repayment]) -> dt.date | None:
    """The due date of the oldest installment not fully paid: the loan falls behind the day after.

    What :func:`allocate` would say, without building its allocations (this runs for every
    change of every loan): amounts due are never negative (the rules reject such a schedule),
    so an installment is fully paid exactly when what is left covers its whole amount.
    """
    remaining = paid_total(repayments)
    for inst in sorted(installments, key=_OLDEST_FIRST):
        amount = inst.principal_due + inst.interest_due + inst.fee_due
        if remaining < amount:
            return inst.due_date
        remaining -= amount
    return None
