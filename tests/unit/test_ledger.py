"""The allocation waterfall, overdue amount, DPD and buckets (SPEC §4), without Kafka."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.buckets import DEFAULT_BUCKETS, BucketScheme
from arrears.domain.ledger import Installment, Repayment, allocate, figures, first_unpaid_due_date, paid_total

D = dt.date.fromisoformat


def inst(no: int, due: str, principal: int = 100, interest: int = 10, fee: int = 5) -> Installment:
    return Installment(no, D(due), principal, interest, fee)


def test_allocation_fills_oldest_installment_first_fee_then_interest_then_principal() -> None:
    allocations, credit = allocate([inst(2, "2026-02-01"), inst(1, "2026-01-01")], 120)
    first, second = allocations
    assert first.installment.number == 1
    assert (first.fee_paid, first.interest_paid, first.principal_paid) == (5, 10, 100)
    assert (second.fee_paid, second.interest_paid, second.principal_paid) == (5, 0, 0)
    assert credit == 0


def test_same_due_date_is_ordered_by_installment_number() -> None:
    allocations, _ = allocate([inst(2, "2026-01-01"), inst(1, "2026-01-01")], 115)
    assert [a.installment.number for a in allocations] == [1, 2]
    assert allocations[0].outstanding == 0 and allocations[1].outstanding == 115


def test_money_beyond_every_installment_is_credit() -> None:
    _, credit = allocate([inst(1, "2026-01-01")], 200)
    assert credit == 85


@pytest.mark.parametrize(
    ("business_date", "overdue", "dpd", "bucket"),
    [
        (None, 0, 0, "M0"),  # before the first tick nothing is overdue
        ("2026-01-01", 0, 0, "M0"),  # due today is not overdue
        ("2026-01-02", 115, 1, "M1"),
        ("2026-01-31", 115, 30, "M1"),
        ("2026-02-01", 115, 31, "M2"),  # the second installment is due that day: not yet overdue
        ("2026-02-02", 230, 32, "M2"),
        ("2026-07-01", 230, 181, "M7+"),
    ],
)
def test_overdue_amount_dpd_and_bucket_at_a_business_date(business_date, overdue, dpd, bucket) -> None:
    date = D(business_date) if business_date else None
    fig = figures([inst(1, "2026-01-01"), inst(2, "2026-02-01")], [], date, DEFAULT_BUCKETS)
    assert (fig.overdue_amount, fig.dpd, fig.bucket) == (overdue, dpd, bucket)


def test_dpd_counts_from_the_oldest_installment_still_unpaid() -> None:
    repayments = [Repayment("P1", 115, D("2026-01-05"), "BANK")]
    fig = figures([inst(1, "2026-01-01"), inst(2, "2026-02-01")], repayments, D("2026-02-10"), DEFAULT_BUCKETS)
    assert (fig.overdue_amount, fig.dpd, fig.oldest_due_date) == (115, 9, D("2026-02-01"))


def test_partial_payment_lowers_overdue_but_keeps_dpd() -> None:
    repayments = [Repayment("P1", 50, D("2026-01-05"), "BANK")]
    fig = figures([inst(1, "2026-01-01")], repayments, D("2026-01-10"), DEFAULT_BUCKETS)
    assert (fig.overdue_amount, fig.dpd) == (65, 9)


def test_reversed_repayments_count_for_nothing() -> None:
    repayments = [Repayment("P1", 115, D("2026-01-05"), "BANK", reversed=True)]
    fig = figures([inst(1, "2026-01-01")], repayments, D("2026-01-10"), DEFAULT_BUCKETS)
    assert fig.overdue_amount == 115


@pytest.mark.parametrize(("dpd", "bucket"), [(0, "M0"), (1, "M1"), (30, "M1"), (31, "M2"), (60, "M2"), (61, "M3"),
                                              (90, "M3"), (91, "M4"), (120, "M4"), (121, "M5"), (150, "M5"),
                                              (151, "M6"), (180, "M6"), (181, "M7+"), (5000, "M7+")])
def test_default_bucket_boundaries(dpd: int, bucket: str) -> None:
    assert DEFAULT_BUCKETS.bucket_for(dpd) == bucket


def test_bucket_boundaries_are_configurable() -> None:
    scheme = BucketScheme.from_mapping({"CURRENT": 0, "EARLY": 1, "LATE": 15})
    assert [scheme.bucket_for(d) for d in (0, 1, 14, 15, 400)] == ["CURRENT", "EARLY", "EARLY", "LATE", "LATE"]


def test_bucket_scheme_must_start_at_zero() -> None:
    with pytest.raises(ValueError, match="DPD 0"):
        BucketScheme.from_mapping({"M1": 1})


@given(
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 300), st.integers(0, 50), st.integers(0, 20)),
             max_size=14),
    st.lists(st.tuples(st.integers(1, 500), st.booleans()), max_size=14),
)
def test_the_first_unpaid_due_date_is_the_first_installment_the_waterfall_leaves_outstanding(
        schedule: list[tuple[int, int, int, int]], payments: list[tuple[int, bool]]) -> None:
    installments = [Installment(n, dt.date(2026, 1, 1) + dt.timedelta(days=day), p, i, f)
                    for n, (day, p, i, f) in enumerate(schedule, 1)]
    repayments = [Repayment(f"P{k}", amount, dt.date(2026, 1, 1), "BANK", reversed_)
                  for k, (amount, reversed_) in enumerate(payments)]
    allocations, _ = allocate(installments, paid_total(repayments))
    expected = next((a.installment.due_date for a in allocations if a.outstanding > 0), None)
    assert first_unpaid_due_date(installments, repayments) == expected
