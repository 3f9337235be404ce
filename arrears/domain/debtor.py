"""The debtor's contact budget: one debtor, one budget, across every agency and loan (SPEC §6). Pure.

Every contact a loan's case records (or refuses as not assigned: the debtor was contacted all
the same) is counted here, in the budget of the debtor it was about, whatever loan and
partition it came from. The count rules are decided by rank in time order
(:func:`arrears.domain.compliance.budget_findings`), so the findings are a function of the set
of the debtor's attempts, not of the order they arrived from the debtor's loans; each finding
is emitted once, as a ``ComplianceViolation`` naming the case and loan of the violating
attempt, and as a :class:`~arrears.domain.events.BudgetVerdict` back to that loan, whose
CaseState counts it (the verdict may come after the contact: the case's ``violations`` rises
then).

The CBA rule for third parties is the exception: a late unanswered call can clear a third-party
contact, and a verdict is never withdrawn, so judging it on arrival would depend on which of the
debtor's loans reported first. It is judged at a barrier instead, like a promise: every loan
partition, once it has applied a tick, tells every partition of the debtor stage so
(:class:`~arrears.domain.events.TickApplied`, sent after the contacts it counted before the
tick). When a budget partition has heard tick D from every loan partition, each held
third-party contact counted before D is judged against exactly the debtor's attempts counted
before D: the same set in a live run, under a kill, and in a replay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Protocol

from . import compliance
from . import events as ev
from .state import Rules

_DAY_MS = 86_400_000
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class DebtorState:
    """What the budget keeps about one debtor."""

    customer_id: str
    timezone: str = ""
    contacts: tuple[compliance.ContactRecord, ...] = ()  # recent attempts, every agency, every loan
    flagged: frozenset[str] = frozenset()  # "<attempt event id>|<rule>" already emitted
    business_date: dt.date | None = None  # the latest business date a contact came with (for pruning)
    held: frozenset[str] = frozenset()  # third-party contacts waiting for a barrier tick (CBA rule)


Verdicts = list[ev.Output | ev.BudgetVerdict]


def count_contact(state: DebtorState, message: ev.ContactCounted, rules: Rules) -> tuple[DebtorState, Verdicts]:
    """Count one contact in its debtor's budget; emit the violations (and verdicts) it completes."""
    attempt = message.attempt
    if any(c.event_id == attempt.event_id for c in state.contacts):
        return state, []  # a repeat (at-least-once between the stages)
    record = replace(compliance.ContactRecord.from_event(attempt), loan_id=message.loan_id,
                     recorded=message.recorded, counted_on=message.business_date)
    dates = [d for d in (state.business_date, message.business_date) if d is not None]
    business_date = max(dates) if dates else None
    timezone = message.timezone or state.timezone or rules.policy.default_timezone
    policy = rules.policy
    held = state.held | ({record.event_id} if compliance.judged_at_barrier(record, policy) else set())
    known = (*state.contacts, record)
    contacts = compliance.prune(known, _horizon(business_date, held, known, rules), policy)
    kept = {c.event_id for c in contacts}
    flagged = frozenset(k for k in state.flagged if k.split("|", 1)[0] in kept)
    findings = compliance.budget_findings(contacts, policy, timezone, third_party=False)
    by_id = {c.event_id: c for c in contacts}
    outputs: Verdicts = []
    added: set[str] = set()
    for event_id in sorted(findings, key=lambda e: by_id[e].key):
        for finding in findings[event_id]:
            if f"{event_id}|{finding.rule}" not in flagged:
                added.add(f"{event_id}|{finding.rule}")
                outputs += _violation(by_id[event_id], finding)
    new_state = DebtorState(state.customer_id, timezone, contacts, flagged | added, business_date, held & kept)
    return new_state, outputs


def judge_at_barrier(state: DebtorState, business_date: dt.date, rules: Rules) -> tuple[DebtorState, Verdicts]:
    """Every loan partition applied the tick of *business_date*: judge the third-party contacts
    counted before it, against the debtor's attempts counted before it (and no others)."""
    before = tuple(c for c in state.contacts if c.counted_on is None or c.counted_on < business_date)
    due = sorted((c for c in before if c.event_id in state.held), key=lambda c: c.key)
    if not due:
        return state, []
    outputs: Verdicts = []
    flagged = set(state.flagged)
    for contact in due:
        finding = compliance.third_party_finding(contact, before, rules.policy, state.timezone)
        key = f"{contact.event_id}|{compliance.THIRD_PARTY_CONTACT}"
        if finding is not None and key not in flagged:
            flagged.add(key)
            outputs += _violation(contact, finding)
    held = state.held - {c.event_id for c in due}
    return replace(state, flagged=frozenset(flagged), held=held), outputs


def _violation(violating: compliance.ContactRecord, finding: compliance.Finding) -> Verdicts:
    """The violation, and the verdict that tells the attempt's loan (its CaseState counts it)."""
    event_id = violating.event_id
    violation_id = ev.derive_id(event_id, "ComplianceViolation", finding.rule)
    return [
        ev.ComplianceViolation(
            event_id=violation_id, occurred_at=violating.occurred_at, case_id=violating.case_id,
            loan_id=violating.loan_id, agency_id=violating.agency_id, rule=finding.rule,
            details=finding.details, source_event_id=event_id,
        ),
        ev.BudgetVerdict(
            event_id=ev.derive_id(violation_id, "BudgetVerdict"), occurred_at=violating.occurred_at,
            loan_id=violating.loan_id, case_id=violating.case_id, agency_id=violating.agency_id,
            contact_event_id=event_id, rule=finding.rule, recorded=violating.recorded,
        ),
    ]


def _horizon(business_date: dt.date | None, held: frozenset[str], contacts: tuple[compliance.ContactRecord, ...],
             rules: Rules) -> int:
    """The earliest attempted_at the budget still needs (by business date: every run agrees),
    no later than a held third-party contact (its verdict needs the attempts before it)."""
    if business_date is None:
        return -(2**62)
    horizon = ((business_date - _EPOCH).days - rules.late_report_days) * _DAY_MS
    waiting = [c.attempted_at for c in contacts if c.event_id in held]
    return min([horizon, *waiting])


@dataclass(frozen=True, slots=True)
class TickBarrier:
    """What one partition of the debtor stage heard about ticks, and who waits for one."""

    heard: tuple[tuple[dt.date, frozenset[int]], ...] = ()  # ticks not yet heard from every loan partition
    judged: dt.date | None = None  # the latest tick every loan partition applied
    waiting: frozenset[str] = frozenset()  # debtors holding third-party contacts

    def hear(self, message: ev.TickApplied, partitions: int) -> tuple[TickBarrier, dt.date | None]:
        """Note that a loan partition applied a tick; the tick's date once every partition has."""
        date = message.business_date
        if self.judged is not None and date <= self.judged:
            return self, None  # a repeat, or a tick overtaken by a later one
        heard = dict(self.heard)
        heard[date] = heard.get(date, frozenset()) | {message.partition}
        if len(heard[date]) < partitions:
            return replace(self, heard=tuple(sorted(heard.items()))), None
        later = tuple(sorted((d, ps) for d, ps in heard.items() if d > date))
        return replace(self, heard=later, judged=date), date


class DebtorStore(Protocol):
    """Where debtor states live (a dict in tests, a table in the processor)."""

    def get(self, customer_id: str) -> DebtorState | None: ...

    def put(self, state: DebtorState) -> None: ...

    def get_barrier(self) -> TickBarrier | None: ...

    def put_barrier(self, barrier: TickBarrier) -> None: ...


class DebtorBook:
    """The budgets of the debtors one partition of the debtor stage owns.

    *partitions* is the number of loan partitions: a barrier tick is complete once each of
    them has said it applied the tick.
    """

    def __init__(self, store: DebtorStore, rules: Rules, partitions: int) -> None:
        self.store = store
        self.rules = rules
        self.partitions = partitions

    def count(self, message: ev.ContactCounted) -> Verdicts:
        state = self.store.get(message.customer_id) or DebtorState(message.customer_id)
        new_state, outputs = count_contact(state, message, self.rules)
        if new_state is not state:
            self.store.put(new_state)
            if new_state.held:
                barrier = self.barrier()
                if new_state.customer_id not in barrier.waiting:
                    self.store.put_barrier(replace(barrier, waiting=barrier.waiting | {new_state.customer_id}))
        return outputs

    def tick_applied(self, message: ev.TickApplied) -> Verdicts:
        """A loan partition applied a tick; once all have, judge what waited for it."""
        heard = self.barrier()
        barrier, complete = heard.hear(message, self.partitions)
        if complete is None:
            if barrier is not heard:
                self.store.put_barrier(barrier)
            return []
        outputs: Verdicts = []
        waiting = set(barrier.waiting)
        for customer_id in sorted(barrier.waiting):
            state = self.store.get(customer_id)
            if state is None:
                waiting.discard(customer_id)
                continue
            new_state, judged = judge_at_barrier(state, complete, self.rules)
            if new_state is not state:
                self.store.put(new_state)
            if not new_state.held:
                waiting.discard(customer_id)
            outputs += judged
        self.store.put_barrier(replace(barrier, waiting=frozenset(waiting)))
        return outputs

    def barrier(self) -> TickBarrier:
        return self.store.get_barrier() or _NO_BARRIER

    def contacts(self, customer_id: str) -> tuple[compliance.ContactRecord, ...]:
        state = self.store.get(customer_id)
        return state.contacts if state else ()

    def awaiting(self, customer_id: str) -> frozenset[str]:
        """The debtor's third-party contacts whose verdict waits for the next tick."""
        state = self.store.get(customer_id)
        return state.held if state else frozenset()


_NO_BARRIER = TickBarrier()
