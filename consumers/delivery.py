"""What the work-order loop hands to a transport, and what a transport can answer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class WorkOrder:
    """One decoded work-order event and where it came from."""

    topic: str
    partition: int
    offset: int
    name: str  # WorkOrderIssued, WorkOrderUpdated or WorkOrderCancelled
    value: dict[str, Any]  # as decoded (dates and datetimes)

    @property
    def event_id(self) -> str:
        return str(self.value["event_id"])

    @property
    def ids(self) -> str:
        """Ids and coordinates for log lines (never personal data)."""
        return (
            f"event {self.event_id} case {self.value.get('case_id')} work order "
            f"{self.value.get('work_order_id')} at {self.topic}[{self.partition}]@{self.offset}"
        )


@dataclass(frozen=True)
class DeliveryFailure:
    """An event the transport gave up on: it goes to the dead-letter topic with this reason."""

    reason: str  # a dead-letter reason code (arrears.dlq)
    error: str


class DeliveryInterrupted(Exception):
    """The adapter is stopping in the middle of a delivery: commit nothing, redeliver on restart."""


class Transport(Protocol):
    """Delivers work orders to an agency; the loop commits once ``deliver`` returns."""

    batch_size: int

    def deliver(self, orders: Sequence[WorkOrder], stop: threading.Event) -> dict[int, DeliveryFailure]:
        """Deliver *orders* in order; return failures by index (to be dead-lettered)."""
        ...

    def close(self) -> None: ...
