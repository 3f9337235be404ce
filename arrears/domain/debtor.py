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


def count_contact(state: DebtorState, message: ev.ContactCounted,
                  rules: Rules) -> tuple[DebtorState, list[ev.Output | ev.BudgetVerdict]]:
    """Count one contact in its debtor's budget; emit the violations (and verdicts) it completes."""
    attempt = message.attempt
    if any(c.event_id == attempt.event_id for c in state.contacts):
        return state, []  # a repeat (at-least-once between the stages)
    record = replace(compliance.ContactRecord.from_event(attempt), loan_id=message.loan_id,
                     recorded=message.recorded)
    dates = [d for d in (state.business_date, message.business_date) if d is not None]
    business_date = max(dates) if dates else None
    timezone = message.timezone or state.timezone or rules.policy.default_timezone
    policy = rules.policy
    contacts = compliance.prune((*state.contacts, record), _horizon(business_date, rules), policy)
    kept = {c.event_id for c in contacts}
    flagged = frozenset(k for k in state.flagged if k.split("|", 1)[0] in kept)
    findings = compliance.budget_findings(contacts, policy, timezone)
    by_id = {c.event_id: c for c in contacts}
    outputs: list[ev.Output | ev.BudgetVerdict] = []
    added: set[str] = set()
    for event_id in sorted(findings, key=lambda e: by_id[e].key):
        violating = by_id[event_id]
        for finding in findings[event_id]:
            key = f"{event_id}|{finding.rule}"
            if key in flagged:
                continue
            added.add(key)
            violation_id = ev.derive_id(event_id, "ComplianceViolation", finding.rule)
            outputs.append(ev.ComplianceViolation(
                event_id=violation_id, occurred_at=violating.occurred_at, case_id=violating.case_id,
                loan_id=violating.loan_id, agency_id=violating.agency_id, rule=finding.rule,
                details=finding.details, source_event_id=event_id,
            ))
            outputs.append(ev.BudgetVerdict(
                event_id=ev.derive_id(violation_id, "BudgetVerdict"), occurred_at=violating.occurred_at,
                loan_id=violating.loan_id, case_id=violating.case_id, agency_id=violating.agency_id,
                contact_event_id=event_id, rule=finding.rule, recorded=violating.recorded,
            ))
    new_state = DebtorState(state.customer_id, timezone, contacts, flagged | added, business_date)
    return new_state, outputs


def _horizon(business_date: dt.date | None, rules: Rules) -> int:
    """The earliest attempted_at the budget still needs (by business date: every run agrees)."""
    if business_date is None:
        return -(2**62)
    return ((business_date - _EPOCH).days - rules.late_report_days) * _DAY_MS


class DebtorStore(Protocol):
    """Where debtor states live (a dict in tests, a table in the processor)."""

    def get(self, customer_id: str) -> DebtorState | None: ...

    def put(self, state: DebtorState) -> None: ...


class DebtorBook:
    """The budgets of the debtors one partition of the debtor stage owns."""

    def __init__(self, store: DebtorStore, rules: Rules) -> None:
        self.store = store
        self.rules = rules

    def count(self, message: ev.ContactCounted) -> list[ev.Output | ev.BudgetVerdict]:
        state = self.store.get(message.customer_id) or DebtorState(message.customer_id)
        new_state, outputs = count_contact(state, message, self.rules)
        if new_state is not state:
            self.store.put(new_state)
        return outputs

    def contacts(self, customer_id: str) -> tuple[compliance.ContactRecord, ...]:
        state = self.store.get(customer_id)
        return state.contacts if state else ()
