"""The loans of one partition: apply events and ticks, keep the index of loans a tick must visit.

A tick costs in proportion to the loans it can change (open cases, and loans whose oldest
unpaid installment fell due), not to the whole book: :class:`WakeIndex` keeps, per loan, the
first business date at which a tick can change it.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable
from typing import Protocol

from . import events as ev
from .loan import Context, LoanState, Rules, apply_event, apply_tick


class LoanStore(Protocol):
    """Where loan states live (a dict in tests, a Faust table in the processor)."""

    def get(self, loan_id: str) -> LoanState | None: ...

    def put(self, state: LoanState) -> None: ...


class WakeIndex:
    """Loans by the first business date a tick can change them (lazy-deletion heap)."""

    def __init__(self) -> None:
        self._heap: list[tuple[dt.date, str]] = []
        self._wake: dict[str, dt.date] = {}

    def __len__(self) -> int:
        return len(self._wake)

    def set(self, loan_id: str, wake: dt.date | None) -> None:
        if wake is None:
            self._wake.pop(loan_id, None)
            return
        if self._wake.get(loan_id) == wake:
            return
        self._wake[loan_id] = wake
        heapq.heappush(self._heap, (wake, loan_id))

    def due(self, business_date: dt.date) -> list[str]:
        """Pop every loan whose wake date is on or before *business_date*, in loan-id order."""
        found: set[str] = set()
        heap = self._heap
        while heap and heap[0][0] <= business_date:
            wake, loan_id = heapq.heappop(heap)
            if self._wake.get(loan_id) == wake:
                del self._wake[loan_id]
                found.add(loan_id)
        return sorted(found)


class LoanBook:
    """Applies one partition's events and ticks to its loans, in the order it is given them."""

    def __init__(self, store: LoanStore, rules: Rules, business_date: dt.date | None = None) -> None:
        self.store = store
        self.rules = rules
        self.business_date = business_date
        self.index = WakeIndex()

    @property
    def context(self) -> Context:
        return Context(self.business_date, self.rules)

    def track(self, state: LoanState) -> None:
        self.index.set(state.loan_id, state.wake_date(self.rules.grace_days))

    def rebuild_index(self, states: Iterable[LoanState]) -> None:
        self.index = WakeIndex()
        for state in states:
            self.track(state)

    def apply(self, loan_id: str, event: ev.InputEvent) -> list[ev.Output]:
        state = self.store.get(loan_id) or LoanState(loan_id)
        new_state, outputs = apply_event(state, event, self.context)
        if new_state is not state:
            self.store.put(new_state)
            self.track(new_state)
        return outputs

    def tick(self, tick: ev.Tick) -> list[ev.Output]:
        """Apply a tick to every loan it can change; a tick not after the current date is ignored."""
        if self.business_date is not None and tick.business_date <= self.business_date:
            return []
        self.business_date = tick.business_date
        ctx = self.context
        outputs: list[ev.Output] = []
        for loan_id in self.index.due(tick.business_date):
            state = self.store.get(loan_id)
            if state is None:
                continue
            new_state, produced = apply_tick(state, tick, ctx)
            if new_state is not state:
                self.store.put(new_state)
            self.track(new_state)
            outputs.extend(produced)
        return outputs
