"""Domain events: what comes in (facts from loan systems, agencies, tooling) and what goes out.

Field names follow the contract (SPEC §3-§7) so the mapping to Avro records is a plain
copy; instants are epoch milliseconds, dates are :class:`datetime.date`, money is ``int``
minor units. These are plain frozen dataclasses: the rules never see bytes or Avro.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import ClassVar

_ID_NAMESPACE = uuid.UUID("6f1c2a57-3b8e-4c1e-9a53-0d7c6b1e2f40")


def derive_id(cause_event_id: str, *parts: str) -> str:
    """A deterministic event id: the same cause and parts always give the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, "|".join((cause_event_id, *parts))))


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class EmergencyContact:
    name: str
    phone: str
    relation: str


@dataclass(frozen=True, slots=True)
class Customer:
    name: str = ""
    phone: str = ""
    national_id: str = ""
    province: str = ""
    city: str = ""
    timezone: str = "Asia/Shanghai"
    emergency_contacts: tuple[EmergencyContact, ...] = ()


@dataclass(frozen=True, slots=True)
class LoanOpened:
    record: ClassVar[str] = "LoanOpened"
    event_id: str
    occurred_at: int
    loan_id: str
    customer_id: str
    product_code: str
    currency: str
    principal: int
    opened_on: dt.date
    customer: Customer = Customer()


@dataclass(frozen=True, slots=True)
class LoanClosed:
    record: ClassVar[str] = "LoanClosed"
    event_id: str
    occurred_at: int
    loan_id: str
    reason: str  # PAID_OFF, WRITTEN_OFF, SOLD, CANCELLED


@dataclass(frozen=True, slots=True)
class InstallmentScheduled:
    record: ClassVar[str] = "InstallmentScheduled"
    event_id: str
    occurred_at: int
    loan_id: str
    installment_no: int
    due_date: dt.date
    principal_due: int
    interest_due: int
    fee_due: int
    currency: str


@dataclass(frozen=True, slots=True)
class RepaymentReceived:
    record: ClassVar[str] = "RepaymentReceived"
    event_id: str
    occurred_at: int
    loan_id: str
    payment_id: str
    amount: int
    currency: str
    value_date: dt.date
    channel: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class RepaymentReversed:
    record: ClassVar[str] = "RepaymentReversed"
    event_id: str
    occurred_at: int
    loan_id: str
    payment_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The business date moved to *business_date* (a BusinessDateChanged placed in a partition)."""

    record: ClassVar[str] = "BusinessDateChanged"
    event_id: str
    occurred_at: int
    business_date: dt.date


@dataclass(frozen=True, slots=True)
class ContactAttempted:
    record: ClassVar[str] = "ContactAttempted"
    event_id: str
    occurred_at: int
    agency_id: str
    case_id: str
    work_order_id: str
    attempted_at: int
    channel: str
    party: str
    outcome: str


@dataclass(frozen=True, slots=True)
class PromiseToPay:
    record: ClassVar[str] = "PromiseToPay"
    event_id: str
    occurred_at: int
    agency_id: str
    case_id: str
    work_order_id: str
    promised_amount: int
    promised_date: dt.date


@dataclass(frozen=True, slots=True)
class DisputeRaised:
    record: ClassVar[str] = "DisputeRaised"
    event_id: str
    occurred_at: int
    agency_id: str
    case_id: str
    work_order_id: str
    details: str


@dataclass(frozen=True, slots=True)
class ComplaintReceived:
    record: ClassVar[str] = "ComplaintReceived"
    event_id: str
    occurred_at: int
    agency_id: str
    case_id: str
    work_order_id: str
    details: str


@dataclass(frozen=True, slots=True)
class CeaseContactRequested:
    record: ClassVar[str] = "CeaseContactRequested"
    event_id: str
    occurred_at: int
    agency_id: str
    case_id: str
    work_order_id: str
    details: str


@dataclass(frozen=True, slots=True)
class CaseReturned:
    record: ClassVar[str] = "CaseReturned"
    event_id: str
    occurred_at: int
    agency_id: str
    case_id: str
    work_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseCase:
    record: ClassVar[str] = "ReleaseCase"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    requested_by: str
    reason: str


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    """The debtor's budget found that an attempt broke a count rule (its violation is emitted)."""

    event_id: str  # derived from the attempt and the rule: applied once
    occurred_at: int
    loan_id: str
    case_id: str
    agency_id: str
    contact_event_id: str
    rule: str
    recorded: bool  # the attempt is recorded against the case: its CaseState counts the violation
# ---- §10 treatments: a result and the lender's commands
@dataclass(frozen=True, slots=True)
class SettlementProposed:
    record: ClassVar[str] = "SettlementProposed"
    event_id: str
    occurred_at: int
    agency_id: str
    case_id: str
    work_order_id: str
    amount: int
    pay_by: dt.date


@dataclass(frozen=True, slots=True)
class PauseDelinquency:
    record: ClassVar[str] = "PauseDelinquency"
    event_id: str
    occurred_at: int
    loan_id: str
    from_date: dt.date
    until_date: dt.date | None
    reason: str
    requested_by: str


@dataclass(frozen=True, slots=True)
class ResumeDelinquency:
    record: ClassVar[str] = "ResumeDelinquency"
    event_id: str
    occurred_at: int
    loan_id: str
    on_date: dt.date
    requested_by: str


@dataclass(frozen=True, slots=True)
class ApproveSettlement:
    record: ClassVar[str] = "ApproveSettlement"
    event_id: str
    occurred_at: int
    loan_id: str
    case_id: str
    settlement_id: str
    decided_by: str


@dataclass(frozen=True, slots=True)
class RejectSettlement:
    record: ClassVar[str] = "RejectSettlement"
    event_id: str
    occurred_at: int
    loan_id: str
    case_id: str
    settlement_id: str
    decided_by: str


AgencyResult = (
    ContactAttempted | PromiseToPay | DisputeRaised | ComplaintReceived | CeaseContactRequested | CaseReturned
    | SettlementProposed
)
LedgerEvent = InstallmentScheduled | RepaymentReceived | RepaymentReversed
PauseCommand = PauseDelinquency | ResumeDelinquency
SettlementDecision = ApproveSettlement | RejectSettlement
InputEvent = (LoanOpened | LoanClosed | LedgerEvent | AgencyResult | ReleaseCase | PauseCommand | SettlementDecision
              | BudgetVerdict)

HOLD_REASONS: dict[type, str] = {
    DisputeRaised: "DISPUTE",
    ComplaintReceived: "COMPLAINT",
    CeaseContactRequested: "CEASE_CONTACT",
}


# --------------------------------------------------------------------------- outputs
@dataclass(frozen=True, slots=True)
class CaseOpened:
    record: ClassVar[str] = "CaseOpened"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    customer_id: str
    dpd: int
    bucket: str
    overdue_amount: int
    currency: str
    oldest_due_date: dt.date


@dataclass(frozen=True, slots=True)
class CaseDelinquencyChanged:
    record: ClassVar[str] = "CaseDelinquencyChanged"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    dpd: int
    bucket: str
    previous_bucket: str
    overdue_amount: int


@dataclass(frozen=True, slots=True)
class CaseBalanceChanged:
    record: ClassVar[str] = "CaseBalanceChanged"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    overdue_amount: int
    previous_overdue_amount: int
    dpd: int
    bucket: str
    payment_id: str | None


@dataclass(frozen=True, slots=True)
class CaseClosed:
    record: ClassVar[str] = "CaseClosed"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    reason: str
    settlement_id: str | None = None  # §10: the fulfilled settlement that paid the loan off


@dataclass(frozen=True, slots=True)
class CaseAssigned:
    record: ClassVar[str] = "CaseAssigned"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    agency_id: str
    work_order_id: str
    assigned_on: dt.date
    expires_on: dt.date


@dataclass(frozen=True, slots=True)
class CaseRecalled:
    record: ClassVar[str] = "CaseRecalled"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    agency_id: str
    work_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CaseHeld:
    record: ClassVar[str] = "CaseHeld"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    hold_reason: str


@dataclass(frozen=True, slots=True)
class CaseReleased:
    record: ClassVar[str] = "CaseReleased"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    hold_reason: str


@dataclass(frozen=True, slots=True)
class PromiseKept:
    record: ClassVar[str] = "PromiseKept"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    agency_id: str
    promised_amount: int
    promised_date: dt.date
    paid_amount: int


@dataclass(frozen=True, slots=True)
class PromiseBroken:
    record: ClassVar[str] = "PromiseBroken"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    agency_id: str
    promised_amount: int
    promised_date: dt.date
    paid_amount: int


CaseEvent = (
    CaseOpened | CaseDelinquencyChanged | CaseBalanceChanged | CaseClosed | CaseAssigned | CaseRecalled
    | CaseHeld | CaseReleased | PromiseKept | PromiseBroken
)


@dataclass(frozen=True, slots=True)
class Promise:
    amount: int
    date: dt.date


@dataclass(frozen=True, slots=True)
class CaseState:
    record: ClassVar[str] = "CaseState"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    customer_id: str
    status: str
    dpd: int
    bucket: str
    overdue_amount: int
    currency: str
    opened_on: dt.date
    closed_on: dt.date | None
    close_reason: str | None
    agency_id: str | None
    work_order_id: str | None
    hold_reason: str | None
    promise: Promise | None
    contact_attempts: int
    last_contact_at: int | None
    violations: int
    version: int
    paused_until: dt.date | None = None  # §10: the last paused day of the pause in effect


@dataclass(frozen=True, slots=True)
class ComplianceViolation:
    record: ClassVar[str] = "ComplianceViolation"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    agency_id: str
    rule: str
    details: str
    source_event_id: str


@dataclass(frozen=True, slots=True)
class Debtor:
    name: str
    phone: str
    national_id_masked: str
    province: str
    city: str
    timezone: str


@dataclass(frozen=True, slots=True)
class ContactPolicyTerms:
    profile: str
    quiet_hours_start: str
    quiet_hours_end: str
    max_connected_calls_per_day: int | None
    max_attempts_per_day: int | None
    max_attempts_per_week: int | None
    emergency_contacts_allowed: bool


@dataclass(frozen=True, slots=True)
class SettlementPolicyTerms:
    """The settlement limits a work order tells its agency (SPEC §10)."""

    max_discount: float
    approval_above: float | None
    outstanding_amount: int
    min_amount: int


@dataclass(frozen=True, slots=True)
class WorkOrderIssued:
    record: ClassVar[str] = "WorkOrderIssued"
    event_id: str
    occurred_at: int
    work_order_id: str
    case_id: str
    loan_id: str
    agency_id: str
    debtor: Debtor
    overdue_amount: int
    currency: str
    dpd: int
    bucket: str
    oldest_due_date: dt.date
    expires_on: dt.date
    contact_policy: ContactPolicyTerms
    emergency_contacts: tuple[EmergencyContact, ...] = ()
    settlement_policy: SettlementPolicyTerms | None = None  # §10: null when no settlement is offered


@dataclass(frozen=True, slots=True)
class WorkOrderUpdated:
    record: ClassVar[str] = "WorkOrderUpdated"
    event_id: str
    occurred_at: int
    work_order_id: str
    case_id: str
    overdue_amount: int
    dpd: int
    bucket: str
    agency_id: str = field(default="", compare=False)  # routing only: not in the record
    settlement_policy: SettlementPolicyTerms | None = None  # §10


@dataclass(frozen=True, slots=True)
class WorkOrderCancelled:
    record: ClassVar[str] = "WorkOrderCancelled"
    event_id: str
    occurred_at: int
    work_order_id: str
    case_id: str
    reason: str
    agency_id: str = field(default="", compare=False)  # routing only: not in the record


WorkOrderEvent = WorkOrderIssued | WorkOrderUpdated | WorkOrderCancelled


# ---- §10 treatments: outputs on collections.cases and collections.recoveries
@dataclass(frozen=True, slots=True)
class DelinquencyPaused:
    record: ClassVar[str] = "DelinquencyPaused"
    event_id: str
    occurred_at: int
    case_id: str | None
    loan_id: str
    business_date: dt.date
    from_date: dt.date
    until_date: dt.date | None
    dpd: int
    bucket: str
    requested_by: str


@dataclass(frozen=True, slots=True)
class DelinquencyResumed:
    record: ClassVar[str] = "DelinquencyResumed"
    event_id: str
    occurred_at: int
    case_id: str | None
    loan_id: str
    business_date: dt.date
    on_date: dt.date
    dpd: int
    bucket: str
    requested_by: str | None = None  # None: the pause ran out by itself


@dataclass(frozen=True, slots=True)
class SettlementApproved:
    record: ClassVar[str] = "SettlementApproved"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    settlement_id: str
    agency_id: str
    amount: int
    pay_by: dt.date
    discount: float
    approved_by: str


@dataclass(frozen=True, slots=True)
class SettlementRejected:
    record: ClassVar[str] = "SettlementRejected"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    settlement_id: str
    agency_id: str
    amount: int
    discount: float
    reason: str
    rejected_by: str | None = None


@dataclass(frozen=True, slots=True)
class SettlementPending:
    record: ClassVar[str] = "SettlementPending"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    settlement_id: str
    agency_id: str
    amount: int
    pay_by: dt.date
    discount: float


@dataclass(frozen=True, slots=True)
class SettlementFulfilled:
    record: ClassVar[str] = "SettlementFulfilled"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    settlement_id: str
    agency_id: str
    amount: int
    paid_amount: int


@dataclass(frozen=True, slots=True)
class SettlementBroken:
    record: ClassVar[str] = "SettlementBroken"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    business_date: dt.date
    settlement_id: str
    agency_id: str
    amount: int
    paid_amount: int


@dataclass(frozen=True, slots=True)
class RecoveryAttributed:
    record: ClassVar[str] = "RecoveryAttributed"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    agency_id: str
    work_order_id: str
    payment_id: str
    amount: int
    bucket: str
    rate: float
    commission: int
    business_date: dt.date  # the repayment's value date
    currency: str | None = None  # the loan's (money is minor units plus a currency, SPEC §1)


@dataclass(frozen=True, slots=True)
class RecoveryReversed:
    record: ClassVar[str] = "RecoveryReversed"
    event_id: str
    occurred_at: int
    case_id: str
    loan_id: str
    agency_id: str
    work_order_id: str
    payment_id: str
    amount: int  # negative: minus the attributed amount
    bucket: str
    rate: float
    commission: int  # negative: minus the attributed commission
    business_date: dt.date  # the business date of the reversal
    currency: str | None = None


TreatmentEvent = (
    DelinquencyPaused | DelinquencyResumed | SettlementApproved | SettlementRejected | SettlementPending
    | SettlementFulfilled | SettlementBroken
)
RecoveryEvent = RecoveryAttributed | RecoveryReversed


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input that breaks the contract: it goes to its topic's dead-letter queue with the reason."""

    event: InputEvent
    reason: str  # CONTRACT_VIOLATION, NOT_ASSIGNED, ...
    detail: str


# --------------------------------------------------------------------------- between stages
# The processor's own messages between its loan stage and its debtor stage (internal topics,
# not part of the contract): a contact to count in the debtor's budget, word that a loan
# partition applied a tick, and the budget's verdict on one attempt, back to the loan whose
# case it names.


@dataclass(frozen=True, slots=True)
class ContactCounted:
    """A reported contact, sent to the debtor's budget (one debtor, one budget: SPEC §6)."""

    attempt: ContactAttempted
    customer_id: str  # the debtor: every loan's contacts with them count together
    loan_id: str
    timezone: str  # the debtor's
    business_date: dt.date | None  # of the loan's partition when the contact was applied
    recorded: bool  # recorded against its case (the agency held that work order at some time)

    @property
    def occurred_at(self) -> int:
        return self.attempt.occurred_at


@dataclass(frozen=True, slots=True)
class TickApplied:
    """A loan partition applied the tick of *business_date*: every contact it counted before
    the tick was sent to the debtor stage ahead of this message (the same producer, the same
    partition), so once every loan partition has said so, a budget has all of them (SPEC §6)."""

    business_date: dt.date
    partition: int  # the loan partition that applied it
    occurred_at: int  # the tick's


Output = (CaseEvent | CaseState | ComplianceViolation | WorkOrderEvent | TreatmentEvent | RecoveryEvent | Rejected
          | ContactCounted)
