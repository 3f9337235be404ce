"""Synthetic input records for the benchmark: a realistic mix, and a loan book for the tick.

Values are Avro-ready (dates as ``date``, instants as epoch millis) and ids are derived from
counters, so two runs publish the same bytes. Personal data is obviously fake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Record = tuple[str, dict[str, Any]]  # (record name, Avro-ready value)

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: occurred_at of everything, plus a counter
OPENED_ON = dt.date(2026, 1, 1)
CURRENCY = "CNY"


def loan_id(run: str, n: int) -> str:
    return f"{run}-L{n:07d}"


def loan_opened(run: str, n: int) -> Record:
    lid = loan_id(run, n)
    return "LoanOpened", {
        "event_id": f"{lid}-open",
        "occurred_at": EPOCH_MS + n,
        "loan_id": lid,
        "customer_id": f"{run}-C{n:07d}",
        "product_code": "CASH",
        "currency": CURRENCY,
        "principal": 600_000 + (n % 7) * 10_000,
        "opened_on": OPENED_ON,
        "customer": {
            "name": f"Bench Borrower {n}",
            "phone": f"+86139{n % 100_000_000:08d}",
            "national_id": f"99000020000101{n % 10_000:04d}",
            "province": "Zhejiang",
            "city": "Hangzhou",
            "timezone": "Asia/Shanghai",
            "emergency_contacts": [],
        },
    }


def installment(run: str, n: int, number: int, due: dt.date, principal: int = 100_000) -> Record:
    lid = loan_id(run, n)
    return "InstallmentScheduled", {
        "event_id": f"{lid}-i{number}",
        "occurred_at": EPOCH_MS + n,
        "loan_id": lid,
        "installment_no": number,
        "due_date": due,
        "principal_due": principal,
        "interest_due": 4_500,
        "fee_due": 0,
        "currency": CURRENCY,
    }


def repayment(run: str, n: int, payment: str, amount: int, value_date: dt.date, at: int = 0) -> Record:
    lid = loan_id(run, n)
    return "RepaymentReceived", {
        "event_id": f"{lid}-pay-{payment}",
        "occurred_at": EPOCH_MS + n + at,
        "loan_id": lid,
        "payment_id": f"{lid}-{payment}",
        "amount": amount,
        "currency": CURRENCY,
        "value_date": value_date,
        "channel": "AUTO_DEBIT",
        "reference": None,
    }


def contact(run: str, n: int, attempt: int) -> Record:
    lid = loan_id(run, n)
    return "ContactAttempted", {
        "event_id": f"{lid}-contact-{attempt}",
        "occurred_at": EPOCH_MS + n,
        "agency_id": "BENCH",
        "case_id": f"{lid}:1",
        "work_order_id": f"WO-{lid}:1",
        "attempted_at": EPOCH_MS + n,
        "channel": "CALL",
        "party": "DEBTOR",
        "outcome": "NO_ANSWER",
    }


INSTALLMENTS = 6
REPAYMENTS = 3
CONTACTS = 1
EVENTS_PER_MIXED_LOAN = 1 + INSTALLMENTS + REPAYMENTS + CONTACTS


def mixed(run: str, loans: int) -> Iterator[Record]:
    """A day's worth of upstream traffic: per loan an opening, a 6-month schedule, three
    repayments and one agency result (which the processor dead-letters: no case is assigned).

    Loans are interleaved (each loan's events in its own order), as many systems publishing
    at once would deliver them.
    """
    for n in range(loans):
        yield loan_opened(run, n)
    for number in range(1, INSTALLMENTS + 1):
        due = OPENED_ON + dt.timedelta(days=30 * number)
        for n in range(loans):
            yield installment(run, n, number, due)
    for k in range(REPAYMENTS):
        for n in range(loans):
            yield repayment(run, n, f"p{k}", 104_500, OPENED_ON + dt.timedelta(days=30 * (k + 1)), at=k)
    for n in range(loans):
        yield contact(run, n, 0)


@dataclass(frozen=True)
class Book:
    """A loan book for the tick: every loan has one installment; a share is past due."""

    run: str
    loans: int
    delinquent_every: int  # loan n is delinquent when n % delinquent_every == 0
    due_late: dt.date  # the delinquent loans' installment (before the tick's date)
    due_current: dt.date  # everyone else's (after it)

    def is_delinquent(self, n: int) -> bool:
        return n % self.delinquent_every == 0

    @property
    def delinquent(self) -> int:
        return len(range(0, self.loans, self.delinquent_every))

    def records(self) -> Iterator[Record]:
        for n in range(self.loans):
            yield loan_opened(self.run, n)
            yield installment(self.run, n, 1, self.due_late if self.is_delinquent(n) else self.due_current)


def book(run: str, loans: int, tick_date: dt.date, delinquent_share: float = 0.03) -> Book:
    """*loans* loans, about *delinquent_share* of them with an installment due before *tick_date*."""
    every = max(1, round(1 / delinquent_share)) if delinquent_share > 0 else loans + 1
    return Book(run, loans, every, tick_date - dt.timedelta(days=5), tick_date + dt.timedelta(days=20))
