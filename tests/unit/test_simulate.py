"""The simulated loan book (producers.simbook): reproducible, plausible, integer money, stated rates."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict

import pytest

from arrears.domain.ledger import Installment, Repayment, allocate
from producers.simbook import (
    BUCKET_RANGES,
    DEFAULTING,
    LATE,
    PARTIAL,
    PRODUCTS,
    PUNCTUAL,
    Book,
    SimEvent,
    SimRates,
    id_check_digit,
    make_book,
    plan_loan,
    schedule,
    tick_id,
)
from schemas import default_catalog, from_json
from schemas.jsonform import to_json

START = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def big() -> Book:
    return make_book("rates", 4000, START, 120)


def events_of(book: Book) -> list[tuple[dt.date, str, dict[str, object]]]:
    return [(e.day, e.record, dict(e.value)) for day in sorted(book.events) for e in book.events[day]]


def test_the_same_seed_gives_the_same_book_and_another_seed_another() -> None:
    a = make_book("s1", 60, START, 40)
    b = make_book("s1", 60, START, 40)
    c = make_book("s2", 60, START, 40)
    assert events_of(a) == events_of(b)
    assert a.loans == b.loans
    assert events_of(a) != events_of(c)


def test_a_loan_is_the_same_whatever_the_size_of_the_book() -> None:
    small, large = make_book("s", 5, START, 30), make_book("s", 50, START, 30)
    assert small.loans == large.loans[:5]
    mine = {e.value["event_id"] for day in small.events.values() for e in day}
    theirs = {e.value["event_id"] for day in large.events.values() for e in day}
    assert mine <= theirs


def test_event_ids_are_unique_and_ticks_are_derived() -> None:
    book = make_book("s", 200, START, 60)
    ids = [e.value["event_id"] for day in book.events.values() for e in day]
    assert len(ids) == len(set(ids))
    assert tick_id("s", START) == tick_id("s", START) != tick_id("s", START + dt.timedelta(days=1))


def test_every_event_is_a_valid_contract_record() -> None:
    catalog = default_catalog()
    book = make_book("valid", 80, START, 60)
    for day in book.events.values():
        for event in day:
            value = dict(event.value)
            value["occurred_at"] = dt.datetime.fromtimestamp(int(value["occurred_at"]) / 1000, dt.UTC)
            name, record = from_json(catalog, {"type": event.record, **to_json(catalog, event.record, value)})
            assert name == event.record and record["loan_id"] == event.value["loan_id"]


def test_money_is_integer_fen_and_each_schedule_repays_its_principal() -> None:
    book = make_book("money", 300, START, 120)
    principals = {}
    scheduled: defaultdict[str, int] = defaultdict(int)
    for day in book.events.values():
        for event in day:
            v = event.value
            for key, amount in v.items():
                if key.endswith(("amount", "_due")) or key == "principal":
                    assert type(amount) is int and amount >= 0, (event.record, key, amount)
            if event.record == "LoanOpened":
                principals[v["loan_id"]] = v["principal"]
                assert v["principal"] % 10_000 == 0  # whole hundreds of yuan
            elif event.record == "InstallmentScheduled":
                scheduled[str(v["loan_id"])] += int(v["principal_due"])
            elif event.record == "RepaymentReceived":
                assert v["amount"] > 0 and v["currency"] == "CNY"
    assert principals == dict(scheduled)


@pytest.mark.parametrize("product", PRODUCTS, ids=[p.code for p in PRODUCTS])
def test_schedules_are_monthly_with_interest_on_the_outstanding_principal(product: object) -> None:
    dues = schedule(product, 1_234_500, dt.date(2025, 10, 31))  # type: ignore[arg-type]
    assert [d.number for d in dues] == list(range(1, product.installments + 1))  # type: ignore[attr-defined]
    assert {d.due_date.day for d in dues} == {28}  # clamped: every month has a 28th
    assert sum(d.principal for d in dues) == 1_234_500
    assert all(a.interest >= b.interest for a, b in zip(dues, dues[1:], strict=False))


def test_customers_look_real_and_their_ids_check() -> None:
    book = make_book("people", 200, START, 10)
    opened = [e.value for day in book.events.values() for e in day if e.record == "LoanOpened"]
    assert len(opened) == 200
    for v in opened:
        c = v["customer"]
        assert re.fullmatch(r"1[3-9]\d{9}", c["phone"])
        assert re.fullmatch(r"\d{17}[\dX]", c["national_id"])
        assert id_check_digit(c["national_id"][:17]) == c["national_id"][17]
        birth = dt.date(int(c["national_id"][6:10]), int(c["national_id"][10:12]), int(c["national_id"][12:14]))
        # 19-59 when the customer's first loan opened; a repeat borrower's later loan may be years later
        assert 19 <= (v["opened_on"] - birth).days // 365 <= 63
        assert 2 <= len(c["name"]) <= 3 and c["province"] and c["city"] and c["timezone"] == "Asia/Shanghai"
        assert 1 <= len(c["emergency_contacts"]) <= 2
    assert len({v["customer"]["name"] for v in opened}) > 100


def test_some_customers_hold_several_loans_and_are_the_same_person_on_each() -> None:
    book = make_book("people", 1000, START, 10)
    opened = [e.value for day in book.events.values() for e in day if e.record == "LoanOpened"]
    by_customer: defaultdict[str, list[dict]] = defaultdict(list)
    for v in opened:
        by_customer[v["customer_id"]].append(v["customer"])
    repeat_loans = sum(len(c) - 1 for c in by_customer.values())
    assert 0.10 * len(opened) < repeat_loans < 0.20 * len(opened)  # the stated 15%
    assert all(all(c == cs[0] for c in cs) for cs in by_customer.values())  # same name, phone, id
    alone = make_book("people", 1000, START, 10, SimRates(repeat_borrower_share=0.0))
    assert len({e.value["customer_id"] for d in alone.events.values() for e in d if e.record == "LoanOpened"}) == 1000
    # Who took a loan changes nothing else about it: the same events but the LoanOpened's customer.
    def others(b: Book) -> list[tuple[dt.date, str, dict[str, object]]]:
        return [e for e in events_of(b) if e[1] != "LoanOpened"]
    assert others(book) == others(alone)


def test_the_check_digit_of_a_published_example() -> None:
    assert id_check_digit("11010519491231002") == "X"  # GB 11643's own example


def test_history_holds_everything_before_the_start_and_nothing_happens_after_the_end() -> None:
    book = make_book("span", 300, START, 30)
    assert all(e.day < START for e in book.history())
    assert max(book.events) < book.end
    opened_later = [e for day, es in book.events.items() if day >= START for e in es if e.record == "LoanOpened"]
    assert opened_later, "some loans are opened during the period"


def test_payer_mix_is_within_tolerance_of_the_stated_rates(big: Book) -> None:
    mix = Counter(loan.payer for loan in big.loans)
    n = len(big.loans)
    for payer, share in SimRates().payer_mix.items():
        # Four standard deviations of a binomial share: fails by chance about once in 15,000 seeds.
        assert abs(mix[payer] / n - share) < 4 * (share * (1 - share) / n) ** 0.5, payer


def test_defaulting_loans_cure_in_each_bucket_at_about_the_stated_rate(big: Book) -> None:
    # Among defaulting loans that reached a bucket before the period ended and whose stay there
    # fits in the period, the share that cured there is the bucket's cure probability.
    rates = SimRates()
    reached: Counter[str] = Counter()
    cured: Counter[str] = Counter()
    for loan in big.loans:
        if loan.payer != DEFAULTING or loan.defaults_at is None:
            continue
        for bucket in loan.buckets_reached:
            reached[bucket] += 1
        if loan.cured_in:
            cured[loan.cured_in] += 1
    for bucket in ("M1", "M2"):
        observed, n, p = cured[bucket] / reached[bucket], reached[bucket], rates.cure[bucket]
        # Loans still in the bucket when the period ends have not had their whole chance: allow for it.
        spread = 4 * (p * (1 - p) / n) ** 0.5
        assert p - spread - 0.05 < observed < p + spread, (bucket, observed, n)


def test_written_off_loans_close_at_the_write_off_dpd_and_never_pay_again(big: Book) -> None:
    written = [loan for loan in big.loans if loan.written_off_on is not None]
    assert written
    closes = {
        str(e.value["loan_id"]): e for day in big.events.values() for e in day
        if e.record == "LoanClosed" and e.value["reason"] == "WRITTEN_OFF"
    }
    for loan in written:
        assert closes[loan.loan_id].day == loan.written_off_on
        assert loan.buckets_reached[-1] == "M6"


def _events_of(book: Book, loan_id: str) -> list[SimEvent]:
    return [e for day in book.events.values() for e in day if e.value["loan_id"] == loan_id]


def _replay(book: Book, loan_id: str, on: dt.date, events: list[SimEvent] | None = None) -> tuple[int, int]:
    """(DPD, overdue) of one loan at *on* by the processor's own ledger rules."""
    events = events if events is not None else _events_of(book, loan_id)
    installments = [Installment(int(e.value["installment_no"]), e.value["due_date"], int(e.value["principal_due"]),
                                int(e.value["interest_due"]), int(e.value["fee_due"]))
                    for e in events if e.record == "InstallmentScheduled"]
    paid = sum(int(e.value["amount"]) for e in events if e.record == "RepaymentReceived" and e.day < on)
    allocations, _credit = allocate(installments, paid)
    late = [a for a in allocations if a.installment.due_date < on and a.outstanding > 0]
    dpd = (on - min(a.installment.due_date for a in late)).days if late else 0
    return dpd, sum(a.outstanding for a in late)


def test_punctual_payers_are_never_overdue_and_late_payers_stay_within_m1(big: Book) -> None:
    checked = Counter()
    by_loan: defaultdict[str, list[SimEvent]] = defaultdict(list)
    for day in big.events.values():
        for e in day:
            by_loan[str(e.value["loan_id"])].append(e)
    for loan in big.loans[:600]:
        if loan.payer not in (PUNCTUAL, LATE):
            continue
        events = by_loan[loan.loan_id]
        for offset in range(0, 120, 7):
            dpd, _ = _replay(big, loan.loan_id, START + dt.timedelta(days=offset), events)
            if loan.payer == PUNCTUAL:
                assert dpd == 0, loan
            else:
                assert dpd <= SimRates().late_days + 1, loan
        checked[loan.payer] += 1
    assert checked[PUNCTUAL] > 100 and checked[LATE] > 20


def test_partial_payers_pay_each_installment_in_two_parts(big: Book) -> None:
    loan = next(x for x in big.loans if x.payer == PARTIAL and x.opened_on < START - dt.timedelta(days=90))
    pays = [e for day in big.events.values() for e in day
            if e.record == "RepaymentReceived" and e.value["loan_id"] == loan.loan_id]
    dues = [e for day in big.events.values() for e in day
            if e.record == "InstallmentScheduled" and e.value["loan_id"] == loan.loan_id
            and e.value["due_date"] < START]
    assert len(pays) >= 2 * len(dues) - 1 > 0
    assert all(isinstance(p.value["amount"], int) for p in pays)


def test_a_defaulting_loan_walks_the_buckets_in_order() -> None:
    names = [b for b, _, _ in BUCKET_RANGES]
    for number in range(1, 400):
        loan, _ = plan_loan("walk", number, START, 120)
        if loan.payer == DEFAULTING and loan.buckets_reached:
            assert list(loan.buckets_reached) == names[: len(loan.buckets_reached)]
            if loan.cured_in:
                assert loan.cured_in == loan.buckets_reached[-1]


def test_paid_off_loans_close_on_their_last_payment_day() -> None:
    book = make_book("paid", 400, START, 120)
    closes = [e for day in book.events.values() for e in day
              if e.record == "LoanClosed" and e.value["reason"] == "PAID_OFF"]
    assert closes
    for close in closes[:40]:
        loan_id = close.value["loan_id"]
        pays = [e.day for day in book.events.values() for e in day
                if e.record == "RepaymentReceived" and e.value["loan_id"] == loan_id]
        assert close.day == max(pays)
        assert _replay(book, str(loan_id), close.day + dt.timedelta(days=400))[1] == 0


def test_repayments_keep_the_ledger_credit_free_for_punctual_payers(big: Book) -> None:
    loan = next(x for x in big.loans if x.payer == PUNCTUAL and x.installments >= 12)
    pays = [Repayment(str(e.value["payment_id"]), int(e.value["amount"]), e.value["value_date"], "BANK_TRANSFER")
            for day in big.events.values() for e in day
            if e.record == "RepaymentReceived" and e.value["loan_id"] == loan.loan_id]
    assert pays and all(p.amount > 0 for p in pays)
