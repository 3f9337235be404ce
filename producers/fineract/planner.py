"""The bridge's stream-level rules, without I/O: what each Fineract message makes the bridge publish.

* **Business date**: each envelope carries Fineract's ``businessDate``. The first message of a
  later date first gets a ``BusinessDateChanged`` tick (only forward; a date already published,
  by this bridge or before its restart, never again), which the bridge publishes only after
  every earlier record was acknowledged, and with its barrier.
* **Re-sends**: Fineract delivers at least once and keeps ``idempotencyKey`` across re-sends.
  Mapped ids derive from it, so a re-send is harmless downstream; a re-send this process has
  already mapped is not even published again.
* **Tenants**: with a tenant set, other tenants' messages are skipped (their loan ids would
  collide with this tenant's).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass

from .errors import FineractError
from .mapping import (
    ItemResult,
    MappedRecord,
    MappingOptions,
    business_date_of,
    business_date_tick,
    map_message,
    occurred_at_of,
)
from .messages import Envelope, FineractMessage

#: how many idempotency keys one process remembers (a re-send older than that maps to the same ids)
REMEMBERED_KEYS = 100_000


@dataclass(frozen=True)
class Plan:
    """What to publish for one message, in order: the tick (if any), then the records."""

    envelope: Envelope
    tick: MappedRecord | None = None
    results: tuple[ItemResult, ...] = ()
    error: FineractError | None = None  # the message dead-letters (after its tick, which is still valid)
    duplicate: bool = False
    other_tenant: bool = False

    @property
    def records(self) -> list[MappedRecord]:
        return [record for result in self.results for record in result.records]


class Planner:
    """Turns decoded messages into plans; remembers the last business date and recent idempotency keys."""

    def __init__(
        self,
        calendar: str = "CN",
        options: MappingOptions | None = None,
        *,
        tenant: str | None = None,
        last_business_date: dt.date | None = None,
        remember: int = REMEMBERED_KEYS,
    ) -> None:
        self.calendar = calendar
        self.options = options or MappingOptions()
        self.tenant = tenant
        self.last_business_date = last_business_date
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def plan(self, message: FineractMessage) -> Plan:
        envelope = message.envelope
        if self.tenant is not None and envelope.tenant_id != self.tenant:
            return Plan(envelope, other_tenant=True)
        try:
            tick = self._advance(envelope)
        except FineractError as exc:
            return Plan(envelope, error=exc)
        key = envelope.idempotency_key
        if key in self._seen:
            self._seen.move_to_end(key)
            return Plan(envelope, tick=tick, duplicate=True)
        try:
            results = map_message(message, self.options)
        except FineractError as exc:
            return Plan(envelope, tick=tick, error=exc)
        self._seen[key] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return Plan(envelope, tick=tick, results=results)

    def failed(self, envelope: Envelope, error: FineractError) -> Plan:
        """The plan of a message whose envelope decoded but whose payload did not: its tick, then the DLQ."""
        if self.tenant is not None and envelope.tenant_id != self.tenant:
            return Plan(envelope, other_tenant=True)
        try:
            tick = self._advance(envelope)
        except FineractError:
            tick = None
        return Plan(envelope, tick=tick, error=error)

    def _advance(self, envelope: Envelope) -> MappedRecord | None:
        """The tick a message's business date calls for (only forward), or None."""
        business_date = business_date_of(envelope)
        occurred_at = occurred_at_of(envelope)
        if self.last_business_date is not None and business_date <= self.last_business_date:
            return None
        self.last_business_date = business_date
        return business_date_tick(self.calendar, business_date, occurred_at)
