"""Placing cases with agencies for the whole book at once, tick by tick (SPEC §5). Pure.

Each partition applies a tick and then reports what placement needs: its cases waiting for an
agency (open, not on hold, in a bucket some agency serves) and the cases it has with agencies
now. With every partition's report for the tick in hand, :func:`place` decides, for the whole
book:

* **Capacity is global**: an agency's open assignments, summed over every partition, never
  exceed its capacity. Assignments are only ever made here, from the reports of one tick, so
  the bound holds at every moment (recalls between ticks only lower the load).
* **One debtor, one agency**: while one of a debtor's cases is with an agency, the debtor's
  other cases go to that agency (when it serves their bucket and has room) or wait. A new
  agency is chosen for a debtor only when none of the debtor's cases is with one, by weighted
  rendezvous hashing on the customer id (so the choice is the debtor's, not the case's).
* **Rotation**: a case coming back (expired, returned) goes to an agency that has not held it
  when one is eligible, never straight back to the one it came from while another is.
* **Order**: debtors with the most overdue cases first (highest DPD), then by customer id;
  so when capacity is short the oldest delinquency is placed first, and the result is a
  function of the reports alone — the same decisions in every run and every replay.

Decisions are applied in each partition before anything after the tick (the partitions wait
for them), so a case placed at a tick is assigned at that tick's business date.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .allocation import AllocationRules, choose_agency


@dataclass(frozen=True, slots=True)
class Request:
    """A case waiting for an agency."""

    case_id: str
    customer_id: str
    bucket: str
    dpd: int
    past_agencies: tuple[str, ...] = ()  # agencies that held it, oldest first


@dataclass(frozen=True, slots=True)
class Held:
    """A case with an agency now."""

    case_id: str
    customer_id: str
    agency_id: str


@dataclass(frozen=True, slots=True)
class Report:
    """What one partition tells placement after applying one tick."""

    partition: int
    tick_id: str
    requests: tuple[Request, ...] = ()
    held: tuple[Held, ...] = ()
    business_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Assign this case to this agency (applied by the case's partition at the tick)."""

    case_id: str
    agency_id: str
    reason: str = ""


@dataclass(frozen=True)
class Placement:
    """One tick's decisions, by partition, with the agencies' load after them (for the record)."""

    tick_id: str
    decisions: Mapping[int, tuple[Decision, ...]]
    load: Mapping[str, int] = field(default_factory=dict)


def place(reports: Iterable[Report], rules: AllocationRules) -> Placement:
    """Every partition's report for one tick in, the decisions for every partition out."""
    reports = sorted(reports, key=lambda r: r.partition)
    tick_ids = {r.tick_id for r in reports}
    if len(tick_ids) > 1:
        raise ValueError(f"reports of different ticks: {sorted(tick_ids)}")
    load: Counter[str] = Counter()
    debtor_agency: dict[str, str] = {}
    for report in reports:
        for held in sorted(report.held, key=lambda h: h.case_id):
            load[held.agency_id] += 1
            debtor_agency.setdefault(held.customer_id, held.agency_id)
    waiting: dict[str, list[tuple[int, Request]]] = {}
    for report in reports:
        for request in report.requests:
            waiting.setdefault(request.customer_id, []).append((report.partition, request))
    order = sorted(waiting, key=lambda c: (-max(r.dpd for _, r in waiting[c]), c))
    decisions: dict[int, list[Decision]] = {r.partition: [] for r in reports}
    for customer in order:
        for partition, request in sorted(waiting[customer], key=lambda pr: (-pr[1].dpd, pr[1].case_id)):
            decision = _decide(customer, request, rules, load, debtor_agency)
            if decision is None:
                continue
            decisions.setdefault(partition, []).append(decision)
            load[decision.agency_id] += 1
            debtor_agency[customer] = decision.agency_id
    return Placement(next(iter(tick_ids), ""), {p: tuple(d) for p, d in decisions.items()}, dict(load))


def _decide(customer: str, request: Request, rules: AllocationRules, load: Mapping[str, int],
            debtor_agency: Mapping[str, str]) -> Decision | None:
    current = debtor_agency.get(customer)
    if current is None:
        choice = choose_agency(customer, request.bucket, rules, load, request.past_agencies)
        return Decision(request.case_id, choice.agency.agency_id, choice.reason) if choice.agency else None
    terms = rules.terms(current)
    if terms is None or not rules.serves(current, request.bucket):
        return None  # the debtor's agency does not work this bucket: the case waits
    if request.past_agencies and request.past_agencies[-1] == current:
        return None  # it just came back from the debtor's agency: it waits for the debtor to be free
    if load.get(current, 0) >= terms.capacity:
        return None
    return Decision(request.case_id, current, "the agency already working the debtor")


def requests_of(reports: Sequence[Report]) -> int:
    return sum(len(r.requests) for r in reports)
