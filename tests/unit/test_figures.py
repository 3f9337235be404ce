"""The report's figures, folded from output records alone (no Kafka): cases, roll rates, agencies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from arrears.figures import STILL_OPEN, Figures

D1, D2, D3, D4 = (dt.date(2026, 3, d) for d in (2, 3, 4, 5))
_n = iter(range(10_000))


def rec(name: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return name, {"event_id": f"e{next(_n)}", **fields}


def story() -> list[tuple[str, dict[str, Any]]]:
    a, b, c = "A:1", "B:1", "C:1"
    assigned = rec("CaseAssigned", case_id=a, agency_id="AG1", business_date=D1)
    return [
        rec("BusinessDateChanged", business_date=D1),
        rec("CaseOpened", case_id=a, bucket="M1", overdue_amount=10_000, currency="CNY", business_date=D1),
        assigned,
        assigned,  # redelivered: the same event_id counts once
        rec("CaseOpened", case_id=b, bucket="M2", overdue_amount=40_000, currency="CNY", business_date=D1),
        rec("CaseOpened", case_id=c, bucket="M1", overdue_amount=5_000, currency="CNY", business_date=D1),
        rec("ContactAttempted", agency_id="AG1", case_id=a, party="DEBTOR", outcome="NO_ANSWER"),
        rec("ContactAttempted", agency_id="AG1", case_id=a, party="DEBTOR", outcome="RIGHT_PARTY_CONTACT"),
        rec("ContactAttempted", agency_id="AG1", case_id=a, party="THIRD_PARTY", outcome="WRONG_PARTY"),
        rec("PromiseToPay", agency_id="AG1", case_id=a),
        rec("ComplianceViolation", agency_id="AG1", case_id=a, rule="QUIET_HOURS"),
        rec("CaseDelinquencyChanged", case_id=a, bucket="M2", overdue_amount=12_000, business_date=D2),
        rec("CaseBalanceChanged", case_id=a, bucket="M2", overdue_amount=7_000, previous_overdue_amount=12_000,
            business_date=D3),
        rec("PromiseKept", agency_id="AG1", case_id=a),
        rec("CaseClosed", case_id=a, reason="CURED", business_date=D4),
        rec("CaseDelinquencyChanged", case_id=b, bucket="M3", overdue_amount=45_000, business_date=D2),
        rec("CaseClosed", case_id=b, reason="WRITTEN_OFF", business_date=D4),
        rec("CaseAssigned", case_id=c, agency_id="AG2", business_date=D2),
        rec("DisputeRaised", agency_id="AG2", case_id=c),
        rec("CaseRecalled", case_id=c, agency_id="AG2", reason="HOLD", business_date=D3),
    ]


def test_cases_fold_into_open_buckets_outcomes_and_roll_rates() -> None:
    figures = Figures().add_all(story())

    assert [(r.bucket, r.open_cases, r.overdue_amount) for r in figures.open_by_bucket()] == [("M1", 1, 5_000)]
    assert figures.outcomes() == {"CURED": 1, "WRITTEN_OFF": 1, STILL_OPEN: 1}
    matrix = figures.roll_matrix()
    assert matrix.rows == ("M1", "M2", "M3")
    assert matrix.counts == {"M1": {"M2": 1, STILL_OPEN: 1}, "M2": {"CURED": 1, "M3": 1},
                             "M3": {"WRITTEN_OFF": 1}}
    assert matrix.rate("M1", "M2") == 0.5
    assert figures.business_date == D4


def test_agency_kpis_count_each_record_once_from_cases_results_and_compliance() -> None:
    figures = Figures().add_all(story())
    ag1, ag2 = figures.agency_kpis(["AG1", "AG2"])

    assert (ag1.cases_assigned, ag1.contacts, ag1.promises, ag1.promises_kept, ag1.violations) == (1, 3, 1, 1, 1)
    assert ag1.contact_rate == 2 / 3 and ag1.right_party_contact_rate == 1 / 3 and ag1.promise_rate == 1.0
    # 5,000 paid down while assigned, then the 7,000 still overdue when the case cured
    assert ag1.amount_recovered == 12_000 and ag1.cure_rate == 1.0
    assert (ag2.cases_assigned, ag2.holds, ag2.cases_held, ag2.cure_rate) == (1, 1, 0, 0.0)
    assert figures.assignments() == {"AG1": 1, "AG2": 0}
    assert figures.violations_by_rule_and_agency() == {"QUIET_HOURS": {"AG1": 1}}
    assert figures.records["CaseAssigned"] == 2


def test_agencies_are_counted_in_debtors_as_well_as_cases() -> None:
    def opened(case: str, customer: str) -> tuple[str, dict[str, Any]]:
        return rec("CaseOpened", case_id=case, customer_id=customer, bucket="M2", overdue_amount=1, currency="CNY",
                   business_date=D1)

    def assigned(case: str) -> tuple[str, dict[str, Any]]:
        return rec("CaseAssigned", case_id=case, agency_id="AG1", business_date=D1)

    records = [opened("X:1", "C1"), opened("Y:1", "C1"), opened("Z:1", "C2"),
               assigned("X:1"), assigned("Y:1"), assigned("Z:1"),
               rec("CaseClosed", case_id="Z:1", reason="CURED", business_date=D2)]
    (ag1,) = Figures().add_all(records).agency_kpis(["AG1"])
    assert (ag1.cases_assigned, ag1.debtors_assigned) == (3, 2)
    assert (ag1.cases_held, ag1.debtors_held) == (2, 1)  # C1's two loans, one debtor


def test_the_fold_does_not_depend_on_redeliveries_of_whole_batches() -> None:
    records = story()
    once = Figures().add_all(records)
    twice = Figures().add_all(records[:12] + records[:12] + records[12:] + records)

    assert twice.agency_kpis(["AG1", "AG2"]) == once.agency_kpis(["AG1", "AG2"])
    assert twice.roll_matrix() == once.roll_matrix() and twice.outcomes() == once.outcomes()
