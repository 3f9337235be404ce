"""Small factories for domain events in tests (ids and times are derived, not random).

Times follow a test clock, as records published live would: a tick is stamped at the start
of its business date (UTC) and moves the clock there; every other event is stamped a second
after the previous one.
"""

from __future__ import annotations

import datetime as dt
import itertools

from arrears.domain import events as ev

_seq = itertools.count(1)
D = dt.date.fromisoformat
_clock = [int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)]


def now() -> int:
    """The next instant of the test clock (a second after the last one)."""
    _clock[0] += 1000
    return _clock[0]


def day_ms(date: str | dt.date) -> int:
    day = D(date) if isinstance(date, str) else date
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def _id(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}"


def opened(loan_id: str = "L1", currency: str = "CNY", customer_id: str = "C1", **kw: object) -> ev.LoanOpened:
    return ev.LoanOpened(
        event_id=str(kw.pop("event_id", _id("open"))), occurred_at=now(), loan_id=loan_id, customer_id=customer_id,
        product_code="CASH", currency=currency, principal=300_000, opened_on=D("2026-01-01"),
        customer=ev.Customer(name="张三", phone="13800000000", national_id="110101199001011234",
                             province="浙江", city="杭州"),
    )


def installment(no: int, due: str, principal: int = 10_000, interest: int = 0, fee: int = 0,
                loan_id: str = "L1", currency: str = "CNY", event_id: str | None = None) -> ev.InstallmentScheduled:
    return ev.InstallmentScheduled(event_id or _id("inst"), now(), loan_id, no, D(due), principal, interest, fee,
                                   currency)


def repayment(payment_id: str, amount: int, loan_id: str = "L1", currency: str = "CNY",
              event_id: str | None = None, value_date: str = "2026-01-01") -> ev.RepaymentReceived:
    return ev.RepaymentReceived(event_id or _id("pay"), now(), loan_id, payment_id, amount, currency, D(value_date),
                                "BANK_TRANSFER")


def reversal(payment_id: str, loan_id: str = "L1", event_id: str | None = None) -> ev.RepaymentReversed:
    return ev.RepaymentReversed(event_id or _id("rev"), now(), loan_id, payment_id, "NSF")


def closed(reason: str = "WRITTEN_OFF", loan_id: str = "L1") -> ev.LoanClosed:
    return ev.LoanClosed(_id("close"), now(), loan_id, reason)


def tick(date: str) -> ev.Tick:
    _clock[0] = day_ms(date)
    return ev.Tick(f"tick-{date}", day_ms(date), D(date))
