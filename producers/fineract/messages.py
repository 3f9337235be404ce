"""Fineract's Kafka messages: the ``MessageV1`` envelope and the business events it carries.

A message carries one event, or for ``BulkBusinessEvent`` a ``BulkMessagePayloadV1`` whose items
are events in the order Fineract raised them. Each payload is itself single-object encoded and
named by its ``dataschema``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import FineractError
from .schemas import BULK_PAYLOAD, ENVELOPE, FineractSchemas

BULK_EVENT = "BulkBusinessEvent"

#: decides from (event type, dataschema) whether a payload is worth decoding
Wanted = Callable[[str, str], bool]


@dataclass(frozen=True)
class Envelope:
    """The ``MessageV1`` fields, without the payload bytes."""

    id: int
    source: str
    type: str
    category: str
    created_at: str  # UTC, ISO_LOCAL_DATE_TIME
    business_date: str  # ISO date
    tenant_id: str
    idempotency_key: str  # stable across re-sends of the same event
    dataschema: str

    @property
    def is_bulk(self) -> bool:
        return self.type == BULK_EVENT or self.dataschema == BULK_PAYLOAD


@dataclass(frozen=True)
class EventItem:
    """One business event: the message's own payload (index 0) or bulk item *index* (1..n)."""

    index: int
    type: str
    dataschema: str
    payload: dict[str, Any] | None  # None: a type the bridge does not map, left undecoded


@dataclass(frozen=True)
class FineractMessage:
    envelope: Envelope
    items: tuple[EventItem, ...]


def _envelope(value: dict[str, Any]) -> Envelope:
    return Envelope(
        id=value["id"],
        source=value["source"],
        type=value["type"],
        category=value["category"],
        created_at=value["createdAt"],
        business_date=value["businessDate"],
        tenant_id=value["tenantId"],
        idempotency_key=value["idempotencyKey"],
        dataschema=value["dataschema"],
    )


def decode_envelope(schemas: FineractSchemas, data: bytes | None) -> tuple[Envelope, bytes]:
    """The ``MessageV1`` envelope of a Kafka value and its (still encoded) payload."""
    _, value = schemas.decode(data, expected=ENVELOPE)
    return _envelope(value), value["data"]


def decode_payloads(
    schemas: FineractSchemas, envelope: Envelope, data: bytes, wanted: Wanted = lambda _t, _s: True
) -> FineractMessage:
    """Decode the events an envelope carries (bulk items in their order).

    Payloads of types *wanted* rejects are not decoded at all, so an event type the bridge
    skips never needs its schema (a lender may enable events we have no use for).
    """
    if not envelope.is_bulk:
        payload = None
        if wanted(envelope.type, envelope.dataschema):
            payload = schemas.decode(data, expected=envelope.dataschema)[1]
        return FineractMessage(envelope, (EventItem(0, envelope.type, envelope.dataschema, payload),))
    _, bulk = schemas.decode(data, expected=BULK_PAYLOAD)
    items: list[EventItem] = []
    for item in bulk["datas"]:
        payload = None
        if wanted(item["type"], item["dataschema"]):
            try:
                payload = schemas.decode(item["data"], expected=item["dataschema"])[1]
            except FineractError as exc:
                raise type(exc)(f"bulk item {item['id']} ({item['type']}): {exc}") from exc
        items.append(EventItem(item["id"], item["type"], item["dataschema"], payload))
    return FineractMessage(envelope, tuple(items))


def decode_message(
    schemas: FineractSchemas, data: bytes | None, wanted: Wanted = lambda _t, _s: True
) -> FineractMessage:
    """Decode a Kafka value into its envelope and events; raise a typed error for bytes that do not decode."""
    envelope, payload = decode_envelope(schemas, data)
    return decode_payloads(schemas, envelope, payload, wanted)
