"""Synthetic input records for the benchmark: a production-like mix, a large book, latency traffic.

Values are Avro-ready (dates as ``date``, instants as epoch millis) and ids are derived from
counters, so two runs publish the same bytes. Personal data is obviously fake.

**The mix** (:func:`mix`) is a year in the life of a cohort of loans, in the order a lender's
systems would publish it: every loan opens with a 12-installment schedule; most repay on time;
a few fall behind and go through the processor's whole path — a case opens at a tick and is
assigned to AG1 (M1), the agency reports contacts (one of them in quiet hours: a compliance
violation) and a promise, the debtor pays and the case is cured; or the case escalates to M2 at
the next tick and is reallocated to AG2 before the cure; or it is never paid and escalates to
M7+ while AG2 reports a contact every month. Ticks come once a month, each with a barrier, so
every event falls on the side of the tick its time says. Agency results name the work orders
the processor issues (ids ``WO-<case_id>-<n>``, the agency fixed by the bucket: see
``context.AGENCIES``); a result the processor nevertheless refuses is counted by the bench as
``results_not_assigned``.

**The book** (:func:`book`) is a lender's loan book as of a business date: loans opened over
the past year, each with 12 installments and the repayments of those already due, about 3% of
them behind on their latest installment, so the tick at that date opens a case for each.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Record = tuple[str, dict[str, Any]]  # (record name, Avro-ready value)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CURRENCY = "CNY"
INSTALLMENTS = 12
PRINCIPAL_DUE = 50_000
INTEREST_DUE = 4_500
INSTALLMENT_DUE = PRINCIPAL_DUE + INTEREST_DUE
MIX_OPENED_ON = dt.date(2025, 1, 1)  # the mix's cohort; every time in it is long past
TICK_DATE = dt.date(2026, 3, 2)  # the book's business date


def at_ms(day: dt.date, hour: int = 0, minute: int = 0) -> int:
    """Epoch millis of *day* at hh:mm UTC."""
    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
    return int((moment - EPOCH).total_seconds() * 1000)


def loan_id(run: str, n: int) -> str:
    return f"{run}-L{n:07d}"


def case_id(lid: str, n: int = 1) -> str:
    return f"{lid}:{n}"


def work_order_id(lid: str, number: int, case: int = 1) -> str:
    return f"WO-{case_id(lid, case)}-{number}"


def loan_opened(run: str, n: int, opened_on: dt.date = MIX_OPENED_ON, occurred_at: int | None = None) -> Record:
    lid = loan_id(run, n)
    return "LoanOpened", {
        "event_id": f"{lid}-open",
        "occurred_at": at_ms(opened_on) + n % 60_000 if occurred_at is None else occurred_at,
        "loan_id": lid,
        "customer_id": f"{run}-C{n:07d}",
        "product_code": "CASH",
        "currency": CURRENCY,
        "principal": INSTALLMENTS * PRINCIPAL_DUE,
        "opened_on": opened_on,
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


def installment(run: str, n: int, number: int, due: dt.date, principal: int = PRINCIPAL_DUE,
                occurred_at: int = 0) -> Record:
    lid = loan_id(run, n)
    return "InstallmentScheduled", {
        "event_id": f"{lid}-i{number}",
        "occurred_at": occurred_at,
        "loan_id": lid,
        "installment_no": number,
        "due_date": due,
        "principal_due": principal,
        "interest_due": INTEREST_DUE,
        "fee_due": 0,
        "currency": CURRENCY,
    }


def repayment(run: str, n: int, payment: str, amount: int, value_date: dt.date, occurred_at: int) -> Record:
    lid = loan_id(run, n)
    return "RepaymentReceived", {
        "event_id": f"{lid}-pay-{payment}",
        "occurred_at": occurred_at,
        "loan_id": lid,
        "payment_id": f"{lid}-{payment}",
        "amount": amount,
        "currency": CURRENCY,
        "value_date": value_date,
        "channel": "AUTO_DEBIT",
        "reference": None,
    }


def contact(run: str, n: int, attempt: str, agency: str, wo_number: int, attempted_at: int,
            outcome: str = "NO_ANSWER") -> Record:
    lid = loan_id(run, n)
    return "ContactAttempted", {
        "event_id": f"{lid}-contact-{attempt}",
        "occurred_at": attempted_at + 60_000,
        "agency_id": agency,
        "case_id": case_id(lid),
        "work_order_id": work_order_id(lid, wo_number),
        "attempted_at": attempted_at,
        "channel": "CALL",
        "party": "DEBTOR",
        "outcome": outcome,
    }


def promise(run: str, n: int, agency: str, wo_number: int, occurred_at: int, amount: int,
            promised_date: dt.date) -> Record:
    lid = loan_id(run, n)
    return "PromiseToPay", {
        "event_id": f"{lid}-promise-{wo_number}",
        "occurred_at": occurred_at,
        "agency_id": agency,
        "case_id": case_id(lid),
        "work_order_id": work_order_id(lid, wo_number),
        "promised_amount": amount,
        "promised_date": promised_date,
    }


# --------------------------------------------------------------------------- the mix
GOOD, CURED, ESCALATED, UNPAID = "on time", "cured in M1", "escalated to M2, then cured", "never paid"


def profile(n: int) -> str:
    """Loan n's story: per hundred loans 3 cured in M1, 2 escalated then cured, 1 never paid."""
    k = n % 100
    if k < 3:
        return CURED
    if k < 5:
        return ESCALATED
    if k == 5:
        return UNPAID
    return GOOD


@dataclass(frozen=True)
class Tick:
    business_date: dt.date
    occurred_at: int
    event_id: str


@dataclass
class History:
    """Records in publishing order, cut by ticks: segment i is published before ticks[i]."""

    segments: list[list[Record]]
    ticks: list[Tick]
    counts: Counter[str] = field(default_factory=Counter)  # input records by type

    @property
    def events(self) -> int:
        return sum(self.counts.values())


def mix_due(number: int) -> dt.date:
    return MIX_OPENED_ON + dt.timedelta(days=30 * number)


def mix_tick(number: int) -> dt.date:
    """The business date of the mix's tick *number* (1..12): five days after installment *number* falls due."""
    return mix_due(number) + dt.timedelta(days=5)


def _loan_story(run: str, n: int) -> Iterator[tuple[int, Record]]:
    """(time, record) of everything published about loan n over the year."""
    opened = at_ms(MIX_OPENED_ON) + n % 60_000
    yield opened, loan_opened(run, n, MIX_OPENED_ON, opened)
    for k in range(1, INSTALLMENTS + 1):
        yield opened + k, installment(run, n, k, mix_due(k), occurred_at=opened + k)
    story = profile(n)

    def on_time(first: int) -> Iterator[tuple[int, Record]]:
        for k in range(first, INSTALLMENTS + 1):
            day = mix_due(k) - dt.timedelta(days=2)
            yield at_ms(day, 6), repayment(run, n, f"i{k}", INSTALLMENT_DUE, day, at_ms(day, 6) + n % 1000)

    if story == GOOD:
        yield from on_time(1)
    elif story == CURED:
        # Behind on installment 1: the tick of day 35 opens a case (DPD 5, M1) and AG1 gets it.
        d1 = mix_tick(1)
        call = at_ms(d1 + dt.timedelta(days=1), 2)  # 10:00 in Shanghai
        late = at_ms(d1 + dt.timedelta(days=1), 15)  # 23:00 in Shanghai: quiet hours
        yield call, contact(run, n, "1", "AG1", 1, call)
        yield late, contact(run, n, "2", "AG1", 1, late, "RIGHT_PARTY_CONTACT")
        yield late + 300_000, promise(run, n, "AG1", 1, late + 300_000, INSTALLMENT_DUE, d1 + dt.timedelta(days=4))
        paid = d1 + dt.timedelta(days=3)
        yield at_ms(paid, 4), repayment(run, n, "late1", INSTALLMENT_DUE, paid, at_ms(paid, 4))
        yield from on_time(2)
    elif story == ESCALATED:
        # Behind on installments 1 and 2: M1 at the first tick, M2 at the second (reallocated to AG2).
        d1, d2 = mix_tick(1), mix_tick(2)
        call = at_ms(d1 + dt.timedelta(days=2), 3)
        yield call, contact(run, n, "1", "AG1", 1, call)
        talk = at_ms(d2 + dt.timedelta(days=1), 2)
        yield talk, contact(run, n, "2", "AG2", 2, talk, "PROMISE_TO_PAY")
        yield talk + 120_000, promise(run, n, "AG2", 2, talk + 120_000, 2 * INSTALLMENT_DUE,
                                      d2 + dt.timedelta(days=7))
        paid = d2 + dt.timedelta(days=5)
        yield at_ms(paid, 4), repayment(run, n, "late12", 2 * INSTALLMENT_DUE, paid, at_ms(paid, 4))
        yield from on_time(3)
    else:  # UNPAID: AG1 calls once in M1; AG2 holds the case from M2 on and calls every month
        call = at_ms(mix_tick(1) + dt.timedelta(days=1), 3)
        yield call, contact(run, n, "1", "AG1", 1, call)
        for k in range(2, INSTALLMENTS + 1):
            call = at_ms(mix_tick(k) + dt.timedelta(days=1), 3)
            yield call, contact(run, n, f"m{k}", "AG2", 2, call)


def mix(run: str, loans: int) -> History:
    """The production-like ingest mix for *loans* loans (about 25 input events each, 12 ticks)."""
    ticks = [Tick(mix_tick(k), at_ms(mix_tick(k)), f"{run}-tick-{k}") for k in range(1, INSTALLMENTS + 1)]
    cuts = [t.occurred_at for t in ticks]
    timed: list[list[tuple[int, int, Record]]] = [[] for _ in range(len(ticks) + 1)]
    counts: Counter[str] = Counter()
    for n in range(loans):
        for when, record in _loan_story(run, n):
            segment = sum(1 for cut in cuts if when >= cut)
            timed[segment].append((when, n, record))
            counts[record[0]] += 1
    segments = [[record for _, _, record in sorted(part, key=lambda x: (x[0], x[1]))] for part in timed]
    return History(segments, ticks, counts)


def mix_outcome(loans: int) -> dict[str, int]:
    """What the mix's stories make the processor do (loans per story), for the report."""
    stories = Counter(profile(n) for n in range(loans))
    return {"loans_cured_in_m1": stories[CURED], "loans_escalated_then_cured": stories[ESCALATED],
            "loans_never_paid": stories[UNPAID], "loans_on_time": stories[GOOD]}


# --------------------------------------------------------------------------- the book
@dataclass(frozen=True)
class Book:
    """A loan book as of *tick_date*: loans [start, stop) of a book whose loan n is delinquent when
    ``n % delinquent_every == 0`` (behind on its latest installment, which fell due in the month
    before the tick)."""

    run: str
    start: int
    stop: int
    tick_date: dt.date
    delinquent_every: int = 33  # about 3%

    @property
    def loans(self) -> int:
        return self.stop - self.start

    def is_delinquent(self, n: int) -> bool:
        return n % self.delinquent_every == 0

    @property
    def delinquent(self) -> int:
        return sum(1 for n in range(self.start, self.stop) if self.is_delinquent(n))

    def age_days(self, n: int) -> int:
        """How long before the tick loan n opened: spread over the year (at least a month when delinquent)."""
        return 31 + (n * 7919) % 329 if self.is_delinquent(n) else 1 + (n * 7919) % 359

    def part(self, start: int, stop: int) -> Book:
        return Book(self.run, start, stop, self.tick_date, self.delinquent_every)

    def records(self) -> Iterator[Record]:
        """Each loan's history in turn: opening, schedule, the repayments of installments already due."""
        for n in range(self.start, self.stop):
            opened_on = self.tick_date - dt.timedelta(days=self.age_days(n))
            opened = at_ms(opened_on, 1) + n % 60_000
            yield loan_opened(self.run, n, opened_on, opened)
            due = [opened_on + dt.timedelta(days=30 * k) for k in range(1, INSTALLMENTS + 1)]
            for k, day in enumerate(due, 1):
                yield installment(self.run, n, k, day, occurred_at=opened + k)
            past = [k for k, day in enumerate(due, 1) if day < self.tick_date]
            if self.is_delinquent(n):
                past = past[:-1]  # the latest installment due is not paid: a case opens at the tick
            for k in past:
                day = due[k - 1] - dt.timedelta(days=1)
                yield repayment(self.run, n, f"i{k}", INSTALLMENT_DUE, day, at_ms(day, 6) + n % 1000)

    def events(self) -> int:
        """How many records :meth:`records` yields (without building them)."""
        total = 0
        for n in range(self.start, self.stop):
            opened_on = self.tick_date - dt.timedelta(days=self.age_days(n))
            paid = sum(1 for k in range(1, INSTALLMENTS + 1) if opened_on + dt.timedelta(days=30 * k) < self.tick_date)
            total += 1 + INSTALLMENTS + paid - (1 if self.is_delinquent(n) and paid else 0)
        return total


def book(run: str, loans: int, tick_date: dt.date = TICK_DATE) -> Book:
    return Book(run, 0, loans, tick_date)


# --------------------------------------------------------------------------- latency traffic
def delinquent_loan(run: str, n: int, tick_date: dt.date) -> list[Record]:
    """A loan one installment behind at *tick_date* (a case opens at that tick, M1: AG1's)."""
    return [loan_opened(run, n, tick_date - dt.timedelta(days=40)),
            installment(run, n, 1, tick_date - dt.timedelta(days=3), occurred_at=at_ms(tick_date) - 1)]


def background(run: str, first_loan: int, loans: int, count: int, now_ms: int, tick_date: dt.date) -> list[Record]:
    """Steady upstream traffic for the latency phase, in the ingest mix's proportions.

    Per 25 events: a new loan opens with its 12-installment schedule, 10 repayments arrive
    for loans opened earlier in the traffic, and the agency works the open cases (of loans
    ``first_loan .. first_loan + loans``): one contact (judged by the compliance rules,
    recorded on the case) and one part-payment (CaseBalanceChanged, CaseState, WorkOrderUpdated).
    """
    records: list[Record] = []
    fresh = first_loan + loans  # the traffic's new loans follow the loans with open cases
    opened = 0
    for i in range(count):
        kind = i % 25
        at = now_ms + i
        if kind == 0:
            records.append(loan_opened(run, fresh + opened, tick_date, at))
            opened += 1
        elif kind <= 12:
            due = tick_date + dt.timedelta(days=30 * kind)
            records.append(installment(run, fresh + opened - 1, kind, due, occurred_at=at))
        elif kind <= 22:
            n = fresh + max(0, opened - 1 - (kind - 13))  # the ten loans opened last
            records.append(repayment(run, n, f"bg{i}", INSTALLMENT_DUE, tick_date, at))
        elif kind == 23:
            records.append(contact(run, first_loan + (i // 25) % loans, f"bg{i}", "AG1", 1, at))
        else:
            records.append(repayment(run, first_loan + (i // 25) % loans, f"bg{i}", 100, tick_date, at))
    return records
