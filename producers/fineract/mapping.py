"""Fineract business events -> Arrears input records (SPEC §3): pure functions, no I/O, no clock.

Each decoded Fineract event maps to zero or more contract records (record name + value, dates
as ``datetime.date``, instants as epoch milliseconds), ready for
:meth:`producers.publisher.LoanEventPublisher.publish`. The mapping table is in
``docs/fineract.md``; the rules that are easy to get wrong:

* **Money**: Fineract sends decimals at scale 8; they become minor units by the currency's
  ``decimalPlaces``, exactly. A value with more precision than the currency allows breaks the
  contract (:class:`ContractError`), it is never rounded.
* **Ids**: every event id is a UUIDv5 of the envelope's ``idempotencyKey``, the bulk item and
  the record, so a re-sent Fineract event maps to the same Arrears event ids and the processor
  applies it once. Changing :data:`ID_NAMESPACE` or :func:`event_id` would make a replay publish
  new events: never do.
* **Personal data**: the customer gets what Fineract sends (the client name); the contact fields
  Fineract's events do not carry stay empty, never invented.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import ContractError, FineractError, MappingError
from .messages import Envelope, EventItem, FineractMessage

#: namespace of every id the bridge derives; part of the id contract (see the module docstring)
ID_NAMESPACE = uuid.UUID("8fd28923-d530-44a9-b228-88fba26d1c36")

_FINERACT = "org.apache.fineract.avro"
LOAN_ACCOUNT = f"{_FINERACT}.loan.v1.LoanAccountDataV1"
LOAN_TRANSACTION = f"{_FINERACT}.loan.v1.LoanTransactionDataV1"
LOAN_REPAYMENT_DUE = f"{_FINERACT}.loan.v1.LoanRepaymentDueDataV1"
LOAN_TRANSACTION_ADJUSTMENT = f"{_FINERACT}.loan.v1.LoanTransactionAdjustmentDataV1"

#: transaction events whose transaction is money towards the loan (SOURCE.md §6)
REPAYMENT_EVENTS = frozenset({
    "LoanTransactionMakeRepaymentPostBusinessEvent",
    "LoanTransactionDownPaymentPostBusinessEvent",
    "LoanTransactionRecoveryPaymentPostBusinessEvent",
    "LoanTransactionMerchantIssuedRefundPostBusinessEvent",
    "LoanTransactionPayoutRefundPostBusinessEvent",
    "LoanTransactionGoodwillCreditPostBusinessEvent",
})
#: snapshots that open the loan in Arrears. Later snapshots only revise the schedule: a re-sent
#: LoanOpened refreshes the customer (SPEC §4), and Fineract's events carry no contact data, so
#: re-sending it would wipe what the lender added (see docs/fineract.md, "Customer data").
OPENING_EVENTS = frozenset({"LoanDisbursalBusinessEvent"})
CLOSING_EVENTS = {
    "LoanWrittenOffPostBusinessEvent": "WRITTEN_OFF",
    "LoanChargeOffPostBusinessEvent": "WRITTEN_OFF",
}
#: Arrears never reopens a closed loan (SPEC §4), so these are skipped, loudly
REOPENING_EVENTS = frozenset({"LoanUndoWrittenOffBusinessEvent", "LoanUndoChargeOffBusinessEvent"})
ADJUST_EVENT = "LoanAdjustTransactionBusinessEvent"

_REPAYMENT_TYPE_FLAGS = ("repayment", "recoveryRepayment", "merchantIssuedRefund", "payoutRefund",
                         "goodwillCredit", "repaymentAtDisbursement")
_REPAYMENT_TYPE_CODES = frozenset({
    "loanTransactionType.repayment", "loanTransactionType.recoveryRepayment",
    "loanTransactionType.merchantIssuedRefund", "loanTransactionType.payoutRefund",
    "loanTransactionType.goodwillCredit", "loanTransactionType.downPayment",
    "loanTransactionType.repaymentAtDisbursement",
})
#: channel of a credit that has no payment type: the kind of credit is the best description
_CREDIT_CHANNELS = {"merchantIssuedRefund": "MERCHANT_ISSUED_REFUND", "payoutRefund": "PAYOUT_REFUND",
                    "goodwillCredit": "GOODWILL_CREDIT"}
UNSPECIFIED_CHANNEL = "UNSPECIFIED"

# LoanStatus ids (Fineract's LoanStatus enum); the boolean flags are the fallback.
_SERVICED_STATUSES = frozenset({300, 303, 304, 700})  # active, transfer in progress/on hold, overpaid
_CLOSED_STATUSES = {600: "PAID_OFF", 601: "WRITTEN_OFF", 602: "CANCELLED"}
_CLOSED_FLAGS = (("closedWrittenOff", "WRITTEN_OFF"), ("closedObligationsMet", "PAID_OFF"),
                 ("closedRescheduled", "CANCELLED"))

REVERSAL_REASONS = {
    "undo": "FINERACT_UNDO",  # LoanAdjustTransaction without a replacement
    "adjustment": "FINERACT_ADJUSTMENT",  # LoanAdjustTransaction with a replacement transaction
    "reversed": "FINERACT_REVERSAL",  # a transaction that arrives already manuallyReversed
}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CHANNEL_JUNK = re.compile(r"\W+")


@dataclass(frozen=True)
class MappingOptions:
    """The lender's choices about the mapping."""

    #: map LoanRepaymentDue/OverdueBusinessEvent to InstallmentScheduled (the issue's rule). Fineract fills
    #: their amounts with the installment's *outstanding* amounts, so after a partial payment of that
    #: installment they understate what was due; turn this off when snapshots keep the schedule current.
    schedule_from_due_events: bool = True
    #: IANA timezone of the borrowers (Fineract's events carry none); None keeps the contract default
    customer_timezone: str | None = None


@dataclass(frozen=True)
class MappedRecord:
    """One contract input record: its name and its value."""

    record: str
    value: dict[str, Any]


@dataclass(frozen=True)
class ItemResult:
    """What one Fineract event became: records, or the reason it was skipped."""

    event_type: str
    records: tuple[MappedRecord, ...] = ()
    skipped: str | None = None


# --------------------------------------------------------------------------- values
def event_id(idempotency_key: str, item_index: int, *parts: str) -> str:
    """The Arrears event id of a record mapped from item *item_index* of the event *idempotency_key*."""
    return str(uuid.uuid5(ID_NAMESPACE, "|".join((idempotency_key, str(item_index), *parts))))


def tick_event_id(calendar: str, business_date: dt.date) -> str:
    """A tick's id depends only on its calendar and date: publishing it twice is publishing it once."""
    return str(uuid.uuid5(ID_NAMESPACE, f"BusinessDateChanged|{calendar}|{business_date.isoformat()}"))


def to_minor(amount: Any, decimal_places: int, what: str) -> int:
    """*amount* (a decimal) in minor units of a currency with *decimal_places*; exact or an error."""
    if amount is None:
        raise MappingError(f"{what}: missing")
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise MappingError(f"{what}: expected a decimal, got {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ContractError(f"{what}: {value} is not a number")
    scaled = value.scaleb(decimal_places)
    whole = scaled.to_integral_value()
    if scaled != whole:
        raise ContractError(
            f"{what}: {value.normalize()} has more precision than the currency's "
            f"{decimal_places} decimal places"
        )
    return int(whole)


def _minor_or_zero(amount: Any, decimal_places: int, what: str) -> int:
    return 0 if amount is None else to_minor(amount, decimal_places, what)


def _currency(data: Mapping[str, Any] | None, what: str) -> tuple[str, int]:
    if not data or not data.get("code"):
        raise MappingError(f"{what}: no currency code")
    places = data.get("decimalPlaces")
    if not isinstance(places, int) or isinstance(places, bool):
        raise MappingError(f"{what}: currency {data['code']} has no decimalPlaces")
    if not 0 <= places <= 8:  # scale 8 on the wire: finer than that cannot be represented
        raise ContractError(f"{what}: currency {data['code']} has {places} decimal places (0 to 8 supported)")
    return str(data["code"]), places


def _date(text: Any, what: str) -> dt.date:
    if not isinstance(text, str):
        raise MappingError(f"{what}: missing date")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise MappingError(f"{what}: {text!r} is not a date yyyy-MM-dd") from None


def _id(value: Any, what: str) -> str:
    if value is None or value == "":
        raise MappingError(f"{what}: missing")
    return str(value)


def business_date_of(envelope: Envelope) -> dt.date:
    return _date(envelope.business_date, "businessDate")


def occurred_at_of(envelope: Envelope) -> int:
    """``createdAt`` (UTC, ISO_LOCAL_DATE_TIME, 0-9 fraction digits) as epoch milliseconds."""
    try:
        created = dt.datetime.fromisoformat(envelope.created_at)
    except (TypeError, ValueError):
        raise MappingError(f"createdAt: {envelope.created_at!r} is not an ISO date-time") from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)  # Fineract writes UTC without an offset
    return (created - _EPOCH) // dt.timedelta(milliseconds=1)


def business_date_tick(calendar: str, business_date: dt.date, occurred_at: int) -> MappedRecord:
    """The BusinessDateChanged for a new Fineract business date (the bridge adds its barrier)."""
    return MappedRecord("BusinessDateChanged", {
        "event_id": tick_event_id(calendar, business_date),
        "occurred_at": occurred_at,
        "calendar": calendar,
        "business_date": business_date,
    })


# --------------------------------------------------------------------------- events
@dataclass(frozen=True)
class _Source:
    """Where mapped records come from: ids and occurred_at derive from it."""

    envelope: Envelope
    item: EventItem
    occurred_at: int

    def id(self, *parts: str) -> str:
        return event_id(self.envelope.idempotency_key, self.item.index, *parts)


def _closed(src: _Source, loan_id: str, reason: str) -> MappedRecord:
    return MappedRecord("LoanClosed", {
        "event_id": src.id("LoanClosed"),
        "occurred_at": src.occurred_at,
        "loan_id": loan_id,
        "reason": reason,
    })


def loan_close_reason(snapshot: Mapping[str, Any]) -> str | None:
    """The LoanCloseReason a loan snapshot's status (or charge-off) means, or None while it is open."""
    if snapshot.get("chargedOff"):
        return "WRITTEN_OFF"
    status = snapshot.get("status") or {}
    status_id = status.get("id")
    reason = _CLOSED_STATUSES.get(status_id) if isinstance(status_id, int) else None
    if reason is not None:
        return reason
    return next((r for flag, r in _CLOSED_FLAGS if status.get(flag)), None)


def _serviced(status: Mapping[str, Any]) -> bool:
    return status.get("id") in _SERVICED_STATUSES or bool(status.get("active") or status.get("overpaid"))


def _loan_account(src: _Source, loan: dict[str, Any], options: MappingOptions) -> ItemResult:
    """A loan snapshot: its schedule while serviced (and LoanOpened on disbursal), LoanClosed once closed."""
    loan_id = _id(loan.get("id"), "id")
    reason = loan_close_reason(loan)
    if reason is not None:
        return ItemResult(src.item.type, (_closed(src, loan_id, reason),))
    status = loan.get("status") or {}
    if not _serviced(status):
        code = status.get("code") or status.get("id")
        reason = f"loan status {code} is not serviced (not disbursed, withdrawn or rejected)"
        return ItemResult(src.item.type, skipped=reason)
    schedule = loan.get("repaymentSchedule") or {}
    currency, places = _currency(schedule.get("currency") or (loan.get("summary") or {}).get("currency"),
                                 "repaymentSchedule.currency")
    principal = loan.get("principal")
    if principal is None:
        principal = (loan.get("summary") or {}).get("principalDisbursed")
    product = loan.get("product") or {}
    # Fineract's product code is its shortName; events usually carry only the product id.
    product_code = product.get("shortName") or loan.get("loanProductId") or loan.get("loanProductName") or ""
    customer: dict[str, Any] = {
        # Only what Fineract's event has; the contract's empty strings mean "the loan system has none".
        "name": loan.get("clientName") or "",
        "phone": "",
        "national_id": "",
        "province": "",
        "city": "",
        "emergency_contacts": [],
    }
    if options.customer_timezone:
        customer["timezone"] = options.customer_timezone
    timeline = loan.get("timeline") or {}
    opened = MappedRecord("LoanOpened", {
        "event_id": src.id("LoanOpened"),
        "occurred_at": src.occurred_at,
        "loan_id": loan_id,
        "customer_id": _id(loan.get("clientId"), "clientId (loans without a client are not supported)"),
        "product_code": str(product_code),
        "currency": currency,
        "principal": to_minor(principal, places, "principal"),
        "opened_on": (_date(timeline["actualDisbursementDate"], "timeline.actualDisbursementDate")
                      if timeline.get("actualDisbursementDate") else business_date_of(src.envelope)),
        "customer": customer,
    })
    records = [opened] if src.item.type in OPENING_EVENTS else []
    for i, period in enumerate(schedule.get("periods") or ()):
        if period.get("period") is None:
            continue  # the disbursement row: nothing is due on it
        where = f"repaymentSchedule.periods[{i}]"
        records.append(_scheduled_period(src, loan_id, currency, places, period, where))
    return ItemResult(src.item.type, tuple(records))


def _scheduled_period(
    src: _Source, loan_id: str, currency: str, places: int, period: Mapping[str, Any], where: str
) -> MappedRecord:
    def net(*fields: str) -> int:
        """The first field less the others (waived, written off: not the borrower's to pay)."""
        first, *less = (_minor_or_zero(period.get(f), places, f"{where}.{f}") for f in fields)
        return first - sum(less)

    number = period["period"]
    principal = net("principalDue", "principalWrittenOff")
    interest = net("interestDue", "interestWaived", "interestWrittenOff")
    fee = (net("feeChargesDue", "feeChargesWaived", "feeChargesWrittenOff")
           + net("penaltyChargesDue", "penaltyChargesWaived", "penaltyChargesWrittenOff"))
    return _installment(src, loan_id, currency, number, _date(period.get("dueDate"), f"{where}.dueDate"),
                        principal, interest, fee, where)


def _installment(
    src: _Source, loan_id: str, currency: str, number: Any, due_date: dt.date,
    principal: int, interest: int, fee: int, where: str,
) -> MappedRecord:
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ContractError(f"{where}: installment number {number!r} (must be >= 1)")
    if min(principal, interest, fee) < 0:
        raise ContractError(f"{where}: installment {number} has a negative amount due")
    return MappedRecord("InstallmentScheduled", {
        "event_id": src.id("InstallmentScheduled", str(number)),
        "occurred_at": src.occurred_at,
        "loan_id": loan_id,
        "installment_no": number,
        "due_date": due_date,
        "principal_due": principal,
        "interest_due": interest,
        "fee_due": fee,  # fees and penalties: the contract has one bucket for both
        "currency": currency,
    })


def _repayment_due(src: _Source, due: dict[str, Any], options: MappingOptions) -> ItemResult:
    """A repayment-due or -overdue reminder: the installment it names, as Fineract has it now."""
    if not options.schedule_from_due_events:
        return ItemResult(src.item.type, skipped="due events are not mapped (--due-events ignore)")
    loan_id = _id(due.get("loanId"), "loanId")
    currency, places = _currency(due.get("currency"), "currency")
    inst = due.get("installment") or {}

    def amount(field: str) -> int:
        return _minor_or_zero(inst.get(field), places, f"installment.{field}")

    record = _installment(
        src, loan_id, currency, inst.get("installmentNumber"),
        _date(inst.get("installmentDueDate"), "installment.installmentDueDate"),
        amount("principalAmountDue"), amount("interestAmountDue"),
        amount("feeChargeAmountDue") + amount("penaltyChargeAmountDue"), "installment",
    )
    return ItemResult(src.item.type, (record,))


def is_repayment_like(txn: Mapping[str, Any]) -> bool:
    """Money towards the loan: repayments, down/recovery payments, refunds and goodwill credits."""
    kind = txn.get("type") or {}
    return kind.get("code") in _REPAYMENT_TYPE_CODES or any(kind.get(flag) for flag in _REPAYMENT_TYPE_FLAGS)


def channel_of(txn: Mapping[str, Any]) -> str:
    """The payment type as an upper-case channel name; else the kind of credit; else UNSPECIFIED."""
    payment_type = (txn.get("paymentDetailData") or {}).get("paymentType") or {}
    for name in (payment_type.get("codeName"), payment_type.get("name")):
        channel = _CHANNEL_JUNK.sub("_", name or "").strip("_").upper()
        if channel:
            return channel
    kind = txn.get("type") or {}
    for flag, channel in _CREDIT_CHANNELS.items():
        if kind.get(flag) or kind.get("code") == f"loanTransactionType.{flag}":
            return channel
    return UNSPECIFIED_CHANNEL


def _received(src: _Source, txn: Mapping[str, Any], what: str) -> MappedRecord:
    payment_id = _id(txn.get("id"), f"{what}.id")
    currency, places = _currency(txn.get("currency"), f"{what}.currency")
    amount = to_minor(txn.get("amount"), places, f"{what}.amount")
    if amount <= 0:
        raise ContractError(f"{what}.amount: a repayment must be > 0, got {amount}")
    receipt = (txn.get("paymentDetailData") or {}).get("receiptNumber")
    return MappedRecord("RepaymentReceived", {
        "event_id": src.id("RepaymentReceived", payment_id),
        "occurred_at": src.occurred_at,
        "loan_id": _id(txn.get("loanId"), f"{what}.loanId"),
        "payment_id": payment_id,
        "amount": amount,
        "currency": currency,
        "value_date": _date(txn.get("date"), f"{what}.date"),
        "channel": channel_of(txn),
        "reference": receipt or txn.get("externalId"),
    })


def _reversed(src: _Source, txn: Mapping[str, Any], reason: str, what: str) -> MappedRecord:
    payment_id = _id(txn.get("id"), f"{what}.id")
    return MappedRecord("RepaymentReversed", {
        "event_id": src.id("RepaymentReversed", payment_id),
        "occurred_at": src.occurred_at,
        "loan_id": _id(txn.get("loanId"), f"{what}.loanId"),
        "payment_id": payment_id,
        "reason": reason,
    })


def _transaction(src: _Source, txn: dict[str, Any], options: MappingOptions) -> ItemResult:
    kind = src.item.type
    if txn.get("manuallyReversed") and is_repayment_like(txn):
        # Already reversed when it reaches us: the reversal alone (the processor keeps a reversal of a
        # payment it has not seen, so the order of the two never matters).
        return ItemResult(kind, (_reversed(src, txn, REVERSAL_REASONS["reversed"], "transaction"),))
    if kind in REPAYMENT_EVENTS:
        return ItemResult(kind, (_received(src, txn, "transaction"),))
    if kind in CLOSING_EVENTS:
        return ItemResult(kind, (_closed(src, _id(txn.get("loanId"), "loanId"), CLOSING_EVENTS[kind]),))
    if kind in REOPENING_EVENTS:
        return ItemResult(kind, skipped=f"{kind}: Arrears does not reopen a closed loan")
    return ItemResult(kind, skipped=f"{kind} is not mapped")


def _adjustment(src: _Source, adjustment: dict[str, Any], options: MappingOptions) -> ItemResult:
    """An adjusted (undone or replaced) transaction: a repayment's reversal, and its replacement if any."""
    old = adjustment.get("transactionToAdjust")
    new = adjustment.get("newTransactionDetail")
    records: list[MappedRecord] = []
    if old and is_repayment_like(old):
        reason = REVERSAL_REASONS["undo" if new is None else "adjustment"]
        records.append(_reversed(src, old, reason, "transactionToAdjust"))
    if new and is_repayment_like(new) and not new.get("manuallyReversed") and new.get("amount"):
        records.append(_received(src, new, "newTransactionDetail"))
    if not records:
        return ItemResult(src.item.type, skipped="the adjusted transaction is not a repayment")
    return ItemResult(src.item.type, tuple(records))


Handler = Callable[[_Source, dict[str, Any], MappingOptions], ItemResult]
HANDLERS: dict[str, Handler] = {
    LOAN_ACCOUNT: _loan_account,
    LOAN_REPAYMENT_DUE: _repayment_due,
    LOAN_TRANSACTION: _transaction,
    LOAN_TRANSACTION_ADJUSTMENT: _adjustment,
}


def wanted(event_type: str, dataschema: str) -> bool:
    """Whether a payload can map to anything (the rest is skipped without being decoded)."""
    return dataschema in HANDLERS


def map_item(envelope: Envelope, item: EventItem, options: MappingOptions | None = None) -> ItemResult:
    """Map one decoded Fineract event; raise :class:`MappingError` when it cannot be mapped."""
    options = options or MappingOptions()
    handler = HANDLERS.get(item.dataschema)
    if handler is None or item.payload is None:
        schema = item.dataschema.rsplit(".", 1)[-1]
        return ItemResult(item.type, skipped=f"{item.type} ({schema}) is not mapped")
    src = _Source(envelope, item, occurred_at_of(envelope))
    try:
        return handler(src, item.payload, options)
    except FineractError as exc:
        where = f"bulk item {item.index} ({item.type})" if item.index else item.type
        raise type(exc)(f"{where}: {exc}") from exc


def map_message(message: FineractMessage, options: MappingOptions | None = None) -> tuple[ItemResult, ...]:
    """Map every event of a message, bulk items in their order; all or nothing."""
    return tuple(map_item(message.envelope, item, options) for item in message.items)
