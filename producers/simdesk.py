"""The simulated lender's credit desk (SPEC §10 maker-checker): it decides pending settlements.

Simulated agencies propose settlements (``consumers.simplan``); those above the configured
``approval_above`` wait for a person. The desk follows ``collections.cases`` for
``SettlementPending`` and, at the next business day the simulation gives it, approves or
rejects each one by publishing ``ApproveSettlement``/``RejectSettlement`` as the person
``credit-officer`` (never the proposing agency). Each decision is drawn from a generator seeded
by the settlement id, so the same settlement gets the same decision in every run.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections import Counter
from typing import Any

from arrears.settings import Settings
from arrears.tail import TopicTail

from .publisher import LoanEventPublisher

log = logging.getLogger(__name__)
DECIDER = "credit-officer"


class SettlementDesk:
    """Decides the pending settlements it has seen, one business day at a time."""

    def __init__(self, settings: Settings, *, seed: str = "arrears", approve_share: float = 0.75) -> None:
        self.agency_id = "lender-desk"  # how the simulation names it in its progress
        self.settings = settings
        self.seed = seed
        self.approve_share = approve_share
        self._pending: dict[str, dict[str, Any]] = {}
        self._decided: set[str] = set()
        self._lock = threading.Lock()
        self._tail = TopicTail(settings, [settings.topics.cases], self._seen)
        self._publisher: LoanEventPublisher | None = None

    def start(self) -> SettlementDesk:
        self._tail.start()
        return self

    def _seen(self, _topic: str, name: str, value: dict[str, Any]) -> None:
        settlement_id = value.get("settlement_id")
        if not isinstance(settlement_id, str):
            return
        with self._lock:
            if name == "SettlementPending" and settlement_id not in self._decided:
                self._pending[settlement_id] = value
            elif name in ("SettlementApproved", "SettlementRejected"):
                self._pending.pop(settlement_id, None)  # decided already (by us or the case closed)

    def work_day(self, day: dt.date) -> Any:
        from consumers.simagency import DayReport

        with self._lock:
            chosen = sorted(self._pending.items())
            self._pending.clear()
            self._decided.update(sid for sid, _ in chosen)
        decisions: Counter[str] = Counter()
        if chosen:
            if self._publisher is None:
                self._publisher = LoanEventPublisher(self.settings)
            for settlement_id, value in chosen:
                approve = random.Random(f"{self.seed}|desk|{settlement_id}").random() < self.approve_share
                name = "ApproveSettlement" if approve else "RejectSettlement"
                self._publisher.publish(name, {"loan_id": value["loan_id"], "case_id": value["case_id"],
                                               "settlement_id": settlement_id, "decided_by": DECIDER})
                decisions[name] += 1
            self._publisher.flush()
            log.info("credit desk decided %d settlement(s) on %s: %s", len(chosen), day, dict(decisions))
        return DayReport(self.agency_id, day, len(chosen), dict(decisions), 0, {}, 0, 0)

    def close(self) -> None:
        self._tail.stop()
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
