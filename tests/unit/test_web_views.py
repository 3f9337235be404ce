"""The query API's sums over workers: KPIs and the portfolio with its roll rates."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from workorders import issued

from arrears.domain.events import Customer, EmergencyContact, LoanOpened
from arrears.domain.loan import LoanState
from streams.web import customer_json, kpis, merge_portfolios, timeline


def test_kpis_follow_their_definitions() -> None:
    counts = Counter(attempts=200, contacts=120, right_party_contacts=80, promises=20, promises_kept=9,
                     promises_broken=3, recovered=123_456, violations=5, cases_held=40, assignments=70)
    result = kpis(counts)
    assert result["contact_rate"] == 0.6
    assert result["right_party_contact_rate"] == 0.4
    assert result["promise_rate"] == 0.25
    assert result["promise_kept_rate"] == 0.75
    assert result["violations_per_100_contacts"] == 2.5
    assert (result["amount_recovered"], result["cases_held"]) == (123_456, 40)


def test_kpis_of_an_idle_agency_are_zero_not_errors_and_an_unjudged_kept_rate_is_null() -> None:
    idle = kpis(Counter())
    assert idle["contact_rate"] == 0.0 and idle["violations_per_100_contacts"] == 0.0
    assert idle["promise_kept_rate"] is None  # 0.0 would read as "every promise broken"
    assert kpis(Counter(promises=3))["promise_kept_rate"] is None
    assert kpis(Counter(promises_broken=2))["promise_kept_rate"] == 0.0


def test_portfolios_of_two_workers_add_up_and_roll_rates_divide_by_entries() -> None:
    a = {"buckets": {"M1|CNY": {"open_cases": 2, "overdue_amount": 100}}, "assigned": {"AG1": 1},
         "unassigned": 1, "held": 0, "entered": {"M1": 10, "M2": 2}, "moves": {"M1|M2": 3, "M1|CURED": 6},
         "business_dates": ["2026-03-02"], "_unreachable": 0}
    b = {"buckets": {"M1|CNY": {"open_cases": 1, "overdue_amount": 50},
                     "M2|CNY": {"open_cases": 1, "overdue_amount": 70}},
         "assigned": {"AG1": 1, "AG2": 1}, "unassigned": 0, "held": 1, "entered": {"M1": 10, "M2": 3},
         "moves": {"M1|M2": 1}, "business_dates": ["2026-03-01"]}
    merged = merge_portfolios([a, b], ("M0", "M1", "M2"))
    assert merged["open_cases"] == 4 and merged["business_date"] == "2026-03-01"
    assert merged["buckets"][0] == {"bucket": "M1", "currency": "CNY", "open_cases": 3, "overdue_amount": 150}
    assert merged["assigned"] == {"AG1": 2, "AG2": 1} and (merged["unassigned"], merged["held"]) == (1, 1)
    rolls = {(r["from"], r["to"]): r["rate"] for r in merged["roll_rates"]}
    assert rolls == {("M1", "M2"): 0.2, ("M1", "CURED"): 0.3}


def _entries() -> list[dict[str, object]]:
    work_order = issued("L1:1")
    work_order["debtor"]["name"] = "王小明"  # a journal written before work orders were journaled masked
    work_order["debtor"]["phone"] = "13812348000"
    return [
        {"case_ids": ["L1:1"], "record": {"type": "CaseOpened", "case_id": "L1:1", "loan_id": "L1"}},
        {"case_ids": ["L1:1"], "record": {"type": "CaseState", "case_id": "L1:1", "version": 1,
                                          "event_id": "e-1", "occurred_at": "2026-03-02T00:00:00.000Z"}},
        {"case_ids": ["L1:1"], "record": work_order},
        {"case_ids": ["L1:2"], "record": {"type": "CaseOpened", "case_id": "L1:2", "loan_id": "L1"}},
        {"case_ids": ["L1:1"], "record": {"type": "CaseState", "case_id": "L1:1", "version": 2,
                                          "event_id": "e-2", "occurred_at": "2026-03-03T00:00:00.000Z"}},
    ]


def test_the_timeline_is_the_cases_own_records_with_personal_data_masked_and_no_snapshots() -> None:
    events = timeline(_entries(), "L1:1")
    assert [e["type"] for e in events] == ["CaseOpened", "WorkOrderIssued"]
    debtor = events[1]["debtor"]
    assert (debtor["name"], debtor["phone"]) == ("王*", "138****8000")
    assert debtor["national_id_masked"] == "**************1234"


def _state() -> LoanState:
    customer = Customer(name="王小明", phone="13812348000", national_id="44030119900101123X", province="广东省",
                        city="深圳市", emergency_contacts=(EmergencyContact("李四", "13900001111", "spouse"),))
    account = LoanOpened(event_id="e", occurred_at=0, loan_id="L1", customer_id="C1", product_code="CASH",
                         currency="CNY", principal=100, opened_on=dt.date(2026, 1, 1), customer=customer)
    return LoanState("L1", account=account)


def test_a_read_token_sees_the_customer_masked_and_a_pii_token_whole() -> None:
    masked = customer_json(_state(), unmasked=False)
    assert masked == {"name": "王*", "phone": "138****8000", "national_id": "**************123X",
                      "province": "广东省", "city": "深圳市", "timezone": "Asia/Shanghai",
                      "emergency_contacts": [{"name": "李*", "phone": "139****1111", "relation": "spouse"}]}
    whole = customer_json(_state(), unmasked=True)
    assert whole is not None and (whole["name"], whole["national_id"]) == ("王小明", "44030119900101123X")
    assert customer_json(LoanState("L2"), unmasked=True) is None  # no LoanOpened yet: nobody to show
