"""Choosing an agency (SPEC §5): weights, capacity, determinism, rotation, internal buckets."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arrears.domain.allocation import AgencyTerms, AllocationRules, choose_agency

AG1 = AgencyTerms("AG1", frozenset({"M2", "M3"}), capacity=10_000, weight=2, assignment_days=30)
AG2 = AgencyTerms("AG2", frozenset({"M3", "M4"}), capacity=10_000, weight=1, assignment_days=45)
AG3 = AgencyTerms("AG3", frozenset({"M3"}), capacity=10_000, weight=1, assignment_days=30)
RULES = AllocationRules((AG1, AG2, AG3), internal_buckets=frozenset({"M1"}), partitions=6)


def test_shares_follow_the_weights_within_two_percent_over_ten_thousand_cases() -> None:
    wins = Counter(choose_agency(f"L{i}:1", "M3", RULES, {}, 0).agency.agency_id for i in range(10_000))
    assert abs(wins["AG1"] / 10_000 - 0.50) < 0.02
    assert abs(wins["AG2"] / 10_000 - 0.25) < 0.02
    assert abs(wins["AG3"] / 10_000 - 0.25) < 0.02


def test_the_same_case_always_goes_to_the_same_agency() -> None:
    first = [choose_agency(f"L{i}:1", "M3", RULES, {}, 2).agency for i in range(200)]
    again = [choose_agency(f"L{i}:1", "M3", RULES, {}, 2).agency for i in range(200)]
    assert first == again


def test_internal_buckets_are_never_sent_to_an_agency() -> None:
    choice = choose_agency("L1:1", "M1", RULES, {}, 0)
    assert choice.agency is None and "in-house" in choice.reason


def test_a_bucket_no_agency_serves_stays_unassigned_with_the_reason() -> None:
    choice = choose_agency("L1:1", "M7+", RULES, {}, 0)
    assert choice.agency is None and "no agency serves" in choice.reason


def test_only_agencies_serving_the_bucket_are_eligible() -> None:
    agencies = {choose_agency(f"L{i}:1", "M4", RULES, {}, 0).agency.agency_id for i in range(100)}
    assert agencies == {"AG2"}


@pytest.mark.parametrize(("capacity", "partitions"), [(10, 6), (5, 6), (3, 1), (0, 4), (7, 7)])
def test_per_partition_shares_never_add_up_to_more_than_the_capacity(capacity: int, partitions: int) -> None:
    agency = AgencyTerms("A", frozenset({"M2"}), capacity, 1, 30)
    rules = AllocationRules((agency,), partitions=partitions)
    assert sum(rules.capacity_in(agency, p) for p in range(partitions)) == capacity


def test_capacity_is_never_exceeded_and_full_agencies_are_skipped() -> None:
    small = AgencyTerms("SMALL", frozenset({"M3"}), capacity=12, weight=100, assignment_days=30)
    big = AgencyTerms("BIG", frozenset({"M3"}), capacity=10_000, weight=1, assignment_days=30)
    rules = AllocationRules((small, big), partitions=6)
    load: Counter[str] = Counter()
    for i in range(500):
        choice = choose_agency(f"L{i}:1", "M3", rules, load, partition=1)
        assert choice.agency is not None
        load[choice.agency.agency_id] += 1
    assert load["SMALL"] == rules.capacity_in(small, 1) == 2
    assert load["BIG"] == 498


def test_everyone_full_leaves_the_case_unassigned() -> None:
    rules = AllocationRules((AgencyTerms("A", frozenset({"M2"}), 6, 1, 30),), partitions=6)
    choice = choose_agency("L1:1", "M2", rules, {"A": 1}, partition=3)
    assert choice.agency is None and "capacity" in choice.reason


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=12), st.sampled_from(["AG1", "AG2", "AG3"]))
def test_rotation_never_goes_back_to_the_agency_a_case_came_from_while_another_is_eligible(
    case: str, last: str
) -> None:
    choice = choose_agency(case, "M3", RULES, {}, 0, history=(last,))
    assert choice.agency is not None and choice.agency.agency_id != last


def test_rotation_prefers_agencies_that_never_held_the_case_then_the_longest_ago() -> None:
    assert choose_agency("L1:1", "M3", RULES, {}, 0, history=("AG1", "AG2")).agency.agency_id == "AG3"
    assert choose_agency("L1:1", "M3", RULES, {}, 0, history=("AG3", "AG1", "AG2")).agency.agency_id == "AG3"


def test_the_only_eligible_agency_takes_the_case_back() -> None:
    choice = choose_agency("L1:1", "M4", RULES, {}, 0, history=("AG2",))
    assert choice.agency is not None and choice.agency.agency_id == "AG2"
