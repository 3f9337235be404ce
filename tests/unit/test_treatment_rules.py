"""The rules of SPEC §10 as pure functions: paused days, settlement limits, commission rounding."""

from __future__ import annotations

import datetime as dt

import pytest

from arrears.domain import pauses as pz
from arrears.domain import settlements as st
from arrears.domain.buckets import DEFAULT_BUCKETS
from arrears.domain.commission import AgencySpan, CommissionRates, commission, holder_on, span_end
from arrears.domain.ledger import Installment, Repayment, figures

D = dt.date.fromisoformat


def pause(first: str, last: str | None = None, resumed_on: str | None = None) -> pz.Pause:
    return pz.Pause(f"p-{first}", D(first), D(last) if last else None, "hardship", "ops",
                    D(resumed_on) if resumed_on else None)


# --------------------------------------------------------------------------- pauses
@pytest.mark.parametrize(("pauses", "dpd"), [
    ((), 41),
    ((pause("2026-01-20", "2026-01-29"),), 31),  # 10 days
    ((pause("2026-01-20", "2026-01-29"), pause("2026-01-25", "2026-02-03")), 26),  # overlapping: 15 days
    ((pause("2026-01-20", "2026-01-29"), pause("2026-01-30", "2026-02-03")), 26),  # adjacent: the same days
    ((pause("2026-01-01", "2026-01-15"),), 35),  # only the days from the due date count (10-15)
    ((pause("2026-02-10"),), 31),  # open-ended, up to D
    ((pause("2026-02-10", resumed_on="2026-02-15"),), 36),  # resumed: 10-14 paused
    ((pause("2026-02-20", "2026-03-01"),), 41),  # begins on D: no day before D is paused
    ((pause("2026-02-10", resumed_on="2026-02-05"),), 41),  # resumed before it began: void
])
def test_dpd_counts_only_the_days_no_pause_covers(pauses: tuple[pz.Pause, ...], dpd: int) -> None:
    fig = figures([Installment(1, D("2026-01-10"), 10_000, 0, 0)], [], D("2026-02-20"), DEFAULT_BUCKETS, pauses)
    assert fig.dpd == dpd
    assert fig.bucket == DEFAULT_BUCKETS.bucket_for(dpd)


def test_a_backdated_pause_lowers_dpd_as_a_pure_function_of_the_pauses_and_d() -> None:
    installments = [Installment(1, D("2026-01-10"), 10_000, 0, 0)]
    late = pause("2026-01-11", "2026-01-30")  # learned of on 2026-02-20, twenty days late
    before = figures(installments, [], D("2026-02-20"), DEFAULT_BUCKETS)
    after = figures(installments, [], D("2026-02-20"), DEFAULT_BUCKETS, (late,))
    assert (before.dpd, before.bucket, after.dpd, after.bucket) == (41, "M2", 21, "M1")
    assert after == figures(installments, [], D("2026-02-20"), DEFAULT_BUCKETS, [late])  # same input, same figures


def test_paused_until_is_the_end_of_the_merged_range_covering_the_day() -> None:
    pauses = (pause("2026-03-01", "2026-03-10"), pause("2026-03-08", "2026-03-20"), pause("2026-04-01"))
    assert pz.paused_until(pauses, D("2026-03-05")) == D("2026-03-20")
    assert pz.paused_until(pauses, D("2026-03-21")) is None
    assert pz.paused_until(pauses, D("2026-05-01")) == pz.OPEN_ENDED


def test_a_resume_ends_every_pause_that_reaches_its_date_the_day_before() -> None:
    pauses = (pause("2026-03-01", "2026-03-10"), pause("2026-03-05"), pause("2026-04-01", "2026-04-05"))
    resumed = pz.resume(pauses, D("2026-03-08"))
    assert resumed is not None
    assert [p.last_day for p in resumed] == [D("2026-03-07")] * 3
    assert resumed[2].is_void  # it had not begun: it pauses nothing now
    assert pz.resume(resumed, D("2026-03-09")) is None  # nothing reaches that day any more


def test_the_first_day_a_case_can_open_skips_paused_days() -> None:
    pauses = (pause("2026-01-12", "2026-01-20"),)
    # Due 2026-01-10, grace 0: DPD 1 on 2026-01-11 without pauses; the pause holds 9 days back.
    assert pz.day_counted((), D("2026-01-10"), 1) == D("2026-01-11")
    assert pz.day_counted(pauses, D("2026-01-10"), 1) == D("2026-01-11")
    assert pz.day_counted(pauses, D("2026-01-10"), 3) == D("2026-01-22")
    # A day that is paused itself cannot open a case: the first one after the pause can.
    assert pz.day_counted((pause("2026-01-11", "2026-01-15"),), D("2026-01-10"), 1) == D("2026-01-16")
    assert pz.day_counted((pause("2026-01-11"),), D("2026-01-10"), 1) is None


# --------------------------------------------------------------------------- settlements
TERMS = st.SettlementTerms((("M2", 0.0), ("M3", 0.10), ("M4", 0.20), ("M5", 0.30), ("M6", 0.40), ("M7+", 0.60)),
                           approval_above=0.30)


@pytest.mark.parametrize(("bucket", "amount", "status", "reason"), [
    ("M4", 8_000, st.APPROVED, None),  # exactly the limit: within it
    ("M4", 7_999, st.REJECTED, st.ABOVE_MAX_DISCOUNT),
    ("M3", 9_000, st.APPROVED, None),
    ("M3", 8_900, st.REJECTED, st.ABOVE_MAX_DISCOUNT),
    ("M2", 10_000, st.APPROVED, None),  # M2: full payoff only
    ("M2", 9_999, st.REJECTED, st.ABOVE_MAX_DISCOUNT),
    ("M6", 7_000, st.APPROVED, None),  # 30%: not above the approval threshold
    ("M6", 6_999, st.PENDING, None),  # above 30%, within M6's 40%: a person decides
    ("M7+", 4_000, st.PENDING, None),
    ("M7+", 3_999, st.REJECTED, st.ABOVE_MAX_DISCOUNT),
    ("M1", 9_900, st.REJECTED, st.NO_SETTLEMENT_IN_BUCKET),
])
def test_discount_limits_by_bucket_and_the_approval_threshold(bucket: str, amount: int, status: str,
                                                              reason: str | None) -> None:
    decision = st.decide(TERMS, bucket, amount, 10_000, D("2026-04-01"), D("2026-03-01"))
    assert (decision.status, decision.reason) == (status, reason)
    assert decision.discount == 1 - st.Fraction(amount, 10_000)


def test_limits_are_the_decimals_configured_not_their_nearest_doubles() -> None:
    # 0.1 as a double is 0.1000000000000000055...: a 10% discount must still be within a 0.1 limit.
    terms = st.SettlementTerms((("M3", 0.1),))
    assert st.decide(terms, "M3", 27_000, 30_000, D("2026-04-01"), D("2026-03-01")).status == st.APPROVED
    assert st.min_amount(30_000, 0.1) == 27_000
    assert st.min_amount(10_001, 0.2) == 8_001  # rounded up: never below the limit


def test_a_proposal_with_nothing_outstanding_or_a_past_pay_by_is_rejected() -> None:
    assert st.decide(TERMS, "M4", 1, 0, D("2026-04-01"), D("2026-03-01")).reason == st.NOTHING_OUTSTANDING
    assert st.decide(TERMS, "M4", 9_000, 10_000, D("2026-02-28"), D("2026-03-01")).reason == st.PAY_BY_PASSED


def _settlement(**kw: object) -> st.Settlement:
    values: dict[str, object] = dict(settlement_id="L1:1:S1", agency_id="AG1", work_order_id="WO-1", amount=8_000,
                                     pay_by=D("2026-03-31"), discount=0.2, status=st.APPROVED,
                                     proposed_on=D("2026-03-01"), approved_on=D("2026-03-01"), approved_by="policy")
    values.update(kw)
    return st.Settlement(**values)  # type: ignore[arg-type]


def test_fulfilment_counts_repayments_valued_from_the_approval_to_pay_by() -> None:
    repayments = [
        Repayment("before", 1_000, D("2026-02-28"), "BANK_TRANSFER"),  # before the approval's business date
        Repayment("first", 3_000, D("2026-03-01"), "BANK_TRANSFER"),
        Repayment("bounced", 5_000, D("2026-03-10"), "BANK_TRANSFER", reversed=True),
        Repayment("last-day", 4_000, D("2026-03-31"), "BANK_TRANSFER"),
        Repayment("late", 2_000, D("2026-04-01"), "BANK_TRANSFER"),  # after pay_by
    ]
    assert st.paid_towards(_settlement(), repayments) == 7_000
    # A payment already on the ledger when the proposal was decided lowered the outstanding amount
    # the discount was measured against: it does not count a second time.
    assert st.paid_towards(_settlement(counted_before=("first",)), repayments) == 4_000
    assert st.paid_towards(_settlement(status=st.PENDING, approved_on=None), repayments) == 0


# --------------------------------------------------------------------------- commission
@pytest.mark.parametrize(("amount", "rate", "earned"), [
    (10_000, 0.15, 1_500),
    (333, 0.15, 50),  # 49.95
    (10, 0.15, 2),  # 1.5: half to even, up
    (50, 0.05, 2),  # 2.5: half to even, down
    (70, 0.05, 4),  # 3.5: half to even, up
    (-50, 0.05, -2),  # a reversal mirrors it
    (1, 0.35, 0),
    (12_345_678, 0.0, 0),
])
def test_commission_is_amount_times_rate_rounded_half_to_even_in_minor_units(amount: int, rate: float,
                                                                             earned: int) -> None:
    assert commission(amount, rate) == earned


def test_the_day_of_a_handover_belongs_to_the_agency_that_takes_over_and_a_closing_day_to_the_holder() -> None:
    first = AgencySpan("L1:1", "WO-1", "AG1", "M2", 0.1, D("2026-03-01"), span_end(D("2026-03-10"), "EXPIRED"))
    second = AgencySpan("L1:1", "WO-2", "AG2", "M3", 0.2, D("2026-03-10"), span_end(D("2026-03-20"), "CLOSED"))
    spans = (first, second)
    assert holder_on(spans, D("2026-02-28")) is None
    assert holder_on(spans, D("2026-03-09")) is first
    assert holder_on(spans, D("2026-03-10")) is second
    assert holder_on(spans, D("2026-03-20")) is second  # the day the case closed: the payment that closed it
    assert holder_on(spans, D("2026-03-21")) is None


def test_an_agency_without_a_rate_for_the_bucket_earns_nothing_but_the_recovery_counts() -> None:
    rates = CommissionRates((("AG1", (("M3", 0.15), ("M4", 0.2))),))
    assert (rates.rate("AG1", "M4"), rates.rate("AG1", "M2"), rates.rate("AG9", "M4")) == (0.2, 0.0, 0.0)
