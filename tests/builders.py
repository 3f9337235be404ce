"""Small factories for domain events in tests (ids and times are derived, not random)."""

from __future__ import annotations

import datetime as dt
import itertools

from arrears.domain import events as ev

_seq = itertools.count(1)
D = dt.date.fromisoformat


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}"


def opened(loan_id: str = "L1", currency: str = "CNY", customer_id: str = "C1", **kw: object) -> ev.LoanOpened:
    return ev.LoanOpened(
        event_id=str(kw.pop("event_id", _id("open"))), occurred_at=0, loan_id=loan_id, customer_id=customer_id,
        product_code="CASH", currency=currency, principal=300_000, opened_on=D("2026-01-01"),
        customer=ev.Customer(name="张三", phone="13800000000", national_id="110101199001011234",
                             province="浙江", city="杭州"),
    )


def installment(no: int, due: str, principal: int = 10_000, interest: int = 0, fee: int = 0,
                loan_id: str = "L1", currency: str = "CNY", event_id: str | None = None) -> ev.InstallmentScheduled:
    return ev.InstallmentScheduled(event_id or _id("inst"), 0, loan_id, no, D(due), principal, interest, fee, currency)


def repayment(payment_id: str, amount: int, loan_id: str = "L1", currency: str = "CNY",
              event_id: str | None = None, value_date: str = "2026-01-01") -> ev.RepaymentReceived:
    return ev.RepaymentReceived(event_id or _id("pay"), 0, loan_id, payment_id, amount, currency, D(value_date),
                                "BANK_TRANSFER")


def reversal(payment_id: str, loan_id: str = "L1", event_id: str | None = None) -> ev.RepaymentReversed:
    return ev.RepaymentReversed(event_id or _id("rev"), 0, loan_id, payment_id, "NSF")


def closed(reason: str = "WRITTEN_OFF", loan_id: str = "L1") -> ev.LoanClosed:
    return ev.LoanClosed(_id("close"), 0, loan_id, reason)


def tick(date: str) -> ev.Tick:
    return ev.Tick(f"tick-{date}", 0, D(date))
