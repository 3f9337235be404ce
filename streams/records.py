"""The one place where Avro record values become domain events and back.

Decoded records carry ``datetime`` for instants and ``date`` for dates (fastavro's logical
types); the domain keeps instants as epoch milliseconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from arrears.domain import events as ev

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)

INPUT_TYPES: dict[str, type] = {
    cls.record: cls
    for cls in (
        ev.LoanOpened, ev.LoanClosed, ev.InstallmentScheduled, ev.RepaymentReceived, ev.RepaymentReversed,
        ev.ContactAttempted, ev.PromiseToPay, ev.DisputeRaised, ev.ComplaintReceived, ev.CeaseContactRequested,
        ev.CaseReturned, ev.ReleaseCase,
        # SPEC §10
        ev.SettlementProposed, ev.PauseDelinquency, ev.ResumeDelinquency, ev.ApproveSettlement, ev.RejectSettlement,
    )
}
_INSTANT_FIELDS = {"occurred_at", "attempted_at", "last_contact_at"}


def millis(value: dt.datetime | int) -> int:
    if isinstance(value, int):
        return value
    return (value - _EPOCH) // _MILLISECOND


_LAYOUTS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _layout(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(field names, instant field names) of an input event class, worked out once per class."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        layout = _LAYOUTS[cls] = (names, tuple(n for n in names if n in _INSTANT_FIELDS))
    return layout


def to_domain(name: str, value: dict[str, Any]) -> ev.InputEvent:
    """Map a decoded input record to its domain event (KeyError for a non-input record)."""
    cls = INPUT_TYPES[name]
    names, instants = _layout(cls)
    fields = {n: value[n] for n in names if n in value}
    for key in instants:
        if key in fields:
            fields[key] = millis(fields[key])
    if cls is ev.LoanOpened:
        c = value["customer"]
        fields["customer"] = ev.Customer(
            name=c["name"], phone=c["phone"], national_id=c["national_id"], province=c["province"],
            city=c["city"], timezone=c["timezone"],
            emergency_contacts=tuple(ev.EmergencyContact(**e) for e in c["emergency_contacts"]),
        )
    event: ev.InputEvent = cls(**fields)
    return event


def to_tick(value: dict[str, Any]) -> ev.Tick:
    return ev.Tick(value["event_id"], millis(value["occurred_at"]), value["business_date"])


_PLAIN = frozenset({str, int, bool, float, type(None), dt.date, dt.datetime})
_DATACLASS_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    names = _DATACLASS_FIELDS.get(kind)
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _DATACLASS_FIELDS[kind] = tuple(f.name for f in dataclasses.fields(value))  # once per class
        return _plain(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def to_record(output: Any) -> tuple[str, dict[str, Any]]:
    """Map a domain output (or input) event to (record name, Avro-ready value)."""
    return output.record, _plain(output)
