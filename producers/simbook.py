"""The synthetic loan book of ``arrears simulate``: pure, seeded, and reproducible.

Given a seed, a number of loans, a start date and a number of days, :func:`make_book` returns
every input record the simulated loan system publishes, each dated by the business day it
happens on. Each loan draws from its own generator seeded by ``(seed, loan number)``, so loan 7
is the same loan in a book of 50 and in a book of 2,000, and ids are UUIDv5s of the same
inputs. Nothing here reads a clock or touches Kafka; :mod:`producers.simulate` publishes.

The behaviour model (stated in docs/simulation.md, tested in tests/unit/test_simulate.py):

- every loan is one of four payers, drawn with :attr:`SimRates.payer_mix`: *punctual* (pays each
  installment in full on or a few days before its due date), *late* (pays each installment in
  full 1–``late_days`` days after it fell due), *partial* (pays a share on the due date and the
  rest ``partial_catch_up_days`` later) and *defaulting* (pays on time up to one installment,
  then stops);
- a defaulting loan's delinquency walks the buckets: on entering bucket M1, M2, ... it cures
  (pays everything overdue on a day inside that bucket, then pays punctually again) with the
  bucket's :attr:`SimRates.cure` probability; otherwise it may make a part payment that does
  not move its DPD (:attr:`SimRates.part_payment`) and rolls into the next bucket; at
  ``write_off_dpd`` days past due the lender writes it off (``LoanClosed WRITTEN_OFF``);
- a loan whose installments are all paid closes ``PAID_OFF`` on the day of its last payment;
- the lender pauses the delinquency of a few defaulting loans for a hardship
  (:attr:`SimRates.hardship_share`, SPEC §10): it learns of the hardship a few days after it
  began, so the ``PauseDelinquency`` it publishes is backdated, for two to six weeks.

Money is integers in fen throughout; nothing is ever a float except the rates.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SIM_NAMESPACE = uuid.UUID("5d6c1f0e-8f3a-5b9e-a1d2-3c4b5a697881")
CURRENCY = "CNY"
TIMEZONE = "Asia/Shanghai"
CST = dt.timezone(dt.timedelta(hours=8))  # China has no DST: a fixed offset is exact

PUNCTUAL, LATE, PARTIAL, DEFAULTING = "punctual", "late", "partial", "defaulting"
PAYERS = (PUNCTUAL, LATE, PARTIAL, DEFAULTING)
#: DPD ranges of the default bucket scheme that a defaulting loan walks through (M7+ is never
#: reached with the default write-off at 180 days).
BUCKET_RANGES: tuple[tuple[str, int, int], ...] = (
    ("M1", 1, 30), ("M2", 31, 60), ("M3", 61, 90), ("M4", 91, 120), ("M5", 121, 150), ("M6", 151, 180),
    ("M7+", 181, 10_000),
)


@dataclass(frozen=True)
class Product:
    """A loan product: number of monthly installments, annual rate, principal range in fen."""

    code: str
    installments: int
    weight: float
    min_principal: int
    max_principal: int
    annual_rate_bp: int = 1800  # 18% a year, simple interest on the outstanding principal
    monthly_fee_bp: int = 0  # a service fee on the original principal, charged per installment


PRODUCTS: tuple[Product, ...] = (
    Product("CASH-3", 3, 0.20, 100_000, 800_000, monthly_fee_bp=50),
    Product("CASH-6", 6, 0.30, 200_000, 2_000_000, monthly_fee_bp=30),
    Product("INST-12", 12, 0.30, 500_000, 5_000_000),
    Product("INST-24", 24, 0.12, 1_000_000, 10_000_000, annual_rate_bp=1500),
    Product("INST-36", 36, 0.08, 2_000_000, 20_000_000, annual_rate_bp=1200),
)


@dataclass(frozen=True)
class SimRates:
    """The behaviour model's rates (docs/simulation.md states and explains them)."""

    payer_mix: Mapping[str, float] = field(
        default_factory=lambda: {PUNCTUAL: 0.72, LATE: 0.12, PARTIAL: 0.06, DEFAULTING: 0.10}
    )
    early_days: int = 3  # punctual payers pay 0..early_days days before the due date
    late_days: int = 25  # late payers pay 1..late_days days after the due date
    partial_share: tuple[float, float] = (0.3, 0.8)  # share of an installment partial payers pay on time
    partial_catch_up_days: tuple[int, int] = (10, 45)  # ...and the rest this many days after the due date
    #: probability that a defaulting loan cures while in each bucket (given it reached the bucket)
    cure: Mapping[str, float] = field(
        default_factory=lambda: {"M1": 0.25, "M2": 0.15, "M3": 0.10, "M4": 0.07, "M5": 0.05, "M6": 0.03,
                                 "M7+": 0.02}
    )
    part_payment: float = 0.25  # probability of a part payment in a bucket the loan rolls out of
    write_off_dpd: int = 180
    new_loan_share: float = 0.10  # loans opened during the simulated period rather than before it
    repeat_borrower_share: float = 0.15  # loans taken by the customer of an earlier loan (one debtor, two loans)
    default_lookback_days: int = 150  # defaulting loans stop paying at most this long before the start
    hardship_share: float = 0.05  # defaulting loans the lender pauses for a hardship (SPEC §10)


@dataclass(frozen=True)
class SimEvent:
    """One input record of the book, on the business day it happens (its value date)."""

    day: dt.date
    record: str  # LoanOpened, InstallmentScheduled, RepaymentReceived, LoanClosed, PauseDelinquency
    value: Mapping[str, Any]  # the record's fields (dates as dt.date, occurred_at as epoch millis)


@dataclass(frozen=True)
class SimLoan:
    """What the book knows of one loan (for tests and the summary; personal data stays in events)."""

    loan_id: str
    product: str
    payer: str
    principal: int
    opened_on: dt.date
    installments: int
    defaults_at: int | None  # installment number the loan stops paying at (defaulting loans)
    cured_in: str | None  # bucket a defaulting loan cured in, within the period
    written_off_on: dt.date | None
    buckets_reached: tuple[str, ...]  # buckets a defaulting loan's delinquency entered, in order
    paused_from: dt.date | None = None  # the first day of a hardship pause (SPEC §10)


@dataclass(frozen=True)
class Book:
    """Every loan and every event of a simulated period, by day."""

    seed: str
    start: dt.date
    days: int
    loans: tuple[SimLoan, ...]
    events: Mapping[dt.date, tuple[SimEvent, ...]]

    @property
    def end(self) -> dt.date:
        """The first day after the period (no tick is published for it)."""
        return self.start + dt.timedelta(days=self.days)

    def history(self) -> list[SimEvent]:
        """Events before the start date: published before the first tick."""
        return [e for day in sorted(d for d in self.events if d < self.start) for e in self.events[day]]

    def on(self, day: dt.date) -> tuple[SimEvent, ...]:
        return tuple(self.events.get(day, ()))

    def count(self) -> int:
        return sum(len(v) for v in self.events.values())


# --------------------------------------------------------------------------- people
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = (
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
    "秀兰", "霞", "平", "刚", "桂英", "华", "建华", "文", "玉兰", "辉", "鑫", "宇", "浩", "子涵", "欣怡", "梓轩",
    "雨桐", "思远", "佳琪", "俊杰", "晓东", "海燕", "志强", "丹", "婷", "斌", "宁", "凯", "琳", "雪",
)
#: (province, city, 6-digit administrative division code of a district there), weighted by population
PLACES: tuple[tuple[str, str, str, int], ...] = (
    ("广东省", "广州市", "440106", 6), ("广东省", "深圳市", "440305", 6), ("广东省", "东莞市", "441900", 3),
    ("山东省", "济南市", "370102", 3), ("山东省", "青岛市", "370202", 3), ("河南省", "郑州市", "410105", 5),
    ("江苏省", "南京市", "320102", 3), ("江苏省", "苏州市", "320505", 4), ("四川省", "成都市", "510107", 5),
    ("河北省", "石家庄市", "130102", 4), ("湖南省", "长沙市", "430104", 4), ("浙江省", "杭州市", "330106", 4),
    ("浙江省", "宁波市", "330203", 2), ("安徽省", "合肥市", "340104", 3), ("湖北省", "武汉市", "420106", 4),
    ("广西壮族自治区", "南宁市", "450103", 3), ("云南省", "昆明市", "530102", 3), ("江西省", "南昌市", "360102", 3),
    ("辽宁省", "沈阳市", "210102", 3), ("福建省", "厦门市", "350203", 2), ("福建省", "福州市", "350102", 2),
    ("陕西省", "西安市", "610113", 3), ("上海市", "上海市", "310115", 5), ("北京市", "北京市", "110105", 5),
    ("重庆市", "重庆市", "500103", 4), ("天津市", "天津市", "120101", 2), ("黑龙江省", "哈尔滨市", "230102", 2),
    ("山西省", "太原市", "140105", 2), ("贵州省", "贵阳市", "520102", 2), ("吉林省", "长春市", "220102", 2),
)
RELATIONS = ("配偶", "父亲", "母亲", "兄弟", "姐妹", "朋友", "同事")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of an 18-character resident id."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def national_id(rng: random.Random, area: str, today: dt.date) -> str:
    """A well-formed 18-character id: area code, birth date (age 20–58), sequence, check digit."""
    birth = today - dt.timedelta(days=rng.randint(20 * 365, 58 * 365))
    first17 = f"{area}{birth:%Y%m%d}{rng.randint(1, 999):03d}"
    return first17 + id_check_digit(first17)


def phone(rng: random.Random) -> str:
    """A mainland mobile number: 1, then 3–9, then nine digits."""
    return f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}"


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def customer(rng: random.Random, today: dt.date) -> dict[str, Any]:
    province, city, area, _ = rng.choices(PLACES, weights=[p[3] for p in PLACES])[0]
    contacts = [
        {"name": person_name(rng), "phone": phone(rng), "relation": rng.choice(RELATIONS)}
        for _ in range(rng.randint(1, 2))
    ]
    return {
        "name": person_name(rng),
        "phone": phone(rng),
        "national_id": national_id(rng, area, today),
        "province": province,
        "city": city,
        "timezone": TIMEZONE,
        "emergency_contacts": contacts,
    }


# --------------------------------------------------------------------------- schedule
def add_months(day: dt.date, months: int, anchor_day: int) -> dt.date:
    """*day* moved by *months* calendar months onto *anchor_day* (at most 28, so always valid)."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, anchor_day)


@dataclass(frozen=True)
class Due:
    number: int
    due_date: dt.date
    principal: int
    interest: int
    fee: int

    @property
    def amount(self) -> int:
        return self.principal + self.interest + self.fee


def schedule(product: Product, principal: int, opened_on: dt.date) -> list[Due]:
    """Equal principal per installment (the remainder on the last), interest on what is outstanding."""
    n = product.installments
    anchor = min(opened_on.day, 28)
    part, rest = divmod(principal, n)
    outstanding = principal
    fee = principal * product.monthly_fee_bp // 10_000
    dues = []
    for i in range(1, n + 1):
        principal_due = part + (rest if i == n else 0)
        interest = outstanding * product.annual_rate_bp // 120_000  # bp a year -> a month, floored to the fen
        dues.append(Due(i, add_months(opened_on, i, anchor), principal_due, interest, fee))
        outstanding -= principal_due
    return dues


# --------------------------------------------------------------------------- one loan
class _LoanPlan:
    """Builds one loan's events; its own generator and id counter make it independent of the others."""

    def __init__(self, seed: str, number: int, start: dt.date, end: dt.date, rates: SimRates) -> None:
        self.seed, self.number, self.start, self.end, self.rates = seed, number, start, end, rates
        self.rng = random.Random(f"{seed}|loan|{number}")
        self.loan_id = f"LN-{number:06d}"
        self.events: list[SimEvent] = []
        self.paid = 0
        self.payments = 0
        self.dues: list[Due] = []
        self.opened_on = start
        self.defaults_at: int | None = None
        self.customer: dict[str, Any] = {}
        self.paused_from: dt.date | None = None

    def _id(self, *parts: object) -> str:
        return str(uuid.uuid5(SIM_NAMESPACE, "|".join([self.seed, self.loan_id, *map(str, parts)])))

    @staticmethod
    def at(day: dt.date, hour: int, minute: int = 0) -> int:
        """Epoch millis of a local (Asia/Shanghai) time on *day*."""
        return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=CST).timestamp() * 1000)

    def add(self, day: dt.date, record: str, value: dict[str, Any]) -> None:
        if day < self.end:
            self.events.append(SimEvent(day, record, value))

    # -- what a day's ledger says (only this book's own payments: agencies' are not known here)
    def due_before(self, day: dt.date) -> int:
        return sum(d.amount for d in self.dues if d.due_date < day)

    def overdue(self, day: dt.date) -> int:
        return max(0, self.due_before(day) - self.paid)

    def oldest_unpaid(self) -> Due | None:
        covered = self.paid
        for due in self.dues:
            if covered < due.amount:
                return due
            covered -= due.amount
        return None

    def pay(self, day: dt.date, amount: int, channel: str = "BANK_TRANSFER") -> None:
        if amount <= 0 or day >= self.end:
            return
        self.payments += 1
        n = self.payments
        self.paid += amount
        self.add(day, "RepaymentReceived", {
            "event_id": self._id("pay", n),
            "occurred_at": self.at(day, self.rng.randint(8, 21), self.rng.randint(0, 59)),
            "loan_id": self.loan_id,
            "payment_id": f"PAY-{self.number:06d}-{n:03d}",
            "amount": amount,
            "currency": CURRENCY,
            "value_date": day,
            "channel": channel,
            "reference": None,
        })

    def borrower(self) -> int:
        """The number of the loan whose customer took this loan: itself, or (for a repeat borrower)
        an earlier loan's customer. Drawn from its own generator: the loan's draws stay the same."""
        number = self.number
        while number > 1:
            rng = random.Random(f"{self.seed}|borrower|{number}")
            if rng.random() >= self.rates.repeat_borrower_share:
                break
            number = rng.randint(1, number - 1)
        return number

    def build(self) -> SimLoan:
        product, payer, principal = self._opening()
        owner = self.borrower()
        cust = self.customer
        if owner != self.number:  # the same person as on the earlier loan: same id, name, phone
            earlier = _LoanPlan(self.seed, owner, self.start, self.end, self.rates)
            earlier._opening()
            cust = earlier.customer
        self.add(self.opened_on, "LoanOpened", {
            "event_id": self._id("opened"),
            "occurred_at": self.at(self.opened_on, 10),
            "loan_id": self.loan_id,
            "customer_id": f"CUS-{owner:07d}",
            "product_code": product.code,
            "currency": CURRENCY,
            "principal": principal,
            "opened_on": self.opened_on,
            "customer": cust,
        })
        return self._lifetime(product, payer, principal)

    def _opening(self) -> tuple[Product, str, int]:
        """The loan's product, payer type, principal, opening date, schedule and customer."""
        rng, rates = self.rng, self.rates
        product = rng.choices(PRODUCTS, weights=[p.weight for p in PRODUCTS])[0]
        payer = rng.choices(PAYERS, weights=[rates.payer_mix[p] for p in PAYERS])[0]
        step = 100_00  # principals are whole hundreds of yuan
        principal = rng.randint(product.min_principal // step, product.max_principal // step) * step
        term_days = product.installments * 30
        days = (self.end - self.start).days
        if rng.random() < rates.new_loan_share:
            opened_on = self.start + dt.timedelta(days=rng.randint(0, max(0, days - 1)))
        else:
            opened_on = self.start - dt.timedelta(days=rng.randint(1, max(2, int(term_days * 0.8))))
        self.opened_on = opened_on
        self.dues = schedule(product, principal, opened_on)
        self.customer = customer(rng, opened_on)
        return product, payer, principal

    def _lifetime(self, product: Product, payer: str, principal: int) -> SimLoan:
        """Its schedule, payments, default walk and close."""
        opened_on = self.opened_on
        for due in self.dues:
            self.add(opened_on, "InstallmentScheduled", {
                "event_id": self._id("installment", due.number),
                "occurred_at": self.at(opened_on, 10, 1),
                "loan_id": self.loan_id,
                "installment_no": due.number,
                "due_date": due.due_date,
                "principal_due": due.principal,
                "interest_due": due.interest,
                "fee_due": due.fee,
                "currency": CURRENCY,
            })
        defaults_at = self._default_installment() if payer == DEFAULTING else None
        cured_in, written_off, reached = None, None, ()
        for due in self.dues:
            if due.due_date >= self.end:
                break
            if defaults_at is not None and due.number == defaults_at:
                self._hardship(due)
                cured_in, written_off, reached = self._default_walk(due)
                if cured_in is None:
                    break
                defaults_at = None  # cured: punctual again from the next installment on
                continue
            if defaults_at is not None and due.number > defaults_at:
                break
            self._pay_installment(due, payer if payer != DEFAULTING else PUNCTUAL)
        total = sum(d.amount for d in self.dues)
        if written_off is None and self.paid >= total:
            last = max(e.day for e in self.events if e.record == "RepaymentReceived")
            self.add(last, "LoanClosed", {"event_id": self._id("closed"), "occurred_at": self.at(last, 22),
                                          "loan_id": self.loan_id, "reason": "PAID_OFF"})
        return SimLoan(self.loan_id, product.code, payer, principal, opened_on, product.installments,
                       self.defaults_at, cured_in, written_off, reached, self.paused_from)

    def _hardship(self, first_unpaid: Due) -> None:
        """Maybe a hardship pause, from its own generator: the rest of the book stays as it was."""
        rng = random.Random(f"{self.seed}|hardship|{self.number}")
        if rng.random() >= self.rates.hardship_share:
            return
        begins = first_unpaid.due_date + dt.timedelta(days=rng.randint(3, 45))
        learned = begins + dt.timedelta(days=rng.randint(2, 10))  # a few days late: backdated
        until = begins + dt.timedelta(days=rng.randint(14, 42))
        if not self.start <= learned < self.end:
            return
        self.paused_from = begins
        self.add(learned, "PauseDelinquency", {
            "event_id": self._id("pause"),
            "occurred_at": self.at(learned, 11),
            "loan_id": self.loan_id,
            "from_date": begins,
            "until_date": until,
            "reason": "hardship: income lost (simulated)",
            "requested_by": "hardship-desk",
        })

    def _default_installment(self) -> int:
        """The first unpaid installment: one falling due late enough that the default shows in the period."""
        window_start = self.start - dt.timedelta(days=self.rates.default_lookback_days)
        window_end = self.end - dt.timedelta(days=20)
        candidates = [d.number for d in self.dues if window_start <= d.due_date < window_end]
        if not candidates:
            candidates = [d.number for d in self.dues if d.due_date < self.end] or [self.dues[0].number]
        self.defaults_at = self.rng.choice(candidates)
        return self.defaults_at

    def _pay_installment(self, due: Due, payer: str) -> None:
        rng, rates = self.rng, self.rates
        if payer == PUNCTUAL:
            day = max(due.due_date - dt.timedelta(days=rng.randint(0, rates.early_days)), self.opened_on)
            self.pay(day, self._owed_through(due))
        elif payer == LATE:
            self.pay(due.due_date + dt.timedelta(days=rng.randint(1, rates.late_days)), self._owed_through(due))
        else:  # PARTIAL
            low, high = rates.partial_share
            first = max(1, int(due.amount * rng.uniform(low, high)))
            owed = self._owed_through(due)
            self.pay(due.due_date, min(first, owed))
            catch_up = due.due_date + dt.timedelta(days=rng.randint(*rates.partial_catch_up_days))
            self.pay(catch_up, self._owed_through(due))

    def _owed_through(self, due: Due) -> int:
        """What brings every installment up to and including *due* to fully paid."""
        return max(0, sum(d.amount for d in self.dues if d.number <= due.number) - self.paid)

    def _default_walk(self, first_unpaid: Due) -> tuple[str | None, dt.date | None, tuple[str, ...]]:
        """Walk the buckets from the missed installment: cure in one, or roll on to the write-off."""
        rng, rates = self.rng, self.rates
        origin = first_unpaid.due_date
        reached: list[str] = []
        for bucket, low, high in BUCKET_RANGES:
            entry = origin + dt.timedelta(days=low)
            if entry >= self.end or low > rates.write_off_dpd:
                return None, None, tuple(reached)
            reached.append(bucket)
            last_dpd = min(high, rates.write_off_dpd - 1)
            if rng.random() < rates.cure.get(bucket, 0.0):
                day = origin + dt.timedelta(days=rng.randint(low, max(low, last_dpd)))
                self.pay(day, self.overdue(day + dt.timedelta(days=1)))
                return (bucket if day < self.end else None), None, tuple(reached)
            if rng.random() < rates.part_payment:
                oldest = self.oldest_unpaid()
                if oldest is not None:
                    # Less than what the oldest installment still owes, so the DPD does not move.
                    remaining = oldest.amount - (self.paid - sum(d.amount for d in self.dues
                                                                 if d.number < oldest.number))
                    part = int(remaining * rng.uniform(0.2, 0.8))
                    if part > 0:
                        self.pay(origin + dt.timedelta(days=rng.randint(low, last_dpd)), part)
            if high >= rates.write_off_dpd:
                day = origin + dt.timedelta(days=rates.write_off_dpd)
                if day >= self.end:
                    return None, None, tuple(reached)
                self.add(day, "LoanClosed", {"event_id": self._id("written-off"), "occurred_at": self.at(day, 20),
                                             "loan_id": self.loan_id, "reason": "WRITTEN_OFF"})
                return None, day, tuple(reached)
        return None, None, tuple(reached)


def plan_loan(seed: str, number: int, start: dt.date, days: int, rates: SimRates | None = None
              ) -> tuple[SimLoan, list[SimEvent]]:
    """One loan of the book and its events, independent of every other loan."""
    plan = _LoanPlan(seed, number, start, start + dt.timedelta(days=days), rates or SimRates())
    loan = plan.build()
    return loan, plan.events


def make_book(seed: str, loans: int, start: dt.date, days: int, rates: SimRates | None = None) -> Book:
    """The whole book: *loans* loans over *days* business days from *start*."""
    rates = rates or SimRates()
    by_day: defaultdict[dt.date, list[SimEvent]] = defaultdict(list)
    planned = []
    for number in range(1, loans + 1):
        loan, events = plan_loan(seed, number, start, days, rates)
        planned.append(loan)
        for event in events:
            by_day[event.day].append(event)
    ordered = {day: tuple(sorted(events, key=_publish_order)) for day, events in sorted(by_day.items())}
    return Book(seed, start, days, tuple(planned), ordered)


_RECORD_ORDER = {"LoanOpened": 0, "InstallmentScheduled": 1, "RepaymentReceived": 2, "PauseDelinquency": 3,
                 "LoanClosed": 4}


def _publish_order(event: SimEvent) -> tuple[int, int, str]:
    """Within a day: accounts before schedules before repayments before closures, then by loan."""
    return (_RECORD_ORDER[event.record], int(event.value["occurred_at"]), str(event.value["event_id"]))


# --------------------------------------------------------------------------- ticks
def tick_id(seed: str, day: dt.date) -> str:
    """The tick's event id: derived, so a re-run of the same book republishes identical ticks."""
    return str(uuid.uuid5(SIM_NAMESPACE, f"{seed}|tick|{day.isoformat()}"))


def tick_time(day: dt.date) -> int:
    """A business date starts at local midnight."""
    return int(dt.datetime.combine(day, dt.time(0, 0), tzinfo=CST).timestamp() * 1000)


def business_days(start: dt.date, days: int) -> Iterator[dt.date]:
    for i in range(days):
        yield start + dt.timedelta(days=i)


# --------------------------------------------------------------------------- summary
def summarise(loans: Sequence[SimLoan]) -> dict[str, Any]:
    """Counts of the book by payer and product, and the principal (fen), for the run's parameters."""
    by_payer: defaultdict[str, int] = defaultdict(int)
    by_product: defaultdict[str, int] = defaultdict(int)
    for loan in loans:
        by_payer[loan.payer] += 1
        by_product[loan.product] += 1
    return {
        "loans": len(loans),
        "principal": sum(loan.principal for loan in loans),
        "by_payer": dict(sorted(by_payer.items())),
        "by_product": dict(sorted(by_product.items())),
    }
