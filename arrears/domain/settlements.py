"""Settlements (SPEC §10): a discounted payoff an agency negotiates and the lender accepts. Pure.

* **Discount** = 1 − amount / the loan's outstanding amount (every unpaid installment, due or
  not), computed exactly (fractions) and compared with the configured limits exactly.
* **Policy**: within the bucket's ``max_discount`` and not above ``approval_above``: approved;
  within ``max_discount`` but above ``approval_above``: pending a person's decision
  (maker-checker); above ``max_discount`` (or a bucket with no limit): rejected.
* **Fulfilment**: repayments valued from the approval's business date to ``pay_by``
  (inclusive) that reach the amount. Repayments already on the ledger when the proposal was
  decided lowered the outstanding amount the discount was measured against: they do not
  count a second time.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from .ledger import Repayment

PENDING = "PENDING"
APPROVED = "APPROVED"
FULFILLED = "FULFILLED"
BROKEN = "BROKEN"
REJECTED = "REJECTED"
ACTIVE = frozenset({PENDING, APPROVED})

POLICY = "policy"  # approved_by / rejected_by of a decision the configuration made

# SettlementRejected reasons
ABOVE_MAX_DISCOUNT = "ABOVE_MAX_DISCOUNT"
NO_SETTLEMENT_IN_BUCKET = "NO_SETTLEMENT_IN_BUCKET"
NOTHING_OUTSTANDING = "NOTHING_OUTSTANDING"
PAY_BY_PASSED = "PAY_BY_PASSED"
BY_PERSON = "REJECTED"
SUPERSEDED = "SUPERSEDED"
CASE_CLOSED = "CASE_CLOSED"
EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class SettlementTerms:
    """The configured limits: ``max_discount`` by bucket and the approval threshold."""

    max_discount: tuple[tuple[str, float], ...] = ()  # (bucket, largest discount accepted)
    approval_above: float | None = None  # discounts above this need a person; None: none do

    @property
    def offered(self) -> bool:
        return bool(self.max_discount)

    def limit(self, bucket: str) -> float | None:
        return next((limit for name, limit in self.max_discount if name == bucket), None)


@dataclass(frozen=True, slots=True)
class Settlement:
    """A case's latest settlement and where it stands."""

    settlement_id: str  # <case_id>:S<n>
    agency_id: str
    work_order_id: str
    amount: int
    pay_by: dt.date
    discount: float
    status: str  # PENDING, APPROVED, FULFILLED, BROKEN, REJECTED
    proposed_on: dt.date  # the business date of the proposal
    approved_on: dt.date | None = None
    approved_by: str | None = None
    counted_before: tuple[str, ...] = ()  # payments on the ledger at the proposal, valued on or after it
    event_id: str = ""  # the SettlementProposed
    paid_amount: int = 0  # when fulfilled or broken

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy says of a proposal, and why."""

    status: str  # APPROVED, PENDING or REJECTED
    discount: Fraction
    reason: str | None = None  # for REJECTED


def discount(amount: int, outstanding: int) -> Fraction:
    """1 − amount / outstanding, exactly (outstanding > 0)."""
    return 1 - Fraction(amount, outstanding)


def as_float(share: Fraction) -> float:
    """A share for the records (6 decimals: exact enough for a reader, the same in every run)."""
    return round(float(share), 6)


def _exact(share: float) -> Fraction:
    """A configured share as the decimal the operator wrote (0.1 is 1/10, not the nearest double)."""
    return Fraction(repr(share))


def decide(terms: SettlementTerms, bucket: str, amount: int, outstanding: int, pay_by: dt.date,
           business_date: dt.date) -> Decision:
    """The policy's decision on a proposal of *amount* by *pay_by*, for a case in *bucket*."""
    if outstanding <= 0:
        return Decision(REJECTED, Fraction(0), NOTHING_OUTSTANDING)
    share = discount(amount, outstanding)
    limit = terms.limit(bucket)
    if limit is None:
        return Decision(REJECTED, share, NO_SETTLEMENT_IN_BUCKET)
    if pay_by < business_date:
        return Decision(REJECTED, share, PAY_BY_PASSED)
    if share > _exact(limit):
        return Decision(REJECTED, share, ABOVE_MAX_DISCOUNT)
    if terms.approval_above is not None and share > _exact(terms.approval_above):
        return Decision(PENDING, share)
    return Decision(APPROVED, share)


def min_amount(outstanding: int, max_discount: float) -> int:
    """The smallest amount within *max_discount* of *outstanding* (rounded up to a whole minor unit)."""
    return math.ceil(outstanding * (1 - _exact(max_discount)))


def paid_towards(settlement: Settlement, repayments: Iterable[Repayment]) -> int:
    """Repayments valued from the approval's business date to pay_by that count towards it."""
    if settlement.approved_on is None:
        return 0
    return sum(r.amount for r in repayments
               if not r.reversed and settlement.approved_on <= r.value_date <= settlement.pay_by
               and r.payment_id not in settlement.counted_before)
