"""Placement for the whole book at a tick (SPEC §5): global capacity, one debtor one agency, determinism."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from arrears.domain.allocation import AgencyTerms, AllocationRules
from arrears.domain.placement import Held, Report, Request, place

AG1 = AgencyTerms("AG1", frozenset({"M2", "M3"}), capacity=100, weight=1, assignment_days=30)
AG2 = AgencyTerms("AG2", frozenset({"M3", "M4"}), capacity=100, weight=1, assignment_days=30)
RULES = AllocationRules((AG1, AG2), internal_buckets=frozenset({"M1"}), partitions=6)


def req(case: str, customer: str, bucket: str = "M3", dpd: int = 40, past: tuple[str, ...] = ()) -> Request:
    return Request(case, customer, bucket, dpd, past)


def decided(placement: object) -> dict[str, str]:
    return {d.case_id: d.agency_id for ds in placement.decisions.values() for d in ds}  # type: ignore[attr-defined]


def test_a_debtors_cases_in_different_partitions_go_to_one_agency() -> None:
    reports = [Report(p, "t", (req(f"L{p}:1", "C1"),)) for p in range(3)]
    chosen = decided(place(reports, RULES))
    assert len(chosen) == 3 and len(set(chosen.values())) == 1


def test_a_debtor_already_worked_by_an_agency_keeps_it_for_new_cases_or_they_wait() -> None:
    reports = [Report(0, "t", held=(Held("L0:1", "C1", "AG1"),)),
               Report(1, "t", (req("L1:1", "C1", "M3"), req("L2:1", "C1", "M4")))]
    chosen = decided(place(reports, RULES))
    assert chosen == {"L1:1": "AG1"}  # M4 is not AG1's: that case waits until AG1 is done with the debtor


def test_a_case_returned_by_the_debtors_agency_waits_instead_of_going_back() -> None:
    reports = [Report(0, "t", (req("L1:1", "C1", past=("AG1",)),), (Held("L9:1", "C1", "AG1"),))]
    assert decided(place(reports, RULES)) == {}


def test_capacity_is_bounded_over_every_partition_and_filled_exactly() -> None:
    tight = AllocationRules((AgencyTerms("A", frozenset({"M2"}), 2, 1, 30),), partitions=6)
    reports = [Report(p, "t", (req(f"L{p}:1", f"C{p}", "M2"),)) for p in range(6)]
    assert len(decided(place(reports, tight))) == 2  # capacity 2 over 6 partitions: exactly 2
    with_one_held = [*reports[:5], Report(5, "t", held=(Held("X:1", "CX", "A"),))]
    assert len(decided(place(with_one_held, tight))) == 1


def test_when_capacity_is_short_the_oldest_delinquency_is_placed_first() -> None:
    tight = AllocationRules((AgencyTerms("A", frozenset({"M2", "M3"}), 1, 1, 30),), partitions=2)
    reports = [Report(0, "t", (req("L0:1", "C0", "M2", dpd=35),)), Report(1, "t", (req("L1:1", "C1", "M3", dpd=70),))]
    assert decided(place(reports, tight)) == {"L1:1": "A"}


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 8))
def test_decisions_are_a_function_of_the_reports_whatever_their_order(seed: int, capacity: int) -> None:
    rnd = random.Random(seed)
    rules = AllocationRules((AgencyTerms("A", frozenset({"M2", "M3"}), capacity, 2, 30),
                             AgencyTerms("B", frozenset({"M3"}), capacity, 1, 30)), partitions=4)
    reports = []
    for p in range(4):
        requests = tuple(req(f"L{p}-{i}:1", f"C{rnd.randrange(6)}", rnd.choice(["M2", "M3"]), rnd.randrange(31, 90))
                         for i in range(rnd.randrange(4)))
        held = tuple(Held(f"H{p}-{i}:1", f"C{rnd.randrange(6)}", rnd.choice("AB")) for i in range(rnd.randrange(2)))
        reports.append(Report(p, "t", requests, held))
    first = place(reports, rules)
    shuffled = list(reports)
    rnd.shuffle(shuffled)
    assert place(shuffled, rules) == first
    load = {a: sum(1 for r in reports for h in r.held if h.agency_id == a) for a in "AB"}
    for agency in "AB":
        assert load[agency] + list(decided(first).values()).count(agency) <= max(capacity, load[agency])
