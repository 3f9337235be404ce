"""The query API's sums over workers: KPIs and the portfolio with its roll rates."""

from __future__ import annotations

from collections import Counter

from streams.web import kpis, merge_portfolios


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


def test_kpis_of_an_idle_agency_are_zero_not_errors() -> None:
    assert kpis(Counter())["promise_kept_rate"] == 0.0


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
