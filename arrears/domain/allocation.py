"""Which agency works a debtor's case (SPEC §5): eligibility, capacity, weights, rotation. Pure.

* **Eligibility**: the agency serves the case's bucket and the bucket is not worked in-house.
* **Capacity** is global: an agency has room while its open assignments over the whole book
  are below its capacity (:mod:`arrears.domain.placement` counts them across partitions).
* **Weights**: weighted rendezvous hashing. Each (key, agency) pair gets a pseudo-random
  number from a hash; the agency with the smallest ``-ln(u) / weight`` wins. The key is the
  debtor's customer id, so a debtor always ranks the agencies the same way, and over many
  debtors each agency wins in proportion to its weight (a race of exponential clocks). Full
  agencies are skipped, so a debtor falls to its next-ranked agency.
* **Rotation**: a case coming back (expired, returned) goes to an agency that has not held
  it when one is eligible with room, else to one that held it longest ago, never straight
  back to the agency it came from while another is available.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AgencyTerms:
    agency_id: str
    buckets: frozenset[str]
    capacity: int
    weight: int
    assignment_days: int


@dataclass(frozen=True)
class AllocationRules:
    agencies: tuple[AgencyTerms, ...] = ()
    internal_buckets: frozenset[str] = frozenset()
    partitions: int = 1

    def eligible(self, bucket: str) -> list[AgencyTerms]:
        if bucket in self.internal_buckets:
            return []
        return [a for a in self.agencies if bucket in a.buckets]

    def serves(self, agency_id: str, bucket: str) -> bool:
        return any(a.agency_id == agency_id for a in self.eligible(bucket))

    def terms(self, agency_id: str) -> AgencyTerms | None:
        return next((a for a in self.agencies if a.agency_id == agency_id), None)


@dataclass(frozen=True, slots=True)
class Choice:
    """The agency chosen (or None) and why, for the audit trail."""

    agency: AgencyTerms | None
    reason: str


def _score(key: str, agency: AgencyTerms) -> float:
    digest = hashlib.blake2b(f"{key}|{agency.agency_id}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / 2.0**64  # uniform in (0, 1)
    return -math.log(u) / agency.weight


def rank(key: str, agencies: Sequence[AgencyTerms]) -> list[AgencyTerms]:
    """The agencies in the order this debtor (or any key) prefers them (weighted rendezvous hashing)."""
    return sorted(agencies, key=lambda a: (_score(key, a), a.agency_id))


def choose_agency(
    key: str,
    bucket: str,
    rules: AllocationRules,
    load: Mapping[str, int],
    history: Sequence[str] = (),
) -> Choice:
    """Pick an agency with room for a case of the debtor *key*, or none with the reason.

    *load* is every agency's open assignments over the whole book; *history* lists the
    agencies that held the case, oldest first; its last one is the agency the case is coming
    back from.
    """
    if bucket in rules.internal_buckets:
        return Choice(None, f"bucket {bucket} is worked in-house")
    eligible = rules.eligible(bucket)
    if not eligible:
        return Choice(None, f"no agency serves bucket {bucket}")
    with_room = [a for a in eligible if load.get(a.agency_id, 0) < a.capacity]
    if not with_room:
        return Choice(None, f"every agency serving {bucket} is at capacity")
    ranked = rank(key, with_room)
    last = history[-1] if history else None
    held = {agency: i for i, agency in enumerate(history)}
    fresh = [a for a in ranked if a.agency_id not in held]
    if fresh:
        return Choice(fresh[0], "ranked first for the debtor among agencies with room" if not history
                      else "rotated to an agency that has not held the case")
    others = [a for a in ranked if a.agency_id != last]
    if others:
        chosen = min(others, key=lambda a: held[a.agency_id])
        return Choice(chosen, "rotated to the agency that held the case longest ago")
    return Choice(ranked[0], "the only eligible agency with room")
