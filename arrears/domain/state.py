"""The state the rules keep per loan, the configuration they depend on, and their step log."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace

from . import events as ev
from . import settlements
from .allocation import AllocationRules
from .buckets import DEFAULT_BUCKETS, BucketScheme
from .cases import Case, CaseSummary
from .commission import AgencySpan, CommissionRates, Recovery
from .compliance import ContactRecord
from .compliance_profiles import PROFILES, ContactPolicy
from .ledger import Figures, Installment, Repayment, figures, first_unpaid_due_date
from .pauses import Pause, day_counted
from .settlements import SettlementTerms

CONTRACT_VIOLATION = "CONTRACT_VIOLATION"
NOT_ASSIGNED = "NOT_ASSIGNED"
NOT_HELD = "NOT_HELD"
FUTURE_TIME = "FUTURE_TIME"


@dataclass(frozen=True)
class Rules:
    """The configuration the rules depend on."""

    buckets: BucketScheme = DEFAULT_BUCKETS
    grace_days: int = 0
    allocation: AllocationRules = field(default_factory=AllocationRules)
    policy: ContactPolicy = PROFILES["CN"]
    # How late a contact may be reported and still count against the budget of its days:
    # older attempts are pruned (by business date, so every run prunes the same ones).
    late_report_days: int = 7
    # §10 treatments: settlement limits and agencies' commission rates.
    settlements: SettlementTerms = field(default_factory=SettlementTerms)
    commission: CommissionRates = field(default_factory=CommissionRates)


@dataclass(frozen=True)
class Context:
    """What the partition knows when an event is applied."""

    business_date: dt.date | None
    rules: Rules = field(default_factory=Rules)
    partition: int = 0


@dataclass(frozen=True, slots=True)
class AgencyTally:
    """What one agency did on this loan's cases (summed over loans for its KPIs)."""

    agency_id: str
    assignments: int = 0
    attempts: int = 0
    contacts: int = 0  # attempts that reached someone
    right_party_contacts: int = 0  # attempts that reached the debtor
    promises: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    recovered: int = 0  # repayments received while the agency held the case, net of their reversals
    violations: int = 0
    attributed: int = 0  # §10: repayments attributed to the agency (RecoveryAttributed), net of reversals
    commission: int = 0  # §10: the commission on them, net of reversals


@dataclass(frozen=True, slots=True)
class LoanTreatments:
    """What SPEC §10 keeps of a loan: one field of LoanState, absent for the many loans without any."""

    pauses: tuple[Pause, ...] = ()  # every PauseDelinquency, with the resume that ended it early
    paused_until: dt.date | None = None  # the last day of the pause in effect at the last step; None: not paused
    settled_by: str | None = None  # the settlement that paid the loan off: no later case opens
    agency_spans: tuple[AgencySpan, ...] = ()  # which agency held which case, in business dates
    recoveries: tuple[Recovery, ...] = ()  # repayments attributed to agencies
    recoveries_judged_before: dt.date | None = None  # repayments valued before this date were attributed


NO_TREATMENTS = LoanTreatments()


@dataclass(frozen=True, slots=True)
class LoanState:
    """Everything the processor keeps about one loan."""

    loan_id: str
    account: ev.LoanOpened | None = None
    closed_reason: str | None = None
    installments: tuple[Installment, ...] = ()  # sorted by number
    repayments: tuple[Repayment, ...] = ()  # in arrival order
    pending_reversals: tuple[str, ...] = ()  # payment ids reversed before they arrived
    waiting: tuple[ev.InputEvent, ...] = ()  # events that came before LoanOpened
    applied: frozenset[int] = frozenset()  # fingerprints of the event ids already applied
    case_count: int = 0
    case: Case | None = None  # the current case: open, or the last one closed
    history: tuple[Case | CaseSummary, ...] = ()  # earlier cases, closed (CaseSummary: stored by older versions)
    # The business date of the last change: every tick up to it has been applied to this loan.
    # A restart may replay ticks the loan already saw; they must not apply twice.
    as_of: dt.date | None = None
    contacts: tuple[ContactRecord, ...] = ()  # unused: the budget is the debtor stage's (kept: fields are positional)
    tallies: tuple[AgencyTally, ...] = ()
    journal_len: int = 0  # records in the loan's audit journal (kept by the processor, not the rules)
    flagged: frozenset[str] = frozenset()  # unused since the debtor stage (kept: stored fields are positional)
    treatments: LoanTreatments | None = None  # §10 (arrears.domain.treatments); None for most loans

    # §10: the treatments' fields, read through the one LoanState field that holds them
    @property
    def treated(self) -> LoanTreatments:
        return self.treatments or NO_TREATMENTS

    @property
    def pauses(self) -> tuple[Pause, ...]:
        return self.treated.pauses

    @property
    def paused_until(self) -> dt.date | None:
        return self.treated.paused_until

    @property
    def settled_by(self) -> str | None:
        return self.treated.settled_by

    @property
    def agency_spans(self) -> tuple[AgencySpan, ...]:
        return self.treated.agency_spans

    @property
    def recoveries(self) -> tuple[Recovery, ...]:
        return self.treated.recoveries

    @property
    def recoveries_judged_before(self) -> dt.date | None:
        return self.treated.recoveries_judged_before

    def with_treatments(self, **changes: object) -> LoanState:
        """The state with these §10 fields changed."""
        treated = replace(self.treated, **changes)  # type: ignore[arg-type]
        return replace(self, treatments=None if treated == NO_TREATMENTS else treated)

    @property
    def open_case(self) -> Case | None:
        return self.case if self.case is not None and self.case.is_open else None

    def find_case(self, case_id: str) -> Case | CaseSummary | None:
        """The current case or an earlier one, by id."""
        if self.case is not None and self.case.case_id == case_id:
            return self.case
        return next((c for c in self.history if c.case_id == case_id), None)

    def with_case(self, case: Case) -> LoanState:
        """The state with *case* replacing the case of the same id (current or earlier)."""
        if self.case is not None and self.case.case_id == case.case_id:
            return replace(self, case=case)
        return replace(self, history=tuple(case if c.case_id == case.case_id else c for c in self.history))

    def figures(self, business_date: dt.date | None, buckets: BucketScheme) -> Figures:
        return figures(self.installments, self.repayments, business_date, buckets, self.pauses)

    def wake_date(self, grace_days: int) -> dt.date | None:
        """The first business date at which a tick can change this loan; None if no tick can.

        A loan with an open case is looked at every tick (its DPD and bucket move); one
        without opens a case once its oldest unpaid installment is more than grace days late;
        a promise on a closed case is judged the day after its date.
        """
        if self.account is None:
            return None
        if self.open_case is not None:
            return dt.date.min
        dates = []
        if self.case is not None and self.case.promise is not None:
            dates.append(self.case.promise.date + dt.timedelta(days=1))
        if self.closed_reason is None and self.settled_by is None:
            due = first_unpaid_due_date(self.installments, self.repayments)
            if due is not None:
                # §10: paused days do not count, and no case opens on a paused day.
                opens = day_counted(self.pauses, due, grace_days + 1) if self.pauses else (
                    due + dt.timedelta(days=grace_days + 1))
                if opens is not None:
                    dates.append(opens)
        dates.extend(self._treatment_wakes())
        return min(dates) if dates else None

    def _treatment_wakes(self) -> list[dt.date]:
        """§10: when a pause ends, an approved settlement on a closed case falls due, or a repayment
        an agency may be credited with is past its value date."""
        dates = []
        if self.paused_until is not None and self.paused_until < dt.date.max:
            dates.append(self.paused_until + dt.timedelta(days=1))
        settlement = self.case.settlement if self.case is not None else None
        if settlement is not None and settlement.status == settlements.APPROVED:
            dates.append(settlement.pay_by + dt.timedelta(days=1))
        if self.agency_spans:
            judged = self.recoveries_judged_before
            waiting = [r.value_date for r in self.repayments
                       if not r.reversed and (judged is None or r.value_date >= judged)]
            if waiting:
                dates.append(min(waiting) + dt.timedelta(days=1))
        return dates

    def tally(self, agency_id: str) -> AgencyTally:
        return next((t for t in self.tallies if t.agency_id == agency_id), AgencyTally(agency_id))

    def with_tally(self, agency_id: str, **increments: int) -> LoanState:
        current = self.tally(agency_id)
        updated = replace(current, **{k: getattr(current, k) + v for k, v in increments.items()})
        others = tuple(t for t in self.tallies if t.agency_id != agency_id)
        return replace(self, tallies=tuple(sorted((*others, updated), key=lambda t: t.agency_id)))


def event_fingerprint(event_id: str) -> int:
    """64 bits of the event id: enough to tell a loan's events apart, a tenth of the bytes."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


class Step:
    """The outputs of one input event or tick, with deterministic ids derived from its cause."""

    def __init__(self, cause_id: str, occurred_at: int, business_date: dt.date | None) -> None:
        self.cause_id = cause_id
        self.occurred_at = occurred_at
        self.business_date = business_date
        self.outputs: list[ev.Output] = []

    def id(self, *parts: str) -> str:
        return ev.derive_id(self.cause_id, *parts)

    @property
    def date(self) -> dt.date:
        if self.business_date is None:  # pragma: no cover - no case exists before the first tick
            raise AssertionError("a case event needs a business date")
        return self.business_date

    def emit(self, output: ev.Output) -> None:
        self.outputs.append(output)

    def reject(self, event: ev.InputEvent, detail: str, reason: str = CONTRACT_VIOLATION) -> None:
        self.outputs.append(ev.Rejected(event, reason, detail))
