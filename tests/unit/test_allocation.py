"""Choosing an agency (SPEC §5): weights, global capacity, determinism per debtor, rotation, internal buckets."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from arrears.domain.allocation import AgencyTerms, AllocationRules, choose_agency

AG1 = AgencyTerms("AG1", frozenset({"M2", "M3"}), capacity=10_000, weight=2, assignment_days=30)
AG2 = AgencyTerms("AG2", frozenset({"M3", "M4"}), capacity=10_000, weight=1, assignment_days=45)
AG3 = AgencyTerms("AG3", frozenset({"M3"}), capacity=10_000, weight=1, assignment_days=30)
RULES = AllocationRules((AG1, AG2, AG3), internal_buckets=frozenset({"M1"}), partitions=6)


def test_shares_follow_the_weights_within_two_percent_over_ten_thousand_debtors() -> None:
    wins = Counter(choose_agency(f"C{i}", "M3", RULES, {}).agency.agency_id for i in range(10_000))
    assert abs(wins["AG1"] / 10_000 - 0.50) < 0.02
    assert abs(wins["AG2"] / 10_000 - 0.25) < 0.02
    assert abs(wins["AG3"] / 10_000 - 0.25) < 0.02


def test_the_same_debtor_always_ranks_the_agencies_the_same_way() -> None:
    first = [choose_agency(f"C{i}", "M3", RULES, {}).agency for i in range(200)]
    again = [choose_agency(f"C{i}", "M3", RULES, {}).agency for i in range(200)]
    assert first == again


def test_internal_buckets_are_never_sent_to_an_agency() -> None:
    choice = choose_agency("C1", "M1", RULES, {})
    assert choice.agency is None and "in-house" in choice.reason


def test_a_bucket_no_agency_serves_stays_unassigned_with_the_reason() -> None:
    choice = choose_agency("C1", "M7+", RULES, {})
    assert choice.agency is None and "no agency serves" in choice.reason


def test_only_agencies_serving_the_bucket_are_eligible() -> None:
    agencies = {choose_agency(f"C{i}", "M4", RULES, {}).agency.agency_id for i in range(100)}
    assert agencies == {"AG2"}


def test_capacity_is_global_and_full_agencies_are_skipped() -> None:
    small = AgencyTerms("SMALL", frozenset({"M3"}), capacity=2, weight=100, assignment_days=30)
    big = AgencyTerms("BIG", frozenset({"M3"}), capacity=10_000, weight=1, assignment_days=30)
    rules = AllocationRules((small, big), partitions=6)  # capacity 2 is not split over 6 partitions
    load: Counter[str] = Counter()
    for i in range(500):
        choice = choose_agency(f"C{i}", "M3", rules, load)
        assert choice.agency is not None
        load[choice.agency.agency_id] += 1
    assert (load["SMALL"], load["BIG"]) == (2, 498)


def test_everyone_full_leaves_the_case_unassigned() -> None:
    rules = AllocationRules((AgencyTerms("A", frozenset({"M2"}), 6, 1, 30),), partitions=6)
    choice = choose_agency("C1", "M2", rules, {"A": 6})
    assert choice.agency is None and "capacity" in choice.reason
    assert choose_agency("C1", "M2", rules, {"A": 5}).agency is not None


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=12), st.sampled_from(["AG1", "AG2", "AG3"]))
def test_rotation_never_goes_back_to_the_agency_a_case_came_from_while_another_is_eligible(
    debtor: str, last: str
) -> None:
    choice = choose_agency(debtor, "M3", RULES, {}, history=(last,))
    assert choice.agency is not None and choice.agency.agency_id != last


def test_rotation_prefers_agencies_that_never_held_the_case_then_the_longest_ago() -> None:
    assert choose_agency("C1", "M3", RULES, {}, history=("AG1", "AG2")).agency.agency_id == "AG3"
    assert choose_agency("C1", "M3", RULES, {}, history=("AG3", "AG1", "AG2")).agency.agency_id == "AG3"


def test_the_only_eligible_agency_takes_the_case_back() -> None:
    choice = choose_agency("C1", "M4", RULES, {}, history=("AG2",))
    assert choice.agency is not None and choice.agency.agency_id == "AG2"
